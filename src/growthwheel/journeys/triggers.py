"""Trigger evaluation: who did the trigger hit in a window ``(since, now]``, and which occurrence.

Warehouse triggers are Ibis expressions over the fact tables (the same code on DuckDB and Spark),
evaluated in bulk; each returns a table of ``customer_id``, ``occurrence`` (a string naming this
occurrence of the trigger for this customer — the enrolment's uniqueness key) and ``occurred_at``
(a naive UTC timestamp; for day-based triggers the shop-local day as a timestamp):

* ``segment``: ``segment_membership_events`` rows ``entered`` / ``left`` in the window;
  occurrence ``enter:<at>``;
* ``event``: the customer's latest ``event`` in ``(since − N h, now − N h]`` with no ``without``
  event (and, for ``purchase``, no order) in the N hours after it; it fires N hours after the
  event; occurrence ``event:<event id>``;
* ``date``: the anniversary of ``birthday`` (or of the sign-up day) minus ``days_before``, in the
  shop's time zone, on a shop-local day in the window; 29 February counts as 28 February in other
  years; occurrence ``birthday:<year>``;
* ``lifecycle``: the day the days since the last paid order pass the stage's threshold
  (:mod:`growthwheel.insight.lifecycle`, thresholds learned from the shop), for customers in that
  stage now; occurrence ``dormant:<last order day>`` (each lapse is its own occurrence);
* ``replenishment``: per (customer, product) last purchase day + cycle − ``days_before``; the
  cycle is the trigger's ``cycle_days``, else the product's ``consumption_cycle_days``, else the
  median interval between consecutive purchase days of that product by one customer (over at least
  ``min_repeats`` intervals); occurrence ``replenish:<sku>:<last day>``;
* ``purchase_count``: the customer's n-th paid order placed in the window; occurrence
  ``purchase:<n>``.

Operational-store triggers read SQLAlchemy tables: ``tier_change`` (``members.tier_since`` in the
window; occurrence ``tier:<code>:<since>``), ``points_expiring`` (lots with points left whose
expiry minus ``within_days`` falls in the window; ``points:<expiry day>``), ``coupon_expiring``
(issued codes never used whose batch ends ``within_days`` after a moment of the window;
``coupon:<code>``).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.types as ir
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from growthwheel.insight.lifecycle import Thresholds, thresholds_for
from growthwheel.insight.rfm import paid_orders
from growthwheel.journeys import definition as d
from growthwheel.journeys import learning

CANDIDATE_COLUMNS = ("customer_id", "occurrence", "occurred_at")

if TYPE_CHECKING:  # pandas is imported where used: listing journeys does not need it
    import pandas as pd


@dataclass(frozen=True)
class Window:
    """The stretch of time a tick looks at: ``(since, now]`` (aware instants) in the shop's zone."""

    since: datetime
    now: datetime
    timezone: str

    @property
    def since_utc(self) -> datetime:
        """``since`` as naive UTC (how the warehouse stores instants)."""
        return self.since.astimezone(UTC).replace(tzinfo=None)

    @property
    def now_utc(self) -> datetime:
        """``now`` as naive UTC."""
        return self.now.astimezone(UTC).replace(tzinfo=None)

    @property
    def since_day(self) -> date:
        """The shop-local day of ``since``."""
        return self.since.astimezone(ZoneInfo(self.timezone)).date()

    @property
    def today(self) -> date:
        """The shop-local day of ``now``."""
        return self.now.astimezone(ZoneInfo(self.timezone)).date()


@dataclass(frozen=True)
class Candidate:
    """One customer hit by a trigger."""

    customer_id: str
    occurrence: str
    occurred_at: datetime


def _empty() -> ir.Table:
    import pandas as pd

    return ibis.memtable(pd.DataFrame({"customer_id": pd.Series([], dtype="string"),
                                       "occurrence": pd.Series([], dtype="string"),
                                       "occurred_at": pd.Series([], dtype="datetime64[us]")}))


def _out(t: ir.Table, occurrence: Any, occurred_at: Any) -> ir.Table:
    return t.select(customer_id=t.customer_id.cast("string"), occurrence=occurrence.cast("string"),
                    occurred_at=occurred_at.cast("timestamp"))


# ---------------------------------------------------------------------------------------------
# Warehouse triggers (Ibis)
# ---------------------------------------------------------------------------------------------


def segment_trigger(memberships: ir.Table, trig: d.SegmentTrigger, w: Window) -> ir.Table:
    """Entering or leaving a segment (``segment_membership_events``)."""
    event = "entered" if trig.on == "enter" else "left"
    t = memberships.filter((memberships.segment_id == trig.segment_id) & (memberships.event == event)
                           & (memberships["at"] > w.since_utc) & (memberships["at"] <= w.now_utc))
    return _out(t, ibis.literal(f"{trig.on}:") + t["at"].cast("string"), t["at"])


