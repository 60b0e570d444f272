"""Every query of the loyalty domain: tiers, members, growth entries, points accounts, lots and the
ledger (moved from ``promotions.repository``).

Balances that several rows depend on (points lots) are changed only while holding the account row
(:func:`lock_account`: ``SELECT … FOR UPDATE``; on SQLite the write transaction, see
``promotions.repository.begin_write``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from growthwheel.loyalty.models import (
    GrowthEntry,
    Member,
    MemberTier,
    PointsAccount,
    PointsLedgerEntry,
    PointsLot,
)
from growthwheel.store.db import insert_for

# ---------------------------------------------------------------------------------------------
# Membership
# ---------------------------------------------------------------------------------------------


# Statements the checkout runs on every order are built once, their values bound per call
# (building a statement cost about as much CPU as running it).
_TIERS = select(MemberTier).order_by(MemberTier.min_growth)


def tiers(session: Session) -> list[MemberTier]:
    """The tier ladder, lowest first."""
    return list(session.scalars(_TIERS))


def member(session: Session, customer_id: str, *, lock: bool = False) -> Member | None:
    """A member row (locked for update when ``lock``), or ``None``.

    Unlocked, a row already in the session is answered from its identity map (no round trip).
    """
    if not lock:
        return session.get(Member, customer_id)
    return session.scalars(select(Member).where(Member.customer_id == customer_id).with_for_update()).first()


_GROWTH = cast(Table, GrowthEntry.__table__)


def _typed(name: str, table: Table, column: str) -> Any:
    return bindparam(name, type_=table.c[column].type)


def _bound(table: Table, binds: dict[str, str]) -> dict[str, Any]:
    """Column -> a parameter of the column's type, named by ``binds``."""
    return {column: _typed(name, table, column) for column, name in binds.items()}


def _growth_and_tier(*, adding: bool) -> Any:
    """The growth in the window and the tier it reaches; with ``adding`` (PostgreSQL), a new entry
    dated ``b_end`` is inserted in a CTE first and counted in (the statement's own snapshot does not
    see the row it inserts)."""
    total: Any = func.coalesce(func.sum(_GROWTH.c.amount), 0)
    if adding:
        added = insert(_GROWTH).values(_bound(_GROWTH, {
            "customer_id": "b_customer", "effective_at": "b_end", "recorded_at": "b_end",
            "amount": "b_amount", "kind": "b_kind", "order_id": "b_order",
        })).returning(_GROWTH.c.amount).cte("added")
        total = total + select(func.coalesce(func.sum(added.c.amount), 0)).scalar_subquery()
    window = select(total.label("growth")).where(
        _GROWTH.c.customer_id == bindparam("b_customer"),
        _GROWTH.c.effective_at > _typed("b_start", _GROWTH, "effective_at"),
        _GROWTH.c.effective_at <= _typed("b_end", _GROWTH, "effective_at")).subquery("w")
    reached = (select(MemberTier.code).where(MemberTier.min_growth <= window.c.growth)
               .order_by(MemberTier.min_growth.desc()).limit(1).scalar_subquery())
    return select(window.c.growth, reached)


_GROWTH_AND_TIER = _growth_and_tier(adding=False)
_ADD_GROWTH_AND_TIER = _growth_and_tier(adding=True)


def add_growth_and_tier(session: Session, customer_id: str, amount: int, start: datetime, end: datetime, *,
                        kind: str, order_id: str | None) -> tuple[int, str | None]:
    """PostgreSQL: a growth entry of ``amount`` dated ``end`` (recorded then too), and then
    :func:`growth_and_tier`, in one statement."""
    growth, code = session.execute(_ADD_GROWTH_AND_TIER, {
        "b_customer": customer_id, "b_start": start, "b_end": end, "b_amount": amount, "b_kind": kind,
        "b_order": order_id}).one()
    return int(growth or 0), code


def growth_and_tier(session: Session, customer_id: str, start: datetime,
                    end: datetime) -> tuple[int, str | None]:
    """The growth value of a customer's entries with ``start < effective_at <= end`` and the code
    of the highest tier it reaches (``None`` below the lowest), in one statement (thresholds are
    unique)."""
    growth, code = session.execute(_GROWTH_AND_TIER, {"b_customer": customer_id, "b_start": start,
                                                      "b_end": end}).one()
    return int(growth or 0), code


def members_with_tier(session: Session) -> list[str]:
    """Customers who have a tier or any growth entry (those the daily job re-evaluates)."""
    with_tier = select(Member.customer_id).where(Member.tier_code.is_not(None))
    with_growth = select(GrowthEntry.customer_id).distinct()
    return sorted(set(session.scalars(with_tier)) | set(session.scalars(with_growth)))


def members_born_on(session: Session, month: int, day: int) -> list[Member]:
    """Members whose birthday falls on ``month``/``day`` and who have a tier."""
    rows = session.scalars(select(Member).where(Member.birthday.is_not(None), Member.tier_code.is_not(None))
                           .order_by(Member.customer_id))
    return [m for m in rows if m.birthday is not None and (m.birthday.month, m.birthday.day) == (month, day)]


