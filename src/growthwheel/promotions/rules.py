"""Pure cart pricing: promotions are data, every applied discount is recorded per line.

No I/O, integer minor units everywhere, deterministic. The caller (``promotions.service``) loads the
active promotions, resolves coupon codes into :class:`Coupon` objects, checks flash-sale stock and
passes plain values; :func:`price_cart` returns a :class:`PricedCart` that explains itself.

Stacking (fixed order, each layer priced on what the previous one left):

1. **item** — item promotions (percentage / amount off, flash-sale price, member price, N-th item,
   bundle price); then the presale deposit credit (定金膨胀) of presale lines;
2. **order** — spend-X-save-Y tiers (满减), every-X-save-Y (每满减), N items X% off (满件折), gift with
   purchase (满赠), free shipping, plain order amount / percentage off;
3. **coupon** — the same order-type rewards, brought by the coupons of the cart;
4. **points** — points used as cash, at most a share of what is left.

Inside a layer every reward is computed on the layer's input (the price the previous layer left),
not on each other, so rewards of one layer add up; a unit has one price, so of the *price* rewards
(flash-sale, member, bundle) on a line only the lowest price counts. A discount never exceeds what
is left of a line, so nothing is ever negative.

Which promotions apply is a search: pairwise compatibility (``exclusive`` / ``combines_with``) and
thresholds that depend on earlier layers mean that the largest discount in one layer is not always
the cheapest order (a 1 % item discount may push the cart below a 满减 threshold). See
:func:`price_cart` for the exact search, its bound and the deterministic fallback.

Order and coupon discounts and points are allocated to lines by largest remainder proportionally to
each line's remaining amount (:func:`growthwheel.kit.money.allocate`), so line discounts sum to the
order discount exactly; :func:`refund_amount` returns the exact paid amount of refunded units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from growthwheel.errors import InvalidArgumentError
from growthwheel.kit.money import allocate, currency_exponent, major_text

#: 100 % in basis points: rates are integers out of 10,000 (a 12 % discount = 1200, 8.8折 = 1200).
BASIS = 10_000


class PricingInputError(InvalidArgumentError):
    """A cart or promotion given to the pricing core is malformed; the message names the field."""

    code = "invalid_pricing_input"
    status = 422


class Layer(StrEnum):
    """Stacking layers, applied in this order (:data:`LAYER_ORDER`)."""

    ITEM = "item"
    ORDER = "order"
    COUPON = "coupon"
    POINTS = "points"


#: The fixed stacking order.
LAYER_ORDER: tuple[Layer, ...] = (Layer.ITEM, Layer.ORDER, Layer.COUPON, Layer.POINTS)


def _check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise PricingInputError(f"{field_name}: {message}")


def _check_rate(rate_bp: int, field_name: str) -> None:
    _check(0 < rate_bp <= BASIS, field_name, f"must be a rate in basis points in 1..{BASIS}, got {rate_bp}")


def round_half_up_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half-up to an integer (both non-negative, denominator > 0)."""
    return (2 * numerator + denominator) // (2 * denominator)


# --------------------------------------------------------------------------------------------------
# Rewards. Item rewards give a discount per line; order rewards give one amount for their lines.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PercentOff:
    """Item: ``rate_bp`` basis points off each eligible line (rounded half-up per line)."""

    rate_bp: int

    def __post_init__(self) -> None:
        _check_rate(self.rate_bp, "PercentOff.rate_bp")


@dataclass(frozen=True)
class AmountOff:
    """Item: ``amount`` off each eligible unit (never more than the unit's price)."""

    amount: int

    def __post_init__(self) -> None:
        _check(self.amount > 0, "AmountOff.amount", "must be positive")


@dataclass(frozen=True)
class FlashSalePrice:
    """Item (price reward, 秒杀): units sell at ``price`` while ``stock_left`` lasts.

    The stock check itself belongs to the caller, which passes the units still available; the core
    prices at most ``stock_left`` units (taken from the eligible lines in cart order) at the sale
    price and the rest at the normal price.
    """

    price: int
    stock_left: int

    def __post_init__(self) -> None:
        _check(self.price >= 0, "FlashSalePrice.price", "must not be negative")
        _check(self.stock_left >= 0, "FlashSalePrice.stock_left", "must not be negative")


@dataclass(frozen=True)
class MemberPrice:
    """Item (price reward): eligible lines sell at their ``Line.member_prices[customer tier]``."""


@dataclass(frozen=True)
class NthItemOff:
    """Item: every ``n``-th eligible unit gets ``rate_bp`` off (第二件半价: n=2, rate_bp=5000).

    The eligible units are pooled and ordered by unit price, highest first (ties by cart order);
    units at positions n, 2n, ... are discounted, so the discount goes to the cheaper units.
    """

    n: int
    rate_bp: int

    def __post_init__(self) -> None:
        _check(self.n >= 2, "NthItemOff.n", "must be at least 2")
        _check_rate(self.rate_bp, "NthItemOff.rate_bp")


@dataclass(frozen=True)
class BundlePrice:
    """Item (price reward): one unit of each of ``skus`` together for ``price`` (组合价).

    The number of bundles is the smallest quantity among the skus; each bundle's discount (sum of
    its unit prices minus ``price``) is spread over its units by largest remainder.
    """

    skus: frozenset[str]
    price: int

    def __post_init__(self) -> None:
        _check(len(self.skus) >= 2, "BundlePrice.skus", "a bundle needs at least two skus")
        _check(self.price >= 0, "BundlePrice.price", "must not be negative")


@dataclass(frozen=True)
class SpendTiers:
    """Order / coupon (满减): the highest tier reached, ``(threshold, amount off)`` pairs.

    E.g. ``((20000, 2000), (30000, 5000), (50000, 10000))`` = 满200减20, 满300减50, 满500减100.
    """

    tiers: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        _check(bool(self.tiers), "SpendTiers.tiers", "needs at least one tier")
        previous = (-1, 0)
        for threshold, off in self.tiers:
            _check(threshold > previous[0], "SpendTiers.tiers", "thresholds must increase")
            _check(off > 0 and (off <= threshold or threshold == 0), "SpendTiers.tiers",
                   f"amount off {off} must be positive and not above its threshold {threshold}")
            _check(off >= previous[1], "SpendTiers.tiers", "a higher tier must not save less")
            previous = (threshold, off)


@dataclass(frozen=True)
class EveryXOffY:
    """Order / coupon (每满减): ``off`` for every full ``every`` spent, at most ``cap`` (None: no cap)."""

    every: int
    off: int
    cap: int | None = None

    def __post_init__(self) -> None:
        _check(self.every > 0, "EveryXOffY.every", "must be positive")
        _check(0 < self.off <= self.every, "EveryXOffY.off", "must be positive and not above `every`")
        _check(self.cap is None or self.cap > 0, "EveryXOffY.cap", "must be positive when given")


@dataclass(frozen=True)
class QuantityTiers:
    """Order / coupon (满件折): ``(min quantity, rate_bp)`` tiers; the highest reached applies.

    E.g. ``((2, 1000), (3, 2000))`` = 2 items 10 % off, 3 items 20 % off (9折 / 8折).
    """

    tiers: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        _check(bool(self.tiers), "QuantityTiers.tiers", "needs at least one tier")
        previous = (0, 0)
        for quantity, rate_bp in self.tiers:
            _check(quantity > previous[0], "QuantityTiers.tiers", "quantities must increase")
            _check_rate(rate_bp, "QuantityTiers.tiers")
            _check(rate_bp >= previous[1], "QuantityTiers.tiers", "a higher tier must not save less")
            previous = (quantity, rate_bp)


@dataclass(frozen=True)
class OrderAmountOff:
    """Order / coupon: ``amount`` off the eligible lines (a 20-yuan coupon); never more than they cost."""

    amount: int

    def __post_init__(self) -> None:
        _check(self.amount > 0, "OrderAmountOff.amount", "must be positive")


@dataclass(frozen=True)
class OrderPercentOff:
    """Order / coupon: ``rate_bp`` off the eligible lines, at most ``cap`` (None: no cap)."""

    rate_bp: int
    cap: int | None = None

    def __post_init__(self) -> None:
        _check_rate(self.rate_bp, "OrderPercentOff.rate_bp")
        _check(self.cap is None or self.cap > 0, "OrderPercentOff.cap", "must be positive when given")


@dataclass(frozen=True)
class GiftWithPurchase:
    """Order / coupon (满赠): adds a zero-price gift line of ``quantity`` × ``sku``.

    ``value`` (the gift's list price per unit) is shown to the customer and breaks ties between
    selections of equal total in favour of the one with the gift; it is never charged.
    """

    sku: str
    quantity: int = 1
    value: int = 0

    def __post_init__(self) -> None:
        _check(bool(self.sku), "GiftWithPurchase.sku", "must not be empty")
        _check(self.quantity > 0, "GiftWithPurchase.quantity", "must be positive")
        _check(self.value >= 0, "GiftWithPurchase.value", "must not be negative")


@dataclass(frozen=True)
class FreeShipping:
    """Order / coupon (包邮): the cart's shipping fee is waived."""


ItemReward = PercentOff | AmountOff | FlashSalePrice | MemberPrice | NthItemOff | BundlePrice
OrderReward = (SpendTiers | EveryXOffY | QuantityTiers | OrderAmountOff | OrderPercentOff
               | GiftWithPurchase | FreeShipping)
Reward = ItemReward | OrderReward

ITEM_REWARDS = (PercentOff, AmountOff, FlashSalePrice, MemberPrice, NthItemOff, BundlePrice)
ORDER_REWARDS = (SpendTiers, EveryXOffY, QuantityTiers, OrderAmountOff, OrderPercentOff,
                 GiftWithPurchase, FreeShipping)
#: Rewards that set a unit price: on one line only the lowest of them counts.
PRICE_REWARDS = (FlashSalePrice, MemberPrice, BundlePrice)