def event_trigger(events: ir.Table, orders: ir.Table | None, trig: d.EventTrigger, w: Window) -> ir.Table:
    """An event not followed by another within N hours (abandoned cart)."""
    wait = timedelta(hours=trig.within_hours)
    e = events.filter((events.type == trig.event) & events.customer_id.notnull()
                      & (events.occurred_at > w.since_utc - wait) & (events.occurred_at <= w.now_utc - wait))
    rank = ibis.row_number().over(group_by=e.customer_id,
                                  order_by=[ibis.desc(e.occurred_at), ibis.desc(e.event_id)])
    e = e.mutate(_rank=rank).filter(lambda t: t._rank == 0).select("customer_id", "event_id", "occurred_at")
    window = ibis.interval(hours=trig.within_hours)
    if trig.without:
        f = events.filter((events.type == trig.without) & events.customer_id.notnull()).select(
            f_customer="customer_id", f_at="occurred_at")
        e = e.anti_join(f, [e.customer_id == f.f_customer, f.f_at > e.occurred_at,
                            f.f_at <= e.occurred_at + window])
        if trig.without == "purchase" and orders is not None:
            o = paid_orders(orders).select(o_customer="customer_id", o_at="ordered_at")
            e = e.anti_join(o, [e.customer_id == o.o_customer, o.o_at > e.occurred_at,
                                o.o_at <= e.occurred_at + window])
    return _out(e, ibis.literal("event:") + e.event_id.cast("string"), e.occurred_at + window)


def _years(w: Window) -> list[int]:
    return sorted({w.since_day.year, w.today.year} | set(range(w.since_day.year, w.today.year + 1)))


def date_trigger(customers: ir.Table, trig: d.DateTrigger, w: Window) -> ir.Table:
    """The anniversary of a date attribute, ``days_before`` it, in the shop's time zone."""
    c = customers.filter(customers[trig.attribute].notnull())
    day = c[trig.attribute].cast("date")
    c = c.mutate(_m=day.month(), _d=day.day())
    parts: list[ir.Table] = []
    for year in _years(w):
        mday = c._d if calendar.isleap(year) else ibis.ifelse((c._m == 2) & (c._d == 29), 28, c._d)
        fire = ibis.date(ibis.literal(year), c._m, mday) - ibis.interval(days=trig.days_before)
        t = c.mutate(_fire=fire).filter(lambda t: (t._fire > w.since_day) & (t._fire <= w.today))
        parts.append(_out(t, ibis.literal(f"{trig.attribute}:{year}"), t._fire))
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def learned_thresholds(orders: ir.Table, today: date, key: str | None) -> Thresholds:
    """The lifecycle thresholds learned from the shop's repeat gaps, learned **once a shop-local
    day** per warehouse ``key`` (:mod:`growthwheel.journeys.learning`: a tick every minute would
    otherwise re-learn them from every order each time). ``key`` ``None``: learned now, not kept."""
    return learning.thresholds(orders, today, key)


def lifecycle_trigger(orders: ir.Table, trig: d.LifecycleTrigger, w: Window,
                      thresholds: Thresholds | None = None) -> ir.Table:
    """Reaching a lapsed stage: the day ``days since the last order`` passed the stage's threshold.

    The stage of a lapsed customer depends on the days since the last paid order only (at risk:
    ``(at_risk, dormant]``, dormant: ``(dormant, churned]``, churned: ``> churned``; see
    :func:`growthwheel.insight.lifecycle.stages`), so one ``max(order_date)`` per customer is all
    the trigger reads."""
    th = thresholds or thresholds_for(orders, end=w.today)
    lower = {"at_risk": th.at_risk_days, "dormant": th.dormant_days, "churned": th.churned_days}[trig.stage]
    upper = {"at_risk": th.dormant_days, "dormant": th.churned_days, "churned": None}[trig.stage]
    o = paid_orders(orders, end=w.today)
    s = o.group_by("customer_id").aggregate(last_order_date=o.order_date.max())
    today = ibis.literal(w.today)
    days = today.delta(s.last_order_date, unit="day")
    keep = days > lower
    if upper is not None:
        keep &= days <= upper
    s = s.filter(keep).mutate(_reached=s.last_order_date + ibis.interval(days=lower + 1))
    s = s.filter(s._reached > w.since_day)
    return _out(s, ibis.literal(f"{trig.stage}:") + s.last_order_date.cast("string"), s._reached)


