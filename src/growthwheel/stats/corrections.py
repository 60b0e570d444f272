"""Multiple-comparison corrections of p-values (pure numerics, no I/O).

* **Holm** (1979) step-down: controls the family-wise error rate (the chance of *any* false
  positive among the family) under any dependence; uniformly more powerful than Bonferroni.
* **Benjamini–Hochberg** (1995) step-up: controls the false discovery rate (the expected share of
  false positives among the "significant" results) for independent or positively dependent tests.

The family is whatever the caller passes: GrowthBook-style, every treatment × metric comparison
of one experiment. Adjusted p-values are compared with the *unadjusted* alpha. The results equal
``statsmodels.stats.multitest.multipletests(method="holm" | "fdr_bh")``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from growthwheel.errors import InvalidArgumentError

Correction = Literal["holm", "bh", "none"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "bh", "none")


def _checked(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise InvalidArgumentError("p_values: expected a flat list of p-values")
    bad = [i for i, v in enumerate(p) if not (math.isnan(v) or 0.0 <= v <= 1.0)]
    if bad:
        raise InvalidArgumentError(f"p_values[{bad[0]}]: {float(p[bad[0]])!r} is not a probability in [0, 1]")
    return p


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values: ``max_{j≤i} min(1, (m − j + 1) p_(j))`` in sorted order.

    NaN p-values (comparisons that could not be computed) stay NaN and do not count in ``m``.
    """
    p = _checked(p_values)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        scaled = (m - np.arange(m)) * q[order]
        adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
        res = np.empty(m)
        res[order] = adjusted
        out[ok] = res
    return [float(v) for v in out]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg step-up adjusted p-values: ``min_{j≥i} min(1, m p_(j) / j)``.

    NaN p-values stay NaN and do not count in ``m``.
    """
    p = _checked(p_values)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        scaled = q[order] * m / np.arange(1, m + 1)
        adjusted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
        res = np.empty(m)
        res[order] = adjusted
        out[ok] = res
    return [float(v) for v in out]


def adjust(p_values: Sequence[float], correction: Correction) -> list[float]:
    """Adjusted p-values by ``correction``: ``"holm"``, ``"bh"`` (Benjamini–Hochberg) or ``"none"``."""
    if correction == "holm":
        return holm(p_values)
    if correction == "bh":
        return benjamini_hochberg(p_values)
    if correction == "none":
        return [float(v) for v in _checked(p_values)]
    raise InvalidArgumentError(f"correction: {correction!r} is not one of {', '.join(CORRECTIONS)}")
