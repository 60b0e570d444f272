"""Every query of the promotions domain, including the atomic moves that keep limits under concurrency.

Concurrency rule: nothing is checked in Python and then written. Every limited counter moves in
one conditional statement that the database evaluates against the committed row —
``UPDATE … SET used = used + :n WHERE id = :id AND used + :n <= limit`` — and the caller reads
``rowcount`` (1: taken, 0: nothing left). On PostgreSQL (READ COMMITTED) the ``UPDATE`` locks the
row and a concurrent ``UPDATE`` waits, then re-evaluates its ``WHERE`` against the new value, so
two orders can never both take the last unit. Balances that several rows depend on (points lots)
are changed only while holding the account row (``SELECT … FOR UPDATE``). On SQLite, which has
one writer at a time, :func:`begin_write` opens the transaction with ``BEGIN IMMEDIATE`` so the
whole read-price-write sequence of an order runs alone (others wait on ``busy_timeout``); the
same conditional statements then hold trivially. CHECK constraints back every limit as well.
On PostgreSQL a coupon's steps (code, batch, the customer's use, the redemption row) are one
statement of chained CTEs, each step running only when the one before returned its row
(:func:`redeem_coupon`); the conditions are the same statements'.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, make_transient_to_detached

from growthwheel.promotions.models import (
    CheckoutOrder,
    CheckoutOrderLine,
    CheckoutRefund,
    CouponBatch,
    CouponCode,
    CouponCustomerUse,
    CouponRedemption,
    Promotion,
)
from growthwheel.store.db import insert_for


def begin_write(session: Session) -> None:
    """Make the session's transaction a write transaction from here on.

    SQLite: ``BEGIN IMMEDIATE`` unless the connection is already writing (the first write of a
    transaction takes the write lock), so reads that follow see the state no other writer can
    change before commit. PostgreSQL: nothing to do (row locks and conditional updates).
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw: Any = connection.connection.driver_connection
    if not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_NO_SYNC = {"synchronize_session": False}


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)



# ---------------------------------------------------------------------------------------------
# Promotions
# ---------------------------------------------------------------------------------------------


def promotion(session: Session, promotion_id: str) -> Promotion | None:
    """The promotion with this id, or ``None``."""
    return session.get(Promotion, promotion_id)


def all_promotions(session: Session, status: str | None = None) -> list[Promotion]:
    """Every promotion (optionally of one status), newest first."""
    query = select(Promotion).order_by(Promotion.created_at.desc(), Promotion.id)
    if status is not None:
        query = query.where(Promotion.status == status)
    return list(session.scalars(query))


def live_promotions(session: Session, now: datetime) -> list[Promotion]:
    """Active promotions whose schedule contains ``now`` (budget and stock are checked by pricing)."""
    query = select(Promotion).where(
        Promotion.status == "active",
        or_(Promotion.starts_at.is_(None), Promotion.starts_at <= now),
        or_(Promotion.ends_at.is_(None), Promotion.ends_at > now),
    ).order_by(Promotion.id)
    return list(session.scalars(query))


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _live_heads_statement(*, digest_only: bool) -> Any:
    row = _table(Promotion).c
    now = bindparam("b_now", type_=row.starts_at.type)

    def text_of(column: Any) -> Any:
        return func.coalesce(cast(column, String), "")

    # Every column the pricing core's objects are built from, one line per promotion, in id order
    # (a window in id order: the same order in the digest's read and in the heads' read); the name
    # goes with its length, so no name can pass for a line boundary.
    line = (row.id + "|" + row.layer + "|" + text_of(func.length(row.name)) + ":" + row.name
            + "|" + text_of(row.updated_at) + "|" + text_of(row.starts_at) + "|" + text_of(row.ends_at)
            + "|" + text_of(row.stock_limit) + "|" + text_of(row.stock_used))
    digest = func.aggregate_strings(line, "\n").over(order_by=row.id, rows=(None, None))
    columns = (digest.label("digest"),) if digest_only else (
        row.id, row.name, row.layer, row.updated_at, row.starts_at, row.ends_at, row.stock_limit,
        row.stock_used,  # the digest on the first row only (not 200 copies of it)
        case((func.row_number().over(order_by=row.id) == 1, digest)).label("digest"))
    statement = select(*columns).where(
        row.status == "active",
        or_(row.starts_at.is_(None), row.starts_at <= now),
        or_(row.ends_at.is_(None), row.ends_at > now),
        or_(row.budget_count.is_(None), row.used_count < row.budget_count),
        or_(row.budget_amount.is_(None), row.used_amount < row.budget_amount),
    ).order_by(row.id)
    return statement.limit(1) if digest_only else statement


