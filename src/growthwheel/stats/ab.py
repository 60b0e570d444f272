"""A/B test comparisons from sufficient statistics (pure numerics: numpy / scipy, no I/O).

The database aggregates each variant of an experiment into a small frozen dataclass of sums —
the GrowthBook gbstats design — and this module turns two of them into a :class:`Comparison`
(:func:`compare`) and a list of them, control first, into an :class:`Analysis` (:func:`analyse`).

**Metrics.**

* :class:`MeanStats` (revenue per user, orders per user): Welch's t-test with Welch–Satterthwaite
  degrees of freedom; per-unit variance ``(Σy² − (Σy)²/n) / (n − 1)``.
* :class:`ProportionStats` (conversion): normal approximation. The *confidence interval* of the
  absolute difference uses the unpooled (Wald) standard error ``sqrt(p₁q₁/n₁ + p₂q₂/n₂)``; its
  *p-value* is the classic two-proportion z-test with the pooled rate under H₀ (the test of
  statsmodels' ``proportions_ztest`` and of a 2×2 chi-square without continuity correction). The two
  agree except in rare borderline cases, where the pooled test is the better-calibrated one.
* :class:`RatioStats` (AOV = revenue / orders, items per order) over randomised units (customers):
  the ratio ``Σm / Σd`` has per-unit delta-method variance
  ``var(m)/d̄² + m̄² var(d)/d̄⁴ − 2 m̄ cov(m, d)/d̄³`` (Deng, Knoblich & Lu 2018), then Welch.
* :class:`CupedMeanStats` (CUPED, Deng et al. 2013): ``ȳ − θ x̄`` with the pre-period value ``x`` of
  each unit and ``θ = cov(y, x) / var(x)`` estimated on both arms pooled (one θ for both, so the
  adjustment cannot manufacture an effect). The effect stays unbiased; its variance shrinks by about
  ``1 − corr(y, x)²``.
* :class:`CupedRatioStats`: the regression-adjusted ratio ``R_post − θ R_pre`` with
  ``θ = Σ_arms cov(R_post, R_pre) / Σ_arms var(R_pre)``, all by the delta method on the 4×4 covariance
  of the numerator and denominator means of both periods (gbstats' ratio CUPED).

**Effects.** The absolute effect ``B − A`` and the relative effect ``(B − A) / A`` (A the control's
unadjusted mean), whose standard error comes from the delta method, are both reported with a
``1 − alpha`` interval and a two-sided p-value (t with the Welch df for mean, ratio and CUPED metrics,
normal for proportions). ``method="sequential"`` adds always-valid intervals and p-values
(:mod:`growthwheel.stats.sequential`, from the same standard errors; unpooled for proportions) that
may be read at every refresh. The Bayesian read-out (:mod:`growthwheel.stats.bayes`) gives the
chance to win and the expected loss under a flat prior (or a Gaussian prior with ``prior_sd``).
:meth:`Comparison.significant` decides on the absolute difference's (adjusted) p-value of the chosen
method. CUPED's relative effect takes ``∂R/∂ȳ_A ≈ −ȳ_B/ȳ_A²`` as gbstats does (asymptotically exact).

**Not computable is not an error.** Impossible sums (``n < 2``, conversions above ``n``, a sum of
squares below ``(Σy)²/n``, a cross sum beyond Cauchy–Schwarz, mismatched classes) raise
:class:`~growthwheel.errors.InvalidArgumentError` naming the variant and field; legitimate but
untestable data (no variance yet, a zero control mean, an arm with no orders for a ratio) give NaN
values (``None`` in ``as_dict``) and a plain warning in ``Comparison.warnings``.

**Checked against** GrowthBook's published gbstats test cases, scipy's ``ttest_ind`` and statsmodels
(see ``tests/stats``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import numpy as np
from scipy import special
from scipy import stats as st

from growthwheel.errors import InvalidArgumentError
from growthwheel.stats import sequential
from growthwheel.stats.bayes import Posterior, posterior
from growthwheel.stats.corrections import CORRECTIONS, Correction, adjust

Method = Literal["fixed", "sequential"]
METHODS: tuple[Method, ...] = ("fixed", "sequential")

#: Default sequential tuning parameter (expected total sample size), as in gbstats.
DEFAULT_TUNING = sequential.DEFAULT_TUNING
#: SRM p-value below which the split is flagged as a sample-ratio mismatch (GrowthBook's default).
SRM_THRESHOLD = 0.001
#: The fewest units a variant may have for a comparison at all (a variance needs two).
MIN_UNITS = 2
#: Below this many units (or conversions / non-conversions) per arm the normal approximation is shaky.
SMALL_SAMPLE = 30
FEW_EVENTS = 5

__all__ = [
    "DEFAULT_TUNING",
    "KINDS",
    "METHODS",
    "SRM_THRESHOLD",
    "Analysis",
    "Comparison",
    "Correction",
    "CupedMeanStats",
    "CupedRatioStats",
    "Effect",
    "MeanStats",
    "Method",
    "ProportionStats",
    "RatioStats",
    "SrmCheck",
    "VariantStats",
    "VariantSummary",
    "analyse",
    "compare",
    "correct_analyses",
    "srm_check",
    "validate",
    "variant_mean",
]


# --------------------------------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanStats:
    """A mean metric (e.g. revenue per user): units, sum and sum of squares of the metric per unit."""

    name: str
    n: int
    sum: float
    sum_squares: float


@dataclass(frozen=True)
class ProportionStats:
    """A conversion metric: units and how many of them converted."""

    name: str
    n: int
    conversions: int


@dataclass(frozen=True)
class RatioStats:
    """A ratio metric ``Σ num / Σ den`` (e.g. AOV = revenue / orders) over ``n`` randomised units.

    Per unit ``i`` (numerator ``mᵢ``, denominator ``dᵢ``): ``num_sum = Σ mᵢ``,
    ``num_sum_squares = Σ mᵢ²``, ``den_sum = Σ dᵢ``, ``den_sum_squares = Σ dᵢ²``,
    ``num_den_sum = Σ mᵢ dᵢ``.
    """

    name: str
    n: int
    num_sum: float
    num_sum_squares: float
    den_sum: float
    den_sum_squares: float
    num_den_sum: float


@dataclass(frozen=True)
class CupedMeanStats:
    """A mean metric with a pre-period covariate per unit for CUPED.

    ``sum``/``sum_squares`` are of the metric ``y``, ``pre_sum``/``pre_sum_squares`` of the
    pre-period value ``x`` of the same unit (0 for units with no history), ``cross_sum = Σ xᵢ yᵢ``.
    """

    name: str
    n: int
    sum: float
    sum_squares: float
    pre_sum: float
    pre_sum_squares: float
    cross_sum: float


@dataclass(frozen=True)
class CupedRatioStats:
    """A ratio metric with pre-period numerator and denominator per unit (regression-adjusted).

    Post period per unit: numerator ``m`` and denominator ``d``; pre period: ``m⁰`` and ``d⁰``.
    Fields: ``num_sum = Σm``, ``num_sum_squares = Σm²``, ``den_sum = Σd``, ``den_sum_squares = Σd²``,
    ``num_den_sum = Σm·d``; ``pre_num_sum = Σm⁰``, ``pre_num_sum_squares = Σm⁰²``,
    ``pre_den_sum = Σd⁰``, ``pre_den_sum_squares = Σd⁰²``, ``pre_num_den_sum = Σm⁰·d⁰``;
    cross sums ``num_pre_num_sum = Σm·m⁰``, ``num_pre_den_sum = Σm·d⁰``,
    ``den_pre_num_sum = Σd·m⁰``, ``den_pre_den_sum = Σd·d⁰``.
    """

    name: str
    n: int
    num_sum: float
    num_sum_squares: float
    den_sum: float
    den_sum_squares: float
    num_den_sum: float
    pre_num_sum: float
    pre_num_sum_squares: float
    pre_den_sum: float
    pre_den_sum_squares: float
    pre_num_den_sum: float
    num_pre_num_sum: float
    num_pre_den_sum: float
    den_pre_num_sum: float
    den_pre_den_sum: float


VariantStats = MeanStats | ProportionStats | RatioStats | CupedMeanStats | CupedRatioStats

#: The ``kind`` label of each statistics class (``Comparison.kind``).
KINDS: dict[type, str] = {
    MeanStats: "mean",
    ProportionStats: "proportion",
    RatioStats: "ratio",
    CupedMeanStats: "cuped_mean",
    CupedRatioStats: "cuped_ratio",
}


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class Effect:
    """One estimate of the treatment effect with its uncertainty.

    ``p_adjusted`` is the p-value after the multiple-comparison correction of :func:`analyse`
    (equal to ``p_value`` from :func:`compare` alone or with ``correction="none"``).
    ``df`` is the Welch–Satterthwaite degrees of freedom (``None`` for normal-based tests).
    Values that cannot be computed (no variance, a zero control mean) are NaN.
    """

    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    p_value: float
    p_adjusted: float
    df: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (non-finite floats as ``None``)."""
        return dict(_clean(asdict(self)))


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control for one metric (see :func:`compare`).

    ``absolute``/``relative`` are the fixed-horizon results; ``sequential_absolute``/
    ``sequential_relative`` the always-valid ones (only with ``method="sequential"``). ``bayes`` is the
    posterior of the relative effect (GrowthBook's default read-out), ``bayes_absolute`` of the
    absolute one (expected loss in metric units). ``theta`` is the CUPED coefficient (CUPED kinds).
    """

    control: str
    treatment: str
    kind: str
    method: Method
    alpha: float
    control_n: int
    treatment_n: int
    control_mean: float
    treatment_mean: float
    absolute: Effect
    relative: Effect
    sequential_absolute: Effect | None
    sequential_relative: Effect | None
    bayes: Posterior | None
    bayes_absolute: Posterior | None
    theta: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def primary_absolute(self) -> Effect:
        """The absolute effect of the chosen method (sequential when asked for)."""
        return self.sequential_absolute or self.absolute

    @property
    def primary_relative(self) -> Effect:
        """The relative effect of the chosen method (sequential when asked for)."""
        return self.sequential_relative or self.relative

    def significant(self) -> bool:
        """Whether the chosen method's (adjusted) p-value of the absolute difference is below ``alpha``.

        The absolute difference carries the hypothesis test proper (Welch, the pooled two-proportion
        z-test, or the always-valid test); the relative effect's interval is a delta-method
        approximation reported alongside.
        """
        return bool(self.primary_absolute.p_adjusted < self.alpha)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats as ``None``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.as_dict() if hasattr(value, "as_dict") else _clean(value)
        out["significant"] = self.significant()
        return out


@dataclass(frozen=True)
class VariantSummary:
    """One variant's headline: units and the metric's mean (rate, mean or ratio; unadjusted)."""

    name: str
    n: int
    mean: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return dict(_clean(asdict(self)))


@dataclass(frozen=True)
class SrmCheck:
    """Sample-ratio-mismatch chi-square test of the observed units against the planned weights.

    ``mismatch`` is ``p_value < SRM_THRESHOLD`` (0.001, GrowthBook's default): the split is broken
    (assignment bug, bots, a redirect that loses users) and the results should not be trusted.
    """

    chi_square: float
    df: int
    p_value: float
    mismatch: bool
    expected: tuple[float, ...]
    observed: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return dict(_clean(asdict(self)))


@dataclass(frozen=True)
class Analysis:
    """All variants of one metric: summaries, comparisons vs the control (first) and the SRM check."""

    variants: tuple[VariantSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SrmCheck | None
    alpha: float
    correction: Correction
    method: Method

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (non-finite floats as ``None``)."""
        return {
            "alpha": self.alpha,
            "method": self.method,
            "correction": self.correction,
            "variants": [v.as_dict() for v in self.variants],
            "comparisons": [c.as_dict() for c in self.comparisons],
            "srm": self.srm.as_dict() if self.srm else None,
        }


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def _label(stats: VariantStats) -> str:
    return f"variant {stats.name!r}" if stats.name else "variant"


def validate(stats: VariantStats) -> None:
    """Check one variant's statistics; raise :class:`InvalidArgumentError` naming the variant and field."""
    label = _label(stats)
    if type(stats) not in KINDS:
        raise InvalidArgumentError(f"{label}: unsupported statistics type {type(stats).__name__}")
    for f in fields(stats):
        value = getattr(stats, f.name)
        if f.name == "name":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgumentError(f"{label}: {f.name} must be a number (got {value!r})")
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{label}: {f.name} must be finite (got {value!r})")
    if stats.n != int(stats.n):
        raise InvalidArgumentError(f"{label}: n must be a whole number (got {stats.n!r})")
    if stats.n < MIN_UNITS:
        raise InvalidArgumentError(f"{label}: n must be at least {MIN_UNITS} (got {stats.n})")
    n = stats.n
    if isinstance(stats, ProportionStats):
        if stats.conversions != int(stats.conversions):
            raise InvalidArgumentError(
                f"{label}: conversions must be a whole number (got {stats.conversions!r})"
            )
        if not 0 <= stats.conversions <= n:
            raise InvalidArgumentError(
                f"{label}: conversions must be between 0 and n = {n} (got {stats.conversions})"
            )
        return
    pairs: list[tuple[str, str]] = []
    crosses: list[tuple[str, str, str]] = []
    if isinstance(stats, MeanStats):
        pairs = [("sum", "sum_squares")]
    elif isinstance(stats, CupedMeanStats):
        pairs = [("sum", "sum_squares"), ("pre_sum", "pre_sum_squares")]
        crosses = [("cross_sum", "sum_squares", "pre_sum_squares")]
    elif isinstance(stats, RatioStats):
        pairs = [("num_sum", "num_sum_squares"), ("den_sum", "den_sum_squares")]
        crosses = [("num_den_sum", "num_sum_squares", "den_sum_squares")]
    else:
        pairs = [("num_sum", "num_sum_squares"), ("den_sum", "den_sum_squares"),
                 ("pre_num_sum", "pre_num_sum_squares"), ("pre_den_sum", "pre_den_sum_squares")]
        crosses = [("num_den_sum", "num_sum_squares", "den_sum_squares"),
                   ("pre_num_den_sum", "pre_num_sum_squares", "pre_den_sum_squares"),
                   ("num_pre_num_sum", "num_sum_squares", "pre_num_sum_squares"),
                   ("num_pre_den_sum", "num_sum_squares", "pre_den_sum_squares"),
                   ("den_pre_num_sum", "den_sum_squares", "pre_num_sum_squares"),
                   ("den_pre_den_sum", "den_sum_squares", "pre_den_sum_squares")]
    for total, squares in pairs:
        s, ss = float(getattr(stats, total)), float(getattr(stats, squares))
        # Σy² ≥ (Σy)²/n (Cauchy–Schwarz); allow rounding of sums computed in floating point.
        if ss < 0 or ss - s * s / n < -1e-9 * max(ss, s * s / n, 1.0):
            raise InvalidArgumentError(
                f"{label}: {squares} = {ss!r} is smaller than {total}²/n = {s * s / n!r}; "
                f"the sums are inconsistent"
            )
    for cross, sq_a, sq_b in crosses:
        c, a, b = float(getattr(stats, cross)), float(getattr(stats, sq_a)), float(getattr(stats, sq_b))
        if abs(c) > math.sqrt(a * b) * (1 + 1e-9) + 1e-9:
            raise InvalidArgumentError(
                f"{label}: |{cross}| = {abs(c)!r} exceeds sqrt({sq_a}·{sq_b}); the sums are inconsistent"
            )


def _check_options(alpha: float, method: str, tuning: float) -> None:
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise InvalidArgumentError(f"alpha: {alpha!r} must be between 0 and 1")
    if method not in METHODS:
        raise InvalidArgumentError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    if not (isinstance(tuning, int | float) and tuning > 0 and math.isfinite(tuning)):
        raise InvalidArgumentError(f"tuning: {tuning!r} must be a positive expected sample size")


# --------------------------------------------------------------------------------------------------
# Moments: means, per-unit variances and the relative effect's variance for each kind
# --------------------------------------------------------------------------------------------------


def _var(n: int, s: float, ss: float) -> float:
    """Sample variance from sums, clipped at 0 against rounding."""
    return max((ss - s * s / n) / (n - 1), 0.0)


def _cov(n: int, s_x: float, s_y: float, s_xy: float) -> float:
    return (s_xy - s_x * s_y / n) / (n - 1)


@dataclass(frozen=True)
class _Moments:
    mean_a: float  # adjusted (CUPED) or plain mean of the control
    mean_b: float
    raw_a: float  # unadjusted means (the relative effect's denominator, the summaries)
    raw_b: float
    var_a: float  # per-unit variance of the (adjusted) metric
    var_b: float
    rel_var: float  # variance of the relative effect's estimate
    normal: bool  # normal (proportions) rather than Welch t
    theta: float | None
    pooled_se: float | None = None  # proportions: se under H0 for the p-value
    warnings: tuple[str, ...] = ()


def _rel_var_independent(
    mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int
) -> float:
    """Delta-method variance of ``B/A − 1`` for independent arms (A the control)."""
    if mean_a == 0:
        return math.nan
    return var_b / (n_b * mean_a**2) + var_a * mean_b**2 / (n_a * mean_a**4)


def variant_mean(stats: VariantStats) -> float:
    """The metric's (unadjusted) value for one variant: mean, conversion rate or ratio."""
    if isinstance(stats, ProportionStats):
        return stats.conversions / stats.n
    if isinstance(stats, MeanStats | CupedMeanStats):
        return stats.sum / stats.n
    return stats.num_sum / stats.den_sum if stats.den_sum else math.nan


def _ratio_unit(stats: RatioStats) -> tuple[float, float, float, float, float]:
    """Means of m and d, their variances and covariance (per unit)."""
    n = stats.n
    return (stats.num_sum / n, stats.den_sum / n, _var(n, stats.num_sum, stats.num_sum_squares),
            _var(n, stats.den_sum, stats.den_sum_squares),
            _cov(n, stats.num_sum, stats.den_sum, stats.num_den_sum))


def _ratio_var(m: float, d: float, vm: float, vd: float, cmd: float) -> float:
    """Per-unit delta-method variance of m̄/d̄."""
    return max(vm / d**2 + vd * m**2 / d**4 - 2.0 * cmd * m / d**3, 0.0)


def _moments(a: VariantStats, b: VariantStats) -> _Moments:
    if isinstance(a, ProportionStats) and isinstance(b, ProportionStats):
        pa, pb = a.conversions / a.n, b.conversions / b.n
        va, vb = pa * (1 - pa), pb * (1 - pb)
        pooled = (a.conversions + b.conversions) / (a.n + b.n)
        pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n))
        notes: list[str] = []
        for s in (a, b):
            if min(s.conversions, s.n - s.conversions) < FEW_EVENTS:
                notes.append(f"{_label(s)} has fewer than {FEW_EVENTS} conversions or non-conversions: "
                             "the normal approximation is unreliable")
        return _Moments(pa, pb, pa, pb, va, vb, _rel_var_independent(pa, va, a.n, pb, vb, b.n), True, None,
                        pooled_se, tuple(notes))
    if isinstance(a, MeanStats) and isinstance(b, MeanStats):
        ma, mb = a.sum / a.n, b.sum / b.n
        va, vb = _var(a.n, a.sum, a.sum_squares), _var(b.n, b.sum, b.sum_squares)
        return _Moments(ma, mb, ma, mb, va, vb, _rel_var_independent(ma, va, a.n, mb, vb, b.n), False, None)
    if isinstance(a, RatioStats | CupedRatioStats) and type(a) is type(b):
        empty = [s for s in (a, b) if s.den_sum == 0]
        if empty:  # e.g. no orders yet in an arm: AOV is undefined there, nothing can be tested
            nan = math.nan
            undefined = tuple(f"{_label(s)} has den_sum 0: the ratio is undefined" for s in empty)
            raw_a, raw_b = variant_mean(a), variant_mean(b)
            return _Moments(nan, nan, raw_a, raw_b, nan, nan, nan, False, None, None, undefined)
    if isinstance(a, RatioStats) and isinstance(b, RatioStats):
        ma, da, vma, vda, ca = _ratio_unit(a)
        mb, db, vmb, vdb, cb = _ratio_unit(b)
        ra, rb = ma / da, mb / db
        va, vb = _ratio_var(ma, da, vma, vda, ca), _ratio_var(mb, db, vmb, vdb, cb)
        return _Moments(ra, rb, ra, rb, va, vb, _rel_var_independent(ra, va, a.n, rb, vb, b.n), False, None)
    if isinstance(a, CupedMeanStats) and isinstance(b, CupedMeanStats):
        return _cuped_mean(a, b)
    if isinstance(a, CupedRatioStats) and isinstance(b, CupedRatioStats):
        return _cuped_ratio(a, b)
    raise InvalidArgumentError(
        f"{_label(b)}: statistics type {type(b).__name__} does not match the control's {type(a).__name__}"
    )


