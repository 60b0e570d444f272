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
