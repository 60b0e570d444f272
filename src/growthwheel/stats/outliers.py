"""Outlier capping (winsorising) of per-unit metric values held in memory (pure numerics, no I/O).

Revenue per user has a heavy right tail: one wholesale order can swing a test. Capping each unit's
value at a high percentile (computed over *all* units of the experiment, both arms together, so the
cap cannot differ by arm) keeps the estimate stable at the cost of a small bias. Experiments over
the warehouse cap in the database; this is the same rule for arrays.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from growthwheel.errors import InvalidArgumentError


def winsorise(
    values: npt.ArrayLike, *, upper: float | None = 0.99, lower: float | None = None
) -> npt.NDArray[np.float64]:
    """``values`` clipped to their ``lower`` and ``upper`` quantiles (fractions in [0, 1]; ``None`` = no cap).

    Quantiles use linear interpolation (numpy's default, as SQL ``quantile_cont``). NaN values are
    refused rather than dropped.
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return arr.copy()
    if np.isnan(arr).any():
        missing = int(np.isnan(arr).sum())
        raise InvalidArgumentError(f"values: {missing} value(s) are NaN; fill or drop them first")
    for name, q in (("upper", upper), ("lower", lower)):
        if q is not None and not (math.isfinite(q) and 0.0 <= q <= 1.0):
            raise InvalidArgumentError(f"{name}: {q!r} must be a quantile between 0 and 1")
    if upper is not None and lower is not None and lower > upper:
        raise InvalidArgumentError(f"lower: {lower!r} is above upper {upper!r}")
    hi = float(np.quantile(arr, upper)) if upper is not None else None
    lo = float(np.quantile(arr, lower)) if lower is not None else None
    capped: npt.NDArray[np.float64] = np.clip(arr, lo, hi)
    return capped
