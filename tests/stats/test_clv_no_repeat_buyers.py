"""BG/NBD expected purchases where 2F1 turns negative (a + b + x - 1 < 0, e.g. x = 0 with a + b < 1).

The log-space evaluation gave NaN there (``lifetimes`` does too); the value is checked against the
closed form (Fader, Hardie & Lee 2005, eq. 10) with 2F1 summed from its power series by hand.
"""

from __future__ import annotations

import math

import numpy as np

from growthwheel.stats import clv


def _hyp2f1_series(a: float, b: float, c: float, z: float) -> float:
    term, total = 1.0, 1.0
    for k in range(100_000):
        term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z
        total += term
        if abs(term) < 1e-17:
            break
    return total


def test_expected_purchases_of_one_time_buyers_when_a_plus_b_is_below_one() -> None:
    params = clv.BgNbdParams(r=0.3499, alpha=1.5981, a=0.1247, b=0.4044)
    t, ages = 12.0, [3.9, 1.0, 0.25]
    got = clv.expected_purchases(params, t, [0, 0, 0], [0.0, 0.0, 0.0], ages)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    for value, age in zip(got, ages, strict=True):
        z = t / (alpha + age + t)
        hyp = _hyp2f1_series(r, b, a + b - 1, z)
        assert hyp < 0  # the case the log-space evaluation cannot take
        want = (a + b - 1) / (a - 1) * (1 - ((alpha + age) / (alpha + age + t)) ** r * hyp)
        assert math.isclose(value, want, rel_tol=1e-9)
    assert np.all(np.isfinite(got))
    assert got[0] < got[1]  # a longer silence since the first purchase means fewer expected ones
