"""The sufficient statistics of an experiment's variants, their checks and their moments (pure
numerics: numpy, no I/O).

The database aggregates each variant of an experiment into a small frozen dataclass of sums — the
GrowthBook gbstats design: :class:`MeanStats`, :class:`ProportionStats`, :class:`RatioStats`,
:class:`CupedMeanStats` and :class:`CupedRatioStats`. :func:`validate` refuses impossible sums,
naming the variant and the field; :func:`moments` turns a control and a treatment into the means,
per-unit variances and the relative effect's variance that the tests of :mod:`growthwheel.stats.ab`
read (the formulas are in that module's docstring); :func:`variant_mean` is a variant's mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from growthwheel.errors import InvalidArgumentError

#: The fewest units a variant may have for a comparison at all (a variance needs two).
MIN_UNITS = 2
#: Below this many conversions or non-conversions per arm the normal approximation is shaky.
FEW_EVENTS = 5


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


# --------------------------------------------------------------------------------------------------
# Moments: means, per-unit variances and the relative effect's variance for each kind
# --------------------------------------------------------------------------------------------------


def _var(n: int, s: float, ss: float) -> float:
    """Sample variance from sums, clipped at 0 against rounding."""
    return max((ss - s * s / n) / (n - 1), 0.0)


def _cov(n: int, s_x: float, s_y: float, s_xy: float) -> float:
    return (s_xy - s_x * s_y / n) / (n - 1)


@dataclass(frozen=True)
class Moments:
    """What the tests read of a control and a treatment: the (CUPED-adjusted) and the plain means,
    the per-unit variances, the relative effect's variance, whether the test is normal (proportions)
    rather than Welch's t, CUPED's θ, the pooled standard error of proportions, and warnings."""

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


def moments(a: VariantStats, b: VariantStats) -> Moments:
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
        return Moments(pa, pb, pa, pb, va, vb, _rel_var_independent(pa, va, a.n, pb, vb, b.n), True, None,
                        pooled_se, tuple(notes))
    if isinstance(a, MeanStats) and isinstance(b, MeanStats):
        ma, mb = a.sum / a.n, b.sum / b.n
        va, vb = _var(a.n, a.sum, a.sum_squares), _var(b.n, b.sum, b.sum_squares)
        return Moments(ma, mb, ma, mb, va, vb, _rel_var_independent(ma, va, a.n, mb, vb, b.n), False, None)
    if isinstance(a, RatioStats | CupedRatioStats) and type(a) is type(b):
        empty = [s for s in (a, b) if s.den_sum == 0]
        if empty:  # e.g. no orders yet in an arm: AOV is undefined there, nothing can be tested
            nan = math.nan
            undefined = tuple(f"{_label(s)} has den_sum 0: the ratio is undefined" for s in empty)
            raw_a, raw_b = variant_mean(a), variant_mean(b)
            return Moments(nan, nan, raw_a, raw_b, nan, nan, nan, False, None, None, undefined)
    if isinstance(a, RatioStats) and isinstance(b, RatioStats):
        ma, da, vma, vda, ca = _ratio_unit(a)
        mb, db, vmb, vdb, cb = _ratio_unit(b)
        ra, rb = ma / da, mb / db
        va, vb = _ratio_var(ma, da, vma, vda, ca), _ratio_var(mb, db, vmb, vdb, cb)
        return Moments(ra, rb, ra, rb, va, vb, _rel_var_independent(ra, va, a.n, rb, vb, b.n), False, None)
    if isinstance(a, CupedMeanStats) and isinstance(b, CupedMeanStats):
        return _cuped_mean(a, b)
    if isinstance(a, CupedRatioStats) and isinstance(b, CupedRatioStats):
        return _cuped_ratio(a, b)
    raise InvalidArgumentError(
        f"{_label(b)}: statistics type {type(b).__name__} does not match the control's {type(a).__name__}"
    )


def _cuped_mean(a: CupedMeanStats, b: CupedMeanStats) -> Moments:
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
    return Moments(adj_a, adj_b, ya, yb, va, vb, rel_var, False, theta, None, tuple(notes))


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


def _cuped_ratio(a: CupedRatioStats, b: CupedRatioStats) -> Moments:
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
    return Moments(adj_a, adj_b, float(ra), float(rb), va, vb, rel_var, False, theta, None, tuple(notes))
