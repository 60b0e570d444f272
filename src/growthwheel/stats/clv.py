"""Customer lifetime value: BG/NBD, Pareto/NBD and Gamma-Gamma by maximum likelihood.

Pure numerics (numpy / scipy), no I/O. Everything is vectorised and computed in log space.

**Data.** One row per customer (or per distinct row with a ``count``, see :func:`compress`):

* ``frequency`` ``x``: repeat purchases, i.e. purchase *days* after the first one (whole numbers);
* ``recency`` ``t_x``: time from the first to the last purchase (0 when ``x == 0``);
* ``age`` ``T``: time from the first purchase to the end of the calibration period;
* ``monetary`` ``m``: mean spend per repeat purchase (Gamma-Gamma only; major units).

Durations are in one time unit (:data:`TIME_UNITS`: day, week, or month = 365.25 / 12 days).

**Models** (Fader, Hardie & Lee 2005 "Counting your customers the easy way"; Schmittlein, Morrison
& Colombo 1987 with Fader & Hardie's 2005 note for Pareto/NBD; Colombo & Jiang 1999 / Fader,
Hardie & Lee 2005 "RFM and CLV" for Gamma-Gamma):

* BG/NBD ``r, alpha, a, b``: while alive a customer buys at Poisson rate ``λ ~ Gamma(r, alpha)``
  (``alpha`` a rate parameter, in the time unit) and drops out after each repeat purchase with
  probability ``p ~ Beta(a, b)``.
* Pareto/NBD ``r, alpha, s, beta``: same purchasing, lifetime exponential with rate
  ``μ ~ Gamma(s, beta)``.
* Gamma-Gamma ``p, q, v`` (``v`` is γ): each purchase's spend ``z ~ Gamma(p, ν)``,
  ``ν ~ Gamma(q, v)`` per customer. Fitted on repeat buyers with positive spend only.

**Fitting.** Parameters are estimated in log space with L-BFGS-B inside bounds (analytic gradients
for BG/NBD and Gamma-Gamma, finite differences for Pareto/NBD, which starts from a BG/NBD fit).
L-BFGS-B starts from the most likely of a few starting points, then from the others if it does not
converge; if none converges, Nelder-Mead continues from the best point and L-BFGS-B polishes.
``converged`` says whether the (projected) gradient ended near zero. Durations (and spends) are
divided by their mean while optimising, so the bounds and the conditioning do not depend on the
time unit or the currency; results are scaled back. Identical ``(x, t_x, T)`` rows are merged into
counts first, which makes a million customers with day-granular dates cheap. Standard errors come
from the inverse of a numerical Hessian of the negative log-likelihood with respect to the
parameters themselves (not their logs). A parameter that ends on a bound (``at_bounds``), or on
which the likelihood is flat, gets no standard error (NaN) and the fit's ``message`` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.stats import clv_likelihood as likelihood
from growthwheel.stats.mle import Problem, solve, std_errors

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Days per time unit. A month is the mean Gregorian month, 365.25 / 12 = 30.4375 days.
TIME_UNITS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 30.4375}
DAYS_PER_MONTH = TIME_UNITS["month"]


class CannotFitError(GrowthwheelError):
    """The data cannot identify the model (no customers, no repeat buyers, no positive spend)."""

    code = "cannot_fit"
    status = 422


def _check_unit(time_unit: str) -> None:
    if time_unit not in TIME_UNITS:
        raise InvalidArgumentError(f"unknown time unit {time_unit!r}; choose one of: {', '.join(TIME_UNITS)}")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def _as_array(name: str, values: Any) -> Array:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name}: not numbers") from None
    if array.ndim != 1:
        array = array.reshape(-1)
    return array


@dataclass(frozen=True, eq=False)
class RfmData:
    """Per-customer repeat-purchase summary (one row per customer, or per distinct row with counts).

    ``counts`` (default 1 per row) is how many customers each row stands for. ``monetary`` is only
    needed for Gamma-Gamma; it may be NaN for customers without repeat purchases.
    """

    frequency: Array
    recency: Array
    age: Array
    monetary: Array | None = None
    counts: Array | None = None
    time_unit: str = "week"

    def __post_init__(self) -> None:
        _check_unit(self.time_unit)
        x = _as_array("frequency", self.frequency)
        t_x = _as_array("recency", self.recency)
        big_t = _as_array("age", self.age)
        n = len(x)
        if len(t_x) != n or len(big_t) != n:
            raise InvalidArgumentError(
                f"frequency, recency and age must have the same length ({n}, {len(t_x)}, {len(big_t)})"
            )
        counts = np.ones(n) if self.counts is None else _as_array("counts", self.counts)
        if len(counts) != n:
            raise InvalidArgumentError(f"counts has {len(counts)} values for {n} rows")
        for name, values in (("frequency", x), ("recency", t_x), ("age", big_t), ("counts", counts)):
            bad = int(np.count_nonzero(~np.isfinite(values)))
            if bad:
                raise InvalidArgumentError(f"{name}: {bad:,} missing or infinite value(s)")
            negative = int(np.count_nonzero(values < 0))
            if negative:
                raise InvalidArgumentError(f"{name}: {negative:,} negative value(s)")
        fractional = int(np.count_nonzero(x != np.floor(x)))
        if fractional:
            raise InvalidArgumentError(f"frequency: {fractional:,} value(s) are not whole numbers")
        late = int(np.count_nonzero(t_x > big_t * (1 + 1e-12)))
        if late:
            raise InvalidArgumentError(
                f"recency is after the end of the calibration period (t_x > T) for {late:,} customer(s)"
            )
        stray = int(np.count_nonzero((x == 0) & (t_x > 0)))
        if stray:
            raise InvalidArgumentError(
                f"{stray:,} customer(s) have no repeat purchase (frequency 0) but a recency above 0"
            )
        object.__setattr__(self, "frequency", x)
        object.__setattr__(self, "recency", np.minimum(t_x, big_t))
        object.__setattr__(self, "age", big_t)
        object.__setattr__(self, "counts", counts)
        if self.monetary is not None:
            m = _as_array("monetary", self.monetary)
            if len(m) != n:
                raise InvalidArgumentError(f"monetary has {len(m)} values for {n} rows")
            object.__setattr__(self, "monetary", m)

    @property
    def weights(self) -> Array:
        """Customers per row (``counts``, always set after construction)."""
        assert self.counts is not None
        return self.counts

    @property
    def n_customers(self) -> int:
        """Number of customers (sum of the counts)."""
        return round(float(self.weights.sum()))

    @property
    def n_repeat_buyers(self) -> int:
        """Customers with at least one repeat purchase."""
        return round(float(self.weights[self.frequency > 0].sum()))


def unique_rows(*columns: Array) -> tuple[list[Array], IntArray]:
    """Distinct rows of equal-length columns, and for each input row the index of its distinct row.

    The distinct rows come sorted (lexicographically, first column first), each taken from its
    first occurrence. Each column and then the combined row key are hashed (``pandas.factorize``,
    linear time) rather than sorting the rows: the answer is that of :func:`_unique_rows_sorted`.
    """
    n = len(columns[0])
    if n == 0:
        return [c.copy() for c in columns], np.zeros(0, dtype=np.intp)
    if any(c.dtype.kind == "f" and bool(np.isnan(c).any()) for c in columns):
        return _unique_rows_sorted(*columns)  # NaN: every one distinct, as the sort finds them
    key = np.zeros(n, dtype=np.int64)
    size = 1
    for column in columns:
        codes, uniques = pd.factorize(column, sort=True)  # codes = ranks of the sorted values
        if size * len(uniques) >= 2**62:  # re-rank the key so far to keep it in int64
            key_codes, key_uniques = pd.factorize(key, sort=True)
            key, size = key_codes.astype(np.int64), len(key_uniques)
        key = key * len(uniques) + codes
        size *= len(uniques)
    group, distinct = pd.factorize(key, sort=True)
    firsts_seen = pd.Series(group).drop_duplicates()  # first occurrence of each group
    firsts = np.empty(len(distinct), dtype=np.intp)
    firsts[firsts_seen.to_numpy()] = firsts_seen.index.to_numpy()
    return [c[firsts] for c in columns], np.asarray(group, dtype=np.intp)


def _unique_rows_sorted(*columns: Array) -> tuple[list[Array], IntArray]:
    """:func:`unique_rows` by sorting the rows (``np.lexsort``)."""
    n = len(columns[0])
    order = np.lexsort(columns[::-1])
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for column in columns:
        sorted_column = column[order]
        change[1:] |= sorted_column[1:] != sorted_column[:-1]
    group = np.cumsum(change) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group
    firsts = order[change]
    return [c[firsts] for c in columns], inverse


def compress(data: RfmData) -> tuple[RfmData, IntArray]:
    """Merge customers with identical ``(x, t_x, T)`` into one row with a count (drops monetary).

    Returns the compressed data and, for each original row, the index of its compressed row.
    """
    (x, t_x, big_t), inverse = unique_rows(data.frequency, data.recency, data.age)
    counts = np.bincount(inverse, weights=data.weights, minlength=len(x)).astype(np.float64)
    return RfmData(x, t_x, big_t, counts=counts, time_unit=data.time_unit), inverse


# --------------------------------------------------------------------------------------------
# Parameters and fits
# --------------------------------------------------------------------------------------------


class _Params:
    """What every model's parameters share: their names, and a dict of them by name."""

    names: ClassVar[tuple[str, ...]] = ()

    def as_dict(self) -> dict[str, float]:
        """The parameters by name."""
        return {name: float(getattr(self, name)) for name in self.names}


