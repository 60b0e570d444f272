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

The package is split by concern: :mod:`.model` (the data model: rewards, conditions, promotions, the
cart and the result), :mod:`.amounts` (candidates and what each reward takes), :mod:`.search` (the
search engine), :mod:`.selection` (which selections it prices), :mod:`.bounds` (its per-selection
bounds), :mod:`.fallback` (the layer-by-layer fallback), :mod:`.reasons` (why a promotion did not
apply, and checkout nudges), :mod:`.index` (:class:`PromotionIndex`) and :mod:`.pricing` (the entry
points). Everything public is re-exported here.
"""

from growthwheel.promotions.rules.index import PromotionIndex
from growthwheel.promotions.rules.model import (
    BASIS,
    ITEM_REWARDS,
    LAYER_ORDER,
    ORDER_REWARDS,
    PRICE_REWARDS,
    AmountOff,
    AppliedPromotion,
    BundlePrice,
    Cart,
    Conditions,
    Coupon,
    Customer,
    EarnRule,
    EveryXOffY,
    FlashSalePrice,
    FreeShipping,
    GiftWithPurchase,
    ItemReward,
    Layer,
    Line,
    LineDiscount,
    MemberPrice,
    NotApplied,
    NthItemOff,
    Nudge,
    OrderAmountOff,
    OrderPercentOff,
    OrderReward,
    PercentOff,
    PointsUse,
    PricedCart,
    PricedLine,
    PricingInputError,
    Promotion,
    QuantityTiers,
    Reward,
    SpendTiers,
    Totals,
    compatible,
    format_money,
    points_for_payment,
    round_half_up_div,
)
from growthwheel.promotions.rules.pricing import price_cart, refund_amount
from growthwheel.promotions.rules.search import EXACT_SEARCH_BRANCHES, EXACT_SEARCH_LIMIT, LAYER_SEARCH_LIMIT

__all__ = [
    "BASIS",
    "EXACT_SEARCH_BRANCHES",
    "EXACT_SEARCH_LIMIT",
    "ITEM_REWARDS",
    "LAYER_ORDER",
    "LAYER_SEARCH_LIMIT",
    "ORDER_REWARDS",
    "PRICE_REWARDS",
    "AmountOff",
    "AppliedPromotion",
    "BundlePrice",
    "Cart",
    "Conditions",
    "Coupon",
    "Customer",
    "EarnRule",
    "EveryXOffY",
    "FlashSalePrice",
    "FreeShipping",
    "GiftWithPurchase",
    "ItemReward",
    "Layer",
    "Line",
    "LineDiscount",
    "MemberPrice",
    "NotApplied",
    "NthItemOff",
    "Nudge",
    "OrderAmountOff",
    "OrderPercentOff",
    "OrderReward",
    "PercentOff",
    "PointsUse",
    "PricedCart",
    "PricedLine",
    "PricingInputError",
    "Promotion",
    "PromotionIndex",
    "QuantityTiers",
    "Reward",
    "SpendTiers",
    "Totals",
    "compatible",
    "format_money",
    "points_for_payment",
    "price_cart",
    "refund_amount",
    "round_half_up_div",
]