# ---------------------------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------------------------


def lock_account(session: Session, customer_id: str) -> PointsAccount:
    """The customer's points account, created if missing, locked until the transaction ends.

    One statement: ``INSERT … ON CONFLICT (customer_id) DO UPDATE SET balance = balance RETURNING``
    creates the row or takes the existing row's lock (PostgreSQL waits for a holder as ``SELECT …
    FOR UPDATE`` does, then answers the committed row) and returns it, refreshed in the session.
    """
    dialect = session.get_bind().dialect.name
    statement = _LOCK_ACCOUNT.get(dialect)
    if statement is None:
        table = cast(Table, PointsAccount.__table__)
        insert = insert_for(session)(table).values(customer_id=bindparam("b_customer"), balance=0,
                                                   updated_at=func.now())
        statement = _LOCK_ACCOUNT[dialect] = insert.on_conflict_do_update(
            index_elements=[table.c.customer_id], set_={"balance": table.c.balance},
        ).returning(table.c.balance, table.c.updated_at)
    # The row as returned, in the session (a Core statement: the ORM's insert-returning path cost
    # more than the statement): the instance already there is refreshed, else one joins. The
    # session's autoflush has written any change of that instance before the statement ran.
    balance, updated_at = session.execute(statement, {"b_customer": customer_id}).one()
    account = session.identity_map.get(identity_key(PointsAccount, customer_id))
    if isinstance(account, PointsAccount):
        set_committed_value(account, "balance", balance)
        set_committed_value(account, "updated_at", updated_at)
        return account
    account = PointsAccount(customer_id=customer_id, balance=balance, updated_at=updated_at)
    make_transient_to_detached(account)
    session.add(account)
    return account


_LOCK_ACCOUNT: dict[str, Any] = {}
"""The statement of :func:`lock_account` by dialect (``INSERT … ON CONFLICT`` is spelled per dialect)."""


_ACCOUNTS = cast(Table, PointsAccount.__table__)
_MOVE_BALANCE = (update(_ACCOUNTS).where(_ACCOUNTS.c.customer_id == bindparam("b_customer"))
                 .values(balance=_ACCOUNTS.c.balance + bindparam("b_delta", type_=_ACCOUNTS.c.balance.type),
                         updated_at=bindparam("b_now", type_=_ACCOUNTS.c.updated_at.type)))


def move_balance(session: Session, account: PointsAccount, delta: int, now: datetime) -> None:
    """Add ``delta`` to a locked account's balance, in SQL (one Core ``UPDATE``; the instance
    takes the new values as committed, so the session does not write them again)."""
    session.execute(_MOVE_BALANCE, {"b_customer": account.customer_id, "b_delta": delta, "b_now": now})
    set_committed_value(account, "balance", account.balance + delta)
    set_committed_value(account, "updated_at", now)


_LOTS = cast(Table, PointsLot.__table__)
_LEDGER = cast(Table, PointsLedgerEntry.__table__)
_LOT_BINDS = {"customer_id": "b_customer", "earned_at": "b_at", "expires_at": "b_expires",
              "points": "b_points", "remaining": "b_points", "source": "b_kind", "order_id": "b_order"}
_LEDGER_BINDS = {"customer_id": "b_customer", "at": "b_at", "kind": "b_kind", "points": "b_points",
                 "lot_id": "b_lot", "order_id": "b_order", "note": "b_note"}
"""Column -> the parameter it is bound to (one call's values name both rows)."""

_INSERT_LOT = insert(_LOTS).values(_bound(_LOTS, _LOT_BINDS)).returning(_LOTS.c.id)
_INSERT_LEDGER = insert(_LEDGER).values(_bound(_LEDGER, _LEDGER_BINDS)).returning(_LEDGER.c.id)


def _lot_with_entry() -> Any:
    """PostgreSQL: the lot's ``INSERT`` in a CTE, its ledger row inserted from what it returns."""
    lot = _INSERT_LOT.cte("new_lot")
    values = _bound(_LEDGER, _LEDGER_BINDS) | {"lot_id": lot.c.id}
    rows = select(*values.values()).select_from(lot)
    return (insert(_LEDGER).from_select(list(values), rows)
            .returning(_LEDGER.c.lot_id, _LEDGER.c.id))


_LOT_WITH_ENTRY = _lot_with_entry()


def add_lot(session: Session, customer_id: str, points: int, at: datetime, expires_at: datetime, *,
            kind: str, order_id: str | None, note: str | None) -> tuple[int, int]:
    """A new lot of ``points`` and the ledger row that credits it; returns (lot id, entry id).

    PostgreSQL: one statement (the lot's ``INSERT`` in a CTE feeds the ledger's); SQLite: two.
    """
    values = {"b_customer": customer_id, "b_at": at, "b_expires": expires_at, "b_points": points,
              "b_kind": kind, "b_order": order_id, "b_note": note}
    if session.get_bind().dialect.name == "postgresql":
        lot_id, entry_id = session.execute(_LOT_WITH_ENTRY, values).one()
        return int(lot_id), int(entry_id)
    lot_id = int(session.execute(_INSERT_LOT, values).scalar_one())
    return lot_id, add_entry(session, customer_id, kind, points, at, lot_id=lot_id, order_id=order_id,
                             note=note)