def live_promotions_digest(session: Session, now: datetime) -> str | None:
    """What identifies the live promotions within their budgets (active, in schedule, neither budget
    spent) as one text, ``None`` when none is live: every column pricing builds them from (id, layer,
    name, the three times, stock limit and used), a line per promotion. One row whatever the number
    of promotions: pricing recognises the set it priced with last without reading every row. The
    budget counters, which every order moves, are compared here and are not part of it."""
    found = session.scalar(_LIVE_DIGEST, {"b_now": now})
    return None if found is None else str(found)


def live_promotion_heads(session: Session, now: datetime) -> tuple[str | None, list[Any]]:
    """The live promotions (as :func:`live_promotions_digest` selects them) without their
    definitions — id, name, layer, the three times, stock limit and used — and their digest, read in
    one statement (so the digest names exactly these rows)."""
    rows = list(session.execute(_LIVE_HEADS, {"b_now": now}))
    return (str(rows[0].digest) if rows else None), rows


_LIVE_DIGEST = _live_heads_statement(digest_only=True)
_LIVE_HEADS = _live_heads_statement(digest_only=False)


def promotion_definitions(session: Session, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored definitions of these promotions."""
    if not ids:
        return {}
    rows = session.execute(select(Promotion.id, Promotion.definition).where(Promotion.id.in_(list(ids))))
    return {str(pid): definition for pid, definition in rows}


def _take_promotion_statement() -> Any:
    row = _table(Promotion).c
    amount, units = bindparam("b_amount", type_=Integer), bindparam("b_units", type_=Integer)
    return (
        update(_table(Promotion))
        .where(
            row.id == bindparam("b_id", type_=String),
            or_(row.budget_count.is_(None), row.used_count + 1 <= row.budget_count),
            or_(row.budget_amount.is_(None), row.used_amount + amount <= row.budget_amount),
            or_(row.stock_limit.is_(None), row.stock_used + units <= row.stock_limit),
        )
        .values(used_count=row.used_count + 1, used_amount=row.used_amount + amount,
                stock_used=row.stock_used + units)
    )


# The checkout's conditional updates are built once (Core statements on the tables, parameters
# bound per call): building an ORM ``update()`` for every call cost more than running it.
_TAKE_PROMOTION = _take_promotion_statement()


def take_promotion(session: Session, promotion_id: str, *, amount: int, units: int) -> bool:
    """Count one order, ``amount`` of discount and ``units`` of flash-sale stock against the promotion,
    atomically and only if every limit still allows it."""
    params = {"b_id": promotion_id, "b_amount": amount, "b_units": units}
    return _rowcount(session.execute(_TAKE_PROMOTION, params)) == 1


def take_promotions(session: Session, takes: Sequence[tuple[str, int, int]]) -> str | None:
    """:func:`take_promotion` for each ``(promotion id, amount, units)`` of one order, in id order;
    returns the first promotion (by id) a limit refused, or ``None`` when every one was taken (the
    caller then rolls back what was taken).

    On PostgreSQL two statements whatever the number of promotions: the rows are locked in id order
    (``SELECT … ORDER BY id FOR UPDATE``: two orders never wait for each other in a cycle), then one
    ``UPDATE … FROM unnest(…)`` takes from every row whose limits allow it. Each statement is a round
    trip made while the rows every buyer of these promotions shares are held, so fewer of them hold
    those rows for less time. On SQLite, whose one writer holds the whole store anyway, one
    statement per promotion."""
    ordered = sorted(takes)
    if session.get_bind().dialect.name != "postgresql" or len(ordered) < 2:
        for promotion_id, amount, units in ordered:
            if not take_promotion(session, promotion_id, amount=amount, units=units):
                return promotion_id
        return None
    ids = [t[0] for t in ordered]
    session.execute(_LOCK_PROMOTIONS, {"ids": ids})
    taken = set(session.scalars(_TAKE_PROMOTIONS, {
        "ids": ids, "amounts": [t[1] for t in ordered], "units": [t[2] for t in ordered]}))
    return next((promotion_id for promotion_id in ids if promotion_id not in taken), None)


_LOCK_PROMOTIONS = text(
    "SELECT id FROM promotions WHERE id = ANY(CAST(:ids AS VARCHAR[])) ORDER BY id FOR UPDATE")
_TAKE_PROMOTIONS = text("""
UPDATE promotions
SET used_count = promotions.used_count + 1, used_amount = promotions.used_amount + v.amount,
    stock_used = promotions.stock_used + v.units
FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:amounts AS BIGINT[]), CAST(:units AS INTEGER[]))
     AS v(id, amount, units)
