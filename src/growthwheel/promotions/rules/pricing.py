"""The entry points of the pricing core: :func:`price_cart` and :func:`refund_amount`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import cast

from growthwheel.kit.money import allocate
from growthwheel.promotions.rules.amounts import facts_of
from growthwheel.promotions.rules.index import LAYER_RANK, PromotionIndex
from growthwheel.promotions.rules.model import (
    ORDER_REWARDS,
    AppliedPromotion,
    BundlePrice,
    Cart,
    FreeShipping,
    GiftWithPurchase,
    ItemReward,
    Layer,
    Line,
    LineDiscount,
    NotApplied,
    Nudge,
    PricedCart,
    PricedLine,
    Promotion,
    Totals,
    check,
    compatible,
    new_applied,
    new_line_discount,
    new_not_applied,
    new_priced_line,
    points_for_payment,
)
from growthwheel.promotions.rules.reasons import item_zero_reason, nudge_for, static_failure
from growthwheel.promotions.rules.search import (
    NO_AMOUNT,
    Cand,
    Engine,
    Offer,
    eligible_lines,
    layered,
    line_item_discounts,
    order_amount,
)


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
       selections whose lower bound cannot beat the best total found (:meth:`Engine.exact`). It is
       exact up to :data:`EXACT_SEARCH_LIMIT` priced combinations; past it (``PricedCart.exact`` is
       False) each layer picks its own best selection given the layers before it (up to
       :data:`LAYER_SEARCH_LIMIT` selections, else greedily).
       With an exact search, adding a promotion never raises the total: every combination that was
       possible before is still possible and priced the same.
    3. **Allocation and explanation** of the winner: per-line discounts of every promotion, points,
       not-applied promotions with a code and a reason, and checkout nudges.

    **Units, not lines.** Every unit gets its own best price reward: a flash sale with two units
    left on a line of three sells two at the flash price and the third at the next best price (the
    member price), as if the units had come as two lines. Lines of the same sku, price, category,
    member prices and deposit are priced as one line (at the first one's place) and the result is
    spread back over them — the price rewards unit by unit in cart order, every other discount by
    largest remainder over what is left of each — so the total never depends on how the cart is
    split into lines.

    Raises :class:`PricingInputError` for duplicate promotion ids, a COUPON promotion passed in
    ``promotions``, two coupons of one promotion or a cart line id reserved for a gift line.
    """
    index = promotions if isinstance(promotions, PromotionIndex) else PromotionIndex(promotions)
    merged = merge_lines(cart.lines)
    if merged is None:
        return _price(cart, index)[0]
    virtual, groups = merged
    _check_gift_ids(cart, index)
    result, fills = _price(replace(cart, lines=virtual), index)
    return _expand(result, cart.lines, groups, fills)


def _check_gift_ids(cart: Cart, index: PromotionIndex) -> None:
    """No cart line may use the id of a gift line (``gift:<promotion id>``)."""
    for line in cart.lines:
        if line.line_id.startswith("gift:"):
            break
    else:
        return  # (the usual cart: no line id looks like a gift line's)
    gift_line_ids = dict(index._gift_line_ids)
    gift_line_ids.update((f"gift:{c.promotion.id}", c.promotion.id) for c in cart.coupons
                         if isinstance(c.promotion.reward, GiftWithPurchase))
    for line in cart.lines:
        reserved = gift_line_ids.get(line.line_id)
        check(reserved is None, "Cart.lines",
              f"line id {line.line_id!r} is reserved for the gift line of promotion {reserved!r}")


#: Per priced line: how its units took the price rewards, ``(promotion id, units, discount per unit)``.
PriceFills = tuple[tuple[tuple[str, int, int], ...], ...]


