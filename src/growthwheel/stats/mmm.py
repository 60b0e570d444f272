"""The marketing-mix model: spend per channel and an outcome over days (or weeks), fitted.

Pure numerics, no I/O. The expected outcome (new customers, or revenue in minor units) on period
``t`` is

    μ_t = exp(g_t) · (b0 + Σ_c β_c · h_c(a_c,t)),       h_c(a) = a^s_c / (a^s_c + K_c^s_c)

* ``a_c,t`` is channel ``c``'s spend after **geometric adstock**, normalised so that a steady
  spend ``x`` gives ``a = x``: ``a_t = (1 − d_c) x_t + d_c a_{t−1}`` (``d_c`` the decay, 0 = no
  carry-over);
* ``h_c`` is the **Hill saturation**: ``K_c`` the (adstocked) spend per period at half saturation,
  ``s_c`` the shape; ``β_c`` the channel's ceiling in outcome per period;
* ``g_t`` is the **demand** in log space: a linear trend, weekly Fourier terms (daily data),
  yearly Fourier terms and **holidays** (618 and Double 11 by default), one effect per day offset
  from a holiday's peak (as Prophet's holiday windows) — they multiply the baseline ``b0`` and the
  channels alike (a festival day brings more customers per yuan as well as more visitors).

Fitting (why this and not MCMC is in ``docs/marketing-mix.md``): penalised quasi-Poisson maximum
likelihood with ``scipy.optimize.least_squares`` (trust-region reflective, bounds on the decays):
the residuals are the Poisson deviance residuals divided by the dispersion of a first pass, plus
one row per weakly informative prior (demand terms ``N(0, 2²)``, ``log(K_c / mean spend)`` ``N(0,
3²)``, ``log s_c`` ``N(0, 1)``: tighter priors pull every elasticity towards 0.5, measured), so the
optimum is a posterior mode and the inverse of
``JᵀJ`` its **Laplace** covariance. Intervals of everything derived — each channel's contribution,
ROAS, spend elasticity, marginal ROAS, response curve — follow by the delta method (normal on the
log of each positive quantity, so never below zero; 90 % by default; parameters held at a bound,
such as a decay of 0, are held fixed). The analytic
Jacobian and one BLAS thread (``threadpoolctl``) keep a fit of two years × 6 channels to seconds.
Deterministic: fixed starting points (decays 0.1 and 0.5, the better of the two kept), no sampling.

**Outcome per channel or in total.** Given one outcome column per channel (the demo's new
customers by acquisition channel), each channel's outcome is ``exp(g_t) · β_c h_c(a_c,t)`` (no
baseline: the outcome is the one the channel's tracking claims) and the level of each response
is identified by its own counts. Given one total outcome (revenue), the baseline ``b0`` and the
channels share it, and how much of the level is media rather than baseline rests on the curvature
alone: expect wide intervals there (measured in ``docs/attribution.md``).

Per channel over the fitted period (``spend_c = Σ_t x_c,t``, ``R_c(λ)`` = the channel's total
contribution if every period's spend were multiplied by ``λ``):

* **ROAS** ``R_c(1) / spend_c`` — outcome per unit of spend (new customers per minor unit, or
  revenue per revenue);
* **spend elasticity** ``R_c'(1) / R_c(1)`` — % more outcome for 1 % more spend;
* **marginal ROAS** ``R_c'(1) / spend_c`` = elasticity × ROAS — what the next unit returns.

:func:`budget_curves` fits a Hill curve of the period's total spend to each ``R_c`` (the
allocator's :class:`growthwheel.stats.budget.Curve`), scaled to a planning period of any length.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares
from scipy.signal import lfilter
from scipy.special import xlogy

from growthwheel.stats.budget import Curve

Array = npt.NDArray[np.float64]

MAX_DECAY = 0.9
WEEKLY_HARMONICS = 3
YEARLY_HARMONICS = 2
PRIOR_DEMAND_SD = 2.0
PRIOR_LOG_K_SD = 3.0
PRIOR_LOG_S_SD = 1.0
LEVEL = 0.9
MAX_PERIODS = 3_700
MAX_CHANNELS = 30


@dataclass(frozen=True)
class Holiday:
    """A holiday: its peak days and the window of days before and after that it moves demand."""

    name: str
    peaks: tuple[date, ...]
    before: int
    after: int


def default_holidays(first: date, last: date) -> tuple[Holiday, ...]:
    """618 (from 1 June) and Double 11 (from 20 October), three days of after-glow (返场) each, in
    every year the period touches."""
    years = range(first.year - 1, last.year + 2)
    return (
        Holiday("618", tuple(date(y, 6, 18) for y in years), before=17, after=3),
        Holiday("double11", tuple(date(y, 11, 11) for y in years), before=22, after=3),
    )


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 90 % interval."""

    mean: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval."""
        return self.low <= value <= self.high

    def as_dict(self) -> dict[str, float]:
        """``{"mean", "low", "high"}``."""
        return {"mean": self.mean, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class ChannelFit:
    """One channel's fitted parameters and what follows from them over the fitted period."""

    channel: str
    spend: int
    decay: Interval
    half_saturation: float
    shape: float
    ceiling: float
    contribution: Interval
    roas: Interval
    elasticity: Interval
    marginal_roas: Interval


