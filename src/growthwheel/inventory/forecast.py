"""Per-SKU demand forecasts, vectorised over SKUs (pure numpy, no I/O).

Every method takes a matrix ``y`` of demand (one row per SKU, one column per period, oldest first)
and returns a matrix of forecasts for the next ``h`` periods. The loops run over time only; every
step works on all SKUs at once, so ten thousand SKUs cost about what one does.

Methods (``METHODS``):

* ``seasonal_naive`` — the value one season ago (the baseline every MASE is measured against);
* ``ses`` — simple exponential smoothing (ETS(A,N,N));
* ``ets_seasonal`` / ``ets_seasonal_fast`` — additive Holt-Winters without trend (ETS(A,N,A),
  statsmodels' ``ETSModel`` recursion) with slow (0.1) and fast (0.3) smoothing;
* ``croston`` — Croston (1972): sizes and intervals between demands smoothed separately;
* ``sba`` — Syntetos–Boylan approximation: Croston times ``1 - alpha / 2`` (removes its bias);
* ``tsb`` — Teunter–Syntetos–Babai (2011): the demand probability is smoothed every period, so an
  item that stops selling sees its forecast decay (Croston's stays flat).

:func:`backtest` runs a rolling-origin evaluation, reports every method's MASE (scaled by the
in-sample seasonal-naive error) and picks a method per SKU on earlier origins, judged on the last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]

#: Default smoothing constants (the small values the intermittent-demand literature recommends).
ALPHA = 0.1
BETA = 0.1
GAMMA = 0.1


def _matrix(y: Matrix | list[list[float]]) -> Matrix:
    array = np.asarray(y, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError("y: a matrix with one row per SKU and at least one period")
    return array


def seasonal_naive(y: Matrix, h: int, m: int = 7) -> Matrix:
    """The last observed season repeated (``m`` = 1: the last value)."""
    y = _matrix(y)
    m = max(1, min(m, y.shape[1]))
    last = y[:, -m:]
    reps = -(-h // m)
    return np.tile(last, (1, reps))[:, :h]


def ses(y: Matrix, h: int, alpha: float = 0.3) -> Matrix:
    """Simple exponential smoothing started at the first value; a flat forecast of the level."""
    y = _matrix(y)
    level = y[:, 0].copy()
    for t in range(1, y.shape[1]):
        level += alpha * (y[:, t] - level)
    return np.repeat(level[:, None], h, axis=1)


def ets_seasonal(y: Matrix, h: int, m: int = 7, alpha: float = ALPHA, gamma: float = GAMMA,
                 level0: NDArray[np.float64] | None = None,
                 season0: Matrix | None = None) -> Matrix:
    """Additive Holt-Winters without trend: ``e = y - l - s``; ``l += alpha e``; ``s += gamma e``.

    Started (unless given) at the first season's mean and its deviations from it, then run over
    every period. Falls back to :func:`ses` when the history is shorter than two seasons.
    """
    y = _matrix(y)
    length = y.shape[1]
    if m < 2 or length < 2 * m:
        return ses(y, h, alpha=max(alpha, 0.1))
    level = y[:, :m].mean(axis=1) if level0 is None else np.asarray(level0, dtype=np.float64).copy()
    season = (y[:, :m] - level[:, None]) if season0 is None else _matrix(season0).copy()
    # with a given start the recursion runs from the first period, else from the second season
    start = 0 if season0 is not None else m
    for t in range(start, length):
        k = t % m
        error = y[:, t] - level - season[:, k]
        level = level + alpha * error
        season[:, k] = season[:, k] + gamma * error
    steps = (length + np.arange(h)) % m
    out: Matrix = level[:, None] + season[:, steps]
    return out


def _first_demand(y: Matrix) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Whether each SKU ever had demand, its first size and the periods up to it (1-based)."""
    positive: NDArray[np.bool_] = y > 0
    any_demand: NDArray[np.bool_] = np.asarray(positive.any(axis=1), dtype=bool)
    first = np.argmax(positive, axis=1)
    size: NDArray[np.float64] = np.where(any_demand, y[np.arange(y.shape[0]), first], 0.0)
    periods: NDArray[np.float64] = (first + 1).astype(np.float64)
    return any_demand, size, periods


