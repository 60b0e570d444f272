"""Promotions as stored data, and pricing a cart against them. Never commits.

:func:`quote` gathers what the pure core (``promotions.rules``) needs — the live promotions with
their remaining flash-sale stock (those whose budget is spent are left out), the cart's coupons
(``promotions.coupons.resolve``), the customer's tier, first-order status and segments, the
points they may use — prices the cart and returns the answer with the context the order commit
needs. A tier with free shipping adds a free-shipping promotion (``tier:<code>:free_shipping``)
limited to that tier, so it is explained like any other.

**Hold-outs.** A promotion or coupon batch whose definition names a ``holdout`` (the key of an
experiment of kind ``holdout``) is withheld from the customers that experiment holds out: before
pricing, :func:`holdout_decisions` places the cart's customer with the experiments' own
assignment (``experiments.service.assign_unit`` — the same hashing and targeting as
``GET /api/v1/experiments/{key}/assignment`` and ``in_holdout``); a held-out customer's cart is
priced without that promotion (or coupon) and lists it in ``not_applied`` with code ``held_out``.
Every customer the hold-out places (held out *or* treated) whose cart considered the promotion —
the promotion was live, or the coupon was in the cart — gets an ``experiment_exposure`` event
through the ``record`` callback of :class:`HoldoutHooks` (the API passes the events spool, the
path the assignment endpoint uses: a durable local append, no warehouse write; the spool reaches
the warehouse about a second later). The exposure does not depend on the arm (the treated arm is
not "exposed only when the promotion applied"), so the two groups stay comparable; the report
(:func:`holdout_results`) is the experiment's analysis by ``growthwheel.stats``, treated against
held out. Exposures are recorded at most once per process for a customer, hold-out and variant
(later carts add nothing to the analysis, which keeps each unit's first exposure). A committed
order keeps the priced cart, so its ``not_applied`` records the hold-out decision. Journeys use
the same assignment through ``experiments.service.in_holdout``.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ibis.backends import BaseBackend
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import InvalidArgumentError
from growthwheel.experiments import repository as experiments_repository
from growthwheel.experiments import service as experiments_service
from growthwheel.experiments.models import Experiment
from growthwheel.loyalty import repository as loyalty_repository
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.errors import InsufficientPointsError
from growthwheel.loyalty.models import Member, MemberTier
from growthwheel.promotions import coupons, repository, rules
from growthwheel.promotions.definition import (
    Definition,
    FlashSaleIn,
    check_holdout,
    check_rule,
    parse_definition,
    to_rule,
)
from growthwheel.promotions.errors import PromotionNotFoundError
from growthwheel.promotions.models import CouponCode, CouponRedemption, Promotion
from growthwheel.promotions.schemas import CartIn, OrderIn, PricedCartOut
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
        raise InvalidArgumentError.coded("err.name_length", field="name")
    parsed = definition if isinstance(definition, Definition) else parse_definition(definition)
    layer = _layer(parsed)
    check_rule(parsed, layer=layer)
    check_holdout(session, parsed)
    if status not in ("draft", "active"):
        raise InvalidArgumentError.coded("err.promo.new_status", field="status")
    _check_schedule(starts_at, ends_at)
    is_flash = isinstance(parsed.reward, FlashSaleIn)
    if is_flash and stock is None:
        raise InvalidArgumentError.coded("err.promo.needs_stock", field="stock")
    if not is_flash and stock is not None:
        raise InvalidArgumentError.coded("err.promo.stock_only_flash", field="stock")
    for field_name, value in (("budget_count", budget_count), ("budget_amount", budget_amount),
                              ("stock", stock)):
        if value is not None and value < (0 if field_name == "stock" else 1):
            raise InvalidArgumentError.coded("err.out_of_range", field=field_name)
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
            raise InvalidArgumentError.coded("err.time_zone", field=field_name)
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidArgumentError.coded("err.ends_after_starts", field="ends_at")


def get_promotion(session: Session, promotion_id: str) -> Promotion:
    """The promotion with this id."""
    found = repository.promotion(session, promotion_id)
    if found is None:
        raise PromotionNotFoundError.coded("err.promo.no_promotion", promotion_id=promotion_id)
    return found


def update_promotion(
    session: Session, row: Promotion, *, status: str | None = None, starts_at: datetime | None = None,
    ends_at: datetime | None = None, principal: Principal | None = None, actor_name: str | None = None,
) -> Promotion:
    """Change status (draft / active / paused / ended) or schedule. An ended promotion stays ended."""
    if status is not None:
        if status not in ("draft", "active", "paused", "ended"):
            raise InvalidArgumentError.coded("err.promo.status", field="status")
        if row.status == "ended" and status != "ended":
            raise InvalidArgumentError.coded("err.promo.ended", field="status")
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
    holdout: str | None = None


_RULES: dict[tuple[str, datetime, int], tuple[rules.Promotion, str | None]] = {}
"""Pricing-core promotions by (id, updated_at, flash-sale stock left). A definition never changes
after creation and ``updated_at`` moves with every change of schedule, so an entry is never stale;
it spares every cart the JSON decoding and validation of every live promotion (the hold-out key
is kept beside the core's promotion)."""
_RULES_LIMIT = 20_000


_LIVE: dict[str | None, tuple[list[rules.Promotion], dict[str, LivePromotion]]] = {}
""":func:`live_rules` by the digest of the live promotions as read (every column it uses; the
budget counters, which every order moves, stay in the database, which keeps only the promotions
within their budgets): the same digest gives the same answer, so a checkout reading unchanged rows
reads one row and skips building 200 objects."""
_LIVE_LIMIT = 64


def live_rules(session: Session, now: datetime) -> tuple[list[rules.Promotion], dict[str, LivePromotion]]:
    """The live promotions (active, in schedule, budget not spent) as the pricing core's objects."""
    digest = repository.live_promotions_digest(session, now)
    found = _LIVE.get(digest)
    if found is None:  # read the rows, with their digest from the same read (a change in between is seen)
        digest, heads = repository.live_promotion_heads(session, now)
        if len(_LIVE) >= _LIVE_LIMIT:
            _LIVE.clear()
        found = _LIVE[digest] = _live_rules(session, tuple(heads))
    promos, live = found
    return list(promos), dict(live)  # the caller's own: quote() adds and leaves out promotions


def _live_rules(session: Session,
                heads: tuple[Any, ...]) -> tuple[list[rules.Promotion], dict[str, LivePromotion]]:
    keys = {h.id: (h.id, h.updated_at, (h.stock_limit - h.stock_used) if h.stock_limit is not None else 0)
            for h in heads}
    missing = [h.id for h in heads if keys[h.id] not in _RULES]
    if missing:
        if len(_RULES) + len(missing) > _RULES_LIMIT:
            _RULES.clear()
        definitions = repository.promotion_definitions(session, missing)
        for h in heads:
            if h.id in definitions:
                parsed = parse_definition(definitions[h.id])
                _RULES[keys[h.id]] = (to_rule(
                    parsed, promotion_id=h.id, name=h.name,
                    layer=rules.Layer(h.layer), starts_at=h.starts_at, ends_at=h.ends_at,
                    stock_left=keys[h.id][2]), parsed.holdout)
    found = [_RULES[keys[h.id]][0] for h in heads]
    live = {h.id: LivePromotion(id=h.id, name=h.name, stock_limit=h.stock_limit, stock_used=h.stock_used,
                                holdout=_RULES[keys[h.id]][1])
            for h in heads}
    return found, live


# ---------------------------------------------------------------------------------------------
# Hold-outs
# ---------------------------------------------------------------------------------------------

HELD_OUT = "held_out"
"""The ``not_applied`` code of a promotion withheld from a customer by its hold-out."""


@dataclass(frozen=True)
class HoldoutHooks:
    """What :func:`quote` needs for hold-outs beyond the store: the members of a targeted hold-out's
    segment (``read_members``, as for the assignment endpoint; ``scope`` names the warehouse) and
    the exposure recorder (``record``; without one nothing is recorded, e.g. in tests or jobs)."""

    read_members: experiments_service.MemberReader | None = None
    record: experiments_service.Recorder | None = None
    scope: str = ""


@dataclass(frozen=True)
class HoldoutDecision:
    """Where a hold-out places a customer: its variant (``None`` when not in it) and whether held out."""

    key: str
    variant: str | None
    held_out: bool


class _ExposedOnce:
    """(scope, hold-out, customer, variant) already recorded by this process (bounded, LRU)."""

    def __init__(self, size: int = 200_000) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()

    def seen(self, key: tuple[str, str, str, str]) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            return False

    def add(self, key: tuple[str, str, str, str]) -> None:
        with self._lock:
            self._seen[key] = None
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)