@dataclass(frozen=True)
class BgNbdParams(_Params):
    """BG/NBD: ``λ ~ Gamma(shape r, rate alpha)`` per time unit, drop-out ``p ~ Beta(a, b)``."""

    r: float
    alpha: float
    a: float
    b: float
    model: ClassVar[str] = "bgnbd"
    names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    time_scaled: ClassVar[tuple[str, ...]] = ("alpha",)


@dataclass(frozen=True)
class ParetoNbdParams(_Params):
    """Pareto/NBD: ``λ ~ Gamma(r, alpha)``, lifetime rate ``μ ~ Gamma(s, beta)`` per time unit."""

    r: float
    alpha: float
    s: float
    beta: float
    model: ClassVar[str] = "paretonbd"
    names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    time_scaled: ClassVar[tuple[str, ...]] = ("alpha", "beta")


@dataclass(frozen=True)
class GammaGammaParams(_Params):
    """Gamma-Gamma: spend per purchase ``z ~ Gamma(p, ν)``, ``ν ~ Gamma(q, v)`` (``v`` is γ)."""

    p: float
    q: float
    v: float
    model: ClassVar[str] = "gammagamma"
    names: ClassVar[tuple[str, ...]] = ("p", "q", "v")

    @property
    def mean_spend(self) -> float:
        """Population mean spend per purchase, ``p v / (q - 1)`` (infinite when ``q <= 1``)."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else math.inf


PurchaseParams = BgNbdParams | ParetoNbdParams
P = TypeVar("P", BgNbdParams, ParetoNbdParams, GammaGammaParams)


@dataclass(frozen=True)
class Fit(Generic[P]):
    """A fitted model: parameters, standard errors, log-likelihood and how the fit went."""

    params: P
    std_errors: dict[str, float]
    log_likelihood: float
    n_customers: int
    time_unit: str
    converged: bool
    optimizer: str
    at_bounds: tuple[str, ...] = ()
    n_excluded: int = 0
    message: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    #: Covariance of the estimates (inverse Hessian), in the order of ``params.names``; NaN rows
    #: and columns for parameters on a bound.
    covariance: Array = field(default_factory=lambda: np.zeros((0, 0)), compare=False, repr=False)

    @property
    def model(self) -> str:
        """``bgnbd``, ``paretonbd`` or ``gammagamma``."""
        return self.params.model

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (NaN standard errors become ``None``)."""
        return {
            "model": self.model,
            "params": self.params.as_dict(),
            "std_errors": {k: (None if math.isnan(v) else v) for k, v in self.std_errors.items()},
            "log_likelihood": self.log_likelihood,
            "customers": self.n_customers,
            "excluded_customers": self.n_excluded,
            "time_unit": self.time_unit,
            "converged": self.converged,
            "optimizer": self.optimizer,
            "at_bounds": list(self.at_bounds),
            "message": self.message,
        }