@dataclass(frozen=True)
class Fit:
    """A fitted model: per-channel results, the fit's quality and what is needed to draw curves."""

    channels: tuple[ChannelFit, ...]
    periods: int
    period_days: int
    outcome_total: float
    baseline: Interval
    r_squared: float
    mape: float
    dispersion: float
    iterations: int
    seconds: float
    level: float
    notes: tuple[str, ...]
    # Internals for curves and allocation: the model, the posterior mode and its covariance.
    model: _Model = field(repr=False)
    theta: Array = field(repr=False)
    cov: Array = field(repr=False)
    fitted: Array = field(repr=False)
    #: Periods (rows) × channels the fit used (False: left out, see ``fit``'s ``exclude``).
    keep: Array | None = field(default=None, repr=False)

    def kept(self, channel: int) -> Array:
        """Which periods channel ``channel``'s figures cover (all, unless some were left out)."""
        if self.keep is None:
            return np.ones(self.periods, dtype=bool)
        return np.asarray(self.keep[:, channel], dtype=bool)

    @property
    def spend_series(self) -> Array:
        """Spend per period (rows) and channel (columns), minor units."""
        return self.model.spend

    def response(self, channel: int, scale: float | Array, theta: Array | None = None) -> Array:
        """``R_c(λ)``: channel ``channel``'s total contribution over the period (the periods its
        figures cover) at ``λ`` × its spend."""
        demand, _, params = self.model.unpack(self.theta if theta is None else theta)
        beta, k, s, decay = params[channel]
        lam = np.atleast_1d(np.asarray(scale, dtype=float))
        a = adstock(self.model.spend[:, channel], float(decay))[None, :] * lam[:, None]
        keep = self.kept(channel)
        return np.asarray((demand[None, keep] * beta * _hill(a[:, keep], k, s)).sum(axis=1))

    def curve(self, channel: int, spends: Sequence[float]) -> dict[str, list[float]]:
        """The response at each total spend of the period, with its interval (delta method)."""
        total = float(self.model.spend[self.kept(channel), channel].sum())
        lam = np.asarray(spends, dtype=float) / total if total > 0 else np.zeros(len(spends))
        logs, half = _delta(lambda th: np.log(np.maximum(self.response(channel, lam, th), 1e-300)),
                            self.theta, self.cov, self.level)
        zero = logs <= math.log(1e-300) + 1
        point = np.where(zero, 0.0, np.exp(logs))
        low = np.where(zero, 0.0, np.exp(logs - half))
        high = np.where(zero, 0.0, np.exp(np.minimum(logs + half, 700.0)))
        return {"spend": [float(x) for x in spends], "outcome": point.tolist(), "low": low.tolist(),
                "high": high.tolist()}


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _delta(func: Any, theta: Array, cov: Array, level: float) -> tuple[Array, Array]:
    """``func(θ)`` and the half-width of its ``level`` interval by the delta method (central
    differences on the parameters that vary)."""
    point = np.atleast_1d(np.asarray(func(theta), dtype=float))
    grad = np.zeros((point.size, theta.size))
    for i in np.flatnonzero(np.diag(cov) > 0):
        step = 1e-5 * max(1.0, abs(float(theta[i])))
        up, down = theta.copy(), theta.copy()
        up[i] += step
        down[i] -= step
        grad[:, i] = (np.atleast_1d(func(up)) - np.atleast_1d(func(down))) / (2 * step)
    var = np.einsum("ij,jk,ik->i", grad, cov, grad)
    return point, _z(level) * np.sqrt(np.maximum(var, 0.0))