def _croston_state(y: Matrix, alpha: float) -> tuple[Matrix, Matrix, NDArray[np.bool_]]:
    """Smoothed demand size and inter-demand interval after the last period (Croston's updates at
    each period with demand; both started at the first demand)."""
    any_demand, size, interval = _first_demand(y)
    started = np.zeros(y.shape[0], dtype=bool)
    since = np.ones(y.shape[0])
    z = size.copy()
    p = interval.copy()
    for t in range(y.shape[1]):
        demand = y[:, t]
        hit = demand > 0
        update = hit & started
        z = np.where(update, z + alpha * (demand - z), z)
        p = np.where(update, p + alpha * (since - p), p)
        since = np.where(hit, 1.0, since + 1.0)
        started |= hit
    return z, p, any_demand


def croston(y: Matrix, h: int, alpha: float = ALPHA) -> Matrix:
    """Croston's method: smoothed size over smoothed interval (0 for an SKU that never sold)."""
    z, p, any_demand = _croston_state(_matrix(y), alpha)
    rate = np.where(any_demand, z / np.maximum(p, 1e-12), 0.0)
    return np.repeat(rate[:, None], h, axis=1)


def sba(y: Matrix, h: int, alpha: float = ALPHA) -> Matrix:
    """Syntetos–Boylan approximation: Croston's rate times ``1 - alpha / 2``."""
    return croston(y, h, alpha) * (1.0 - alpha / 2.0)


def tsb(y: Matrix, h: int, alpha: float = ALPHA, beta: float = BETA) -> Matrix:
    """Teunter–Syntetos–Babai: probability of demand (smoothed every period, ``beta``) times the
    demand size (smoothed at demands, ``alpha``); both started at the first demand, the probability
    at one over the periods up to it."""
    y = _matrix(y)
    any_demand, size, first_interval = _first_demand(y)
    started = np.zeros(y.shape[0], dtype=bool)
    z = size.copy()
    prob = np.zeros(y.shape[0])
    for t in range(y.shape[1]):
        demand = y[:, t]
        hit = demand > 0
        newly = hit & ~started
        # started at one demand in the periods up to the first (as Croston's interval)
        prob = np.where(newly, 1.0 / first_interval,
                        np.where(started, prob + beta * (hit - prob), prob))
        z = np.where(hit & started, z + alpha * (demand - z), z)
        started |= hit
    rate = np.where(any_demand, prob * z, 0.0)
    return np.repeat(rate[:, None], h, axis=1)


Forecaster = Callable[[Matrix, int, int], Matrix]

#: Every method by name, as ``f(y, h, m)``.
METHODS: dict[str, Forecaster] = {
    "seasonal_naive": lambda y, h, m: seasonal_naive(y, h, m),
    "ses": lambda y, h, m: ses(y, h),
    "ets_seasonal": lambda y, h, m: ets_seasonal(y, h, m),
    "ets_seasonal_fast": lambda y, h, m: ets_seasonal(y, h, m, alpha=0.3, gamma=0.3),
    "croston": lambda y, h, m: croston(y, h),
    "sba": lambda y, h, m: sba(y, h),
    "tsb": lambda y, h, m: tsb(y, h),
}
BASELINE = "seasonal_naive"