def add_entry(session: Session, customer_id: str, kind: str, points: int, at: datetime, *,
              lot_id: int | None, order_id: str | None, note: str | None) -> int:
    """A ledger row (one Core ``INSERT``); returns its id (which names its fact)."""
    return int(session.execute(_INSERT_LEDGER, {
        "b_customer": customer_id, "b_at": at, "b_kind": kind, "b_points": points, "b_lot": lot_id,
        "b_order": order_id, "b_note": note}).scalar_one())


def account(session: Session, customer_id: str) -> PointsAccount | None:
    """The customer's points account (not locked), or ``None``."""
    return session.get(PointsAccount, customer_id)


def spendable_lots(session: Session, customer_id: str, now: datetime) -> list[PointsLot]:
    """Unexpired lots with points left, soonest-to-expire first (then oldest)."""
    return list(session.scalars(
        select(PointsLot).where(PointsLot.customer_id == customer_id, PointsLot.remaining > 0,
                                PointsLot.expires_at > now)
        .order_by(PointsLot.expires_at, PointsLot.id).with_for_update()
        .execution_options(populate_existing=True)))


_DUE_LOTS_OF = (select(PointsLot)
                .where(PointsLot.remaining > 0,
                       PointsLot.expires_at <= bindparam("b_now", type_=PointsLot.expires_at.type),
                       PointsLot.customer_id == bindparam("b_customer"))
                .order_by(PointsLot.customer_id, PointsLot.expires_at, PointsLot.id)
                .execution_options(populate_existing=True))


_ANY_DUE_LOT_OF = select(_LOTS.c.id).where(
    _LOTS.c.remaining > 0, _LOTS.c.expires_at <= bindparam("b_now", type_=_LOTS.c.expires_at.type),
    _LOTS.c.customer_id == bindparam("b_customer")).limit(1)


def due_lots(session: Session, now: datetime, customer_id: str | None = None) -> list[PointsLot]:
    """Lots whose expiry has passed with points left (of one customer or everyone).

    For one customer (the checkout's case, on every order) a Core probe asks first, and the lots
    are loaded as instances only when there are some (rarely): the ORM's query machinery cost
    several times the statement."""
    if customer_id is not None:
        params = {"b_now": now, "b_customer": customer_id}
        session.flush()  # as the ORM query would (autoflush): a lot changed in the session counts
        if session.execute(_ANY_DUE_LOT_OF, params).first() is None:
            return []
        return list(session.scalars(_DUE_LOTS_OF, params))
    query = select(PointsLot).where(PointsLot.remaining > 0, PointsLot.expires_at <= now)
    return list(session.scalars(query.order_by(PointsLot.customer_id, PointsLot.expires_at, PointsLot.id)
                                .execution_options(populate_existing=True)))


def customers_with_due_lots(session: Session, now: datetime) -> list[str]:
    """Customers with expired lots that still hold points."""
    return list(session.scalars(select(PointsLot.customer_id).distinct()
                                .where(PointsLot.remaining > 0, PointsLot.expires_at <= now)
                                .order_by(PointsLot.customer_id)))


def lots(session: Session, customer_id: str) -> list[PointsLot]:
    """Every lot of a customer, soonest-to-expire first."""
    return list(session.scalars(select(PointsLot).where(PointsLot.customer_id == customer_id)
                                .order_by(PointsLot.expires_at, PointsLot.id)))


def ledger(session: Session, customer_id: str, limit: int | None = None) -> list[PointsLedgerEntry]:
    """The customer's ledger, newest first."""
    query = (select(PointsLedgerEntry).where(PointsLedgerEntry.customer_id == customer_id)
             .order_by(PointsLedgerEntry.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def ledger_sum(session: Session, customer_id: str) -> int:
    """The sum of the customer's ledger (what the balance must equal)."""
    return int(session.scalar(select(func.coalesce(func.sum(PointsLedgerEntry.points), 0))
                              .where(PointsLedgerEntry.customer_id == customer_id)) or 0)


def order_ledger(session: Session, order_id: str, kind: str) -> list[PointsLedgerEntry]:
    """Ledger entries of one kind for an order, oldest first."""
    return list(session.scalars(select(PointsLedgerEntry)
                                .where(PointsLedgerEntry.order_id == order_id, PointsLedgerEntry.kind == kind)
                                .order_by(PointsLedgerEntry.id)))


def lots_by_id(session: Session, ids: Sequence[int]) -> dict[int, PointsLot]:
    """Lots by id."""
    if not ids:
        return {}
    return {lot.id: lot for lot in session.scalars(select(PointsLot).where(PointsLot.id.in_(list(ids))))}