# --------------------------------------------------------------------------------------------------
# Conditions and promotions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conditions:
    """When a promotion applies; an empty set / ``None`` / 0 means "no restriction".

    * ``skus`` / ``categories``: the eligible lines (a line is eligible if its sku or its category is
      listed; with both empty every line is eligible). Rewards only touch eligible lines and
      ``min_amount`` / ``min_quantity`` are measured on them.
    * ``segments`` (customer in at least one), ``tiers``, ``channels``: customer and cart context.
    * ``starts_at`` ≤ now < ``ends_at`` (UTC).
    * ``first_order_only``: new-customer promotions (新人券).
    * ``min_amount``: the eligible lines' amount *left by the previous layers* must reach it
      (coupon threshold, 满赠 threshold). Tier thresholds of :class:`SpendTiers` live in the reward.
    * ``min_quantity``: eligible units in the cart.
    """

    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    first_order_only: bool = False
    min_amount: int = 0
    min_quantity: int = 0

    def __post_init__(self) -> None:
        for name in ("starts_at", "ends_at"):
            value = getattr(self, name)
            _check(value is None or value.utcoffset() is not None, f"Conditions.{name}",
                   "must be timezone-aware (UTC)")
        if self.starts_at is not None and self.ends_at is not None:
            _check(self.starts_at < self.ends_at, "Conditions.ends_at", "must be after starts_at")
        _check(self.min_amount >= 0, "Conditions.min_amount", "must not be negative")
        _check(self.min_quantity >= 0, "Conditions.min_quantity", "must not be negative")


@dataclass(frozen=True)
class Promotion:
    """A promotion as data: conditions, one reward, its layer and what it combines with.

    * ``layer``: ITEM for item rewards; ORDER or COUPON for order rewards (a COUPON promotion only
      applies through a :class:`Coupon` of the cart). POINTS is not a promotion layer.
    * ``exclusive``: an exclusive promotion combines only with the promotions whose id, or whose
      layer name (``"item"``, ``"order"``, ``"coupon"``), is in ``combines_with`` (不与其他优惠同享
      unless listed). A non-exclusive promotion combines with every promotion that does not exclude
      it. Compatibility is pairwise and symmetric: both sides must allow each other.
    * ``priority``: higher first when rewards of one layer are allocated in turn; never changes which
      combination wins (the search minimises the total), only the order of the per-line records.
    """

    id: str
    name: str
    layer: Layer
    reward: Reward
    conditions: Conditions = field(default_factory=Conditions)
    exclusive: bool = False
    combines_with: frozenset[str] = frozenset()
    priority: int = 0

    def __post_init__(self) -> None:
        _check(bool(self.id), "Promotion.id", "must not be empty")
        _check(self.layer is not Layer.POINTS, f"Promotion {self.id}.layer",
               "points are not a promotion layer")
        if isinstance(self.reward, ITEM_REWARDS):
            _check(self.layer is Layer.ITEM, f"Promotion {self.id}.layer",
                   f"{type(self.reward).__name__} is an item reward: layer must be 'item'")
        else:
            _check(self.layer is not Layer.ITEM, f"Promotion {self.id}.layer",
                   f"{type(self.reward).__name__} is an order reward: layer must be 'order' or 'coupon'")

    def allows(self, other: Promotion) -> bool:
        """Whether this promotion lets ``other`` apply in the same cart (one side of compatibility)."""
        return (not self.exclusive or other.id in self.combines_with
                or other.layer.value in self.combines_with)


def compatible(a: Promotion, b: Promotion) -> bool:
    """Whether two promotions may apply together: each allows the other."""
    return a.allows(b) and b.allows(a)


@dataclass(frozen=True)
class Coupon:
    """A coupon code of the cart, resolved by the caller: its code and its COUPON-layer promotion.

    Whether the code exists, is in its validity window, within budget and per-customer limits is the
    caller's check; the core checks the promotion's conditions (threshold, skus, new customer ...).
    """

    code: str
    promotion: Promotion

    def __post_init__(self) -> None:
        _check(bool(self.code), "Coupon.code", "must not be empty")
        _check(self.promotion.layer is Layer.COUPON, f"Coupon {self.code}.promotion.layer",
               "must be 'coupon'")


# --------------------------------------------------------------------------------------------------
# The cart
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    """Who buys, where and when: the context conditions are checked against (``now`` in UTC)."""

    now: datetime
    customer_id: str | None = None
    tier: str | None = None
    segments: frozenset[str] = frozenset()
    is_first_order: bool = False
    channel: str | None = None

    def __post_init__(self) -> None:
        _check(self.now.utcoffset() is not None, "Customer.now", "must be timezone-aware (UTC)")


@dataclass(frozen=True)
class Line:
    """A cart line: ``unit_price`` × ``quantity`` in minor units.

    ``member_prices`` maps a tier to that tier's unit price (used by :class:`MemberPrice`).
    Presale lines (定金膨胀) carry the deposit already paid per unit (``deposit_paid``) and what it
    counts for at the final payment (``deposit_credit`` ≥ ``deposit_paid``); the cart then prices the
    final payment (尾款).
    """

    line_id: str
    sku: str
    unit_price: int
    quantity: int
    category: str | None = None
    member_prices: Mapping[str, int] = field(default_factory=dict)
    deposit_paid: int = 0
    deposit_credit: int = 0

    def __post_init__(self) -> None:
        where = f"Line {self.line_id!r}"
        _check(bool(self.line_id), "Line.line_id", "must not be empty")
        _check(bool(self.sku), f"{where}.sku", "must not be empty")
        _check(self.unit_price >= 0, f"{where}.unit_price", "must not be negative")
        _check(self.quantity > 0, f"{where}.quantity", "must be positive")
        for tier, price in self.member_prices.items():
            _check(price >= 0, f"{where}.member_prices[{tier!r}]", "must not be negative")
        _check(self.deposit_paid >= 0, f"{where}.deposit_paid", "must not be negative")
        _check(self.deposit_credit >= self.deposit_paid, f"{where}.deposit_credit",
               "must be at least the deposit paid")

    @property
    def amount(self) -> int:
        """``unit_price × quantity``."""
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class PointsUse:
    """Points the customer wants to spend: ``points`` worth ``minor_per_point`` each (1 分 per point
    when 100 points = 1 yuan), covering at most ``max_share_bp`` of what is left after coupons."""

    points: int
    minor_per_point: int = 1
    max_share_bp: int = BASIS

    def __post_init__(self) -> None:
        _check(self.points >= 0, "PointsUse.points", "must not be negative")
        _check(self.minor_per_point > 0, "PointsUse.minor_per_point", "must be positive")
        _check(0 <= self.max_share_bp <= BASIS, "PointsUse.max_share_bp", f"must be in 0..{BASIS}")


@dataclass(frozen=True)
class EarnRule:
    """How the paid amount earns points: one point per ``minor_per_point`` paid × the tier multiplier."""

    minor_per_point: int = 100
    multiplier_bp: int = BASIS

    def __post_init__(self) -> None:
        _check(self.minor_per_point > 0, "EarnRule.minor_per_point", "must be positive")
        _check(self.multiplier_bp >= 0, "EarnRule.multiplier_bp", "must not be negative")


@dataclass(frozen=True)
class Cart:
    """Everything :func:`price_cart` needs: lines, customer context, coupons, points and shipping."""

    currency: str
    customer: Customer
    lines: tuple[Line, ...]
    coupons: tuple[Coupon, ...] = ()
    points: PointsUse | None = None
    earn: EarnRule | None = None
    shipping_fee: int = 0

    def __post_init__(self) -> None:
        try:
            currency_exponent(self.currency)
        except ValueError as exc:
            raise PricingInputError(f"Cart.currency: {exc}") from None
        _check(bool(self.lines), "Cart.lines", "a cart needs at least one line")
        ids = [line.line_id for line in self.lines]
        _check(len(set(ids)) == len(ids), "Cart.lines", "line ids must be unique")
        codes = [coupon.code for coupon in self.coupons]
        _check(len(set(codes)) == len(codes), "Cart.coupons", "a coupon code may be given once")
        _check(self.shipping_fee >= 0, "Cart.shipping_fee", "must not be negative")


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineDiscount:
    """One promotion's discount on one line (``promotion_id`` is ``"points"`` for points)."""

    promotion_id: str
    layer: Layer
    amount: int
    coupon_code: str | None = None


@dataclass(frozen=True)
class PricedLine:
    """A priced line: ``subtotal - discounts - deposit_credit = paid`` (the final payment).

    ``deposit_paid`` is the deposit paid earlier for this line (outside this payment); gift lines
    (满赠) have ``is_gift`` and cost nothing.
    """

    line_id: str
    sku: str
    unit_price: int
    quantity: int
    subtotal: int
    discounts: tuple[LineDiscount, ...]
    deposit_paid: int
    deposit_credit: int
    paid: int
    is_gift: bool = False

    @property
    def discount_total(self) -> int:
        """All discounts of the line (not the deposit credit)."""
        return sum(d.amount for d in self.discounts)

    def discount_for(self, layer: Layer) -> int:
        """The line's discounts of one layer."""
        return sum(d.amount for d in self.discounts if d.layer is layer)


@dataclass(frozen=True)
class Totals:
    """Cart totals in minor units; ``goods_total = subtotal - discounts - deposit_credit`` and
    ``total = goods_total + shipping`` (what this payment charges)."""

    subtotal: int
    item_discount: int
    deposit_credit: int
    order_discount: int
    coupon_discount: int
    points_discount: int
    shipping_fee: int
    shipping_discount: int
    goods_total: int
    shipping: int
    total: int


@dataclass(frozen=True)
class Nudge:
    """A near miss shown at checkout: spend ``short_amount`` more (or add ``short_quantity`` items)
    to save ``would_save`` (a free-shipping or gift nudge has ``would_save`` 0)."""

    promotion_id: str
    short_amount: int
    short_quantity: int
    would_save: int
    message: str


