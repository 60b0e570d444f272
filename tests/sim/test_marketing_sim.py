"""Demo touchpoint paths with known channel effects: the exact Markov model recovers them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from growthwheel.marketing import service
from growthwheel.sim import marketing as sim
from growthwheel.stats.attribution import Paths, attribute


def test_true_effects_come_from_the_true_chain() -> None:
    truth = sim.true_effects()
    # Cross-check p by value iteration on the written-down matrix.
    k = len(sim.CHANNELS)
    x = np.zeros(k)
    rows = np.array(sim.TRANSITIONS)
    for _ in range(2000):
        x = rows[:, :k] @ x + rows[:, k]
    assert truth["conversion_probability"] == pytest.approx(float(np.dot(sim.START, x)), abs=1e-12)
    assert sum(truth["markov_share"].values()) == pytest.approx(1.0)


def test_markov_recovers_the_known_removal_effects_and_last_touch_does_not(tmp_path: Path) -> None:
    target, truth = sim.write_paths(tmp_path, journeys=120_000, seed=11)
    request = service.read_path_file(target)
    seqs = [p.path for p in request.paths]
    paths = Paths.from_sequences(seqs, [p.conversions for p in request.paths],  # type: ignore[arg-type]
                                 [p.value for p in request.paths], [p.nulls for p in request.paths])
    credits = attribute(paths, ["markov", "last_touch"])
    total = paths.conversions.sum()
    assert total == truth["conversions"]
    markov = dict(zip(paths.channels, credits["markov"].conversions / total, strict=True))
    last = dict(zip(paths.channels, credits["last_touch"].conversions / total, strict=True))
    effects = credits["markov"].removal_effects
    assert effects is not None
    for i, ch in enumerate(paths.channels):
        assert effects[i] == pytest.approx(truth["removal_effects"][ch], abs=0.02), ch
        assert markov[ch] == pytest.approx(truth["markov_share"][ch], abs=0.01), ch
    markov_error = sum(abs(markov[c] - truth["markov_share"][c]) for c in sim.CHANNELS)
    last_error = sum(abs(last[c] - truth["markov_share"][c]) for c in sim.CHANNELS)
    assert markov_error < last_error / 3


def test_allocator_beats_the_demo_split_on_the_simulators_true_curves() -> None:
    """The demo's paid channels acquire ``k_c · demand(d) · spend_c(d)^β_c`` customers a day. Keeping
    each channel's day-to-day pattern, a channel's year is ``A_c · X_c^β_c`` for its yearly spend
    ``X_c``: a power curve. Re-split the simulator's own total on those true curves."""
    from datetime import date

    from growthwheel.sim import customers, seasons
    from growthwheel.stats.budget import Curve, allocate, evaluate

    calendar = seasons.make_calendar(date(2025, 1, 1), 365)
    acq = customers.acquire(np.random.default_rng(5), calendar, 20_000)
    paid = [c for c in customers.CHANNELS if c.paid]
    spend_cny = acq.spend_fen / 100.0
    yearly = spend_cny.sum(axis=0)
    pattern = spend_cny / yearly
    curves = []
    for j, c in enumerate(paid):
        a = c.k * float(np.sum(calendar.demand * pattern[:, j] ** c.beta))
        curves.append(Curve(c.name, "power", beta=a, k=100.0, s=c.beta))  # spend in fen, k = 1 yuan
    actual = [int(x) for x in acq.spend_fen.sum(axis=0)]
    # The curves are the simulator's truth: they give its expected customers for its own split.
    expected = float(acq.expected[:, customers.PAID].sum())
    assert evaluate(curves, actual) == pytest.approx(expected, rel=1e-9)
    plan = allocate(curves, sum(actual))
    assert plan.allocated == sum(actual)
    # More customers for the same money: the demo shop overspends on 抖音 (its base spends were
    # chosen so, for the marketing-mix model to find), so today's marginal returns differ.
    assert plan.outcome > evaluate(curves, actual) + 100
    today = [c.marginal(float(x)) for c, x in zip(curves, actual, strict=True)]
    assert max(today) / min(today) > 1.05
    marginals = [line.marginal_return for line in plan.lines]
    assert max(marginals) == pytest.approx(min(marginals), rel=1e-4)
    # …and so does an even split of the same total (power curves are flat near their optimum).
    even = [sum(actual) // 3] * 3
    assert plan.outcome > evaluate(curves, even) + 50
