"""The pricing core's data model: rewards, conditions, promotions, the cart and the priced result.

Plain frozen dataclasses that check themselves on construction (:class:`PricingInputError` names the
field); integer minor units everywhere. See :mod:`growthwheel.promotions.rules` for how they are priced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from growthwheel.errors import InvalidArgumentError
from growthwheel.kit.money import currency_exponent, major_text

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


def check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise PricingInputError(f"{field_name}: {message}")


def check_rate(rate_bp: int, field_name: str) -> None:
    check(0 < rate_bp <= BASIS, field_name, f"must be a rate in basis points in 1..{BASIS}, got {rate_bp}")


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
        check_rate(self.rate_bp, "PercentOff.rate_bp")


@dataclass(frozen=True)
class AmountOff:
    """Item: ``amount`` off each eligible unit (never more than the unit's price)."""

    amount: int

    def __post_init__(self) -> None:
        check(self.amount > 0, "AmountOff.amount", "must be positive")


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
        check(self.price >= 0, "FlashSalePrice.price", "must not be negative")
        check(self.stock_left >= 0, "FlashSalePrice.stock_left", "must not be negative")


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
        check(self.n >= 2, "NthItemOff.n", "must be at least 2")
        check_rate(self.rate_bp, "NthItemOff.rate_bp")


@dataclass(frozen=True)
class BundlePrice:
    """Item (price reward): one unit of each of ``skus`` together for ``price`` (组合价).

    The number of bundles is the smallest quantity among the skus; each bundle's discount (sum of
    its unit prices minus ``price``) is spread over its units by largest remainder.
    """

    skus: frozenset[str]
    price: int

    def __post_init__(self) -> None:
        check(len(self.skus) >= 2, "BundlePrice.skus", "a bundle needs at least two skus")
        check(self.price >= 0, "BundlePrice.price", "must not be negative")


@dataclass(frozen=True)
class SpendTiers:
    """Order / coupon (满减): the highest tier reached, ``(threshold, amount off)`` pairs.

    E.g. ``((20000, 2000), (30000, 5000), (50000, 10000))`` = 满200减20, 满300减50, 满500减100.
    """

    tiers: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        check(bool(self.tiers), "SpendTiers.tiers", "needs at least one tier")
        previous = (-1, 0)
        for threshold, off in self.tiers:
            check(threshold > previous[0], "SpendTiers.tiers", "thresholds must increase")
            check(off > 0 and (off <= threshold or threshold == 0), "SpendTiers.tiers",
                   f"amount off {off} must be positive and not above its threshold {threshold}")
            check(off >= previous[1], "SpendTiers.tiers", "a higher tier must not save less")
            previous = (threshold, off)


@dataclass(frozen=True)
class EveryXOffY:
    """Order / coupon (每满减): ``off`` for every full ``every`` spent, at most ``cap`` (None: no cap)."""

    every: int
    off: int
    cap: int | None = None

    def __post_init__(self) -> None:
        check(self.every > 0, "EveryXOffY.every", "must be positive")
        check(0 < self.off <= self.every, "EveryXOffY.off", "must be positive and not above `every`")
        check(self.cap is None or self.cap > 0, "EveryXOffY.cap", "must be positive when given")


@dataclass(frozen=True)
class QuantityTiers:
    """Order / coupon (满件折): ``(min quantity, rate_bp)`` tiers; the highest reached applies.

    E.g. ``((2, 1000), (3, 2000))`` = 2 items 10 % off, 3 items 20 % off (9折 / 8折).
    """

    tiers: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        check(bool(self.tiers), "QuantityTiers.tiers", "needs at least one tier")
        previous = (0, 0)
        for quantity, rate_bp in self.tiers:
            check(quantity > previous[0], "QuantityTiers.tiers", "quantities must increase")
            check_rate(rate_bp, "QuantityTiers.tiers")
            check(rate_bp >= previous[1], "QuantityTiers.tiers", "a higher tier must not save less")
            previous = (quantity, rate_bp)


@dataclass(frozen=True)
class OrderAmountOff:
    """Order / coupon: ``amount`` off the eligible lines (a 20-yuan coupon); never more than they cost."""

    amount: int

    def __post_init__(self) -> None:
        check(self.amount > 0, "OrderAmountOff.amount", "must be positive")


@dataclass(frozen=True)
class OrderPercentOff:
    """Order / coupon: ``rate_bp`` off the eligible lines, at most ``cap`` (None: no cap)."""

    rate_bp: int
    cap: int | None = None

    def __post_init__(self) -> None:
        check_rate(self.rate_bp, "OrderPercentOff.rate_bp")
        check(self.cap is None or self.cap > 0, "OrderPercentOff.cap", "must be positive when given")


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
        check(bool(self.sku), "GiftWithPurchase.sku", "must not be empty")
        check(self.quantity > 0, "GiftWithPurchase.quantity", "must be positive")
        check(self.value >= 0, "GiftWithPurchase.value", "must not be negative")


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
            check(value is None or value.utcoffset() is not None, f"Conditions.{name}",
                   "must be timezone-aware (UTC)")
        if self.starts_at is not None and self.ends_at is not None:
            check(self.starts_at < self.ends_at, "Conditions.ends_at", "must be after starts_at")
        check(self.min_amount >= 0, "Conditions.min_amount", "must not be negative")
        check(self.min_quantity >= 0, "Conditions.min_quantity", "must not be negative")


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
        check(bool(self.id), "Promotion.id", "must not be empty")
        check(self.layer is not Layer.POINTS, f"Promotion {self.id}.layer",
               "points are not a promotion layer")
        if isinstance(self.reward, ITEM_REWARDS):
            check(self.layer is Layer.ITEM, f"Promotion {self.id}.layer",
                   f"{type(self.reward).__name__} is an item reward: layer must be 'item'")
        else:
            check(self.layer is not Layer.ITEM, f"Promotion {self.id}.layer",
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
        check(bool(self.code), "Coupon.code", "must not be empty")
        check(self.promotion.layer is Layer.COUPON, f"Coupon {self.code}.promotion.layer",
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
        check(self.now.utcoffset() is not None, "Customer.now", "must be timezone-aware (UTC)")


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
        check(bool(self.line_id), "Line.line_id", "must not be empty")
        check(bool(self.sku), f"{where}.sku", "must not be empty")
        check(self.unit_price >= 0, f"{where}.unit_price", "must not be negative")
        check(self.quantity > 0, f"{where}.quantity", "must be positive")
        for tier, price in self.member_prices.items():
            check(price >= 0, f"{where}.member_prices[{tier!r}]", "must not be negative")
        check(self.deposit_paid >= 0, f"{where}.deposit_paid", "must not be negative")
        check(self.deposit_credit >= self.deposit_paid, f"{where}.deposit_credit",
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
        check(self.points >= 0, "PointsUse.points", "must not be negative")
        check(self.minor_per_point > 0, "PointsUse.minor_per_point", "must be positive")
        check(0 <= self.max_share_bp <= BASIS, "PointsUse.max_share_bp", f"must be in 0..{BASIS}")


@dataclass(frozen=True)
class EarnRule:
    """How the paid amount earns points: one point per ``minor_per_point`` paid × the tier multiplier."""

    minor_per_point: int = 100
    multiplier_bp: int = BASIS

    def __post_init__(self) -> None:
        check(self.minor_per_point > 0, "EarnRule.minor_per_point", "must be positive")
        check(self.multiplier_bp >= 0, "EarnRule.multiplier_bp", "must not be negative")


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
    explain_all: bool = True
    """List in ``not_applied`` the promotions no product of the cart is for too (``False``: count
    them in :attr:`PricedCart.elsewhere` instead — a checkout's answer, which would otherwise name
    nearly every promotion of the shop)."""

    def __post_init__(self) -> None:
        try:
            currency_exponent(self.currency)
        except ValueError as exc:
            raise PricingInputError(f"Cart.currency: {exc}") from None
        check(bool(self.lines), "Cart.lines", "a cart needs at least one line")
        ids = [line.line_id for line in self.lines]
        check(len(set(ids)) == len(ids), "Cart.lines", "line ids must be unique")
        codes = [coupon.code for coupon in self.coupons]
        check(len(set(codes)) == len(codes), "Cart.coupons", "a coupon code may be given once")
        check(self.shipping_fee >= 0, "Cart.shipping_fee", "must not be negative")


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
    ``not_applied`` is in the order of the promotion index, then the coupons.
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
    elsewhere: int = 0
    """Promotions left out of ``not_applied`` because no product of the cart is one they are for
    (only with ``Cart.explain_all`` off)."""


#: Minor-unit digits per currency code, looked up once per code (:func:`format_money`).
_EXPONENT_OF: dict[str, int] = {}


def format_money(amount: int, currency: str) -> str:
    """Minor units as major-unit text with the currency's exponent (``1200, "CNY"`` → ``"12.00"``).

    The same text as :func:`growthwheel.kit.money.major_text`, by integer arithmetic for the amounts
    a cart can hold (checkout nudges format several per cart)."""
    exponent = _EXPONENT_OF.get(currency)
    if exponent is None:
        exponent = _EXPONENT_OF[currency] = currency_exponent(currency)
    if not -10**20 < amount < 10**20:
        return major_text(amount, exponent)
    if not exponent:
        return str(amount)
    whole, fraction = divmod(-amount if amount < 0 else amount, 10**exponent)
    return f"{'-' if amount < 0 else ''}{whole}.{fraction:0{exponent}d}"


def points_for_payment(paid: int, rule: EarnRule) -> int:
    """Points earned by a payment of ``paid`` minor units: ``floor(paid / minor_per_point × multiplier)``.

    Rounded down, so a payment never earns a fraction of a point more than it paid for.
    """
    check(paid >= 0, "paid", "must not be negative")
    return paid * rule.multiplier_bp // (rule.minor_per_point * BASIS)


# --------------------------------------------------------------------------------------------------
# Result records built in the hot path of price_cart: the same frozen objects as their constructors
# give (every field set, nothing checked: these classes check nothing), without the generated
# ``__init__``'s one ``object.__setattr__`` call per field. ``test_rules_records.py`` holds them to
# their classes' fields.
# --------------------------------------------------------------------------------------------------

_new = object.__new__


def new_line_discount(promotion_id: str, layer: Layer, amount: int,
                      coupon_code: str | None = None) -> LineDiscount:
    """``LineDiscount(promotion_id, layer, amount, coupon_code)``, built fast."""
    obj = _new(LineDiscount)
    fields = obj.__dict__
    fields["promotion_id"] = promotion_id
    fields["layer"] = layer
    fields["amount"] = amount
    fields["coupon_code"] = coupon_code
    return obj


def new_applied(promotion_id: str, name: str, layer: Layer, amount: int,
                per_line: tuple[tuple[str, int], ...], coupon_code: str | None = None,
                shipping_discount: int = 0, gift_sku: str | None = None,
                gift_quantity: int = 0) -> AppliedPromotion:
    """``AppliedPromotion(...)`` with the same arguments, built fast."""
    obj = _new(AppliedPromotion)
    fields = obj.__dict__
    fields["promotion_id"] = promotion_id
    fields["name"] = name
    fields["layer"] = layer
    fields["amount"] = amount
    fields["per_line"] = per_line
    fields["coupon_code"] = coupon_code
    fields["shipping_discount"] = shipping_discount
    fields["gift_sku"] = gift_sku
    fields["gift_quantity"] = gift_quantity
    return obj


def new_priced_line(line_id: str, sku: str, unit_price: int, quantity: int, subtotal: int,
                    discounts: tuple[LineDiscount, ...], deposit_paid: int, deposit_credit: int,
                    paid: int, is_gift: bool = False) -> PricedLine:
    """``PricedLine(...)`` with the same arguments, built fast."""
    obj = _new(PricedLine)
    fields = obj.__dict__
    fields["line_id"] = line_id
    fields["sku"] = sku
    fields["unit_price"] = unit_price
    fields["quantity"] = quantity
    fields["subtotal"] = subtotal
    fields["discounts"] = discounts
    fields["deposit_paid"] = deposit_paid
    fields["deposit_credit"] = deposit_credit
    fields["paid"] = paid
    fields["is_gift"] = is_gift
    return obj


def new_not_applied(promotion_id: str, name: str, layer: Layer, code: str, reason: str,
                    coupon_code: str | None = None, nudge: Nudge | None = None) -> NotApplied:
    """``NotApplied(...)`` with the same arguments, built fast."""
    obj = _new(NotApplied)
    fields = obj.__dict__
    fields["promotion_id"] = promotion_id
    fields["name"] = name
    fields["layer"] = layer
    fields["code"] = code
    fields["reason"] = reason
    fields["coupon_code"] = coupon_code
    fields["nudge"] = nudge
    return obj