def forecast(y: Matrix, h: int, m: int, methods: list[str]) -> Matrix:
    """Forecasts with a (possibly different) method per SKU: ``methods[i]`` for row ``i``."""
    y = _matrix(y)
    if len(methods) != y.shape[0]:
        raise ValueError("methods: one per SKU")
    out = np.zeros((y.shape[0], h))
    names = np.asarray(methods)
    for name in sorted(set(methods)):
        rows = np.flatnonzero(names == name)
        out[rows] = METHODS[name](y[rows], h, m)
    return np.maximum(out, 0.0)


def mase_scale(y: Matrix, m: int) -> NDArray[np.float64]:
    """In-sample mean absolute error of the seasonal naive forecast (NaN where it is 0 or undefined)."""
    y = _matrix(y)
    m = max(1, m)
    if y.shape[1] <= m:
        return np.full(y.shape[0], np.nan)
    scale = np.abs(y[:, m:] - y[:, :-m]).mean(axis=1)
    return np.where(scale > 0, scale, np.nan)


def rmsse_scale(y: Matrix, m: int) -> NDArray[np.float64]:
    """In-sample root mean squared error of the seasonal naive forecast (NaN where it is 0)."""
    y = _matrix(y)
    m = max(1, m)
    if y.shape[1] <= m:
        return np.full(y.shape[0], np.nan)
    scale = np.sqrt(((y[:, m:] - y[:, :-m]) ** 2).mean(axis=1))
    return np.where(scale > 0, scale, np.nan)


@dataclass(frozen=True)
class Backtest:
    """A rolling-origin backtest.

    ``mae[method]`` and ``mase[method]`` are per SKU, averaged over every origin; ``chosen`` is each
    SKU's method picked on every origin but the last (by mean squared error), and ``holdout_mase`` /
    ``holdout_baseline`` judge that choice and seasonal naive on the last origin only (so the choice
    is not graded on the data it was picked from). ``sigma`` is the per-period RMSE of the chosen
    method over all origins.

    ``rmsse`` and ``holdout_rmsse`` / ``holdout_baseline_rmsse`` are the same with squared errors
    (RMSE over the in-sample seasonal-naive RMSE, as in the M5 competition): for intermittent items
    MASE rewards forecasting zero (the median of a mostly-zero series), RMSSE the mean.
    """

    methods: tuple[str, ...]
    origins: tuple[int, ...]
    horizon: int
    mae: dict[str, NDArray[np.float64]]
    mase: dict[str, NDArray[np.float64]]
    chosen: list[str]
    holdout_mase: NDArray[np.float64]
    holdout_baseline: NDArray[np.float64]
    sigma: NDArray[np.float64]
    rmsse: dict[str, NDArray[np.float64]]
    holdout_rmsse: NDArray[np.float64]
    holdout_baseline_rmsse: NDArray[np.float64]

    def summary(self) -> dict[str, float]:
        """Mean MASE over SKUs for every method, plus ``selected`` and ``baseline`` on the hold-out."""
        out = {name: _nanmean(self.mase[name]) for name in self.methods}
        out["selected_holdout"] = _nanmean(self.holdout_mase)
        out["baseline_holdout"] = _nanmean(self.holdout_baseline)
        return out

    def summary_rmsse(self) -> dict[str, float]:
        """:meth:`summary` with RMSSE instead of MASE."""
        out = {name: _nanmean(self.rmsse[name]) for name in self.methods}
        out["selected_holdout"] = _nanmean(self.holdout_rmsse)
        out["baseline_holdout"] = _nanmean(self.holdout_baseline_rmsse)
        return out

    def overall(self) -> str:
        """The single method with the lowest mean MASE over SKUs."""
        return min(self.methods, key=lambda name: (_nanmean(self.mase[name]), name != BASELINE))


