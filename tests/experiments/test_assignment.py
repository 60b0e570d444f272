"""Assignment by hashing: deterministic, uniform, weights honoured, layers exclusive, traffic share,
and changes to a running experiment move as few units as they must."""

from __future__ import annotations

import hashlib

import numpy as np
from scipy import stats

from growthwheel.experiments.assignment import (
    LAYER_BUCKETS,
    Plan,
    assign,
    free_range,
    layer_bucket,
    unit_hash,
)

IDS = [f"customer-{i}" for i in range(100_000)]


def test_the_hash_is_the_documented_sha256_prefix() -> None:
    # Worked out independently: first 8 bytes of SHA-256("salt:unit-42"), big-endian, / 2**64.
    digest = hashlib.sha256(b"salt:unit-42").hexdigest()
    assert unit_hash("salt", "unit-42") == int(digest[:16], 16) / 2**64
    assert unit_hash("salt", "unit-42") == unit_hash("salt", "unit-42")
    assert unit_hash("salt", "unit-42") != unit_hash("other", "unit-42")


def test_hash_is_uniform_over_100k_ids() -> None:
    values = np.array([unit_hash("pdp-test", u) for u in IDS])
    assert values.min() >= 0
    assert values.max() < 1
    counts = np.histogram(values, bins=100, range=(0, 1))[0]
    assert stats.chisquare(counts).pvalue > 0.001


def test_assignment_is_sticky_and_weights_are_honoured() -> None:
    plan = Plan(salt="s1", variants=("control", "b", "c"), weights=(0.2, 0.3, 0.5))
    first = [assign(plan, u).variant for u in IDS]
    assert first == [assign(plan, u).variant for u in IDS]
    observed = [first.count(v) for v in plan.variants]
    expected = [w * len(IDS) for w in plan.weights]
    assert stats.chisquare(observed, expected).pvalue > 0.001
    assert {assign(plan, u).reason for u in IDS[:100]} == {"assigned"}


def test_traffic_share_and_ramp_up_keeps_assigned_units() -> None:
    low = Plan(salt="s2", variants=("a", "b"), weights=(0.5, 0.5), traffic=0.2)
    high = Plan(salt="s2", variants=("a", "b"), weights=(0.5, 0.5), traffic=0.5)
    before = {u: assign(low, u) for u in IDS}
    after = {u: assign(high, u) for u in IDS}
    share = sum(a.in_experiment for a in before.values()) / len(IDS)
    assert abs(share - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(IDS))
    assert {a.reason for a in before.values() if not a.in_experiment} == {"not_in_traffic"}
    kept = [u for u, a in before.items() if a.in_experiment]
    assert all(after[u].variant == before[u].variant for u in kept)  # nobody in leaves or switches
    share = sum(a.in_experiment for a in after.values()) / len(IDS)
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / len(IDS))


def test_changing_weights_moves_only_the_units_it_must() -> None:
    even = Plan(salt="s3", variants=("a", "b"), weights=(0.5, 0.5))
    tilted = Plan(salt="s3", variants=("a", "b"), weights=(0.6, 0.4))
    moved = sum(assign(even, u).variant != assign(tilted, u).variant for u in IDS) / len(IDS)
    # The least any scheme can move is |Δw| = 0.1 of the units (all from b to a).
    assert abs(moved - 0.1) < 4 * np.sqrt(0.1 * 0.9 / len(IDS))
    assert all(assign(tilted, u).variant == "a" for u in IDS[:2000] if assign(even, u).variant == "a")


def test_experiments_in_one_layer_never_share_a_unit() -> None:
    one = Plan(salt="x", variants=("a", "b"), weights=(0.5, 0.5), layer="checkout", bucket_start=0,
               bucket_end=3000)
    two = Plan(salt="y", variants=("a", "b"), weights=(0.5, 0.5), layer="checkout", bucket_start=3000,
               bucket_end=8000)
    in_one = {u for u in IDS if assign(one, u).in_experiment}
    in_two = {u for u in IDS if assign(two, u).in_experiment}
    assert in_one.isdisjoint(in_two)
    assert abs(len(in_one) / len(IDS) - 0.3) < 0.01
    assert abs(len(in_two) / len(IDS) - 0.5) < 0.01
    assert all(0 <= layer_bucket("checkout", u) < LAYER_BUCKETS for u in IDS[:1000])
    # A unit of another layer is placed independently: about 30% of `one`'s units are in a
    # same-sized range of a different layer.
    other = Plan(salt="z", variants=("a", "b"), weights=(0.5, 0.5), layer="search", bucket_start=0,
                 bucket_end=3000)
    overlap = sum(assign(other, u).in_experiment for u in in_one) / len(in_one)
    assert abs(overlap - 0.3) < 0.02


def test_not_running_or_not_targeted_units_get_no_variant() -> None:
    stopped = Plan(salt="s", variants=("a", "b"), weights=(0.5, 0.5), running=False)
    assert (assign(stopped, "u").variant, assign(stopped, "u").reason) == (None, "not_running")
    running = Plan(salt="s", variants=("a", "b"), weights=(0.5, 0.5))
    assert assign(running, "u", targeted=False).reason == "not_targeted"


def test_free_range_finds_room_and_keeps_a_ramping_range_in_place() -> None:
    assert free_range([], 3000) == (0, 3000)
    assert free_range([(0, 3000)], 5000) == (3000, 8000)
    assert free_range([(0, 3000), (3000, 8000)], 3000) is None
    assert free_range([(0, 3000), (3000, 8000)], 2000) == (8000, 10_000)
    # Ramping [3000, 5000) up to 3,000 buckets keeps its start; blocked, it moves to the first gap.
    assert free_range([(0, 3000)], 3000, keep=(3000, 5000)) == (3000, 6000)
    assert free_range([(0, 3000), (5000, 6000)], 3000, keep=(3000, 5000)) == (6000, 9000)