WHERE promotions.id = v.id
  AND (promotions.budget_count IS NULL OR promotions.used_count + 1 <= promotions.budget_count)
  AND (promotions.budget_amount IS NULL OR promotions.used_amount + v.amount <= promotions.budget_amount)
  AND (promotions.stock_limit IS NULL OR promotions.stock_used + v.units <= promotions.stock_limit)
RETURNING promotions.id""")


# ---------------------------------------------------------------------------------------------
# Coupons
# ---------------------------------------------------------------------------------------------


def batch(session: Session, batch_id: str) -> CouponBatch | None:
    """The coupon batch with this id, or ``None``."""
    return session.get(CouponBatch, batch_id)


def all_batches(session: Session) -> list[CouponBatch]:
    """Every coupon batch, newest first."""
    return list(session.scalars(select(CouponBatch).order_by(CouponBatch.created_at.desc(), CouponBatch.id)))


def coupon_code(session: Session, code: str) -> CouponCode | None:
    """A code row (unique codes and the row of a shared code), or ``None``."""
    return session.get(CouponCode, code)


def coupon_code_with_batch(session: Session, code: str) -> tuple[CouponCode, CouponBatch] | None:
    """A code row and its batch in one query (what a checkout resolves), or ``None``."""
    found = session.execute(_CODE_WITH_BATCH, {"b_code": code}).first()
    return None if found is None else (found[0], found[1])


_CODE_WITH_BATCH = (select(CouponCode, CouponBatch).join(CouponBatch, CouponBatch.id == CouponCode.batch_id)
                    .where(CouponCode.code == bindparam("b_code")))


def existing_codes(session: Session, codes: Sequence[str]) -> set[str]:
    """Which of ``codes`` exist already."""
    if not codes:
        return set()
    return set(session.scalars(select(CouponCode.code).where(CouponCode.code.in_(list(codes)))))


def issued_customers(session: Session, batch_id: str, issue_key: str | None,
                     among: Sequence[str] | None = None) -> set[str]:
    """Customers who already hold a code of the batch issued under ``issue_key`` (only those of
    ``among`` when given)."""
    query = select(CouponCode.customer_id).where(
        CouponCode.batch_id == batch_id, CouponCode.customer_id.is_not(None),
        CouponCode.issue_key.is_(None) if issue_key is None else CouponCode.issue_key == issue_key,
    )
    if among is not None:
        found: set[str] = set()
        wanted = list(among)
        for start in range(0, len(wanted), _CHUNK):
            part = query.where(CouponCode.customer_id.in_(wanted[start:start + _CHUNK]))
            found |= {c for c in session.scalars(part) if c is not None}
        return found
    return {c for c in session.scalars(query) if c is not None}


_CHUNK = 500
"""Rows per multi-row statement (8 columns: well under SQLite's bound-parameter limit)."""


def insert_codes(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, str | None]:
    """Insert code rows, skipping any that would break a unique rule (the code itself, or one code
    per customer, batch and issue key) instead of failing: ``INSERT … ON CONFLICT DO NOTHING``.
    Returns the inserted codes with their customers. On PostgreSQL a row that conflicts with
    another transaction's uncommitted row waits for it; so once this returns, a customer left out
    either holds a committed code (read it with :func:`issued_customers`) or lost a draw of a
    random code that already exists (draw again)."""
    table = CouponCode.__table__
    inserted: dict[str, str | None] = {}
    for start in range(0, len(rows), _CHUNK):
        statement = (insert_for(session)(table).values(list(rows[start:start + _CHUNK]))
                     .on_conflict_do_nothing().returning(table.c.code, table.c.customer_id))
        inserted.update({str(code): customer for code, customer in session.execute(statement)})
    return inserted


def count_issued(session: Session, batch_id: str, count: int) -> None:
    """Add ``count`` to the batch's ``issued_count`` in the database (``issued_count = issued_count
    + :n``), never from a value read earlier: concurrent issues cannot lose each other's counts."""
    if count:
        session.execute(update(CouponBatch).where(CouponBatch.id == batch_id)
                        .values(issued_count=CouponBatch.issued_count + count), execution_options=_NO_SYNC)


def codes_of_batch(session: Session, batch_id: str, limit: int | None = None) -> list[CouponCode]:
    """Codes of a batch, oldest first."""
    query = select(CouponCode).where(CouponCode.batch_id == batch_id).order_by(CouponCode.created_at,
                                                                               CouponCode.code)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def customer_codes(session: Session, customer_id: str) -> list[CouponCode]:
    """Codes issued to a customer."""
    return list(session.scalars(select(CouponCode).where(CouponCode.customer_id == customer_id)
                                .order_by(CouponCode.created_at, CouponCode.code)))


def _take_code_statement() -> Any:
    row = _table(CouponCode).c
    return (update(_table(CouponCode))
            .where(row.code == bindparam("b_code", type_=String),
                   or_(row.max_uses.is_(None), row.uses < row.max_uses))
            .values(uses=row.uses + 1))


def _take_batch_statement() -> Any:
    row = _table(CouponBatch).c
    amount = bindparam("b_amount", type_=Integer)
    return (
        update(_table(CouponBatch))
        .where(row.id == bindparam("b_id", type_=String),
               or_(row.budget_count.is_(None), row.used_count + 1 <= row.budget_count),
               or_(row.budget_amount.is_(None), row.used_amount + amount <= row.budget_amount))
        .values(used_count=row.used_count + 1, used_amount=row.used_amount + amount)
    )


_TAKE_CODE = _take_code_statement()
_TAKE_BATCH = _take_batch_statement()


def take_code(session: Session, code: str) -> bool:
    """One use of a code, if it has a use left (shared codes have no per-code limit)."""
    return _rowcount(session.execute(_TAKE_CODE, {"b_code": code})) == 1


def take_batch(session: Session, batch_id: str, amount: int) -> bool:
    """One redemption and ``amount`` of discount against the batch budget, if it allows both."""
    return _rowcount(session.execute(_TAKE_BATCH, {"b_id": batch_id, "b_amount": amount})) == 1


def take_customer_use(session: Session, batch_id: str, customer_id: str, limit: int) -> bool:
    """One of the customer's uses of the batch, if fewer than ``limit`` are used (insert or update
    in one statement, so two first uses at once cannot both insert)."""
    dialect = session.get_bind().dialect.name
    statement = _TAKE_CUSTOMER_USE.get(dialect)
    if statement is None:
        table = _table(CouponCustomerUse)
        statement = _TAKE_CUSTOMER_USE[dialect] = (
            insert_for(session)(table)
            .values(batch_id=bindparam("b_batch"), customer_id=bindparam("b_customer"), used=1)
            .on_conflict_do_update(index_elements=[table.c.batch_id, table.c.customer_id],
                                   set_={"used": table.c.used + 1},
                                   where=table.c.used < bindparam("b_limit", type_=Integer))
            .returning(table.c.used))
    params = {"b_batch": batch_id, "b_customer": customer_id, "b_limit": limit}
    return session.execute(statement, params).first() is not None


_TAKE_CUSTOMER_USE: dict[str, Any] = {}
"""The statement of :func:`take_customer_use` by dialect."""

_REDEMPTION_COLUMNS = ("id", "batch_id", "code", "customer_id", "order_id", "discount", "status",
                       "redeemed_at")


def _redemption_values() -> list[Any]:
    table = _table(CouponRedemption)
    return [bindparam(f"r_{name}", type_=table.c[name].type) for name in _REDEMPTION_COLUMNS]


_INSERT_REDEMPTION = insert(_table(CouponRedemption)).values(
    dict(zip(_REDEMPTION_COLUMNS, _redemption_values(), strict=True)))


def redeem_coupon(session: Session, *, code: str, batch_id: str, amount: int, customer_id: str,
                  limit: int, redemption_id: str, order_id: str, now: datetime) -> str | None:
    """Take one use of ``code``, one redemption and ``amount`` of the batch's budget, one of the
    customer's ``limit`` uses of the batch, and write the redemption row; returns what refused
    (``"code"``, ``"batch"`` or ``"customer"``, in that order; the caller rolls back what was
    taken) or ``None``.

    The rows are taken in the same order on both stores (code, batch, the customer's use), as every
    order and refund does. PostgreSQL: one statement — each step an ``UPDATE`` or upsert in a CTE
    that runs only when the step before returned its row; SQLite: four.
    """
    values = {"b_code": code, "b_id": batch_id, "b_amount": amount, "b_batch": batch_id,
              "b_customer": customer_id, "b_limit": limit, "r_id": redemption_id, "r_batch_id": batch_id,
              "r_code": code, "r_customer_id": customer_id, "r_order_id": order_id, "r_discount": amount,
              "r_status": "redeemed", "r_redeemed_at": now}
    if session.get_bind().dialect.name != "postgresql":
        if not take_code(session, code):
            return "code"
        if not take_batch(session, batch_id, amount):
            return "batch"
        if not take_customer_use(session, batch_id, customer_id, limit):
            return "customer"
        session.execute(_INSERT_REDEMPTION, values)
        return None
    took_code, took_batch, took_use = session.execute(_REDEEM, values).one()
    return "code" if not took_code else "batch" if not took_batch else "customer" if not took_use else None


def _redeem_statement() -> Any:
    """PostgreSQL: :func:`redeem_coupon`'s steps chained in one statement."""
    one: Any = literal_column("1").label("ok")
    code = _TAKE_CODE.returning(one).cte("took_code")
    batch = _TAKE_BATCH.where(exists(select(code.c.ok))).returning(one).cte("took_batch")
    uses = _table(CouponCustomerUse)
    use = (postgresql.insert(uses)
           .from_select(["batch_id", "customer_id", "used"],
                        select(bindparam("b_batch", type_=String), bindparam("b_customer", type_=String),
                               literal_column("1")).where(exists(select(batch.c.ok))))
           .on_conflict_do_update(index_elements=[uses.c.batch_id, uses.c.customer_id],
                                  set_={"used": uses.c.used + 1},
                                  where=uses.c.used < bindparam("b_limit", type_=Integer))
           .returning(one).cte("took_use"))
    redemptions = _table(CouponRedemption)
    written = (insert(redemptions)
               .from_select(list(_REDEMPTION_COLUMNS), select(*_redemption_values()).select_from(use))
               .returning(redemptions.c.id).cte("written"))

    def found(cte: Any) -> Any:
        return select(func.count()).select_from(cte).scalar_subquery()

    # The written redemption is counted too, or its CTE would not be part of the statement.
    return select(found(code), found(batch), found(use) * found(written))


_REDEEM = _redeem_statement()


def give_back_use(session: Session, redemption: CouponRedemption) -> None:
    """Undo the counters of a redemption (code use, batch budget, customer allowance)."""
    session.execute(update(CouponCode).where(CouponCode.code == redemption.code, CouponCode.uses > 0)
                    .values(uses=CouponCode.uses - 1), execution_options=_NO_SYNC)
    session.execute(update(CouponBatch)
                    .where(CouponBatch.id == redemption.batch_id, CouponBatch.used_count > 0,
                           CouponBatch.used_amount >= redemption.discount)
                    .values(used_count=CouponBatch.used_count - 1,
                            used_amount=CouponBatch.used_amount - redemption.discount),
                    execution_options=_NO_SYNC)
    session.execute(update(CouponCustomerUse)
                    .where(CouponCustomerUse.batch_id == redemption.batch_id,
                           CouponCustomerUse.customer_id == redemption.customer_id,
                           CouponCustomerUse.used > 0)
                    .values(used=CouponCustomerUse.used - 1), execution_options=_NO_SYNC)


def redemptions_of_order(session: Session, order_id: str) -> list[CouponRedemption]:
    """The coupon redemptions of an order."""
    return list(session.scalars(select(CouponRedemption).where(CouponRedemption.order_id == order_id)
                                .order_by(CouponRedemption.code)))


def redemption_count(session: Session, batch_id: str) -> dict[str, int]:
    """Redemptions of a batch by status."""
    rows = session.execute(select(CouponRedemption.status, func.count())
                           .where(CouponRedemption.batch_id == batch_id)
                           .group_by(CouponRedemption.status))
    return {str(status): int(count) for status, count in rows}


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


def claim_order(session: Session, order: CheckoutOrder) -> bool:
    """Insert a new order's row as the claim of its id, in one statement; ``False`` when the id
    is taken.

    ``INSERT … ON CONFLICT (id) DO NOTHING RETURNING id``: on PostgreSQL a concurrent claim of the
    same id that is not yet committed makes this one wait, then do nothing if it committed (the
    caller reads the stored order) or insert if it rolled back; on SQLite ``BEGIN IMMEDIATE``
    already serialises. No savepoint and no read before. A claimed ``order`` joins the session as
    persistent with the values just written (no re-read): later changes to it flush as ``UPDATE``.
    """
    table = _table(CheckoutOrder)
    dialect = session.get_bind().dialect.name
    statement = _CLAIM_ORDER.get(dialect)
    if statement is None:
        statement = _CLAIM_ORDER[dialect] = (insert_for(session)(table)
                                             .on_conflict_do_nothing(index_elements=[table.c.id])
                                             .returning(table.c.id))
    values = {column.key: getattr(order, column.key) for column in table.columns}
    if session.execute(statement, values).first() is None:
        return False
    make_transient_to_detached(order)
    session.add(order)
    return True


_CLAIM_ORDER: dict[str, Any] = {}
"""The statement of :func:`claim_order` by dialect (the order's values bound per call)."""


def order(session: Session, order_id: str, *, lock: bool = False) -> CheckoutOrder | None:
    """A committed order (locked for update when ``lock``), or ``None``."""
    query = select(CheckoutOrder).where(CheckoutOrder.id == order_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).first()


def order_lines(session: Session, order_id: str) -> list[CheckoutOrderLine]:
    """The lines of a committed order, in cart order of their ids as stored."""
    return list(session.scalars(select(CheckoutOrderLine).where(CheckoutOrderLine.order_id == order_id)
                                .execution_options(populate_existing=True)))


def refund(session: Session, refund_id: str) -> CheckoutRefund | None:
    """A refund by id, or ``None``."""
    return session.get(CheckoutRefund, refund_id)


def refunds_of_order(session: Session, order_id: str) -> list[CheckoutRefund]:
    """Refunds of an order, oldest first."""
    return list(session.scalars(select(CheckoutRefund).where(CheckoutRefund.order_id == order_id)
                                .order_by(CheckoutRefund.created_at, CheckoutRefund.id)))


def has_paid_order(session: Session, customer_id: str, *, besides: str | None = None) -> bool:
    """Whether the customer has a committed order that is not fully refunded (for first-order rules),
    other than ``besides`` (the order being committed, whose id is claimed before it is priced)."""
    if besides is None:
        return session.scalar(_HAS_PAID_ORDER, {"b_customer": customer_id}) is not None
    return session.scalar(_HAS_OTHER_PAID_ORDER, {"b_customer": customer_id, "b_order": besides}) is not None


_HAS_PAID_ORDER = select(CheckoutOrder.id).where(
    and_(CheckoutOrder.customer_id == bindparam("b_customer"), CheckoutOrder.status != "refunded")).limit(1)
_HAS_OTHER_PAID_ORDER = _HAS_PAID_ORDER.where(CheckoutOrder.id != bindparam("b_order"))