# --------------------------------------------------------------------------------------------
# Log-likelihoods (per row; parameters in the data's time scale)
# --------------------------------------------------------------------------------------------


def bgnbd_log_likelihood(params: BgNbdParams, data: RfmData) -> Array:
    """Per-row BG/NBD log-likelihood (not weighted by counts)."""
    rows = likelihood.Rows.of(data.frequency, data.recency, data.age, data.weights)
    return likelihood.bgnbd_ll_rows([params.r, params.alpha, params.a, params.b], rows)[0]


def paretonbd_log_likelihood(params: ParetoNbdParams, data: RfmData) -> Array:
    """Per-row Pareto/NBD log-likelihood (not weighted by counts)."""
    ll, _, _ = likelihood.pnbd_terms([params.r, params.alpha, params.s, params.beta], data.frequency,
                           data.recency, data.age)
    return ll


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def _purchase_rows(data: RfmData) -> tuple[likelihood.Rows, float, float]:
    """Compressed rows with durations divided by the mean age; returns (rows, time scale, Σ w x)."""
    n = data.n_customers
    if n == 0:
        raise CannotFitError("no customers to fit: the calibration period holds no purchases")
    compact, _ = compress(data)
    w = compact.weights
    repeats = likelihood.wsum(w, compact.frequency)
    if repeats == 0:
        raise CannotFitError(
            f"no repeat buyers: all {n:,} customers bought on a single day in the calibration period, "
            "so the repeat-purchase rate cannot be estimated (use a later calibration end or more history)"
        )
    scale = float(likelihood.wsum(w, compact.age) / w.sum())
    if scale <= 0:
        raise CannotFitError(
            f"no customer has been observed for any time (every age T is 0 across {n:,} customers)"
        )
    rows = likelihood.Rows.of(compact.frequency, compact.recency / scale, compact.age / scale, w)
    return rows, scale, repeats