@dataclass(frozen=True)
class AppliedPromotion:
    """A promotion that applied: its amount and how it splits over the lines."""

    promotion_id: str
    name: str
    layer: Layer
    amount: int
    per_line: tuple[tuple[str, int], ...]
    coupon_code: str | None = None
    shipping_discount: int = 0
    gift_sku: str | None = None
    gift_quantity: int = 0


@dataclass(frozen=True)
class NotApplied:
    """A promotion that did not apply: a stable machine ``code``, a human ``reason``, maybe a nudge.

    Codes: ``not_started``, ``ended``, ``wrong_channel``, ``wrong_tier``, ``wrong_segment``,
    ``not_first_order``, ``no_eligible_lines``, ``below_min_quantity``, ``below_min_amount``,
    ``below_threshold``, ``no_stock``, ``no_member_price``, ``incomplete_bundle``,
    ``not_combinable`` (lost to a better combination it cannot join), ``no_benefit``.
    """

    promotion_id: str
    name: str
    layer: Layer
    code: str
    reason: str
    coupon_code: str | None = None
    nudge: Nudge | None = None


@dataclass(frozen=True)
class PricedCart:
    """The result of :func:`price_cart`.

    ``exact`` tells whether the best combination was found by the exhaustive search (True) or by the
    layer-by-layer fallback (False, only for very large sets of applicable promotions).
    """

    currency: str
    lines: tuple[PricedLine, ...]
    totals: Totals
    applied: tuple[AppliedPromotion, ...]
    not_applied: tuple[NotApplied, ...]
    nudges: tuple[Nudge, ...]
    points_used: int
    points_to_earn: int
    exact: bool


def format_money(amount: int, currency: str) -> str:
    """Minor units as major-unit text with the currency's exponent (``1200, "CNY"`` → ``"12.00"``)."""
    return major_text(amount, currency_exponent(currency))


def points_for_payment(paid: int, rule: EarnRule) -> int:
    """Points earned by a payment of ``paid`` minor units: ``floor(paid / minor_per_point × multiplier)``.

    Rounded down, so a payment never earns a fraction of a point more than it paid for.
    """
    _check(paid >= 0, "paid", "must not be negative")
    return paid * rule.multiplier_bp // (rule.minor_per_point * BASIS)


# --------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------

#: The exhaustive search prices at most this many complete combinations (an item selection × an
#: order selection × a coupon selection); past it the engine restarts with the layer-by-layer
#: fallback, which is deterministic too but not guaranteed optimal across layers.
EXACT_SEARCH_LIMIT = 128
#: In the fallback, a layer still tries all of its maximal compatible selections up to this many;
#: beyond that it adds promotions greedily, largest stand-alone discount first (ties by id).
LAYER_SEARCH_LIMIT = 256
#: The exact search splits the candidates into at most this many branches without a conflict across
#: layers (:meth:`_Engine.branches`); past it the fallback runs.
EXACT_SEARCH_BRANCHES = 16

#: Rewards whose amount can drop when their input drops by less (a threshold is crossed).
_THRESHOLD_REWARDS = (SpendTiers, EveryXOffY)


@dataclass(frozen=True, eq=False)
class _Cand:
    """A promotion that passed the static checks and competes in the search.

    ``idx`` is the candidate's position in the run and its bit in every selection mask.
    """

    idx: int
    promo: Promotion
    coupon_code: str | None
    eligible: tuple[int, ...]
    eligible_quantity: int
    item_discounts: tuple[int, ...]  # per cart line, on the undiscounted line amount (item layer)

    @property
    def sort_key(self) -> tuple[int, str, str]:
        return (-self.promo.priority, self.promo.id, self.coupon_code or "")

    @property
    def has_threshold(self) -> bool:
        return self.promo.conditions.min_amount > 0 or isinstance(self.promo.reward, _THRESHOLD_REWARDS)

    @property
    def rank_id(self) -> str:
        """What the last tie-break compares: the promotion id, then the coupon code."""
        return f"{self.promo.id}\x00{self.coupon_code or ''}"


@dataclass(frozen=True)
class _LayerOut:
    """What a layer leaves: remaining amount per line, per-promotion line amounts, shipping, gifts."""

    inputs: tuple[int, ...]
    remaining: tuple[int, ...]
    allocations: tuple[tuple[_Cand, tuple[int, ...]], ...]
    shipping_left: int
    shipping_discounts: tuple[tuple[_Cand, int], ...] = ()
    gifts: tuple[_Cand, ...] = ()
    deposit: tuple[int, ...] = ()
    gift_value: int = 0  # Σ value × quantity of the gifts: a tie-break in favour of the customer


def _eligible(conditions: Conditions, lines: tuple[Line, ...]) -> tuple[int, ...]:
    if not conditions.skus and not conditions.categories:
        return tuple(range(len(lines)))
    return tuple(i for i, line in enumerate(lines)
                 if line.sku in conditions.skus or (line.category is not None
                                                    and line.category in conditions.categories))


