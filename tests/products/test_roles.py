"""Product roles on a hand-made shop: every figure checked against a hand computation, the roles it
yields, the explanation, a segment definition the segments module accepts, and bad periods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from statsmodels.stats.proportion import proportion_confint

from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.products import roles as pr
from growthwheel.segments.definition import parse_definition
from growthwheel.warehouse import connect, ingest

PRODUCTS = """sku,name,category,price,cost,launched_at
T,抽纸 Tissues,家居,9.90,9.00,2024-01-01
P,精华 Serum,美妆,300.00,60.00,2024-01-01
A,咖啡 Coffee,食品,50.00,30.00,2024-01-01
B,坚果 Nuts,食品,80.00,40.00,2024-01-01
N,新品 Gadget,数码,40.00,30.00,2025-03-01
X,无成本 No cost,数码,20.00,,2024-01-01
S,滞销 Stale,家居,25.00,10.00,2024-01-01
"""
PRICE = {"T": "9.90", "P": "300.00", "A": "50.00", "B": "80.00", "N": "40.00", "X": "20.00", "S": "25.00"}
# (order, customer, day, skus). March is the period; February the one before.
ORDERS = [
    ("o1", "c1", "2025-03-02", "T"), ("o2", "c1", "2025-03-10", "PA"),
    ("o3", "c2", "2025-03-03", "TA"), ("o4", "c2", "2025-03-15", "P"),
    ("o5", "c3", "2025-03-04", "T"), ("o6", "c3", "2025-03-20", "B"),
    ("o7", "c4", "2025-03-05", "A"), ("o8", "c4", "2025-03-06", "B"),
    ("o9", "c5", "2025-02-10", "A"), ("o10", "c5", "2025-03-08", "PB"),
    ("o11", "c6", "2025-02-12", "B"), ("o12", "c6", "2025-03-09", "N"), ("o13", "c6", "2025-03-25", "N"),
    ("o14", "c7", "2025-03-11", "NX"),
    ("o15", "c8", "2025-02-01", "S"),
]
VIEWS = {"T": 50, "A": 60, "P": 40, "B": 50, "N": 3, "X": 10}
RULES = pr.RoleRules(traffic_entry_lift=2.0, traffic_min_first_orders=2)


def _shop(folder: Path, products: str = PRODUCTS) -> Settings:
    cfg = Settings(data_dir=folder, database_url=None)
    (folder / "products.csv").write_text(products, encoding="utf-8")
    rows = ["order_id,customer_id,ordered_at,sku,quantity,line_total"]
    rows += [f"{o},{c},{d}T10:00:00,{s},1,{PRICE[s]}" for o, c, d, skus in ORDERS for s in skus]
    (folder / "lines.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ev = ["event_id,type,occurred_at,anonymous_id,session_id,sku"]
    for sku, n in VIEWS.items():
        ev += [f"v-{sku}-{i},view,2025-03-{1 + i % 28:02d}T09:00:00,a{i},s-{sku}-{i},{sku}" for i in range(n)]
    ev += [f"c-N-{i},add_to_cart,2025-03-0{i + 1}T09:01:00,a{i},s-N-{i},N" for i in range(2)]
    (folder / "events.csv").write_text("\n".join(ev) + "\n", encoding="utf-8")
    for table, name in (("products", "products.csv"), ("order_lines", "lines.csv"), ("events", "events.csv")):
        ingest.import_files(table, [folder / name], cfg=cfg)
    return cfg


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cfg = _shop(tmp_path_factory.mktemp("roles-wh"))
    con = connect(cfg)
    try:
        return pr.roles(con, "2025-03", RULES)
    finally:
        con.disconnect()


def _item(matrix: dict[str, Any], sku: str) -> dict[str, Any]:
    return next(i for i in matrix["items"] if i["sku"] == sku)


def test_figures_equal_a_hand_computation(matrix: dict[str, Any]) -> None:
    assert matrix["period"] == {"label": "2025-03", "start": "2025-03-01", "end": "2025-03-31"}
    refs = matrix["references"]
    assert refs["first_orders"] == 5  # o1 o3 o5 o7 o14 (c5, c6 began in February, c8 bought nothing)
    t = _item(matrix, "T")
    assert (t["orders"], t["buyers"], t["first_orders"], t["revenue"]) == (3, 3, 3, 2970)
    assert t["entry_share"] == pytest.approx(3 / 5)
    assert t["new_buyer_ratio"] == pytest.approx(1.0)
    # c1: T then P + A; c2: T + A then P; c3: T then B → other 35,000 + 35,000 + 8,000 of 80,970.
    assert t["pull_through"] == pytest.approx(78_000 / 80_970)
    assert t["margin"] == 3 * 90
    assert t["margin_rate"] == pytest.approx(90 / 990)
    p = _item(matrix, "P")
    assert p["margin"] == 3 * 24_000
    assert p["margin_rate"] == pytest.approx(0.8)
    assert refs["shop_margin_rate"] == pytest.approx(93_270 / 143_970)
    assert refs["mean_entry_share"] == pytest.approx((0.6 + 0.4 + 0.2 + 0.2) / 6)
    n = _item(matrix, "N")
    assert (n["orders"], n["views"], n["carts"], n["orders_before"], n["growth"]) == (3, 3, 2, 0, None)
    low, _ = proportion_confint(3, 3, alpha=0.05, method="wilson")
    assert n["conversion_low"] == pytest.approx(low, abs=1e-3)  # z = 1.96 against 1.95996…
    assert refs["shop_conversion"] == pytest.approx(16 / 213)
    b = _item(matrix, "B")
    assert (b["orders"], b["orders_before"], b["growth"]) == (3, 1, pytest.approx(2.0))


def test_roles_and_their_explanations(matrix: dict[str, Any]) -> None:
    role = {i["sku"]: i["role"] for i in matrix["items"]}
    assert role == {"T": "traffic_driver", "P": "profit_maker", "N": "potential", "S": "slow_mover",
                    "X": "long_tail", "A": "core", "B": "core"}
    assert _item(matrix, "T")["roles"] == ["traffic_driver", "long_tail"]
    assert matrix["skus"]["traffic_driver"] == ["T"]
    assert matrix["counts"]["core"] == 2
    t = _item(matrix, "T")["explanation"]
    assert "60.0% of the period's 5 first orders" in t["en"]
    assert "5 个首单中 60.0%" in t["zh"]
    x = _item(matrix, "X")
    assert x["margin"] is None
    assert "no cost" in x["explanation"]["en"]
    assert "缺少成本" in x["explanation"]["zh"]
    assert "Wilson" in _item(matrix, "N")["explanation"]["en"]
    # X sold once from 10 views: its lower bound is far below the shop's conversion → not potential.
    assert _item(matrix, "X")["conversion_low"] < matrix["references"]["shop_conversion"]


def test_a_roles_buyers_are_a_valid_segment(matrix: dict[str, Any]) -> None:
    node = parse_definition(pr.segment_definition(matrix["skus"]["traffic_driver"], matrix["period"]))
    assert node.type == "orders"
    assert node.sku == ["T"]


@pytest.mark.parametrize("period", ["2025-13", "2025-Q5", "yesterday", "last0", "", "0001-01", "9999-Q4"])
def test_bad_periods_name_the_field(period: str) -> None:
    with pytest.raises(InvalidArgumentError, match="period"):
        pr.parse_period(period, pr.date(2025, 3, 31))


def test_periods() -> None:
    last = pr.date(2025, 3, 31)
    assert pr.parse_period("2025-Q1", last).end == pr.date(2025, 3, 31)
    assert pr.parse_period("2024-12", last).end == pr.date(2024, 12, 31)
    assert pr.parse_period("last7", last).start == pr.date(2025, 3, 25)
    assert pr.parse_period("2024", last).previous().start == pr.date(2022, 12, 31)  # 366 days before
    with pytest.raises(InvalidArgumentError, match="long_tail_share"):
        pr.RoleRules(long_tail_share=2.0).check()


def test_a_catalogue_without_launch_dates_or_costs(tmp_path: Path) -> None:
    """Launch dates and costs are optional in an import: then nothing is new and nothing is a
    profit maker, and the matrix still answers."""
    bare = "\n".join(",".join(line.split(",")[:4]) for line in PRODUCTS.strip().splitlines()) + "\n"
    con = connect(_shop(tmp_path, bare))
    try:
        m = pr.roles(con, "2025-03", RULES)
    finally:
        con.disconnect()
    assert m["counts"]["profit_maker"] == 0
    assert m["references"]["shop_margin_rate"] is None
    assert all(i["margin"] is None for i in m["items"])
    assert _item(m, "N")["role"] == "potential"  # more orders than before (none), converting well