def fit_bgnbd(data: RfmData) -> Fit[BgNbdParams]:
    """Fit BG/NBD ``r, alpha, a, b`` by maximum likelihood (see the module notes)."""
    rows, scale, repeats = _purchase_rows(data)
    w_total = float(rows.w.sum())
    rate = repeats / likelihood.wsum(rows.w, rows.big_t)  # repeat purchases per scaled time unit
    guesses = ((1.0, 1.0, 1.0), (0.3, 0.8, 2.5), (3.0, 2.0, 6.0))
    starts = [np.array([r, r / rate, a, b]) for r, a, b in guesses]
    problem = Problem(BgNbdParams.names, lambda th: likelihood.bgnbd_ll_grad(th, rows, grad=False)[0],
                       lambda th: likelihood.bgnbd_ll_grad(th, rows), w_total, starts)
    sol = solve(problem)
    scales = np.array([1.0, scale, 1.0, 1.0])
    r, alpha, a, b = sol.theta * scales
    return Fit(
        params=BgNbdParams(float(r), float(alpha), float(a), float(b)),
        std_errors=std_errors(BgNbdParams.names, sol.cov, scales),
        covariance=sol.cov * np.outer(scales, scales),
        log_likelihood=sol.loglik - repeats * math.log(scale),
        n_customers=data.n_customers, time_unit=data.time_unit, converged=sol.converged,
        optimizer=sol.optimizer, at_bounds=sol.at_bounds, message=sol.message,
    )


