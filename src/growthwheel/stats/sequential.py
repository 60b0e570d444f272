"""Always-valid confidence sequences for a difference in means (pure numerics, no I/O).

A fixed-horizon test is valid only if it is read once, at the planned sample size: reading it at
every refresh and stopping at the first ``p < 0.05`` inflates false positives far above 5 %.
A *confidence sequence* is a sequence of intervals that covers the true effect at **every** sample
size simultaneously with probability ``1 − alpha``, so it may be looked at as often as wanted and
stopped at any time.

We use the two-sided normal-mixture boundary of Howard, Ramdas, McAuliffe & Sekhon (2021),
"Time-uniform, nonparametric, nonasymptotic confidence sequences" (Annals of Statistics), eq. (14),
in the asymptotic form of Waudby-Smith et al. (2023, arXiv:2103.06476) that GrowthBook's gbstats
uses. With ``N`` the total units of both arms, ``s² = N·se²`` (``se`` the usual standard error of
the estimate) and a mixing precision ``ρ²``::

    half-width = sqrt(s²) · sqrt( 2 (Nρ² + 1) / (N² ρ²) · ln( sqrt(Nρ² + 1) / alpha ) )

``ρ`` is chosen so the boundary is tightest when ``N`` equals the *tuning* parameter (the expected
total sample size; Howard et al. eq. (15)):
``ρ² = (−2 ln alpha + ln(−2 ln alpha + 1)) / tuning``. A tuning far from the real ``N`` still gives
valid but wider intervals. The matching always-valid p-value is ``min(1, 1 / E)`` with the mixture
e-value ``E = exp(ρ² N z² / (2 (Nρ² + 1))) / sqrt(Nρ² + 1)``, ``z = estimate / se``; it is below
``alpha`` exactly when the interval excludes zero.

Every function accepts numpy arrays (broadcast) as well as floats, so simulations can evaluate
thousands of looks at once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from growthwheel.errors import InvalidArgumentError

#: Default tuning parameter (expected total sample size), GrowthBook's default.
DEFAULT_TUNING = 5000.0


def _check(alpha: float, tuning: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidArgumentError(f"alpha: {alpha!r} must be between 0 and 1")
    if not tuning > 0.0:
        raise InvalidArgumentError(f"tuning: {tuning!r} must be a positive expected sample size")


def rho(alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> float:
    """The mixing parameter ``ρ`` that makes the boundary tightest at ``N = tuning``."""
    _check(alpha, tuning)
    log_a = -2.0 * math.log(alpha)
    return math.sqrt((log_a + math.log(log_a + 1.0)) / tuning)


def _scalars(*values: Any) -> bool:
    return all(isinstance(v, int | float) for v in values)


def half_width(se: Any, n: Any, *, alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> Any:
    """Half-width of the always-valid ``1 − alpha`` interval for an estimate with standard error ``se``
    after ``n`` units in total (both arms). Floats in, float out; arrays broadcast."""
    r2 = rho(alpha, tuning) ** 2
    if _scalars(se, n):
        nr2 = n * r2
        log_term = math.log(math.sqrt(nr2 + 1.0) / alpha)
        return math.sqrt(n) * se * math.sqrt(2.0 * (nr2 + 1.0) / (n * nr2) * log_term)
    n_arr = np.asarray(n, dtype=float)
    se_arr = np.asarray(se, dtype=float)
    nr2 = n_arr * r2
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.sqrt(n_arr) * se_arr * np.sqrt(
            2.0 * (nr2 + 1.0) / (n_arr * nr2) * np.log(np.sqrt(nr2 + 1.0) / alpha)
        )
    return width


def p_value(estimate: Any, se: Any, n: Any, *, alpha: float = 0.05, tuning: float = DEFAULT_TUNING) -> Any:
    """Always-valid p-value ``min(1, 1/E)`` of the mixture e-value (see the module docstring).

    ``alpha`` only enters through ``ρ`` (the boundary's shape); the p-value is below ``alpha``
    exactly when the ``1 − alpha`` confidence sequence excludes zero. Floats in, float out.
    """
    r2 = rho(alpha, tuning) ** 2
    if _scalars(estimate, se, n):
        z2 = (estimate / se) ** 2
        nr2p1 = n * r2 + 1.0
        return min(1.0, math.exp(-(r2 * n * z2 / (2.0 * nr2p1) - 0.5 * math.log(nr2p1))))
    n_arr = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z2 = (np.asarray(estimate, dtype=float) / np.asarray(se, dtype=float)) ** 2
        nr2p1 = n_arr * r2 + 1.0
        log_e = r2 * n_arr * z2 / (2.0 * nr2p1) - 0.5 * np.log(nr2p1)
        p = np.minimum(1.0, np.exp(-log_e))
    return p
