"""The per-selection lower bounds of the exact search (:meth:`.search.Engine.search`), memoised by line.

For every item selection it ranks, the search checks two lower bounds of the totals it could reach
before pricing the later layers: what the item layer leaves (the goods) less the later rewards at
their most, and the goods less each amount-taking later reward at what it gives on its own lines as
the item layer left them. Both need what the item layer leaves, per line, for every selection.

The selections of one branch all hold the same *base* (the candidates every one of them holds) and
differ only in a few contested candidates, which touch few lines. A line's amount depends only on
the candidates of the selection that touch that line, so :class:`MaskBounds` keeps, per line touched
by a contested candidate, its amount by the contested candidates of the selection touching it (a few
entries each), and per later reward its amount by the contested candidates touching its lines. A
selection's two bounds then cost a dictionary look-up per such line and reward, not an item layer
(the values are the same numbers: the decisions of the search do not change). No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: An amount-taking later reward in the search's bound: its amount function, its eligible lines
#: (``None``: every line, its base is the goods) and its eligible quantity.
Taker = tuple[Callable[[int, int], int], tuple[int, ...] | None, int]
#: A later reward on some lines a contested candidate touches (:attr:`MaskBounds.partial`).
Partial = tuple[Callable[[int, int], int], int, int, tuple[int, ...], int, dict[int, int]]


class MaskBounds:
    """The goods and the later rewards' amounts of the search's bounds, for the item selections of one
    branch (``ranked``: ``(-discount, mask)`` pairs), from per-line and per-reward memos.

    ``item_left(mask)`` is the engine's :meth:`~.search.Engine.item_left` (read for the base),
    ``line_left(base, key, i)`` its :meth:`~.search.Engine.line_left`: ``item_left(base | key)[i]``. Each
    memo entry is line ``i`` of the item layer of the base plus the contested candidates touching
    it, which is what the item layer of the whole selection leaves there (a line's amount depends
    only on the candidates touching it)."""

    __slots__ = ("base", "const_off", "current", "fixed_goods", "line_left", "lines", "partial", "whole")

    def __init__(self, ranked: Sequence[tuple[int, int]], line_masks: Sequence[int], takers: Sequence[Taker],
                 item_left: Callable[[int], tuple[int, ...]],
                 line_left: Callable[[int, int, int], int]) -> None:
        base, span = -1, 0
        for _, mask in ranked:
            base &= mask
            span |= mask
        vary = span & ~base
        self.base = base
        self.line_left = line_left
        left = item_left(base)
        n = len(left)
        #: Per line, the contested candidates touching it.
        touching = [0] * n
        rest = vary
        while rest:
            low = rest & -rest
            rest ^= low
            lines = line_masks[low.bit_length() - 1]
            for i in range(n):
                if lines >> i & 1:
                    touching[i] |= low
        self.fixed_goods = sum([left[i] for i in range(n) if not touching[i]])
        #: ``(line, contested candidates touching it, its amount by those of the selection)``
        self.lines: list[tuple[int, int, dict[int, int]]] = [(i, touching[i], {}) for i in range(n)
                                                             if touching[i]]
        #: The later rewards over every line (base: the goods).
        self.whole: list[tuple[Callable[[int, int], int], int]] = []
        #: The later rewards on some lines touched by a contested candidate: ``(function, quantity, the
        #: base on their other lines, their touched lines, the contested candidates touching those,
        #: their amount by those of the selection)``.
        self.partial: list[Partial] = []
        #: The amounts of the later rewards no contested candidate can change.
        self.const_off = 0
        for function, eligible, quantity in takers:
            if eligible is None:
                self.whole.append((function, quantity))
                continue
            fixed, touched, key = 0, [], 0
            for i in eligible:
                if touching[i]:
                    touched.append(i)
                    key |= touching[i]
                else:
                    fixed += left[i]
            if key:
                self.partial.append((function, quantity, fixed, tuple(touched), key, {}))
            else:
                self.const_off += function(fixed, quantity)
        #: Per line, its amount in the selection :meth:`goods` was last asked about.
        self.current = [0] * n

    def goods(self, mask: int) -> int:
        """What the item layer of ``mask`` (one of the ranked selections) leaves in all."""
        goods = self.fixed_goods
        current = self.current
        for i, touching, amounts in self.lines:
            key = mask & touching
            amount = amounts.get(key)
            if amount is None:
                amount = amounts[key] = self.line_left(self.base, key, i)
            current[i] = amount
            goods += amount
        return goods

    def off(self, mask: int, goods: int) -> int:
        """The sum of the later rewards' amounts on what the item layer of ``mask`` leaves; ``goods``
        is :meth:`goods` of the same ``mask``, asked just before."""
        off = self.const_off
        for function, quantity in self.whole:
            off += function(goods, quantity)
        current = self.current
        for function, quantity, fixed, touched, touching, amounts in self.partial:
            key = mask & touching
            amount = amounts.get(key)
            if amount is None:
                base = fixed
                for i in touched:
                    base += current[i]
                amount = amounts[key] = function(base, quantity)
            off += amount
        return off