def fit_paretonbd(data: RfmData) -> Fit[ParetoNbdParams]:
    """Fit Pareto/NBD ``r, alpha, s, beta`` by maximum likelihood (see the module notes)."""
    rows, scale, repeats = _purchase_rows(data)
    w_total = float(rows.w.sum())
    rate = repeats / likelihood.wsum(rows.w, rows.big_t)
    starts = [np.array([r, r / rate, s, s * beta]) for r, s, beta in ((1.0, 1.0, 1.0), (0.5, 0.5, 2.0))]
    # The purchase process is BG/NBD's: start from its (cheap) fit, with a lifetime rate equal to
    # its drop-out rate per unit of time, (r / alpha) * a / (a + b).
    bg = solve(Problem(BgNbdParams.names, lambda th: likelihood.bgnbd_ll_grad(th, rows, grad=False)[0],
                         lambda th: likelihood.bgnbd_ll_grad(th, rows), w_total, [starts[0].copy()]),
                hessian=False)
    r0, alpha0, a0, b0 = bg.theta
    dropout = r0 / alpha0 * a0 / (a0 + b0)
    starts += [np.array([r0, alpha0, s0, s0 / max(dropout, 1e-6)]) for s0 in (1.0, 0.5)]
    problem = Problem(ParetoNbdParams.names, lambda th: likelihood.pnbd_ll(th, rows), None, w_total, starts)
    sol = solve(problem)
    scales = np.array([1.0, scale, 1.0, scale])
    r, alpha, s, beta = sol.theta * scales
    return Fit(
        params=ParetoNbdParams(float(r), float(alpha), float(s), float(beta)),
        std_errors=std_errors(ParetoNbdParams.names, sol.cov, scales),
        covariance=sol.cov * np.outer(scales, scales),
        log_likelihood=sol.loglik - repeats * math.log(scale),
        n_customers=data.n_customers, time_unit=data.time_unit, converged=sol.converged,
        optimizer=sol.optimizer, at_bounds=sol.at_bounds, message=sol.message,
    )


def fit_purchases(data: RfmData, model: str = "bgnbd") -> Fit[BgNbdParams] | Fit[ParetoNbdParams]:
    """Fit the repeat-purchase model called ``model`` (``bgnbd`` or ``paretonbd``)."""
    if model == "bgnbd":
        return fit_bgnbd(data)
    if model == "paretonbd":
        return fit_paretonbd(data)
    raise InvalidArgumentError(f"unknown model {model!r}; choose bgnbd or paretonbd")


def fit_gamma_gamma(data: RfmData) -> Fit[GammaGammaParams]:
    """Fit Gamma-Gamma ``p, q, v`` on the repeat buyers with a positive mean spend.

    Customers without repeat purchases carry no information about spend variation and are left
    out; repeat buyers whose mean spend is missing, zero or negative are left out too and counted
    in ``n_excluded``.
    """
    if data.monetary is None:
        raise InvalidArgumentError("Gamma-Gamma needs the mean spend per repeat purchase (monetary)")
    repeat = data.frequency > 0
    if data.n_customers == 0:
        raise CannotFitError("no customers to fit: the calibration period holds no purchases")
    if not np.any(repeat & (data.weights > 0)):
        raise CannotFitError(
            f"no repeat buyers among {data.n_customers:,} customers: the spend model (Gamma-Gamma) is "
            "fitted on customers with at least one repeat purchase"
        )
    with np.errstate(invalid="ignore"):
        usable = repeat & np.isfinite(data.monetary) & (data.monetary > 0)
    excluded = round(float(data.weights[repeat & ~usable].sum()))
    if not np.any(usable):
        raise CannotFitError(
            f"no repeat buyer has a positive spend ({excluded:,} repeat buyer(s), all with zero, "
            "negative or missing mean spend): the spend model (Gamma-Gamma) needs positive amounts"
        )
    x, m, w = data.frequency[usable], data.monetary[usable], data.weights[usable]
    w_total = float(w.sum())
    scale = float(likelihood.wsum(w, m) / w_total)
    ms = m / scale
    starts = [np.array([p, q, (q - 1) / p]) for p, q in ((1.0, 2.0), (5.0, 3.0), (2.0, 6.0))]
    rows = likelihood.SpendRows.of(x, ms, w)
    problem = Problem(GammaGammaParams.names, lambda th: likelihood.gg_ll_grad(th, rows, grad=False)[0],
                       lambda th: likelihood.gg_ll_grad(th, rows), w_total, starts)
    sol = solve(problem)
    scales = np.array([1.0, 1.0, scale])
    p, q, v = sol.theta * scales
    message = sol.message
    if excluded:
        message = (f"{excluded:,} repeat buyer(s) without a positive mean spend were left out. "
                   + message).strip()
    return Fit(
        params=GammaGammaParams(float(p), float(q), float(v)),
        std_errors=std_errors(GammaGammaParams.names, sol.cov, scales),
        covariance=sol.cov * np.outer(scales, scales),
        log_likelihood=sol.loglik - w_total * math.log(scale),
        n_customers=round(w_total), time_unit=data.time_unit, converged=sol.converged,
        optimizer=sol.optimizer, at_bounds=sol.at_bounds, n_excluded=excluded, message=message,
        extra={"frequency_monetary_correlation": _weighted_corr(x, m, w)},
    )


