"""Power, sample size and minimum detectable effect for two-sided A/B tests (pure numerics, no I/O).

**Conversion (a proportion).** Baseline rate ``p₁``, treatment rate ``p₂ = p₁ + δ`` (``δ`` the
absolute MDE; with ``relative=True`` the MDE is ``δ / p₁``). Units per variant, two-sided level
``α``, power ``1 − β`` (Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, 3rd
ed., eq. 4.14 without continuity correction; the formula behind Evan Miller's calculator)::

    n = ( z_{1−α/2} · sqrt(2 p̄ q̄) + z_{1−β} · sqrt(p₁q₁ + p₂q₂) )² / δ²,   p̄ = (p₁ + p₂) / 2

``formula="unpooled"`` uses ``(z_{1−α/2} + z_{1−β})² (p₁q₁ + p₂q₂) / δ²`` instead (the Wald test;
what statsmodels' ``NormalIndPower`` gives with effect size ``δ / sqrt((p₁q₁ + p₂q₂)/2)``).

**Mean metric** with standard deviation ``σ`` per unit: ``n = 2 (z_{1−α/2} + z_{1−β})² σ² / δ²``
(normal approximation, equal to statsmodels' ``zt_ind_solve_power``; the t-based
``tt_ind_solve_power`` adds about one unit).

**Several variants.** With ``k`` variants (control included) there are ``k − 1`` comparisons with
the control; each is sized at the Bonferroni level ``α / (k − 1)`` (the worst case of the Holm
correction that :func:`growthwheel.stats.ab.analyse` applies), and the total is ``k · n``.

Power is computed with both tails of the two-sided test; sample sizes are rounded up.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import optimize
from scipy import stats as st

from growthwheel.errors import InvalidArgumentError

Formula = Literal["pooled", "unpooled"]

_Z = st.norm


@dataclass(frozen=True)
class SampleSize:
    """A sample-size (or MDE) answer with everything needed to read it.

    ``per_variant`` units in each of ``variants`` arms, ``total`` overall. ``baseline`` is the
    control's rate (or mean), ``mde_absolute`` / ``mde_relative`` the effect sized for (relative is
    NaN without a baseline), ``alpha_per_comparison`` the Bonferroni level used for each comparison.
    """

    metric: Literal["proportion", "mean"]
    per_variant: int
    total: int
    variants: int
    alpha: float
    alpha_per_comparison: float
    power: float
    baseline: float | None
    sd: float | None
    mde_absolute: float
    mde_relative: float
    formula: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (non-finite floats as ``None``)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def _check_common(alpha: float, power: float, variants: int) -> float:
    if not 0.0 < alpha < 1.0:
        raise InvalidArgumentError(f"alpha: {alpha!r} must be between 0 and 1")
    if not 0.0 < power < 1.0:
        raise InvalidArgumentError(f"power: {power!r} must be between 0 and 1")
    if variants != int(variants) or variants < 2:
        raise InvalidArgumentError(
            f"variants: {variants!r} must be a whole number of at least 2 (control included)"
        )
    return alpha / (variants - 1)


def _check_traffic(n_per_variant: float) -> None:
    if n_per_variant != int(n_per_variant) or n_per_variant < 2:
        raise InvalidArgumentError(
            f"traffic: {n_per_variant!r} must be a whole number of at least 2 units per variant"
        )


def _check_rate(baseline: float) -> None:
    if not (math.isfinite(baseline) and 0.0 < baseline < 1.0):
        raise InvalidArgumentError(f"baseline: {baseline!r} must be a conversion rate between 0 and 1")


def _absolute_mde(mde: float, relative: bool, baseline: float | None, field: str = "mde") -> float:
    if not (math.isfinite(mde) and mde != 0):
        raise InvalidArgumentError(f"{field}: {mde!r} must be a non-zero effect")
    if relative:
        if baseline is None or baseline == 0:
            raise InvalidArgumentError(f"baseline: a relative {field} needs a non-zero baseline")
        return abs(mde * baseline)
    return abs(mde)


def _treatment_rate(baseline: float, delta: float) -> float:
    p2 = baseline + delta
    if not 0.0 < p2 < 1.0:
        raise InvalidArgumentError(
            f"mde: baseline {baseline:g} + effect {delta:g} = {p2:g} is not a rate between 0 and 1"
        )
    return p2


def _z(alpha_c: float, power: float) -> tuple[float, float]:
    return float(_Z.ppf(1 - alpha_c / 2)), float(_Z.ppf(power))


def _two_tailed(shift: float, z_a: float, sd_alt: float, sd_null: float) -> float:
    """P(|Z| > z_a · sd_null) when the statistic is N(shift, sd_alt²)."""
    return float(_Z.sf((z_a * sd_null - shift) / sd_alt) + _Z.cdf((-z_a * sd_null - shift) / sd_alt))


def power_proportion(
    baseline: float, mde: float, n_per_variant: float, *, relative: bool = False, alpha: float = 0.05,
    variants: int = 2, formula: Formula = "pooled",
) -> float:
    """Power of the two-sided two-proportion test to detect ``mde`` with ``n_per_variant`` units per arm."""
    alpha_c = _check_common(alpha, 0.5, variants)
    _check_rate(baseline)
    if not n_per_variant > 0:
        raise InvalidArgumentError(f"n_per_variant: {n_per_variant!r} must be positive")
    delta = _absolute_mde(mde, relative, baseline)
    p2 = _treatment_rate(baseline, delta)
    z_a = float(_Z.ppf(1 - alpha_c / 2))
    sd_alt = math.sqrt((baseline * (1 - baseline) + p2 * (1 - p2)) / n_per_variant)
    pbar = (baseline + p2) / 2
    sd_null = math.sqrt(2 * pbar * (1 - pbar) / n_per_variant) if formula == "pooled" else sd_alt
    return _two_tailed(delta, z_a, sd_alt, sd_null)


def sample_size_proportion(
    baseline: float, mde: float, *, relative: bool = False, alpha: float = 0.05, power: float = 0.8,
    variants: int = 2, formula: Formula = "pooled",
) -> SampleSize:
    """Units per variant to detect a change of ``mde`` in a conversion rate of ``baseline``."""
    alpha_c = _check_common(alpha, power, variants)
    _check_rate(baseline)
    if formula not in ("pooled", "unpooled"):
        raise InvalidArgumentError(f"formula: {formula!r} is not pooled or unpooled")
    delta = _absolute_mde(mde, relative, baseline)
    p2 = _treatment_rate(baseline, delta)
    z_a, z_b = _z(alpha_c, power)
    var_sum = baseline * (1 - baseline) + p2 * (1 - p2)
    if formula == "pooled":
        pbar = (baseline + p2) / 2
        n = (z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(var_sum)) ** 2 / delta**2
        name = "Fleiss pooled-variance two-proportion z-test (no continuity correction)"
    else:
        n = (z_a + z_b) ** 2 * var_sum / delta**2
        name = "unpooled (Wald) two-proportion z-test"
    per = math.ceil(n - 1e-9)
    return SampleSize("proportion", per, per * variants, variants, alpha, alpha_c, power, baseline, None,
                      delta, delta / baseline, name)


def power_mean(
    sd: float, mde: float, n_per_variant: float, *, baseline_mean: float | None = None,
    relative: bool = False, alpha: float = 0.05, variants: int = 2,
) -> float:
    """Power of the two-sided two-sample z-test of means with per-unit standard deviation ``sd``."""
    alpha_c = _check_common(alpha, 0.5, variants)
    if not (math.isfinite(sd) and sd > 0):
        raise InvalidArgumentError(f"sd: {sd!r} must be a positive standard deviation")
    if not n_per_variant > 0:
        raise InvalidArgumentError(f"n_per_variant: {n_per_variant!r} must be positive")
    delta = _absolute_mde(mde, relative, baseline_mean)
    se = sd * math.sqrt(2 / n_per_variant)
    return _two_tailed(delta, float(_Z.ppf(1 - alpha_c / 2)), se, se)


def sample_size_mean(
    sd: float, mde: float, *, baseline_mean: float | None = None, relative: bool = False, alpha: float = 0.05,
    power: float = 0.8, variants: int = 2,
) -> SampleSize:
    """Units per variant to detect a change of ``mde`` in a mean metric with per-unit ``sd``.

    With ``relative=True`` the MDE is a share of ``baseline_mean`` (required then).
    """
    alpha_c = _check_common(alpha, power, variants)
    if not (math.isfinite(sd) and sd > 0):
        raise InvalidArgumentError(f"sd: {sd!r} must be a positive standard deviation")
    delta = _absolute_mde(mde, relative, baseline_mean)
    z_a, z_b = _z(alpha_c, power)
    per = math.ceil(2 * (z_a + z_b) ** 2 * sd**2 / delta**2 - 1e-9)
    rel = delta / abs(baseline_mean) if baseline_mean else math.nan
    return SampleSize("mean", per, per * variants, variants, alpha, alpha_c, power, baseline_mean, sd,
                      delta, rel, "two-sample z-test of means (equal variances)")


def mde_proportion(
    baseline: float, n_per_variant: int, *, alpha: float = 0.05, power: float = 0.8, variants: int = 2,
    formula: Formula = "pooled",
) -> SampleSize:
    """The smallest *increase* of a conversion rate detectable with ``n_per_variant`` units per arm."""
    alpha_c = _check_common(alpha, power, variants)
    _check_rate(baseline)
    _check_traffic(n_per_variant)
    upper = (1 - baseline) * (1 - 1e-9)

    def gap(delta: float) -> float:
        return power_proportion(baseline, delta, n_per_variant, alpha=alpha, variants=variants,
                                formula=formula) - power

    if gap(upper) < 0:
        raise InvalidArgumentError(
            f"traffic: {n_per_variant} units per variant cannot reach power {power:g} at any effect size"
        )
    delta = float(optimize.brentq(gap, 1e-12, upper, xtol=1e-12))
    name = ("Fleiss pooled-variance two-proportion z-test (no continuity correction)" if formula == "pooled"
            else "unpooled (Wald) two-proportion z-test")
    per = int(n_per_variant)
    return SampleSize("proportion", per, per * variants, variants, alpha, alpha_c, power, baseline, None,
                      delta, delta / baseline, name)


def mde_mean(
    sd: float, n_per_variant: int, *, baseline_mean: float | None = None, alpha: float = 0.05,
    power: float = 0.8, variants: int = 2,
) -> SampleSize:
    """The smallest change of a mean metric (per-unit ``sd``) detectable with ``n_per_variant`` per arm."""
    alpha_c = _check_common(alpha, power, variants)
    if not (math.isfinite(sd) and sd > 0):
        raise InvalidArgumentError(f"sd: {sd!r} must be a positive standard deviation")
    _check_traffic(n_per_variant)
    se = sd * math.sqrt(2 / n_per_variant)
    z_a = float(_Z.ppf(1 - alpha_c / 2))
    delta = float(optimize.brentq(lambda d: _two_tailed(d, z_a, se, se) - power, 1e-15 * sd,
                                  100 * sd + 10 * z_a * se, xtol=1e-14 * sd))
    rel = delta / abs(baseline_mean) if baseline_mean else math.nan
    per = int(n_per_variant)
    return SampleSize("mean", per, per * variants, variants, alpha, alpha_c, power, baseline_mean, sd, delta,
                      rel, "two-sample z-test of means (equal variances)")
