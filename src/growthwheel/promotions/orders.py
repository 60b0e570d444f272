"""Committing an order and refunding it. Never commits the transaction (the request owns it).

**Commit** (:func:`commit`), in one transaction: claim the order id; re-price the cart exactly as
``POST /carts/price`` does; if the shop sent ``expected_total`` and the price moved, stop
(``price_changed``); spend the points used, earn points and growth value, re-evaluate the tier and
store the order and its lines with their allocated discounts — the customer's own rows; record the
order's facts (one multi-row ``INSERT``, ``facts.batched``) and tell social selling that the
customer paid (a referred customer's first paid order starts the referral's refund window, or
cancels it as a self-referral — ``social.service.on_order_paid``); last, take what the order uses
of the rows every buyer shares: each applied promotion's budget and flash-sale stock, each applied
coupon's code use, batch budget and per-customer allowance. Every take is an atomic conditional
update (``promotions.repository``) that fails with a clear 409 when another order got there first,
which rolls the whole transaction back; taken last, their row locks are held for the fewest
statements (see :func:`_take_shared_limits`).

**Idempotency.** The order id is the key. A retry with the same payload returns the stored answer
(nothing is taken twice); the same id with a different payload is ``409 order_conflict``. Two
concurrent commits of one id are serialised by the primary key: the second waits for the first,
then answers as a retry (PostgreSQL: the claim, ``INSERT … ON CONFLICT DO NOTHING``, waits on the
key, then inserts nothing and the stored order is read; SQLite: ``BEGIN IMMEDIATE`` serialises the
whole commit).

**Refund** (:func:`refund`), idempotent on the refund id: units of lines (or everything left).
The money is exact: each line's paid amount is spread over its units by largest remainder (the
first units carry the extra minor units, the rule of ``rules.refund_amount``) and units are refunded
in order, so refunding every unit — at once or in parts — returns exactly the line's paid amount.
Shipping is refunded with the refund that completes the order, so the refunds of an order add up
to exactly what was paid. With ``G`` the goods amount refunded so far out of ``P`` paid:

* points the order spent are returned, and points and growth it earned are clawed back, in the
  same proportion: after each refund ``floor(x × G / P)`` of each has been moved, all of it once
  the order is fully refunded (see ``loyalty.service`` for lots, expiry and shortfalls);
* coupons are released by their batch rule (``promotions.coupons``) when the order is fully
  refunded;
* a refund inside a referral's refund window cancels the referral (``social.service.on_order_refunded``);
* promotion budgets and flash-sale stock are not given back (a refunded flash-sale unit goes
  back to the shop's stock, not to the sale).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.facts import service as facts
from growthwheel.kit.money import allocate
from growthwheel.loyalty import service as loyalty
from growthwheel.promotions import coupons, repository, service
from growthwheel.promotions.errors import (
    FlashSaleSoldOutError,
    OrderConflictError,
    OrderNotFoundError,
    PriceChangedError,
    PromotionBudgetExhaustedError,
    RefundError,
)
from growthwheel.promotions.models import CheckoutOrder, CheckoutOrderLine, CheckoutRefund
from growthwheel.promotions.schemas import OrderIn, OrderOut, RefundIn, RefundLineIn, RefundOut
from growthwheel.social import service as social
from growthwheel.store.db import write_through


def payload_hash(payload: Any) -> str:
    """SHA-256 of a request's canonical JSON (how retries are recognised)."""
    if hasattr(payload, "model_dump"):
        payload = payload.model_dump(mode="json")
        if payload.get("explain_all") is False:  # (added later: an earlier order's retry still matches)
            del payload["explain_all"]
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StoredLine:
    """A ``checkout_order_lines`` row as a commit writes it (inserted in one statement, without
    the ORM's unit of work: nothing in the commit reads the rows back)."""

    order_id: str
    line_id: str
    sku: str
    quantity: int
    unit_price: int
    subtotal: int
    discount: int
    paid: int
    refunded_quantity: int
    refunded_amount: int