def _cuped_mean(a: CupedMeanStats, b: CupedMeanStats) -> _Moments:
    n = a.n + b.n
    # θ from both arms pooled: cov(y, x) / var(x) on the joint sums.
    var_x = _var(n, a.pre_sum + b.pre_sum, a.pre_sum_squares + b.pre_sum_squares)
    var_y = _var(n, a.sum + b.sum, a.sum_squares + b.sum_squares)
    theta = 0.0
    notes: list[str] = []
    if var_x > 0 and var_y > 0:
        theta = _cov(n, a.sum + b.sum, a.pre_sum + b.pre_sum, a.cross_sum + b.cross_sum) / var_x
    else:
        notes.append("the pre-period covariate has no variance: CUPED falls back to the unadjusted test")

    def arm(s: CupedMeanStats) -> tuple[float, float, float, float, float, float]:
        y, x = s.sum / s.n, s.pre_sum / s.n
        vy, vx = _var(s.n, s.sum, s.sum_squares), _var(s.n, s.pre_sum, s.pre_sum_squares)
        cxy = _cov(s.n, s.sum, s.pre_sum, s.cross_sum)
        return y, x, vy, vx, cxy, max(vy + theta**2 * vx - 2 * theta * cxy, 0.0)

    ya, xa, vya, vxa, ca, va = arm(a)
    yb, xb, _, _, _, vb = arm(b)
    adj_a, adj_b = ya - theta * xa, yb - theta * xb
    if ya == 0:
        rel_var = math.nan
    else:
        # R = (ȳ_b − θx̄_b − ȳ_a + θx̄_a) / ȳ_a by the delta method. As in gbstats, ∂R/∂ȳ_a is taken
        # as −ȳ_b/ȳ_a² (dropping θ(x̄_a − x̄_b), which is O(1/√n) under randomisation).
        d_ya = -yb / ya**2
        d_xa = theta / ya
        v_ctrl = d_ya**2 * vya + d_xa**2 * vxa + 2 * d_ya * d_xa * ca
        rel_var = vb / (b.n * ya**2) + v_ctrl / a.n
    return _Moments(adj_a, adj_b, ya, yb, va, vb, rel_var, False, theta, None, tuple(notes))


