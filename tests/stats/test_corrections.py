"""Holm and Benjamini–Hochberg adjusted p-values: a hand-worked example and statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from growthwheel.errors import InvalidArgumentError
from growthwheel.stats.corrections import adjust, benjamini_hochberg, holm


def test_hand_worked_example() -> None:
    p = [0.01, 0.04, 0.03, 0.20]
    # Holm: sorted 0.01, 0.03, 0.04, 0.20 × 4, 3, 2, 1 = 0.04, 0.09, 0.08, 0.20 → running max.
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    # BH: sorted × 4/1, 4/2, 4/3, 4/4 = 0.04, 0.06, 0.0533, 0.20 → running min from the top.
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.20])
    assert adjust(p, "none") == p


def test_random_families_match_statsmodels() -> None:
    rng = np.random.default_rng(2)
    for m in (1, 2, 7, 40):
        p = np.concatenate([rng.uniform(0, 1, m // 2 + 1), rng.uniform(0, 0.01, m // 2)])[:m]
        assert holm(p.tolist()) == pytest.approx(list(multipletests(p, method="holm")[1]), rel=1e-12)
        assert benjamini_hochberg(p.tolist()) == pytest.approx(
            list(multipletests(p, method="fdr_bh")[1]), rel=1e-12)


def test_nan_p_values_stay_out_of_the_family() -> None:
    out = holm([0.01, math.nan, 0.02])
    assert math.isnan(out[1])
    assert out[0] == pytest.approx(0.02)
    assert out[2] == pytest.approx(0.02)


def test_bad_input() -> None:
    with pytest.raises(InvalidArgumentError, match=r"p_values\[1\]: 1.5 is not a probability"):
        holm([0.1, 1.5])
    with pytest.raises(InvalidArgumentError, match="correction: 'sidak'"):
        adjust([0.1], "sidak")  # type: ignore[arg-type]
