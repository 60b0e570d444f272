"""The product matrix's Ibis expressions on Spark give the same figures and roles as on DuckDB
(the hand-made shop of ``test_roles``, its tables copied into a Spark session of their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest
from ibis.backends.pyspark.datatypes import PySparkSchema
from tests.products.test_roles import RULES, _shop

from growthwheel.config import Settings
from growthwheel.products import roles as pr
from growthwheel.warehouse import connect

pytestmark = pytest.mark.spark

FIGURES = ("role", "roles", "orders", "buyers", "units", "revenue", "margin", "first_orders", "views",
           "carts", "orders_before")
RATIOS = ("entry_share", "new_buyer_ratio", "pull_through", "margin_rate", "conversion_low", "growth")


def _plain(value: Any, kind: Any) -> Any:
    """A pandas cell as the Python value Spark takes for ``kind``."""
    if value is None:
        return None
    if kind.is_integer():
        return int(value)
    if kind.is_timestamp():
        return pd.Timestamp(value).to_pydatetime()
    if kind.is_date():
        return pd.Timestamp(value).date()
    return value


def test_spark_equals_duckdb(spark_session: Any, tmp_path: Path) -> None:
    cfg: Settings = _shop(tmp_path)
    duck = connect(cfg)
    try:
        on_duck = pr.roles(duck, "2025-03", RULES)
        tables = {name: duck.table(name) for name in ("orders", "order_lines", "products", "events")}
        frames = {name: (t.schema(), t.execute()) for name, t in tables.items()}
    finally:
        duck.disconnect()
    own = spark_session.newSession()  # its own temporary views: nothing another test names "orders" leaks
    for name, (schema, frame) in frames.items():
        kept = {c: t for c, t in schema.items() if not t.is_unsigned_integer()}  # bookkeeping hashes
        rows = frame[list(kept)].astype(object).where(frame[list(kept)].notna(), None)
        for c, t in kept.items():
            rows[c] = pd.Series([_plain(v, t) for v in rows[c]], index=rows.index, dtype=object)
        spark_schema = PySparkSchema.from_ibis(ibis.schema(kept))
        own.createDataFrame(rows, schema=spark_schema).createOrReplaceTempView(name)
    on_spark = pr.roles(ibis.pyspark.connect(own), "2025-03", RULES)
    assert on_spark["references"]["first_orders"] == on_duck["references"]["first_orders"] == 5
    a = {i["sku"]: i for i in on_spark["items"]}
    b = {i["sku"]: i for i in on_duck["items"]}
    assert set(a) == set(b)
    for sku, item in b.items():
        assert {c: a[sku][c] for c in FIGURES} == {c: item[c] for c in FIGURES}, sku
        for c in RATIOS:
            assert a[sku][c] == pytest.approx(item[c], nan_ok=True), (sku, c)