_INSERT_LINES = insert(cast(Table, CheckoutOrderLine.__table__))


@dataclass(frozen=True)
class Committed:
    """The answer to a commit, and whether it is the stored answer of an earlier identical commit."""

    order: OrderOut
    replayed: bool


def _replay(order: CheckoutOrder, digest: str) -> Committed:
    if order.request_hash != digest:
        raise OrderConflictError.coded("err.order.conflict", field="order_id", order_id=order.id)
    return Committed(OrderOut.model_validate(order.priced), replayed=True)


def commit(
    session: Session, request: OrderIn, *, currency: str, now: datetime | None = None,
    program: loyalty.LoyaltyProgram = loyalty.DEFAULT_PROGRAM, segments_of: service.SegmentsOf | None = None,
    holdouts: service.HoldoutHooks | None = None,
) -> Committed:
    """Commit an order (see the module docstring); raises a 409 error when a limit was reached."""
    now = now or utcnow()
    repository.begin_write(session)
    digest = payload_hash(request)
    order = CheckoutOrder(
        id=request.order_id, customer_id=request.customer_id, currency=currency, request_hash=digest,
        status="paid", subtotal=0, discount=0, shipping=0, total=0, points_used=0, points_earned=0,
        growth_earned=0, refunded_amount=0, points_returned=0, points_clawed=0, growth_clawed=0, priced={},
        committed_at=now,
    )
    if not repository.claim_order(session, order):  # the id is taken: a retry, or a conflict
        existing = repository.order(session, request.order_id)
        if existing is None:  # claimed, then gone before this read: only a concurrent delete does that
            raise OrderConflictError.coded("err.order.changing", field="order_id",
                                            order_id=request.order_id)
        return _replay(existing, digest)

    quote = service.quote(session, request, currency=currency, now=now, program=program,
                          segments_of=segments_of, holdouts=holdouts)
    priced = quote.priced
    if request.expected_total is not None and priced.totals.total != request.expected_total:
        raise PriceChangedError(
            f"expected_total: the order now costs {priced.totals.total}, not {request.expected_total}; "
            "price the cart again")
    applied = {a.promotion_id: a for a in priced.applied}
    # Coupons given but not applicable (explained in not_applied) are not consumed.
    redeemed = [r.coupon.code for r in quote.coupons if r.coupon.promotion.id in applied]
    with facts.batched(session):  # the order's facts in one INSERT, before the shared rows
        if priced.points_used:
            loyalty.spend_points(session, request.customer_id, priced.points_used, now,
                                 order_id=request.order_id)
        try:  # a balance past its maximum refuses the whole order (the request rolls everything back)
            loyalty.earn_points(session, request.customer_id, priced.points_to_earn, now,
                                order_id=request.order_id, program=program)
            _old, tier_after = loyalty.earn_growth(session, request.customer_id, quote.growth_to_earn, now,
                                                   order_id=request.order_id, program=program)
            loyalty.check_growth(session, request.customer_id)
        except loyalty.BalanceLimitError as exc:
            raise loyalty.BalanceLimitError(
                f"lines: the order would take the customer past a limit ({exc.message})") from None

        totals = priced.totals
        lines = [
            StoredLine(order_id=order.id, line_id=line.line_id, sku=line.sku, quantity=line.quantity,
                       unit_price=line.unit_price, subtotal=line.subtotal, discount=line.subtotal - line.paid,
                       paid=line.paid, refunded_quantity=0, refunded_amount=0)
            for line in priced.lines
        ]
        answer = OrderOut(
            order_id=order.id, customer_id=order.customer_id, status=order.status, currency=currency,
            total=totals.total, refunded_amount=0, points_used=priced.points_used,
            points_earned=priced.points_to_earn, growth_earned=quote.growth_to_earn, coupons=redeemed,
            tier_after=tier_after, committed_at=now,
            priced=quote.to_out(request.customer_id),
        )
        write_through(session, order, {  # one Core UPDATE of the claimed row
            "subtotal": totals.subtotal, "discount": totals.subtotal - totals.goods_total,
            "shipping": totals.shipping, "total": totals.total, "points_used": priced.points_used,
            "points_earned": priced.points_to_earn, "growth_earned": quote.growth_to_earn,
            "priced": answer.model_dump(mode="json")})
        session.execute(_INSERT_LINES, [vars(line) for line in lines])  # one multi-row statement
        facts.record_order(session, order, lines, now=now)  # same transaction, rows as just written
        for code in redeemed:
            facts.record_event(session, event_id=f"coupon_redeemed:{order.id}:{code}", type="coupon_redeemed",
                               occurred_at=now, customer_id=order.customer_id, order_id=order.id,
                               properties={"code": code})
        # A referred customer's first paid order starts the referral's refund window (social selling).
        social.on_order_paid(session, order.id, order.customer_id, now, phone=request.contact_phone,
                             address=request.shipping_address, device=request.device_id)
    _take_shared_limits(session, quote, applied, request, now)
    return Committed(answer, replayed=False)


