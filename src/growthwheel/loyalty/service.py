"""Membership tiers by growth value (成长值) and the points ledger (积分). Never commits.

The loyalty domain (moved from ``promotions.loyalty``); the checkout (``promotions.orders``) calls it.

**Growth value.** A paid order earns ``floor(paid / growth_minor_per_unit)`` growth (1 per yuan
by default), dated at the order's time. A refund claws back growth in proportion to the amount
refunded (cumulatively, so a full refund takes back exactly what was earned), dated like the
order it reverses — so it leaves the window exactly when the earning does.

**Tier rule.** A member's tier is the highest tier whose ``min_growth`` is at most the growth
earned in the rolling window ``(now - window_days, now]`` (365 days by default). It is recomputed
on every order (so upgrades are immediate), on every refund (so refunding the order that lifted a
member takes the tier back at once) and by the daily job :func:`recompute_tiers` (so growth that
leaves the window downgrades the member on the day it leaves). Below the lowest threshold a
customer has no tier.

**Points.** Every move is a row of the append-only ``points_ledger``; a customer's balance
(``points_accounts.balance``) is changed in the same transaction by the same amount, so it always
equals the ledger's sum, and a CHECK keeps it from going below zero. Earned points sit in lots
that expire ``points_expiry_days`` after they were earned; spending (redeeming, a negative
adjustment, a claw-back) takes the soonest-to-expire lots first, each lot drawn getting its own
ledger row. Lots past their expiry are never spent: every operation on an account first expires
its due lots (the same work :func:`expire_points`, the daily job, does for everyone). All of it
runs while holding the account row (``SELECT … FOR UPDATE``; on SQLite the write transaction), so
concurrent spends of one customer are serialised.

**Daily jobs** (:func:`run_daily`: expiry, tier review, birthday coupons) commit
:data:`DAILY_BATCH` customers per transaction, so a customer's checkout waits for at most the
batch its account is in, never for the whole run. Each step is idempotent (a lot expires once, a
tier is evaluated as of ``now``, a birthday coupon has the issue key ``birthday:<year>``): after a
crash the committed batches stay done and the next run does only what is left. The functions
taking one ``session`` (:func:`expire_points`, :func:`recompute_tiers`,
:func:`issue_birthday_coupons`) do the same work in the caller's single transaction.

**Bounds.** A customer's points balance may not pass :data:`MAX_POINTS_BALANCE` and their growth
value :data:`MAX_GROWTH` (10^15 each, far below 2^63 so no sum in the store can overflow): earning
or adjusting past it is refused with a 422 naming the field (:class:`BalanceLimitError`), and an
order that would take either past it is refused whole. Points given back by a refund are not
refused (they were spent from the same balance).

**Refunds.** Points earned by the order are clawed back in proportion to the amount refunded
(taken first from the order's own lot, then soonest-to-expire; if the customer has already spent
them, only what the balance holds is taken and the shortfall is reported — the balance never goes
negative). Points the order *spent* are returned in the same proportion, as a new lot that
expires when the latest lot they came from would have: a refund never extends the life of points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, insert
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import InvalidArgumentError
from growthwheel.facts import service as facts
from growthwheel.loyalty import repository
from growthwheel.loyalty.errors import InsufficientPointsError, TierConfigError
from growthwheel.loyalty.models import (
    GrowthEntry,
    Member,
    MemberTier,
    PointsAccount,
)
from growthwheel.loyalty.schemas import LedgerOut, LotOut, MemberOut
from growthwheel.promotions import coupons
from growthwheel.promotions import repository as promotions_repository
from growthwheel.store.db import write_through


@dataclass(frozen=True)
class LoyaltyProgram:
    """The shop's points and growth rules (defaults: 1 point and 1 growth per yuan paid, 100 points
    = 1 yuan, points cover at most half of an order, points live 365 days, 365-day tier window)."""

    earn_minor_per_point: int = 100
    """Paid minor units per point earned at multiplier ×1."""
    redeem_minor_per_point: int = 1
    """What one point is worth when spent, in minor units."""
    max_points_share_bp: int = 5_000
    """Points may pay at most this share (basis points) of what is left after coupons."""
    points_expiry_days: int = 365
    growth_minor_per_unit: int = 100
    window_days: int = 365

    def __post_init__(self) -> None:
        for name in ("earn_minor_per_point", "redeem_minor_per_point", "points_expiry_days",
                     "growth_minor_per_unit", "window_days"):
            if getattr(self, name) <= 0:
                raise InvalidArgumentError(f"{name}: must be positive")
        if not 0 <= self.max_points_share_bp <= 10_000:
            raise InvalidArgumentError("max_points_share_bp: must be in 0..10000")


DEFAULT_PROGRAM = LoyaltyProgram()

#: The largest points balance one customer may hold.
MAX_POINTS_BALANCE = 10**15
#: The largest growth value one customer may reach (over the tier window).
MAX_GROWTH = 10**15


class BalanceLimitError(InvalidArgumentError):
    """A points balance or growth value would pass its maximum; the message names the field."""

    code = "balance_limit"


# ---------------------------------------------------------------------------------------------
# Tiers
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TierSpec:
    """A tier as configured: ``code``, ``name``, growth threshold and benefits."""

    code: str
    name: str
    min_growth: int
    points_multiplier_bp: int = 10_000
    free_shipping: bool = False
    birthday_batch_id: str | None = None


def tier_for(ladder: Sequence[MemberTier] | Sequence[TierSpec], growth: int) -> str | None:
    """The code of the highest tier whose threshold ``growth`` reaches (``None`` below the lowest)."""
    reached = [t for t in ladder if t.min_growth <= growth]
    return max(reached, key=lambda t: t.min_growth).code if reached else None


def set_tiers(
    session: Session, specs: Sequence[TierSpec], *, now: datetime | None = None,
    principal: Principal | None = None, program: LoyaltyProgram = DEFAULT_PROGRAM,
) -> list[MemberTier]:
    """Replace the tier ladder (thresholds must strictly increase; codes unique) and re-evaluate
    every member against it."""
    if not specs:
        raise TierConfigError("tiers: give at least one tier")
    codes = [s.code.strip() for s in specs]
    if any(not c or len(c) > 32 for c in codes) or len(set(codes)) != len(codes):
        raise TierConfigError("tiers[].code: codes must be 1 to 32 characters and unique")
    thresholds = [s.min_growth for s in specs]
    if any(t < 0 for t in thresholds) or any(b <= a for a, b in pairwise(thresholds)):
        raise TierConfigError("tiers[].min_growth: thresholds must be non-negative and strictly increasing")
    for spec in specs:
        if spec.points_multiplier_bp < 0:
            raise TierConfigError(f"tiers[{spec.code}].points_multiplier_bp: must not be negative")
        batch_id = spec.birthday_batch_id
        if batch_id is not None and promotions_repository.batch(session, batch_id) is None:
            raise TierConfigError(f"tiers[{spec.code}].birthday_batch_id: no coupon batch "
                                  f"{spec.birthday_batch_id!r}")
    session.execute(delete(MemberTier))
    rows = [MemberTier(code=code, name=spec.name.strip() or code, rank=rank, min_growth=spec.min_growth,
                       points_multiplier_bp=spec.points_multiplier_bp, free_shipping=spec.free_shipping,
                       birthday_batch_id=spec.birthday_batch_id)
            for rank, (code, spec) in enumerate(zip(codes, specs, strict=True), start=1)]
    session.add_all(rows)
    session.flush()
    session.expire_all()
    audit(session, principal, "tiers.set", "member_tiers", {"tiers": codes})
    recompute_tiers(session, now or utcnow(), program=program)
    return rows


def ensure_member(session: Session, customer_id: str, *, now: datetime | None = None) -> Member:
    """The member row of a customer (created on first use)."""
    found = repository.member(session, customer_id)
    if found is None:
        found = Member(customer_id=customer_id, growth=0, joined_at=now or utcnow())
        session.add(found)
        session.flush()
    return found


def set_birthday(session: Session, customer_id: str, birthday: date | None) -> Member:
    """Record a member's birthday (for the birthday coupon)."""
    row = ensure_member(session, customer_id)
    row.birthday = birthday
    return row