def _hill(a: Array, k: float | Array, s: float | Array) -> Array:
    a = np.maximum(a, 0.0)
    r = np.power(a / k, s)
    return np.asarray(r / (1.0 + r))


def adstock(x: Array, decay: float) -> Array:
    """Geometric adstock normalised to a steady state equal to the spend (see the module)."""
    if decay <= 0:
        return np.asarray(x, dtype=float)
    return np.asarray(lfilter([1.0 - decay], [1.0, -decay], x))


def demand_design(dates: Sequence[date],
                  holidays: Sequence[Holiday] | None = None) -> tuple[Array, list[str]]:
    """The columns of ``g_t``: trend, weekly (daily data only) and yearly Fourier terms, holidays.

    Daily data get one column per day offset of each holiday window; weekly data one column per
    holiday (the share of the week inside its window) and one for the week of the peak."""
    n = len(dates)
    step = (dates[1] - dates[0]).days if n > 1 else 1
    first = dates[0]
    t = np.array([(d - first).days for d in dates], dtype=float)
    cols: list[Array] = []
    names: list[str] = []
    span = max(t[-1], 1.0)
    cols.append(t / span - 0.5)
    names.append("trend")
    if step == 1:
        dow = np.array([d.weekday() for d in dates], dtype=float)
        for h in range(1, WEEKLY_HARMONICS + 1):
            cols += [np.sin(2 * np.pi * h * dow / 7), np.cos(2 * np.pi * h * dow / 7)]
            names += [f"weekly_sin{h}", f"weekly_cos{h}"]
    if span >= 180:
        doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
        for h in range(1, YEARLY_HARMONICS + 1):
            cols += [np.sin(2 * np.pi * h * doy / 365.25), np.cos(2 * np.pi * h * doy / 365.25)]
            names += [f"yearly_sin{h}", f"yearly_cos{h}"]
    holidays = default_holidays(dates[0], dates[-1]) if holidays is None else holidays
    ordinal = np.array([d.toordinal() for d in dates])
    for hol in holidays:
        peaks = np.array([p.toordinal() for p in hol.peaks])
        if step == 1:
            for off in range(-hol.before, hol.after + 1):
                col = np.isin(ordinal - off, peaks).astype(float)
                if col.any():
                    cols.append(col)
                    names.append(f"{hol.name}{off:+d}")
        else:
            inside = np.zeros(n)
            peak_week = np.zeros(n)
            for i, o in enumerate(ordinal):
                days = np.arange(o, o + step)
                rel = days[:, None] - peaks[None, :]
                inside[i] = float(((rel >= -hol.before) & (rel <= hol.after)).any(axis=1).mean())
                peak_week[i] = float((rel == 0).any())
            for name, col in ((f"{hol.name}_window", inside), (f"{hol.name}_peak", peak_week)):
                if col.any():
                    cols.append(col)
                    names.append(name)
    return np.column_stack(cols), names


