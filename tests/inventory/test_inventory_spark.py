"""The inventory plan's Ibis reads on Spark give the same plan as on DuckDB (the example tea shop
imported through the real import path, its tables copied into a Spark session of their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest
from ibis.backends.pyspark.datatypes import PySparkSchema

from growthwheel.config import Settings
from growthwheel.inventory import service
from growthwheel.warehouse import connect, ingest

pytestmark = pytest.mark.spark

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "generic"


def _plain(value: Any, kind: Any) -> Any:
    if value is None:
        return None
    if kind.is_integer():
        return int(value)
    if kind.is_timestamp():
        return pd.Timestamp(value).to_pydatetime()
    if kind.is_date():
        return pd.Timestamp(value).date()
    return value


def test_spark_plan_equals_duckdb(spark_session: Any, tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    for table, name in (("products", "products.csv"), ("order_lines", "order_lines.csv"),
                        ("inventory", "inventory.csv")):
        ingest.import_files(table, [EXAMPLES / name], cfg=cfg)
    options = service.PlanOptions(service_level=0.9)
    duck = connect(cfg)
    try:
        on_duck = service.plan(duck, options)
        frames = {name: (duck.table(name).schema(), duck.table(name).execute())
                  for name in ("orders", "order_lines", "products", "inventory")}
    finally:
        duck.disconnect()
    own = spark_session.newSession()
    for name, (schema, frame) in frames.items():
        kept = {c: t for c, t in schema.items() if not t.is_unsigned_integer()}
        rows = frame[list(kept)].astype(object).where(frame[list(kept)].notna(), None)
        for c, t in kept.items():
            rows[c] = pd.Series([_plain(v, t) for v in rows[c]], index=rows.index, dtype=object)
        spark_schema = PySparkSchema.from_ibis(ibis.schema(kept))
        own.createDataFrame(rows, schema=spark_schema).createOrReplaceTempView(name)
    on_spark = service.plan(ibis.pyspark.connect(own), options)
    assert on_spark["as_of"] == on_duck["as_of"]
    assert on_spark["backtest"] == on_duck["backtest"]
    assert on_spark["items"] == on_duck["items"]
