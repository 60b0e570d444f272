"""Social selling over the operational store: referral, group buying, bargain. Never commits.

Whoever owns the unit of work (request, CLI command, job) commits. Every contended counter moves
by one **atomic conditional UPDATE** (``… SET seats_taken = seats_taken + 1 WHERE … AND
seats_taken < size``): PostgreSQL re-checks the condition on the latest row version after
waiting for the row lock, SQLite serialises writers (the UPDATE is the transaction's first write,
so it waits on ``busy_timeout`` rather than failing on a stale snapshot). So the last seat of a
group goes to exactly one buyer and two helpers cutting at once take cuts n and n + 1, never the
same one.

Hooks for the orders code (called inside its own transaction, after an order is paid / refunded):

- :func:`on_order_paid` ``(session, order_id, customer_id, paid_at, phone, address, device)``:
  remembers the customer's contact signals; if the customer is a bound invitee and this is the
  first paid order, starts the refund window (or cancels the referral when the order's phone,
  address or device is the inviter's). Idempotent on ``order_id``.
- :func:`on_order_refunded` ``(session, order_id, refunded_at)``: a refund of the qualifying
  order inside its window cancels the referral; later refunds change nothing. Idempotent.

Jobs: :func:`settle_referrals` (``social.referral.settle(now)``), :func:`expire_groups`
(``social.groups.expire(now)``), :func:`expire_bargains`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ibis.backends import BaseBackend
from sqlalchemy import bindparam, case, literal, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from growthwheel.accounts.models import UTCDateTime
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.kit.ids import canonical_id
from growthwheel.kit.money import currency_exponent
from growthwheel.promotions import repository as promotions_repository
from growthwheel.promotions.models import CheckoutOrder
from growthwheel.social import bargain as bargain_core
from growthwheel.social import groups as groups_core
from growthwheel.social import referral as referral_core
from growthwheel.social.models import (
    Bargain,
    BargainCut,
    BargainOffer,
    Fingerprint,
    Group,
    GroupDeal,
    GroupMember,
    InviteCode,
    PaidOrder,
    Referral,
    ReferralAttempt,
    ReferralPolicyRow,
    ReferralReward,
)
from growthwheel.social.referral import ReferralPolicy, Reward
from growthwheel.store.db import insert_for
from growthwheel.warehouse.schema import PAID_STATUSES

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class SocialNotFoundError(GrowthwheelError):
    """No such invite code, group deal, group, bargain offer or bargain."""

    code = "not_found"
    status = 404


class GroupFullError(GrowthwheelError):
    """Every seat of the group is taken."""

    code = "group_full"
    status = 409


class GroupClosedError(GrowthwheelError):
    """The group failed or its time ran out; it takes no more members."""

    code = "group_closed"
    status = 409


class AlreadyJoinedError(GrowthwheelError):
    """The customer already holds a seat in this group."""

    code = "already_joined"
    status = 409


class DealUnavailableError(GrowthwheelError):
    """The deal is inactive, outside its dates, or has no group slot left (``max_groups``)."""

    code = "deal_unavailable"
    status = 409


class BargainClosedError(GrowthwheelError):
    """The bargain reached its floor or expired; it takes no more cuts."""

    code = "bargain_closed"
    status = 409


class AlreadyCutError(GrowthwheelError):
    """This helper already cut this bargain (one cut per helper)."""

    code = "already_cut"
    status = 409


class BargainExistsError(GrowthwheelError):
    """The customer already has an open bargain on this offer."""

    code = "bargain_exists"
    status = 409


def _currency(currency: str) -> str:
    try:
        currency_exponent(currency)
    except ValueError:
        raise InvalidArgumentError(f"currency: unknown currency code {currency!r}") from None
    return currency.upper()


def _aware(value: datetime, field: str) -> datetime:
    """``value`` if it is an aware time in a sane range, else ``InvalidArgumentError`` naming ``field``."""
    if value.tzinfo is None:
        raise InvalidArgumentError(f"{field}: a time with a UTC offset is needed")
    if not 1970 <= value.year <= 9000:
        raise InvalidArgumentError(f"{field}: {value.isoformat()} is out of range")
    return value


# --------------------------------------------------------------------------------------------
# Referral (邀请有礼)
# --------------------------------------------------------------------------------------------

POLICY_ID = 1


def get_policy(session: Session) -> ReferralPolicy:
    """The referral programme's settings (``ReferralPolicy()`` defaults until an operator sets them)."""
    row = session.get(ReferralPolicyRow, POLICY_ID)
    if row is None:
        return ReferralPolicy()
    return ReferralPolicy(
        refund_window_days=row.refund_window_days,
        inviter=Reward(row.inviter_reward, row.inviter_points, row.inviter_coupon_batch_id),  # type: ignore[arg-type]
        invitee=Reward(row.invitee_reward, row.invitee_points, row.invitee_coupon_batch_id),  # type: ignore[arg-type]
    )


