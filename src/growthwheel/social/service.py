"""Social selling over the operational store: referrals, and the checkout's hooks. Never commits.

Whoever owns the unit of work (request, CLI command, job) commits. Here and in
:mod:`growthwheel.social.deals` (group buying and bargains), every contended counter moves
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

Jobs: :func:`settle_referrals` (``social.referral.settle(now)``). Group buying and bargains are in
:mod:`growthwheel.social.deals`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from ibis.backends import BaseBackend
from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.kit.ids import canonical_id
from growthwheel.promotions import repository as promotions_repository
from growthwheel.promotions.models import CheckoutOrder
from growthwheel.social import referral as referral_core
from growthwheel.social.models import (
    Fingerprint,
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


def check_aware(value: datetime, field: str) -> datetime:
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
    check_aware(now, "now")
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
    check_aware(now, "now")
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


def _record_paid(session: Session, order_id: str, customer_id: str, paid_at: datetime) -> tuple[bool, Any]:
    """Insert the paid order unless its id is known (``INSERT … ON CONFLICT DO NOTHING``); returns
    whether it was inserted and the id of the customer's bound referral (``None`` when there is
    none). PostgreSQL: one statement (the insert in a CTE); SQLite: two."""
    dialect = session.get_bind().dialect.name
    statement = _RECORD_PAID.get(dialect)
    if statement is None:
        table = PaidOrder.__table__
        statement = _RECORD_PAID[dialect] = (
            insert_for(session)(table).on_conflict_do_nothing(index_elements=[table.c.order_id])
            .returning(table.c.order_id))
        if dialect == "postgresql":  # in a CTE the insert names its values (no execution-time columns)
            paid = statement.values(
                order_id=bindparam("order_id"), customer_id=bindparam("customer_id"),
                paid_at=bindparam("paid_at", type_=table.c.paid_at.type), refunded_at=None).cte("paid")
            statement = _RECORD_PAID[dialect] = select(
                select(func.count()).select_from(paid).scalar_subquery(), _BOUND_REFERRAL.scalar_subquery())
    params = {"order_id": order_id, "customer_id": customer_id, "paid_at": paid_at, "refunded_at": None,
              "b_invitee": customer_id}
    session.flush()  # as an ORM query would (autoflush): a referral bound in this session counts
    if dialect == "postgresql":
        inserted, referral_id = session.execute(statement, params).one()
        return bool(inserted), referral_id
    if session.execute(statement, params).first() is None:
        return False, None
    return True, session.execute(_BOUND_REFERRAL, params).scalar()


_RECORD_PAID: dict[str, Any] = {}
"""The statement of :func:`_record_paid` by dialect (built once; the values bound per call)."""
_REFERRALS = cast(Table, Referral.__table__)
_BOUND_REFERRAL = select(_REFERRALS.c.id).where(_REFERRALS.c.invitee_id == bindparam("b_invitee"),
                                                _REFERRALS.c.status == "bound").limit(1)
"""A Core probe (every paid order asks; few customers were referred): the ORM's query machinery
cost several times the statement."""


def on_order_paid(
    session: Session, order_id: str, customer_id: str, paid_at: datetime,
    phone: str | None = None, address: str | None = None, device: str | None = None,
) -> str | None:
    """Hook: an order was paid. Returns what it did to a referral: ``"pending"`` (window started),
    ``"cancelled:<reason>"`` (self-referral), or ``None`` (no referral concerned, or a repeat).

    ``phone`` / ``address`` / ``device`` are the order's contact phone, shipping address and the
    device it was placed from (any may be ``None``).
    """
    check_aware(paid_at, "paid_at")
    order_id, customer_id = canonical_id(order_id, "order_id"), canonical_id(customer_id)
    # One statement: reported before (or at the same moment by another call, which PostgreSQL
    # waits for) inserts nothing, and the hook does nothing: idempotent.
    inserted, referral_id = _record_paid(session, order_id, customer_id, paid_at)
    if not inserted:
        return None
    signals = referral_core.signal_digests(phone, address, device)
    referral = session.get(Referral, referral_id) if referral_id is not None else None
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
    check_aware(refunded_at, "refunded_at")
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
    check_aware(now, "now")
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


def bind_reason_text(reason: str) -> str:
    """The human sentence for a bind refusal reason."""
    return BIND_REASONS.get(reason, reason)
