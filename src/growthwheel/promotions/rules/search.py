"""The search engine of the pricing core: layer evaluation and the exact search.

:class:`Engine` prices selections of candidate promotions layer by layer (memoised on bit masks)
and finds the cheapest compatible combination exactly (:meth:`Engine.exact`); past its bounds the
caller runs the layer-by-layer fallback (:func:`.fallback.layered`). The candidates and reward amounts
are in :mod:`.amounts`, which selections are priced in :mod:`.selection`, the per-selection bounds of
the exact search in :mod:`.bounds`. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from growthwheel.promotions.rules.amounts import (
    NO_AMOUNT,
    Cand,
    Fill,
    LayerOut,
    Offer,
    _spread,
    eligible_lines,
    fill_units,
    line_item_discounts,
    order_amount,
)
from growthwheel.promotions.rules.bounds import MaskBounds, Taker
from growthwheel.promotions.rules.fallback import LAYER_SEARCH_LIMIT, layered
from growthwheel.promotions.rules.model import (
    BASIS,
    Cart,
    EveryXOffY,
    GiftWithPurchase,
    Layer,
    SpendTiers,
)
from growthwheel.promotions.rules.selection import (
    EXACT_SEARCH_BRANCHES,
    EXACT_SEARCH_LIMIT,
    Selections,
    _bits,
)

__all__ = [
    "EXACT_SEARCH_BRANCHES", "EXACT_SEARCH_LIMIT", "LAYER_SEARCH_LIMIT", "NO_AMOUNT", "Cand", "Engine",
    "Fill", "LayerOut", "Offer", "eligible_lines", "fill_units", "layered", "line_item_discounts",
    "order_amount",
]

#: In a branch, the exact search bounds this many item selections from their item layer, the rest
#: from per-line memos (:class:`~.bounds.MaskBounds`; the same numbers, cheaper past a few selections).
DIRECT_BOUNDS = 1


def _sort_key(c: Cand) -> tuple[int, str, str]:
    return c.facts.sort_key


class Engine(Selections):
    """One pricing run: the cart, the competing candidates and memoised layer evaluations.

    Selections are bit masks over the candidates' ``idx`` (a selection's promotions are always taken
    in ``idx`` order, except for the greedy fallback's own order), compatibility is one mask per
    candidate, and layer results are memoised: the item layer by selection, an order / coupon layer
    by (what the previous layer left, selection), so the combinations sharing an item or an order
    selection — the prefix of the search — reuse it.
    """

    #: Check every memoised bound of the exact search (:class:`MaskBounds`) against the item layer of
    #: its selection (tests set it; an :class:`AssertionError` names the selection that differs).
    check_bounds = False

    def __init__(self, cart: Cart, candidates: list[Cand], comp: list[int]) -> None:
        self.cart = cart
        self.lines = cart.lines
        self.amounts = tuple([line.unit_price * line.quantity for line in cart.lines])
        self.credits = tuple([line.deposit_credit * line.quantity for line in cart.lines])
        #: Per line, its amount less its deposit credit (what the item layer's discounts come off).
        self.net_amounts = tuple([amount - credit for amount, credit in zip(self.amounts, self.credits,
                                                                            strict=True)])
        self.candidates = candidates
        #: comp[i]: the candidates that may apply together with candidate i (bit i itself is set when
        #: an exclusive promotion does not list its own id or layer: only the explanation reads it).
        self.comp = comp
        #: The same without bit i: what the clique search walks.
        self.neighbours = [mask & ~(1 << i) for i, mask in enumerate(comp)]
        everyone = (1 << len(candidates)) - 1
        #: The candidates that clash with some other candidate (the rest combine with everyone).
        self.clashing = sum([1 << i for i, mask in enumerate(self.neighbours) if mask | 1 << i != everyone])
        facts = [c.facts for c in candidates]
        by_layer: dict[Layer, list[Cand]] = {Layer.ITEM: [], Layer.ORDER: [], Layer.COUPON: []}
        for c in candidates:
            by_layer[c.promo.layer].append(c)
        for cands in by_layer.values():
            cands.sort(key=_sort_key)
        self.by_layer = by_layer
        self.layer_mask = {layer: sum([1 << c.idx for c in cands]) for layer, cands in self.by_layer.items()}
        masks: dict[tuple[int, ...], int] = {}  # many candidates share their lines (store-wide ones)
        self.line_mask = []
        for c in candidates:
            found = masks.get(c.eligible)
            if found is None:
                found = masks[c.eligible] = sum([1 << i for i in c.eligible])
            self.line_mask.append(found)
        self.is_price = [f.is_price for f in facts]
        #: Per candidate, whether it has a threshold (a minimum amount, 满减 tiers, 每满减).
        self.has_threshold = [f.has_threshold for f in facts]
        self._clique_cache: dict[tuple[int, int], list[int] | None] = {}
        self._common_cache: dict[int, int] = {}
        self._members_cache: dict[int, tuple[Cand, ...]] = {}
        self._maximal_cache: dict[tuple[int, int], list[int]] = {}  # (pool, limit) → maximal sets
        self._item_left_cache: dict[int, tuple[int, ...]] = {}
        n = len(self.amounts)
        self._item_sums_cache: dict[int, tuple[list[int], list[int], list[Fill]]] = {
            0: ([0] * n, [0] * n, [()] * n)}
        self._item_discount_cache: dict[int, int] = {0: 0}
        #: Item candidates peeled first (highest first) when a selection's item sums are built from a
        #: smaller one: the contested candidates of the branch being searched, so the selections of a
        #: branch share everything but their contested part, and a selection's parent is the one the
        #: enumeration (:meth:`selections`) listed before it. The sums do not depend on the order.
        self._peel_first = 0
        #: Per candidate: 0 an item reward, 1 an order reward taking an amount, 2 free shipping, 3 a
        #: gift; its minimum amount; the amount function of an amount-taking order reward.
        self.kind = [f.kind for f in facts]
        self.min_amount = [f.min_amount for f in facts]
        self.amount_of: list[Callable[[int, int], int] | None] = [f.amount for f in facts]
        self.discount_total = [sum(c.item_discounts) for c in candidates]
        self._item_cache: dict[tuple[int, ...], LayerOut] = {}
        self._ranked_cache: dict[tuple[int, int], list[tuple[int, int]] | None] = {}
        self._inner_cache: dict[int, int] = {}  # pool → its candidates clashing inside the pool
        self._order_cache: dict[tuple[tuple[int, ...], int, tuple[int, ...] | int], LayerOut] = {}
        self.most_alone: list[int] = []  # set by :meth:`exact`
        #: Set by :meth:`search`: it stopped at its first branch, before pricing anything.
        self._hopeless = False
        #: Per layer, the candidates :meth:`watching` counts (``(bit, lines)``), for the bases
        #: ``_watchers_of``.
        self._watchers: dict[Layer, list[tuple[int, int]]] = {}
        self._watchers_of: dict[int, int] | None = None
        self.waive_mask = self.takers_mask = 0

    def members(self, mask: int) -> tuple[Cand, ...]:
        """The candidates of a selection mask, in ``idx`` order."""
        found = self._members_cache.get(mask)
        if found is None:
            cands = self.candidates
            found = self._members_cache[mask] = tuple([cands[i] for i in _bits(mask)])
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
        per-promotion split: ``max(0, amount - price discounts - Σ other discounts - credit)``,
        which is what taking each discount in turn, capped at what is left, gives in any order."""
        found = self._item_left_cache.get(mask)
        if found is None:
            best, other, _fills = self.item_sums(mask)
            found = tuple([left if (left := net - b - o) > 0 else 0
                           for net, b, o in zip(self.net_amounts, best, other, strict=True)])
            self._item_left_cache[mask] = found
        return found

    def item_discount(self, mask: int) -> int:
        """The sum of the stand-alone item discounts of a selection (at least what it takes off)."""
        cache = self._item_discount_cache
        found = cache.get(mask)
        if found is not None:
            return found
        totals, peel = self.discount_total, self._peel_first
        chain: list[tuple[int, int]] = []
        m = mask
        while found is None:  # down to a cached selection (0 always is), contested bits first
            first = m & peel
            low = 1 << first.bit_length() - 1 if first else m & -m
            chain.append((m, low))
            m ^= low
            found = cache.get(m)
        for m, low in reversed(chain):
            found += totals[low.bit_length() - 1]
            cache[m] = found
        return found

    def item_sums(self, mask: int) -> tuple[list[int], list[int], list[Fill]]:
        """Per line, the price discount (every unit at its best price reward: :func:`fill_units`),
        the sum of the other item discounts of a selection, and how the units took the prices;
        memoised and built from a smaller selection one candidate at a time (the branch's contested
        candidates peeled first), so the many selections sharing a part cost one candidate each.

        The result does not depend on the order the candidates are added in: the other discounts
        are a sum, and a line's fill is its ``quantity`` largest per-unit offers by ``(discount,
        idx)``, which taking the best of the best of a part and the rest gives as well. The lists
        are shared between cache entries: never modify them."""
        cache = self._item_sums_cache
        found = cache.get(mask)
        if found is not None:
            return found
        peel = self._peel_first
        chain: list[tuple[int, int]] = []
        m = mask
        while found is None:  # down to a cached selection (0 always is), contested bits first
            first = m & peel
            low = 1 << first.bit_length() - 1 if first else m & -m
            chain.append((m, low))
            m ^= low
            found = cache.get(m)
        lines, candidates, is_price = self.lines, self.candidates, self.is_price
        best, other, fills = found
        for m, low in reversed(chain):
            j = low.bit_length() - 1
            cand = candidates[j]
            discounts = cand.item_discounts
            if is_price[j]:
                best, fills = list(best), list(fills)
                offers = cand.offers
                for i in cand.eligible:
                    offer = offers[i]
                    if not offer:
                        continue
                    held = fills[i]
                    quantity = lines[i].quantity
                    if not held:
                        fills[i] = fill_units(quantity, [(d, j, units) for d, units in offer])
                        best[i] = discounts[i]
                    elif (len(held) == 1 == len(offer) and held[0][1] == quantity == offer[0][1]):
                        if offer[0][0] > held[0][2] or (offer[0][0] == held[0][2] and j < held[0][0]):
                            fills[i] = ((j, quantity, offer[0][0]),)  # one price for all: the lowest
                            best[i] = discounts[i]
                    else:
                        fills[i] = fill_units(quantity, [*((d, idx, units) for idx, units, d in held),
                                                         *((d, j, units) for d, units in offer)])
                        best[i] = sum([units * d for _, units, d in fills[i]])
            else:
                other = list(other)
                for i in cand.eligible:
                    other[i] += discounts[i]
            found = cache[m] = (best, other, fills)
        return found

    def line_left(self, base: int, key: int, i: int) -> int:
        """``item_left(base | key)[i]`` worked out for line ``i`` alone: ``key`` holds candidates touching
        line ``i`` and none of ``base``. The other discounts add up; the price rewards fill the line's
        units by largest discount, as :meth:`item_sums` does whatever the order."""
        best_base, other_base, fills = self.item_sums(base)
        other = other_base[i]
        offers: list[tuple[int, int, int]] = []
        candidates, is_price = self.candidates, self.is_price
        rest = key
        while rest:
            low = rest & -rest
            rest ^= low
            j = low.bit_length() - 1
            if is_price[j]:
                offers.extend((d, j, units) for d, units in candidates[j].offers[i])
            else:
                other += candidates[j].item_discounts[i]
        if offers:
            offers.extend((d, idx, units) for idx, units, d in fills[i])
            best = sum([units * d for _, units, d in fill_units(self.lines[i].quantity, offers)])
        else:
            best = best_base[i]
        left = self.net_amounts[i] - best - other
        return left if left > 0 else 0

    def item_layer(self, chosen: tuple[Cand, ...]) -> LayerOut:
        """Item rewards on the undiscounted lines, then the presale deposit credit."""
        key = tuple([c.idx for c in chosen])
        cached = self._item_cache.get(key)
        if cached is not None:
            return cached
        n = len(self.lines)
        per_cand = {c.idx: [0] * n for c in chosen}
        remaining = list(self.amounts)
        deposit = [0] * n
        fills: list[Fill] = [()] * n
        offers: dict[int, list[tuple[int, int, int]]] = {}  # line → (per unit, candidate, units)
        for c in chosen:
            if self.is_price[c.idx]:
                for i in c.eligible:
                    for d, units in c.offers[i]:
                        offers.setdefault(i, []).append((d, c.idx, units))
        for i, line_offers in offers.items():  # one price per unit: each its lowest, ties in order
            fills[i] = fill_units(self.lines[i].quantity, line_offers)
            for idx, units, d in fills[i]:
                per_cand[idx][i] += units * d  # never above the unit price: no cap needed
                remaining[i] -= units * d
        for c in chosen:  # then the other discounts in turn, each line on its own
            if not self.is_price[c.idx]:
                parts, discounts = per_cand[c.idx], c.item_discounts
                for i in c.eligible:
                    take = min(discounts[i], remaining[i])
                    parts[i] = take
                    remaining[i] -= take
        for i in range(n):
            deposit[i] = min(self.credits[i], remaining[i])
            remaining[i] -= deposit[i]
        out = LayerOut(inputs=self.amounts, remaining=tuple(remaining),
                       allocations=tuple((c, tuple(per_cand[c.idx])) for c in chosen),
                       shipping_left=self.cart.shipping_fee, deposit=tuple(deposit), fills=tuple(fills))
        self._item_cache[key] = out
        return out

    def order_layer(self, inputs: tuple[int, ...], shipping_left: int,
                    chosen: tuple[Cand, ...], mask: int | None = None) -> LayerOut:
        """Order-type rewards (order or coupon layer) on what the previous layer left (``inputs``, and
        the shipping fee still due), each computed on the layer's input and allocated in turn over
        its eligible lines by what is left of them. ``mask``: the selection's mask when ``chosen``
        is in ``idx`` order (``members(mask)``), a cheaper memo key; a selection in ``idx`` order is
        keyed by its mask anyway, so the final pricing of the winner finds the search's result."""
        if mask is None:
            ids = [c.idx for c in chosen]
            in_order = ids == sorted(set(ids))  # else the greedy fallback's order
            key = (inputs, shipping_left, sum([1 << i for i in ids]) if in_order else tuple(ids))
        else:
            key = (inputs, shipping_left, mask)
        cached = self._order_cache.get(key)
        if cached is not None:
            return cached
        current = list(inputs)
        allocations: list[tuple[Cand, tuple[int, ...]]] = []
        shipping: list[tuple[Cand, int]] = []
        gifts: list[Cand] = []
        gift_value = 0
        n = len(inputs)
        zero = (0,) * n
        kinds, minimums, amount_of = self.kind, self.min_amount, self.amount_of
        total_in = -1  # Σ inputs, for the rewards over every line (worked out once)
        for c in chosen:
            idx = c.idx
            eligible = c.eligible
            if len(eligible) == n:
                if total_in < 0:
                    total_in = sum(inputs)
                base = total_in
            else:
                base = 0
                for i in eligible:
                    base += inputs[i]
            kind = kinds[idx]
            if base < minimums[idx]:
                allocations.append((c, zero))
            elif kind == 2:
                if shipping_left:
                    shipping.append((c, shipping_left))
                    shipping_left = 0
                allocations.append((c, zero))
            elif kind == 3:
                reward = c.promo.reward
                assert isinstance(reward, GiftWithPurchase)
                gifts.append(c)
                gift_value += reward.value * reward.quantity
                allocations.append((c, zero))
            else:
                function = amount_of[idx]
                assert function is not None
                amount = function(base, c.eligible_quantity)
                if amount and len(eligible) == 1:  # one line: all of it there, as far as it goes
                    i = eligible[0]
                    if amount > current[i]:
                        amount = current[i]
                    if amount:
                        parts = [0] * n
                        parts[i] = amount
                        current[i] -= amount
                        allocations.append((c, tuple(parts)))
                        continue
                room = 0
                if amount:
                    weights = [current[i] for i in eligible]
                    room = sum(weights)
                    if amount > room:
                        amount = room
                if amount:
                    parts = [0] * n
                    for i, part in zip(eligible, _spread(amount, weights, room), strict=True):
                        parts[i] = part
                        current[i] -= part
                    allocations.append((c, tuple(parts)))
                else:
                    allocations.append((c, zero))
        out = LayerOut(inputs=inputs, remaining=tuple(current), allocations=tuple(allocations),
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

    def min_bases(self) -> dict[int, int]:
        """A lower bound of each ORDER / COUPON candidate's base (its eligible lines at its layer's
        input) over every selection: the item layer with every item candidate at once (more item
        discounts only leave less), minus, for a coupon, the most each overlapping order candidate
        could take (its amount on the undiscounted lines: every order reward grows with its base)."""
        floor = self.item_left(self.layer_mask[Layer.ITEM])
        bases: dict[int, int] = {}
        most = self.most_alone
        order_most = [(self.line_mask[o.idx], most[o.idx]) for o in self.by_layer[Layer.ORDER]]
        total, every_line = sum(floor), len(floor)
        for d in self.by_layer[Layer.ORDER]:
            bases[d.idx] = total if len(d.eligible) == every_line else sum([floor[i] for i in d.eligible])
        for d in self.by_layer[Layer.COUPON]:
            mask = self.line_mask[d.idx]
            taken = sum([most for lines, most in order_most if lines & mask])
            bases[d.idx] = max(0, (total if len(d.eligible) == every_line
                                   else sum([floor[i] for i in d.eligible])) - taken)
        return bases

    def watching(self, layer: Layer, bases: dict[int, int], universe: int) -> int:
        """The lines a threshold of ``layer`` (among ``universe``) measures (``min_amount``, 满减 tiers,
        a 每满减 cap), leaving out the thresholds every selection clears: the base can never fall below
        the minimum amount, the top 满减 tier, or the amount at which the 每满减 cap is reached. Such a
        reward is constant over every reachable base, like a plain amount off. Whether a candidate
        watches does not depend on the universe: worked out once per ``bases``."""
        if self._watchers_of is not bases:
            self._watchers = {}
            self._watchers_of = bases
        watchers = self._watchers.get(layer)
        if watchers is None:
            watchers = self._watchers[layer] = []
            has_threshold = self.has_threshold
            for d in self.by_layer[layer]:
                if not has_threshold[d.idx]:
                    continue
                base, reward = bases[d.idx], d.promo.reward
                saturated = base >= d.promo.conditions.min_amount
                if isinstance(reward, SpendTiers):
                    saturated = saturated and base >= reward.tiers[-1][0]
                elif isinstance(reward, EveryXOffY):
                    cap = reward.cap
                    saturated = saturated and cap is not None and base // reward.every * reward.off >= cap
                if not saturated:
                    watchers.append((1 << d.idx, self.line_mask[d.idx]))
        watched = 0
        for bit, lines in watchers:
            if universe & bit:
                watched |= lines
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
            kinds, line_mask = self.kind, self.line_mask
            spreading = [line_mask[d.idx] for d in self.by_layer[Layer.ORDER]
                         if universe >> d.idx & 1 and kinds[d.idx] == 1]  # (not NO_AMOUNT)
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

    def exact(self) -> tuple[tuple[tuple[Cand, ...], ...], bool] | None:
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
        # Per ORDER / COUPON candidate taking an amount: that amount on the undiscounted lines, the
        # most it can ever take (every order reward grows with its base); 0 for the others.
        self.most_alone = [0] * len(self.candidates)
        self.waive_mask = self.takers_mask = 0
        amounts, kinds, every_line = self.amounts, self.kind, len(self.amounts)
        total = sum(amounts)
        for d in self.candidates:
            kind = kinds[d.idx]
            if kind == 2:  # free shipping
                self.waive_mask |= 1 << d.idx
            elif kind == 1:
                self.takers_mask |= 1 << d.idx
                function = self.amount_of[d.idx]
                assert function is not None
                self.most_alone[d.idx] = function(
                    total if len(d.eligible) == every_line else sum([amounts[i] for i in d.eligible]),
                    d.eligible_quantity)
        bases = self.min_bases()
        everything = (1 << len(self.candidates)) - 1
        universes = self.branches()
        self._hopeless = False
        found = self.search(universes, coarse_points, bases) if universes is not None else None
        if found is None and universes != [everything] and not self._hopeless:
            # Splitting can cost more than it frees (each branch repeats the contested candidates):
            # the whole set in one piece, as if it had no cross-layer conflict to split on. Not when
            # the first branch already had too many contested candidates: the whole set holds every
            # one of them, and a candidate free in the whole set is free in each branch (its later
            # thresholds and conflicts are fewer there), so it has at least as many.
            found = self.search([everything], coarse_points, bases)
        return found

    def search(self, universes: list[int], coarse_points: bool,
               bases: dict[int, int]) -> tuple[tuple[tuple[Cand, ...], ...], bool] | None:
        """The exhaustive search of :meth:`exact` over the given branches; ``None`` past the limit."""
        layers = (Layer.ITEM, Layer.ORDER, Layer.COUPON)
        shipping_fee = self.cart.shipping_fee
        best: tuple[int, int, int] | None = None
        best_masks = (0, 0, 0)
        evaluated = 0
        # Cheapest bound first: goods are at least the undiscounted goods minus every item discount
        # of the selection, points at most what the undiscounted goods allow.
        net = sum([max(0, amount - credit)
                   for amount, credit in zip(self.amounts, self.credits, strict=True)])
        points_most = self.most_points(net)
        later_layers = self.layer_mask[Layer.ORDER] | self.layer_mask[Layer.COUPON]
        # A floor under every total of a branch: its whole item layer at once, every later reward at
        # its most, the most points. A branch whose floor is above the best total found cannot hold
        # the best (nor tie with it): skipped, which only ever leaves more of the limit to the rest.
        for universe in universes:
            if best is not None:
                left = sum(self.item_left(self.layer_mask[Layer.ITEM] & universe))
                later = later_layers & universe
                most = sum([self.most_alone[i] for i in _bits(later & self.takers_mask)])
                ship = 0 if later & self.waive_mask else shipping_fee
                if max(0, left - most) - points_most + ship > best[0]:
                    continue
            free: dict[Layer, int] = {}
            contested = 0
            for layer in layers:  # (a layer past the limit already spares the next ones)
                free[layer] = layer_free = self.free(layer, coarse_points, bases, universe)
                contested += (self.layer_mask[layer] & universe).bit_count() - layer_free.bit_count()
                if evaluated + 2 ** contested > EXACT_SEARCH_LIMIT:
                    # Before anything was priced, the whole set in one piece is past the limit too:
                    # a larger universe never frees more of these candidates (:meth:`exact`).
                    self._hopeless = not evaluated
                    return None
            self._peel_first = self.layer_mask[Layer.ITEM] & universe & ~free[Layer.ITEM]
            ranked = self.ranked_items(self.layer_mask[Layer.ITEM] & universe, free[Layer.ITEM])
            if ranked is None:
                return None
            later = later_layers & universe
            waives = bool(later & self.waive_mask)
            takers: list[Taker] = []
            most_off = 0  # what the later rewards can take at most, whatever the item layer leaves
            every_line = len(self.lines)
            for d in self.members(later & self.takers_mask):
                function = self.amount_of[d.idx]
                assert function is not None
                takers.append((function, None if len(d.eligible) == every_line else d.eligible,
                               d.eligible_quantity))
                most_off += self.most_alone[d.idx]
            shipping = 0 if waives else shipping_fee
            use = self.cart.points
            points_cap, share = ((0, 0) if use is None
                                 else (use.points * use.minor_per_point, use.max_share_bp))
            item_left_of = self.item_left
            # The two bounds below read what the item layer leaves from per-line memos past a few
            # selections (:class:`MaskBounds`: the same numbers, the item layer not built for
            # selections that are cut anyway).
            bounds: MaskBounds | None = None
            direct = 0  # selections bounded from their item layer (before the memos pay)
            # Most item discount first, so that a good total is found early and prunes the rest.
            for minus_discount, item_mask in ranked:
                if best is not None:
                    floor = net + minus_discount - most_off
                    if (floor if floor > 0 else 0) - points_most + shipping > best[0]:
                        # Cannot win, not even on a tie; nor can any later selection (less discount
                        # and a best total that only falls): skipped like them, uncounted.
                        break
                    # Two lower bounds of every total over this item-layer result: the later rewards
                    # at their most on the undiscounted lines, then each amount-taking later reward
                    # at what it gives on its lines as the item layer left them (the most it can:
                    # order rewards grow with their base, and a coupon's base is at most that);
                    # shipping waived if a later promotion may waive it, the most points used.
                    item_left = None
                    if bounds is None and direct < DIRECT_BOUNDS:
                        direct += 1
                        item_left = item_left_of(item_mask)
                        goods = sum(item_left)
                    else:
                        if bounds is None:
                            bounds = MaskBounds(ranked, self.line_mask, takers, item_left_of, self.line_left)
                        goods = bounds.goods(item_mask)
                    most_points = goods * share // BASIS
                    if most_points > points_cap:
                        most_points = points_cap
                    rest = goods - most_off
                    if (rest if rest > 0 else 0) - most_points + shipping > best[0]:
                        continue
                    if item_left is not None:
                        off = 0
                        for function, eligible, quantity in takers:
                            if eligible is None:
                                off += function(goods, quantity)
                            else:
                                base = 0
                                for i in eligible:
                                    base += item_left[i]
                                off += function(base, quantity)
                    else:
                        assert bounds is not None
                        off = bounds.off(item_mask, goods)
                        if self.check_bounds:
                            self._check_bounds(item_mask, takers, goods, off, bounds)
                    rest = goods - off
                    if (rest if rest > 0 else 0) - most_points + shipping > best[0]:
                        continue
                item_left = item_left_of(item_mask)
                after_item = self.common(item_mask) & universe
                order_sets = self.selections(self.layer_mask[Layer.ORDER] & after_item, free[Layer.ORDER],
                                             EXACT_SEARCH_LIMIT)
                if order_sets is None:
                    return None
                for order_mask in order_sets:
                    order_out = self.order_layer(item_left, shipping_fee, self.members(order_mask),
                                                 order_mask)
                    after_order = after_item & self.common(order_mask)
                    coupon_sets = self.selections(self.layer_mask[Layer.COUPON] & after_order,
                                                  free[Layer.COUPON], EXACT_SEARCH_LIMIT)
                    if coupon_sets is None:
                        return None
                    for coupon_mask in coupon_sets:
                        evaluated += 1
                        if evaluated > EXACT_SEARCH_LIMIT:
                            return None
                        if coupon_mask:
                            coupon_out = self.order_layer(order_out.remaining, order_out.shipping_left,
                                                          self.members(coupon_mask), coupon_mask)
                            remaining, shipping_left = coupon_out.remaining, coupon_out.shipping_left
                            gift_value = order_out.gift_value + coupon_out.gift_value
                        else:  # no coupon: the order layer's result as it is
                            remaining, shipping_left = order_out.remaining, order_out.shipping_left
                            gift_value = order_out.gift_value
                        _, value = self.points(remaining)
                        rank = (sum(remaining) - value + shipping_left, -gift_value,
                                (item_mask | order_mask | coupon_mask).bit_count())
                        masks = (item_mask, order_mask, coupon_mask)
                        if (best is None or rank < best
                                or (rank == best and self._ids_before(masks, best_masks))):
                            best, best_masks = rank, masks
        assert best is not None  # the empty selection is always there
        return tuple(self.members(mask) for mask in best_masks), True

    def _check_bounds(self, mask: int, takers: list[Taker], goods: int, off: int, bounds: MaskBounds) -> None:
        """With :attr:`check_bounds`: the memoised bounds of a selection (:class:`MaskBounds`), and its
        memoised lines, against what its item layer gives directly."""
        item_left = self.item_left(mask)
        direct = 0
        for function, eligible, quantity in takers:
            base = sum(item_left) if eligible is None else sum([item_left[i] for i in eligible])
            direct += function(base, quantity)
        lines = [(i, bounds.current[i], item_left[i]) for i, _, _ in bounds.lines]
        if (sum(item_left), direct) != (goods, off) or any(a != b for _, a, b in lines):
            raise AssertionError(f"selection {mask:#x}: memoised goods, off {(goods, off)}, lines {lines} "
                                 f"!= {(sum(item_left), direct)} of its item layer")

    def most_points(self, goods: int) -> int:
        """The most the customer's points can pay on goods worth at most ``goods``."""
        use = self.cart.points
        return 0 if use is None else min(use.points * use.minor_per_point, goods * use.max_share_bp // BASIS)

    def _ids_before(self, these: tuple[int, ...], those: tuple[int, ...]) -> bool:
        """The last tie-break: whether the sorted ids of ``these`` selections come first."""
        def ids(masks: tuple[int, ...]) -> tuple[str, ...]:
            return tuple(sorted(c.rank_id for mask in masks for c in self.members(mask)))
        return ids(these) < ids(those)
