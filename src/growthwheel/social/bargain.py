"""Bargain by friends (砍价), the pure part: the sequence of cuts, in integer minor units.

A bargain starts at price ``P`` and helpers cut it towards the floor ``F`` in exactly ``K`` cuts.
:func:`cut_sequence` gives all ``K`` cut amounts at once, deterministically from a seed (stored on
the bargain), so the n-th helper always gets the n-th amount whatever the timing, and no cut can
take the price below the floor: the amounts are whole minor units, each at least 1, and they sum
to ``P − F`` exactly, so the floor is reached at the K-th cut and never before or beyond.

**Distribution.** Each cut gets 1 minor unit, and the remaining ``P − F − K`` units are split by
largest remainder (``kit.money.allocate``) over weights ``w_i = j_i · q^i`` (``i = 0 … K−1``),
where ``q`` is the decay (4/5 by default) and ``j_i`` a jitter drawn uniformly from the integers
50 … 150 (±50 %). So the expected share of cut ``i`` falls geometrically: with ``q = 4/5`` the
first cut takes about ``1 − q = 20 %`` of the way when K is large, and the last cuts get the
minimum — the familiar "the first friends cut a lot, the last cents are slow" curve. ``q = 1``
gives cuts of equal expected size. Weights are exact integers (``j_i · a^i · b^(K−1−i)`` for
``q = a/b``), so the result does not depend on floating point.
"""

from __future__ import annotations

import random
from fractions import Fraction

from growthwheel.errors import InvalidArgumentError
from growthwheel.kit.money import allocate

MAX_CUTS = 500
"""More helper cuts than any shop would ask friends for; bounds the work per cut."""
DEFAULT_DECAY = Fraction(4, 5)
_JITTER = (50, 150)


def validate(start_price: int, floor_price: int, cuts: int) -> None:
    """Raise ``InvalidArgumentError`` naming the field unless the bargain can be cut as asked."""
    if floor_price < 0:
        raise InvalidArgumentError("floor_price: must not be negative")
    if start_price <= floor_price:
        raise InvalidArgumentError("start_price: must be above floor_price")
    if not 1 <= cuts <= MAX_CUTS:
        raise InvalidArgumentError(f"cuts: must be between 1 and {MAX_CUTS}")
    if start_price - floor_price < cuts:
        raise InvalidArgumentError(
            f"cuts: {cuts} cuts of at least one minor unit do not fit in start_price − floor_price "
            f"= {start_price - floor_price}"
        )


def cut_sequence(
    start_price: int, floor_price: int, cuts: int, seed: int, decay: Fraction = DEFAULT_DECAY
) -> list[int]:
    """The ``cuts`` amounts (minor units, each ≥ 1, summing to ``start_price − floor_price``).

    Deterministic in ``seed``; ``decay`` in (0, 1] sets how fast the expected cut shrinks (see the
    module docstring).
    """
    validate(start_price, floor_price, cuts)
    if not 0 < decay <= 1:
        raise InvalidArgumentError("decay: must be in (0, 1]")
    rng = random.Random(seed)
    a, b = decay.numerator, decay.denominator
    weights = [rng.randint(*_JITTER) * a**i * b ** (cuts - 1 - i) for i in range(cuts)]
    extra = allocate(start_price - floor_price - cuts, weights)
    return [1 + part for part in extra]


def price_after(start_price: int, sequence: list[int], done: int) -> int:
    """The price once the first ``done`` cuts of ``sequence`` are taken."""
    return start_price - sum(sequence[:done])