def set_policy(session: Session, policy: ReferralPolicy, *, principal: Principal | None) -> ReferralPolicy:
    """Store the programme's settings (they apply to orders paid from now on)."""
    row = session.get(ReferralPolicyRow, POLICY_ID) or ReferralPolicyRow(id=POLICY_ID)
    row.refund_window_days = policy.refund_window_days
    row.inviter_reward, row.inviter_points = policy.inviter.kind, policy.inviter.points
    row.inviter_coupon_batch_id = policy.inviter.coupon_batch_id
    row.invitee_reward, row.invitee_points = policy.invitee.kind, policy.invitee.points
    row.invitee_coupon_batch_id = policy.invitee.coupon_batch_id
    row.updated_by = principal.name if principal else "system"
    session.add(row)
    session.flush()
    audit(session, principal, "social.referral_policy", "referral policy",
          {"refund_window_days": policy.refund_window_days,
           "inviter": policy.inviter.__dict__, "invitee": policy.invitee.__dict__})
    return policy


def _remember_signals(
    session: Session, customer_id: str, signals: dict[referral_core.SignalKind, str], now: datetime
) -> None:
    """Add the customer's new (kind, digest) pairs; pairs already known are left alone."""
    if not signals:
        return
    known = _known_signals(session, customer_id)
    for kind, value in signals.items():
        if (kind, value) in known:
            continue
        try:
            with session.begin_nested():
                session.add(Fingerprint(customer_id=customer_id, kind=kind, digest=value, seen_at=now))
        except IntegrityError:  # the same pair written at the same moment by another request
            pass


def _known_signals(session: Session, customer_id: str) -> set[tuple[str, str]]:
    rows = session.execute(
        select(Fingerprint.kind, Fingerprint.digest).where(Fingerprint.customer_id == customer_id)
    ).all()
    return {(kind, value) for kind, value in rows}


def invite_code(
    session: Session, customer_id: str, *, now: datetime,
    phone: str | None = None, address: str | None = None, device: str | None = None,
) -> InviteCode:
    """The customer's invite code, created on first request; the contact signals given are kept
    (as digests) for the self-referral checks of the people they invite."""
    _aware(now, "now")
    customer_id = canonical_id(customer_id)
    _remember_signals(session, customer_id, referral_core.signal_digests(phone, address, device), now)
    existing = session.get(InviteCode, customer_id)
    if existing is not None:
        return existing
    for _attempt in range(5):
        row = InviteCode(customer_id=customer_id, code=referral_core.new_invite_code(), created_at=now)
        try:
            with session.begin_nested():
                session.add(row)
            return row
        except IntegrityError:  # a code collision (rare) or a concurrent first request
            concurrent = session.get(InviteCode, customer_id)
            if concurrent is not None:
                return concurrent
    raise GrowthwheelError("could not draw an unused invite code")  # pragma: no cover - 29⁸ codes


@dataclass(frozen=True)
class BindOutcome:
    """What a bind attempt did: ``referral`` when bound, else ``reason`` (a machine code)."""

    referral: Referral | None
    reason: str | None
    inviter_id: str | None

    @property
    def bound(self) -> bool:
        """Whether the invitee is now bound to the inviter."""
        return self.referral is not None


BIND_REASONS = {
    "unknown_code": "no customer has this invite code",
    "own_code": "a customer cannot use their own invite code",
    "already_bound": "this customer is already bound to an inviter",
    "not_new_customer": "only customers without a paid order can be invited",
    "referral_cycle": "the inviter was invited by this customer (directly or through others)",
    "same_phone": "the invitee's phone number is the inviter's",
    "same_address": "the invitee's shipping address is the inviter's",
    "same_device": "the invitee's device is the inviter's",
}
"""Why a bind attempt was refused, by reason code."""


PriorOrders = Callable[[str], bool]
"""Whether a customer has a paid order that Growthwheel's own tables do not know (the
warehouse's imported orders: :func:`warehouse_prior_orders`)."""

MAX_CHAIN = 1000
"""How far up the inviter chain a bind looks for a cycle (a chain is one lookup per step)."""
_BIND_LOCK = 0x67770B1D
"""PostgreSQL advisory lock key that serialises binds (see :func:`_serialise_binds`)."""