def _longest_cycle(trig: d.ReplenishmentTrigger, products: ir.Table | None,
                   cycles: pd.DataFrame | None) -> int | None:
    """The longest cycle a replenishment trigger can apply, when known before its query."""
    if trig.cycle_days is not None:
        return int(trig.cycle_days)
    if cycles is None:
        return None
    kept = cycles[cycles["n"] >= trig.min_repeats]
    if trig.skus:
        kept = kept[kept["sku"].isin(list(trig.skus))]
    found = [math.ceil(float(v)) for v in kept["learned"].tolist()]  # (≥ the rounded cycle)
    if products is not None and "consumption_cycle_days" in products.columns:
        p = products if not trig.skus else products.filter(products.sku.isin(list(trig.skus)))
        most = p.consumption_cycle_days.max().execute()
        if most is not None and most == most:  # (NaN: no product has a set cycle)
            found.append(int(most))
    return max(found, default=0)


def replenishment_trigger(orders: ir.Table, lines: ir.Table, products: ir.Table | None,
                          trig: d.ReplenishmentTrigger, w: Window,
                          cycles: pd.DataFrame | None = None) -> ir.Table:
    """A product bought is due again (see the module docstring for the cycle). ``cycles``: the
    products' learned cycles (:func:`learning.cycles`, learned once a day) instead of learning
    them in this query.

    With the cycles known before the query (set, or learned for the day) only the purchases that
    can still be the last one before a due day in the window are read: ``due = last + cycle −
    days_before > since`` needs ``last > since − longest cycle + days_before``, and a customer's
    latest purchase of a product after that bound is their latest purchase of it at all."""
    paid = paid_orders(orders, end=w.today).select("order_id", "customer_id", "order_date")
    longest = _longest_cycle(trig, products, cycles)
    if longest is not None:
        paid = paid.filter(paid.order_date > w.since_day - timedelta(days=longest - trig.days_before))
    ln = lines.select("order_id", "sku")
    if trig.skus:
        ln = ln.filter(ln.sku.isin(trig.skus))
    bought = ln.join(paid, "order_id").select("customer_id", "sku", day="order_date").distinct()
    last = bought.group_by(["customer_id", "sku"]).aggregate(last_day=bought.day.max())
    if trig.cycle_days is not None:
        cycled = last.mutate(cycle=ibis.literal(trig.cycle_days, type="int64"))
    else:
        if cycles is not None:
            learned = learning.cycles_table(cycles, min_repeats=trig.min_repeats,
                                            skus=list(trig.skus) if trig.skus else None)
        else:
            prev = bought.day.lag().over(group_by=[bought.customer_id, bought.sku], order_by=bought.day)
            gaps = bought.mutate(gap=bought.day.delta(prev, unit="day")).filter(lambda t: t.gap.notnull())
            learned = gaps.group_by("sku").aggregate(learned=gaps.gap.median(), n=gaps.count())
            learned = learned.filter(learned.n >= trig.min_repeats).select(l_sku="sku", learned="learned")
        cycled = last.left_join(learned, last.sku == learned.l_sku).drop("l_sku")
        if products is not None:
            p = products.select(p_sku="sku", set_cycle="consumption_cycle_days")
            cycled = cycled.left_join(p, cycled.sku == p.p_sku).drop("p_sku")
            cycle = cycled.set_cycle.cast("int64").coalesce(cycled.learned.round().cast("int64"))
        else:
            cycle = cycled.learned.round().cast("int64")
        cycled = cycled.mutate(cycle=cycle).filter(lambda t: t.cycle.notnull() & (t.cycle > 0))
    due = cycled.last_day + (cycled.cycle - trig.days_before).as_interval("D")
    t = cycled.mutate(_due=due).filter(lambda t: (t._due > w.since_day) & (t._due <= w.today))
    occurrence = ibis.literal("replenish:") + t.sku.cast("string") + ":" + t.last_day.cast("string")
    return _out(t, occurrence, t._due)


def purchase_count_trigger(orders: ir.Table, trig: d.PurchaseCountTrigger, w: Window) -> ir.Table:
    """The customer's n-th paid order, placed in the window."""
    o = paid_orders(orders)
    rank = ibis.row_number().over(group_by=o.customer_id, order_by=[o.ordered_at, o.order_id])
    o = o.mutate(_n=rank).filter(lambda t: (t._n == trig.n - 1) & (t.ordered_at > w.since_utc)
                                 & (t.ordered_at <= w.now_utc))
    return _out(o, ibis.literal(f"purchase:{trig.n}"), o.ordered_at)


