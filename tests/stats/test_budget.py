"""The budget allocator against closed-form optima, bounds, reserve and a general optimiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from growthwheel.stats.budget import Curve, _integers, allocate, evaluate, reserve_amount


def test_two_exponential_channels_closed_form() -> None:
    # f_i = β_i (1 − e^(−x/k_i)); equal marginals β_i/k_i e^(−x_i/k_i) = μ and x_1 + x_2 = B give
    # ln μ = (Σ k_i ln(β_i/k_i) − B) / Σ k_i and x_i = k_i ln(β_i / (k_i μ)).
    b1, k1, b2, k2, budget = 9_000.0, 400_000.0, 5_000.0, 150_000.0, 600_000
    log_mu = (k1 * math.log(b1 / k1) + k2 * math.log(b2 / k2) - budget) / (k1 + k2)
    x1 = k1 * (math.log(b1 / k1) - log_mu)
    curves = [Curve("search", "exponential", b1, k1), Curve("social", "exponential", b2, k2)]
    got = allocate(curves, budget)
    assert got.allocated == budget
    assert sum(line.spend for line in got.lines) == budget
    assert abs(got.lines[0].spend - x1) <= 1
    assert got.lines[0].marginal_return == pytest.approx(got.lines[1].marginal_return, rel=1e-5)
    assert got.lines[0].marginal_return == pytest.approx(math.exp(log_mu), rel=1e-5)


def test_two_hill_channels_closed_form() -> None:
    # f_i = β_i x/(x + k_i): β_i k_i/(x_i + k_i)² = μ → x_i = √(β_i k_i/μ) − k_i,
    # √μ = Σ √(β_i k_i) / (B + Σ k_i).
    c1, c2 = Curve("a", "hill", 50_000, 200_000), Curve("b", "hill", 20_000, 50_000)
    budget = 1_000_003
    root_mu = (math.sqrt(50_000 * 200_000) + math.sqrt(20_000 * 50_000)) / (budget + 250_000)
    x1 = math.sqrt(50_000 * 200_000) / root_mu - 200_000
    got = allocate([c1, c2], budget)
    assert abs(got.lines[0].spend - x1) <= 1
    assert got.lines[0].spend + got.lines[1].spend == budget


def test_reserve_and_total_hit_exactly() -> None:
    curves = [Curve("a", "exponential", 1000, 3000), Curve("b", "exponential", 800, 1000),
              Curve("c", "hill", 500, 700, s=0.7)]
    got = allocate(curves, 10_001, reserve_share=0.15)
    assert got.reserve == reserve_amount(10_001, 0.15) == 1500  # 1500.15 → 1500
    assert got.allocated + got.reserve == 10_001
    assert sum(line.spend for line in got.lines) == got.allocated
    assert reserve_amount(10, 0.25) == 3  # 2.5 rounds half up


def test_bounds_are_honoured_and_free_channels_equalise() -> None:
    curves = [Curve("a", "exponential", 9000, 4000, upper=1000),
              Curve("b", "exponential", 3000, 5000),
              Curve("c", "exponential", 2500, 3000, lower=4000)]
    got = allocate(curves, 12_000)
    a, b, c = got.lines
    assert a.spend == 1000
    assert a.bound == "upper"
    assert c.spend >= 4000
    assert a.spend + b.spend + c.spend == 12_000
    assert a.marginal_return > b.marginal_return  # held back by its bound
    if c.bound is None:
        assert b.marginal_return == pytest.approx(c.marginal_return, rel=1e-3)


def test_infeasible_bounds_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="lower bounds add up"):
        allocate([Curve("a", "hill", 1, 1, lower=80), Curve("b", "hill", 1, 1, lower=30)], 100)
    with pytest.raises(ValueError, match="upper bounds add up"):
        allocate([Curve("a", "hill", 1, 1, upper=10), Curve("b", "hill", 1, 1, upper=10)], 100)
    with pytest.raises(ValueError, match=r"curves\[a\]\.beta"):
        Curve("a", "hill", -1, 1)


def test_deterministic_and_independent_of_order() -> None:
    curves = [Curve(f"c{i}", "hill", 1000 + 300 * i, 500 + 250 * i, s=0.8 + 0.1 * i) for i in range(5)]
    one = allocate(curves, 20_000, reserve_share=0.1)
    assert allocate(curves, 20_000, reserve_share=0.1) == one
    flipped = allocate(list(reversed(curves)), 20_000, reserve_share=0.1)
    by_name = {line.channel: line.spend for line in flipped.lines}
    for line in one.lines:
        assert abs(by_name[line.channel] - line.spend) <= 1


def test_beats_a_general_optimiser_and_the_starting_split() -> None:
    rng = np.random.default_rng(7)
    curves = [Curve(f"c{i}", "hill", float(rng.uniform(1e4, 5e4)), float(rng.uniform(1e4, 8e4)),
                    s=float(rng.uniform(0.5, 1.0))) for i in range(6)]
    budget = 300_000
    got = allocate(curves, budget)
    start = [budget / 6] * 6
    res = minimize(lambda x: -evaluate(curves, list(x)), start, method="SLSQP",
                   bounds=[(0, budget)] * 6,
                   constraints=[{"type": "eq", "fun": lambda x: float(np.sum(x)) - budget}],
                   options={"ftol": 1e-12, "maxiter": 500})
    assert got.outcome >= -res.fun - 1e-6 * abs(res.fun)
    assert got.outcome > evaluate(curves, start)


def test_s_shaped_channel_is_off_or_past_its_inflection() -> None:
    s_curve = Curve("s", "hill", 10_000, 50_000, s=3.0)
    concave = Curve("c", "exponential", 8_000, 20_000)
    small = allocate([s_curve, concave], 10_000)
    assert small.lines[0].spend == 0  # too little budget to climb the S
    big = allocate([s_curve, concave], 200_000)
    assert big.lines[0].spend >= s_curve.peak
    assert big.lines[0].marginal_return == pytest.approx(big.lines[1].marginal_return, rel=1e-3)


def test_two_power_channels_with_one_elasticity_split_in_closed_form() -> None:
    # f_i = β_i (x/k)^s: equal marginals give x_i ∝ β_i^(1/(1−s)).
    s = 0.6
    curves = [Curve("a", "power", 30.0, 100.0, s=s), Curve("b", "power", 10.0, 100.0, s=s)]
    budget = 8_000_000
    share_a = 30.0 ** (1 / (1 - s)) / (30.0 ** (1 / (1 - s)) + 10.0 ** (1 / (1 - s)))
    got = allocate(curves, budget)
    assert abs(got.lines[0].spend - share_a * budget) <= 1
    with pytest.raises(ValueError, match=r"curves\[c\]\.s"):
        Curve("c", "power", 1.0, 1.0, s=1.0)


def test_extreme_scales_and_budgets_are_placed_exactly() -> None:
    """Curves that saturate long before the budget, and budgets at the API's limit (10^15 minor
    units over 200 channels): the total is hit exactly and equal channels get equal shares. (The
    one-unit-at-a-time placement of the leftover never finished on these.)"""
    cases = [
        ([Curve("a", "exponential", beta=1.0, k=1.0), Curve("b", "exponential", beta=2.0, k=1.0)], 10**12),
        ([Curve(f"c{i}", "hill", beta=1.0 + i, k=1.0, s=0.5) for i in range(200)], 10**15),
        ([Curve(f"c{i}", "hill", beta=1.0 + i, k=1.0, s=3.0) for i in range(200)], 10**15),
        ([Curve(f"p{i}", "power", beta=1e-9, k=1e15, s=0.999) for i in range(3)], 10**15 - 1),
    ]
    for curves, total in cases:
        result = allocate(curves, total)
        assert result.allocated == total == sum(line.spend for line in result.lines)
        assert all(line.spend >= 0 for line in result.lines)
    same = allocate([Curve(f"s{i}", "exponential", beta=5.0, k=10.0) for i in range(7)], 10**13 + 3)
    spends = [line.spend for line in same.lines]
    assert max(spends) - min(spends) <= 1
    assert spends == sorted(spends, reverse=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50, allow_nan=False), st.integers(0, 20), st.integers(0, 30)),
                min_size=1, max_size=6),
       st.integers(0, 200))
def test_leftover_is_placed_as_one_unit_per_channel_in_turn(spec: list[tuple[float, int, int]],
                                                            budget: int) -> None:
    """The whole-round placement equals the plain round robin: one unit per channel with room, in
    largest-remainder order, round after round."""
    curves = [Curve(f"c{i}", "exponential", beta=1.0, k=1.0, lower=lo, upper=lo + width)
              for i, (_x, lo, width) in enumerate(spec)]
    floats = [x for x, _lo, _w in spec]
    if not sum(c.lower for c in curves) <= budget <= sum(c.upper or 0 for c in curves):
        return
    amounts = [max(math.floor(x), c.lower) for x, c in zip(floats, curves, strict=True)]
    amounts = [min(a, c.upper or 0) for a, c in zip(amounts, curves, strict=True)]
    left = budget - sum(amounts)
    order = sorted(range(len(curves)), key=lambda i: (-(floats[i] - math.floor(floats[i])), i))
    while left != 0:  # the reference: one unit at a time
        for i in order:
            c = curves[i]
            if left > 0 and amounts[i] < (c.upper or 0):
                amounts[i], left = amounts[i] + 1, left - 1
            elif left < 0 and amounts[i] > c.lower:
                amounts[i], left = amounts[i] - 1, left + 1
    assert _integers(floats, budget, curves) == amounts