def _percent_text(rate_bp: int) -> str:
    whole, rest = divmod(rate_bp, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


def _item_discounts(reward: ItemReward, lines: tuple[Line, ...], eligible: tuple[int, ...],
                    tier: str | None) -> list[int]:
    """Each line's discount from one item reward, on the undiscounted line amount."""
    out = [0] * len(lines)
    if isinstance(reward, PercentOff):
        for i in eligible:
            out[i] = round_half_up_div(lines[i].amount * reward.rate_bp, BASIS)
    elif isinstance(reward, AmountOff):
        for i in eligible:
            out[i] = min(reward.amount, lines[i].unit_price) * lines[i].quantity
    elif isinstance(reward, FlashSalePrice):
        stock = reward.stock_left
        for i in eligible:
            line = lines[i]
            if line.unit_price > reward.price and stock > 0:
                units = min(line.quantity, stock)
                stock -= units
                out[i] = (line.unit_price - reward.price) * units
    elif isinstance(reward, MemberPrice):
        if tier is not None:
            for i in eligible:
                member = lines[i].member_prices.get(tier)
                if member is not None and member < lines[i].unit_price:
                    out[i] = (lines[i].unit_price - member) * lines[i].quantity
    elif isinstance(reward, NthItemOff):
        position = 0  # units before this line in the pooled, price-descending order
        for i in sorted(eligible, key=lambda j: (-lines[j].unit_price, j)):
            quantity = lines[i].quantity
            discounted_units = (position + quantity) // reward.n - position // reward.n
            out[i] = discounted_units * round_half_up_div(lines[i].unit_price * reward.rate_bp, BASIS)
            position += quantity
    else:  # BundlePrice
        by_sku = {sku: [i for i in eligible if lines[i].sku == sku] for sku in sorted(reward.skus)}
        bundles = min(sum(lines[i].quantity for i in idxs) for idxs in by_sku.values())
        if bundles:
            used: list[tuple[int, int]] = []  # (line, value of the units it gives to the bundles)
            for idxs in by_sku.values():
                need = bundles
                for i in idxs:
                    take = min(need, lines[i].quantity)
                    if take:
                        used.append((i, take * lines[i].unit_price))
                    need -= take
            discount = sum(value for _, value in used) - reward.price * bundles
            if discount > 0:
                for (i, _), part in zip(used, allocate(discount, [v for _, v in used]), strict=True):
                    out[i] += part
    return out


def _order_amount(reward: OrderReward, base: int, quantity: int) -> int:
    """The amount one order reward takes off eligible lines worth ``base`` with ``quantity`` units."""
    if isinstance(reward, SpendTiers):
        reached = [off for threshold, off in reward.tiers if base >= threshold]
        return reached[-1] if reached else 0
    if isinstance(reward, EveryXOffY):
        amount = base // reward.every * reward.off
        return amount if reward.cap is None else min(amount, reward.cap)
    if isinstance(reward, QuantityTiers):
        rates = [rate for need, rate in reward.tiers if quantity >= need]
        return round_half_up_div(base * rates[-1], BASIS) if rates else 0
    if isinstance(reward, OrderAmountOff):
        return reward.amount
    if isinstance(reward, OrderPercentOff):
        amount = round_half_up_div(base * reward.rate_bp, BASIS)
        return amount if reward.cap is None else min(amount, reward.cap)
    return 0  # gift and free shipping take nothing off the lines


def _spread(amount: int, weights: list[int]) -> list[int]:
    """:func:`~growthwheel.kit.money.allocate` for the engine's hot path: ``0 < amount <= sum(weights)``,
    weights not negative — the same largest-remainder parts (ties to the earlier line), no checks."""
    total = sum(weights)
    parts = [amount * w // total for w in weights]
    left = amount - sum(parts)
    if left:
        order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
        for i in order[:left]:
            parts[i] += 1
    return parts


def _bits(mask: int) -> list[int]:
    """The positions of the set bits of ``mask`` (not negative), lowest first."""
    return [i for i, digit in enumerate(reversed(bin(mask))) if digit == "1"]


class _Engine:
    """One pricing run: the cart, the competing candidates and memoised layer evaluations.

    Selections are bit masks over the candidates' ``idx`` (a selection's promotions are always taken
    in ``idx`` order, except for the greedy fallback's own order), compatibility is one mask per
    candidate, and layer results are memoised: the item layer by selection, an order / coupon layer
    by (what the previous layer left, selection), so the combinations sharing an item or an order
    selection — the prefix of the search — reuse it.
    """

    def __init__(self, cart: Cart, candidates: list[_Cand], comp: list[int]) -> None:
        self.cart = cart
        self.lines = cart.lines
        self.amounts = tuple(line.amount for line in cart.lines)
        self.credits = tuple(line.deposit_credit * line.quantity for line in cart.lines)
        self.candidates = candidates
        #: comp[i]: the candidates that may apply together with candidate i (bit i itself is set when
        #: an exclusive promotion does not list its own id or layer: only the explanation reads it).
        self.comp = comp
        #: The same without bit i: what the clique search walks.
        self.neighbours = [mask & ~(1 << i) for i, mask in enumerate(comp)]
        self.by_layer = {layer: sorted((c for c in candidates if c.promo.layer is layer),
                                       key=lambda c: c.sort_key)
                         for layer in (Layer.ITEM, Layer.ORDER, Layer.COUPON)}
        self.layer_mask = {layer: sum(1 << c.idx for c in cands) for layer, cands in self.by_layer.items()}
        self.line_mask = [sum(1 << i for i in c.eligible) for c in candidates]
        self.is_price = [isinstance(c.promo.reward, PRICE_REWARDS) for c in candidates]
        self._clique_cache: dict[tuple[int, int], list[int] | None] = {}
        self._common_cache: dict[int, int] = {}
        self._members_cache: dict[int, tuple[_Cand, ...]] = {}
        self._maximal_cache: dict[tuple[int, int], list[int]] = {}  # (pool, limit) → maximal sets
        self._item_left_cache: dict[int, tuple[int, ...]] = {}
        self._item_sums_cache: dict[int, tuple[list[int], list[int]]] = {}
        self._item_discount_cache: dict[int, int] = {0: 0}
        self.discount_total = [sum(c.item_discounts) for c in candidates]
        self._item_cache: dict[tuple[int, ...], _LayerOut] = {}
        self._order_cache: dict[tuple[tuple[int, ...], int, tuple[int, ...]], _LayerOut] = {}

    def members(self, mask: int) -> tuple[_Cand, ...]:
        """The candidates of a selection mask, in ``idx`` order."""
        found = self._members_cache.get(mask)
        if found is None:
            cands = self.candidates
            found = self._members_cache[mask] = tuple(cands[i] for i in _bits(mask))
        return found

    def common(self, mask: int) -> int:
        """The candidates compatible with every candidate of ``mask``."""
        found = self._common_cache.get(mask)
        if found is None:
            found = -1
            for i in _bits(mask):
                found &= self.comp[i]
            self._common_cache[mask] = found
        return found

    # ---- layers ------------------------------------------------------------------------------

    def item_left(self, mask: int) -> tuple[int, ...]:
        """What the item layer of a selection leaves per line (after the deposit credit), without the
        per-promotion split: ``max(0, amount - best price discount - Σ other discounts - credit)``,
        which is what taking each discount in turn, capped at what is left, gives in any order."""
        found = self._item_left_cache.get(mask)
        if found is None:
            best, other = self.item_sums(mask)
            found = tuple(max(0, amount - b - o - credit) for amount, b, o, credit
                          in zip(self.amounts, best, other, self.credits, strict=True))
            self._item_left_cache[mask] = found
        return found

    def item_discount(self, mask: int) -> int:
        """The sum of the stand-alone item discounts of a selection (at least what it takes off)."""
        found = self._item_discount_cache.get(mask)
        if found is None:
            low = mask & -mask
            found = self.item_discount(mask ^ low) + self.discount_total[low.bit_length() - 1]
            self._item_discount_cache[mask] = found
        return found

    def item_sums(self, mask: int) -> tuple[list[int], list[int]]:
        """Per line, the largest price discount and the sum of the other item discounts of a
        selection; memoised and built from the selection without its lowest candidate, so the many
        selections sharing a prefix cost one candidate each."""
        found = self._item_sums_cache.get(mask)
        if found is not None:
            return found
        if not mask:
            found = ([0] * len(self.amounts), [0] * len(self.amounts))
        else:
            low = mask & -mask
            j = low.bit_length() - 1
            best, other = self.item_sums(mask ^ low)
            best, other = list(best), list(other)
            discounts = self.candidates[j].item_discounts
            if self.is_price[j]:
                for i in self.candidates[j].eligible:
                    if discounts[i] > best[i]:
                        best[i] = discounts[i]
            else:
                for i in self.candidates[j].eligible:
                    other[i] += discounts[i]
            found = (best, other)
        self._item_sums_cache[mask] = found
        return found

    def item_layer(self, chosen: tuple[_Cand, ...]) -> _LayerOut:
        """Item rewards on the undiscounted lines, then the presale deposit credit."""
        key = tuple(c.idx for c in chosen)
        cached = self._item_cache.get(key)
        if cached is not None:
            return cached
        n = len(self.lines)
        per_cand = {c.idx: [0] * n for c in chosen}
        remaining = list(self.amounts)
        prices = [c for c in chosen if self.is_price[c.idx]]
        others = [c for c in chosen if not self.is_price[c.idx]]
        deposit = [0] * n
        for i in range(n):
            best: _Cand | None = None
            for c in prices:  # one price per unit: the lowest wins, ties to the first in order
                if c.item_discounts[i] > 0 and (best is None or c.item_discounts[i] > best.item_discounts[i]):
                    best = c
            if best is not None:
                take = min(best.item_discounts[i], remaining[i])
                per_cand[best.idx][i] = take
                remaining[i] -= take
            for c in others:
                take = min(c.item_discounts[i], remaining[i])
                per_cand[c.idx][i] = take
                remaining[i] -= take
            deposit[i] = min(self.credits[i], remaining[i])
            remaining[i] -= deposit[i]
        out = _LayerOut(inputs=self.amounts, remaining=tuple(remaining),
                        allocations=tuple((c, tuple(per_cand[c.idx])) for c in chosen),
                        shipping_left=self.cart.shipping_fee, deposit=tuple(deposit))
        self._item_cache[key] = out
        return out

    def order_layer(self, inputs: tuple[int, ...], shipping_left: int,
                    chosen: tuple[_Cand, ...]) -> _LayerOut:
        """Order-type rewards (order or coupon layer) on what the previous layer left (``inputs``, and
        the shipping fee still due), each computed on the layer's input and allocated in turn over
        its eligible lines by what is left of them."""
        key = (inputs, shipping_left, tuple(c.idx for c in chosen))
        cached = self._order_cache.get(key)
        if cached is not None:
            return cached
        current = list(inputs)
        allocations: list[tuple[_Cand, tuple[int, ...]]] = []
        shipping: list[tuple[_Cand, int]] = []
        gifts: list[_Cand] = []
        gift_value = 0
        zero = (0,) * len(inputs)
        for c in chosen:
            reward = c.promo.reward
            eligible = c.eligible
            base = 0
            for i in eligible:
                base += inputs[i]
            if base < c.promo.conditions.min_amount:
                allocations.append((c, zero))
            elif isinstance(reward, FreeShipping):
                if shipping_left:
                    shipping.append((c, shipping_left))
                    shipping_left = 0
                allocations.append((c, zero))
            elif isinstance(reward, GiftWithPurchase):
                gifts.append(c)
                gift_value += reward.value * reward.quantity
                allocations.append((c, zero))
            else:
                assert isinstance(reward, ORDER_REWARDS)
                weights = [current[i] for i in eligible]
                amount = min(_order_amount(reward, base, c.eligible_quantity), sum(weights))
                if amount:
                    parts = [0] * len(inputs)
                    for i, part in zip(eligible, _spread(amount, weights), strict=True):
                        parts[i] = part
                        current[i] -= part
                    allocations.append((c, tuple(parts)))
                else:
                    allocations.append((c, zero))
        out = _LayerOut(inputs=inputs, remaining=tuple(current), allocations=tuple(allocations),
                        shipping_left=shipping_left, shipping_discounts=tuple(shipping), gifts=tuple(gifts),
                        gift_value=gift_value)
        self._order_cache[key] = out
        return out

    def points(self, remaining: tuple[int, ...]) -> tuple[int, int]:
        """Points used and their value: at most the points given and ``max_share`` of what is left."""
        use = self.cart.points
        if use is None or use.points == 0:
            return 0, 0
        cap_value = sum(remaining) * use.max_share_bp // BASIS
        used = min(use.points, cap_value // use.minor_per_point)
        return used, used * use.minor_per_point

    # ---- search ------------------------------------------------------------------------------

    def selections(self, allowed: int, free: int, limit: int) -> list[int] | None:
        """The compatible subsets of ``allowed`` worth pricing, as masks; ``None`` past ``limit``.

        Every compatible subset of the candidates not in ``free`` (their absence can matter), each
        completed by every *maximal* compatible set of the ``free`` candidates (Bron–Kerbosch with
        pivot, on bit masks): adding a free candidate never costs anything later, so smaller free
        sets are useless. Memoised by ``(allowed, free)``.
        """
        key = (allowed, free)
        if key in self._clique_cache:
            return self._clique_cache[key]
        neighbours = self.neighbours
        bound = _bits(allowed & ~free)
        loose = allowed & free
        found: list[int] = []

        def maximal(r: int, p: int, x: int, out: list[int]) -> None:
            if not p and not x:
                out.append(r)
                return
            pivot, most = -1, -1
            for u in _bits(p | x):  # the pivot with most neighbours in p leaves fewest branches
                count = (p & neighbours[u]).bit_count()
                if count > most:
                    pivot, most = u, count
            branch = p & ~neighbours[pivot]
            while branch:
                low = branch & -branch
                branch ^= low
                v = low.bit_length() - 1
                maximal(r | low, p & neighbours[v], x & neighbours[v], out)
                p &= ~low
                x |= low
                if len(out) > limit:
                    return

        def extend(start: int, chosen: int, ok: int) -> bool:
            pool = loose & ok
            completions = self._maximal_cache.get((pool, limit))
            if completions is None:  # (a list cut at one limit must not serve another)
                completions = []
                maximal(0, pool, 0, completions)
                self._maximal_cache[pool, limit] = completions
            found.extend(chosen | completion for completion in completions)
            if len(found) > limit:
                return False
            for j in range(start, len(bound)):
                b = bound[j]
                if ok >> b & 1 and not extend(j + 1, chosen | 1 << b, ok & neighbours[b]):
                    return False
            return True

        result = found if extend(0, 0, -1) else None
        self._clique_cache[key] = result
        return result

    def min_bases(self) -> dict[int, int]:
        """A lower bound of each ORDER / COUPON candidate's base (its eligible lines at its layer's
        input) over every selection: the item layer with every item candidate at once (more item
        discounts only leave less), minus, for a coupon, the most each overlapping order candidate
        could take (its amount on the undiscounted lines: every order reward grows with its base)."""
        floor = self.item_left(self.layer_mask[Layer.ITEM])
        bases: dict[int, int] = {}
        order_most: list[tuple[int, int]] = []  # (lines, the most it can take)
        for o in self.by_layer[Layer.ORDER]:
            assert isinstance(o.promo.reward, ORDER_REWARDS)
            undiscounted = sum(self.amounts[i] for i in o.eligible)
            order_most.append((self.line_mask[o.idx],
                               _order_amount(o.promo.reward, undiscounted, o.eligible_quantity)))
        for d in self.by_layer[Layer.ORDER]:
            bases[d.idx] = sum(floor[i] for i in d.eligible)
        for d in self.by_layer[Layer.COUPON]:
            mask = self.line_mask[d.idx]
            taken = sum(most for lines, most in order_most if lines & mask)
            bases[d.idx] = max(0, sum(floor[i] for i in d.eligible) - taken)
        return bases

    def watching(self, layer: Layer, bases: dict[int, int], universe: int) -> int:
        """The lines a threshold of ``layer`` (among ``universe``) measures (``min_amount``, 满减 tiers,
        a 每满减 cap), leaving out the thresholds every selection clears: the base can never fall below
        the minimum amount, the top 满减 tier, or the amount at which the 每满减 cap is reached. Such a
        reward is constant over every reachable base, like a plain amount off."""
        watched = 0
        for d in self.by_layer[layer]:
            if not universe >> d.idx & 1 or not d.has_threshold:
                continue
            base, reward = bases[d.idx], d.promo.reward
            saturated = base >= d.promo.conditions.min_amount
            if isinstance(reward, SpendTiers):
                saturated = saturated and base >= reward.tiers[-1][0]
            elif isinstance(reward, EveryXOffY):
                cap = reward.cap
                saturated = saturated and cap is not None and base // reward.every * reward.off >= cap
            if not saturated:
                watched |= self.line_mask[d.idx]
        return watched

    def free(self, layer: Layer, coarse_points: bool, bases: dict[int, int], universe: int) -> int:
        """Candidates of ``layer`` (among ``universe``) that can only help: they combine with every
        promotion of the later layers and touch no line whose lower amount could cost a later threshold.

        Those lines are the ones a later threshold watches (:meth:`watching`) and, for the item
        layer, every line of an amount-taking order candidate that shares a line with a watched one
        (transitively): an order amount is spread by what is left of its lines, so lowering one of
        them moves its share onto the others, which a coupon threshold may then miss."""
        if coarse_points:  # whole points are a threshold over every line
            return 0
        if layer is Layer.ITEM:
            coupon_watch = self.watching(Layer.COUPON, bases, universe)
            spreading = [self.line_mask[d.idx] for d in self.by_layer[Layer.ORDER]
                         if universe >> d.idx & 1 and not isinstance(d.promo.reward, _NO_AMOUNT)]
            grown = True
            while grown:
                grown = False
                for mask in spreading:
                    if mask & coupon_watch and mask & ~coupon_watch:
                        coupon_watch |= mask
                        grown = True
            watched = self.watching(Layer.ORDER, bases, universe) | coupon_watch
            later = self.layer_mask[Layer.ORDER] | self.layer_mask[Layer.COUPON]
        elif layer is Layer.ORDER:
            watched = self.watching(Layer.COUPON, bases, universe)
            later = self.layer_mask[Layer.COUPON]
        else:
            watched, later = 0, 0
        later &= universe
        free = 0
        for c in self.by_layer[layer]:
            if (universe >> c.idx & 1 and not watched & self.line_mask[c.idx]
                    and self.comp[c.idx] & later == later):
                free |= 1 << c.idx
        return free

    def branches(self) -> list[int] | None:
        """Sub-universes of candidates without a conflict across layers, which together hold every
        compatible selection; ``None`` past :data:`EXACT_SEARCH_BRANCHES`.

        An exclusive 满减 conflicts with every item promotion, so none of those is free (taking it
        may lose the 满减). Split on the candidate ``v`` with most conflicts in other layers: every
        compatible selection either leaves ``v`` out, or may hold ``v`` and then none of those
        conflicts; repeat until no cross-layer conflict is left. Inside a branch, free candidates
        (:meth:`free`) are found as if the conflicts did not exist.
        """
        layer_of = [LAYER_ORDER.index(c.promo.layer) for c in self.candidates]
        other_layers = [sum(mask for layer, mask in self.layer_mask.items() if LAYER_ORDER.index(layer) != n)
                        for n in layer_of]
        cross = [~self.comp[i] & other_layers[i] for i in range(len(self.candidates))]
        conflicted = [i for i, mask in enumerate(cross) if mask]
        done: list[int] = []
        todo = [(1 << len(self.candidates)) - 1]
        while todo:
            universe = todo.pop()
            pivot, most = -1, 0
            for i in conflicted:
                if not universe >> i & 1:
                    continue
                count = (cross[i] & universe).bit_count()
                if count > most:
                    pivot, most = i, count
            if pivot < 0:
                done.append(universe)
                if len(done) > EXACT_SEARCH_BRANCHES:
                    return None
                continue
            todo.append(universe & ~cross[pivot])  # v may apply: its conflicts may not
            todo.append(universe & ~(1 << pivot))  # v does not apply
        return done

    def exact(self) -> tuple[tuple[tuple[_Cand, ...], ...], bool] | None:
        """The best selection over every combination, or ``None`` past :data:`EXACT_SEARCH_LIMIT`.

        Within each branch (:meth:`branches`), candidates that can only help (:meth:`free`) are
        always taken as far as compatibility allows; the others are tried in and out. If ``2 ** (number
        of the others)`` of a branch already exceeds what is left of the limit, the search stops. The
        ranking key is (total, -gift value, number of promotions, sorted ids), a total order, so the
        best is the same whatever the branches; ids are only compared on a tie of the rest.
        """
        # Points worth more than one minor unit each are spent in whole points, so a lower amount
        # can leave more to pay: a threshold of their own.
        use = self.cart.points
        coarse_points = use is not None and use.points > 0 and use.minor_per_point > 1
        bases = self.min_bases()
        everything = (1 << len(self.candidates)) - 1
        universes = self.branches()
        found = self.search(universes, coarse_points, bases) if universes is not None else None
        if found is None and universes != [everything]:
            # Splitting can cost more than it frees (each branch repeats the contested candidates):
            # the whole set in one piece, as if it had no cross-layer conflict to split on.
            found = self.search([everything], coarse_points, bases)
        return found

    def search(self, universes: list[int], coarse_points: bool,
               bases: dict[int, int]) -> tuple[tuple[tuple[_Cand, ...], ...], bool] | None:
        """The exhaustive search of :meth:`exact` over the given branches; ``None`` past the limit."""
        layers = (Layer.ITEM, Layer.ORDER, Layer.COUPON)
        shipping_fee = self.cart.shipping_fee
        best: tuple[int, int, int] | None = None
        best_masks = (0, 0, 0)
        evaluated = 0
        for universe in universes:
            free = {layer: self.free(layer, coarse_points, bases, universe) for layer in layers}
            contested = sum((self.layer_mask[layer] & universe).bit_count() - free[layer].bit_count()
                            for layer in layers)
            if evaluated + 2 ** contested > EXACT_SEARCH_LIMIT:
                return None
            item_sets = self.selections(self.layer_mask[Layer.ITEM] & universe, free[Layer.ITEM],
                                        EXACT_SEARCH_LIMIT)
            if item_sets is None:
                return None
            later = self.members((self.layer_mask[Layer.ORDER] | self.layer_mask[Layer.COUPON]) & universe)
            waives = any(isinstance(d.promo.reward, FreeShipping) for d in later)
            takers: list[tuple[OrderReward, tuple[int, ...], int]] = []
            for d in later:
                reward = d.promo.reward
                if isinstance(reward, ORDER_REWARDS) and not isinstance(reward, _NO_AMOUNT):
                    takers.append((reward, d.eligible, d.eligible_quantity))
            # What the later rewards can take at most, whatever the item layer leaves (their amounts on
            # the undiscounted lines: every order reward grows with its base): a first, cheaper bound.
            most_off = sum(_order_amount(reward, sum(self.amounts[i] for i in eligible), quantity)
                           for reward, eligible, quantity in takers)
            # Cheapest bound first: goods are at least the undiscounted goods minus every item discount
            # of the selection, points at most what the undiscounted goods allow.
            net = sum(max(0, amount - credit)
                      for amount, credit in zip(self.amounts, self.credits, strict=True))
            shipping = 0 if waives else shipping_fee
            points_most = self.most_points(net)
            # Most item discount first, so that a good total is found early and prunes the rest.
            for item_mask in sorted(item_sets, key=lambda mask: (-self.item_discount(mask), mask)):
                if best is not None and (max(0, net - self.item_discount(item_mask) - most_off) - points_most
                                         + shipping > best[0]):
                    continue  # cannot win, not even on a tie
                item_left = self.item_left(item_mask)
                if best is not None and (self.bound(sum(item_left), most_off, waives) > best[0]
                                         or self.lower_bound(item_left, takers, waives) > best[0]):
                    continue
                after_item = self.common(item_mask) & universe
                order_sets = self.selections(self.layer_mask[Layer.ORDER] & after_item, free[Layer.ORDER],
                                             EXACT_SEARCH_LIMIT)
                if order_sets is None:
                    return None
                for order_mask in order_sets:
                    order_out = self.order_layer(item_left, shipping_fee, self.members(order_mask))
                    after_order = after_item & self.common(order_mask)
                    coupon_sets = self.selections(self.layer_mask[Layer.COUPON] & after_order,
                                                  free[Layer.COUPON], EXACT_SEARCH_LIMIT)
                    if coupon_sets is None:
                        return None
                    for coupon_mask in coupon_sets:
                        evaluated += 1
                        if evaluated > EXACT_SEARCH_LIMIT:
                            return None
                        coupon_out = self.order_layer(order_out.remaining, order_out.shipping_left,
                                                      self.members(coupon_mask))
                        _, value = self.points(coupon_out.remaining)
                        rank = (sum(coupon_out.remaining) - value + coupon_out.shipping_left,
                                -(order_out.gift_value + coupon_out.gift_value),
                                (item_mask | order_mask | coupon_mask).bit_count())
                        masks = (item_mask, order_mask, coupon_mask)
                        if (best is None or rank < best
                                or (rank == best and self._ids_before(masks, best_masks))):
                            best, best_masks = rank, masks
        assert best is not None  # the empty selection is always there
        return tuple(self.members(mask) for mask in best_masks), True

    def lower_bound(self, item_left: tuple[int, ...],
                    takers: list[tuple[OrderReward, tuple[int, ...], int]], waives: bool) -> int:
        """A total no combination over this item-layer result can go below: every later reward that
        takes an amount (``takers``: reward, eligible lines, quantity) at what it gives on its lines as
        the item layer left them (the most it can give: order rewards grow with their base, and a
        coupon's base is at most that), shipping waived if a later promotion ``waives`` it, and the
        most points the customer can use on it."""
        off = 0
        for reward, eligible, quantity in takers:
            base = 0
            for i in eligible:
                base += item_left[i]
            off += _order_amount(reward, base, quantity)
        return self.bound(sum(item_left), off, waives)

    def bound(self, goods: int, off: int, waives: bool) -> int:
        """The lowest total of goods worth ``goods`` after the item layer when later rewards take at
        most ``off``: shipping waived if a later promotion ``waives`` it, the most points used."""
        shipping = 0 if waives else self.cart.shipping_fee
        return max(0, goods - off) - self.most_points(goods) + shipping

    def most_points(self, goods: int) -> int:
        """The most the customer's points can pay on goods worth at most ``goods``."""
        use = self.cart.points
        return 0 if use is None else min(use.points * use.minor_per_point, goods * use.max_share_bp // BASIS)

    def _ids_before(self, these: tuple[int, ...], those: tuple[int, ...]) -> bool:
        """The last tie-break: whether the sorted ids of ``these`` selections come first."""
        def ids(masks: tuple[int, ...]) -> tuple[str, ...]:
            return tuple(sorted(c.rank_id for mask in masks for c in self.members(mask)))
        return ids(these) < ids(those)

    def layered(self) -> tuple[tuple[tuple[_Cand, ...], ...], bool]:
        """Fallback: each layer in turn takes its own best selection given the layers before it."""
        chosen: list[tuple[_Cand, ...]] = []
        ok = -1  # the candidates compatible with everything chosen so far
        before = self.item_layer(())
        for layer in (Layer.ITEM, Layer.ORDER, Layer.COUPON):
            allowed = self.layer_mask[layer] & ok
            masks = self.selections(allowed, allowed, LAYER_SEARCH_LIMIT)
            options = ([self.members(mask) for mask in masks] if masks is not None
                       else [self.greedy(layer, allowed, before)])

            def layer_rank(selection: tuple[_Cand, ...], layer: Layer = layer,
                           before: _LayerOut = before) -> tuple[int, int, int]:
                if layer is Layer.ITEM:
                    mask = 0
                    for c in selection:
                        mask |= 1 << c.idx
                    return (sum(self.item_left(mask)) + before.shipping_left, 0, len(selection))
                after = self.order_layer(before.remaining, before.shipping_left, selection)
                return (sum(after.remaining) + after.shipping_left, -after.gift_value, len(selection))

            pick, pick_rank = options[0], layer_rank(options[0])
            for option in options[1:]:
                rank = layer_rank(option)
                if rank < pick_rank or (rank == pick_rank and sorted(c.rank_id for c in option)
                                        < sorted(c.rank_id for c in pick)):
                    pick, pick_rank = option, rank
            chosen.append(pick)
            for c in pick:
                ok &= self.comp[c.idx]
            before = (self.item_layer(pick) if layer is Layer.ITEM
                      else self.order_layer(before.remaining, before.shipping_left, pick))
        return tuple(chosen), False

    def greedy(self, layer: Layer, allowed: int, before: _LayerOut) -> tuple[_Cand, ...]:
        """Largest stand-alone discount first (ties by priority and id), skipping incompatible ones."""
        def alone(c: _Cand) -> int:
            if layer is Layer.ITEM:
                return sum(c.item_discounts)
            out = self.order_layer(before.remaining, before.shipping_left, (c,))
            return sum(out.inputs) - sum(out.remaining) + before.shipping_left - out.shipping_left

        picked: list[_Cand] = []
        picked_mask = 0
        for c in sorted(self.members(allowed), key=lambda c: (-alone(c), c.sort_key)):
            if self.comp[c.idx] & picked_mask == picked_mask:
                picked.append(c)
                picked_mask |= 1 << c.idx
        return tuple(picked)


# --------------------------------------------------------------------------------------------------
# Static checks, reasons and nudges
# --------------------------------------------------------------------------------------------------


def _static_failure(promo: Promotion, cart: Cart, eligible: tuple[int, ...],
                    quantity: int) -> tuple[str, str, Nudge | None] | None:
    """Why a promotion cannot apply whatever else is chosen (``None``: it may apply)."""
    cond, customer = promo.conditions, cart.customer
    context = _context_failure(cond, customer)
    if context is not None:
        return (*context, None)
    if not eligible:
        return "no_eligible_lines", "no product in the cart qualifies", None
    if quantity < cond.min_quantity:
        short = cond.min_quantity - quantity
        message = f"add {short} more qualifying item{'s' if short > 1 else ''} to get {promo.name}"
        return "below_min_quantity", message, Nudge(promo.id, 0, short, 0, message)
    if promo.layer is Layer.ITEM and cond.min_amount:
        base = sum(cart.lines[i].amount for i in eligible)
        if base < cond.min_amount:
            short_text = format_money(cond.min_amount - base, cart.currency)
            message = f"spend {short_text} more on qualifying items to get {promo.name}"
            return "below_min_amount", message, Nudge(promo.id, cond.min_amount - base, 0, 0, message)
    reward = promo.reward
    if isinstance(reward, QuantityTiers) and quantity < reward.tiers[0][0]:
        nudge = _quantity_nudge(promo, reward, 0, quantity)
        assert nudge is not None
        return "below_threshold", nudge.message, nudge
    return None


def _item_zero_reason(promo: Promotion, cart: Cart, eligible: tuple[int, ...]) -> tuple[str, str]:
    """Why an item promotion that passed its conditions gives nothing on this cart."""
    reward = promo.reward
    if isinstance(reward, FlashSalePrice) and reward.stock_left == 0:
        return "no_stock", "the flash sale is sold out"
    if isinstance(reward, MemberPrice):
        return "no_member_price", "no member price for the customer's tier on these products"
    if isinstance(reward, BundlePrice):
        present = {cart.lines[i].sku for i in eligible}
        missing = sorted(reward.skus - present)
        if missing:
            return "incomplete_bundle", f"add {', '.join(missing)} to complete the bundle"
    if isinstance(reward, NthItemOff):
        rate = _percent_text(reward.rate_bp)
        return "below_min_quantity", f"add more items: every {reward.n}th item gets {rate} off"
    return "no_benefit", "the promotion price is not lower than the current price"


def _quantity_nudge(promo: Promotion, reward: QuantityTiers, base: int, quantity: int) -> Nudge | None:
    for need, rate_bp in reward.tiers:
        if need > quantity:
            short = need - quantity
            message = f"add {short} more item{'s' if short > 1 else ''} to get {_percent_text(rate_bp)} off"
            return Nudge(promo.id, 0, short, round_half_up_div(base * rate_bp, BASIS), message)
    return None


def _nudge(cand: _Cand, base: int, currency: str) -> Nudge | None:
    """The checkout nudge of an order / coupon promotion on eligible lines worth ``base``."""
    promo, reward = cand.promo, cand.promo.reward
    quantity = cand.eligible_quantity
    minimum = promo.conditions.min_amount

    def money(amount: int) -> str:
        return format_money(amount, currency)

    if base < minimum:
        short = minimum - base
        if isinstance(reward, FreeShipping):
            return Nudge(promo.id, short, 0, 0, f"spend {money(short)} more for free shipping")
        if isinstance(reward, GiftWithPurchase):
            return Nudge(promo.id, short, 0, 0,
                         f"spend {money(short)} more to get {reward.quantity} × {reward.sku} free")
        assert isinstance(reward, ORDER_REWARDS)
        save = _order_amount(reward, minimum, quantity)
        return Nudge(promo.id, short, 0, save, f"spend {money(short)} more to save {money(save)}")
    if isinstance(reward, SpendTiers):
        for threshold, off in reward.tiers:
            if threshold > base:
                short = threshold - base
                return Nudge(promo.id, short, 0, off, f"spend {money(short)} more to save {money(off)}")
    elif isinstance(reward, EveryXOffY):
        now = _order_amount(reward, base, quantity)
        target = (base // reward.every + 1) * reward.every
        save = _order_amount(reward, target, quantity)
        if save > now:
            short = target - base
            return Nudge(promo.id, short, 0, save, f"spend {money(short)} more to save {money(save)}")
    elif isinstance(reward, QuantityTiers):
        return _quantity_nudge(promo, reward, base, quantity)
    return None


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------

_LAYER_RANK = {layer: n for n, layer in enumerate(LAYER_ORDER)}
#: Order rewards that never take an amount off the lines.
_NO_AMOUNT = (GiftWithPurchase, FreeShipping)


class PromotionIndex:
    """A shop's active ITEM and ORDER promotions, checked and indexed once to price many carts.

    Building it validates the set (no COUPON promotion, no duplicate id), sorts it in the engine's
    order, indexes the promotions by sku and by category (a cart only looks at the promotions that
    name one of its skus or categories, plus the store-wide ones) and works out the pairwise
    incompatibilities once. It is immutable apart from an internal memo of "did not apply" records,
    so one instance can be shared by every request pricing against the same active set (rebuild it
    when the set changes). Passing a plain list to :func:`price_cart` builds a throw-away index.
    """

    def __init__(self, promotions: Iterable[Promotion]) -> None:
        seen: set[str] = set()
        given = []
        for promo in promotions:
            _check(promo.layer is not Layer.COUPON, f"promotions[{promo.id!r}].layer",
                   "coupon promotions apply through Cart.coupons")
            _check(promo.id not in seen, "promotions", f"duplicate promotion id {promo.id!r}")
            seen.add(promo.id)
            given.append(promo)
        #: The promotions in the engine's order: by layer, then id.
        self.promotions: tuple[Promotion, ...] = tuple(sorted(given,
                                                              key=lambda p: (_LAYER_RANK[p.layer], p.id)))
        self.ids = frozenset(seen)
        by_sku: dict[str, list[int]] = {}
        by_category: dict[str, list[int]] = {}
        everywhere: list[int] = []
        for pos, promo in enumerate(self.promotions):
            cond = promo.conditions
            if not cond.skus and not cond.categories:
                everywhere.append(pos)
            for sku in cond.skus:
                by_sku.setdefault(sku, []).append(pos)
            for category in cond.categories:
                by_category.setdefault(category, []).append(pos)
        self._by_sku = {sku: tuple(positions) for sku, positions in by_sku.items()}
        self._by_category = {category: tuple(positions) for category, positions in by_category.items()}
        self._everywhere = frozenset(everywhere)
        # Conditions on the customer / moment, checked before the lines (the order of _static_failure).
        self._context = tuple(
            c.starts_at is not None or c.ends_at is not None or bool(c.channels) or bool(c.tiers)
            or bool(c.segments) or c.first_order_only
            for c in (p.conditions for p in self.promotions))
        # blocked[pos]: positions that may not apply together with pos (only exclusive promotions and
        # the ones they exclude have any); includes pos itself when it does not allow itself.
        blocked: list[set[int]] = [set() for _ in self.promotions]
        for pos, promo in enumerate(self.promotions):
            if promo.exclusive:
                for other, other_promo in enumerate(self.promotions):
                    if not compatible(promo, other_promo):
                        blocked[pos].add(other)
                        blocked[other].add(pos)
        self._blocked = tuple(frozenset(b) for b in blocked)
        self._exclusive = tuple(p for p in self.promotions if p.exclusive)
        self._gift_line_ids = {f"gift:{p.id}": p.id for p in self.promotions
                               if isinstance(p.reward, GiftWithPurchase)}
        self._failures: dict[tuple[int, str, str], NotApplied] = {}
        #: What a promotion that no line qualifies for and has no context condition reports; the
        #: starting point of every cart's "did not apply" slots (``None``: look at the promotion).
        self._no_lines: tuple[NotApplied | None, ...] = tuple(
            None if self._context[pos] or pos in self._everywhere
            else NotApplied(p.id, p.name, p.layer, "no_eligible_lines", "no product in the cart qualifies")
            for pos, p in enumerate(self.promotions))
        #: Promotions every cart must look at: store-wide ones and ones with context conditions.
        self._always = tuple(pos for pos, record in enumerate(self._no_lines) if record is None)

    def __len__(self) -> int:
        return len(self.promotions)

    def _eligible_lines(self, lines: tuple[Line, ...]) -> dict[int, list[int]]:
        """Position → eligible line indices (in cart order) of the promotions naming a sku or a
        category of the cart; store-wide promotions are not listed (every line is eligible)."""
        hits: dict[int, list[int]] = {}
        for i, line in enumerate(lines):
            for pos in self._by_sku.get(line.sku, ()):
                hits.setdefault(pos, []).append(i)
            if line.category is not None:
                for pos in self._by_category.get(line.category, ()):
                    found = hits.setdefault(pos, [])
                    if not found or found[-1] != i:  # already eligible by its sku
                        found.append(i)
        return hits

    def _failure(self, pos: int, code: str, reason: str) -> NotApplied:
        """The (memoised, immutable) record of a promotion failing a check that needs no line."""
        key = (pos, code, reason)
        found = self._failures.get(key)
        if found is None:
            promo = self.promotions[pos]
            found = self._failures[key] = NotApplied(promo.id, promo.name, promo.layer, code, reason)
        return found


def _context_failure(cond: Conditions, customer: Customer) -> tuple[str, str] | None:
    """The first failing condition on the customer or the moment (the start of :func:`_static_failure`)."""
    if cond.starts_at is not None and customer.now < cond.starts_at:
        return "not_started", f"starts at {cond.starts_at.isoformat()}"
    if cond.ends_at is not None and customer.now >= cond.ends_at:
        return "ended", f"ended at {cond.ends_at.isoformat()}"
    if cond.channels and customer.channel not in cond.channels:
        return "wrong_channel", f"only on channel {', '.join(sorted(cond.channels))}"
    if cond.tiers and customer.tier not in cond.tiers:
        return "wrong_tier", f"only for membership tier {', '.join(sorted(cond.tiers))}"
    if cond.segments and not cond.segments & customer.segments:
        return "wrong_segment", "only for selected customer segments"
    if cond.first_order_only and not customer.is_first_order:
        return "not_first_order", "only for a customer's first order"
    return None


def price_cart(cart: Cart,
               promotions: PromotionIndex | tuple[Promotion, ...] | list[Promotion]) -> PricedCart:
    """Price ``cart`` against the shop's active ``promotions`` and the cart's coupons.

    ``promotions`` are the ITEM and ORDER promotions (COUPON promotions only apply through
    ``cart.coupons``), as a list or as a :class:`PromotionIndex` built once and reused for many carts
    (the fast path); their input order never changes the result.

    1. **Pre-filter.** Conditions that do not depend on other promotions (time window, channel,
       tier, segment, first order, eligible lines, minimum quantity, an item promotion's minimum
       amount, stock, ...) are checked first; what fails is reported in ``not_applied`` and never
       competes, so 200 active promotions become the handful that matter for this cart. The index
       finds the promotions naming a sku or category of the cart without scanning the others.
    2. **Search.** Among the rest, the engine prices every combination of compatible selections —
       an item selection × an order selection × a coupon selection, compatibility being pairwise
       (``exclusive`` / ``combines_with``, across layers too) — and keeps the one with the lowest
       total (goods after points + shipping); ties go to the larger gift value, then to fewer
       promotions, then to the smallest sorted list of ids, so the result is deterministic.
       Candidates that can only help (no later threshold can be lost through them; thresholds every
       selection clears do not count) are always taken, the others tried in and out; the search
       splits on cross-layer conflicts (an exclusive 满减 against the item discounts) and skips item
       selections whose lower bound cannot beat the best total found (:meth:`_Engine.exact`). It is
       exact up to :data:`EXACT_SEARCH_LIMIT` priced combinations; past it (``PricedCart.exact`` is
       False) each layer picks its own best selection given the layers before it (up to
       :data:`LAYER_SEARCH_LIMIT` selections, else greedily).
       With an exact search, adding a promotion never raises the total: every combination that was
       possible before is still possible and priced the same.
    3. **Allocation and explanation** of the winner: per-line discounts of every promotion, points,
       not-applied promotions with a code and a reason, and checkout nudges.

    Raises :class:`PricingInputError` for duplicate promotion ids, a COUPON promotion passed in
    ``promotions``, two coupons of one promotion or a cart line id reserved for a gift line.
    """
    index = promotions if isinstance(promotions, PromotionIndex) else PromotionIndex(promotions)
    seen_coupons: set[str] = set()
    for coupon in cart.coupons:
        pid = coupon.promotion.id
        _check(pid not in index.ids and pid not in seen_coupons, f"Cart.coupons[{coupon.code!r}]",
               f"promotion {pid!r} is already in the cart (one coupon per promotion)")
        seen_coupons.add(pid)
    lines, currency = cart.lines, cart.currency
    coupon_entries = sorted(cart.coupons, key=lambda c: c.promotion.id)
    gift_line_ids = dict(index._gift_line_ids)
    gift_line_ids.update((f"gift:{c.promotion.id}", c.promotion.id) for c in coupon_entries
                         if isinstance(c.promotion.reward, GiftWithPurchase))
    for line in lines:
        reserved = gift_line_ids.get(line.line_id)
        _check(reserved is None, "Cart.lines",
               f"line id {line.line_id!r} is reserved for the gift line of promotion {reserved!r}")

    # One slot per promotion, in the order of the result (the index's order, then the coupons), filled
    # with what each promotion that did not apply reports; the untouched slots of promotions no line
    # qualifies for come ready-made from the index.
    slots: list[NotApplied | None] = [*index._no_lines, *(None for _ in cart.coupons)]
    nudges: list[Nudge] = []
    candidates: list[_Cand] = []
    sort_pos: list[int] = []  # per candidate
    every_line = tuple(range(len(lines)))
    cart_skus = {line.sku for line in lines}
    hits = index._eligible_lines(lines)
    customer = cart.customer

    def consider(pos: int, promo: Promotion, code: str | None, eligible: tuple[int, ...]) -> None:
        slots[pos] = None  # some line qualifies: the ready-made "no eligible lines" does not hold
        quantity = 0
        for i in eligible:
            quantity += lines[i].quantity
        failure = _static_failure(promo, cart, eligible, quantity)
        if failure is not None:
            failure_code, reason, failure_nudge = failure
            slots[pos] = NotApplied(promo.id, promo.name, promo.layer, failure_code, reason, code,
                                    failure_nudge)
            if failure_nudge is not None:
                nudges.append(failure_nudge)
            return
        item_discounts: tuple[int, ...] = ()
        if isinstance(promo.reward, ITEM_REWARDS):
            incomplete = isinstance(promo.reward, BundlePrice) and not promo.reward.skus <= cart_skus
            item_discounts = () if incomplete else tuple(_item_discounts(promo.reward, lines, eligible,
                                                                         customer.tier))
            if not any(item_discounts):
                zero_code, reason = _item_zero_reason(promo, cart, eligible)
                slots[pos] = NotApplied(promo.id, promo.name, promo.layer, zero_code, reason, code)
                return
        candidates.append(_Cand(len(candidates), promo, code, eligible, quantity, item_discounts))
        sort_pos.append(pos)

    for pos in sorted(hits.keys() | index._always):  # candidates are numbered in the result's order
        promo = index.promotions[pos]
        found = hits.get(pos)
        if found is None and pos not in index._everywhere:
            # No line qualifies: only the context checks (which come first) can give another reason.
            context = _context_failure(promo.conditions, customer)
            code, reason = context or ("no_eligible_lines", "no product in the cart qualifies")
            slots[pos] = index._failure(pos, code, reason)
            continue
        consider(pos, promo, None, every_line if found is None else tuple(found))
    for n, coupon in enumerate(coupon_entries):
        consider(len(index) + n, coupon.promotion, coupon.code, _eligible(coupon.promotion.conditions, lines))

    # Compatibility masks. Two promotions can only clash if one of them is exclusive, so only the
    # exclusive candidates are walked: against the index's incompatibilities, coupons pair by pair.
    everyone = (1 << len(candidates)) - 1
    comp = [everyone] * len(candidates)
    for c in candidates:
        if not c.promo.exclusive:
            continue
        blocked = index._blocked[sort_pos[c.idx]] if c.coupon_code is None else None
        for d in candidates:
            if blocked is not None and d.coupon_code is None:
                clash = sort_pos[d.idx] in blocked
            else:
                clash = not compatible(c.promo, d.promo)
            if clash:
                comp[c.idx] &= ~(1 << d.idx)
                comp[d.idx] &= ~(1 << c.idx)

    engine = _Engine(cart, candidates, comp)
    found_exact = engine.exact()
    (item_set, order_set, coupon_set), exact = found_exact if found_exact is not None else engine.layered()
    item_out = engine.item_layer(item_set)
    order_out = engine.order_layer(item_out.remaining, item_out.shipping_left, order_set)
    coupon_out = engine.order_layer(order_out.remaining, order_out.shipping_left, coupon_set)
    points_used, points_value = engine.points(coupon_out.remaining)
    points_parts = allocate(points_value, list(coupon_out.remaining))
    chosen = item_set + order_set + coupon_set
    chosen_mask = 0
    for c in chosen:
        chosen_mask |= 1 << c.idx
    layer_outs = ((item_out, Layer.ITEM), (order_out, Layer.ORDER), (coupon_out, Layer.COUPON))

    applied: list[AppliedPromotion] = []
    unused = 0  # mask of chosen candidates that gave nothing
    for out, layer in layer_outs:
        shipping = {c.idx: amount for c, amount in out.shipping_discounts}
        gift_ids = {c.idx for c in out.gifts}
        for c, parts in out.allocations:
            amount = sum(parts)
            if not amount and c.idx not in shipping and c.idx not in gift_ids:
                unused |= 1 << c.idx  # explained below with the candidates that lost
                continue
            gift = c.promo.reward if c.idx in gift_ids else None
            assert gift is None or isinstance(gift, GiftWithPurchase)
            applied.append(AppliedPromotion(
                c.promo.id, c.promo.name, layer, amount,
                tuple((lines[i].line_id, parts[i]) for i in c.eligible if parts[i]),
                c.coupon_code, shipping.get(c.idx, 0),
                gift.sku if gift else None, gift.quantity if gift else 0))
    if points_value:
        applied.append(AppliedPromotion(
            "points", "points", Layer.POINTS, points_value,
            tuple((lines[i].line_id, part) for i, part in enumerate(points_parts) if part)))

    # Candidates that lost, and the checkout nudges of order and coupon promotions.
    layer_inputs = {Layer.ITEM: item_out.inputs, Layer.ORDER: order_out.inputs,
                    Layer.COUPON: coupon_out.inputs}
    for c in candidates:
        layer = c.promo.layer
        conflicts = chosen_mask & ~comp[c.idx]
        nudge: Nudge | None = None
        if not conflicts and layer is not Layer.ITEM:
            base = sum(layer_inputs[layer][i] for i in c.eligible)
            nudge = _nudge(c, base, currency)
            if nudge is not None:
                nudges.append(nudge)
        if chosen_mask >> c.idx & 1 and not unused >> c.idx & 1:
            continue
        pos = sort_pos[c.idx]
        if conflicts:
            names = ", ".join(sorted({x.promo.name for x in engine.members(conflicts)}))
            slots[pos] = NotApplied(c.promo.id, c.promo.name, layer, "not_combinable",
                                    f"cannot be combined with {names}, which save more", c.coupon_code)
            continue
        base = sum(layer_inputs[layer][i] for i in c.eligible)
        is_chosen = bool(chosen_mask >> c.idx & 1)
        if layer is Layer.ITEM and is_chosen:
            code, reason = "no_benefit", "a lower price from another promotion already applies to its lines"
        elif layer is not Layer.ITEM and base < c.promo.conditions.min_amount:
            code, reason = "below_min_amount", nudge.message if nudge else "below the minimum amount"
        elif (isinstance(c.promo.reward, ORDER_REWARDS) and not isinstance(c.promo.reward, _NO_AMOUNT)
              and _order_amount(c.promo.reward, base, c.eligible_quantity) == 0):
            code, reason = "below_threshold", nudge.message if nudge else "below the first threshold"
        elif isinstance(c.promo.reward, FreeShipping):
            code, reason = "no_benefit", "shipping is already free"
        elif is_chosen:
            code, reason = "no_benefit", "nothing is left to discount on its lines"
        else:
            code, reason = "worse_combination", ("applying it would lose a larger discount of a later "
                                                 "layer (a threshold would no longer be reached)")
        slots[pos] = NotApplied(c.promo.id, c.promo.name, layer, code, reason, c.coupon_code, nudge)

    line_discounts: list[list[LineDiscount]] = [[] for _ in lines]
    for out, layer in layer_outs:
        for c, parts in out.allocations:
            for i in c.eligible:  # a promotion only touches its eligible lines
                if parts[i]:
                    line_discounts[i].append(LineDiscount(c.promo.id, layer, parts[i], c.coupon_code))
    priced_lines: list[PricedLine] = []
    for i, line in enumerate(lines):
        discounts = line_discounts[i]
        if points_parts[i]:
            discounts.append(LineDiscount("points", Layer.POINTS, points_parts[i]))
        priced_lines.append(PricedLine(
            line.line_id, line.sku, line.unit_price, line.quantity, line.amount, tuple(discounts),
            line.deposit_paid * line.quantity, item_out.deposit[i],
            coupon_out.remaining[i] - points_parts[i]))
    for out, _ in layer_outs:
        for c in out.gifts:
            reward = c.promo.reward
            assert isinstance(reward, GiftWithPurchase)
            priced_lines.append(PricedLine(f"gift:{c.promo.id}", reward.sku, 0, reward.quantity, 0, (),
                                           0, 0, 0, is_gift=True))

    def layer_total(out: _LayerOut) -> int:
        return sum(sum(parts) for _, parts in out.allocations)

    subtotal = sum(item_out.inputs)
    goods_total = sum(line.paid for line in priced_lines)
    shipping_left = coupon_out.shipping_left
    totals = Totals(
        subtotal=subtotal, item_discount=layer_total(item_out), deposit_credit=sum(item_out.deposit),
        order_discount=layer_total(order_out), coupon_discount=layer_total(coupon_out),
        points_discount=points_value, shipping_fee=cart.shipping_fee,
        shipping_discount=cart.shipping_fee - shipping_left, goods_total=goods_total,
        shipping=shipping_left, total=goods_total + shipping_left)
    earn = points_for_payment(goods_total, cart.earn) if cart.earn is not None else 0
    return PricedCart(
        currency=currency, lines=tuple(priced_lines), totals=totals,
        applied=tuple(sorted(applied, key=lambda a: (_LAYER_RANK[a.layer], a.promotion_id))),
        not_applied=tuple(record for record in slots if record is not None),
        nudges=tuple(sorted(set(nudges), key=lambda n: (n.promotion_id, n.short_amount, n.short_quantity))),
        points_used=points_used, points_to_earn=earn, exact=exact)



def refund_amount(priced: PricedCart, quantities: Mapping[str, int],
                  already_refunded: Mapping[str, int] | None = None) -> int:
    """The exact amount to refund for ``quantities`` (line id → units) of a priced cart.

    Each line's ``paid`` is spread over its units by largest remainder (the first units take the
    extra minor units); units are refunded in order, after ``already_refunded`` units of the line,
    so successive partial refunds of a line add up to exactly its ``paid``. Shipping and presale
    deposits are not included (the caller's refund policy decides them).
    """
    by_id = {line.line_id: line for line in priced.lines}
    done = dict(already_refunded or {})
    for line_id in done:
        _check(line_id in by_id, f"already_refunded[{line_id!r}]", "no such line in the priced cart")
    total = 0
    for line_id, quantity in quantities.items():
        line = by_id.get(line_id)
        _check(line is not None, f"quantities[{line_id!r}]", "no such line in the priced cart")
        assert line is not None
        before = done.get(line_id, 0)
        _check(quantity >= 0, f"quantities[{line_id!r}]", "must not be negative")
        _check(before >= 0, f"already_refunded[{line_id!r}]", "must not be negative")
        _check(before + quantity <= line.quantity, f"quantities[{line_id!r}]",
               f"{before} already refunded + {quantity} exceeds the {line.quantity} bought")
        units = allocate(line.paid, [1] * line.quantity)
        total += sum(units[before:before + quantity])
    return total
