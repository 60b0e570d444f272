"""Lifecycle stages (生命周期): where each customer stands as of a date, and how they moved.

Stages, for a customer with at least one paid order on or before the date (paid orders as in
:func:`growthwheel.insight.rfm.paid_orders`; dates are shop-local ``order_date``), with ``days``
the whole days since the last paid order and ``orders`` the number of paid orders so far. The
first rule that holds gives the stage:

1. ``churned`` (流失): ``days`` > ``churned_days``
2. ``dormant`` (沉睡): ``days`` > ``dormant_days``
3. ``at_risk`` (预警): ``days`` > ``at_risk_days``
4. ``loyal`` (忠诚): ``orders`` ≥ ``loyal_orders`` (3)
5. ``repeat`` (复购): ``orders`` ≥ 2
6. ``new`` (新客): one order, placed at most ``new_days`` (30) days ago
7. ``active`` (活跃): one order, placed earlier, and not yet at risk

Thresholds are set by hand or learned from the shop's own inter-purchase times
(:func:`learn_thresholds`): a *repeat gap* is the number of days between two consecutive distinct
purchase days of a customer (several orders on one day are one purchase), over paid orders up to
the date. With ``P(p)`` the nearest-rank percentile of those gaps (the smallest gap ``g`` such that
at least ``p`` of all gaps are ≤ ``g``):

* ``at_risk_days`` = max(P(80 %), 14): four in five returning customers come back sooner;
* ``dormant_days`` = max(P(95 %), 30, ``at_risk_days`` + 1);
* ``churned_days`` = 2 × ``dormant_days``.

With fewer than :data:`MIN_GAPS` repeat gaps the shop has too little history to learn from and the
defaults (:data:`DEFAULT_THRESHOLDS`: 45 / 90 / 180 days) are used; ``Thresholds.source`` says which.

Transitions compare the stage of every customer at two dates with the same thresholds; a customer
with no paid order yet at the first date comes *from* the pseudo-stage ``none``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.rfm import last_paid_day, paid_orders

#: The stages, from the freshest to the most lapsed.
STAGES: tuple[str, ...] = ("new", "active", "repeat", "loyal", "at_risk", "dormant", "churned")
STAGE_LABELS_ZH: dict[str, str] = {
    "new": "新客", "active": "活跃", "repeat": "复购", "loyal": "忠诚",
    "at_risk": "预警", "dormant": "沉睡", "churned": "流失", "none": "未购买",
}
#: Pseudo-stage of a customer without any paid order yet (``from`` side of transitions).
NO_STAGE = "none"
#: Fewest repeat gaps to learn thresholds from.
MIN_GAPS = 20


@dataclass(frozen=True)
class Thresholds:
    """Day thresholds of the lifecycle stages and where they come from."""

    at_risk_days: int = 45
    dormant_days: int = 90
    churned_days: int = 180
    new_days: int = 30
    loyal_orders: int = 3
    #: ``manual``, ``learned`` (from repeat gaps) or ``default`` (too few gaps to learn).
    source: str = "manual"
    #: Number of repeat gaps learned from (0 unless learned).
    gaps: int = 0
    #: The 80th and 95th percentiles of repeat gaps, when learned.
    p80_days: int | None = None
    p95_days: int | None = None

    def __post_init__(self) -> None:
        if min(self.at_risk_days, self.new_days) < 0 or self.loyal_orders < 2:
            raise InvalidArgumentError("thresholds must be >= 0 days and loyal_orders >= 2")
        if not self.at_risk_days < self.dormant_days < self.churned_days:
            raise InvalidArgumentError(
                "thresholds must grow: at_risk_days < dormant_days < churned_days "
                f"(got {self.at_risk_days}, {self.dormant_days}, {self.churned_days})"
            )


DEFAULT_THRESHOLDS = Thresholds(source="default")


def nearest_rank(histogram: dict[int, int], percent: int) -> int:
    """The smallest value ``g`` with at least ``percent`` % of the counts at or below it.

    ``histogram`` maps a value to how many times it occurs.
    """
    total = sum(histogram.values())
    if total <= 0:
        raise InvalidArgumentError("no values to take a percentile of")
    needed = -(-percent * total // 100)  # ceil(percent · total / 100), in integers
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= needed:
            return value
    return max(histogram)


def learn_thresholds(
    gap_counts: Iterable[tuple[int, int]], *, new_days: int = 30, loyal_orders: int = 3
) -> Thresholds:
    """Thresholds from ``(gap_days, count)`` pairs of repeat gaps (see the module docstring)."""
    histogram: dict[int, int] = {}
    for gap, count in gap_counts:
        histogram[int(gap)] = histogram.get(int(gap), 0) + int(count)
    total = sum(histogram.values())
    if total < MIN_GAPS:
        return replace(DEFAULT_THRESHOLDS, new_days=new_days, loyal_orders=loyal_orders, gaps=total)
    p80, p95 = nearest_rank(histogram, 80), nearest_rank(histogram, 95)
    at_risk = max(p80, 14)
    dormant = max(p95, 30, at_risk + 1)
    return Thresholds(
        at_risk_days=at_risk, dormant_days=dormant, churned_days=2 * dormant,
        new_days=new_days, loyal_orders=loyal_orders, source="learned", gaps=total,
        p80_days=p80, p95_days=p95,
    )


def repeat_gaps(orders: ir.Table, *, end: date | None = None) -> ir.Table:
    """Histogram of repeat gaps: ``gap_days`` (≥ 1) and ``gaps`` (how many), over paid orders ≤ ``end``."""
    o = paid_orders(orders, end=end)
    days = o.select("customer_id", "order_date").distinct()
    w = ibis.window(group_by=days.customer_id, order_by=days.order_date)
    days = days.mutate(previous=days.order_date.lag().over(w))
    gaps = days.filter(days.previous.notnull())
    gaps = gaps.mutate(gap_days=gaps.order_date.delta(gaps.previous, unit="day").cast("int64"))
    return gaps.group_by("gap_days").aggregate(gaps=gaps.count()).order_by("gap_days")


def thresholds_for(orders: ir.Table, *, end: date | None = None, new_days: int = 30,
                   loyal_orders: int = 3) -> Thresholds:
    """Thresholds learned from the shop's repeat gaps up to ``end`` (runs one small query)."""
    df = repeat_gaps(orders, end=end).execute()
    pairs = zip(df["gap_days"].tolist(), df["gaps"].tolist(), strict=True)
    return learn_thresholds(pairs, new_days=new_days, loyal_orders=loyal_orders)