def _ratio_moments(s: CupedRatioStats) -> tuple[np.ndarray, np.ndarray]:
    """Means ``[m, d, m⁰, d⁰]`` and their 4×4 per-unit covariance matrix."""
    n = s.n
    sums = np.array([s.num_sum, s.den_sum, s.pre_num_sum, s.pre_den_sum], dtype=float)
    prods = np.array([
        [s.num_sum_squares, s.num_den_sum, s.num_pre_num_sum, s.num_pre_den_sum],
        [s.num_den_sum, s.den_sum_squares, s.den_pre_num_sum, s.den_pre_den_sum],
        [s.num_pre_num_sum, s.den_pre_num_sum, s.pre_num_sum_squares, s.pre_num_den_sum],
        [s.num_pre_den_sum, s.den_pre_den_sum, s.pre_num_den_sum, s.pre_den_sum_squares],
    ], dtype=float)
    lam = (prods - np.outer(sums, sums) / n) / (n - 1)
    return sums / n, lam


def _cuped_ratio(a: CupedRatioStats, b: CupedRatioStats) -> _Moments:
    beta_a, lam_a = _ratio_moments(a)
    beta_b, lam_b = _ratio_moments(b)
    notes: list[str] = []
    theta = 0.0
    if beta_a[3] != 0 and beta_b[3] != 0:
        cov_sum = var_sum = 0.0
        for beta, lam in ((beta_a, lam_a), (beta_b, lam_b)):
            g_post = np.array([1 / beta[1], -beta[0] / beta[1] ** 2])
            g_pre = np.array([1 / beta[3], -beta[2] / beta[3] ** 2])
            cov_sum += float(g_post @ lam[:2, 2:] @ g_pre)
            var_sum += float(g_pre @ lam[2:, 2:] @ g_pre)
        if var_sum > 0:
            theta = cov_sum / var_sum
    if theta == 0.0:
        notes.append("the pre-period ratio has no variance or no denominator: CUPED falls back to the "
                     "unadjusted ratio test")

    def grad(beta: np.ndarray) -> np.ndarray:
        pre = [0.0, 0.0] if beta[3] == 0 else [-theta / beta[3], theta * beta[2] / beta[3] ** 2]
        return np.array([1 / beta[1], -beta[0] / beta[1] ** 2, *pre])

    def adjusted(beta: np.ndarray) -> float:
        pre = 0.0 if beta[3] == 0 else beta[2] / beta[3]
        return float(beta[0] / beta[1] - theta * pre)

    ga, gb = grad(beta_a), grad(beta_b)
    va, vb = max(float(ga @ lam_a @ ga), 0.0), max(float(gb @ lam_b @ gb), 0.0)
    adj_a, adj_b = adjusted(beta_a), adjusted(beta_b)
    ra, rb = beta_a[0] / beta_a[1], beta_b[0] / beta_b[1]
    if ra == 0:
        rel_var = math.nan
    else:
        # R = (adj_b − adj_a) / r_a with r_a = m̄_a/d̄_a unadjusted; exact gradient (delta method).
        g_abs = adj_b - adj_a
        base = ra + g_abs  # = adj_b + θ·pre ratio of a
        ma, da = beta_a[0], beta_a[1]
        n_ctrl = np.array([
            -base / (da * ra**2),
            base * ma / (da**2 * ra**2),
            -ga[2] / ra,
            -ga[3] / ra,
        ])
        n_trt = gb / ra
        rel_var = float(n_ctrl @ lam_a @ n_ctrl) / a.n + float(n_trt @ lam_b @ n_trt) / b.n
    return _Moments(adj_a, adj_b, float(ra), float(rb), va, vb, rel_var, False, theta, None, tuple(notes))


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------


