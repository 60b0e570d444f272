"""A definition that requires some activity is evaluated over the customers who have it
(``segments.compile.segment`` with ``narrow``): the same rows as filtering every customer, on the
tea shop and on a tiny shop with the awkward ids (a buyer without a customer row, an id seen only
in events, a customer with two tags), answers also worked out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import ibis
import pytest
from ibis.backends import BaseBackend
from tea_shop import AS_OF, doc_examples
from tests.tiny_warehouse import make_warehouse

from growthwheel.config import Settings
from growthwheel.segments import scores
from growthwheel.segments.compile import Context, load_sources, member_ids, segment
from growthwheel.segments.definition import parse_definition
from growthwheel.warehouse import connect

TEA_CTX = Context(as_of=AS_OF, timezone="Asia/Shanghai", currency_exponent=2)


@pytest.fixture(scope="module")
def tea(tea_shop_template: Path) -> Iterator[BaseBackend]:
    """The tea shop, read-only, with its hand-made score table."""
    backend = connect(Settings(data_dir=tea_shop_template, database_url=None))
    scores.set_score_resolver(scores.warehouse_scores)
    yield backend
    scores.set_score_resolver(None)
    backend.disconnect()


def both(backend: BaseBackend, definition: Any, ctx: Context) -> tuple[list[Any], list[Any], str]:
    """(rows narrowed, rows of the reference, SQL of the narrowed query): every column, sorted."""
    node = parse_definition(definition)
    sources = load_sources(backend, node, ctx.as_of)
    narrowed = segment(node, sources, ctx)
    reference = segment(node, sources, ctx, narrow=False)

    def rows(table: Any) -> list[Any]:
        return sorted((tuple(sorted(r.items())) for r in table.to_pyarrow().to_pylist()), key=repr)

    return rows(narrowed), rows(reference), str(ibis.to_sql(narrowed, dialect="duckdb"))


def ids(rows: list[Any]) -> list[str]:
    return sorted(dict(r)["customer_id"] for r in rows)


def orders(op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "orders", "op": op, "value": value, **extra}


def events(event: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "events", "event": event, "op": op, "value": value, **extra}


def attr(field: str, op: str, value: Any = None) -> dict[str, Any]:
    cond = {"type": "attribute", "field": field, "op": op}
    return cond if value is None else {**cond, "value": value}


TEA_CASES: dict[str, tuple[Any, set[str]]] = {
    # c6 has no customer row: a refunded order (paid) on 03-15; its attributes are null.
    "buyers without a channel": ({"all": [orders(">=", 1), {"not": attr("channel", "is_set")}]}, {"c6"}),
    "buyers": (orders(">=", 1), {"c1", "c2", "c3", "c6"}),
    "buyers who viewed": ({"all": [orders(">=", 1), events("view", ">=", 1)]}, {"c1", "c2", "c3"}),
    "nested all": ({"all": [{"all": [orders(">=", 1), attr("city", "equals", "上海")]},
                            events("view", ">=", 1, window={"last": 30})]}, {"c1", "c3"}),
    "tea lines and a tag": ({"all": [orders(">=", 1, category=["Tea"]),
                                     {"type": "tag", "tags": ["tea"]}]}, {"c1", "c3"}),
    "a score, with an orphan": ({"all": [{"type": "score", "field": "rfm_score", "op": "<", "value": 300},
                                         orders(">=", 1)]}, {"c2", "c6"}),
    "both tags": ({"type": "tag", "tags": ["vip", "tea"], "match": "all"}, {"c1"}),
    "not a buyer": ({"all": [{"not": orders(">=", 1)}, events("view", ">=", 1)]}, {"c4", "c5"}),
    # holds at zero, or an "any": not narrowed (the reference path)
    "at most one order": ({"all": [orders("<=", 1), attr("city", "equals", "北京")]}, {"c2"}),
    "any": ({"any": [orders(">=", 2), events("add_to_cart", ">=", 1)]}, {"c1", "c3", "c4"}),
}


@pytest.mark.parametrize("name", sorted(TEA_CASES))
def test_narrowed_rows_equal_every_customer_filtered_on_the_tea_shop(tea: BaseBackend, name: str) -> None:
    definition, expected = TEA_CASES[name]
    narrowed, reference, sql = both(tea, definition, TEA_CTX)
    assert narrowed == reference
    assert set(ids(narrowed)) == expected
    assert len(ids(narrowed)) == len(expected)  # each once
    narrows = "SEMI JOIN" in sql
    assert narrows == (name not in ("at most one order", "any"))


@pytest.mark.parametrize("name", sorted(doc_examples()))
def test_the_documented_examples_give_the_same_rows_both_ways(tea: BaseBackend, name: str) -> None:
    narrowed, reference, _ = both(tea, doc_examples()[name], TEA_CTX)
    assert narrowed == reference


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
def test_narrowed_rows_equal_every_customer_filtered_on_awkward_ids(tiny: BaseBackend, case: int) -> None:
    definition, expected = TINY_CASES[case]
    narrowed, reference, sql = both(tiny, definition, TINY_CTX)
    assert "SEMI JOIN" in sql
    assert narrowed == reference
    assert ids(narrowed) == sorted(expected)
    node = parse_definition(definition)
    listed = member_ids(node, load_sources(tiny, node, TINY_CTX.as_of), TINY_CTX).to_pyarrow()
    assert sorted(listed.column("customer_id").to_pylist()) == sorted(expected)
