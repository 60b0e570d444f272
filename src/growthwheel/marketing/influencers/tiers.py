"""Follower tiers of influencers (the pyramid 头部 / 腰部 / 尾部 / KOC).

The plans behind Growthwheel define head ≥ 1,000,000 followers, waist 100,000–500,000 and tail
< 10,000, which leaves two gaps (500,000–1,000,000 and 10,000–100,000) and no place for KOC. The
tiers here close the gaps without moving the plans' borders that are stated:

* ``head`` (头部) — 1,000,000 followers or more;
* ``waist`` (腰部) — 100,000 to 999,999: the plans' 500k upper end is their typical range, and an
  account of 700k is not yet head, so the gap belongs to waist;
* ``tail`` (尾部) — 10,000 to 99,999: the gap below waist;
* ``koc`` — under 10,000: the plans' "tail < 10k" are key opinion consumers (ordinary buyers with a
  small following), which is how operators book them (by product, not by fee).
"""

from __future__ import annotations

TIERS = ("head", "waist", "tail", "koc")
#: Lower bound (followers) of each tier, highest first.
TIER_FLOORS = (("head", 1_000_000), ("waist", 100_000), ("tail", 10_000), ("koc", 0))


def tier_of(followers: int) -> str:
    """The tier of an account with ``followers`` followers (see the module docstring)."""
    if followers < 0:
        raise ValueError("followers: zero or more")
    for name, floor in TIER_FLOORS:
        if followers >= floor:
            return name
    raise AssertionError("unreachable")  # pragma: no cover