_EXPOSED = _ExposedOnce()


def holdout_decisions(
    session: Session, keys: Iterable[str], customer_id: str, *, hooks: HoldoutHooks | None = None,
    now: datetime | None = None,
) -> dict[str, HoldoutDecision]:
    """Place ``customer_id`` in each hold-out of ``keys`` with the experiments' assignment (the
    answer of ``GET /api/v1/experiments/{key}/assignment``) and record an exposure for every
    customer placed in a variant (once per process; see the module docstring). A hold-out that
    is not running, or no longer exists, holds nobody out. Journeys may call this the same way."""
    hooks = hooks or HoldoutHooks()
    found: dict[str, HoldoutDecision] = {}
    exposures: list[tuple[tuple[str, str, str, str], dict[str, Any]]] = []
    for key in sorted(set(keys)):
        exp = experiments_repository.by_key(session, key)
        if exp is None or exp.kind != "holdout":
            found[key] = HoldoutDecision(key, None, False)
            continue
        placed = experiments_service.assign_unit(session, exp, customer_id=customer_id,
                                                 read_members=hooks.read_members, scope=hooks.scope)
        held = placed.variant is not None and placed.variant == _held_variant(exp)
        found[key] = HoldoutDecision(key, placed.variant, held)
        if placed.variant is not None and hooks.record is not None:
            seen = (hooks.scope, key, customer_id, placed.variant)
            if not _EXPOSED.seen(seen):
                exposures.append((seen, experiments_service.exposure_event(
                    exp, placed.variant, customer_id=customer_id, anonymous_id=None, at=now)))
    if exposures and hooks.record is not None:
        hooks.record([event for _seen, event in exposures])
        for seen, _event in exposures:
            _EXPOSED.add(seen)
    return found


