"""A/B test comparisons from sufficient statistics (pure numerics: numpy / scipy, no I/O).

The database aggregates each variant of an experiment into a small frozen dataclass of sums —
the GrowthBook gbstats design, in :mod:`growthwheel.stats.sufficient` with their checks and
moments — and this module turns two of them into a :class:`Comparison`
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
from growthwheel.stats.sufficient import KINDS, VariantStats, moments, validate, variant_mean

Method = Literal["fixed", "sequential"]
METHODS: tuple[Method, ...] = ("fixed", "sequential")

#: Default sequential tuning parameter (expected total sample size), as in gbstats.
DEFAULT_TUNING = sequential.DEFAULT_TUNING
#: SRM p-value below which the split is flagged as a sample-ratio mismatch (GrowthBook's default).
SRM_THRESHOLD = 0.001
#: Below this many units per arm the normal approximation is shaky.
SMALL_SAMPLE = 30

__all__ = [
    "DEFAULT_TUNING",
    "METHODS",
    "SRM_THRESHOLD",
    "Analysis",
    "Comparison",
    "Correction",
    "Effect",
    "Method",
    "SrmCheck",
    "VariantSummary",
    "analyse",
    "compare",
    "correct_analyses",
    "srm_check",
]


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


def _check_options(alpha: float, method: str, tuning: float) -> None:
    if not (isinstance(alpha, int | float) and 0.0 < alpha < 1.0):
        raise InvalidArgumentError(f"alpha: {alpha!r} must be between 0 and 1")
    if method not in METHODS:
        raise InvalidArgumentError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    if not (isinstance(tuning, int | float) and tuning > 0 and math.isfinite(tuning)):
        raise InvalidArgumentError(f"tuning: {tuning!r} must be a positive expected sample size")


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
    mo = moments(control, treatment)
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