def _take_shared_limits(session: Session, quote: service.Quote, applied: dict[str, Any], request: OrderIn,
                        now: datetime) -> None:
    """Take what the order uses of rows every buyer shares — promotion budgets and flash-sale stock,
    coupon codes and batches — as the last writes before the caller commits.

    On PostgreSQL each conditional ``UPDATE`` holds its row's lock until the commit, and every
    other buyer of that promotion or coupon waits for it: taken last, the lock is held for these
    few statements and the commit, not for the points, growth and order rows written before
    (several times more orders per second on one shared coupon). The promotions are taken in two
    statements however many there are (``repository.take_promotions``). The order (promotions by id,
    then coupons; the customer's own rows before) is the same for every order and refund, so two
    transactions never wait for each other in a cycle.
    """
    takes = [(pid, applied[pid].amount + applied[pid].shipping_discount, quote.flash_units(pid))
             for pid in quote.promotions if pid in applied]
    refused = repository.take_promotions(session, takes)
    if refused is not None:
        row = quote.promotions[refused]
        if quote.flash_units(refused) and row.stock_limit is not None:
            raise FlashSaleSoldOutError.coded("err.order.sold_out", field="lines", name=row.name)
        raise PromotionBudgetExhaustedError.coded("err.order.budget_spent", name=row.name)
    for resolved in quote.coupons:
        hit = applied.get(resolved.coupon.promotion.id)
        if hit is not None:
            coupons.redeem(session, resolved, customer_id=request.customer_id, order_id=request.order_id,
                           discount=hit.amount + hit.shipping_discount, now=now)


def get_order(session: Session, order_id: str) -> OrderOut:
    """A committed order as answered at commit, with its current status and refunded amount."""
    order = repository.order(session, order_id)
    if order is None:
        raise OrderNotFoundError.coded("err.order.none", order_id=order_id)
    answer = OrderOut.model_validate(order.priced)
    return answer.model_copy(update={"status": order.status, "refunded_amount": order.refunded_amount})


def _share(total: int, refunded: int, paid: int, fully: bool) -> int:
    """How much of ``total`` has moved once ``refunded`` of ``paid`` is refunded (all when fully)."""
    if fully:
        return total
    return total * refunded // paid if paid > 0 else 0


