"""Reasons and nudges: why a promotion did not apply, and what the customer could add to get it.

No I/O; the messages are English text with a stable machine ``code`` beside them.
"""

from __future__ import annotations

from growthwheel.promotions.rules.amounts import Cand, order_amount
from growthwheel.promotions.rules.model import (
    BASIS,
    ORDER_REWARDS,
    BundlePrice,
    Cart,
    Conditions,
    Customer,
    EveryXOffY,
    FlashSalePrice,
    FreeShipping,
    GiftWithPurchase,
    Layer,
    MemberPrice,
    NthItemOff,
    Nudge,
    Promotion,
    QuantityTiers,
    SpendTiers,
    format_money,
    round_half_up_div,
)


def _percent_text(rate_bp: int) -> str:
    whole, rest = divmod(rate_bp, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


def static_failure(promo: Promotion, cart: Cart, eligible: tuple[int, ...],
                    quantity: int) -> tuple[str, str, Nudge | None] | None:
    """Why a promotion cannot apply whatever else is chosen (``None``: it may apply)."""
    cond, customer = promo.conditions, cart.customer
    context = context_failure(cond, customer)
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


def item_zero_reason(promo: Promotion, cart: Cart, eligible: tuple[int, ...]) -> tuple[str, str]:
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


#: Rewards that can nudge once their minimum amount is reached (a next tier, the next 每满减 step).
_NUDGING = (SpendTiers, EveryXOffY, QuantityTiers)


def nudge_for(cand: Cand, base: int, currency: str) -> Nudge | None:
    """The checkout nudge of an order / coupon promotion on eligible lines worth ``base``."""
    promo, reward = cand.promo, cand.promo.reward
    quantity = cand.eligible_quantity
    minimum = promo.conditions.min_amount
    if base >= minimum and not isinstance(reward, _NUDGING):
        return None  # (the usual case: a reward without a next step, its minimum reached)

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
        save = order_amount(reward, minimum, quantity)
        return Nudge(promo.id, short, 0, save, f"spend {money(short)} more to save {money(save)}")
    if isinstance(reward, SpendTiers):
        for threshold, off in reward.tiers:
            if threshold > base:
                short = threshold - base
                return Nudge(promo.id, short, 0, off, f"spend {money(short)} more to save {money(off)}")
    elif isinstance(reward, EveryXOffY):
        now = order_amount(reward, base, quantity)
        target = (base // reward.every + 1) * reward.every
        save = order_amount(reward, target, quantity)
        if save > now:
            short = target - base
            return Nudge(promo.id, short, 0, save, f"spend {money(short)} more to save {money(save)}")
    elif isinstance(reward, QuantityTiers):
        return _quantity_nudge(promo, reward, base, quantity)
    return None


def context_code(cond: Conditions, customer: Customer) -> str | None:
    """The code of the first failing condition on the customer or the moment (:func:`context_failure`
    without its reason, which depends on the conditions alone: :func:`context_reason`)."""
    if cond.starts_at is not None and customer.now < cond.starts_at:
        return "not_started"
    if cond.ends_at is not None and customer.now >= cond.ends_at:
        return "ended"
    if cond.channels and customer.channel not in cond.channels:
        return "wrong_channel"
    if cond.tiers and customer.tier not in cond.tiers:
        return "wrong_tier"
    if cond.segments and not cond.segments & customer.segments:
        return "wrong_segment"
    if cond.first_order_only and not customer.is_first_order:
        return "not_first_order"
    return None


def context_reason(cond: Conditions, code: str) -> str:
    """The reason given with a :func:`context_code`."""
    if code == "not_started":
        assert cond.starts_at is not None
        return f"starts at {cond.starts_at.isoformat()}"
    if code == "ended":
        assert cond.ends_at is not None
        return f"ended at {cond.ends_at.isoformat()}"
    if code == "wrong_channel":
        return f"only on channel {', '.join(sorted(cond.channels))}"
    if code == "wrong_tier":
        return f"only for membership tier {', '.join(sorted(cond.tiers))}"
    if code == "wrong_segment":
        return "only for selected customer segments"
    return "only for a customer's first order"


def context_failure(cond: Conditions, customer: Customer) -> tuple[str, str] | None:
    """The first failing condition on the customer or the moment (the start of :func:`static_failure`)."""
    code = context_code(cond, customer)
    return None if code is None else (code, context_reason(cond, code))
