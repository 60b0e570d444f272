"""The product matrix's Ibis expressions on Spark give the same figures and roles as on DuckDB
(the hand-made shop of ``test_roles``, its tables copied into a Spark session of their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.products.test_roles import RULES, _shop
from tests.tiny_warehouse import copy_to_spark

from growthwheel.config import Settings
from growthwheel.products import roles as pr
from growthwheel.warehouse import connect

pytestmark = pytest.mark.spark

FIGURES = ("role", "roles", "orders", "buyers", "units", "revenue", "margin", "first_orders", "views",
           "carts", "orders_before")
RATIOS = ("entry_share", "new_buyer_ratio", "pull_through", "margin_rate", "conversion_low", "growth")


def test_spark_equals_duckdb(spark_session: Any, tmp_path: Path) -> None:
    cfg: Settings = _shop(tmp_path)
    duck = connect(cfg)
    try:
        on_duck = pr.roles(duck, "2025-03", RULES)
        spark = copy_to_spark(spark_session, duck, ("orders", "order_lines", "products", "events"))
    finally:
        duck.disconnect()
    on_spark = pr.roles(spark, "2025-03", RULES)
    assert on_spark["references"]["first_orders"] == on_duck["references"]["first_orders"] == 5
    a = {i["sku"]: i for i in on_spark["items"]}
    b = {i["sku"]: i for i in on_duck["items"]}
    assert set(a) == set(b)
    for sku, item in b.items():
        assert {c: a[sku][c] for c in FIGURES} == {c: item[c] for c in FIGURES}, sku
        for c in RATIOS:
            assert a[sku][c] == pytest.approx(item[c], nan_ok=True), (sku, c)