def _weighted_corr(x: Array, y: Array, w: Array) -> float:
    """Weighted Pearson correlation (NaN when either side is constant). Gamma-Gamma assumes the
    spend is independent of the purchase frequency; a strong correlation is a warning sign."""
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    cxy = np.average((x - mx) * (y - my), weights=w)
    vx, vy = np.average((x - mx) ** 2, weights=w), np.average((y - my) ** 2, weights=w)
    return float(cxy / math.sqrt(vx * vy)) if vx > 0 and vy > 0 else math.nan


# --------------------------------------------------------------------------------------------
# Predictions (durations in the fit's time unit)
# --------------------------------------------------------------------------------------------


def _arrays(*values: Any) -> list[Array]:
    """Inputs as broadcast 1-D float arrays (scalars become one-element arrays)."""
    arrays = [np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in values]
    return [np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(*arrays)]


def p_alive(params: PurchaseParams, frequency: Any, recency: Any, age: Any) -> Array:
    """Probability that each customer is still alive at the end of the calibration period."""
    x, t_x, big_t = _arrays(frequency, recency, age)
    if isinstance(params, BgNbdParams):
        r, alpha, a, b = params.r, params.alpha, params.a, params.b
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = (math.log(a) - np.log(b + x - 1)
                        + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x)))
        return np.where(x > 0, special.expit(-log_odds), 1.0)
    _, log_l1, log_l2 = likelihood.pnbd_terms([params.r, params.alpha, params.s, params.beta], x, t_x, big_t)
    return np.asarray(special.expit(log_l1 - log_l2), dtype=np.float64)


def _bgnbd_expected(params: BgNbdParams, t: Array, x: Array, t_x: Array, big_t: Array) -> Array:
    r, alpha, b = params.r, params.alpha, params.b
    if _bgnbd_singular(params):  # removable singularity at a = 1: average both sides
        lo = _bgnbd_expected(BgNbdParams(r, alpha, 1.0 - 1e-6, b), t, x, t_x, big_t)
        hi = _bgnbd_expected(BgNbdParams(r, alpha, 1.0 + 1e-6, b), t, x, t_x, big_t)
        return (lo + hi) / 2
    return np.asarray(_bgnbd_rate(params, t, x, big_t) * p_alive(params, x, t_x, big_t),
                      dtype=np.float64)


def _bgnbd_singular(params: BgNbdParams) -> bool:
    return abs(params.a - 1.0) < 1e-7