def _welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    num = (var_a / n_a + var_b / n_b) ** 2
    den = (var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1)
    return num / den if den > 0 else math.nan


def _fixed_effect(
    estimate: float, se: float, alpha: float, df: float | None, null_se: float | None = None
) -> Effect:
    """Two-sided interval and p-value from a t (``df``) or normal (``df is None``) reference."""
    nan = math.nan
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0):
        return Effect(estimate if math.isfinite(estimate) else nan, se if math.isfinite(se) else nan,
                      nan, nan, nan, nan, df)
    test_se = null_se if null_se is not None and null_se > 0 else se
    z = abs(estimate) / test_se
    if df is None:
        q = float(special.ndtri(1 - alpha / 2))
        p = float(2 * special.ndtr(-z))
    else:
        q = float(special.stdtrit(df, 1 - alpha / 2))
        p = float(2 * special.stdtr(df, -z))
    return Effect(estimate, se, estimate - q * se, estimate + q * se, p, p, df)


def _sequential_effect(estimate: float, se: float, n: int, alpha: float, tuning: float) -> Effect:
    nan = math.nan
    if not (math.isfinite(estimate) and math.isfinite(se) and se > 0):
        return Effect(estimate if math.isfinite(estimate) else nan, se if math.isfinite(se) else nan,
                      nan, nan, nan, nan, None)
    width = float(sequential.half_width(se, n, alpha=alpha, tuning=tuning))
    p = float(sequential.p_value(estimate, se, n, alpha=alpha, tuning=tuning))
    return Effect(estimate, se, estimate - width, estimate + width, p, p, None)