def refund(
    session: Session, order_id: str, request: RefundIn, *, now: datetime | None = None,
    program: loyalty.LoyaltyProgram = loyalty.DEFAULT_PROGRAM,
) -> RefundOut:
    """Refund units of an order (all that is left when ``request.lines`` is None); idempotent on
    ``request.refund_id``."""
    now = now or utcnow()
    repository.begin_write(session)
    order = repository.order(session, order_id, lock=True)
    if order is None:
        raise OrderNotFoundError.coded("err.order.none", order_id=order_id)
    digest = payload_hash(request)
    earlier = repository.refund(session, request.refund_id)
    if earlier is not None:
        if earlier.order_id != order_id or earlier.request_hash != digest:
            raise OrderConflictError(
                f"refund_id: refund {request.refund_id!r} exists with a different payload")
        return RefundOut.model_validate(earlier.result)
    lines = {line.line_id: line for line in repository.order_lines(session, order_id)}
    wanted: dict[str, int] = {}
    if request.lines is None:
        wanted = {lid: line.quantity - line.refunded_quantity for lid, line in lines.items()
                  if line.quantity > line.refunded_quantity}
    else:
        for index, item in enumerate(request.lines):
            line = lines.get(item.line_id)
            if line is None:
                raise RefundError.coded("err.refund.no_line", field=f"lines[{index}].line_id",
                                        order_id=order_id, line_id=item.line_id)
            if item.line_id in wanted:
                raise RefundError.coded("err.refund.twice", field=f"lines[{index}].line_id",
                                        line_id=item.line_id)
            left = line.quantity - line.refunded_quantity
            if item.quantity > left:
                raise RefundError(f"lines[{index}].quantity: {item.quantity} asked, {left} left to refund "
                                  f"on line {item.line_id!r}")
            wanted[item.line_id] = item.quantity
    if not wanted:
        raise RefundError.coded("err.refund.nothing_left", field="lines", order_id=order_id)

    amount = 0
    for line_id, quantity in wanted.items():
        line = lines[line_id]
        units = allocate(line.paid, [1] * line.quantity)
        part = sum(units[line.refunded_quantity:line.refunded_quantity + quantity])
        line.refunded_quantity += quantity
        line.refunded_amount += part
        amount += part
    fully = all(line.refunded_quantity == line.quantity for line in lines.values())
    shipping = order.shipping if fully else 0
    order.refunded_amount += amount + shipping
    order.status = "refunded" if fully else "partially_refunded"
    goods_paid = order.total - order.shipping
    goods_refunded = sum(line.refunded_amount for line in lines.values())

    returned = _share(order.points_used, goods_refunded, goods_paid, fully) - order.points_returned
    loyalty.return_points(session, order.customer_id, returned, now, order_id=order.id)
    order.points_returned += returned
    claw_due = _share(order.points_earned, goods_refunded, goods_paid, fully) - order.points_clawed
    clawed = loyalty.claw_back(session, order.customer_id, claw_due, now, order_id=order.id)
    order.points_clawed += claw_due
    growth_due = _share(order.growth_earned, goods_refunded, goods_paid, fully) - order.growth_clawed
    loyalty.add_growth(session, order.customer_id, -growth_due, effective_at=order.committed_at,
                       kind="clawback", order_id=order.id, now=now)
    order.growth_clawed += growth_due
    _old, tier_after = loyalty.evaluate_member(session, order.customer_id, now, program)
    released = coupons.release_for_refund(session, order, fully_refunded=fully, now=now)
    social.on_order_refunded(session, order.id, now)  # inside a referral's window: cancels it

    answer = RefundOut(
        refund_id=request.refund_id, order_id=order.id, amount=amount + shipping, shipping=shipping,
        lines=[RefundLineIn(line_id=lid, quantity=q) for lid, q in wanted.items()],
        order_status=order.status, refunded_total=order.refunded_amount, coupons_released=released,
        points_returned=returned, points_clawed_back=clawed, points_shortfall=claw_due - clawed,
        growth_clawed_back=growth_due, tier_after=tier_after, created_at=now,
    )
    session.add(CheckoutRefund(id=request.refund_id, order_id=order.id, request_hash=digest,
                               amount=amount + shipping, result=answer.model_dump(mode="json"),
                               created_at=now))
    facts.record_order(session, order, list(lines.values()), now=now)  # the order as it now stands
    for code in released:
        facts.record_event(session, event_id=f"coupon_released:{order.id}:{code}", type="coupon_released",
                           occurred_at=now, customer_id=order.customer_id, order_id=order.id,
                           properties={"code": code})
    session.flush()
    return answer