def _nanmean(values: NDArray[np.float64]) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def backtest(y: Matrix, h: int, m: int = 7, origins: int = 4,
             methods: tuple[str, ...] | None = None, choose: str = "sku") -> Backtest:
    """Rolling-origin evaluation: forecast ``h`` periods from each of ``origins`` cut-offs spaced
    ``h`` apart at the end of the history; needs at least two seasons before the first cut-off.

    ``choose``: ``sku`` picks the method with the lowest squared error per SKU, ``overall`` the one
    method with the lowest mean scaled RMSE over SKUs (steadier when histories are short or noisy)."""
    if choose not in ("sku", "overall"):
        raise ValueError("choose: sku or overall")
    y = _matrix(y)
    names = tuple(methods or METHODS)
    if BASELINE not in names:
        names = (BASELINE, *names)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"methods: unknown {', '.join(unknown)}")
    if h < 1 or origins < 2:
        raise ValueError("h: at least 1; origins: at least 2")
    length = y.shape[1]
    cuts = [length - h * k for k in range(origins, 0, -1)]
    if cuts[0] < max(2 * m, 2):
        raise ValueError(f"history: {length} periods is too short for {origins} origins of {h} "
                         f"and a season of {m}")
    n = y.shape[0]
    abs_err = {name: np.zeros((n, origins)) for name in names}
    sq_err = {name: np.zeros((n, origins)) for name in names}
    scaled = {name: np.zeros((n, origins)) for name in names}
    scaled_sq = {name: np.zeros((n, origins)) for name in names}
    for k, cut in enumerate(cuts):
        train, test = y[:, :cut], y[:, cut:cut + h]
        scale = mase_scale(train, m)
        scale_sq = rmsse_scale(train, m)
        for name in names:
            pred = np.maximum(METHODS[name](train, h, m), 0.0)
            abs_err[name][:, k] = np.abs(test - pred).mean(axis=1)
            sq_err[name][:, k] = ((test - pred) ** 2).mean(axis=1)
            scaled[name][:, k] = abs_err[name][:, k] / scale
            scaled_sq[name][:, k] = np.sqrt(sq_err[name][:, k]) / scale_sq
    mae = {name: abs_err[name].mean(axis=1) for name in names}
    mase = {name: _row_nanmean(scaled[name]) for name in names}
    # choose on every origin but the last (ties go to the order of ``names``: baseline first)
    # Chosen by squared error, whose optimum is the mean: by absolute error a series that is mostly
    # zeros is best forecast by zero (its median), which would plan no stock at all for it.
    if choose == "sku":
        picking = np.stack([sq_err[name][:, :-1].mean(axis=1) for name in names], axis=1)
        best = np.argmin(picking, axis=1)
    else:
        means = [_nanmean(_row_nanmean(scaled_sq[name][:, :-1])) for name in names]
        finite = [v if np.isfinite(v) else np.inf for v in means]
        best = np.full(n, int(np.argmin(finite)))
    chosen = [names[i] for i in best]
    last_scaled = np.stack([scaled[name][:, -1] for name in names], axis=1)
    holdout = last_scaled[np.arange(n), best]
    sq_all = np.stack([sq_err[name].mean(axis=1) for name in names], axis=1)
    sigma = np.sqrt(sq_all[np.arange(n), best])
    last_sq = np.stack([scaled_sq[name][:, -1] for name in names], axis=1)
    rmsse = {name: _row_nanmean(scaled_sq[name]) for name in names}
    return Backtest(names, tuple(cuts), h, mae, mase, chosen, holdout, scaled[BASELINE][:, -1], sigma,
                    rmsse, last_sq[np.arange(n), best], scaled_sq[BASELINE][:, -1])


def _row_nanmean(values: Matrix) -> NDArray[np.float64]:
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def weekly(daily: Matrix) -> Matrix:
    """Daily demand summed into weeks, dropping the oldest incomplete week."""
    daily = _matrix(daily)
    weeks = daily.shape[1] // 7
    if weeks == 0:
        raise ValueError("history: at least 7 days for weekly demand")
    tail = daily[:, daily.shape[1] - weeks * 7:]
    out: Matrix = tail.reshape(daily.shape[0], weeks, 7).sum(axis=2)
    return out