def compare(
    control: VariantStats,
    treatment: VariantStats,
    *,
    alpha: float = 0.05,
    method: Method = "fixed",
    tuning: float = DEFAULT_TUNING,
    bayesian: bool = True,
    prior_sd: float | None = None,
) -> Comparison:
    """Compare ``treatment`` with ``control`` (same statistics class) at level ``alpha``.

    ``method="sequential"`` adds always-valid intervals and p-values tuned for ``tuning`` total units;
    ``bayesian`` adds the posterior read-out (flat prior, or a Gaussian prior on the relative effect
    with ``prior_sd``). Raises :class:`InvalidArgumentError` naming the variant and field for
    impossible statistics or mismatched types.
    """
    _check_options(alpha, method, tuning)
    validate(control)
    validate(treatment)
    mo = _moments(control, treatment)
    n_a, n_b = control.n, treatment.n
    warnings = list(mo.warnings)
    if min(n_a, n_b) < SMALL_SAMPLE:
        warnings.append(f"fewer than {SMALL_SAMPLE} units in an arm: the normal approximation is unreliable")
    abs_est = mo.mean_b - mo.mean_a
    abs_se = math.sqrt(mo.var_a / n_a + mo.var_b / n_b)
    df = None if mo.normal else _welch_df(mo.var_a, n_a, mo.var_b, n_b)
    if df is not None and math.isnan(df):
        df = None
    if abs_se == 0:
        warnings.append("no variance in either arm: the effect cannot be tested")
    absolute = _fixed_effect(abs_est, abs_se, alpha, df, mo.pooled_se)
    if mo.raw_a == 0 or math.isnan(mo.rel_var):
        if mo.raw_a == 0:
            warnings.append("the control's mean is zero: the relative effect is undefined")
        rel_est = rel_se = math.nan
    else:
        rel_est = abs_est / mo.raw_a
        rel_se = math.sqrt(max(mo.rel_var, 0.0))
    relative = _fixed_effect(rel_est, rel_se, alpha, df)
    seq_abs = seq_rel = None
    if method == "sequential":
        seq_abs = _sequential_effect(abs_est, abs_se, n_a + n_b, alpha, tuning)
        seq_rel = _sequential_effect(rel_est, rel_se, n_a + n_b, alpha, tuning)
    bayes = bayes_abs = None
    if bayesian:
        bayes = posterior(rel_est, rel_se, alpha=alpha, prior_sd=prior_sd)
        bayes_abs = posterior(abs_est, abs_se, alpha=alpha)
    return Comparison(
        control=control.name,
        treatment=treatment.name,
        kind=KINDS[type(control)],
        method=method,
        alpha=alpha,
        control_n=n_a,
        treatment_n=n_b,
        control_mean=mo.raw_a,
        treatment_mean=mo.raw_b,
        absolute=absolute,
        relative=relative,
        sequential_absolute=seq_abs,
        sequential_relative=seq_rel,
        bayes=bayes,
        bayes_absolute=bayes_abs,
        theta=mo.theta,
        warnings=tuple(warnings),
    )


