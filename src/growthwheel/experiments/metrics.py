"""Experiment metrics from warehouse facts, aggregated in the database into sufficient statistics.

Everything here is an Ibis expression over the warehouse's ``events`` and ``orders`` tables, so it
runs on DuckDB and on Spark alike; only the per-variant sums come back to Python.

**Exposures.** The assignment endpoint records one event per exposure (the convention of this
domain): ``type = "experiment_exposure"``, ``properties = {"experiment": <key>, "variant": <name>}``
and the unit in ``customer_id`` (customer experiments) or ``anonymous_id`` (anonymous ones). A
unit's *first exposure* (within the analysis window) fixes its variant and its start time. Units
exposed to more than one variant (the split changed, or the site ignored the answer) are left out
of every metric and counted in ``Exposures.multiple``, as GrowthBook does.

**Outcomes** count from a unit's first exposure to the end of the analysis window (and, with
``window_days``, no longer than that many days after it); the CUPED covariate is the same
quantity over the ``cuped_days`` days *before* the first exposure. Orders count when paid
(``PAID_STATUSES``); revenue is net of refunds, in minor units. Anonymous units meet their orders
through the customer their device first identified as (``events.service.identities``) and their
events through their ``anonymous_id``.

* ``conversion``: 1 if the unit placed a paid order (or did ``event``), else 0 (binomial);
* ``revenue``: net paid revenue per unit (mean), ``orders``: paid orders per unit (mean);
* ``aov``: Σ revenue / Σ orders over units (ratio, delta method), ``refund_rate``: Σ refunded /
  Σ paid amount (ratio, a guardrail);
* ``retention``: 1 if the unit was active (any event other than an exposure, or a paid order) in
  ``[first + days_from, first + days_to)`` days; only units whose whole retention window lies in
  the analysis window count.

**Outlier capping** (``cap = p``): each unit's value is winsorised at the ``p``-quantile of the
non-zero values over all variants (computed in the database); the pre-period value with the same
cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from growthwheel.events.service import identities
from growthwheel.experiments.schemas import MetricSpec
from growthwheel.stats.sufficient import (
    CupedMeanStats,
    CupedRatioStats,
    MeanStats,
    ProportionStats,
    RatioStats,
    VariantStats,
)
from growthwheel.warehouse.schema import PAID_STATUSES

EXPOSURE_EVENT = "experiment_exposure"
"""Event type of an exposure; ``properties`` holds ``experiment`` (key) and ``variant``."""

_ZERO = ibis.literal(0.0)


@dataclass(frozen=True)
class Window:
    """The analysis window, naive UTC (how the warehouse stores times): ``[start, end)``."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Exposures:
    """Units per variant (first exposure, single variant) and units seen in several variants."""

    units: dict[str, int]
    multiple: int


def _property(properties: ir.StringValue, name: str) -> ir.StringValue:
    """A string property of an exposure event's JSON, read with a regular expression: backend-neutral
    and some 50 times faster than a JSON parse on DuckDB. Exact for what the assignment endpoint
    writes (keys and values are slugs and variant names: no escapes); an exposure event sent by
    hand with a nested ``"variant"`` key could fool it, which is why exposures come from the API."""
    value = properties.re_extract(rf'"{name}"\s*:\s*"([^"\\]*)"', 1)
    return ibis.ifelse(value == "", ibis.null("string"), value)


def exposure_rows(backend: BaseBackend, key: str, unit: str, window: Window) -> ir.Table:
    """Every exposure to experiment ``key`` in the window: ``unit_id``, ``variant``, ``at``."""
    events = backend.table("events")
    e = events.filter(
        events.type == EXPOSURE_EVENT,
        events.occurred_at >= window.start,
        events.occurred_at < window.end,
        # cheap text test before parsing the JSON (the key is a slug: no escaping needed)
        events.properties.contains(f'"{key}"'),
    )
    unit_id = e.customer_id if unit == "customer" else e.anonymous_id
    rows = e.select(unit_id=unit_id, variant=_property(e.properties, "variant"), at=e.occurred_at,
                    _experiment=_property(e.properties, "experiment"))
    return rows.filter(rows._experiment == key, rows.unit_id.notnull(), rows.variant.notnull()).drop(
        "_experiment"
    )


def first_exposures(backend: BaseBackend, key: str, unit: str, window: Window) -> ir.Table:
    """One row per exposed unit: ``unit_id``, ``first_at``, ``variant`` and ``variants`` (1, or 2
    for a unit seen in more than one variant; its ``variant`` is then meaningless). Comparing the
    smallest and largest variant name of a unit costs far less than counting distinct names."""
    rows = exposure_rows(backend, key, unit, window)
    first = rows.group_by("unit_id").aggregate(
        first_at=rows.at.min(), variant=rows.variant.min(), _last=rows.variant.max()
    )
    return first.mutate(variants=(first.variant == first._last).ifelse(1, 2)).drop("_last")


