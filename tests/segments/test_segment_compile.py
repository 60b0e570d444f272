"""Definitions compiled to Ibis and run on the tea shop (see conftest.py); answers worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import ibis.expr.types as ir
import pytest
from ibis.backends import BaseBackend
from tea_shop import AS_OF, EVERYONE, doc_examples

from growthwheel.config import Settings
from growthwheel.errors import NoDataError
from growthwheel.segments import scores
from growthwheel.segments.compile import Context, load_sources, member_ids, segment, window_days
from growthwheel.segments.definition import SegmentDefinitionError, Window, parse_definition
from growthwheel.segments.service import default_as_of, preview
from growthwheel.warehouse import connect


@pytest.fixture(scope="module")
def shop(tea_shop_template: Path) -> Iterator[BaseBackend]:
    """The tea shop, read-only; score conditions read its hand-made ``customer_scores`` table."""
    backend = connect(Settings(data_dir=tea_shop_template, database_url=None))
    scores.set_score_resolver(scores.warehouse_scores)
    yield backend
    scores.set_score_resolver(None)
    backend.disconnect()


def matches(backend: BaseBackend, definition: Any, as_of: date = AS_OF) -> set[str]:
    node = parse_definition(definition)
    ctx = Context(as_of=as_of, timezone="Asia/Shanghai", currency_exponent=2)
    rows = member_ids(node, load_sources(backend, node, as_of), ctx).to_pyarrow().to_pylist()
    ids = [r["customer_id"] for r in rows]
    assert len(ids) == len(set(ids))
    return set(ids)


def attr(field: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    cond = {"type": "attribute", "field": field, "op": op, **extra}
    return cond if value is None else {**cond, "value": value}


def orders(op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "orders", "op": op, "value": value, **extra}


def events(event: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "events", "event": event, "op": op, "value": value, **extra}


DOC_ANSWERS = {
    "bought-tea-30d": {"c1", "c3"},
    "viewed-not-bought": {"c2", "c4"},
    "tea-spend-90d": {"c3"},
    "never-bought": {"c4", "c5"},
    "nested": {"c1"},
    "recent-signups": {"c1", "c3"},
    "vip-tea": {"c1"},
    "champions-loyal": {"c1", "c3"},
    "valuable-not-at-risk": {"c1", "c3"},
    "last-month-buyers": {"c1", "c3", "c6"},
}


@pytest.mark.parametrize("name", sorted(DOC_ANSWERS))
def test_the_documented_examples_find_who_the_docs_say(shop: BaseBackend, name: str) -> None:
    assert matches(shop, doc_examples()[name]) == DOC_ANSWERS[name]


@pytest.mark.parametrize(
    ("window", "first", "last"),
    [
        ({"last": 30}, date(2025, 3, 2), date(2025, 3, 31)),
        ({"last": 1}, date(2025, 3, 31), date(2025, 3, 31)),
        ({"last": 2, "unit": "weeks"}, date(2025, 3, 18), date(2025, 3, 31)),
        ({"last": 1, "unit": "months"}, date(2025, 3, 1), date(2025, 3, 31)),
        ({"last": 12, "unit": "months"}, date(2024, 4, 1), date(2025, 3, 31)),
        # never after as_of:
        ({"from": "2025-01-01", "to": "2025-12-31"}, date(2025, 1, 1), date(2025, 3, 31)),
        ({"from": "2025-02-01"}, date(2025, 2, 1), date(2025, 3, 31)),
        ({"to": "2025-02-01"}, None, date(2025, 2, 1)),
    ],
)
def test_windows_end_on_as_of(window: dict[str, Any], first: date | None, last: date) -> None:
    assert window_days(Window.model_validate(window), AS_OF) == (first, last)


def test_a_month_back_from_a_long_month_end_is_clamped() -> None:
    # 2025-03-31 minus one month is 2025-02-28 (no 02-31); the window starts the day after.
    month = Window(last=1, unit="months")
    assert window_days(month, date(2025, 3, 30)) == (date(2025, 3, 1), date(2025, 3, 30))
    assert window_days(month, date(2024, 3, 31)) == (date(2024, 3, 1), date(2024, 3, 31))


def test_profile_attributes(shop: BaseBackend) -> None:
    assert matches(shop, attr("city", "in", ["上海", "杭州"])) == {"c1", "c3", "c4"}
    assert matches(shop, attr("name", "contains", "ALI")) == {"c1"}  # case-insensitive
    assert matches(shop, attr("accepts_marketing", "equals", True)) == {"c1", "c3"}
    assert matches(shop, attr("accepts_marketing", "equals", False)) == {"c2"}
    assert matches(shop, attr("email", "is_set")) == {"c1", "c2", "c4"}
    assert matches(shop, attr("phone", "is_set")) == {"c1", "c3"}
    assert matches(shop, attr("birthday", "equals", "1990-05-01")) == {"c1"}
    assert matches(shop, attr("channel", "equals", "direct")) == {"c4", "c5"}


def test_not_is_the_complement_including_unknown_values(shop: BaseBackend) -> None:
    # c5 has a city that is not 上海; c6 (known only from orders) has no city at all: both are "not in 上海".
    assert matches(shop, {"not": attr("city", "equals", "上海")}) == {"c2", "c4", "c5", "c6"}
    assert matches(shop, {"all": []}) == EVERYONE
    assert matches(shop, {"not": {"all": []}}) == set()


def test_signup_windows_use_shop_days_not_utc_days(shop: BaseBackend) -> None:
    # Carol signed up on 2025-03-02 at 01:30 shop time, which is still 2025-03-01 in UTC.
    assert matches(shop, attr("signed_up_at", "between", ["2025-03-02", "2025-03-02"])) == {"c3"}
    assert matches(shop, attr("signed_up_at", "between", ["2025-03-01", "2025-03-01"])) == set()
    assert matches(shop, attr("signed_up_at", "between", [None, "2024-12-31"])) == {"c2", "c4"}
    assert matches(shop, attr("signed_up_at", "within", window={"last": 29})) == {"c1"}  # 03-03 .. 03-31


def test_extreme_windows_and_dates_are_open_ends(shop: BaseBackend) -> None:
    assert window_days(Window(last=36_500, unit="months"), AS_OF) == (None, AS_OF)
    assert window_days(Window(last=36_500, unit="weeks"), AS_OF) == (date(1325, 9, 18), AS_OF)
    everything = attr("signed_up_at", "between", ["0001-01-01", "9999-12-31"])
    assert matches(shop, everything) == {"c1", "c2", "c3", "c4"}  # c5 and c6 have no sign-up time
    ages = {"last": 36_500, "unit": "months"}
    assert matches(shop, orders(">=", 1, window=ages)) == {"c1", "c2", "c3", "c6"}


def test_orders_count_only_paid_orders_up_to_as_of(shop: BaseBackend) -> None:
    # Bob's order of 03-10 was cancelled; Dave's of 04-02 is after as_of; c6's refunded order was paid.
    assert matches(shop, orders(">=", 1, window={"last": 30})) == {"c1", "c3", "c6"}
    assert matches(shop, orders(">=", 1, window={"last": 30}), as_of=date(2025, 4, 25)) == {"c3", "c4"}
    assert matches(shop, orders("<", 2)) == {"c2", "c4", "c5", "c6"}  # holds at 0: the never-buyers too
    assert matches(shop, orders("between", [1, 1])) == {"c2", "c6"}
    assert matches(shop, orders("!=", 1)) == {"c1", "c3", "c4", "c5"}


def test_order_amounts_and_units(shop: BaseBackend) -> None:
    # All-time goods after discounts: c1 160 + 30, c2 120, c3 90 + 20, c6 10.
    assert matches(shop, orders(">", "150.00", measure="amount")) == {"c1"}
    assert matches(shop, orders("between", ["10", "120"], measure="amount")) == {"c2", "c3", "c6"}
    assert matches(shop, orders(">=", "0.01", measure="amount")) == {"c1", "c2", "c3", "c6"}
    assert matches(shop, orders(">=", 3, measure="units", sku=["TEA2"])) == {"c3"}
    with pytest.raises(SegmentDefinitionError, match="more decimals"):
        matches(shop, orders(">=", "1.005", measure="amount"))


def test_order_lines_by_category(shop: BaseBackend) -> None:
    # Tea covers Tea/Green and Tea/Oolong.
    assert matches(shop, orders(">=", 2, category=["Tea"])) == {"c1", "c3"}
    assert matches(shop, orders("=", 1, category=["Tea/Green"])) == {"c1", "c3"}
    assert matches(shop, orders(">=", 1, category=["Tea/Gr"])) == set()  # a prefix is not a parent
    assert matches(shop, orders(">=", 1, category=["Teaware"])) == {"c1", "c2"}
    # Lines of Tea in the last 90 days: c1 40.00 (O1) + 30.00 (O2) = 70.00; c3 90.00 + 20.00.
    assert matches(shop, orders("between", ["70", "70"], measure="amount", category=["Tea"],
                                window={"last": 90})) == {"c1"}


def test_events(shop: BaseBackend) -> None:
    assert matches(shop, events("view", ">=", 1, category=["Teaware"])) == {"c2", "c5"}
    assert matches(shop, events("add_to_cart", ">", 0)) == {"c4"}
    # The anonymous view of 03-29 belongs to nobody; c4's purchase event of 04-02 is after as_of.
    assert matches(shop, events("view", ">", 0, window={"from": "2025-03-29"})) == {"c3"}
    assert matches(shop, events("purchase", ">", 0)) == {"c1", "c3"}
    assert matches(shop, events("view", "=", 2, sku=["TEA1", "CUP"])) == {"c2"}


def test_tags_imported_with_the_customers(shop: BaseBackend) -> None:
    assert matches(shop, {"type": "tag", "tags": ["tea"]}) == {"c1", "c3"}  # "vip; tea" is trimmed
    assert matches(shop, {"type": "tag", "tags": ["vip", "tea"], "match": "any"}) == {"c1", "c3"}
    assert matches(shop, {"type": "tag", "tags": ["vip", "tea"], "match": "all"}) == {"c1"}
    assert matches(shop, {"type": "tag", "tags": ["VIP"]}) == set()  # tags are exact


def test_scores_from_a_hand_made_table(shop: BaseBackend) -> None:
    def score(field: str, op: str, value: Any) -> dict[str, Any]:
        return {"type": "score", "field": field, "op": op, "value": value}

    assert matches(shop, score("rfm_score", ">=", 400)) == {"c1", "c3"}
    assert matches(shop, score("rfm_score", "equals", "555")) == {"c1"}  # text against an integer column
    assert matches(shop, score("clv", "between", ["10", "300"])) == {"c2", "c3"}  # 12.00 and 300.00
    # Customers without a score (c4, c5) do not match.
    assert matches(shop, score("lifecycle_stage", "!=", "churned")) == {"c1", "c2", "c3"}
    with pytest.raises(NoDataError, match="no column 'p_alive'"):
        matches(shop, score("p_alive", ">", "0.5"))


def test_score_conditions_without_scores_say_so(shop: BaseBackend) -> None:
    scores.set_score_resolver(lambda backend, as_of: None)
    try:
        with pytest.raises(NoDataError, match="there are none"):
            matches(shop, {"type": "score", "field": "clv", "op": ">", "value": 1})
        assert matches(shop, {"type": "tag", "tags": ["vip"]}) == {"c1"}  # other kinds never ask
    finally:
        scores.set_score_resolver(scores.warehouse_scores)


def test_the_insight_resolver_gives_rfm_and_lifecycle_as_of_the_day(shop: BaseBackend) -> None:
    from growthwheel.insight import lifecycle, rfm

    scores.set_score_resolver(None)  # the default: insight.rfm + insight.lifecycle + customer_scores
    try:
        o = shop.table("orders")
        staged = lifecycle.stages(o, AS_OF, lifecycle.thresholds_for(o, end=AS_OF)).to_pyarrow().to_pylist()
        for stage in {row["stage"] for row in staged}:
            want = {row["customer_id"] for row in staged if row["stage"] == stage}
            got = matches(shop, {"type": "score", "field": "lifecycle_stage", "op": "equals", "value": stage})
            assert got == want, stage
        rows = rfm.rfm_scores(o, AS_OF).to_pyarrow().to_pylist()
        best = {row["customer_id"] for row in rows if row["rfm"] >= "400"}
        assert matches(shop, {"type": "score", "field": "rfm_score", "op": ">=", "value": "400"}) == best
        # clv still comes from customer_scores (in minor units: 10.00 = 1000).
        clv = {"type": "score", "field": "clv", "op": ">=", "value": "10"}
        assert matches(shop, clv) == {"c1", "c2", "c3"}
    finally:
        scores.set_score_resolver(scores.warehouse_scores)


HOSTILE = [
    "'; DROP TABLE customers; --",
    "x' OR '1'='1",
    '") OR TRUE --',
    "上海\x00' OR 1=1",
    "\\' OR 1=1 /*",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_values_are_only_literals(shop: BaseBackend, text: str) -> None:
    assert matches(shop, attr("city", "equals", text)) == set()
    assert matches(shop, attr("customer_id", "in", ["c1", text])) == {"c1"}
    assert matches(shop, {"not": attr("name", "contains", text)}) == EVERYONE
    assert matches(shop, {"type": "tag", "tags": [text[:60]]}) == set()
    assert matches(shop, orders(">=", 1, category=[text], sku=[text])) == set()
    assert matches(shop, events(text, "=", 0)) == EVERYONE
    assert shop.table("customers").count().execute() == 5


def test_like_wildcards_are_plain_characters(shop: BaseBackend) -> None:
    assert matches(shop, attr("city", "contains", "%")) == {"c5"}
    assert matches(shop, attr("city", "contains", "0%_o")) == {"c5"}
    assert matches(shop, attr("city", "contains", "_")) == {"c5"}


def test_preview_counts_and_samples_with_masking(shop: BaseBackend) -> None:
    ctx = Context(as_of=AS_OF)
    full = preview(shop, doc_examples()["recent-signups"], ctx, sample=10, can_see_pii=True)
    assert (full.count, full.as_of) == (2, AS_OF)
    assert {s.customer_id for s in full.sample} == {"c1", "c3"}
    alice = next(s for s in full.sample if s.customer_id == "c1")
    assert (alice.email, alice.phone) == ("alice@example.com", "13800138000")
    masked = preview(shop, doc_examples()["recent-signups"], ctx, sample=10, can_see_pii=False)
    alice = next(s for s in masked.sample if s.customer_id == "c1")
    assert (alice.email, alice.phone) == ("a***@example.com", "138****8000")
    assert [s.customer_id for s in masked.sample] == [s.customer_id for s in full.sample]  # stable order
    one = preview(shop, {"all": []}, ctx, sample=1)
    assert (one.count, len(one.sample)) == (6, 1)
    assert preview(shop, {"all": []}, ctx, sample=0).sample == []



def test_preview_reads_count_and_sample_from_one_run_of_the_segment_and_drops_it(
    shop: BaseBackend, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On DuckDB the members are kept in a temporary table for the count and the sample: the same
    answer as running the segment's query twice, and nothing is left behind."""
    cached: list[object] = []
    real_cache = ir.Table.cache

    def cache(table: ir.Table) -> ir.Table:  # the real cache, counted
        cached.append(table)
        return real_cache(table)

    monkeypatch.setattr(ir.Table, "cache", cache)
    ctx = Context(as_of=AS_OF)
    temporary = "SELECT count(*) FROM duckdb_tables() WHERE temporary"
    before = shop.raw_sql(temporary).fetchone()
    for definition, size in ((doc_examples()["recent-signups"], 10), ({"all": []}, 3), ({"all": []}, 6)):
        node = parse_definition(definition)
        table = segment(node, load_sources(shop, node, AS_OF), ctx)
        twice = table.count().execute(), table.order_by([table.customer_id.hash(), table.customer_id]).limit(
            size).customer_id.execute().tolist()
        found = preview(shop, definition, ctx, sample=size)
        assert (found.count, [s.customer_id for s in found.sample]) == twice
    assert len(cached) == 3  # one temporary table per preview with a sample
    assert shop.raw_sql(temporary).fetchone() == before == (0,)
    assert preview(shop, {"all": []}, ctx, sample=0).count == 6  # a count alone: no temporary table
    assert len(cached) == 3

def test_default_as_of(tea_shop: Settings) -> None:
    backend = connect(tea_shop)
    try:
        today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        assert default_as_of(tea_shop, backend) in (today, today.fromordinal(today.toordinal() - 1))
        (tea_shop.data_dir / "demo.json").write_text(json.dumps({"customers": 1}), encoding="utf-8")
        assert default_as_of(tea_shop, backend) == date(2025, 4, 2)  # the demo shop: its last order day
    finally:
        backend.disconnect()