def _bgnbd_rate(params: BgNbdParams, t: Array, x: Array, big_t: Array) -> Array:
    """BG/NBD expected purchases in the next ``t`` if alive: a function of ``(x, T)`` only (the
    recency enters through P(alive)); ``a`` must not be 1."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    c = a + b + x - 1
    z = t / (alpha + big_t + t)
    log_ratio = (r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t))
    log_hyp = likelihood.log_hyp2f1(r + x, b + x, c, z)
    with np.errstate(invalid="ignore"):
        second = -np.expm1(log_hyp + log_ratio)
    bad = ~np.isfinite(second)
    if np.any(bad):  # 2F1 < 0 (c = a + b + x - 1 < 0, e.g. x = 0 with a + b < 1): no log
        rb, xb, cb, zb, lb = (np.broadcast_to(v, second.shape)[bad] for v in (r + x, b + x, c, z, log_ratio))
        second = second.copy()
        second[bad] = 1.0 - np.exp(lb) * special.hyp2f1(rb, xb, cb, zb)
    return np.asarray(c / (a - 1) * second, dtype=np.float64)


def _pnbd_expected(params: ParetoNbdParams, t: Array, x: Array, t_x: Array, big_t: Array) -> Array:
    return np.asarray(_pnbd_rate(params, t, x, big_t) * p_alive(params, x, t_x, big_t),
                      dtype=np.float64)


def _pnbd_rate(params: ParetoNbdParams, t: Array, x: Array, big_t: Array) -> Array:
    """Pareto/NBD expected purchases in the next ``t`` if alive: a function of ``(x, T)`` only."""
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    log_ratio = np.log(beta + big_t) - np.log(beta + big_t + t)
    if abs(s - 1.0) < 1e-9:
        tail = -log_ratio  # limit of (1 - ratio^(s-1)) / (s-1) as s -> 1
    else:
        tail = -np.expm1((s - 1) * log_ratio) / (s - 1)
    return np.asarray((r + x) * (beta + big_t) / (alpha + big_t) * tail, dtype=np.float64)


def expected_purchases(params: PurchaseParams, t: Any, frequency: Any, recency: Any, age: Any) -> Array:
    """Expected purchases in the next ``t`` time units, given each customer's ``(x, t_x, T)``."""
    t_, x, t_x, big_t = _arrays(t, frequency, recency, age)
    if isinstance(params, BgNbdParams):
        result = _bgnbd_expected(params, t_, x, t_x, big_t)
    else:
        result = _pnbd_expected(params, t_, x, t_x, big_t)
    return np.where(t_ > 0, result, 0.0)


def expected_spend(params: GammaGammaParams, frequency: Any, monetary: Any) -> Array:
    """Expected spend per future purchase, ``p (v + x m) / (p x + q - 1)``; the population mean
    ``p v / (q - 1)`` for customers without a repeat purchase (or without a positive mean spend)."""
    if params.q <= 1:
        raise CannotFitError(
            f"the fitted spend model has q = {params.q:.3g} <= 1, so the expected spend is not finite"
        )
    x, m = _arrays(frequency, monetary)
    with np.errstate(invalid="ignore"):
        usable = (x > 0) & np.isfinite(m) & (m > 0)
    xs = np.where(usable, x, 0.0)
    ms = np.where(usable, m, 0.0)
    return np.asarray(params.p * (params.v + xs * ms) / (params.p * xs + params.q - 1), dtype=np.float64)


def discount_per_unit(monthly_rate: float, time_unit: str) -> float:
    """A monthly discount rate as the equivalent rate per time unit: ``(1 + d)^(days / 30.4375) - 1``."""
    _check_unit(time_unit)
    if not math.isfinite(monthly_rate) or monthly_rate <= -1:
        raise InvalidArgumentError(f"discount rate {monthly_rate!r} must be a number above -1 (0.01 = 1%)")
    return float((1.0 + monthly_rate) ** (TIME_UNITS[time_unit] / DAYS_PER_MONTH) - 1.0)


def _discounted_purchases(purchases: PurchaseParams, x: Array, t_x: Array, big_t: Array, periods: int,
                          discount_rate: float, alive: Array | None = None) -> tuple[Array, Array]:
    """Per row: ``Σ_k (E[X(k)] − E[X(k−1)]) / (1 + d)^k`` and ``E[X(periods)]``.

    ``E[X(k)]`` is (expected purchases if alive, a function of ``(x, T)``) × P(alive): the first
    factor is computed once per distinct ``(x, T)`` and P(alive) once per row (``alive`` if given),
    the same arithmetic as :func:`expected_purchases` element by element, so the same numbers.
    """
    value = np.zeros(len(x))
    previous = np.zeros(len(x))
    singular = isinstance(purchases, BgNbdParams) and _bgnbd_singular(purchases)
    if singular or periods == 0:
        for k in range(1, periods + 1):
            cumulative = expected_purchases(purchases, float(k), x, t_x, big_t)
            value += (cumulative - previous) / (1.0 + discount_rate) ** k
            previous = cumulative
        return value, previous
    if alive is None:
        alive = p_alive(purchases, x, t_x, big_t)
    (px, pt), pair = unique_rows(x, big_t)
    for k in range(1, periods + 1):
        t = np.atleast_1d(np.float64(k))
        if isinstance(purchases, BgNbdParams):
            rate = _bgnbd_rate(purchases, t, px, pt)
        else:
            rate = _pnbd_rate(purchases, t, px, pt)
        cumulative = np.asarray(rate[pair] * alive, dtype=np.float64)
        value += (cumulative - previous) / (1.0 + discount_rate) ** k
        previous = cumulative
    return value, previous


