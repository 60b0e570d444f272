"""The layer-by-layer fallback of the search engine (:mod:`.search`), past the exact search's bounds.

Each layer in turn takes its own best selection given the layers before it: every maximal compatible
selection up to :data:`~.search.LAYER_SEARCH_LIMIT`, else greedily. Deterministic, not guaranteed
optimal across layers (``PricedCart.exact`` is False). No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from growthwheel.promotions.rules.amounts import Cand, LayerOut
from growthwheel.promotions.rules.model import Layer

if TYPE_CHECKING:
    from growthwheel.promotions.rules.search import Engine

#: In the fallback, a layer still tries all of its maximal compatible selections up to this many;
#: beyond that it adds promotions greedily, largest stand-alone discount first (ties by id).
LAYER_SEARCH_LIMIT = 256


def layered(engine: Engine) -> tuple[tuple[tuple[Cand, ...], ...], bool]:
    """The engine's fallback: each layer in turn takes its own best selection given the layers before it."""
    chosen: list[tuple[Cand, ...]] = []
    ok = -1  # the candidates compatible with everything chosen so far
    before = engine.item_layer(())
    for layer in (Layer.ITEM, Layer.ORDER, Layer.COUPON):
        allowed = engine.layer_mask[layer] & ok
        masks = engine.selections(allowed, allowed, LAYER_SEARCH_LIMIT)
        options = ([engine.members(mask) for mask in masks] if masks is not None
                   else [greedy(engine, layer, allowed, before)])

        def layer_rank(selection: tuple[Cand, ...], layer: Layer = layer,
                       before: LayerOut = before) -> tuple[int, int, int]:
            if layer is Layer.ITEM:
                mask = 0
                for c in selection:
                    mask |= 1 << c.idx
                return (sum(engine.item_left(mask)) + before.shipping_left, 0, len(selection))
            after = engine.order_layer(before.remaining, before.shipping_left, selection)
            return (sum(after.remaining) + after.shipping_left, -after.gift_value, len(selection))

        pick, pick_rank = options[0], layer_rank(options[0])
        for option in options[1:]:
            rank = layer_rank(option)
            if rank < pick_rank or (rank == pick_rank and sorted(c.rank_id for c in option)
                                    < sorted(c.rank_id for c in pick)):
                pick, pick_rank = option, rank
        chosen.append(pick)
        for c in pick:
            ok &= engine.comp[c.idx]
        before = (engine.item_layer(pick) if layer is Layer.ITEM
                  else engine.order_layer(before.remaining, before.shipping_left, pick))
    return tuple(chosen), False


def greedy(engine: Engine, layer: Layer, allowed: int, before: LayerOut) -> tuple[Cand, ...]:
    """Largest stand-alone discount first (ties by priority and id), skipping incompatible ones."""
    def alone(c: Cand) -> int:
        if layer is Layer.ITEM:
            return sum(c.item_discounts)
        out = engine.order_layer(before.remaining, before.shipping_left, (c,))
        return sum(out.inputs) - sum(out.remaining) + before.shipping_left - out.shipping_left

    picked: list[Cand] = []
    picked_mask = 0
    for c in sorted(engine.members(allowed), key=lambda c: (-alone(c), c.sort_key)):
        if engine.comp[c.idx] & picked_mask == picked_mask:
            picked.append(c)
            picked_mask |= 1 << c.idx
    return tuple(picked)
