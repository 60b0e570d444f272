"""An in-memory DuckDB warehouse with the stored schema, for tests that build their own shop, and
a copy of a DuckDB warehouse's tables into Spark, for tests that compare the two engines."""

from __future__ import annotations

from collections.abc import Iterable
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


def _plain(value: Any, kind: Any) -> Any:
    """A pandas cell as the Python value Spark takes for the Ibis type ``kind``."""
    import pandas as pd

    if value is None:
        return None
    if kind.is_integer():
        return int(value)
    if kind.is_timestamp():
        return pd.Timestamp(value).to_pydatetime()
    if kind.is_date():
        return pd.Timestamp(value).date()
    return value


def plain_value(value: Any) -> Any:
    """A pandas cell as a plain Python value (``None`` for NaN / NaT, ``datetime``, ``int``), so
    rows read from two engines compare with ``==``."""
    import math

    import pandas as pd

    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def copy_to_spark(spark_session: Any, backend: Any, names: Iterable[str]) -> Any:
    """The tables ``names`` of the Ibis (DuckDB) ``backend`` copied into a new session of
    ``spark_session``, as an Ibis PySpark backend over it.

    The new session has temporary views of its own, so nothing another test names ``orders`` leaks
    in or out, and nothing needs dropping. Values keep their types (integers, naive UTC timestamps,
    dates); unsigned-integer columns (bookkeeping hashes) are left out: Spark has none.
    """
    import pandas as pd
    from ibis.backends.pyspark.datatypes import PySparkSchema

    own = spark_session.newSession()
    for name in names:
        table = backend.table(name)
        kept = {c: t for c, t in table.schema().items() if not t.is_unsigned_integer()}
        frame = table.select(*kept).execute()
        rows = frame.astype(object).where(frame.notna(), None)
        for c, t in kept.items():
            rows[c] = pd.Series([_plain(v, t) for v in rows[c]], index=rows.index, dtype=object)
        spark_schema = PySparkSchema.from_ibis(ibis.schema(kept))
        own.createDataFrame(rows, schema=spark_schema).createOrReplaceTempView(name)
    return ibis.pyspark.connect(own)