def evaluate_member(session: Session, customer_id: str, now: datetime,
                    program: LoyaltyProgram = DEFAULT_PROGRAM) -> tuple[str | None, str | None]:
    """Recompute a member's window growth and tier as of ``now``; returns (old tier, new tier)."""
    row = ensure_member(session, customer_id, now=now)
    start = now - timedelta(days=program.window_days)
    return _evaluated(session, row, *repository.growth_and_tier(session, customer_id, start, now), now)


def _evaluated(session: Session, row: Member, growth: int, new: str | None,
               now: datetime) -> tuple[str | None, str | None]:
    old = row.tier_code
    values: dict[str, Any] = {"growth": growth, "evaluated_at": now}
    if new != old:
        values |= {"tier_code": new, "tier_since": now}
    write_through(session, row, values)  # one Core UPDATE now (the checkout evaluates every order)
    return old, new


def earn_growth(session: Session, customer_id: str, amount: int, now: datetime, *, order_id: str | None,
                program: LoyaltyProgram = DEFAULT_PROGRAM) -> tuple[str | None, str | None]:
    """:func:`add_growth` of ``amount`` earned ``now`` and then :func:`evaluate_member`; on
    PostgreSQL the entry and the evaluation's query are one statement (the checkout's case)."""
    if not amount or session.get_bind().dialect.name != "postgresql":
        add_growth(session, customer_id, amount, effective_at=now, kind="earn", order_id=order_id, now=now)
        return evaluate_member(session, customer_id, now, program)
    row = ensure_member(session, customer_id, now=now)
    start = now - timedelta(days=program.window_days)
    found = repository.add_growth_and_tier(session, customer_id, amount, start, now, kind="earn",
                                           order_id=order_id)
    return _evaluated(session, row, *found, now)


