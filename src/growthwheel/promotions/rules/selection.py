"""Which selections the search engine (:mod:`.search`) prices: bit-mask helpers, the compatible
subsets of a layer (Bron–Kerbosch on bit masks), the item selections ranked by discount and the
branches without a conflict across layers. :class:`Selections` is a part of
:class:`~.search.Engine`. No I/O.
"""

from __future__ import annotations

from growthwheel.promotions.rules.amounts import Cand
from growthwheel.promotions.rules.model import Layer

#: The exhaustive search prices at most this many complete combinations (an item selection × an
#: order selection × a coupon selection); past it the engine restarts with the layer-by-layer
#: fallback, which is deterministic too but not guaranteed optimal across layers.
EXACT_SEARCH_LIMIT = 128
#: The exact search splits the candidates into at most this many branches without a conflict across
#: layers (:meth:`Engine.branches`); past it the fallback runs.
EXACT_SEARCH_BRANCHES = 16


#: ``_BYTE_BITS[k][b]``: the positions of the set bits of byte ``b`` at byte ``k`` of a mask.
_BYTE_BITS = [[tuple(8 * k + i for i in range(8) if b >> i & 1) for b in range(256)] for k in range(32)]


def _subsets(bits: list[int], base: int) -> list[int]:
    """``base`` with every subset of the positions ``bits`` added (``2 ** len(bits)`` masks)."""
    out = [base]
    for b in bits:
        bit = 1 << b
        out += [m | bit for m in out]
    return out


def _bits(mask: int) -> list[int]:
    """The positions of the set bits of ``mask`` (not negative), lowest first (a byte at a time)."""
    out: list[int] = []
    k = 0
    while mask:
        byte = mask & 255
        if byte:
            if k < 32:
                out.extend(_BYTE_BITS[k][byte])
            else:
                out.extend(8 * k + i for i in range(8) if byte >> i & 1)
        mask >>= 8
        k += 1
    return out


class Selections:
    """The selection enumeration of :class:`~.search.Engine` (which sets these attributes)."""

    candidates: list[Cand]
    comp: list[int]
    neighbours: list[int]
    clashing: int
    layer_mask: dict[Layer, int]
    discount_total: list[int]
    _clique_cache: dict[tuple[int, int], list[int] | None]
    _maximal_cache: dict[tuple[int, int], list[int]]
    _inner_cache: dict[int, int]
    _ranked_cache: dict[tuple[int, int], list[tuple[int, int]] | None]

    def item_discount(self, mask: int) -> int:
        """The sum of the stand-alone item discounts of a selection (:class:`~.search.Engine`'s)."""
        raise NotImplementedError

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
        if self._conflict_free(allowed):
            # The usual case: nothing in ``allowed`` clashes, so the compatible subsets of the bound
            # candidates are all of them, each completed by every free one (the one maximal set).
            subsets = None if 1 << len(bound) > limit else _subsets(bound, loose)
            self._clique_cache[key] = subsets
            return subsets
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

        inner_cache = self._inner_cache

        def extend(start: int, chosen: int, ok: int) -> bool:
            pool = loose & ok
            # A candidate that combines with every other one of the pool is in every maximal set of
            # the pool: only the ones clashing inside the pool need Bron–Kerbosch.
            clashing = inner_cache.get(pool)
            if clashing is None:
                clashing = 0
                for u in _bits(pool & self.clashing):
                    if pool & ~neighbours[u] & ~(1 << u):
                        clashing |= 1 << u
                inner_cache[pool] = clashing
            cliques = self._maximal_cache.get((clashing, limit))
            if cliques is None:  # (a list cut at one limit must not serve another)
                cliques = []
                maximal(0, clashing, 0, cliques)
                self._maximal_cache[clashing, limit] = cliques
            common = chosen | (pool & ~clashing)
            found.extend(common | clique for clique in cliques)
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

    def _conflict_free(self, allowed: int) -> bool:
        """Whether no two candidates of ``allowed`` clash."""
        neighbours = self.neighbours
        for u in _bits(allowed & self.clashing):
            if allowed & ~neighbours[u] & ~(1 << u):
                return False
        return True

    def branches(self) -> list[int] | None:
        """Sub-universes of candidates without a conflict across layers, which together hold every
        compatible selection; ``None`` past :data:`EXACT_SEARCH_BRANCHES`.

        An exclusive 满减 conflicts with every item promotion, so none of those is free (taking it
        may lose the 满减). Split on the candidate ``v`` with most conflicts in other layers: every
        compatible selection either leaves ``v`` out, or may hold ``v`` and then none of those
        conflicts; repeat until no cross-layer conflict is left. Inside a branch, free candidates
        (:meth:`free`) are found as if the conflicts did not exist.
        """
        everything = (1 << len(self.candidates)) - 1
        others = {layer: everything & ~mask for layer, mask in self.layer_mask.items()}
        cross = [~self.comp[c.idx] & others[c.promo.layer] for c in self.candidates]
        # Most conflicts first (ties by idx): a candidate with fewer conflicts in all than the pivot
        # found has in the universe cannot be the pivot, nor can any after it.
        counts = [mask.bit_count() for mask in cross]
        conflicted = sorted([i for i, mask in enumerate(cross) if mask], key=counts.__getitem__,
                            reverse=True)  # (stable: ties keep idx order)
        done: list[int] = []
        todo = [(1 << len(self.candidates)) - 1]
        while todo:
            universe = todo.pop()
            pivot, most = -1, 0  # the most conflicts in the universe, the lowest idx on a tie
            for i in conflicted:
                if counts[i] < most:
                    break
                if not universe >> i & 1:
                    continue
                count = (cross[i] & universe).bit_count()
                if count > most or (count == most and count and i < pivot):
                    pivot, most = i, count
            if pivot < 0:
                done.append(universe)
                if len(done) > EXACT_SEARCH_BRANCHES:
                    return None
                continue
            todo.append(universe & ~cross[pivot])  # v may apply: its conflicts may not
            todo.append(universe & ~(1 << pivot))  # v does not apply
        return done

    def ranked_items(self, allowed: int, free: int) -> list[tuple[int, int]] | None:
        """The item selections of :meth:`selections` as ``(-item discount, mask)``, most discount first
        (ties by mask); ``None`` past the limit. Memoised by ``(allowed, free)``."""
        key = (allowed, free)
        if key in self._ranked_cache:
            return self._ranked_cache[key]
        found: list[tuple[int, int]] | None
        if self._conflict_free(allowed):
            # Every subset of the bound candidates with every free one (:meth:`selections`), the
            # discounts summed along as the subsets are built.
            bound = _bits(allowed & ~free)
            found = None
            if 1 << len(bound) <= EXACT_SEARCH_LIMIT:
                totals = self.discount_total
                loose = allowed & free
                ranked = [(-sum([totals[i] for i in _bits(loose)]), loose)]
                for b in bound:
                    bit, total = 1 << b, totals[b]
                    ranked += [(minus - total, mask | bit) for minus, mask in ranked]
                found = sorted(ranked)
            self._ranked_cache[key] = found
            return found
        masks = self.selections(allowed, free, EXACT_SEARCH_LIMIT)
        found = None
        if masks is not None:
            discount = self.item_discount
            found = sorted([(-discount(mask), mask) for mask in masks])
        self._ranked_cache[key] = found
        return found