def exposure_counts(first: ir.Table) -> Exposures:
    """Units per variant (those seen in one variant only) and the number seen in several, from
    :func:`first_exposures` (one query)."""
    single = first.variants == 1
    rows = first.group_by("variant").aggregate(
        units=single.ifelse(1, 0).sum(), multiple=single.ifelse(0, 1).sum()
    ).to_pyarrow().to_pylist()
    units = {str(r["variant"]): int(r["units"]) for r in rows if r["units"]}
    return Exposures(units, sum(int(r["multiple"]) for r in rows))


# ---------------------------------------------------------------------------------------------
# Per-unit outcomes
# ---------------------------------------------------------------------------------------------


def _units(backend: BaseBackend, first: ir.Table, unit: str) -> ir.Table:
    """Analysed units: ``unit_id``, ``variant``, ``first_at`` and the ``customer_id`` whose orders
    count (the unit itself, or the customer an anonymous id identified as)."""
    first = first.filter(first.variants == 1).drop("variants")
    if unit == "customer":
        return first.mutate(customer_id=first.unit_id)
    links = identities(backend).select(_anon="anonymous_id", _linked="customer_id")
    joined = first.left_join(links, first.unit_id == links._anon)
    return joined.select("unit_id", "variant", "first_at", customer_id=joined._linked)


def _days(n: int) -> Any:
    return ibis.interval(days=n)


def _post(at: ir.Value, first: ir.Value, end: datetime, spec: MetricSpec) -> ir.BooleanValue:
    cond = (at >= first) & (at < ibis.literal(end))
    if spec.window_days is not None:
        cond = cond & (at < first + _days(spec.window_days))
    return cond


def _retained(at: ir.Value, first: ir.Value, spec: MetricSpec) -> ir.BooleanValue:
    return (at >= first + _days(spec.days_from or 0)) & (at < first + _days(spec.days_to or 0))


def _flag(cond: ir.BooleanValue) -> ir.Value:
    return cond.ifelse(1.0, 0.0).max().fill_null(0.0)


def _sum(value: ir.Value, cond: ir.BooleanValue) -> ir.Value:
    return value.sum(where=cond).fill_null(0.0)


def _count(cond: ir.BooleanValue) -> ir.Value:
    return cond.ifelse(1.0, 0.0).sum().fill_null(0.0)


def unit_outcomes(
    backend: BaseBackend, first: ir.Table, unit: str, window: Window, specs: Sequence[MetricSpec],
    cuped_days: int,
) -> ir.Table:
    """One row per analysed unit: ``unit_id``, ``variant``, ``first_at`` and, for metric ``i`` of
    ``specs``, ``m{i}_num`` (and ``m{i}_den`` for ratios) with their pre-period twins
    ``m{i}_pre_num`` / ``m{i}_pre_den`` (with CUPED only). ``first`` is :func:`first_exposures`."""
    units = _units(backend, first, unit)
    lookback = window.start - timedelta(days=max(cuped_days, 0))
    orders = backend.table("orders")
    paid = orders.filter(
        orders.status.isin(PAID_STATUSES), orders.ordered_at >= lookback, orders.ordered_at < window.end,
        orders.customer_id.notnull(),
    )
    refunded = paid.refunded_amount.fill_null(0).cast("float64")
    paid = paid.select(
        _cid=paid.customer_id, _at=paid.ordered_at,
        _gross=paid.total_amount.fill_null(0).cast("float64"),
        _net=paid.total_amount.fill_null(0).cast("float64") - refunded,
        _refunded=refunded,
    )
    joined = units.left_join(paid, units.customer_id == paid._cid)
    at, first = joined._at, joined.first_at
    pre = (at < first) & (at >= first - _days(cuped_days))
    cuped = cuped_days > 0
    aggs: dict[str, Any] = {}
    needs_events = False
    for i, spec in enumerate(specs):
        post = _post(at, first, window.end, spec)
        if spec.kind == "conversion" and spec.event is not None:
            needs_events = True
        elif spec.kind == "conversion":
            aggs[f"m{i}_num"] = _flag(post)
            if cuped:
                aggs[f"m{i}_pre_num"] = _flag(pre)
        elif spec.kind == "revenue":
            aggs[f"m{i}_num"] = _sum(joined._net, post)
            if cuped:
                aggs[f"m{i}_pre_num"] = _sum(joined._net, pre)
        elif spec.kind == "orders":
            aggs[f"m{i}_num"] = _count(post)
            if cuped:
                aggs[f"m{i}_pre_num"] = _count(pre)
        elif spec.kind == "aov":
            aggs[f"m{i}_num"], aggs[f"m{i}_den"] = _sum(joined._net, post), _count(post)
            if cuped:
                aggs[f"m{i}_pre_num"], aggs[f"m{i}_pre_den"] = _sum(joined._net, pre), _count(pre)
        elif spec.kind == "refund_rate":
            aggs[f"m{i}_num"], aggs[f"m{i}_den"] = _sum(joined._refunded, post), _sum(joined._gross, post)
        elif spec.kind == "retention":
            needs_events = True
            aggs[f"m{i}_ord"] = _flag(_retained(at, first, spec))
    # one grouping key (the unit); its variant and first exposure are the same on all its rows
    per_unit = joined.group_by("unit_id").aggregate(
        variant=joined.variant.min(), first_at=joined.first_at.min(), **aggs
    )
    if needs_events:
        per_unit = _with_events(backend, unit, window, specs, per_unit, cuped_days)
    return per_unit


