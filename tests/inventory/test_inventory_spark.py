"""The inventory plan's Ibis reads on Spark give the same plan as on DuckDB (the example tea shop
imported through the real import path, its tables copied into a Spark session of their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.tiny_warehouse import copy_to_spark

from growthwheel.config import Settings
from growthwheel.inventory import service
from growthwheel.warehouse import connect, ingest

pytestmark = pytest.mark.spark

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "generic"


def test_spark_plan_equals_duckdb(spark_session: Any, tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    for table, name in (("products", "products.csv"), ("order_lines", "order_lines.csv"),
                        ("inventory", "inventory.csv")):
        ingest.import_files(table, [EXAMPLES / name], cfg=cfg)
    options = service.PlanOptions(service_level=0.9)
    duck = connect(cfg)
    try:
        on_duck = service.plan(duck, options)
        spark = copy_to_spark(spark_session, duck, ("orders", "order_lines", "products", "inventory"))
    finally:
        duck.disconnect()
    on_spark = service.plan(spark, options)
    assert on_spark["as_of"] == on_duck["as_of"]
    assert on_spark["backtest"] == on_duck["backtest"]
    assert on_spark["items"] == on_duck["items"]
