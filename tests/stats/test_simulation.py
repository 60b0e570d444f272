"""Seeded simulations: every method keeps its promised error rate.

On A/A data (both arms drawn from the same distribution) a test at alpha = 0.05 must reject about
5 % of the time: Welch on skewed revenue per user, the two-proportion test, CUPED, the ratio (AOV)
delta method. A fixed-horizon test read at every one of 20 looks rejects far more often (the
peeking problem); the always-valid sequential test read at the same 20 looks stays below 5 %.
With a real effect, the intervals cover the true value about 95 % of the time.

Tolerance: ±3.5 binomial standard deviations of the simulated rate (a false alarm about once in
2,000 runs if the method is right; the seeds are fixed, so the test is deterministic).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from growthwheel.stats.ab import Comparison, compare
from growthwheel.stats.sufficient import CupedMeanStats, MeanStats, ProportionStats, RatioStats, VariantStats

ALPHA = 0.05
SIMS = 2000
N = 1000  # units per arm


def tolerance(rate: float, sims: int) -> float:
    return 3.5 * math.sqrt(rate * (1 - rate) / sims)


def rejection_rate(pairs: list[tuple[VariantStats, VariantStats]]) -> float:
    rejected = [compare(a, b, alpha=ALPHA, bayesian=False).absolute.p_value < ALPHA for a, b in pairs]
    return float(np.mean(rejected))


def revenue(rng: np.random.Generator, shape: tuple[int, int], lift: float = 1.0) -> np.ndarray:
    """Revenue per user: 8 % buy, spend lognormal (heavy right tail)."""
    return (rng.random(shape) < 0.08) * rng.lognormal(4.0, 1.0, shape) * lift


def mean_stats(name: str, y: np.ndarray) -> list[MeanStats]:
    sums, squares = y.sum(1), (y * y).sum(1)
    return [MeanStats(name, y.shape[1], float(s), float(q)) for s, q in zip(sums, squares, strict=True)]


def test_welch_false_positive_rate_on_skewed_revenue() -> None:
    rng = np.random.default_rng(101)
    a, b = revenue(rng, (SIMS, N)), revenue(rng, (SIMS, N))
    rate = rejection_rate(list(zip(mean_stats("A", a), mean_stats("B", b), strict=True)))
    assert abs(rate - ALPHA) < tolerance(ALPHA, SIMS), rate


def test_two_proportion_false_positive_rate() -> None:
    rng = np.random.default_rng(102)
    conv_a, conv_b = rng.binomial(N, 0.05, SIMS), rng.binomial(N, 0.05, SIMS)
    pairs = [(ProportionStats("A", N, int(x)), ProportionStats("B", N, int(y)))
             for x, y in zip(conv_a, conv_b, strict=True)]
    rate = rejection_rate(pairs)  # type: ignore[arg-type]
    assert abs(rate - ALPHA) < tolerance(ALPHA, SIMS), rate


def _cuped(name: str, y: np.ndarray, x: np.ndarray) -> list[CupedMeanStats]:
    return [CupedMeanStats(name, y.shape[1], *map(float, row)) for row in zip(
        y.sum(1), (y * y).sum(1), x.sum(1), (x * x).sum(1), (x * y).sum(1), strict=True)]


def test_cuped_false_positive_rate() -> None:
    rng = np.random.default_rng(103)
    x_a, x_b = rng.gamma(2.0, 40.0, (SIMS, N)), rng.gamma(2.0, 40.0, (SIMS, N))
    y_a = 0.7 * x_a + rng.gamma(2.0, 15.0, (SIMS, N))
    y_b = 0.7 * x_b + rng.gamma(2.0, 15.0, (SIMS, N))
    rate = rejection_rate(list(zip(_cuped("A", y_a, x_a), _cuped("B", y_b, x_b), strict=True)))
    assert abs(rate - ALPHA) < tolerance(ALPHA, SIMS), rate


def test_ratio_false_positive_rate_on_order_value() -> None:
    rng = np.random.default_rng(104)

    def arm(name: str) -> list[RatioStats]:
        orders = rng.poisson(0.6, (SIMS, N)).astype(float)
        value = np.where(orders > 0, rng.gamma(np.maximum(orders, 1) * 1.5, 60.0), 0.0)
        return [RatioStats(name, N, *map(float, row)) for row in zip(
            value.sum(1), (value**2).sum(1), orders.sum(1), (orders**2).sum(1), (value * orders).sum(1),
            strict=True)]

    rate = rejection_rate(list(zip(arm("A"), arm("B"), strict=True)))
    assert abs(rate - ALPHA) < tolerance(ALPHA, SIMS), rate


def test_peeking_inflates_fixed_tests_but_not_sequential_ones() -> None:
    """Conversion 10 % in both arms, a look after every 100 users per arm, 20 looks (2,000 per arm).
    Stopping at the first p < 0.05: the fixed-horizon test 'finds' an effect in about a quarter of
    A/A tests; the always-valid test (tuned for the planned 4,000 users) stays under 5 %."""
    sims, looks, step = 1000, 20, 100
    rng = np.random.default_rng(105)
    conv_a = rng.binomial(step, 0.10, (sims, looks)).cumsum(1)
    conv_b = rng.binomial(step, 0.10, (sims, looks)).cumsum(1)
    fixed_hits = np.zeros(sims, dtype=bool)
    seq_hits = np.zeros(sims, dtype=bool)
    for s in range(sims):
        for k in range(looks):
            n = step * (k + 1)
            a, b = ProportionStats("A", n, int(conv_a[s, k])), ProportionStats("B", n, int(conv_b[s, k]))
            c: Comparison = compare(a, b, method="sequential", tuning=2 * step * looks, bayesian=False)
            assert c.sequential_absolute is not None
            fixed_hits[s] |= c.absolute.p_value < ALPHA
            seq_hits[s] |= c.sequential_absolute.p_value < ALPHA
            if fixed_hits[s] and seq_hits[s]:
                break
    fixed_rate, seq_rate = fixed_hits.mean(), seq_hits.mean()
    assert fixed_rate > 0.15, fixed_rate  # peeking ~ triples-to-quintuples the false positives
    assert seq_rate <= ALPHA + tolerance(ALPHA, sims), seq_rate
    assert seq_rate < fixed_rate / 3


@pytest.mark.parametrize("kind", ["mean", "cuped"])
def test_intervals_cover_a_known_effect(kind: str) -> None:
    """Treatment multiplies spend by 1.05 (true relative effect +5 %, true absolute effect known)."""
    sims = 1000
    rng = np.random.default_rng(106 if kind == "mean" else 107)
    if kind == "mean":
        a, b = revenue(rng, (sims, N)), revenue(rng, (sims, N), lift=1.05)
        pairs: list[tuple[VariantStats, VariantStats]] = list(
            zip(mean_stats("A", a), mean_stats("B", b), strict=True))
        true_abs = 0.08 * math.exp(4.0 + 0.5) * 0.05  # E[revenue] = 8 % · e^(μ + σ²/2)
    else:
        x_a, x_b = rng.gamma(2.0, 40.0, (sims, N)), rng.gamma(2.0, 40.0, (sims, N))
        y_a = 0.7 * x_a + rng.gamma(2.0, 15.0, (sims, N))
        y_b = 0.7 * x_b + rng.gamma(2.0, 15.0, (sims, N)) + 3.0  # +3 per user
        pairs = list(zip(_cuped("A", y_a, x_a), _cuped("B", y_b, x_b), strict=True))
        true_abs = 3.0
    covered = []
    for a_stats, b_stats in pairs:
        c = compare(a_stats, b_stats, bayesian=False)
        covered.append(c.absolute.ci_lower <= true_abs <= c.absolute.ci_upper)
    rate = float(np.mean(covered))
    assert abs(rate - 0.95) < tolerance(0.95, sims), rate