def _price(cart: Cart, index: PromotionIndex) -> tuple[PricedCart, PriceFills]:
    """:func:`price_cart` on a cart whose lines are all different (see :func:`merge_lines`)."""
    seen_coupons: set[str] = set()
    for coupon in cart.coupons:
        pid = coupon.promotion.id
        check(pid not in index.ids and pid not in seen_coupons, f"Cart.coupons[{coupon.code!r}]",
               f"promotion {pid!r} is already in the cart (one coupon per promotion)")
        seen_coupons.add(pid)
    lines, currency = cart.lines, cart.currency
    coupon_entries = sorted(cart.coupons, key=lambda c: c.promotion.id)
    _check_gift_ids(cart, index)

    # One slot per promotion, in the order of the result (the index's order, then the coupons), filled
    # with what each promotion that did not apply reports; the untouched slots of promotions no line
    # qualifies for come ready-made from the index.
    slots: list[NotApplied | None] = [*index._no_lines, *(None for _ in cart.coupons)]
    # Whether a product of the cart is one the promotion (or coupon) is for: only these are reported
    # when the cart does not ask to explain every promotion (Cart.explain_all).
    concerned = [False] * len(slots)
    nudges: list[Nudge] = []
    candidates: list[Cand] = []
    sort_pos: list[int] = []  # per candidate
    every_line = tuple(range(len(lines)))
    cart_skus = {line.sku for line in lines}
    hits = index._eligible_lines(lines)
    customer = cart.customer

    unconditional = index._unconditional
    facts = index._facts

    def consider(pos: int, promo: Promotion, code: str | None, eligible: tuple[int, ...]) -> None:
        slots[pos] = None  # some line qualifies: the ready-made "no eligible lines" does not hold
        concerned[pos] = True
        quantity = 0
        for i in eligible:
            quantity += lines[i].quantity
        failure = (None if code is None and unconditional[pos]
                   else static_failure(promo, cart, eligible, quantity))
        if failure is not None:
            failure_code, reason, failure_nudge = failure
            slots[pos] = new_not_applied(promo.id, promo.name, promo.layer, failure_code, reason, code,
                                         failure_nudge)
            if failure_nudge is not None:
                nudges.append(failure_nudge)
            return
        item_discounts: tuple[int, ...] = ()
        offers: tuple[Offer, ...] = ()
        promo_facts = facts[pos] if code is None else facts_of(promo, code)
        if promo_facts is None:
            promo_facts = facts[pos] = facts_of(promo)
        if not promo_facts.kind:  # an item reward
            incomplete = isinstance(promo.reward, BundlePrice) and not promo.reward.skus <= cart_skus
            if not incomplete:
                found, offers = line_item_discounts(cast(ItemReward, promo.reward), lines, eligible,
                                                    customer.tier)
                item_discounts = tuple(found)
            if not any(item_discounts):
                zero_code, reason = item_zero_reason(promo, cart, eligible)
                slots[pos] = new_not_applied(promo.id, promo.name, promo.layer, zero_code, reason, code)
                return
        candidates.append(Cand(len(candidates), promo, code, eligible, quantity, item_discounts,
                               promo_facts, offers))
        sort_pos.append(pos)

    absent_bundles = index._absent_bundles
    for pos in sorted(hits.keys() | index._always):  # candidates are numbered in the result's order
        promo = index.promotions[pos]
        bundle = absent_bundles.get(pos)
        if bundle is not None and not bundle[0] & cart_skus:
            slots[pos] = bundle[1]  # none of its skus in the cart (what pricing it would report)
            continue
        found = hits.get(pos)
        if found is None and pos not in index._everywhere:
            # No line qualifies: only the context checks (which come first) can give another reason.
            slots[pos] = index._context_record(pos, customer)
            continue
        consider(pos, promo, None, every_line if found is None else tuple(found))
    for n, coupon in enumerate(coupon_entries):
        consider(len(index) + n, coupon.promotion, coupon.code,
                 eligible_lines(coupon.promotion.conditions, lines))

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

    engine = Engine(cart, candidates, comp)
    found_exact = engine.exact()
    (item_set, order_set, coupon_set), exact = found_exact if found_exact is not None else layered(engine)
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
    # Per line, the discounts of every promotion in the order they were taken (a promotion only
    # touches its eligible lines), built with the per-line records of what applied.
    line_discounts: list[list[LineDiscount]] = [[] for _ in lines]
    line_ids = [line.line_id for line in lines]
    layer_totals: dict[Layer, int] = {}  # Σ of each layer's discounts (a promotion's parts are on its lines)
    for out, layer in layer_outs:
        shipping = {c.idx: amount for c, amount in out.shipping_discounts} if out.shipping_discounts else {}
        gift_ids = {c.idx for c in out.gifts} if out.gifts else ()
        layer_total = 0
        for c, parts in out.allocations:
            per_line = []
            promo_id, coupon_code = c.promo.id, c.coupon_code
            total = 0
            for i in c.eligible:
                part = parts[i]
                if part:
                    per_line.append((line_ids[i], part))
                    total += part
                    line_discounts[i].append(new_line_discount(promo_id, layer, part, coupon_code))
            layer_total += total
            if not per_line and c.idx not in shipping and c.idx not in gift_ids:
                unused |= 1 << c.idx  # explained below with the candidates that lost
                continue
            gift = c.promo.reward if c.idx in gift_ids else None
            assert gift is None or isinstance(gift, GiftWithPurchase)
            applied.append(new_applied(
                promo_id, c.promo.name, layer, total, tuple(per_line), coupon_code, shipping.get(c.idx, 0),
                gift.sku if gift else None, gift.quantity if gift else 0))
        layer_totals[layer] = layer_total
    if points_value:
        applied.append(new_applied(
            "points", "points", Layer.POINTS, points_value,
            tuple((line_ids[i], part) for i, part in enumerate(points_parts) if part)))

    # Candidates that lost, and the checkout nudges of order and coupon promotions.
    layer_inputs = {Layer.ITEM: item_out.inputs, Layer.ORDER: order_out.inputs,
                    Layer.COUPON: coupon_out.inputs}
    conflict_names: dict[int, str] = {}  # many losers lost to the same promotions
    for c in candidates:
        layer = c.promo.layer
        conflicts = chosen_mask & ~comp[c.idx]
        nudge: Nudge | None = None
        if not conflicts and layer is not Layer.ITEM:
            inputs = layer_inputs[layer]
            base = 0
            for i in c.eligible:
                base += inputs[i]
            nudge = nudge_for(c, base, currency)
            if nudge is not None:
                nudges.append(nudge)
        if chosen_mask >> c.idx & 1 and not unused >> c.idx & 1:
            continue
        pos = sort_pos[c.idx]
        if conflicts:
            names = conflict_names.get(conflicts)
            if names is None:
                names = conflict_names[conflicts] = ", ".join(
                    sorted({x.promo.name for x in engine.members(conflicts)}))
            slots[pos] = new_not_applied(c.promo.id, c.promo.name, layer, "not_combinable",
                                         f"cannot be combined with {names}, which save more", c.coupon_code)
            continue
        base = sum(layer_inputs[layer][i] for i in c.eligible)
        is_chosen = bool(chosen_mask >> c.idx & 1)
        if layer is Layer.ITEM and is_chosen:
            code, reason = "no_benefit", "a lower price from another promotion already applies to its lines"
        elif layer is not Layer.ITEM and base < c.promo.conditions.min_amount:
            code, reason = "below_min_amount", nudge.message if nudge else "below the minimum amount"
        elif (isinstance(c.promo.reward, ORDER_REWARDS) and not isinstance(c.promo.reward, NO_AMOUNT)
              and order_amount(c.promo.reward, base, c.eligible_quantity) == 0):
            code, reason = "below_threshold", nudge.message if nudge else "below the first threshold"
        elif isinstance(c.promo.reward, FreeShipping):
            code, reason = "no_benefit", "shipping is already free"
        elif is_chosen:
            code, reason = "no_benefit", "nothing is left to discount on its lines"
        else:
            code, reason = "worse_combination", ("applying it would lose a larger discount of a later "
                                                 "layer (a threshold would no longer be reached)")
        slots[pos] = new_not_applied(c.promo.id, c.promo.name, layer, code, reason, c.coupon_code, nudge)

    priced_lines: list[PricedLine] = []
    deposits, left = item_out.deposit, coupon_out.remaining
    for i, line in enumerate(lines):
        discounts = line_discounts[i]
        if points_parts[i]:
            discounts.append(new_line_discount("points", Layer.POINTS, points_parts[i]))
        priced_lines.append(new_priced_line(
            line.line_id, line.sku, line.unit_price, line.quantity, line.unit_price * line.quantity,
            tuple(discounts), line.deposit_paid * line.quantity, deposits[i], left[i] - points_parts[i]))
    for out, _ in layer_outs:
        for c in out.gifts:
            reward = c.promo.reward
            assert isinstance(reward, GiftWithPurchase)
            priced_lines.append(new_priced_line(f"gift:{c.promo.id}", reward.sku, 0, reward.quantity, 0, (),
                                                0, 0, 0, is_gift=True))

    subtotal = sum(item_out.inputs)
    goods_total = sum([line.paid for line in priced_lines])
    shipping_left = coupon_out.shipping_left
    totals = Totals(
        subtotal=subtotal, item_discount=layer_totals[Layer.ITEM], deposit_credit=sum(item_out.deposit),
        order_discount=layer_totals[Layer.ORDER], coupon_discount=layer_totals[Layer.COUPON],
        points_discount=points_value, shipping_fee=cart.shipping_fee,
        shipping_discount=cart.shipping_fee - shipping_left, goods_total=goods_total,
        shipping=shipping_left, total=goods_total + shipping_left)
    earn = points_for_payment(goods_total, cart.earn) if cart.earn is not None else 0
    fills = tuple(tuple((candidates[idx].promo.id, units, per_unit) for idx, units, per_unit in line_fills)
                  for line_fills in item_out.fills)
    reported = [(pos, record) for pos, record in enumerate(slots) if record is not None]
    not_applied = [record for pos, record in reported if cart.explain_all or concerned[pos]]
    return PricedCart(
        currency=currency, lines=tuple(priced_lines), totals=totals,
        applied=tuple(sorted(applied, key=lambda a: (LAYER_RANK[a.layer], a.promotion_id))),
        not_applied=tuple(not_applied), elsewhere=len(reported) - len(not_applied),
        nudges=tuple(sorted(set(nudges), key=lambda n: (n.promotion_id, n.short_amount, n.short_quantity))),
        points_used=points_used, points_to_earn=earn, exact=exact), fills