def srm_check(observed: Sequence[int], weights: Sequence[float]) -> SrmCheck:
    """Chi-square goodness-of-fit of the units per variant against the planned weights.

    Weights need not sum to 1 (they are normalised). A p-value below 0.001 flags a mismatch.
    """
    if len(observed) != len(weights):
        raise InvalidArgumentError(
            f"weights: {len(weights)} weight(s) for {len(observed)} variant(s); give one per variant"
        )
    if len(observed) < 2:
        raise InvalidArgumentError("weights: the SRM check needs at least two variants")
    for i, w in enumerate(weights):
        if not (isinstance(w, int | float) and math.isfinite(w) and w > 0):
            raise InvalidArgumentError(f"weights[{i}]: {w!r} must be a positive number")
    for i, o in enumerate(observed):
        if o < 0 or o != int(o):
            raise InvalidArgumentError(f"observed[{i}]: {o!r} must be a whole number of units")
    total = float(sum(observed))
    if total <= 0:
        raise InvalidArgumentError("observed: no units in any variant")
    share = np.asarray(weights, dtype=float)
    expected = total * share / share.sum()
    obs = np.asarray(observed, dtype=float)
    chi2 = float(((obs - expected) ** 2 / expected).sum())
    df = len(observed) - 1
    p = float(st.chi2.sf(chi2, df))
    return SrmCheck(chi2, df, p, p < SRM_THRESHOLD, tuple(float(e) for e in expected),
                    tuple(int(o) for o in observed))