def _held_variant(exp: Experiment) -> str:
    """The held-out group of a hold-out: its first variant (``holdout``; the control)."""
    return str(exp.variants[0]["name"])


def _held_out_entry(promotion: rules.Promotion, key: str, coupon_code: str | None = None) -> rules.NotApplied:
    what = "coupon" if coupon_code else "promotion"
    return rules.NotApplied(
        promotion_id=promotion.id, name=promotion.name, layer=promotion.layer, code=HELD_OUT,
        reason=f"held out: this customer is in the hold-out group of experiment {key!r}, which does "
               f"not get this {what} so that its effect can be measured",
        coupon_code=coupon_code)


def holdout_experiment(session: Session, row: Promotion) -> Experiment:
    """The hold-out experiment a promotion names (422 when it names none)."""
    key = parse_definition(row.definition).holdout
    if key is None:
        raise InvalidArgumentError.coded("err.promo.no_holdout", field="holdout", promotion_id=row.id)
    return experiments_service.get_experiment(session, key)


def holdout_results(session: Session, backend: BaseBackend, row: Promotion, *,
                    as_of: datetime | None = None) -> dict[str, Any]:
    """The promotion's hold-out report: its experiment's results (``experiments.service.results``,
    the statistics engine) — every metric of the treated customers against the held-out ones."""
    exp = holdout_experiment(session, row)
    found = experiments_service.results(backend, exp, as_of=as_of)
    return {"promotion": {"id": row.id, "name": row.name, "status": row.status, "holdout": exp.key},
            **found}


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
    member: Member | None = None

    def to_out(self, customer_id: str) -> PricedCartOut:
        """The API answer."""
        p = self.priced
        return PricedCartOut(
            currency=p.currency, customer_id=customer_id, tier=self.tier.code if self.tier else None,
            lines=p.lines, totals=p.totals, applied=p.applied, not_applied=p.not_applied,
            nudges=p.nudges, points_used=p.points_used, points_to_earn=p.points_to_earn,
            growth_to_earn=self.growth_to_earn, exact=p.exact, not_applied_elsewhere=p.elsewhere,
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


@functools.lru_cache(maxsize=64)
def promotion_index(promos: tuple[rules.Promotion, ...]) -> rules.PromotionIndex:
    """The pricing index of an active set, built once per distinct set (a set differs when a
    promotion changes, starts or ends, its stock moves, or a tier adds its free shipping) and shared
    by every cart priced against it: building one costs about as much as pricing a cart."""
    return rules.PromotionIndex(promos)


def quote(
    session: Session, request: CartIn, *, currency: str, now: datetime | None = None,
    program: loyalty.LoyaltyProgram = loyalty.DEFAULT_PROGRAM, segments_of: SegmentsOf | None = None,
    holdouts: HoldoutHooks | None = None,
) -> Quote:
    """Price a cart as the shop's checkout would show it (nothing is taken or written in the store;
    hold-out exposures go to ``holdouts.record``)."""
    now = now or utcnow()
    customer_id = request.customer_id
    # Held by the Quote: the commit's tier evaluation finds the row in the session (its identity map
    # holds rows weakly; let go, the row was read a second time).
    member = loyalty_repository.member(session, customer_id)
    tier = loyalty.member_tier(session, customer_id)
    promos, live = live_rules(session, now)
    if tier is not None and tier.free_shipping:
        promos.append(rules.Promotion(
            id=f"tier:{tier.code}:free_shipping", name=f"{tier.name}: free shipping", layer=rules.Layer.ORDER,
            reward=rules.FreeShipping(), conditions=rules.Conditions(tiers=frozenset({tier.code}))))
    resolved = coupons.resolve(session, request.coupon_codes, customer_id, now)
    promos, resolved, held = _apply_holdouts(session, promos, live, resolved, customer_id, holdouts, now)
    needs_segments = any(p.conditions.segments for p in promos) or any(
        r.coupon.promotion.conditions.segments for r in resolved)
    segments = segments_of(customer_id) if segments_of is not None and needs_segments else frozenset()
    # Whether this is the customer's first order matters only to a first-order promotion or coupon
    # (新人券): without one among the live ones, the store is not asked.
    first = False
    if request.first_order is not False and (
            any(p.conditions.first_order_only for p in promos)
            or any(r.coupon.promotion.conditions.first_order_only for r in resolved)):
        committing = request.order_id if isinstance(request, OrderIn) else None  # claimed already
        first = not repository.has_paid_order(session, customer_id, besides=committing)
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
            shipping_fee=request.shipping_fee, explain_all=request.explain_all,
        )
    except rules.PricingInputError as exc:
        raise InvalidArgumentError(exc.message) from None
    priced = rules.price_cart(cart, promotion_index(tuple(promos)))
    if held:
        priced = replace(priced, not_applied=priced.not_applied + tuple(held))
    growth = loyalty.growth_for_payment(priced.totals.goods_total, program)
    return Quote(priced=priced, cart=cart, promotions=live, coupons=resolved,
                 tier=tier, growth_to_earn=growth, member=member)


