"""Deterministic, sticky assignment of units to experiment variants (pure: no I/O).

A unit (a customer id or an anonymous id) is placed by hashing, so the same unit always gets the
same answer without anything being stored, in any process, in any language that has SHA-256.

**The hash.** ``unit_hash(seed, unit_id)`` is the first 8 bytes of
``SHA-256(utf8(seed + ":" + unit_id))`` read as a big-endian unsigned integer and divided by 2⁶⁴:
a number uniform on [0, 1). Three independent hashes are used, each with its own seed, so that
the decisions they make do not interfere (as GrowthBook's hash v2 and PlanOut separate the
"in experiment" and "which variant" draws):

1. **Layer bucket** (only for an experiment in a layer): ``floor(unit_hash("layer:" + layer, id)
   × 10 000)``, a bucket in 0..9 999 shared by every experiment of the layer. Each experiment of
   the layer owns a disjoint range of buckets ``[bucket_start, bucket_end)``, so a unit is in at
   most one of them (mutual exclusion), and the size of the range *is* its traffic share.
2. **Traffic** (experiments outside a layer): the unit takes part when
   ``unit_hash(salt + ":traffic", id) < traffic``.
3. **Variant**: ``unit_hash(salt + ":variant", id)`` is looked up in the cumulative weights
   (control first): with weights 0.5/0.3/0.2 the ranges are [0, .5), [.5, .8), [.8, 1).

**Changing a running experiment.** Ramping traffic *up* keeps every unit already in (the traffic
threshold or the bucket range only grows, and the variant draw is independent of it); ramping
down removes only units above the new threshold. Changing the weights moves exactly the units
whose variant hash falls between an old and a new boundary of the cumulative ranges: for two
variants that is ``|Δw|`` of the units, the least any scheme can move; with more variants a
unit can move between non-adjacent variants only if a boundary crossed it. Units that moved are
seen in two variants; the analysis keeps the variant of each unit's first exposure and reports
how many units were exposed to more than one (analyse a changed split with care: a change of
weights mid-test mixes periods, a classic cause of Simpson's paradox).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

LAYER_BUCKETS = 10_000
"""Buckets of a layer; an experiment in a layer owns a range of them."""

Reason = Literal[
    "assigned",  # in the experiment, with a variant
    "not_running",  # draft or stopped: nobody is assigned
    "not_targeted",  # the unit is not in the target segment
    "not_in_traffic",  # outside the traffic share (or outside the experiment's layer range)
]


def unit_hash(seed: str, unit_id: str) -> float:
    """A number uniform on [0, 1) from ``seed`` and ``unit_id`` (see the module docstring)."""
    digest = hashlib.sha256(f"{seed}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def layer_bucket(layer: str, unit_id: str) -> int:
    """The unit's bucket (0 .. ``LAYER_BUCKETS`` − 1) in ``layer``, shared by the layer's experiments."""
    return int(unit_hash(f"layer:{layer}", unit_id) * LAYER_BUCKETS)


def pick_variant(weights: Sequence[float], draw: float) -> int:
    """The index of the variant whose cumulative-weight range holds ``draw`` (weights sum to 1)."""
    total = 0.0
    for index, weight in enumerate(weights):
        total += weight
        if draw < total:
            return index
    return len(weights) - 1  # rounding of the last boundary


@dataclass(frozen=True)
class Plan:
    """What assignment needs to know of an experiment."""

    salt: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    traffic: float = 1.0
    layer: str | None = None
    bucket_start: int = 0
    bucket_end: int = LAYER_BUCKETS
    running: bool = True


@dataclass(frozen=True)
class Assignment:
    """The answer for one unit: its variant (``None`` when not in the experiment) and why."""

    variant: str | None
    reason: Reason

    @property
    def in_experiment(self) -> bool:
        """Whether the unit is in the experiment (has a variant)."""
        return self.variant is not None


def assign(plan: Plan, unit_id: str, *, targeted: bool = True) -> Assignment:
    """Place ``unit_id`` in ``plan``; ``targeted=False`` when the unit fails the experiment's
    targeting (checked by the caller: e.g. not in the target segment)."""
    if not plan.running:
        return Assignment(None, "not_running")
    if not targeted:
        return Assignment(None, "not_targeted")
    if plan.layer is not None:
        bucket = layer_bucket(plan.layer, unit_id)
        if not plan.bucket_start <= bucket < plan.bucket_end:
            return Assignment(None, "not_in_traffic")
    elif unit_hash(f"{plan.salt}:traffic", unit_id) >= plan.traffic:
        return Assignment(None, "not_in_traffic")
    index = pick_variant(plan.weights, unit_hash(f"{plan.salt}:variant", unit_id))
    return Assignment(plan.variants[index], "assigned")


def buckets_for(traffic: float) -> int:
    """How many layer buckets a traffic share needs (at least one for a positive share)."""
    return max(1, round(traffic * LAYER_BUCKETS)) if traffic > 0 else 0


def free_range(taken: Sequence[tuple[int, int]], size: int, *, keep: tuple[int, int] | None = None
               ) -> tuple[int, int] | None:
    """A range of ``size`` buckets that overlaps none of ``taken`` (ranges of the layer's other
    running experiments), or ``None`` when the layer has no room.

    With ``keep`` (the experiment's current range, when it ramps up or down) the range keeps its
    start if it can, so units already in stay in; otherwise the lowest free range is chosen.
    """
    if size <= 0:
        return None
    spans = sorted(taken)

    def fits(start: int) -> bool:
        end = start + size
        return end <= LAYER_BUCKETS and all(end <= lo or start >= hi for lo, hi in spans)

    if keep is not None and fits(keep[0]):
        return keep[0], keep[0] + size
    candidates = [0, *(hi for _lo, hi in spans)]
    for start in sorted(candidates):
        if fits(start):
            return start, start + size
    return None