def _check(dates: Sequence[date], spend: Array, outcome: Array) -> None:
    n = len(dates)
    if n < 8:
        raise ValueError("dates: at least 8 periods")
    if n > MAX_PERIODS:
        raise ValueError(f"dates: at most {MAX_PERIODS} periods")
    step = (dates[1] - dates[0]).days
    if step not in (1, 7) or any((b - a).days != step for a, b in itertools.pairwise(dates)):
        raise ValueError("dates: consecutive days or consecutive weeks, without gaps")
    if spend.ndim != 2 or spend.shape[0] != n or not 1 <= spend.shape[1] <= MAX_CHANNELS:
        raise ValueError(f"spend: one row per period, 1 to {MAX_CHANNELS} channels")
    if outcome.shape not in ((n,), spend.shape):
        raise ValueError("outcome: one value per period, or one per period and channel")
    if not (np.isfinite(spend).all() and (spend >= 0).all()):
        raise ValueError("spend: finite and not negative")
    if not (np.isfinite(outcome).all() and (outcome >= 0).all()):
        raise ValueError("outcome: finite and not negative")
    if outcome.sum() <= 0 or (outcome.ndim == 2 and (outcome.sum(axis=0) <= 0).any()):
        raise ValueError("outcome: all zero (for a channel)")
    for j in range(spend.shape[1]):
        if (spend[:, j] > 0).sum() < 4:
            raise ValueError(f"spend[{j}]: a channel needs spend in at least 4 periods")