def check_growth(session: Session, customer_id: str) -> None:
    """Refuse (:class:`BalanceLimitError`, naming ``growth``) a member evaluated past :data:`MAX_GROWTH`."""
    row = repository.member(session, customer_id)
    if row is not None and row.growth > MAX_GROWTH:
        raise BalanceLimitError(f"growth: customer {customer_id!r} would reach a growth value of "
                                f"{row.growth:,}, past the largest of {MAX_GROWTH:,}")


def member_tier(session: Session, customer_id: str) -> MemberTier | None:
    """The customer's current tier (as last evaluated), or ``None``."""
    row = repository.member(session, customer_id)
    if row is None or row.tier_code is None:
        return None
    return session.get(MemberTier, row.tier_code)


def growth_for_payment(paid: int, program: LoyaltyProgram = DEFAULT_PROGRAM) -> int:
    """Growth value a payment earns (floor of paid / ``growth_minor_per_unit``)."""
    return max(paid, 0) // program.growth_minor_per_unit


def add_growth(session: Session, customer_id: str, amount: int, *, effective_at: datetime, kind: str,
               order_id: str | None = None, now: datetime | None = None) -> None:
    """Record growth earned (positive) or clawed back (negative), dated ``effective_at``."""
    if amount:
        session.execute(_INSERT_GROWTH, {"customer_id": customer_id, "effective_at": effective_at,
                                         "amount": amount, "kind": kind, "order_id": order_id,
                                         "recorded_at": now or utcnow()})


@dataclass(frozen=True)
class TierChange:
    """A tier change found by the daily job."""

    customer_id: str
    old: str | None
    new: str | None


#: Customers per transaction in the daily jobs (a checkout waits for at most one batch).
DAILY_BATCH = 20

SessionFactory = Callable[[], AbstractContextManager[Session]]
"""Opens one unit of work that commits when its block ends (``session_scope``, a job's transaction)."""


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    if size < 1:
        raise InvalidArgumentError("batch: must be at least 1")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def recompute_tiers(session: Session, now: datetime,
                    program: LoyaltyProgram = DEFAULT_PROGRAM) -> list[TierChange]:
    """The daily job: re-evaluate every member with a tier or growth; returns the changes."""
    changes = []
    for customer_id in repository.members_with_tier(session):
        old, new = evaluate_member(session, customer_id, now, program)
        if old != new:
            changes.append(TierChange(customer_id, old, new))
    return changes


# ---------------------------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------------------------


_INSERT_GROWTH = insert(cast(Table, GrowthEntry.__table__))
"""A growth entry, written at once (built once; nothing reads the row back)."""


def _entry(session: Session, customer_id: str, kind: str, points: int, now: datetime, *,
           lot_id: int | None = None, order_id: str | None = None, note: str | None = None) -> None:
    """One ledger move, and its ``points_moved`` fact for the warehouse (same transaction)."""
    entry_id = repository.add_entry(session, customer_id, kind, points, now, lot_id=lot_id,
                                    order_id=order_id, note=note)
    _moved(session, entry_id, customer_id, kind, points, now, lot_id=lot_id, order_id=order_id)


