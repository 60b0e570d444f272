"""An in-memory DuckDB warehouse with the stored schema, for tests that build their own shop."""

from __future__ import annotations

from typing import Any

import duckdb
import ibis
import pyarrow as pa

from growthwheel.warehouse import schema


def make_warehouse(rows: dict[str, list[dict[str, Any]]]) -> Any:
    """An in-memory DuckDB warehouse with the stored schema, holding ``rows``, as an Ibis backend."""
    raw = duckdb.connect()
    raw.execute("SET TimeZone = 'UTC'")
    for table in schema.TABLES.values():
        raw.execute(schema.ddl(table.name, table.stored))
    for name, records in rows.items():
        if not records:
            continue
        cols = sorted({k for r in records for k in r})
        batch = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in records])
        raw.register("batch", batch)
        raw.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM batch')
        raw.unregister("batch")
    return ibis.duckdb.from_connection(raw)
