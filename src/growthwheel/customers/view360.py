"""Customer 360: what the other domains know about one customer, from their own services.

* from the warehouse: the RFM scores and segment (``insight.rfm.rfm_scores``), the lifecycle stage
  and its history at the end of each of the last months (``insight.lifecycle.stages`` with the
  thresholds learned up to the day), predicted CLV and P(alive) (table ``customer_scores``), tags
  (``segments.service.customer_tag_list``) and saved segments (membership as of their refresh);
* from the operational store: coupons held and used (``coupon_codes``), tier, growth and points
  (``loyalty.service.member_out``), messages (the journeys' ``outbox``) and the orders committed
  through the checkout (``checkout_orders``).

Everything is as of ``as_of``, the day segments are evaluated as of (``segments.service``), so a
segment on ``rfm_segment`` or ``lifecycle_stage`` holds this customer exactly when the profile
shows that class or stage.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import ibis
from ibis.backends import BaseBackend
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.insight.lifecycle import Thresholds, stages, thresholds_for
from growthwheel.insight.rfm import rfm_scores
from growthwheel.jobs.models import OutboxRow
from growthwheel.journeys.models import Journey
from growthwheel.loyalty import repository as loyalty_repository
from growthwheel.loyalty.service import member_out
from growthwheel.promotions.models import CheckoutOrder, CouponBatch, CouponCode
from growthwheel.segments import repository as segments_repository
from growthwheel.segments.scores import SCORES_TABLE
from growthwheel.segments.service import customer_tag_list

#: Months of lifecycle history on a profile (stage at each month's end, the latest first).
HISTORY_MONTHS = 6
#: Messages shown on a profile (newest first).
MESSAGES_SHOWN = 20


@dataclass
class WarehouseFacts:
    """What the warehouse knows about a customer as of ``as_of``."""

    as_of: date
    rfm: dict[str, Any] | None = None
    """``segment``, ``value_class``, ``rfm``, ``r_score``, ``f_score``, ``m_score``,
    ``recency_days``, ``frequency``, ``monetary`` (minor units); ``None`` without a paid order."""
    stage: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    """``{"day": date, "stage": str | None}``, the latest first (``None``: no paid order yet)."""
    clv: int | None = None
    """Predicted lifetime value, minor units."""
    p_alive: float | None = None
    scored_at: Any = None
    tags: list[str] = field(default_factory=list)
    segment_ids: list[str] = field(default_factory=list)


def _month_ends(as_of: date, months: int) -> list[date]:
    """``as_of`` and the last day of each of the ``months - 1`` months before it."""
    days = [as_of]
    day = as_of.replace(day=1) - timedelta(days=1)
    while len(days) < months:
        days.append(day)
        day = day.replace(day=1) - timedelta(days=1)
    return days




_RFM_COLUMNS = ("segment", "value_class", "rfm", "r_score", "f_score", "m_score", "recency_days",
                "frequency", "monetary")
_shop_cache: dict[Any, tuple[dict[str, dict[str, Any]], Thresholds]] = {}
_shop_lock = threading.Lock()


def _shop_wide(backend: BaseBackend, as_of: date, key: Any) -> tuple[dict[str, dict[str, Any]], Thresholds]:
    """Every customer's RFM scores and the lifecycle thresholds as of ``as_of`` (shop-wide
    answers: quintiles and repeat gaps), remembered under ``key`` (the caller's warehouse version)
    when one is given, so opening profiles one after another does not rescore the shop."""
    if key is not None:
        with _shop_lock:
            found = _shop_cache.get(key)
        if found is not None:
            return found
    orders = backend.table("orders")
    scores = rfm_scores(orders, as_of).select("customer_id", *_RFM_COLUMNS).to_pyarrow().to_pylist()
    result = ({r["customer_id"]: r for r in scores}, thresholds_for(orders, end=as_of))
    if key is not None:
        with _shop_lock:
            if len(_shop_cache) >= 4:
                _shop_cache.clear()
            _shop_cache[key] = result
    return result


def warehouse_facts(backend: BaseBackend, customer_id: str, as_of: date, *,
                    cache_key: Any = None) -> WarehouseFacts:
    """The warehouse's answers for ``customer_id`` as of ``as_of`` (``cache_key``: see
    :func:`_shop_wide`; give one that changes whenever the warehouse does)."""
    facts = WarehouseFacts(as_of=as_of)
    orders = backend.table("orders")
    by_customer, th = _shop_wide(backend, as_of, None if cache_key is None else (cache_key, as_of))
    found = by_customer.get(customer_id)
    facts.rfm = {c: found[c] for c in _RFM_COLUMNS} if found else None
    own = orders.filter(orders.customer_id == ibis.literal(customer_id))  # a stage needs only theirs
    for day in _month_ends(as_of, HISTORY_MONTHS):
        staged = stages(own, day, th).select("stage").to_pyarrow().to_pylist()
        facts.history.append({"day": day, "stage": staged[0]["stage"] if staged else None})
    facts.stage = facts.history[0]["stage"]
    if SCORES_TABLE in backend.list_tables():
        table = backend.table(SCORES_TABLE)
        wanted = [c for c in ("clv", "p_alive", "calibration_end") if c in table.columns]
        rows = table.filter(table.customer_id == ibis.literal(customer_id)).select(*wanted) \
            .limit(1).to_pyarrow().to_pylist() if wanted else []
        if rows:
            row = rows[0]
            clv = row.get("clv")
            facts.clv = round(clv) if clv is not None else None
            facts.p_alive = float(row["p_alive"]) if row.get("p_alive") is not None else None
            facts.scored_at = row.get("calibration_end")
    facts.tags = customer_tag_list(backend, customer_id)
    if segments_repository.has_table(backend, segments_repository.MEMBERS_TABLE):
        members = backend.table(segments_repository.MEMBERS_TABLE)
        ids = members.filter(members.customer_id == ibis.literal(customer_id)).select("segment_id")
        facts.segment_ids = sorted(str(r["segment_id"]) for r in ids.to_pyarrow().to_pylist())
    return facts


@dataclass
class StoreFacts:
    """What the operational store knows about a customer."""

    coupons: list[dict[str, Any]] = field(default_factory=list)
    """``code``, ``batch_id``, ``batch``, ``issued_at``, ``uses``, ``max_uses``, ``valid_until``."""
    tier: str | None = None
    tier_name: str | None = None
    growth: int = 0
    points_balance: int = 0
    points_spendable: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    """``channel``, ``status``, ``journey``, ``step``, ``created_at``, ``sent_at``."""
    checkout_orders: list[dict[str, Any]] = field(default_factory=list)
    """``order_id``, ``committed_at``, ``status``, ``total``, ``refunded`` (minor units)."""
    segment_names: dict[str, str] = field(default_factory=dict)


def store_facts(session: Session, customer_id: str, now: datetime, segment_ids: list[str]) -> StoreFacts:
    """The operational store's answers for ``customer_id``."""
    facts = StoreFacts()
    rows = session.execute(
        select(CouponCode, CouponBatch.name, CouponBatch.valid_until)
        .join(CouponBatch, CouponBatch.id == CouponCode.batch_id)
        .where(CouponCode.customer_id == customer_id)
        .order_by(CouponCode.issued_at.desc(), CouponCode.code)
    ).all()
    facts.coupons = [{"code": c.code, "batch_id": c.batch_id, "batch": name, "issued_at": c.issued_at,
                      "uses": c.uses, "max_uses": c.max_uses, "valid_until": until}
                     for c, name, until in rows]
    member = member_out(session, customer_id, now)
    facts.tier, facts.growth = member.tier, member.growth
    facts.points_balance, facts.points_spendable = member.points_balance, member.points_spendable
    if member.tier:
        names = {t.code: t.name for t in loyalty_repository.tiers(session)}
        facts.tier_name = names.get(member.tier, member.tier)
    outbox = session.execute(
        select(OutboxRow, Journey.name).outerjoin(Journey, Journey.id == OutboxRow.journey_id)
        .where(OutboxRow.customer_id == customer_id)
        .order_by(OutboxRow.created_at.desc()).limit(MESSAGES_SHOWN)
    ).all()
    facts.messages = [{"channel": m.channel, "status": m.status, "journey": journey or m.journey_id,
                       "journey_id": m.journey_id, "step": m.step_id, "created_at": m.created_at,
                       "sent_at": m.sent_at} for m, journey in outbox]
    orders = session.scalars(select(CheckoutOrder).where(CheckoutOrder.customer_id == customer_id)
                             .order_by(CheckoutOrder.committed_at.desc()))
    facts.checkout_orders = [{"order_id": o.id, "committed_at": o.committed_at, "status": o.status,
                              "total": o.total, "refunded": o.refunded_amount} for o in orders]
    for seg_id in segment_ids:
        seg = segments_repository.segment_by_id(session, seg_id)
        if seg is not None:
            facts.segment_names[seg.id] = seg.name
    return facts