class _Model:
    """Parameter layout and the expected outcome (internal).

    θ = [g (one per demand column), log(b0 / level) (total outcome only), then per channel
    log(β / level), log(K / mean spend), log s, decay]."""

    def __init__(self, design: Array, spend: Array, outcome: Array) -> None:
        self.design = design
        self.spend = spend
        self.outcome = outcome
        self.per_channel = outcome.ndim == 2
        self.n, self.m = design.shape
        self.channels = spend.shape[1]
        self.level = float(outcome.sum(axis=1).mean()) if self.per_channel else float(outcome.mean())
        self.spend_mean = np.array([max(float(spend[spend[:, j] > 0, j].mean()), 1e-9)
                                    for j in range(self.channels)])
        self.base = 0 if self.per_channel else 1
        self.size = self.m + self.base + 4 * self.channels

    def unpack(self, theta: Array) -> tuple[Array, float, Array]:
        g = theta[: self.m]
        b0 = 0.0 if self.per_channel else self.level * math.exp(theta[self.m])
        ch = theta[self.m + self.base:].reshape(self.channels, 4)
        params = np.column_stack([
            self.level * np.exp(ch[:, 0]), self.spend_mean * np.exp(ch[:, 1]), np.exp(ch[:, 2]), ch[:, 3],
        ])
        return np.exp(self.design @ g), b0, params

    def adstocked(self, params: Array) -> Array:
        return np.column_stack([adstock(self.spend[:, j], float(params[j, 3])) for j in range(self.channels)])

    def mu(self, theta: Array) -> Array:
        demand, b0, params = self.unpack(theta)
        media = params[:, 0] * _hill(self.adstocked(params), params[:, 1], params[:, 2])
        if self.per_channel:
            return np.asarray(demand[:, None] * media)
        return np.asarray(demand * (b0 + media.sum(axis=1)))

    def jacobian(self, theta: Array) -> tuple[Array, Array]:
        """The expected outcome (flattened) and its derivatives with respect to θ (analytic)."""
        demand, b0, params = self.unpack(theta)
        beta, k, s, decay = params[:, 0], params[:, 1], params[:, 2], params[:, 3]
        a = self.adstocked(params)
        h = _hill(a, k, s)
        media = beta * h
        hh = h * (1.0 - h)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.where(a > 0, np.log(np.maximum(a, 1e-300) / k), 0.0)
            slope = np.where(a > 0, s * hh / np.maximum(a, 1e-300), 0.0)  # dh/da
        d_a = np.empty_like(a)
        for j in range(self.channels):
            shifted = np.concatenate([[0.0], a[:-1, j]])
            d_a[:, j] = lfilter([1.0], [1.0, -float(decay[j])], shifted - self.spend[:, j])
        parts = np.stack([media, -beta * s * hh, beta * s * hh * log_ratio, beta * slope * d_a], axis=2)
        parts *= demand[:, None, None]  # (n, channels, 4): dμ of each channel's own term
        if self.per_channel:
            mu = demand[:, None] * media
            jac = np.zeros((self.n, self.channels, self.size))
            jac[:, :, : self.m] = mu[:, :, None] * self.design[:, None, :]
            for j in range(self.channels):
                c0 = self.channel_slice(j)
                jac[:, j, c0:c0 + 4] = parts[:, j, :]
            return mu.ravel(), jac.reshape(self.n * self.channels, self.size)
        mu_t = demand * (b0 + media.sum(axis=1))
        jac2 = np.zeros((self.n, self.size))
        jac2[:, : self.m] = mu_t[:, None] * self.design
        jac2[:, self.m] = demand * b0
        for j in range(self.channels):
            c0 = self.channel_slice(j)
            jac2[:, c0:c0 + 4] = parts[:, j, :]
        return mu_t, jac2

    def channel_slice(self, j: int) -> int:
        return int(self.m + self.base + 4 * j)

    def start(self, decay: float) -> Array:
        theta = np.zeros(self.size)
        if not self.per_channel:
            theta[self.m] = math.log(0.5)
        ch = theta[self.m + self.base:].reshape(self.channels, 4)
        ch[:, 0] = math.log(1.0 / self.channels)
        ch[:, 3] = decay
        return theta

    def bounds(self) -> tuple[Array, Array]:
        lo = np.full(self.size, -np.inf)
        hi = np.full(self.size, np.inf)
        if not self.per_channel:
            lo[self.m] = math.log(1e-6)
        chl = lo[self.m + self.base:].reshape(self.channels, 4)
        chh = hi[self.m + self.base:].reshape(self.channels, 4)
        chl[:, 0], chh[:, 0] = math.log(1e-6), math.log(1e3)
        chl[:, 1], chh[:, 1] = math.log(1e-3), math.log(1e3)
        chl[:, 2], chh[:, 2] = math.log(0.3), math.log(3.0)
        chl[:, 3], chh[:, 3] = 0.0, MAX_DECAY
        return lo, hi

    def priors(self) -> tuple[Array, Array]:
        """Prior means and standard deviations (``inf`` = none) of θ."""
        mean = np.zeros(self.size)
        sd = np.full(self.size, np.inf)
        sd[: self.m] = PRIOR_DEMAND_SD
        ch = sd[self.m + self.base:].reshape(self.channels, 4)
        ch[:, 1] = PRIOR_LOG_K_SD
        ch[:, 2] = PRIOR_LOG_S_SD
        return mean, sd


def _deviance_residuals(y: Array, mu: Array) -> Array:
    d = 2.0 * (xlogy(y, y) - xlogy(y, mu) - (y - mu))
    return np.asarray(np.sign(y - mu) * np.sqrt(np.maximum(d, 0.0)))


