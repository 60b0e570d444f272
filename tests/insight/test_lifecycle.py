"""Lifecycle stages, learned thresholds and stage transitions on a real DuckDB warehouse.

Every expected stage and count is worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from tests.tiny_warehouse import make_warehouse

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.lifecycle import (
    DEFAULT_THRESHOLDS,
    STAGES,
    Thresholds,
    learn_thresholds,
    nearest_rank,
    repeat_gaps,
    stage_counts,
    stages,
    thresholds_for,
    transitions,
)


def make_orders(orders: list[dict[str, Any]]) -> Any:
    """An in-memory DuckDB warehouse with the stored schema holding ``orders``, as Ibis."""
    return make_warehouse({"orders": orders})


_count = 0


def order(customer: str, day: date, status: str = "paid") -> dict[str, Any]:
    global _count
    _count += 1
    return {"order_id": f"o{_count}", "customer_id": customer, "order_date": day,
            "ordered_at": datetime(day.year, day.month, day.day, 4, tzinfo=UTC).replace(tzinfo=None),
            "status": status,
            "total_amount": 1000, "refunded_amount": 0}


MANUAL = Thresholds(at_risk_days=30, dormant_days=60, churned_days=120, new_days=14)
AS_OF = date(2024, 6, 30)


def shop() -> Any:
    d = date
    rows = [
        order("n1", d(2024, 6, 20)), order("n1", d(2024, 7, 2)),  # the July order is after AS_OF
        order("n2", d(2024, 6, 16)),
        order("a1", d(2024, 6, 15)),
        order("r1", d(2024, 5, 1)), order("r1", d(2024, 6, 10)),
        order("l1", d(2024, 3, 1)), order("l1", d(2024, 4, 1)), order("l1", d(2024, 6, 1)),
        order("l2", d(2024, 6, 29)), order("l2", d(2024, 6, 29)), order("l2", d(2024, 6, 29)),
        order("k1", d(2024, 5, 1)), order("k1", d(2024, 5, 31)),
        order("k2", d(2024, 5, 30)),
        order("d1", d(2024, 1, 1)), order("d1", d(2024, 4, 30)),
        order("d2", d(2024, 5, 1)),
        order("c1", d(2024, 2, 29)),
        order("c2", d(2024, 3, 2)),
        order("x", d(2024, 6, 1), "cancelled"),
    ]
    return make_orders(rows)


def test_stage_of_every_customer_as_of_a_date() -> None:
    # Thresholds: at risk after 30 days, dormant after 60, churned after 120; new for 14 days.
    df = stages(shop().table("orders"), AS_OF, MANUAL).execute().set_index("customer_id")
    got = df["stage"].to_dict()
    assert got == {
        "n1": "new",       # one order 10 days ago (its July order is after the date)
        "n2": "new",       # one order exactly 14 days ago: still new
        "a1": "active",    # one order 15 days ago: past new, not at risk
        "r1": "repeat",    # two orders, last 20 days ago
        "l1": "loyal",     # three orders, last 29 days ago
        "l2": "loyal",     # three orders on one day yesterday: three orders
        "k1": "repeat",    # last order exactly 30 days ago: not yet at risk
        "k2": "at_risk",   # 31 days
        "d1": "dormant",   # 61 days
        "d2": "at_risk",   # exactly 60 days: at risk, not yet dormant
        "c1": "churned",   # 122 days
        "c2": "dormant",   # exactly 120 days
    }  # x only has a cancelled order: not a customer yet
    assert df.loc["c1", "days_since_last"] == 122
    assert df.loc["n1", "orders"] == 1
    counts = stage_counts(stages(shop().table("orders"), AS_OF, MANUAL)).execute()
    counts = dict(zip(counts["stage"], counts["customers"], strict=True))
    assert counts == {"new": 2, "active": 1, "repeat": 2, "loyal": 2, "at_risk": 2,
                      "dormant": 2, "churned": 1}
    assert set(counts) == set(STAGES)


def test_transitions_between_two_dates() -> None:
    # Stages on 2024-05-31 with the same thresholds: r1 active (one order 30 days ago), l1 at risk
    # (two orders, last 60 days ago), k1 repeat, k2 new (1 day), d1 at risk (31 days), d2 active
    # (30 days), c1 dormant (92 days), c2 dormant (90 days); n1, n2, a1 and l2 had not bought.
    df = transitions(shop().table("orders"), date(2024, 5, 31), AS_OF, MANUAL).execute()
    got = {(r.from_stage, r.to_stage): r.customers for r in df.itertuples()}
    assert got == {
        ("none", "new"): 2, ("none", "active"): 1, ("none", "loyal"): 1,
        ("active", "repeat"): 1, ("at_risk", "loyal"): 1, ("repeat", "repeat"): 1,
        ("new", "at_risk"): 1, ("at_risk", "dormant"): 1, ("active", "at_risk"): 1,
        ("dormant", "churned"): 1, ("dormant", "dormant"): 1,
    }
    with pytest.raises(InvalidArgumentError):
        transitions(shop().table("orders"), AS_OF, date(2024, 5, 31), MANUAL)


def test_thresholds_learned_from_the_shops_repeat_gaps() -> None:
    d = date
    rows = []
    for i in range(20):  # 20 repeat gaps of 10 days
        rows += [order(f"t{i}", d(2024, 1, 1)), order(f"t{i}", d(2024, 1, 11))]
    for i in range(5):  # 5 repeat gaps of 100 days
        rows += [order(f"h{i}", d(2024, 1, 1)), order(f"h{i}", d(2024, 4, 10))]
    # Three orders on one day are one purchase: this customer has one gap, of 7 days (not 0, 0, 7).
    rows += [order("s", d(2024, 2, 1)), order("s", d(2024, 2, 1)), order("s", d(2024, 2, 1)),
             order("s", d(2024, 2, 8)), order("s", d(2024, 2, 9), "cancelled")]
    con = make_orders(rows)
    hist = repeat_gaps(con.table("orders")).execute()
    assert dict(zip(hist["gap_days"], hist["gaps"], strict=True)) == {7: 1, 10: 20, 100: 5}
    # 26 gaps. P80: the 21st smallest (ceil(0.8 · 26) = 21) is 10; P95: the 25th is 100.
    # at risk = max(10, 14) = 14, dormant = max(100, 30, 15) = 100, churned = 2 × 100.
    th = thresholds_for(con.table("orders"))
    assert (th.at_risk_days, th.dormant_days, th.churned_days) == (14, 100, 200)
    assert (th.source, th.gaps, th.p80_days, th.p95_days) == ("learned", 26, 10, 100)
    # Learned as of March, the 100-day gaps have not happened yet: 21 gaps (7 and twenty 10s),
    # P80 = 10 and P95 = 10: at risk 14, dormant max(10, 30, 15) = 30, churned 60.
    early = thresholds_for(con.table("orders"), end=d(2024, 3, 1))
    assert (early.at_risk_days, early.dormant_days, early.churned_days, early.gaps) == (
        14, 30, 60, 21)
    # As of January 10 nobody has come back yet: no gap to learn from, the defaults apply.
    default = thresholds_for(con.table("orders"), end=d(2024, 1, 10))
    assert (default.source, default.gaps) == ("default", 0)
    assert (default.at_risk_days, default.dormant_days) == (
        DEFAULT_THRESHOLDS.at_risk_days, DEFAULT_THRESHOLDS.dormant_days)


def test_learning_rule_on_plain_histograms() -> None:
    # Gaps 1..100 once each: P80 = 80, P95 = 95.
    th = learn_thresholds((g, 1) for g in range(1, 101))
    assert (th.at_risk_days, th.dormant_days, th.churned_days) == (80, 95, 190)
    # A weekly-grocery shop (every gap 3 days) hits the floors: 14, 30, 60.
    th = learn_thresholds([(3, 40)])
    assert (th.at_risk_days, th.dormant_days, th.churned_days) == (14, 30, 60)
    # 19 gaps are too few: the defaults, flagged as such.
    th = learn_thresholds([(5, 19)], new_days=7)
    assert th.source == "default"
    assert th.gaps == 19
    assert th.new_days == 7
    # Nearest rank is exact in integers: 25 values, 80 % → the 20th.
    assert nearest_rank({1: 19, 2: 1, 3: 5}, 80) == 2
    assert nearest_rank({1: 20, 3: 5}, 80) == 1
    with pytest.raises(InvalidArgumentError):
        nearest_rank({}, 50)
    with pytest.raises(InvalidArgumentError, match="grow"):
        Thresholds(at_risk_days=60, dormant_days=60, churned_days=120)
