"""Order-line category conditions keep only the lines that can be in the category before the exact
join with every product (``segments.compile``): answers worked out by hand on a tiny shop whose
lines carry their own category or none (a line's own category wins over its product's), with the
awkward ids around them (a buyer without a customer row, an id seen only in events, a customer
with two tags, an order without a customer)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, cast

import pytest
from ibis.backends import BaseBackend
from tests.tiny_warehouse import copy_to_spark, make_warehouse

from growthwheel.segments.compile import Context, load_sources, member_ids, segment
from growthwheel.segments.definition import parse_definition


def orders(op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "orders", "op": op, "value": value, **extra}


def events(event: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "events", "event": event, "op": op, "value": value, **extra}


def attr(field: str, op: str, value: Any = None) -> dict[str, Any]:
    cond = {"type": "attribute", "field": field, "op": op}
    return cond if value is None else {**cond, "value": value}


TINY_CTX = Context(as_of=date(2025, 1, 31), timezone="UTC", currency_exponent=2)


@pytest.fixture(scope="module")
def tiny() -> BaseBackend:
    """k1, k2 customers; o1 buys without a customer row (twice); g1 is seen only in events;
    k2 carries two tags; one order has no customer; lines with and without their own category."""
    day = datetime(2025, 1, 20, 12, tzinfo=UTC).replace(tzinfo=None)  # naive UTC, as stored
    order_rows = [
        {"order_id": "A1", "customer_id": "k1", "ordered_at": day, "order_date": day.date(),
         "status": "paid", "total_amount": 1000},
        {"order_id": "A2", "customer_id": "o1", "ordered_at": day, "order_date": day.date(),
         "status": "paid", "total_amount": 500},
        {"order_id": "A3", "customer_id": "o1", "ordered_at": day, "order_date": day.date(),
         "status": "paid", "total_amount": 700},
        {"order_id": "A4", "customer_id": None, "ordered_at": day, "order_date": day.date(),
         "status": "paid", "total_amount": 900},
        {"order_id": "A5", "customer_id": "k2", "ordered_at": day, "order_date": day.date(),
         "status": "cancelled", "total_amount": 300},
    ]
    event_rows = [
        {"event_id": f"v{i}", "type": "view", "occurred_at": day, "event_date": day.date(),
         "customer_id": who}
        for i, who in enumerate(["k1", "k1", "o1", "o1", "o1", "g1", "g1", "k2", "k2"])
    ]
    line_rows = [  # a line's own category wins over its product's
        {"order_id": "A1", "line_no": 1, "sku": "P2", "category": "Tea/Black", "quantity": 2,
         "line_total": 1000},
        {"order_id": "A2", "line_no": 1, "sku": "P1", "category": None, "quantity": 1, "line_total": 500},
        {"order_id": "A3", "line_no": 1, "sku": "P1", "category": "Gift", "quantity": 5, "line_total": 700},
        {"order_id": "A4", "line_no": 1, "sku": None, "category": None, "quantity": 1, "line_total": 900},
        {"order_id": "A5", "line_no": 1, "sku": "P1", "category": None, "quantity": 1, "line_total": 300},
    ]
    return cast(BaseBackend, make_warehouse({
        "customers": [{"customer_id": "k1", "channel": "douyin"},
                      {"customer_id": "k2", "channel": "wechat", "tags": "vip;new"}],
        "products": [{"sku": "P1", "name": "Green", "category": "Tea/Green"},
                     {"sku": "P2", "name": "Cup", "category": "Teaware"}],
        "orders": order_rows,
        "order_lines": line_rows,
        "events": event_rows,
    }))


TINY_CASES: list[tuple[Any, set[str]]] = [
    (events("view", ">=", 2), {"k1", "o1", "k2"}),  # g1 viewed twice but is nobody's id
    ({"all": [events("view", ">=", 2), orders(">=", 1)]}, {"k1", "o1"}),
    ({"all": [orders(">=", 2), {"not": attr("channel", "is_set")}]}, {"o1"}),
    ({"all": [orders(">=", 1, measure="amount"), events("view", ">=", 3)]}, {"o1"}),
    ({"all": [{"type": "tag", "tags": ["vip", "new"], "match": "all"}, events("view", ">=", 1)]}, {"k2"}),
    ({"all": [{"type": "tag", "tags": ["vip", "new"]}, orders(">=", 1)]}, set()),
    # categories: A1 is Tea by its own category, A2 by its product's, A3 is a Gift (its own)
    (orders(">=", 1, category=["Tea"]), {"k1", "o1"}),
    (orders(">=", 2, category=["Tea"]), set()),
    (orders(">=", 2, category=["Tea"], measure="units"), {"k1"}),
    ({"all": [orders(">=", 5, category=["Tea"], measure="amount"), events("view", ">=", 3)]}, {"o1"}),
    (orders(">=", 1, category=["Gift", "Teaware"]), {"o1"}),
]


@pytest.mark.parametrize("case", range(len(TINY_CASES)))
def test_members_worked_out_by_hand(tiny: BaseBackend, case: int) -> None:
    definition, expected = TINY_CASES[case]
    node = parse_definition(definition)
    sources = load_sources(tiny, node, TINY_CTX.as_of)
    listed = member_ids(node, sources, TINY_CTX).to_pyarrow().column("customer_id").to_pylist()
    assert sorted(listed) == sorted(expected)  # each once
    rows = segment(node, sources, TINY_CTX).to_pyarrow().to_pylist()
    assert sorted(r["customer_id"] for r in rows) == sorted(expected)
    assert all(r["channel"] is None for r in rows if r["customer_id"] == "o1")  # no customer row


@pytest.mark.spark
def test_on_spark_the_category_conditions_find_the_same_customers(tiny: BaseBackend,
                                                                  spark_session: Any) -> None:
    on_spark = copy_to_spark(spark_session, tiny,
                             ["customers", "orders", "order_lines", "products", "events"])
    for definition, expected in TINY_CASES:
        if "category" not in str(definition):
            continue
        node = parse_definition(definition)
        got = member_ids(node, load_sources(on_spark, node, TINY_CTX.as_of), TINY_CTX).to_pyarrow()
        assert sorted(got.column("customer_id").to_pylist()) == sorted(expected), definition