def _with_events(
    backend: BaseBackend, unit: str, window: Window, specs: Sequence[MetricSpec], per_unit: ir.Table,
    cuped_days: int,
) -> ir.Table:
    """Add the event-based metrics (event conversions, retention) to ``per_unit``."""
    events = backend.table("events")
    lookback = window.start - timedelta(days=max(cuped_days, 0))
    types = {s.event for s in specs if s.kind == "conversion" and s.event}
    any_activity = any(s.kind == "retention" for s in specs)
    e = events.filter(events.occurred_at >= lookback, events.occurred_at < window.end)
    e = e.filter(e.type != EXPOSURE_EVENT) if any_activity else e.filter(e.type.isin(sorted(types)))
    who = e.customer_id if unit == "customer" else e.anonymous_id
    e = e.select(_uid=who, _at=e.occurred_at, _type=e.type).filter(lambda t: t._uid.notnull())
    units = per_unit.select("unit_id", "first_at")
    joined = units.left_join(e, units.unit_id == e._uid)
    at, first = joined._at, joined.first_at
    pre = (at < first) & (at >= first - _days(cuped_days))
    aggs: dict[str, Any] = {}
    for i, spec in enumerate(specs):
        if spec.kind == "conversion" and spec.event is not None:
            did = joined._type == spec.event
            aggs[f"m{i}_num"] = _flag(did & _post(at, first, window.end, spec))
            if cuped_days > 0:
                aggs[f"m{i}_pre_num"] = _flag(did & pre)
        elif spec.kind == "retention":
            aggs[f"m{i}_evt"] = _flag(_retained(at, first, spec))
    found = joined.group_by("unit_id").aggregate(**aggs).rename(_eid="unit_id")
    both = per_unit.left_join(found, per_unit.unit_id == found._eid).drop("_eid")
    extra: dict[str, Any] = {}
    for i, spec in enumerate(specs):
        if spec.kind == "retention":
            extra[f"m{i}_num"] = ibis.greatest(both[f"m{i}_ord"], both[f"m{i}_evt"].fill_null(0.0))
    return both.mutate(**extra) if extra else both


# ---------------------------------------------------------------------------------------------
# Sufficient statistics per variant
# ---------------------------------------------------------------------------------------------


def caps(per_unit: ir.Table, specs: Sequence[MetricSpec]) -> dict[int, float | None]:
    """For each capped metric ``i``: the ``cap``-quantile of its non-zero per-unit values."""
    wanted = {i: s.cap for i, s in enumerate(specs) if s.cap is not None}
    if not wanted:
        return {}
    exprs = {f"c{i}": per_unit[f"m{i}_num"].quantile(p, where=per_unit[f"m{i}_num"] > 0)
             for i, p in wanted.items()}
    row = per_unit.aggregate(**exprs).to_pyarrow().to_pylist()[0]
    return {i: (None if row[f"c{i}"] is None else float(row[f"c{i}"])) for i in wanted}


def _capped(value: ir.NumericValue, cap: float | None) -> ir.NumericValue:
    return value if cap is None else ibis.least(value, ibis.literal(cap))


