"""Candidates and what each reward takes: the building blocks of the search engine (:mod:`.search`).

:class:`Cand` (a promotion competing for one cart), :class:`LayerOut` (what a layer leaves), each item
reward's discount and offers per line, each order reward's amount as a function of its base, and
the largest-remainder spread of an order amount over lines. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from growthwheel.kit.money import allocate
from growthwheel.promotions.rules.model import (
    BASIS,
    ORDER_REWARDS,
    PRICE_REWARDS,
    AmountOff,
    BundlePrice,
    Conditions,
    EveryXOffY,
    FlashSalePrice,
    FreeShipping,
    GiftWithPurchase,
    ItemReward,
    Line,
    MemberPrice,
    NthItemOff,
    OrderAmountOff,
    OrderPercentOff,
    OrderReward,
    PercentOff,
    Promotion,
    QuantityTiers,
    SpendTiers,
    round_half_up_div,
)

#: Rewards whose amount can drop when their input drops by less (a threshold is crossed).
_THRESHOLD_REWARDS = (SpendTiers, EveryXOffY)
#: Order rewards that never take an amount off the lines.
NO_AMOUNT = (GiftWithPurchase, FreeShipping)
#: Per reward type, what :class:`Engine` does with it: 0 an item reward, 1 an order reward taking an
#: amount, 2 free shipping, 3 a gift.
_KIND: dict[type, int] = {
    PercentOff: 0, AmountOff: 0, FlashSalePrice: 0, MemberPrice: 0, NthItemOff: 0, BundlePrice: 0,
    SpendTiers: 1, EveryXOffY: 1, QuantityTiers: 1, OrderAmountOff: 1, OrderPercentOff: 1,
    FreeShipping: 2, GiftWithPurchase: 3}


def _kind_of(reward: object) -> int:
    """The :data:`_KIND` of a reward (of a subclass of a reward type too)."""
    kind = _KIND.get(type(reward))
    if kind is None:
        kind = (2 if isinstance(reward, FreeShipping) else 3 if isinstance(reward, GiftWithPurchase)
                else 1 if isinstance(reward, ORDER_REWARDS) else 0)
    return kind



@dataclass(frozen=True, slots=True)
class Facts:
    """What the engine reads of a promotion, worked out once (:func:`facts_of`; a
    :class:`~.index.PromotionIndex` keeps them for its promotions, a coupon's are worked out per cart)."""

    #: 0 an item reward, 1 an order reward taking an amount, 2 free shipping, 3 a gift.
    kind: int
    #: An amount-taking order reward's amount as a function of ``(base, quantity)``
    #: (:func:`amount_function`), else ``None``.
    amount: Callable[[int, int], int] | None
    is_price: bool  # a price reward (:data:`~.model.PRICE_REWARDS`): one price per unit
    has_threshold: bool  # a minimum amount, 满减 tiers, 每满减
    min_amount: int
    sort_key: tuple[int, str, str]  # (-priority, id, coupon code or "")


def facts_of(promo: Promotion, coupon_code: str | None = None) -> Facts:
    """The :class:`Facts` of a promotion (brought by ``coupon_code``, if a coupon)."""
    reward = promo.reward
    kind = _kind_of(reward)
    return Facts(kind, amount_function(reward) if kind == 1 and isinstance(reward, ORDER_REWARDS) else None,
                 isinstance(reward, PRICE_REWARDS), promo.conditions.min_amount > 0
                 or isinstance(reward, _THRESHOLD_REWARDS), promo.conditions.min_amount,
                 (-promo.priority, promo.id, coupon_code or ""))


@dataclass(eq=False, slots=True)
class Cand:
    """A promotion that passed the static checks and competes in the search.

    ``idx`` is the candidate's position in the run and its bit in every selection mask.
    """

    idx: int
    promo: Promotion
    coupon_code: str | None
    eligible: tuple[int, ...]
    eligible_quantity: int
    item_discounts: tuple[int, ...]  # per cart line, on the undiscounted line amount (item layer)
    facts: Facts
    #: A price reward's offer per cart line: ``(discount per unit, units)`` groups, largest first
    #: (empty for a line it does not touch, and for every line of a reward that is not a price).
    offers: tuple[Offer, ...] = ()

    @property
    def sort_key(self) -> tuple[int, str, str]:
        return self.facts.sort_key

    @property
    def has_threshold(self) -> bool:
        return self.facts.has_threshold

    @property
    def rank_id(self) -> str:
        """What the last tie-break compares: the promotion id, then the coupon code."""
        return f"{self.promo.id}\x00{self.coupon_code or ''}"


#: ``(discount per unit, units)`` groups a price reward offers on one line, largest discount first.
Offer = tuple[tuple[int, int], ...]
#: How a line's units take the price offers: ``(candidate idx, units, discount per unit)``, in order.
Fill = tuple[tuple[int, int, int], ...]


def fill_units(quantity: int, offers: list[tuple[int, int, int]]) -> Fill:
    """Every unit of a line its own best price: the ``quantity`` units take the largest per-unit
    discounts among ``offers`` (``(discount per unit, candidate idx, units)``), ties to the lower
    idx. Units are alike, so taking the largest offers first is the best assignment."""
    offers.sort(key=lambda o: (-o[0], o[1]))
    left = quantity
    out: list[tuple[int, int, int]] = []
    for per_unit, idx, units in offers:
        if not left:
            break
        take = units if units < left else left
        out.append((idx, take, per_unit))
        left -= take
    return tuple(out)


@dataclass(eq=False, slots=True)
class LayerOut:
    """What a layer leaves: remaining amount per line, per-promotion line amounts, shipping, gifts
    (shared by the engine's memos: never modified)."""

    inputs: tuple[int, ...]
    remaining: tuple[int, ...]
    allocations: tuple[tuple[Cand, tuple[int, ...]], ...]
    shipping_left: int
    shipping_discounts: tuple[tuple[Cand, int], ...] = ()
    gifts: tuple[Cand, ...] = ()
    deposit: tuple[int, ...] = ()
    gift_value: int = 0  # Σ value × quantity of the gifts: a tie-break in favour of the customer
    fills: tuple[Fill, ...] = ()  # item layer: how each line's units took the price rewards


def eligible_lines(conditions: Conditions, lines: tuple[Line, ...]) -> tuple[int, ...]:
    if not conditions.skus and not conditions.categories:
        return tuple(range(len(lines)))
    return tuple(i for i, line in enumerate(lines)
                 if line.sku in conditions.skus or (line.category is not None
                                                    and line.category in conditions.categories))


def line_item_discounts(reward: ItemReward, lines: tuple[Line, ...], eligible: tuple[int, ...],
                        tier: str | None) -> tuple[list[int], tuple[Offer, ...]]:
    """Each line's discount from one item reward, on the undiscounted line amount, and for a price
    reward (:data:`PRICE_REWARDS`) its per-unit offer on each line (:class:`Cand`'s ``offers``)."""
    out = [0] * len(lines)
    offers: list[Offer] = [()] * len(lines)
    if isinstance(reward, PercentOff):
        rate = reward.rate_bp
        for i in eligible:  # round_half_up_div(amount × rate, BASIS)
            line = lines[i]
            out[i] = (2 * line.unit_price * line.quantity * rate + BASIS) // (2 * BASIS)
        return out, ()
    if isinstance(reward, AmountOff):
        for i in eligible:
            out[i] = min(reward.amount, lines[i].unit_price) * lines[i].quantity
        return out, ()
    if isinstance(reward, FlashSalePrice):
        stock = reward.stock_left
        for i in eligible:
            line = lines[i]
            if line.unit_price > reward.price and stock > 0:
                units = min(line.quantity, stock)
                stock -= units
                out[i] = (line.unit_price - reward.price) * units
                offers[i] = ((line.unit_price - reward.price, units),)
    elif isinstance(reward, MemberPrice):
        if tier is not None:
            for i in eligible:
                member = lines[i].member_prices.get(tier)
                if member is not None and member < lines[i].unit_price:
                    out[i] = (lines[i].unit_price - member) * lines[i].quantity
                    offers[i] = ((lines[i].unit_price - member, lines[i].quantity),)
    elif isinstance(reward, NthItemOff):
        position = 0  # units before this line in the pooled, price-descending order
        for i in sorted(eligible, key=lambda j: (-lines[j].unit_price, j)):
            quantity = lines[i].quantity
            discounted_units = (position + quantity) // reward.n - position // reward.n
            out[i] = discounted_units * round_half_up_div(lines[i].unit_price * reward.rate_bp, BASIS)
            position += quantity
        return out, ()
    else:  # BundlePrice
        by_sku = {sku: [i for i in eligible if lines[i].sku == sku] for sku in sorted(reward.skus)}
        bundles = min(sum(lines[i].quantity for i in idxs) for idxs in by_sku.values())
        if bundles:
            used: list[tuple[int, int]] = []  # (line, value of the units it gives to the bundles)
            taken: list[int] = []  # units of each used line
            for idxs in by_sku.values():
                need = bundles
                for i in idxs:
                    take = min(need, lines[i].quantity)
                    if take:
                        used.append((i, take * lines[i].unit_price))
                        taken.append(take)
                    need -= take
            discount = sum(value for _, value in used) - reward.price * bundles
            if discount > 0:
                parts = allocate(discount, [v for _, v in used])
                for (i, _), part, take in zip(used, parts, taken, strict=True):
                    out[i] += part
                    per_unit, extra = divmod(part, take)  # a unit's share, the first ones 1 more
                    offers[i] = tuple((d, n) for d, n in ((per_unit + 1, extra), (per_unit, take - extra))
                                      if d and n)
    return out, tuple(offers)


def order_amount(reward: OrderReward, base: int, quantity: int) -> int:
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


def amount_function(reward: OrderReward) -> Callable[[int, int], int]:
    """:func:`order_amount` of one reward as a function of ``(base, quantity)``, its type dispatched
    once: the engine calls it for every selection it bounds or prices."""
    if isinstance(reward, SpendTiers):
        tiers = tuple(reversed(reward.tiers))

        def spend(base: int, quantity: int) -> int:
            for threshold, off in tiers:
                if base >= threshold:
                    return off
            return 0
        return spend
    if isinstance(reward, EveryXOffY):
        every, off, cap = reward.every, reward.off, reward.cap
        if cap is None:
            return lambda base, quantity: base // every * off
        return lambda base, quantity: min(base // every * off, cap)
    if isinstance(reward, QuantityTiers):
        rates = tuple(reversed(reward.tiers))

        def by_quantity(base: int, quantity: int) -> int:
            for need, rate in rates:
                if quantity >= need:
                    return (2 * base * rate + BASIS) // (2 * BASIS)
            return 0
        return by_quantity
    if isinstance(reward, OrderAmountOff):
        amount = reward.amount
        return lambda base, quantity: amount
    if isinstance(reward, OrderPercentOff):
        rate, percent_cap = reward.rate_bp, reward.cap
        if percent_cap is None:
            return lambda base, quantity: (2 * base * rate + BASIS) // (2 * BASIS)
        return lambda base, quantity: min((2 * base * rate + BASIS) // (2 * BASIS), percent_cap)
    return lambda base, quantity: 0  # gift and free shipping take nothing off the lines


def _spread(amount: int, weights: list[int], total: int) -> list[int]:
    """:func:`~growthwheel.kit.money.allocate` for the engine's hot path: ``0 < amount <= total``, ``total``
    the sum of the ``weights``, none negative — the same largest-remainder parts (ties to the earlier
    line), no checks."""
    parts = [amount * w // total for w in weights]
    left = amount - sum(parts)
    if left:
        # Largest remainder first; the sort is stable, so ties keep the earlier line first.
        remainders = [-(amount * w % total) for w in weights]
        for i in sorted(range(len(weights)), key=remainders.__getitem__)[:left]:
            parts[i] += 1
    return parts