def _moved(session: Session, entry_id: int, customer_id: str, kind: str, points: int, now: datetime, *,
           lot_id: int | None, order_id: str | None) -> None:
    """The ``points_moved`` fact of ledger entry ``entry_id``."""
    facts.record_event(session, event_id=f"points_moved:{entry_id}", type="points_moved", occurred_at=now,
                       customer_id=customer_id, order_id=order_id,
                       properties={"kind": kind, "points": points, "lot_id": lot_id})


def _credit(
    session: Session, customer_id: str, points: int, now: datetime, *, kind: str, expires_at: datetime,
    order_id: str | None = None, note: str | None = None, field: str | None = None,
) -> int:
    """Add a lot and return its id; with ``field`` (the caller's argument) refuse to pass
    :data:`MAX_POINTS_BALANCE`.

    Core statements, not ORM flushes (the checkout credits points on every order): the lot and its
    ledger row (one statement on PostgreSQL), then the balance moved in SQL."""
    account = repository.lock_account(session, customer_id)
    _expire_held(session, customer_id, now, account)
    if field is not None and account.balance + points > MAX_POINTS_BALANCE:
        raise BalanceLimitError(
            f"{field}: customer {customer_id!r} holds {account.balance:,} points; {points:,} more would pass "
            f"the largest balance of {MAX_POINTS_BALANCE:,}")
    lot_id, entry_id = repository.add_lot(session, customer_id, points, now, expires_at, kind=kind,
                                          order_id=order_id, note=note)
    _moved(session, entry_id, customer_id, kind, points, now, lot_id=lot_id, order_id=order_id)
    repository.move_balance(session, account, points, now)
    return lot_id


def _expire_locked(session: Session, customer_id: str, now: datetime) -> int:
    """Expire the due lots of a customer whose account row is held; returns the points expired."""
    return _expire_held(session, customer_id, now, repository.lock_account(session, customer_id))


def _expire_held(session: Session, customer_id: str, now: datetime, account: PointsAccount) -> int:
    """:func:`_expire_locked` for a caller that already holds ``account`` (no second lock round trip)."""
    expired = 0
    for lot in repository.due_lots(session, now, customer_id):
        _entry(session, customer_id, "expire", -lot.remaining, now, lot_id=lot.id,
               note=f"expired {lot.expires_at.isoformat()}")
        expired += lot.remaining
        lot.remaining = 0
    if expired:
        session.flush()  # the lots
        repository.move_balance(session, account, -expired, now)
    return expired


def _debit(session: Session, customer_id: str, points: int, now: datetime, *, kind: str,
           order_id: str | None = None, note: str | None = None, prefer_lot: int | None = None,
           partial: bool = False) -> int:
    """Take ``points`` soonest-to-expire first (``prefer_lot`` first of all); with ``partial`` take
    what there is, else raise :class:`InsufficientPointsError`. Returns the points taken."""
    account = repository.lock_account(session, customer_id)
    _expire_held(session, customer_id, now, account)
    if points > account.balance and not partial:
        raise InsufficientPointsError(
            f"points: customer {customer_id!r} has {account.balance} points, {points} asked for")
    lots = repository.spendable_lots(session, customer_id, now)
    if prefer_lot is not None:
        lots.sort(key=lambda lot: lot.id != prefer_lot)  # stable: the rest keep expiry order
    left = min(points, account.balance)
    taken = 0
    for lot in lots:
        if left == 0:
            break
        part = min(lot.remaining, left)
        lot.remaining -= part
        left -= part
        taken += part
        _entry(session, customer_id, kind, -part, now, lot_id=lot.id, order_id=order_id, note=note)
    session.flush()  # the lots
    repository.move_balance(session, account, -taken, now)
    return taken


def earn_points(
    session: Session, customer_id: str, points: int, now: datetime, *, order_id: str | None = None,
    program: LoyaltyProgram = DEFAULT_PROGRAM,
) -> int | None:
    """Credit earned points as a lot expiring ``points_expiry_days`` from ``now``; returns the
    lot's id (``None`` for no points)."""
    if points < 0:
        raise InvalidArgumentError("points: earned points must not be negative")
    if points == 0:
        return None
    return _credit(session, customer_id, points, now, kind="earn", order_id=order_id, field="points",
                   expires_at=now + timedelta(days=program.points_expiry_days))


def spend_points(session: Session, customer_id: str, points: int, now: datetime, *,
                 order_id: str | None = None) -> int:
    """Redeem ``points`` (soonest-to-expire lots first); raises if the customer has fewer."""
    if points < 0:
        raise InvalidArgumentError("points: must not be negative")
    if points == 0:
        return 0
    return _debit(session, customer_id, points, now, kind="redeem", order_id=order_id)