def _stage(days: Any, n_orders: Any, days_since_first: Any, th: Thresholds) -> Any:
    return ibis.cases(
        (days > th.churned_days, "churned"),
        (days > th.dormant_days, "dormant"),
        (days > th.at_risk_days, "at_risk"),
        (n_orders >= th.loyal_orders, "loyal"),
        (n_orders >= 2, "repeat"),
        (days_since_first <= th.new_days, "new"),
        else_="active",
    )


def stages(orders: ir.Table, as_of: date, thresholds: Thresholds) -> ir.Table:
    """The stage of every customer with a paid order on or before ``as_of``.

    Columns: ``customer_id``, ``orders``, ``first_order_date``, ``last_order_date``,
    ``days_since_last``, ``stage`` (one of :data:`STAGES`).
    """
    o = paid_orders(orders, end=as_of)
    per = o.group_by("customer_id").aggregate(
        orders=o.count(),
        first_order_date=o.order_date.min(),
        last_order_date=o.order_date.max(),
    )
    today = ibis.literal(as_of)
    per = per.mutate(
        days_since_last=today.delta(per.last_order_date, unit="day").cast("int64"),
        days_since_first=today.delta(per.first_order_date, unit="day").cast("int64"),
    )
    per = per.mutate(
        stage=_stage(per.days_since_last, per.orders, per.days_since_first, thresholds)
    )
    return per.select(
        "customer_id", "orders", "first_order_date", "last_order_date", "days_since_last", "stage"
    )


def stage_counts(staged: ir.Table) -> ir.Table:
    """Customers per stage of :func:`stages`: ``stage``, ``customers``, ``orders`` (Σ)."""
    return staged.group_by("stage").aggregate(
        customers=staged.count(), orders=staged.orders.sum()
    )


def transitions(orders: ir.Table, start: date, end: date, thresholds: Thresholds) -> ir.Table:
    """How many customers moved from each stage at ``start`` to each stage at ``end``.

    Columns: ``from_stage`` (a stage, or ``none`` for customers whose first paid order came after
    ``start``), ``to_stage``, ``customers``. Only non-empty pairs are present.
    """
    if start > end:
        raise InvalidArgumentError(f"start {start} is after end {end}")
    before = stages(orders, start, thresholds).select(c0="customer_id", from_stage="stage")
    after = stages(orders, end, thresholds).select("customer_id", to_stage="stage")
    j = after.left_join(before, after.customer_id == before.c0)
    j = j.mutate(from_stage=j.from_stage.fill_null(NO_STAGE))
    return j.group_by(["from_stage", "to_stage"]).aggregate(customers=j.count())


def lifecycle_report(
    orders: ir.Table,
    as_of: date | None = None,
    *,
    thresholds: Thresholds | None = None,
    start: date | None = None,
) -> dict[str, Any]:
    """A JSON-ready summary: stage counts as of ``as_of`` (default: the last paid order's date).

    ``thresholds`` default to those learned up to ``as_of``. Keys: ``as_of``, ``thresholds`` (the
    fields of :class:`Thresholds`), ``customers``, ``stages`` (every stage in :data:`STAGES` order:
    ``stage``, ``label_zh``, ``customers``, ``share``, ``orders``) and, with ``start``,
    ``transitions``: ``{"from": start, "to": as_of, "moves": [{from_stage, to_stage, customers}]}``
    (non-empty pairs, sorted by stage order).
    """
    day = as_of or last_paid_day(orders)
    th = thresholds or thresholds_for(orders, end=day)
    counts = stage_counts(stages(orders, day, th)).execute()
    by_stage = {r["stage"]: (int(r["customers"]), int(r["orders"]))
                for r in counts.to_dict(orient="records")}
    everyone = sum(c for c, _ in by_stage.values())
    report: dict[str, Any] = {
        "as_of": day.isoformat(),
        "thresholds": asdict(th),
        "customers": everyone,
        "stages": [
            {"stage": s, "label_zh": STAGE_LABELS_ZH[s], "customers": by_stage.get(s, (0, 0))[0],
             "share": by_stage.get(s, (0, 0))[0] / everyone if everyone else None,
             "orders": by_stage.get(s, (0, 0))[1]}
            for s in STAGES
        ],
    }
    if start is not None:
        moves = transitions(orders, start, day, th).execute()
        rank = {s: i for i, s in enumerate((NO_STAGE, *STAGES))}
        report["transitions"] = {
            "from": start.isoformat(),
            "to": day.isoformat(),
            "moves": sorted(
                ({"from_stage": r["from_stage"], "to_stage": r["to_stage"],
                  "customers": int(r["customers"])} for r in moves.to_dict(orient="records")),
                key=lambda m: (rank[m["from_stage"]], rank[m["to_stage"]]),
            ),
        }
    return report