def customer_lifetime_value(
    purchases: PurchaseParams,
    spend: GammaGammaParams,
    frequency: Any,
    recency: Any,
    age: Any,
    monetary: Any,
    *,
    periods: int,
    discount_rate: float,
) -> Array:
    """Discounted value of each customer's purchases over the next ``periods`` time units.

    ``sum_{k=1..periods} (E[X(k)] - E[X(k-1)]) * E[spend] / (1 + discount_rate)^k`` with
    ``discount_rate`` per time unit (see :func:`discount_per_unit`); same money unit as ``monetary``.
    """
    return score_customers(purchases, spend, frequency, recency, age, monetary, periods=periods,
                           discount_rate=discount_rate).clv


@dataclass(frozen=True, eq=False)
class CustomerScores:
    """Per-customer predictions over a horizon (money in the unit of ``monetary``)."""

    p_alive: Array
    expected_purchases: Array
    expected_spend: Array
    clv: Array


def score_customers(
    purchases: PurchaseParams,
    spend: GammaGammaParams,
    frequency: Any,
    recency: Any,
    age: Any,
    monetary: Any,
    *,
    periods: int,
    discount_rate: float,
) -> CustomerScores:
    """P(alive), expected purchases over ``periods`` time units, expected spend per purchase and
    CLV (see :func:`customer_lifetime_value`), computing each distinct ``(x, t_x, T)`` once."""
    if periods < 0:
        raise InvalidArgumentError(f"horizon {periods} must not be negative")
    x, t_x, big_t, m = _arrays(frequency, recency, age, monetary)
    per_purchase = expected_spend(spend, x, m)
    (ux, utx, ut), inverse = unique_rows(x, t_x, big_t)
    alive = p_alive(purchases, ux, utx, ut)
    discounted, cumulative = _discounted_purchases(purchases, ux, utx, ut, periods, discount_rate,
                                                   alive)
    return CustomerScores(
        p_alive=alive[inverse],
        expected_purchases=cumulative[inverse],
        expected_spend=per_purchase,
        clv=np.asarray(discounted[inverse] * per_purchase, dtype=np.float64),
    )


# --------------------------------------------------------------------------------------------
# Holdout validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutRow:
    """Predicted vs actual holdout purchases for customers with one calibration frequency."""

    frequency: str
    customers: int
    actual_total: float
    predicted_total: float
    actual_mean: float
    predicted_mean: float
    mean_absolute_error: float


@dataclass(frozen=True)
class HoldoutComparison:
    """Predicted vs actual holdout purchases, overall and by calibration frequency."""

    customers: int
    actual_total: float
    predicted_total: float
    mean_absolute_error: float
    rows: tuple[HoldoutRow, ...]


def compare_holdout(frequency: Any, predicted: Any, actual: Any, *, top: int = 7) -> HoldoutComparison:
    """Group customers by calibration frequency (0, 1, ..., ``top``+) and compare totals and means.

    The mean absolute error is per customer: the mean of ``|predicted - actual|``.
    """
    x, pred, act = _arrays(frequency, predicted, actual)
    if len(x) == 0:
        raise CannotFitError("no customers to validate")
    bucket = np.minimum(x, top).astype(np.int64)
    err = np.abs(pred - act)
    rows = []
    for k in range(top + 1):
        sel = bucket == k
        n = int(sel.sum())
        if n == 0:
            continue
        rows.append(HoldoutRow(
            frequency=f"{k}+" if k == top else str(k), customers=n,
            actual_total=float(act[sel].sum()), predicted_total=float(pred[sel].sum()),
            actual_mean=float(act[sel].mean()), predicted_mean=float(pred[sel].mean()),
            mean_absolute_error=float(err[sel].mean()),
        ))
    return HoldoutComparison(len(x), float(act.sum()), float(pred.sum()), float(err.mean()), tuple(rows))