def warehouse_expression(backend: Any, trig: Any, w: Window, *, cache_key: str | None = None) -> ir.Table:
    """The candidate table of a warehouse trigger over ``backend``'s tables (``cache_key``: names
    the warehouse, so the lifecycle thresholds are learned once a day; see :func:`learned_thresholds`)."""
    names = set(backend.list_tables())

    def table(name: str) -> ir.Table | None:
        return backend.table(name) if name in names else None

    orders = table("orders")
    if isinstance(trig, d.SegmentTrigger):
        memberships = table("segment_membership_events")
        return _empty() if memberships is None else segment_trigger(memberships, trig, w)
    if isinstance(trig, d.EventTrigger):
        events = table("events")
        return _empty() if events is None else event_trigger(events, orders, trig, w)
    if isinstance(trig, d.DateTrigger):
        customers = table("customers")
        return _empty() if customers is None else date_trigger(customers, trig, w)
    if orders is None:
        return _empty()
    if isinstance(trig, d.LifecycleTrigger):
        return lifecycle_trigger(orders, trig, w, learned_thresholds(orders, w.today, cache_key))
    if isinstance(trig, d.ReplenishmentTrigger):
        lines = table("order_lines")
        if lines is None:
            return _empty()
        learned = (learning.cycles(orders, lines, w.today, cache_key)
                   if trig.cycle_days is None and cache_key is not None else None)
        return replenishment_trigger(orders, lines, table("products"), trig, w, learned)
    if isinstance(trig, d.PurchaseCountTrigger):
        return purchase_count_trigger(orders, trig, w)
    raise TypeError(f"not a warehouse trigger: {trig.kind}")


def candidates_from(frame: pd.DataFrame) -> list[Candidate]:
    """Rows of an executed candidate table (one per customer and occurrence; the first one kept)."""
    import pandas as pd

    frame = frame[list(CANDIDATE_COLUMNS)].drop_duplicates(["customer_id", "occurrence"])
    utc = pd.to_datetime(frame["occurred_at"], utc=True).dt.tz_localize(None)
    instants = cast("list[datetime]", utc.to_numpy(dtype="datetime64[us]").tolist())  # naive UTC
    return [Candidate(str(customer), str(occurrence), when.replace(tzinfo=UTC)) for customer, occurrence, when
            in zip(frame["customer_id"].tolist(), frame["occurrence"].tolist(), instants, strict=True)]


def evaluate_warehouse(backend: Any, trig: Any, w: Window, *,
                       cache_key: str | None = None) -> list[Candidate]:
    """Run a warehouse trigger: the customers it hit in the window."""
    return candidates_from(warehouse_expression(backend, trig, w, cache_key=cache_key).execute())


# ---------------------------------------------------------------------------------------------
# Operational-store triggers
# ---------------------------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def evaluate_store(session: Session, trig: Any, w: Window) -> list[Candidate]:
    """Run an operational-store trigger (tier change, points or coupon about to expire)."""
    from growthwheel.loyalty.models import Member, PointsLot
    from growthwheel.promotions.models import CouponBatch, CouponCode

    found: Iterable[Candidate]
    if isinstance(trig, d.TierChangeTrigger):
        tiers = select(Member.customer_id, Member.tier_code, Member.tier_since).where(
            Member.tier_code.is_not(None), Member.tier_since > w.since, Member.tier_since <= w.now)
        if trig.to_tier:
            tiers = tiers.where(Member.tier_code == trig.to_tier)
        found = [Candidate(c, f"tier:{code}:{_aware(at).isoformat()}", _aware(at))
                 for c, code, at in session.execute(tiers) if at is not None]
    elif isinstance(trig, d.PointsExpiringTrigger):
        ahead = timedelta(days=trig.within_days)
        lots = (select(PointsLot.customer_id, PointsLot.expires_at, func.sum(PointsLot.remaining))
                .where(PointsLot.remaining > 0, PointsLot.expires_at > w.since + ahead,
                       PointsLot.expires_at <= w.now + ahead, PointsLot.expires_at > w.now)
                .group_by(PointsLot.customer_id, PointsLot.expires_at))
        zone = ZoneInfo(w.timezone)
        found = [Candidate(c, f"points:{_aware(at).astimezone(zone).date()}", _aware(at) - ahead)
                 for c, at, points in session.execute(lots) if int(points or 0) >= trig.min_points]
    elif isinstance(trig, d.CouponExpiringTrigger):
        ahead = timedelta(days=trig.within_days)
        codes = (select(CouponCode.customer_id, CouponCode.code, CouponBatch.valid_until)
             .join(CouponBatch, CouponBatch.id == CouponCode.batch_id)
             .where(CouponCode.customer_id.is_not(None), CouponCode.uses == 0, CouponBatch.active.is_(True),
                    CouponBatch.valid_until > w.since + ahead, CouponBatch.valid_until <= w.now + ahead,
                    CouponBatch.valid_until > w.now))
        if trig.batch_id:
            codes = codes.where(CouponCode.batch_id == trig.batch_id)
        found = [Candidate(str(c), f"coupon:{code}", _aware(until) - ahead)
                 for c, code, until in session.execute(codes)]
    else:
        raise TypeError(f"not an operational-store trigger: {trig.kind}")
    unique: dict[tuple[str, str], Candidate] = {}
    for cand in found:
        unique.setdefault((cand.customer_id, cand.occurrence), cand)
    return list(unique.values())