def _serialise_binds(session: Session) -> None:
    """Make binds run one at a time until this transaction ends, so that two binds that would
    close a cycle (A invites B while B invites A) cannot both pass the cycle check. Binds happen
    once per customer, so a single lock costs nothing that matters. PostgreSQL: a transaction-level
    advisory lock; SQLite: the write lock, taken now (``BEGIN IMMEDIATE``)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BIND_LOCK})
    else:
        promotions_repository.begin_write(session)


def _invited_by(session: Session, invitee_id: str, inviter_id: str) -> bool:
    """Whether ``inviter_id`` is ``invitee_id``'s invitee, or an invitee's invitee, and so on
    (whatever the referral's status: a cancelled reward does not undo who invited whom)."""
    current, seen = inviter_id, {inviter_id}
    for _step in range(MAX_CHAIN):
        above = session.scalar(select(Referral.inviter_id).where(Referral.invitee_id == current))
        if above is None or above in seen:
            return False
        if above == invitee_id:
            return True
        seen.add(above)
        current = above
    return False


def _has_paid_order(session: Session, customer_id: str, prior_orders: PriorOrders | None) -> bool:
    """A paid order reported through the hooks, committed at checkout, or (``prior_orders``)
    imported into the warehouse."""
    if session.scalar(select(PaidOrder.order_id).where(PaidOrder.customer_id == customer_id).limit(1)):
        return True
    if session.scalar(select(CheckoutOrder.id).where(CheckoutOrder.customer_id == customer_id).limit(1)):
        return True
    return prior_orders is not None and prior_orders(customer_id)


def warehouse_prior_orders(backend: BaseBackend) -> PriorOrders:
    """A :data:`PriorOrders` over the warehouse's ``orders``: any order in a paid status
    (``schema.PAID_STATUSES``, refunded ones included: a customer who bought is not new)."""
    def lookup(customer_id: str) -> bool:
        if "orders" not in backend.list_tables():
            return False
        orders = backend.table("orders")
        found = orders.filter((orders.customer_id == customer_id)
                              & orders.status.isin(list(PAID_STATUSES))).limit(1).count()
        return int(found.to_pyarrow().as_py()) > 0

    return lookup


def bind(
    session: Session, invitee_id: str, code: str, *, now: datetime,
    phone: str | None = None, address: str | None = None, device: str | None = None,
    prior_orders: PriorOrders | None = None,
) -> BindOutcome:
    """Bind ``invitee_id`` to the owner of ``code`` (once per invitee, a new customer only).

    Refusals are not raised but returned with their reason, and the attempt is recorded either
    way (``social_referral_attempts``), so the caller can commit the record of a refused attempt.
    A malformed code raises ``InvalidArgumentError`` (field ``code``). "New" means no paid order
    anywhere Growthwheel can see: reported, committed at checkout, or (``prior_orders``, e.g.
    :func:`warehouse_prior_orders`) imported. A bind that would close a cycle of invitations
    (A → B → A, or longer) is refused as ``referral_cycle``; binds are serialised so that two
    that would close one together cannot both succeed.
    """
    _aware(now, "now")
    invitee_id = canonical_id(invitee_id, "invitee_id")
    normalised = referral_core.normalise_code(code)
    signals = referral_core.signal_digests(phone, address, device)
    _serialise_binds(session)
    _remember_signals(session, invitee_id, signals, now)
    owner = session.scalar(select(InviteCode).where(InviteCode.code == normalised))
    inviter_id = owner.customer_id if owner else None
    reason: str | None = None
    referral: Referral | None = None
    if owner is None:
        reason = "unknown_code"
    elif owner.customer_id == invitee_id:
        reason = "own_code"
    elif session.scalar(select(Referral.id).where(Referral.invitee_id == invitee_id)) is not None:
        reason = "already_bound"
    elif _has_paid_order(session, invitee_id, prior_orders):
        reason = "not_new_customer"
    elif _invited_by(session, invitee_id, owner.customer_id):
        reason = "referral_cycle"
    else:
        reason = referral_core.self_referral_reason(signals, _known_signals(session, owner.customer_id))
    if reason is None and owner is not None:
        referral = Referral(invitee_id=invitee_id, inviter_id=owner.customer_id, code=normalised,
                            status="bound", bound_at=now)
        try:
            with session.begin_nested():
                session.add(referral)
        except IntegrityError:  # a concurrent bind of the same invitee won
            referral, reason = None, "already_bound"
    session.add(ReferralAttempt(at=now, invitee_id=invitee_id, inviter_id=inviter_id, code=normalised,
                                outcome="bound" if referral else "refused", reason=reason))
    session.flush()
    return BindOutcome(referral=referral, reason=reason, inviter_id=inviter_id)


def _record_paid(session: Session, order_id: str, customer_id: str, paid_at: datetime) -> bool:
    """Insert the paid order unless its id is known (``INSERT … ON CONFLICT DO NOTHING``); whether
    it was inserted."""
    dialect = session.get_bind().dialect.name
    statement = _RECORD_PAID.get(dialect)
    if statement is None:
        table = PaidOrder.__table__
        statement = _RECORD_PAID[dialect] = (
            insert_for(session)(table).on_conflict_do_nothing(index_elements=[table.c.order_id])
            .returning(table.c.order_id))
    params = {"order_id": order_id, "customer_id": customer_id, "paid_at": paid_at, "refunded_at": None}
    return session.execute(statement, params).first() is not None


_RECORD_PAID: dict[str, Any] = {}
"""The statement of :func:`_record_paid` by dialect (built once; the values bound per call)."""
_BOUND_REFERRAL = select(Referral).where(Referral.invitee_id == bindparam("b_invitee"),
                                         Referral.status == "bound")


def on_order_paid(
    session: Session, order_id: str, customer_id: str, paid_at: datetime,
    phone: str | None = None, address: str | None = None, device: str | None = None,
) -> str | None:
    """Hook: an order was paid. Returns what it did to a referral: ``"pending"`` (window started),
    ``"cancelled:<reason>"`` (self-referral), or ``None`` (no referral concerned, or a repeat).

    ``phone`` / ``address`` / ``device`` are the order's contact phone, shipping address and the
    device it was placed from (any may be ``None``).
    """
    _aware(paid_at, "paid_at")
    order_id, customer_id = canonical_id(order_id, "order_id"), canonical_id(customer_id)
    # One statement: reported before (or at the same moment by another call, which PostgreSQL
    # waits for) inserts nothing, and the hook does nothing: idempotent.
    if not _record_paid(session, order_id, customer_id, paid_at):
        return None
    signals = referral_core.signal_digests(phone, address, device)
    referral = session.scalar(_BOUND_REFERRAL, {"b_invitee": customer_id})
    if referral is None:
        _remember_signals(session, customer_id, signals, paid_at)
        return None
    reason = referral_core.self_referral_reason(signals, _known_signals(session, referral.inviter_id))
    _remember_signals(session, customer_id, signals, paid_at)
    values: dict[str, Any]
    if reason is not None:
        values = {"status": "cancelled", "cancelled_at": paid_at, "cancel_reason": reason,
                  "first_order_id": order_id, "first_paid_at": paid_at}
    else:
        values = {"status": "pending", "first_order_id": order_id, "first_paid_at": paid_at,
                  "eligible_at": get_policy(session).eligible_at(paid_at)}
    done = session.execute(
        update(Referral).where(Referral.id == referral.id, Referral.status == "bound").values(**values)
        .execution_options(synchronize_session=False)
    )
    session.expire(referral)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return None  # another order of the same customer was first
    return "pending" if reason is None else f"cancelled:{reason}"


def on_order_refunded(session: Session, order_id: str, refunded_at: datetime) -> str | None:
    """Hook: an order was refunded (fully or partly). Returns ``"cancelled"`` when that cancels a
    referral (the qualifying order, inside its window), else ``None``."""
    _aware(refunded_at, "refunded_at")
    order = session.get(PaidOrder, order_id)
    if order is None:
        return None
    if order.refunded_at is None:
        order.refunded_at = refunded_at
    referral = session.scalar(
        select(Referral).where(Referral.first_order_id == order_id, Referral.status == "pending")
    )
    if referral is None or referral.eligible_at is None:
        return None
    if not referral_core.refund_cancels(referral.eligible_at, refunded_at):
        return None
    done = session.execute(
        update(Referral).where(Referral.id == referral.id, Referral.status == "pending")
        .values(status="cancelled", cancelled_at=refunded_at, cancel_reason="refunded_in_window")
        .execution_options(synchronize_session=False)
    )
    session.expire(referral)
    return "cancelled" if done.rowcount == 1 else None  # type: ignore[attr-defined]


Granter = Callable[[Session, ReferralReward, datetime], str]
"""Grants one reward at a time (adds the points / issues the coupon) and returns a reference to it; raises a
``GrowthwheelError`` when it cannot (the reward then stays pending). See ``social.grants``."""


@dataclass(frozen=True)
class SettleResult:
    """What a settlement run did."""

    rewarded: list[str]
    """Referral ids settled in this run."""
    rewards: list[ReferralReward]
    """Reward rows written in this run (two per referral)."""
    granted: list[ReferralReward]
    """Rewards granted in this run (new ones and earlier ones that had failed)."""
    failed: list[ReferralReward]
    """Rewards whose grant failed in this run; ``grant_error`` says why, they stay pending."""


def settle_referrals(session: Session, now: datetime, granter: Granter | None = None) -> SettleResult:
    """Job ``social.referral.settle(now)``: every pending referral whose window has passed by
    ``now`` is settled; both sides get a reward row (what the policy says at settlement).

    Safe to run concurrently: each referral is claimed by a conditional UPDATE. With ``granter``
    every pending reward row (new, or left pending by an earlier failure) is then granted, each in
    its own savepoint so one failure (a coupon batch that ran out, say) neither blocks the others
    nor loses the settlement; without, the rows stay ``pending`` for whoever grants them.
    """
    _aware(now, "now")
    policy = get_policy(session)
    due = session.scalars(
        select(Referral.id).where(Referral.status == "pending", Referral.eligible_at <= now)
        .order_by(Referral.eligible_at, Referral.id)
    ).all()
    rewarded: list[str] = []
    rewards: list[ReferralReward] = []
    for referral_id in due:
        claimed = session.execute(
            update(Referral).where(Referral.id == referral_id, Referral.status == "pending",
                                   Referral.eligible_at <= now)
            .values(status="rewarded", settled_at=now).execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        referral = session.get(Referral, referral_id)
        assert referral is not None
        session.refresh(referral)
        for side, customer, reward in (("inviter", referral.inviter_id, policy.inviter),
                                       ("invitee", referral.invitee_id, policy.invitee)):
            row = ReferralReward(referral_id=referral_id, side=side, customer_id=customer, kind=reward.kind,
                                 points=reward.points, coupon_batch_id=reward.coupon_batch_id,
                                 status="pending", created_at=now)
            session.add(row)
            rewards.append(row)
        rewarded.append(referral_id)
    session.flush()
    granted: list[ReferralReward] = []
    failed: list[ReferralReward] = []
    if granter is not None:
        pending = session.scalars(
            select(ReferralReward).where(ReferralReward.status == "pending")
            .order_by(ReferralReward.created_at, ReferralReward.id).with_for_update(skip_locked=True)
        ).all()
        for row in pending:
            try:
                with session.begin_nested():
                    ref = granter(session, row, now)
            except GrowthwheelError as exc:
                row.grant_error = exc.message[:255]
                failed.append(row)
                continue
            row.status, row.granted_at, row.grant_ref, row.grant_error = "granted", now, ref[:128], None
            granted.append(row)
        session.flush()
    return SettleResult(rewarded=rewarded, rewards=rewards, granted=granted, failed=failed)


@dataclass(frozen=True)
class ReferralView:
    """A customer's side of the programme."""

    customer_id: str
    code: str | None
    inviter: Referral | None
    invitees: list[Referral]
    rewards: list[ReferralReward]


def referral_view(session: Session, customer_id: str) -> ReferralView:
    """The customer's code, who invited them, whom they invited and their rewards."""
    customer_id = canonical_id(customer_id)
    code = session.get(InviteCode, customer_id)
    return ReferralView(
        customer_id=customer_id,
        code=code.code if code else None,
        inviter=session.scalar(select(Referral).where(Referral.invitee_id == customer_id)),
        invitees=list(session.scalars(select(Referral).where(Referral.inviter_id == customer_id)
                                      .order_by(Referral.bound_at, Referral.id))),
        rewards=list(session.scalars(select(ReferralReward).where(ReferralReward.customer_id == customer_id)
                                     .order_by(ReferralReward.created_at, ReferralReward.id))),
    )


# --------------------------------------------------------------------------------------------
# Group buying (拼团)
# --------------------------------------------------------------------------------------------


def create_deal(
    session: Session, *, name: str, sku: str, currency: str, group_price: int, group_size: int,
    time_limit_minutes: int, list_price: int | None = None, max_groups: int | None = None,
    starts_at: datetime | None = None, ends_at: datetime | None = None, principal: Principal | None,
) -> GroupDeal:
    """A new group-buying deal (validated by ``groups.validate_deal``)."""
    for field, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None:
            _aware(value, field)
    groups_core.validate_deal(group_price, group_size, time_limit_minutes, list_price, max_groups,
                              starts_at, ends_at)
    deal = GroupDeal(name=name, sku=sku, currency=_currency(currency), list_price=list_price,
                     group_price=group_price, group_size=group_size, time_limit_minutes=time_limit_minutes,
                     max_groups=max_groups, groups_open=0, starts_at=starts_at, ends_at=ends_at,
                     active=True, created_by=principal.name if principal else "system")
    session.add(deal)
    session.flush()
    audit(session, principal, "social.group_deal.create", f"group_deal:{deal.id}",
          {"sku": sku, "group_price": group_price, "group_size": group_size})
    return deal


def get_deal(session: Session, deal_id: str) -> GroupDeal:
    """The deal, or ``SocialNotFoundError``."""
    deal = session.get(GroupDeal, deal_id)
    if deal is None:
        raise SocialNotFoundError(f"no group deal {deal_id!r}")
    return deal


def get_group(session: Session, group_id: str) -> Group:
    """The group, or ``SocialNotFoundError``."""
    group = session.get(Group, group_id)
    if group is None:
        raise SocialNotFoundError(f"no group {group_id!r}")
    return group


def group_members(session: Session, group_id: str) -> list[GroupMember]:
    """The group's members, leader first, then in joining order."""
    return list(session.scalars(
        select(GroupMember).where(GroupMember.group_id == group_id)
        .order_by(GroupMember.is_leader.desc(), GroupMember.joined_at, GroupMember.id)
    ))


def open_group(
    session: Session, deal_id: str, leader_id: str, *, now: datetime,
    order_id: str | None = None, paid: bool = False,
) -> Group:
    """The leader opens a group of the deal and takes its first seat (holding the group price)."""
    _aware(now, "now")
    leader_id = canonical_id(leader_id, "customer_id")
    deal = get_deal(session, deal_id)
    if not deal.active or (deal.starts_at and now < deal.starts_at) or (deal.ends_at and now >= deal.ends_at):
        raise DealUnavailableError(f"group deal {deal_id!r} is not running now")
    slot = session.execute(
        update(GroupDeal)
        .where(GroupDeal.id == deal_id,
               GroupDeal.max_groups.is_(None) | (GroupDeal.groups_open < GroupDeal.max_groups))
        .values(groups_open=GroupDeal.groups_open + 1).execution_options(synchronize_session=False)
    )
    if slot.rowcount != 1:  # type: ignore[attr-defined]
        raise DealUnavailableError(f"group deal {deal_id!r} has no group left to open (max_groups reached)")
    group = Group(deal_id=deal_id, leader_id=leader_id, size=deal.group_size, seats_taken=1, status="open",
                  opened_at=now,
                  expires_at=groups_core.group_deadline(now, deal.time_limit_minutes, deal.ends_at))
    session.add(group)
    session.flush()
    session.add(GroupMember(group_id=group.id, customer_id=leader_id, order_id=order_id,
                            amount=deal.group_price, paid=paid, is_leader=True, status="held", joined_at=now))
    session.flush()
    session.expire(deal)
    return group


def join_group(
    session: Session, group_id: str, customer_id: str, *, now: datetime,
    order_id: str | None = None, paid: bool = False,
) -> GroupMember:
    """Take a seat in an open group. The seat is claimed by one conditional UPDATE, so when many
    buyers race for the last seat exactly one gets it and the others get ``GroupFullError``.
    Taking the last seat completes the group in the same statement."""
    _aware(now, "now")
    customer_id = canonical_id(customer_id)
    group = get_group(session, group_id)
    if session.scalar(select(GroupMember.id).where(GroupMember.group_id == group_id,
                                                   GroupMember.customer_id == customer_id)):
        raise AlreadyJoinedError(f"customer {customer_id!r} is already in group {group_id!r}")
    deal = get_deal(session, group.deal_id)
    member = GroupMember(group_id=group_id, customer_id=customer_id, order_id=order_id,
                         amount=deal.group_price, paid=paid, is_leader=False, status="held", joined_at=now)
    # The member row first, in a savepoint: the unique (group, customer) decides a race of one
    # customer joining twice before any seat is taken, and a seat that cannot be claimed takes the
    # row back with it, so the seat count and the members never disagree.
    savepoint = session.begin_nested()
    try:
        session.add(member)
        session.flush()
    except IntegrityError:
        savepoint.rollback()
        raise AlreadyJoinedError(f"customer {customer_id!r} is already in group {group_id!r}") from None
    claimed = session.execute(
        update(Group)
        .where(Group.id == group_id, Group.status == "open", Group.seats_taken < Group.size,
               Group.expires_at > now)
        .values(seats_taken=Group.seats_taken + 1,
                status=_case_complete(),
                completed_at=_case_completed_at(now))
        .execution_options(synchronize_session=False)
    )
    session.expire(group)
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        savepoint.rollback()
        session.refresh(group)
        if group.status == "complete" or group.seats_taken >= group.size:
            raise GroupFullError(f"group {group_id!r} is full")
        state = groups_core.shown_status(group.status, group.expires_at, now)
        raise GroupClosedError(f"group {group_id!r} is {state} and takes no more members")
    savepoint.commit()
    return member


def _case_complete() -> Any:
    """``status`` after taking a seat: ``complete`` when it was the last one."""
    return case((Group.seats_taken + 1 >= Group.size, "complete"), else_=Group.status)


def _case_completed_at(now: datetime) -> Any:
    """``completed_at`` after taking a seat: ``now`` when it was the last one."""
    return case((Group.seats_taken + 1 >= Group.size, literal(now, UTCDateTime())), else_=Group.completed_at)


@dataclass(frozen=True)
class GroupRefund:
    """Money the shop must give back to a member of a failed group."""

    group_id: str
    customer_id: str
    order_id: str | None
    amount: int
    currency: str


def expire_groups(session: Session, now: datetime) -> list[GroupRefund]:
    """Job ``social.groups.expire(now)``: every open group past its deadline fails; its members'
    holds are released and the paid ones listed as refunds to issue; the deal gets the slot back."""
    _aware(now, "now")
    due = session.scalars(
        select(Group.id).where(Group.status == "open", Group.expires_at <= now)
        .order_by(Group.expires_at, Group.id)
    ).all()
    refunds: list[GroupRefund] = []
    for group_id in due:
        failed = session.execute(
            update(Group).where(Group.id == group_id, Group.status == "open", Group.expires_at <= now)
            .values(status="failed", failed_at=now).execution_options(synchronize_session=False)
        )
        if failed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # filled or failed by someone else meanwhile
        group = session.get(Group, group_id)
        assert group is not None
        session.refresh(group)
        deal = get_deal(session, group.deal_id)
        session.execute(
            update(GroupDeal).where(GroupDeal.id == deal.id, GroupDeal.groups_open > 0)
            .values(groups_open=GroupDeal.groups_open - 1).execution_options(synchronize_session=False)
        )
        for member in group_members(session, group_id):
            if member.status != "held":
                continue
            member.status, member.released_at = "released", now
            member.refund_amount = member.amount if member.paid else 0
            if member.paid:
                refunds.append(GroupRefund(group_id=group_id, customer_id=member.customer_id,
                                           order_id=member.order_id, amount=member.amount,
                                           currency=deal.currency))
    session.flush()
    return refunds


# --------------------------------------------------------------------------------------------
# Bargain (砍价)
# --------------------------------------------------------------------------------------------

MAX_BARGAIN_MINUTES = 30 * 24 * 60


def create_offer(
    session: Session, *, name: str, sku: str, currency: str, start_price: int, floor_price: int, cuts: int,
    duration_minutes: int, principal: Principal | None,
) -> BargainOffer:
    """A new bargain offer (validated by ``bargain.validate``)."""
    bargain_core.validate(start_price, floor_price, cuts)
    if not 1 <= duration_minutes <= MAX_BARGAIN_MINUTES:
        raise InvalidArgumentError(f"duration_minutes: must be between 1 and {MAX_BARGAIN_MINUTES}")
    offer = BargainOffer(name=name, sku=sku, currency=_currency(currency), start_price=start_price,
                         floor_price=floor_price, cuts=cuts, duration_minutes=duration_minutes, active=True,
                         created_by=principal.name if principal else "system")
    session.add(offer)
    session.flush()
    audit(session, principal, "social.bargain_offer.create", f"bargain_offer:{offer.id}",
          {"sku": sku, "start_price": start_price, "floor_price": floor_price, "cuts": cuts})
    return offer


def get_offer(session: Session, offer_id: str) -> BargainOffer:
    """The offer, or ``SocialNotFoundError``."""
    offer = session.get(BargainOffer, offer_id)
    if offer is None:
        raise SocialNotFoundError(f"no bargain offer {offer_id!r}")
    return offer


def get_bargain(session: Session, bargain_id: str) -> Bargain:
    """The bargain, or ``SocialNotFoundError``."""
    found = session.get(Bargain, bargain_id)
    if found is None:
        raise SocialNotFoundError(f"no bargain {bargain_id!r}")
    return found


def bargain_cuts(session: Session, bargain_id: str) -> list[BargainCut]:
    """The bargain's cuts in order."""
    return list(session.scalars(select(BargainCut).where(BargainCut.bargain_id == bargain_id)
                                .order_by(BargainCut.seq)))


def start_bargain(session: Session, offer_id: str, customer_id: str, *, now: datetime) -> Bargain:
    """The customer starts a bargain on the offer (one open bargain per customer and offer)."""
    _aware(now, "now")
    customer_id = canonical_id(customer_id)
    offer = get_offer(session, offer_id)
    if not offer.active:
        raise DealUnavailableError(f"bargain offer {offer_id!r} is not active")
    exists = BargainExistsError(f"customer {customer_id!r} already has an open bargain on {offer_id!r}")
    if session.scalar(select(Bargain.id).where(
        Bargain.offer_id == offer_id, Bargain.customer_id == customer_id, Bargain.status == "open",
        Bargain.expires_at > now,
    )):
        raise exists
    # The partial unique index (offer, customer) WHERE status = 'open' is what holds under a race:
    # an earlier bargain whose time ran out is closed first so that it does not count.
    session.execute(
        update(Bargain).where(Bargain.offer_id == offer_id, Bargain.customer_id == customer_id,
                              Bargain.status == "open", Bargain.expires_at <= now)
        .values(status="expired").execution_options(synchronize_session=False)
    )
    row = Bargain(offer_id=offer_id, customer_id=customer_id, currency=offer.currency,
                  start_price=offer.start_price, floor_price=offer.floor_price, cuts_total=offer.cuts,
                  cuts_done=0, current_price=offer.start_price, seed=secrets.randbits(62), status="open",
                  started_at=now, expires_at=now + timedelta(minutes=offer.duration_minutes))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent start for the same customer and offer won
        raise exists from None
    return row


def cut(session: Session, bargain_id: str, helper_id: str, *, now: datetime) -> BargainCut:
    """A helper cuts the bargain once. The cut number is claimed by a conditional UPDATE
    (``cuts_done + 1 … WHERE cuts_done < cuts_total``), so concurrent helpers get distinct
    numbers and the amounts of ``cut_sequence`` never take the price below the floor."""
    _aware(now, "now")
    helper_id = canonical_id(helper_id, "helper_id")
    target = get_bargain(session, bargain_id)
    if helper_id == target.customer_id:
        raise InvalidArgumentError("helper_id: customers cannot cut their own bargain")
    if session.scalar(select(BargainCut.id).where(BargainCut.bargain_id == bargain_id,
                                                  BargainCut.helper_id == helper_id)):
        raise AlreadyCutError(f"helper {helper_id!r} already cut bargain {bargain_id!r}")
    # The claim of the cut number and the cut row share one savepoint: a helper refused by the
    # unique (bargain, helper) gives the number back, even if the caller then commits.
    savepoint = session.begin_nested()
    seq = session.scalar(
        update(Bargain)
        .where(Bargain.id == bargain_id, Bargain.status == "open", Bargain.cuts_done < Bargain.cuts_total,
               Bargain.expires_at > now)
        .values(cuts_done=Bargain.cuts_done + 1).returning(Bargain.cuts_done)
        .execution_options(synchronize_session=False)
    )
    session.expire(target)
    if seq is None:
        savepoint.rollback()
        session.refresh(target)
        state = "expired" if target.status == "open" and target.expires_at <= now else target.status
        raise BargainClosedError(f"bargain {bargain_id!r} is {state} and takes no more cuts")
    sequence = bargain_core.cut_sequence(target.start_price, target.floor_price, target.cuts_total,
                                         target.seed)
    price = bargain_core.price_after(target.start_price, sequence, seq)
    row = BargainCut(bargain_id=bargain_id, helper_id=helper_id, seq=seq, amount=sequence[seq - 1],
                     price_after=price, at=now)
    try:
        session.add(row)
        session.flush()
    except IntegrityError:
        savepoint.rollback()
        raise AlreadyCutError(f"helper {helper_id!r} already cut bargain {bargain_id!r}") from None
    savepoint.commit()
    # The row stays locked (PostgreSQL) / the database write-locked (SQLite) until commit, so the
    # price written here is the one for the latest cut: a later cut waits for this transaction.
    reached = seq == target.cuts_total
    session.execute(
        update(Bargain).where(Bargain.id == bargain_id, Bargain.cuts_done == seq)
        .values(current_price=price, status="reached" if reached else "open",
                reached_at=now if reached else None)
        .execution_options(synchronize_session=False)
    )
    session.expire(target)
    return row


def expire_bargains(session: Session, now: datetime) -> int:
    """Job: open bargains past their time are marked ``expired``; returns how many."""
    _aware(now, "now")
    done = session.execute(
        update(Bargain).where(Bargain.status == "open", Bargain.expires_at <= now)
        .values(status="expired").execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def shown_bargain_status(row: Bargain, now: datetime) -> str:
    """``open`` / ``reached`` / ``expired`` (an open bargain past its time counts as expired)."""
    return "expired" if row.status == "open" and row.expires_at <= now else row.status


def bind_reason_text(reason: str) -> str:
    """The human sentence for a bind refusal reason."""
    return BIND_REASONS.get(reason, reason)