def merge_lines(lines: tuple[Line, ...]) -> tuple[tuple[Line, ...], list[list[int]]] | None:
    """Lines that differ only in id and quantity, as one line each (at the first one's place, with
    its id and their total quantity), and the cart lines of each; ``None`` when all differ."""
    if len({line.sku for line in lines}) == len(lines):
        return None  # the usual cart: no sku twice
    first: dict[tuple[object, ...], int] = {}
    groups: list[list[int]] = []
    for j, line in enumerate(lines):
        key = (line.sku, line.unit_price, line.category, tuple(sorted(line.member_prices.items())),
               line.deposit_paid, line.deposit_credit)
        at = first.get(key)
        if at is None:
            first[key] = len(groups)
            groups.append([j])
        else:
            groups[at].append(j)
    if len(groups) == len(lines):
        return None
    virtual = tuple(lines[group[0]] if len(group) == 1
                    else replace(lines[group[0]], quantity=sum(lines[j].quantity for j in group))
                    for group in groups)
    return virtual, groups


def _expand(result: PricedCart, lines: tuple[Line, ...], groups: list[list[int]],
            fills: PriceFills) -> PricedCart:
    """Spread the result of the merged lines (:func:`merge_lines`) back over the cart's lines.

    A merged line's price rewards go unit by unit to its lines in cart order, as the units took
    them; its other discounts, deposit credit and points, in the order they were taken, by largest
    remainder over what is left of each line (the deposit over what each line's own credit allows
    first), so every line's ``paid`` stays ``subtotal - discounts - deposit_credit`` and not negative.
    """
    out_lines: list[PricedLine | None] = [None] * len(lines)
    # (promotion id, coupon code) → cart line index → amount, for the per-line records of ``applied``
    parts_of: dict[tuple[str, str | None], dict[int, int]] = {}
    for v, group in enumerate(groups):
        priced = result.lines[v]
        if len(group) == 1:
            out_lines[group[0]] = priced
            for d in priced.discounts:
                parts_of.setdefault((d.promotion_id, d.coupon_code), {})[group[0]] = d.amount
            continue
        members = [lines[j] for j in group]
        current = [line.amount for line in members]
        shares: dict[tuple[str, str | None], list[int]] = {}
        by_price: dict[str, list[int]] = {}
        k, room = 0, members[0].quantity  # the line taking units, and its units still free
        for pid, units, per_unit in fills[v]:
            got = by_price.setdefault(pid, [0] * len(members))
            while units:
                take = min(units, room)
                got[k] += take * per_unit
                current[k] -= take * per_unit
                units -= take
                room -= take
                if not room and k + 1 < len(members):
                    k += 1
                    room = members[k].quantity
        deposit = [0] * len(members)
        rest = [d for d in priced.discounts if d.promotion_id not in by_price or d.layer is not Layer.ITEM]
        for step, d in enumerate(rest):
            if d.layer is not Layer.ITEM and (step == 0 or rest[step - 1].layer is Layer.ITEM):
                deposit = _take_deposit(priced.deposit_credit, members, current)
            shares[d.promotion_id, d.coupon_code] = _take(d.amount, current)
        if not rest or rest[-1].layer is Layer.ITEM:
            deposit = _take_deposit(priced.deposit_credit, members, current)
        for n, (j, line) in enumerate(zip(group, members, strict=True)):
            discounts = []
            for d in priced.discounts:
                price = by_price.get(d.promotion_id) if d.layer is Layer.ITEM else None
                amount = (price if price is not None else shares[d.promotion_id, d.coupon_code])[n]
                if amount:
                    discounts.append(LineDiscount(d.promotion_id, d.layer, amount, d.coupon_code))
                    parts_of.setdefault((d.promotion_id, d.coupon_code), {})[j] = amount
            out_lines[j] = PricedLine(line.line_id, line.sku, line.unit_price, line.quantity, line.amount,
                                      tuple(discounts), line.deposit_paid * line.quantity, deposit[n],
                                      current[n])
    applied = []
    for a in result.applied:
        coupon = a.coupon_code if a.layer is not Layer.POINTS else None
        found = parts_of.get((a.promotion_id, coupon), {})
        applied.append(replace(a, per_line=tuple((lines[j].line_id, found[j]) for j in sorted(found))))
    priced_lines = [line for line in out_lines if line is not None]
    return replace(result, lines=(*priced_lines, *result.lines[len(groups):]), applied=tuple(applied))


