"""The promotion index: a shop's active set checked and indexed once to price many carts."""

from __future__ import annotations

from collections.abc import Iterable

from growthwheel.promotions.rules.amounts import Facts
from growthwheel.promotions.rules.model import (
    LAYER_ORDER,
    BundlePrice,
    Customer,
    GiftWithPurchase,
    Layer,
    Line,
    NotApplied,
    Promotion,
    QuantityTiers,
    check,
    compatible,
)
from growthwheel.promotions.rules.reasons import context_code, context_reason

LAYER_RANK = {layer: n for n, layer in enumerate(LAYER_ORDER)}


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
            check(promo.layer is not Layer.COUPON, f"promotions[{promo.id!r}].layer",
                   "coupon promotions apply through Cart.coupons")
            check(promo.id not in seen, "promotions", f"duplicate promotion id {promo.id!r}")
            seen.add(promo.id)
            given.append(promo)
        #: The promotions in the engine's order: by layer, then id.
        self.promotions: tuple[Promotion, ...] = tuple(sorted(given,
                                                              key=lambda p: (LAYER_RANK[p.layer], p.id)))
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
        # Conditions on the customer / moment, checked before the lines (the order of static_failure).
        self._context = tuple(
            c.starts_at is not None or c.ends_at is not None or bool(c.channels) or bool(c.tiers)
            or bool(c.segments) or c.first_order_only
            for c in (p.conditions for p in self.promotions))
        #: Promotions :func:`static_failure` can never refuse once a line qualifies (no context, no
        #: minimum quantity, no item minimum amount, no quantity tiers): the cart skips the call.
        self._unconditional = tuple(
            not self._context[pos] and not p.conditions.min_quantity
            and not (p.layer is Layer.ITEM and p.conditions.min_amount)
            and not isinstance(p.reward, QuantityTiers)
            for pos, p in enumerate(self.promotions))
        #: Store-wide bundles without other conditions: a cart holding none of their skus gets this
        #: ready-made "incomplete bundle" record without pricing them.
        self._absent_bundles = {
            pos: (frozenset(p.reward.skus), NotApplied(
                p.id, p.name, p.layer, "incomplete_bundle",
                f"add {', '.join(sorted(p.reward.skus))} to complete the bundle"))
            for pos, p in enumerate(self.promotions)
            if isinstance(p.reward, BundlePrice) and self._unconditional[pos]
            and not p.conditions.skus and not p.conditions.categories}
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
        self._context_records: dict[tuple[int, str | None], NotApplied] = {}
        #: What a promotion that no line qualifies for and has no context condition reports; the
        #: starting point of every cart's "did not apply" slots (``None``: look at the promotion).
        self._no_lines: tuple[NotApplied | None, ...] = tuple(
            None if self._context[pos] or pos in self._everywhere
            else NotApplied(p.id, p.name, p.layer, "no_eligible_lines", "no product in the cart qualifies")
            for pos, p in enumerate(self.promotions))
        #: Promotions every cart must look at: store-wide ones and ones with context conditions.
        self._always = tuple(pos for pos, record in enumerate(self._no_lines) if record is None)
        #: What the search engine reads of each promotion, worked out the first time a cart needs it
        #: (a memo, like ``_context_records``: an index built for one cart works out only its own).
        self._facts: list[Facts | None] = [None] * len(self.promotions)

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

    def _context_record(self, pos: int, customer: Customer) -> NotApplied:
        """What a promotion no line qualifies for reports: its first failing context condition, else
        "no eligible lines" (memoised by promotion and code: the reasons depend on its conditions)."""
        code = context_code(self.promotions[pos].conditions, customer)
        found = self._context_records.get((pos, code))
        if found is None:
            promo = self.promotions[pos]
            code_text, reason = ((code, context_reason(promo.conditions, code)) if code is not None
                                 else ("no_eligible_lines", "no product in the cart qualifies"))
            found = self._context_records[pos, code] = NotApplied(promo.id, promo.name, promo.layer,
                                                                  code_text, reason)
        return found
