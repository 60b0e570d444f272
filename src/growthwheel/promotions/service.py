"""Promotions as stored data, and pricing a cart against them. Never commits.

:func:`quote` gathers what the pure core (``promotions.rules``) needs — the live promotions with
their remaining flash-sale stock (those whose budget is spent are left out), the cart's coupons
(``promotions.coupons.resolve``), the customer's tier, first-order status and segments, the
points they may use — prices the cart and returns the answer with the context the order commit
needs. A tier with free shipping adds a free-shipping promotion (``tier:<code>:free_shipping``)
limited to that tier, so it is explained like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ibis.backends import BaseBackend
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import InvalidArgumentError
from growthwheel.promotions import coupons, loyalty, repository, rules
from growthwheel.promotions.definition import Definition, FlashSaleIn, check_rule, parse_definition, to_rule
from growthwheel.promotions.errors import InsufficientPointsError, PromotionNotFoundError
from growthwheel.promotions.models import CouponCode, CouponRedemption, MemberTier, Promotion
from growthwheel.promotions.schemas import CartIn, LedgerOut, LotOut, MemberOut, PricedCartOut
from growthwheel.segments import repository as segments_repository
from growthwheel.segments.service import NotRefreshedError

SegmentsOf = Callable[[str], frozenset[str]]
"""Looks up the saved segments a customer is in (from the warehouse)."""


# ---------------------------------------------------------------------------------------------
# Promotions
# ---------------------------------------------------------------------------------------------


def _layer(definition: Definition) -> rules.Layer:
    return rules.Layer.ITEM if definition.is_item else rules.Layer.ORDER


def create_promotion(
    session: Session, *, name: str, definition: Definition | dict[str, object], status: str = "draft",
    starts_at: datetime | None = None, ends_at: datetime | None = None, budget_count: int | None = None,
    budget_amount: int | None = None, stock: int | None = None, principal: Principal | None = None,
    actor_name: str | None = None,
) -> Promotion:
    """Store a promotion (validated by the pricing core's rules)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidArgumentError("name: 1 to 200 characters")
    parsed = definition if isinstance(definition, Definition) else parse_definition(definition)
    layer = _layer(parsed)
    check_rule(parsed, layer=layer)
    if status not in ("draft", "active"):
        raise InvalidArgumentError("status: a new promotion is 'draft' or 'active'")
    _check_schedule(starts_at, ends_at)
    is_flash = isinstance(parsed.reward, FlashSaleIn)
    if is_flash and stock is None:
        raise InvalidArgumentError("stock: a flash sale needs its stock (units at the sale price)")
    if not is_flash and stock is not None:
        raise InvalidArgumentError("stock: only a flash_sale promotion has a stock")
    for field_name, value in (("budget_count", budget_count), ("budget_amount", budget_amount),
                              ("stock", stock)):
        if value is not None and value < (0 if field_name == "stock" else 1):
            raise InvalidArgumentError(f"{field_name}: out of range")
    now = utcnow()
    row = Promotion(
        name=name, layer=layer.value, definition=parsed.model_dump(mode="json"), status=status,
        starts_at=starts_at, ends_at=ends_at, budget_count=budget_count, budget_amount=budget_amount,
        used_count=0, used_amount=0, stock_limit=stock, stock_used=0,
        created_by=actor_name or (principal.name if principal else "system"), created_at=now, updated_at=now,
    )
    session.add(row)
    session.flush()
    audit(session, principal, "promotion.create", f"promotion:{row.id}",
          {"name": name, "status": status, "layer": layer.value}, actor_name=actor_name)
    return row


def _check_schedule(starts_at: datetime | None, ends_at: datetime | None) -> None:
    for field_name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidArgumentError(f"{field_name}: give a time zone (UTC)")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidArgumentError("ends_at: must be after starts_at")


def get_promotion(session: Session, promotion_id: str) -> Promotion:
    """The promotion with this id."""
    found = repository.promotion(session, promotion_id)
    if found is None:
        raise PromotionNotFoundError(f"no promotion {promotion_id!r}")
    return found


def update_promotion(
    session: Session, row: Promotion, *, status: str | None = None, starts_at: datetime | None = None,
    ends_at: datetime | None = None, principal: Principal | None = None, actor_name: str | None = None,
) -> Promotion:
    """Change status (draft / active / paused / ended) or schedule. An ended promotion stays ended."""
    if status is not None:
        if status not in ("draft", "active", "paused", "ended"):
            raise InvalidArgumentError("status: draft, active, paused or ended")
        if row.status == "ended" and status != "ended":
            raise InvalidArgumentError("status: an ended promotion cannot be started again; create a new one")
        row.status = status
    new_start = starts_at if starts_at is not None else row.starts_at
    new_end = ends_at if ends_at is not None else row.ends_at
    _check_schedule(new_start, new_end)
    row.starts_at, row.ends_at = new_start, new_end
    row.updated_at = utcnow()
    session.flush()
    audit(session, principal, "promotion.update", f"promotion:{row.id}",
          {"status": row.status, "starts_at": row.starts_at, "ends_at": row.ends_at}, actor_name=actor_name)
    return row


def rule_of(row: Promotion) -> rules.Promotion:
    """The pricing core's promotion for a stored row (its flash-sale stock left filled in)."""
    stock_left = (row.stock_limit - row.stock_used) if row.stock_limit is not None else 0
    return to_rule(parse_definition(row.definition), promotion_id=row.id, name=row.name,
                   layer=rules.Layer(row.layer), starts_at=row.starts_at, ends_at=row.ends_at,
                   stock_left=stock_left)


@dataclass(frozen=True)
class LivePromotion:
    """What the order commit needs to know of a promotion the cart was priced with."""

    id: str
    name: str
    stock_limit: int | None
    stock_used: int


_RULES: dict[tuple[str, datetime, int], rules.Promotion] = {}
"""Pricing-core promotions by (id, updated_at, flash-sale stock left). A definition never changes
after creation and ``updated_at`` moves with every change of schedule, so an entry is never stale;
it spares every cart the JSON decoding and validation of every live promotion."""
_RULES_LIMIT = 20_000


def live_rules(session: Session, now: datetime) -> tuple[list[rules.Promotion], dict[str, LivePromotion]]:
    """The live promotions (active, in schedule, budget not spent) as the pricing core's objects."""
    heads = [h for h in repository.live_promotion_heads(session, now) if _within_budget(h)]
    keys = {h.id: (h.id, h.updated_at, (h.stock_limit - h.stock_used) if h.stock_limit is not None else 0)
            for h in heads}
    missing = [h.id for h in heads if keys[h.id] not in _RULES]
    if missing:
        if len(_RULES) + len(missing) > _RULES_LIMIT:
            _RULES.clear()
        definitions = repository.promotion_definitions(session, missing)
        for h in heads:
            if h.id in definitions:
                _RULES[keys[h.id]] = to_rule(
                    parse_definition(definitions[h.id]), promotion_id=h.id, name=h.name,
                    layer=rules.Layer(h.layer), starts_at=h.starts_at, ends_at=h.ends_at,
                    stock_left=keys[h.id][2])
    found = [_RULES[keys[h.id]] for h in heads]
    live = {h.id: LivePromotion(id=h.id, name=h.name, stock_limit=h.stock_limit, stock_used=h.stock_used)
            for h in heads}
    return found, live


def _within_budget(row: Any) -> bool:
    return ((row.budget_count is None or row.used_count < row.budget_count)
            and (row.budget_amount is None or row.used_amount < row.budget_amount))


# ---------------------------------------------------------------------------------------------
# Pricing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """A priced cart and what it was priced with (the order commit takes exactly these)."""

    priced: rules.PricedCart
    cart: rules.Cart
    promotions: dict[str, LivePromotion]
    coupons: list[coupons.ResolvedCoupon]
    tier: MemberTier | None
    growth_to_earn: int

    def to_out(self, customer_id: str) -> PricedCartOut:
        """The API answer."""
        p = self.priced
        return PricedCartOut(
            currency=p.currency, customer_id=customer_id, tier=self.tier.code if self.tier else None,
            lines=p.lines, totals=p.totals, applied=p.applied, not_applied=p.not_applied,
            nudges=p.nudges, points_used=p.points_used, points_to_earn=p.points_to_earn,
            growth_to_earn=self.growth_to_earn, exact=p.exact,
        )

    def flash_units(self, promotion_id: str) -> int:
        """Units sold at a flash-sale promotion's price in this cart."""
        promo = self.promotions.get(promotion_id)
        if promo is None or promo.stock_limit is None:
            return 0
        stock_left = promo.stock_limit - promo.stock_used
        quantities = {line.line_id: line.quantity for line in self.priced.lines}
        for applied in self.priced.applied:
            if applied.promotion_id == promotion_id:
                wanted = sum(quantities.get(line_id, 0) for line_id, amount in applied.per_line if amount > 0)
                return min(stock_left, wanted)
        return 0


def quote(
    session: Session, request: CartIn, *, currency: str, now: datetime | None = None,
    program: loyalty.LoyaltyProgram = loyalty.DEFAULT_PROGRAM, segments_of: SegmentsOf | None = None,
) -> Quote:
    """Price a cart as the shop's checkout would show it (nothing is taken or written)."""
    now = now or utcnow()
    customer_id = request.customer_id
    tier = loyalty.member_tier(session, customer_id)
    promos, live = live_rules(session, now)
    if tier is not None and tier.free_shipping:
        promos.append(rules.Promotion(
            id=f"tier:{tier.code}:free_shipping", name=f"{tier.name}: free shipping", layer=rules.Layer.ORDER,
            reward=rules.FreeShipping(), conditions=rules.Conditions(tiers=frozenset({tier.code}))))
    resolved = coupons.resolve(session, request.coupon_codes, customer_id, now)
    needs_segments = any(p.conditions.segments for p in promos) or any(
        r.coupon.promotion.conditions.segments for r in resolved)
    segments = segments_of(customer_id) if segments_of is not None and needs_segments else frozenset()
    first = not repository.has_paid_order(session, customer_id) and request.first_order is not False
    points = None
    if request.points_to_use:
        available = loyalty.spendable(session, customer_id, now)
        if request.points_to_use > available:
            raise InsufficientPointsError(
                f"points_to_use: customer {customer_id!r} has {available} points to spend, "
                f"{request.points_to_use} asked for")
        points = rules.PointsUse(points=request.points_to_use, minor_per_point=program.redeem_minor_per_point,
                                 max_share_bp=program.max_points_share_bp)
    earn = rules.EarnRule(minor_per_point=program.earn_minor_per_point,
                          multiplier_bp=tier.points_multiplier_bp if tier is not None else rules.BASIS)
    try:
        cart = rules.Cart(
            currency=currency,
            customer=rules.Customer(now=now, customer_id=customer_id, tier=tier.code if tier else None,
                                    segments=segments, is_first_order=first, channel=request.channel),
            lines=tuple(rules.Line(line_id=line.line_id, sku=line.sku, unit_price=line.unit_price,
                                   quantity=line.quantity, category=line.category,
                                   member_prices=dict(line.member_prices), deposit_paid=line.deposit_paid,
                                   deposit_credit=line.deposit_credit) for line in request.lines),
            coupons=tuple(r.coupon for r in resolved), points=points, earn=earn,
            shipping_fee=request.shipping_fee,
        )
    except rules.PricingInputError as exc:
        raise InvalidArgumentError(exc.message) from None
    priced = rules.price_cart(cart, promos)
    growth = loyalty.growth_for_payment(priced.totals.goods_total, program)
    return Quote(priced=priced, cart=cart, promotions=live, coupons=resolved,
                 tier=tier, growth_to_earn=growth)


# ---------------------------------------------------------------------------------------------
# Warehouse lookups, summaries
# ---------------------------------------------------------------------------------------------


def warehouse_segments(backend: BaseBackend, customer_id: str) -> frozenset[str]:
    """The saved segments (ids) a customer is in as of their last refresh."""
    if not segments_repository.has_table(backend, segments_repository.MEMBERS_TABLE):
        return frozenset()
    table = backend.table(segments_repository.MEMBERS_TABLE)
    ids = table.filter(table.customer_id == customer_id).segment_id.to_pyarrow().to_pylist()
    return frozenset(str(i) for i in ids)


def segment_member_ids(backend: BaseBackend, segment_id: str) -> list[str]:
    """The current members of a saved segment (raises if it was never refreshed)."""
    if not segments_repository.has_table(backend, segments_repository.MEMBERS_TABLE):
        raise NotRefreshedError("segment_id: the segment has no members yet; refresh it first")
    table = backend.table(segments_repository.MEMBERS_TABLE)
    ids = table.filter(table.segment_id == segment_id).customer_id.to_pyarrow().to_pylist()
    return sorted(str(i) for i in ids)


def code_summary(session: Session, code: CouponCode) -> dict[str, Any]:
    """A code with its batch, holder, uses and redemptions (for the API and the CLI)."""
    batch = repository.batch(session, code.batch_id)
    assert batch is not None
    redemptions = session.scalars(select(CouponRedemption).where(CouponRedemption.code == code.code)
                                  .order_by(CouponRedemption.redeemed_at)).all()
    return {
        "code": code.code, "batch_id": batch.id, "batch_name": batch.name, "customer_id": code.customer_id,
        "issue_key": code.issue_key, "uses": code.uses, "max_uses": code.max_uses,
        "valid_from": batch.valid_from.isoformat(), "valid_until": batch.valid_until.isoformat(),
        "redemptions": [{"order_id": r.order_id, "customer_id": r.customer_id, "discount": r.discount,
                         "status": r.status, "redeemed_at": r.redeemed_at.isoformat()} for r in redemptions],
    }


def member_out(session: Session, customer_id: str, now: datetime | None = None) -> MemberOut:
    """A customer's tier, growth, points balance, lots and latest 50 ledger moves."""
    now = now or utcnow()
    member = repository.member(session, customer_id)
    return MemberOut(
        customer_id=customer_id, tier=member.tier_code if member else None,
        growth=member.growth if member else 0, birthday=member.birthday if member else None,
        points_balance=loyalty.balance(session, customer_id),
        points_spendable=loyalty.spendable(session, customer_id, now),
        lots=[LotOut.model_validate(lot) for lot in repository.lots(session, customer_id)],
        ledger=[LedgerOut.model_validate(e) for e in repository.ledger(session, customer_id, limit=50)],
    )
