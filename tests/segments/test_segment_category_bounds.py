"""A category condition bounds the lines' own categories by a range before the exact test
(``segments.compile._category_bounds``): the range holds every name the exact test accepts, and
the members found are those worked out by hand, each line counted once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, cast

import ibis
import pytest
from ibis.backends import BaseBackend
from tests.tiny_warehouse import copy_to_spark, make_warehouse

from growthwheel.segments.compile import Context, _category_bounds, _category_match, load_sources, member_ids
from growthwheel.segments.definition import parse_definition

VALUES = [
    "Tea", "Tea/Green", "Tea/绿茶", "Tea0", "Tea ", "Tea-x", "Tea.", "TeaTime", "Te", "Teb", "tea",
    "Beauty", "Beauty/Skin/Care", "Beauty0", "Beautz", "茶", "茶/绿茶", "茶0", "茶叶", "", None,
]


@pytest.mark.parametrize("categories", [["Tea"], ["Tea", "Beauty/Skin"], ["茶"], ["Beauty", "Tea", "茶"]])
def test_the_range_holds_every_name_the_exact_test_accepts(categories: list[str]) -> None:
    con = ibis.duckdb.connect()
    t = ibis.memtable({"category": VALUES}, schema={"category": "string"})
    out = con.to_pyarrow(t.select(
        "category",
        match=_category_match(t.category, categories).fill_null(False),
        bounded=_category_bounds(t.category, categories).fill_null(False),
    )).to_pylist()
    matched = {r["category"] for r in out if r["match"]}
    assert matched  # the cases mean something
    assert all(r["bounded"] for r in out if r["match"]), out
    assert not any(r["bounded"] for r in out if r["category"] is None)


CTX = Context(as_of=date(2025, 1, 31), timezone="UTC", currency_exponent=2)


@pytest.fixture(scope="module")
def shop() -> BaseBackend:
    """Lines whose own category is near the bounds, lines without a SKU, a line whose own
    category and product are both in the category (counted once)."""
    day = datetime(2025, 1, 20, 12, tzinfo=UTC).replace(tzinfo=None)
    orders = [{"order_id": f"A{i}", "customer_id": who, "ordered_at": day, "order_date": day.date(),
               "status": "paid", "total_amount": 100} for i, who in enumerate("abcdef", 1)]
    lines = [
        # a: own category matches and the product is a tea too: 3 units, once
        {"order_id": "A1", "line_no": 1, "sku": "P1", "category": "Tea/Green", "quantity": 3},
        # b: no SKU, own category a tea
        {"order_id": "A2", "line_no": 1, "sku": None, "category": "Tea", "quantity": 2},
        # c: own categories inside the range but not teas ("Tea " and "Tea-x")
        {"order_id": "A3", "line_no": 1, "sku": "P2", "category": "Tea ", "quantity": 5},
        {"order_id": "A3", "line_no": 2, "sku": None, "category": "Tea-x", "quantity": 5},
        # d: a tea product, but the line's own category says otherwise
        {"order_id": "A4", "line_no": 1, "sku": "P1", "category": "Gift", "quantity": 7},
        # e: a tea product without an own category, and a Unicode sub-category of its own
        {"order_id": "A5", "line_no": 1, "sku": "P1", "category": None, "quantity": 1},
        {"order_id": "A5", "line_no": 2, "sku": "P2", "category": "Tea/绿茶", "quantity": 4},
        # f: nothing to do with tea
        {"order_id": "A6", "line_no": 1, "sku": "P2", "category": None, "quantity": 9},
    ]
    return cast(BaseBackend, make_warehouse({
        "customers": [{"customer_id": c} for c in "abcdef"],
        "products": [{"sku": "P1", "name": "Green", "category": "Tea/Green"},
                     {"sku": "P2", "name": "Cup", "category": "Teaware"}],
        "orders": orders,
        "order_lines": lines,
    }))


def units(op: str, value: int, categories: list[str]) -> dict[str, Any]:
    return {"type": "orders", "measure": "units", "op": op, "value": value, "category": categories}


CASES: list[tuple[dict[str, Any], set[str]]] = [
    (units(">=", 1, ["Tea"]), {"a", "b", "e"}),
    (units("=", 3, ["Tea"]), {"a"}),  # the line in its own category and its product's: once
    (units("=", 5, ["Tea"]), {"e"}),  # 1 + 4
    (units(">=", 1, ["Gift"]), {"d"}),
    (units(">=", 1, ["Teaware"]), {"f"}),  # c's lines say "Tea " and "Tea-x": not Teaware
    (units(">=", 1, ["Gift", "Tea"]), {"a", "b", "d", "e"}),
    (units("=", 0, ["Tea"]), {"c", "d", "f"}),
]


@pytest.mark.parametrize(("definition", "expected"), CASES)
def test_members_worked_out_by_hand(shop: BaseBackend, definition: dict[str, Any],
                                    expected: set[str]) -> None:
    node = parse_definition(definition)
    got = member_ids(node, load_sources(shop, node, CTX.as_of), CTX).to_pyarrow()
    assert sorted(got.column("customer_id").to_pylist()) == sorted(expected)


@pytest.mark.spark
def test_on_spark_the_same_members(shop: BaseBackend, spark_session: Any) -> None:
    on_spark = copy_to_spark(spark_session, shop,
                             ["customers", "orders", "order_lines", "products", "events"])
    for definition, expected in CASES:
        node = parse_definition(definition)
        got = member_ids(node, load_sources(on_spark, node, CTX.as_of), CTX).to_pyarrow()
        assert sorted(got.column("customer_id").to_pylist()) == sorted(expected), definition