def adjust_points(session: Session, customer_id: str, delta: int, now: datetime, *, note: str,
                  principal: Principal | None = None,
                  program: LoyaltyProgram = DEFAULT_PROGRAM) -> int:
    """A manual correction: a positive ``delta`` is a new lot (usual expiry), a negative one is taken
    soonest-to-expire first and may not exceed the balance. Audited."""
    if delta == 0:
        raise InvalidArgumentError("delta: an adjustment must not be zero")
    if not note.strip():
        raise InvalidArgumentError("note: say why the points are adjusted")
    if delta > 0:
        _credit(session, customer_id, delta, now, kind="adjust", note=note[:500], field="delta",
                expires_at=now + timedelta(days=program.points_expiry_days))
    else:
        _debit(session, customer_id, -delta, now, kind="adjust", note=note[:500])
    audit(session, principal, "points.adjust", f"customer:{customer_id}", {"delta": delta, "note": note})
    return balance(session, customer_id)


def claw_back(session: Session, customer_id: str, points: int, now: datetime, *, order_id: str) -> int:
    """Take back up to ``points`` earned by ``order_id`` (its own lot first); returns what was taken
    (less than asked when the customer has spent them: the balance never goes negative)."""
    if points <= 0:
        return 0
    earned = repository.order_ledger(session, order_id, "earn")
    prefer = earned[0].lot_id if earned else None
    return _debit(session, customer_id, points, now, kind="clawback", order_id=order_id,
                  prefer_lot=prefer, partial=True)


def return_points(session: Session, customer_id: str, points: int, now: datetime, *, order_id: str) -> int:
    """Give back ``points`` the order spent, as a lot expiring when the latest lot they came from
    would have (a refund does not extend their life)."""
    if points <= 0:
        return 0
    spent = repository.order_ledger(session, order_id, "redeem")
    lots = repository.lots_by_id(session, [e.lot_id for e in spent if e.lot_id is not None])
    expires_at = max((lot.expires_at for lot in lots.values()), default=now)
    _credit(session, customer_id, points, now, kind="return", order_id=order_id, expires_at=expires_at,
            note="points spent on a refunded order")
    return points


def balance(session: Session, customer_id: str) -> int:
    """The customer's balance (0 without an account)."""
    account = repository.account(session, customer_id)
    return account.balance if account is not None else 0


def spendable(session: Session, customer_id: str, now: datetime) -> int:
    """Points the customer could spend at ``now`` (unexpired lots), without changing anything."""
    return sum(lot.remaining for lot in repository.lots(session, customer_id)
               if lot.remaining > 0 and lot.expires_at > now)


@dataclass(frozen=True)
class ExpiryResult:
    """What the expiry job did."""

    customers: int
    points: int


def expire_points(session: Session, now: datetime) -> ExpiryResult:
    """The expiry job: every lot whose expiry is at or before ``now`` loses what it has left."""
    customers = 0
    points = 0
    for customer_id in repository.customers_with_due_lots(session, now):
        expired = _expire_locked(session, customer_id, now)
        if expired:
            customers += 1
            points += expired
    return ExpiryResult(customers=customers, points=points)


