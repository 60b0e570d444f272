"""Trigger semantics over a real DuckDB warehouse and pure step decisions (DST-safe waits,
deterministic splits, conditions)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import duckdb
import ibis

from growthwheel.journeys import definition as d
from growthwheel.journeys import engine, triggers
from growthwheel.warehouse.schema import TABLES, ddl


def backend() -> object:
    con = duckdb.connect()
    for name, table in TABLES.items():
        con.execute(ddl(name, table.stored))
    con.execute(
        "INSERT INTO customers (customer_id, birthday) VALUES ('c1', '1990-03-10'), ('leap', '1992-02-29'),"
        " ('none', NULL)"
    )
    con.execute(
        "INSERT INTO events (event_id, type, occurred_at, customer_id) VALUES "
        "('e1', 'add_to_cart', '2025-03-01 10:00', 'c1'), ('e2', 'add_to_cart', '2025-03-01 10:00', 'c2'),"
        " ('e3', 'purchase', '2025-03-01 11:00', 'c2')"
    )
    rows = [
        ("o1", "c1", "2024-10-01"),
        ("o2", "c2", "2025-01-01"),
        ("o3", "c2", "2025-01-21"),
        ("o4", "c3", "2025-01-05"),
        ("o5", "c3", "2025-01-25"),
    ]
    for order_id, customer, day in rows:
        con.execute(
            "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) "
            "VALUES (?, ?, CAST(? AS TIMESTAMP), CAST(? AS DATE), 'paid', 100)",
            [order_id, customer, day, day],
        )
        con.execute(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, line_total) "
            "VALUES (?, 1, 'A', 1, 100)",
            [order_id],
        )
    return ibis.duckdb.from_connection(con)


WINDOW = triggers.Window(datetime(2025, 2, 27, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC), "Asia/Shanghai")


def hits(trig: object, window: triggers.Window = WINDOW) -> set[tuple[str, str]]:
    return {(c.customer_id, c.occurrence) for c in triggers.evaluate_warehouse(backend(), trig, window)}


def test_abandoned_cart_fires_only_without_a_purchase_within_the_hours() -> None:
    trig = d.EventTrigger(kind="event", event="add_to_cart", without="purchase", within_hours=4)
    assert hits(trig) == {("c1", "event:e1")}


def test_birthday_in_shop_time_zone_and_29_february() -> None:
    ten_before = d.DateTrigger(kind="date", attribute="birthday", days_before=10)
    assert hits(ten_before) == {("c1", "birthday:2025")}  # 10 March − 10 days = 28 February
    on_the_day = d.DateTrigger(kind="date", attribute="birthday")
    assert hits(on_the_day) == {("leap", "birthday:2025")}  # 29 February counts as 28 February in 2025


def test_replenishment_learned_from_repeat_intervals_and_set_cycle() -> None:
    # product A: repeat intervals of 20 days (c2, c3) → c2 due 10 Feb, c3 due 14 Feb
    window = triggers.Window(datetime(2025, 2, 12, tzinfo=UTC), datetime(2025, 2, 15, tzinfo=UTC), "UTC")
    learned = d.ReplenishmentTrigger(kind="replenishment", min_repeats=2)
    assert hits(learned, window) == {("c3", "replenish:A:2025-01-25")}
    fixed = d.ReplenishmentTrigger(
        kind="replenishment", cycle_days=23
    )  # c2: 21 Jan + 23 = 13 Feb; c3: 17 Feb (after the window)
    assert hits(fixed, window) == {("c2", "replenish:A:2025-01-21")}


def test_first_and_second_purchase() -> None:
    window = triggers.Window(datetime(2025, 1, 10, tzinfo=UTC), datetime(2025, 1, 30, tzinfo=UTC), "UTC")
    assert hits(d.PurchaseCountTrigger(kind="purchase_count", n=1), window) == set()
    assert hits(d.PurchaseCountTrigger(kind="purchase_count", n=2), window) == {
        ("c2", "purchase:2"),
        ("c3", "purchase:2"),
    }


def _defn(*steps: dict[str, object], start: str = "a") -> d.Definition:
    return d.parse({"trigger": {"kind": "purchase_count", "n": 1}, "start": start, "steps": list(steps)})


def test_wait_until_a_time_of_day_is_dst_safe() -> None:
    defn = _defn({"id": "a", "type": "wait", "until": "02:30", "next": "b"}, {"id": "b", "type": "exit"})
    # New York springs forward on 9 March 2025: 02:30 does not exist, it is read as 03:30 EDT
    before = datetime(2025, 3, 8, 12, 0, tzinfo=UTC)
    decision = engine.decide(
        defn,
        journey_id="j",
        customer_id="c",
        occurrence="o",
        position=engine.Position("a"),
        facts=engine.Facts(),
        now=before,
        timezone="America/New_York",
    )
    assert decision.due_at == datetime(2025, 3, 9, 7, 30, tzinfo=UTC)
    done = engine.decide(
        defn,
        journey_id="j",
        customer_id="c",
        occurrence="o",
        position=engine.Position("a", True, decision.due_at),
        facts=engine.Facts(),
        now=decision.due_at,
        timezone="America/New_York",
    )
    assert done.status == "completed"
    assert [v.step_id for v in done.visits] == ["a", "b"]


def test_split_is_deterministic_and_follows_weights() -> None:
    defn = _defn(
        {"id": "a", "type": "split", "branches": [{"weight": 3, "next": "x"}, {"weight": 1, "next": "y"}]},
        {"id": "x", "type": "exit"},
        {"id": "y", "type": "exit"},
    )
    split = defn.step("a")
    picks = Counter(engine.split_branch(split, "j", f"c{i}", "o") for i in range(4000))
    assert 2850 < picks["x"] < 3150
    assert engine.split_branch(split, "j", "c1", "o") == engine.split_branch(split, "j", "c1", "o")


def test_condition_branches_on_facts() -> None:
    defn = _defn(
        {
            "id": "a",
            "type": "condition",
            "condition": {"kind": "has_tag", "tag": "vip"},
            "then": "t",
            "else": "e",
        },
        {"id": "t", "type": "attribute", "name": "seg", "value": "vip", "next": "x"},
        {"id": "e", "type": "exit"},
        {"id": "x", "type": "exit"},
    )
    vip = engine.decide(
        defn,
        journey_id="j",
        customer_id="c",
        occurrence="o",
        position=engine.Position("a"),
        facts=engine.Facts(tags=frozenset({"vip"})),
        now=WINDOW.now,
        timezone="UTC",
    )
    assert [e.kind for e in vip.effects] == ["attribute"]
    other = engine.decide(
        defn,
        journey_id="j",
        customer_id="c",
        occurrence="o",
        position=engine.Position("a"),
        facts=engine.Facts(),
        now=WINDOW.now,
        timezone="UTC",
    )
    assert other.effects == ()