_FAMILIES = ("absolute", "relative", "sequential_absolute", "sequential_relative")


def _adjusted(comparisons: Sequence[Comparison], correction: Correction) -> list[Comparison]:
    """Adjust each family of p-values (absolute, relative, and their sequential versions) separately."""
    result = list(comparisons)
    for family in _FAMILIES:
        idx = [i for i, c in enumerate(result) if getattr(c, family) is not None]
        if not idx:
            continue
        adj = adjust([getattr(result[i], family).p_value for i in idx], correction)
        for i, p in zip(idx, adj, strict=True):
            result[i] = replace(result[i], **{family: replace(getattr(result[i], family), p_adjusted=p)})
    return result


def analyse(
    variants: Sequence[VariantStats],
    *,
    weights: Sequence[float] | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    method: Method = "fixed",
    bayesian: bool = True,
    tuning: float = DEFAULT_TUNING,
    prior_sd: float | None = None,
) -> Analysis:
    """Compare every variant after the first with the first (the control).

    ``weights`` (one per variant, any positive scale) adds the SRM check. ``correction`` adjusts the
    p-values across the treatments (Holm by default; see :func:`correct_analyses` to widen the family
    to several metrics).
    """
    _check_options(alpha, method, tuning)
    if correction not in CORRECTIONS:
        raise InvalidArgumentError(f"correction: {correction!r} is not one of {', '.join(CORRECTIONS)}")
    if len(variants) < 2:
        raise InvalidArgumentError("variants: give the control and at least one treatment")
    names = [v.name for v in variants]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise InvalidArgumentError(f"variants: duplicate variant name {sorted(dup)[0]!r}")
    for v in variants:
        validate(v)
    control = variants[0]
    comparisons = [
        compare(control, t, alpha=alpha, method=method, tuning=tuning, bayesian=bayesian, prior_sd=prior_sd)
        for t in variants[1:]
    ]
    srm = srm_check([v.n for v in variants], weights) if weights is not None else None
    summaries = tuple(VariantSummary(v.name, v.n, variant_mean(v)) for v in variants)
    return Analysis(summaries, tuple(_adjusted(comparisons, correction)), srm, alpha, correction, method)


def correct_analyses(analyses: Sequence[Analysis], correction: Correction) -> list[Analysis]:
    """Re-adjust p-values across several metrics' analyses at once (the variants × metrics family).

    Returns new analyses whose ``p_adjusted`` values account for every comparison of every analysis.
    """
    if correction not in CORRECTIONS:
        raise InvalidArgumentError(f"correction: {correction!r} is not one of {', '.join(CORRECTIONS)}")
    flat = [c for a in analyses for c in a.comparisons]
    adjusted = _adjusted(flat, correction)
    out: list[Analysis] = []
    i = 0
    for a in analyses:
        k = len(a.comparisons)
        out.append(replace(a, comparisons=tuple(adjusted[i:i + k]), correction=correction))
        i += k
    return out
