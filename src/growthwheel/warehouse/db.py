"""Open the warehouse as an Ibis backend: DuckDB by default, PySpark when configured.

Analytics take the backend returned here and never care which engine it is.
"""

from __future__ import annotations

from typing import Any

import duckdb
import ibis
from ibis.backends import BaseBackend

from growthwheel.config import Settings, settings
from growthwheel.warehouse.schema import IMPORTS_STORED, QUARANTINE_STORED, TABLES, ddl

QUARANTINE_TABLE = "_quarantine"
IMPORTS_TABLE = "_imports"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create any missing fact and bookkeeping table in a DuckDB warehouse."""
    for table in TABLES.values():
        con.execute(ddl(table.name, table.stored))
    # Columns the schema gained since the file was created (added at the end, NULL in old rows).
    have = {(str(t), str(c)) for t, c in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()").fetchall()}
    for table in TABLES.values():
        for column in table.stored:
            if (table.name, column.name) not in have:
                con.execute(f'ALTER TABLE "{table.name}" ADD COLUMN IF NOT EXISTS "{column.name}" '
                            f"{column.sql_type}")
    con.execute(ddl(QUARANTINE_TABLE, QUARANTINE_STORED, bookkeeping=False))
    con.execute(ddl(IMPORTS_TABLE, IMPORTS_STORED, bookkeeping=False))


def open_duckdb(cfg: Settings | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A raw DuckDB connection to the warehouse file, schema ensured (read-write) and UTC."""
    cfg = cfg or settings()
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    path = cfg.warehouse_path
    if read_only and not path.exists():
        read_only = False  # first use: create it
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():  # another process (the server) holds the warehouse
            from growthwheel.warehouse.server import warehouse_in_use_error

            raise warehouse_in_use_error(cfg, exc) from None
        raise
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # it would draw on stdout, into --json output
    if not read_only:
        ensure_schema(con)
    return con


def connect(cfg: Settings | None = None, *, read_only: bool = True) -> BaseBackend:
    """The warehouse as an Ibis backend (``duckdb`` or ``pyspark`` per ``GROWTHWHEEL_WAREHOUSE``)."""
    cfg = cfg or settings()
    if cfg.warehouse == "spark":
        from growthwheel.warehouse import spark

        return spark.connect(cfg)
    raw = open_duckdb(cfg, read_only=read_only)
    backend: Any = ibis.duckdb.from_connection(raw)
    return backend


def warehouse_version(backend: BaseBackend, table: str | None = None) -> tuple[int, str]:
    """Changes whenever the warehouse does (or, with ``table``, that table): every write
    (imports and event flushes alike) goes through the import path, which logs a row in
    ``_imports`` naming the table it imported. For what pages remember until the data changes."""
    log = backend.table(IMPORTS_TABLE)
    if table is not None:
        log = log.filter(log.table_name == table)
    row = log.aggregate(n=log.count(), last=log.finished_at.max()).to_pyarrow().to_pylist()[0]
    return int(row["n"]), str(row["last"])
