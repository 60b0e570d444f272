"""The product matrix recovers the roles designed into a small simulated shop (its ground truth:
``ground_truth.json``'s ``product_roles``)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from growthwheel.config import Settings
from growthwheel.products import roles as pr
from growthwheel.sim.shop import build_demo_files
from growthwheel.warehouse import connect, ingest


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = tmp_path_factory.mktemp("roles-demo")
    files = build_demo_files(folder / "files", customers=3000, seed=7)
    cfg = Settings(data_dir=folder / "data", database_url=None)
    for table in ("products", "order_lines"):
        ingest.import_files(table, [files.paths[table]], cfg=cfg)
    events = pq.read_table(files.paths["events"])  # the matrix reads views and carts only
    events = events.filter(pc.is_in(events["type"], pa.array(["view", "add_to_cart"])))
    pq.write_table(events, folder / "views.parquet")
    ingest.import_files("events", [folder / "views.parquet"], cfg=cfg)
    truth = json.loads(files.ground_truth.read_text("utf-8"))["product_roles"]
    con = connect(cfg)
    try:
        return truth, pr.roles(con, "last180")
    finally:
        con.disconnect()


def test_every_designed_role_is_recovered(shop: tuple[dict[str, Any], dict[str, Any]]) -> None:
    truth, matrix = shop
    items = {i["sku"]: i for i in matrix["items"]}
    assert len(truth["traffic_driver"]) == 6
    assert len(truth["profit_maker"]) == 5
    assert len(truth["potential"]) == 4
    for role in ("traffic_driver", "profit_maker", "potential"):
        for sku in truth[role]:
            assert items[sku]["role"] == role, (role, sku, items[sku])


def test_traffic_drivers_are_exactly_the_designed_ones(shop: tuple[dict[str, Any], dict[str, Any]]) -> None:
    truth, matrix = shop
    assert sorted(matrix["skus"]["traffic_driver"]) == sorted(truth["traffic_driver"])
    items = {i["sku"]: i for i in matrix["items"]}
    for sku in truth["traffic_driver"]:  # sold near cost: never a profit maker
        assert items[sku]["margin_rate"] < 0.15
        assert items[sku]["new_buyer_ratio"] > 0.7


def test_natural_products_are_not_flooding_the_designed_roles(
        shop: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The simulator's own spread (view appeal, category margins) makes some natural profit makers
    and potential products too; they stay a short list an operator can read."""
    _, matrix = shop
    selling = matrix["references"]["selling_skus"]
    assert matrix["counts"]["profit_maker"] <= 0.1 * selling
    assert matrix["counts"]["potential"] <= 0.1 * selling
    for item in matrix["items"]:
        if item["role"] == "potential":  # minimum evidence: never from a handful of views
            assert item["orders"] >= 3
            assert item["conversion_low"] > matrix["references"]["conversion_bar"]