def _take(amount: int, current: list[int]) -> list[int]:
    """``amount`` spread over lines by what is left of them (largest remainder), taken off ``current``."""
    if not amount:
        return [0] * len(current)
    parts = allocate(amount, list(current))
    for n, part in enumerate(parts):
        current[n] -= part
    return parts


def _take_deposit(credit: int, members: list[Line], current: list[int]) -> list[int]:
    """A merged line's deposit credit over its lines: each up to its own credit and what is left of
    it first, the rest (if the merged line's cap let more through) by what is left."""
    if not credit:
        return [0] * len(members)
    room = [min(line.deposit_credit * line.quantity, left)
            for line, left in zip(members, current, strict=True)]
    first = min(credit, sum(room))
    parts = allocate(first, room) if first else [0] * len(members)
    for n, part in enumerate(parts):
        current[n] -= part
    extra = _take(credit - first, current)
    return [a + b for a, b in zip(parts, extra, strict=True)]



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
        check(line_id in by_id, f"already_refunded[{line_id!r}]", "no such line in the priced cart")
    total = 0
    for line_id, quantity in quantities.items():
        line = by_id.get(line_id)
        check(line is not None, f"quantities[{line_id!r}]", "no such line in the priced cart")
        assert line is not None
        before = done.get(line_id, 0)
        check(quantity >= 0, f"quantities[{line_id!r}]", "must not be negative")
        check(before >= 0, f"already_refunded[{line_id!r}]", "must not be negative")
        check(before + quantity <= line.quantity, f"quantities[{line_id!r}]",
               f"{before} already refunded + {quantity} exceeds the {line.quantity} bought")
        units = allocate(line.paid, [1] * line.quantity)
        total += sum(units[before:before + quantity])
    return total