def fit(
    dates: Sequence[date],
    spend: Array | Sequence[Sequence[float]],
    outcome: Array | Sequence[float],
    channels: Sequence[str],
    *,
    holidays: Sequence[Holiday] | None = None,
    level: float = LEVEL,
    exclude: Array | None = None,
) -> Fit:
    """Fit the model to ``spend`` (periods × channels, minor units) and ``outcome`` (per period).

    ``dates`` are consecutive days or consecutive weeks (the first day of each). ``exclude``
    (booleans, one per period or one per period and channel) leaves periods out of the fit and out
    of every figure — days of a known incident where spend did not buy what it usually buys (a
    bidding mistake, a tracking outage); their spend still feeds the adstock of later days. Bad
    input raises ``ValueError`` naming the argument."""
    import time

    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    with threadpool_limits(1):  # small matrices: threads only contend (10x slower on a busy machine)
        return _fit(dates, spend, outcome, channels, holidays=holidays, level=level,
                    started=started, exclude=exclude)


def _fit(dates: Sequence[date], spend: Array | Sequence[Sequence[float]], outcome: Array | Sequence[float],
         channels: Sequence[str], *, holidays: Sequence[Holiday] | None, level: float,
         started: float, exclude: Array | None = None) -> Fit:
    import time

    x = np.asarray(spend, dtype=float)
    y = np.asarray(outcome, dtype=float)
    dates = list(dates)
    _check(dates, x, y)
    if not 0.5 <= level < 1:
        raise ValueError("level: between 0.5 and 1 (exclusive)")
    if len(channels) != x.shape[1] or len(set(channels)) != len(channels):
        raise ValueError("channels: one distinct name per spend column")
    keep = _keep_mask(exclude, x.shape)
    design, _names = demand_design(dates, holidays)
    model = _Model(design, x, y)
    prior_mean, prior_sd = model.priors()
    has_prior = np.isfinite(prior_sd)
    lo, hi = model.bounds()

    flat_y = y.ravel()
    # One weight per residual: 0 for a period (or period and channel) left out.
    weight = (keep if y.ndim == 2 else keep.all(axis=1)).ravel().astype(float)
    if not weight.any() or (y.ndim == 2 and (keep.sum(axis=0) < 4).any()):
        raise ValueError("exclude: every channel needs at least 4 periods left")
    prior_rows = np.diag(1.0 / prior_sd[has_prior]) if has_prior.any() else np.zeros((0, model.size))
    prior_jac = np.zeros((int(has_prior.sum()), model.size))
    prior_jac[:, has_prior] = prior_rows

    def residuals(theta: Array, scale: float) -> Array:
        mu = model.mu(theta).ravel()
        dev = weight * _deviance_residuals(flat_y, mu) / scale
        return np.concatenate([dev, (theta[has_prior] - prior_mean[has_prior]) / prior_sd[has_prior]])

    def jacobian(theta: Array, scale: float) -> Array:
        mu, jac_mu = model.jacobian(theta)
        mu = np.maximum(mu, 1e-300)
        dev2 = 2.0 * (xlogy(flat_y, flat_y) - xlogy(flat_y, mu) - (flat_y - mu))
        root = np.sqrt(np.maximum(dev2, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            d_r = np.where(root > 1e-8, -np.abs(flat_y - mu) / (mu * root), -1.0 / np.sqrt(mu))
        return np.vstack([(weight * d_r)[:, None] * jac_mu / scale, prior_jac])

    best = None
    iterations = 0
    for decay in (0.1, 0.5):
        res = least_squares(residuals, model.start(decay), bounds=(lo, hi), args=(1.0,), method="trf",
                            jac=jacobian, x_scale="jac", max_nfev=400)
        iterations += int(res.nfev)
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    mu = model.mu(best.x).ravel()
    dof = max(int(weight.sum()) - model.size, 1)
    dispersion = float(np.sum(weight * (flat_y - mu) ** 2 / np.maximum(mu, 1e-12)) / dof)
    scale = math.sqrt(max(dispersion, 1e-12))
    res = least_squares(residuals, best.x, bounds=(lo, hi), args=(scale,), method="trf", jac=jacobian,
                        x_scale="jac", max_nfev=400)
    iterations += int(res.nfev)
    theta = res.x
    notes: list[str] = []
    jac = np.asarray(res.jac)
    free = np.ones(model.size, dtype=bool)
    at_bound = (theta <= lo + 1e-6) | (theta >= hi - 1e-6)
    free &= ~at_bound
    cov = np.zeros((model.size, model.size))
    jf = jac[:, free]
    cov_free = np.linalg.pinv(jf.T @ jf)
    cov[np.ix_(free, free)] = cov_free
    point = model.unpack(theta)[2]
    fitted = model.mu(theta)

    def numbers(th: Array) -> Array:
        """Logs of the positive quantities (contribution, ROAS, elasticity, marginal ROAS per
        channel, then the baseline) and the decays as they are."""
        d_th, b_th, p_th = model.unpack(th)
        per = _channel_numbers(d_th, model.adstocked(p_th), p_th, x, keep)
        logs = np.log(np.maximum(np.concatenate([per.ravel(), [float((d_th * b_th).sum())]]), 1e-300))
        return np.concatenate([logs, p_th[:, 3]])

    values, half = _delta(numbers, theta, cov, level)
    c4 = 4 * model.channels

    def log_interval(i: int) -> Interval:
        if values[i] <= math.log(1e-300) + 1:
            return Interval(0.0, 0.0, 0.0)
        lo_, mid, hi_ = (float(np.exp(np.clip(v, -700, 700)))
                         for v in (values[i] - half[i], values[i], values[i] + half[i]))
        return Interval(mid, lo_, hi_)

    out = []
    for j, name in enumerate(channels):
        if at_bound[model.channel_slice(j) + 3]:
            notes.append(f"{name}: adstock decay at its bound ({point[j, 3]:.2f}), "
                         "held fixed in the intervals")
        ivs = [log_interval(4 * j + q) for q in range(4)]
        d_mid, d_half = float(values[c4 + 1 + j]), float(half[c4 + 1 + j])
        ivs.append(Interval(d_mid, max(d_mid - d_half, 0.0), min(d_mid + d_half, MAX_DECAY)))
        out.append(ChannelFit(
            channel=name, spend=round(float(x[keep[:, j], j].sum())), decay=ivs[4],
            half_saturation=float(point[j, 1]), shape=float(point[j, 2]), ceiling=float(point[j, 0]),
            contribution=ivs[0], roas=ivs[1], elasticity=ivs[2], marginal_roas=ivs[3],
        ))
    left_out = int((~keep.astype(bool)).any(axis=1).sum())
    if left_out:
        notes.append(f"{left_out} periods left out of the fit (exclude)")
    rows = keep.any(axis=1) if y.ndim == 2 else keep.all(axis=1)
    if fitted.ndim == 2:
        fitted, y = fitted.sum(axis=1), y.sum(axis=1)
        fitted_kept, y = (model.mu(theta) * keep).sum(axis=1)[rows], (model.outcome * keep).sum(axis=1)[rows]
    else:
        fitted_kept, y = fitted[rows], y[rows]
    ss_res = float(np.sum((y - fitted_kept) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2)) or 1.0
    positive = y > 0
    return Fit(
        channels=tuple(out), periods=len(y), period_days=(dates[1] - dates[0]).days,
        outcome_total=float(y.sum()),
        baseline=log_interval(c4),
        r_squared=1.0 - ss_res / ss_tot,
        mape=(float(np.mean(np.abs(y[positive] - fitted_kept[positive]) / y[positive])) if positive.any()
              else 0.0),
        dispersion=dispersion, iterations=iterations, seconds=time.perf_counter() - started,
        level=level, notes=tuple(notes), model=model, theta=theta, cov=cov, fitted=fitted,
        keep=keep if left_out else None,
    )


def _keep_mask(exclude: Array | None, shape: tuple[int, ...]) -> Array:
    """Periods × channels to fit: ``exclude`` (per period, or per period and channel) negated."""
    if exclude is None:
        return np.ones(shape, dtype=bool)
    ex = np.asarray(exclude, dtype=bool)
    if ex.shape == (shape[0],):
        ex = np.repeat(ex[:, None], shape[1], axis=1)
    if ex.shape != shape:
        raise ValueError("exclude: one value per period, or one per period and channel")
    return np.asarray(~ex)


def _channel_numbers(demand: Array, adstocked: Array, params: Array, spend: Array, keep: Array) -> Array:
    """Per channel: contribution, ROAS, elasticity and marginal ROAS over the periods kept."""
    out = np.zeros((params.shape[0], 4))
    for j in range(params.shape[0]):
        beta, k, s, _ = params[j]
        rows = keep[:, j]
        h = _hill(adstocked[rows, j], k, s)
        contrib = float((demand[rows] * beta * h).sum())
        total = float(spend[rows, j].sum())
        elasticity = float((demand[rows] * beta * h * s * (1.0 - h)).sum() / contrib) if contrib > 0 else 0.0
        roas = contrib / total if total > 0 else 0.0
        out[j] = (contrib, roas, elasticity, elasticity * roas)
    return out


def budget_curves(result: Fit, *, period_days: int | None = None,
                  bounds: dict[str, tuple[int, int | None]] | None = None) -> tuple[list[Curve], list[float]]:
    """A Hill :class:`Curve` of total spend per channel for a planning period of ``period_days``
    (default the fitted period), fitted to the model's ``R_c`` over 0.1–3 × the observed spend; with
    the largest relative error of that fit per channel. Assumes the period repeats the observed
    day-to-day pattern of spend and demand, scaled to its length."""
    days = result.periods * result.period_days
    curves = []
    errors = []
    lam = np.geomspace(0.1, 3.0, 40)
    for j, ch in enumerate(result.channels):
        kept = result.kept(j)
        factor = (period_days or days) / (int(kept.sum()) * result.period_days)
        total = float(result.spend_series[kept, j].sum())
        target = result.response(j, lam)
        xs = lam * total

        def resid(p: Array, xs: Array = xs, target: Array = target) -> Array:
            beta, k, s = np.exp(p)
            r = np.power(xs / k, s)
            return np.asarray(beta * r / (1 + r) / target - 1.0)

        top = float(target[-1])
        start = np.log([max(top * 2, 1e-9), total, max(ch.shape, 0.31)])
        fitted = least_squares(resid, start, method="lm", max_nfev=2000)
        beta, k, s = (float(v) for v in np.exp(fitted.x))
        errors.append(float(np.max(np.abs(resid(fitted.x)))))
        low, high = (bounds or {}).get(ch.channel, (0, None))
        curves.append(Curve(ch.channel, "hill", beta=beta * factor, k=k * factor, s=s, lower=low, upper=high))
    return curves, errors


def days_between(first: date, last: date, step: int = 1) -> list[date]:
    """Every ``step``-th day from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]


def summary(result: Fit) -> dict[str, Any]:
    """The fit as JSON values (money in minor units; ROAS in outcome per minor unit)."""
    return {
        "periods": result.periods,
        "period_days": result.period_days,
        "outcome_total": result.outcome_total,
        "baseline": result.baseline.as_dict(),
        "fit": {"r_squared": result.r_squared, "mape": result.mape, "dispersion": result.dispersion,
                "evaluations": result.iterations, "seconds": result.seconds},
        "channels": [
            {"channel": c.channel, "spend": c.spend, "decay": c.decay.as_dict(),
             "half_saturation": c.half_saturation,
             "shape": c.shape, "ceiling_per_period": c.ceiling, "contribution": c.contribution.as_dict(),
             "roas": c.roas.as_dict(), "elasticity": c.elasticity.as_dict(),
             "marginal_roas": c.marginal_roas.as_dict()}
            for c in result.channels
        ],
        "notes": list(result.notes),
        "interval_level": result.level,
        "interval": "normal (Laplace approximation at the posterior mode, delta method)",
    }
