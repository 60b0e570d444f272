"""Segment conditions of type ``funnel`` (the funnel page's drill-down) on a real DuckDB warehouse:
the customers who got exactly as far as a step, worked out by hand, and the same as the funnel's
own entrants (the Ibis expression other engines run)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, cast

import pytest
from ibis.backends import BaseBackend
from tests.tiny_warehouse import copy_to_spark, make_warehouse

from growthwheel.insight.funnels import DEFAULT_STEPS, funnel_entrants, funnel_members, funnel_with_stops
from growthwheel.segments.compile import Context, Sources, load_sources, member_ids
from growthwheel.segments.definition import SegmentDefinitionError, parse_definition

START, END = date(2024, 1, 1), date(2024, 1, 31)
CTX = Context(as_of=date(2024, 3, 1), timezone="UTC", currency_exponent=2)


def _event(n: int, kind: str, at: str, customer: str | None, anonymous: str | None) -> dict[str, Any]:
    when = datetime.fromisoformat(at)
    return {"event_id": f"e{n:03d}", "type": kind, "occurred_at": when, "event_date": when.date(),
            "customer_id": customer, "anonymous_id": anonymous}


@pytest.fixture(scope="module")
def shop() -> BaseBackend:
    """Customers c1 … c5 and their browsing in January 2024 (plus one anonymous visitor)."""
    rows = [
        # c1 browses on device d1 anonymously, signs in at checkout and buys: all four steps.
        ("view", "2024-01-02 10:00:00", None, "d1"), ("add_to_cart", "2024-01-02 10:05:00", None, "d1"),
        ("checkout", "2024-01-02 10:10:00", "c1", "d1"), ("purchase", "2024-01-02 10:12:00", "c1", "d1"),
        # c2 adds to cart and leaves: stops at step 2.
        ("view", "2024-01-03 09:00:00", "c2", None), ("add_to_cart", "2024-01-03 09:05:00", "c2", None),
        # c3 only views: stops at step 1.
        ("view", "2024-01-04 12:00:00", "c3", None),
        # c4 reaches checkout, but the purchase comes 15 days later (past the 14-day window).
        ("view", "2024-01-05 08:00:00", "c4", None), ("add_to_cart", "2024-01-05 08:01:00", "c4", None),
        ("checkout", "2024-01-05 08:02:00", "c4", None), ("purchase", "2024-01-20 08:03:00", "c4", None),
        # c5 viewed before the range: not an entrant.
        ("view", "2023-12-30 08:00:00", "c5", None), ("add_to_cart", "2023-12-30 08:01:00", "c5", None),
        # an anonymous visitor (never signed in) stops at step 2: counted, but nobody to list.
        ("view", "2024-01-06 08:00:00", None, "d9"), ("add_to_cart", "2024-01-06 08:01:00", None, "d9"),
    ]
    return cast(BaseBackend, make_warehouse({
        "events": [_event(i, *r) for i, r in enumerate(rows, start=1)],
        "customers": [{"customer_id": f"c{i}"} for i in range(1, 6)],
    }))


def funnel(reached: int, exact: bool = True, **extra: Any) -> dict[str, Any]:
    return {"type": "funnel", "steps": list(DEFAULT_STEPS), "window_days": 14,
            "from": START.isoformat(), "to": END.isoformat(), "reached": reached, "exact": exact,
            **extra}


def matches(backend: BaseBackend, definition: Any, *, loaded: bool = True) -> set[str]:
    node = parse_definition(definition)
    sources = load_sources(backend, node, CTX.as_of)
    if not loaded:  # sources built without the funnels: the Ibis expression is compiled instead
        sources = Sources(**{**sources.__dict__, "funnels": {}})
    return {r["customer_id"] for r in member_ids(node, sources, CTX).to_pyarrow().to_pylist()}


def test_customers_who_stopped_at_each_step(shop: BaseBackend) -> None:
    assert matches(shop, funnel(1)) == {"c3"}
    assert matches(shop, funnel(2)) == {"c2"}  # the anonymous d9 stopped there too: not listed
    assert matches(shop, funnel(3)) == {"c4"}
    assert matches(shop, funnel(4)) == {"c1"}  # the browsing on d1 before sign-in counts for c1
    assert matches(shop, funnel(2, exact=False)) == {"c1", "c2", "c4"}
    assert matches(shop, funnel(1, exact=False)) == {"c1", "c2", "c3", "c4"}
    # c4's purchase counts with a 16-day window
    assert matches(shop, funnel(4, window_days=16)) == {"c1", "c4"}
    # combined with other conditions like any other
    assert matches(shop, {"not": funnel(1, exact=False)}) == {"c5"}


def test_the_in_memory_path_equals_the_ibis_expression_and_the_page_counts(shop: BaseBackend) -> None:
    events = shop.table("events")
    entrants = funnel_entrants(events, DEFAULT_STEPS, start=START, end=END).execute()
    frame, stops = funnel_with_stops(events, DEFAULT_STEPS, start=START, end=END)
    assert list(frame["entrants"]) == [5, 4, 2, 1]  # c1, c2, c3, c4 and d9
    for k in range(1, 5):
        reference = {a for a in entrants[entrants.steps_reached == k].actor if not a.startswith("anon:")}
        assert matches(shop, funnel(k)) == reference == matches(shop, funnel(k), loaded=False)
        assert stops[k - 1] == len(reference)
        listed = funnel_members(events, DEFAULT_STEPS, reached=k, start=START, end=END)
        assert set(listed.to_pyarrow().column("customer_id").to_pylist()) == reference


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reached": 5}, "reached is a step number, 1 to 4"),
        ({"reached": 0}, "reached"),
        ({"steps": ["view"]}, "steps"),
        ({"steps": ["view", " "]}, "not blank"),
        ({"from": "2024-02-01"}, "is after"),
        ({"window_days": 0}, "window_days"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_funnel_condition_names_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SegmentDefinitionError, match=message):
        parse_definition({**funnel(1), **change})


def test_funnel_members_checks_the_step(shop: BaseBackend) -> None:
    from growthwheel.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        funnel_members(shop.table("events"), DEFAULT_STEPS, reached=9, window=timedelta(days=1))


@pytest.mark.spark
def test_on_spark_the_ibis_path_gives_the_same_customers(shop: BaseBackend, spark_session: Any) -> None:
    """Spark has no in-memory path: the funnel condition and the page's counts are the Ibis
    expression there, and must give what DuckDB's in-memory path gives."""
    on_spark = copy_to_spark(spark_session, shop, ["events"]).table("events")
    here = shop.table("events")
    frame, stops = funnel_with_stops(on_spark, DEFAULT_STEPS, start=START, end=END)
    frame_here, stops_here = funnel_with_stops(here, DEFAULT_STEPS, start=START, end=END)
    assert stops == stops_here == [1, 1, 1, 1]
    assert list(frame["entrants"]) == list(frame_here["entrants"])
    for k in range(1, 5):
        for exact in (True, False):
            got = funnel_members(on_spark, DEFAULT_STEPS, reached=k, exact=exact, start=START, end=END)
            want = funnel_members(here, DEFAULT_STEPS, reached=k, exact=exact, start=START, end=END)
            assert sorted(got.to_pyarrow().column("customer_id").to_pylist()) == sorted(
                want.to_pyarrow().column("customer_id").to_pylist()), (k, exact)