# ---------------------------------------------------------------------------------------------
# Birthday coupons
# ---------------------------------------------------------------------------------------------


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _born_today(session: Session, now: datetime, timezone: str) -> list[str]:
    """Members whose birthday is today in the shop's time zone (29 February on 28 February in other
    years)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    born = list(repository.members_born_on(session, today.month, today.day))
    if (today.month, today.day) == (2, 28) and not _is_leap(today.year):
        born += repository.members_born_on(session, 2, 29)
    return [row.customer_id for row in born]


def _issue_birthday(session: Session, customer_id: str, now: datetime, timezone: str) -> dict[str, str]:
    """A member's birthday code of their tier's batch, once a year (issue key ``birthday:<year>``)."""
    row = repository.member(session, customer_id)
    tier = session.get(MemberTier, row.tier_code) if row is not None and row.tier_code else None
    if tier is None or tier.birthday_batch_id is None:
        return {}
    batch = promotions_repository.batch(session, tier.birthday_batch_id)
    if batch is None or not batch.active or now >= batch.valid_until:
        return {}
    year = now.astimezone(ZoneInfo(timezone)).year
    return coupons.issue(session, batch, [customer_id], issue_key=f"birthday:{year}", now=now).issued


def issue_birthday_coupons(session: Session, now: datetime, timezone: str) -> dict[str, str]:
    """The daily birthday job: members whose birthday is today *in the shop's time zone* get a code
    of their tier's birthday batch (once a year: issue key ``birthday:<year>``). Members born on
    29 February get theirs on 28 February in other years. Returns customer → code."""
    issued: dict[str, str] = {}
    for customer_id in _born_today(session, now, timezone):
        issued.update(_issue_birthday(session, customer_id, now, timezone))
    return issued


# ---------------------------------------------------------------------------------------------
# The daily jobs, a batch of customers per transaction
# ---------------------------------------------------------------------------------------------


def expire_points_batched(open_session: SessionFactory, now: datetime, *,
                          batch: int | None = None) -> ExpiryResult:
    """:func:`expire_points`, committing ``batch`` customers (default :data:`DAILY_BATCH`) at a time."""
    with open_session() as session:
        due = repository.customers_with_due_lots(session, now)
    customers = points = 0
    for group in _batches(due, batch or DAILY_BATCH):
        with open_session() as session:
            for customer_id in group:
                expired = _expire_locked(session, customer_id, now)
                customers += bool(expired)
                points += expired
    return ExpiryResult(customers=customers, points=points)


def recompute_tiers_batched(open_session: SessionFactory, now: datetime, *,
                            program: LoyaltyProgram = DEFAULT_PROGRAM,
                            batch: int | None = None) -> list[TierChange]:
    """:func:`recompute_tiers`, committing ``batch`` members (default :data:`DAILY_BATCH`) at a time."""
    with open_session() as session:
        members = repository.members_with_tier(session)
    changes: list[TierChange] = []
    for group in _batches(members, batch or DAILY_BATCH):
        with open_session() as session:
            for customer_id in group:
                old, new = evaluate_member(session, customer_id, now, program)
                if old != new:
                    changes.append(TierChange(customer_id, old, new))
    return changes


def issue_birthday_coupons_batched(open_session: SessionFactory, now: datetime, timezone: str, *,
                                   batch: int | None = None) -> dict[str, str]:
    """:func:`issue_birthday_coupons`, committing ``batch`` members (default :data:`DAILY_BATCH`) at
    a time."""
    with open_session() as session:
        born = _born_today(session, now, timezone)
    issued: dict[str, str] = {}
    for group in _batches(born, batch or DAILY_BATCH):
        with open_session() as session:
            for customer_id in group:
                issued.update(_issue_birthday(session, customer_id, now, timezone))
    return issued


@dataclass(frozen=True)
class DailyResult:
    """What one run of the daily jobs did (a run after a crash reports only what it did itself)."""

    expired: ExpiryResult
    tier_changes: list[TierChange] = field(default_factory=list)
    birthday_coupons: dict[str, str] = field(default_factory=dict)


def run_daily(open_session: SessionFactory, now: datetime, timezone: str, *,
              program: LoyaltyProgram = DEFAULT_PROGRAM, batch: int | None = None) -> DailyResult:
    """The daily jobs in order — expire points, re-evaluate tiers, issue birthday coupons — each
    committing a batch of customers per transaction (see the module docstring)."""
    expired = expire_points_batched(open_session, now, batch=batch)
    changes = recompute_tiers_batched(open_session, now, program=program, batch=batch)
    birthdays = issue_birthday_coupons_batched(open_session, now, timezone, batch=batch)
    return DailyResult(expired=expired, tier_changes=changes, birthday_coupons=birthdays)


# ---------------------------------------------------------------------------------------------
# Reading a member
# ---------------------------------------------------------------------------------------------


def member_out(session: Session, customer_id: str, now: datetime | None = None) -> MemberOut:
    """A customer's tier, growth, points balance, lots and latest 50 ledger moves."""
    now = now or utcnow()
    member = repository.member(session, customer_id)
    return MemberOut(
        customer_id=customer_id, tier=member.tier_code if member else None,
        growth=member.growth if member else 0, birthday=member.birthday if member else None,
        points_balance=balance(session, customer_id),
        points_spendable=spendable(session, customer_id, now),
        lots=[LotOut.model_validate(lot) for lot in repository.lots(session, customer_id)],
        ledger=[LedgerOut.model_validate(e) for e in repository.ledger(session, customer_id, limit=50)],
    )