def variant_stats(
    per_unit: ir.Table, variants: Sequence[str], specs: Sequence[MetricSpec], *, cuped: bool,
    window_end: datetime,
) -> list[list[VariantStats]]:
    """For each metric of ``specs``: one sufficient-statistics object per variant, in the order
    of ``variants`` (the control first). A variant nobody was exposed to has ``n = 0``."""
    cap_of = caps(per_unit, specs)
    aggs: dict[str, Any] = {}
    for i, spec in enumerate(specs):
        y = _capped(per_unit[f"m{i}_num"], cap_of.get(i))
        if spec.kind == "retention":  # only units whose whole retention window has passed
            keep = per_unit.first_at + _days(spec.days_to or 0) <= ibis.literal(window_end)
            y = keep.ifelse(y, _ZERO)
            aggs[f"n{i}"] = keep.ifelse(1, 0).sum()
        else:
            aggs[f"n{i}"] = per_unit.count()
        aggs[f"s{i}"] = y.sum()
        aggs[f"ss{i}"] = (y * y).sum()
        if spec.kind in ("aov", "refund_rate"):
            d = per_unit[f"m{i}_den"]
            aggs[f"d{i}"], aggs[f"dd{i}"], aggs[f"sd{i}"] = d.sum(), (d * d).sum(), (y * d).sum()
        if cuped and spec.kind in ("conversion", "revenue", "orders", "aov"):
            x = _capped(per_unit[f"m{i}_pre_num"], cap_of.get(i))
            aggs[f"x{i}"], aggs[f"xx{i}"], aggs[f"xy{i}"] = x.sum(), (x * x).sum(), (x * y).sum()
            if spec.kind == "aov":
                d, xd = per_unit[f"m{i}_den"], per_unit[f"m{i}_pre_den"]
                aggs[f"e{i}"], aggs[f"ee{i}"], aggs[f"xe{i}"] = xd.sum(), (xd * xd).sum(), (x * xd).sum()
                aggs[f"ye{i}"], aggs[f"dx{i}"], aggs[f"de{i}"] = (y * xd).sum(), (d * x).sum(), (d * xd).sum()
    rows = per_unit.group_by("variant").aggregate(**aggs).to_pyarrow().to_pylist()
    by_variant = {str(r["variant"]): r for r in rows}
    out: list[list[VariantStats]] = []
    for i, spec in enumerate(specs):
        stats: list[VariantStats] = []
        for name in variants:
            r = by_variant.get(name)
            stats.append(_stats(spec, i, name, r, cuped=cuped))
        out.append(stats)
    return out


def _f(row: dict[str, Any] | None, column: str) -> float:
    if row is None:
        return 0.0
    value = row.get(column)
    return float(value) if value is not None else 0.0


def _stats(spec: MetricSpec, i: int, name: str, r: dict[str, Any] | None, *, cuped: bool) -> VariantStats:
    n = int(_f(r, f"n{i}"))
    s, ss = _f(r, f"s{i}"), _f(r, f"ss{i}")
    if spec.kind in ("aov", "refund_rate"):
        d, dd, sd = _f(r, f"d{i}"), _f(r, f"dd{i}"), _f(r, f"sd{i}")
        if cuped and spec.kind == "aov":
            return CupedRatioStats(
                name=name, n=n, num_sum=s, num_sum_squares=ss, den_sum=d, den_sum_squares=dd, num_den_sum=sd,
                pre_num_sum=_f(r, f"x{i}"), pre_num_sum_squares=_f(r, f"xx{i}"), pre_den_sum=_f(r, f"e{i}"),
                pre_den_sum_squares=_f(r, f"ee{i}"), pre_num_den_sum=_f(r, f"xe{i}"),
                num_pre_num_sum=_f(r, f"xy{i}"), num_pre_den_sum=_f(r, f"ye{i}"),
                den_pre_num_sum=_f(r, f"dx{i}"), den_pre_den_sum=_f(r, f"de{i}"),
            )
        return RatioStats(name=name, n=n, num_sum=s, num_sum_squares=ss, den_sum=d, den_sum_squares=dd,
                          num_den_sum=sd)
    if cuped and spec.kind in ("conversion", "revenue", "orders"):
        return CupedMeanStats(name=name, n=n, sum=s, sum_squares=ss, pre_sum=_f(r, f"x{i}"),
                              pre_sum_squares=_f(r, f"xx{i}"), cross_sum=_f(r, f"xy{i}"))
    if spec.kind in ("conversion", "retention"):
        return ProportionStats(name=name, n=n, conversions=round(s))
    return MeanStats(name=name, n=n, sum=s, sum_squares=ss)


def metric_stats(
    backend: BaseBackend, key: str, unit: str, window: Window, variants: Sequence[str],
    specs: Sequence[MetricSpec], *, cuped_days: int, first: ir.Table | None = None,
) -> list[list[VariantStats]]:
    """Per-variant sufficient statistics of every metric in ``specs``: one database pass joins the
    first exposures (``first``, else computed) with the orders (and events, if a metric needs
    them) into per-unit outcomes, cached for the caps and the per-variant aggregation."""
    if first is None:
        first = first_exposures(backend, key, unit, window)
    per_unit = unit_outcomes(backend, first, unit, window, specs, cuped_days)
    cached = per_unit.cache()
    try:
        return variant_stats(cached, variants, specs, cuped=cuped_days > 0, window_end=window.end)
    finally:
        cached.release()