def _stored_holdout(definition: Any) -> str | None:
    """The hold-out key of a stored (validated) definition, without validating it again."""
    key = definition.get("holdout") if isinstance(definition, dict) else None
    return str(key) if key else None


def _apply_holdouts(
    session: Session, promos: list[rules.Promotion], live: dict[str, LivePromotion],
    resolved: list[coupons.ResolvedCoupon], customer_id: str, hooks: HoldoutHooks | None, now: datetime,
) -> tuple[list[rules.Promotion], list[coupons.ResolvedCoupon], list[rules.NotApplied]]:
    """Leave out the promotions and coupons whose hold-out holds this customer out, with their
    ``held_out`` explanations."""
    promo_keys = {p.id: live[p.id].holdout for p in promos if p.id in live and live[p.id].holdout}
    coupon_keys = {id(r): _stored_holdout(r.batch.definition) for r in resolved}
    keys = [k for k in (*promo_keys.values(), *coupon_keys.values()) if k]
    if not keys:
        return promos, resolved, []
    decisions = holdout_decisions(session, keys, customer_id, hooks=hooks, now=now)
    held: list[rules.NotApplied] = []
    kept: list[rules.Promotion] = []
    for p in promos:
        key = promo_keys.get(p.id)
        if key and decisions[key].held_out:
            held.append(_held_out_entry(p, key))
        else:
            kept.append(p)
    kept_coupons: list[coupons.ResolvedCoupon] = []
    for r in resolved:
        key = coupon_keys[id(r)]
        if key and decisions[key].held_out:
            held.append(_held_out_entry(r.coupon.promotion, key, coupon_code=r.coupon.code))
        else:
            kept_coupons.append(r)
    return kept, kept_coupons, held


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
