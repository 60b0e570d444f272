"""The A/B comparison engine (``growthwheel.stats.ab``) against published and reference numbers.

* GrowthBook gbstats' own unit tests (``packages/stats/tests/frequentist/test_tests.py`` and
  ``tests/bayesian/test_tests.py`` in growthbook/growthbook): the Welch case, the proportion case,
  ratio CUPED and the sequential cases, pinned to their five decimals.
* scipy's ``ttest_ind(equal_var=False)`` on raw arrays whose sufficient statistics we aggregate.
* statsmodels' two-proportion z-test and Wald interval, ``multipletests`` for the corrections.
* Ratio and CUPED-ratio variances recomputed on raw arrays by linearisation (influence functions),
  an independent route to the delta method.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from growthwheel.errors import InvalidArgumentError
from growthwheel.stats.ab import analyse, compare, correct_analyses, srm_check
from growthwheel.stats.sufficient import (
    CupedMeanStats,
    CupedRatioStats,
    MeanStats,
    ProportionStats,
    RatioStats,
)

# GrowthBook's Welch reference case (gbstats tests/frequentist/test_tests.py, TestTwoSidedTTest).
GB_A = MeanStats("A", n=3407, sum=1396.87, sum_squares=52377.9767)
GB_B = MeanStats("B", n=3461, sum=2422.7, sum_squares=134698.29)

# gbstats test_two_sided_ttest_test_runs_ratio_ra: RegressionAdjustedRatioStatistic pair, mapped field
# by field (m = numerator, d = denominator; *_pre the pre period; products as named in gbstats).
GB_RATIO_RA_A = CupedRatioStats(
    "A", n=100,
    num_sum=485.112236689623, num_sum_squares=2715.484666118136,
    den_sum=679.9093275844917, den_sum_squares=4939.424001640236, num_den_sum=3602.146836776702,
    pre_num_sum=192.59138069991536, pre_num_sum_squares=460.076026390857,
    pre_den_sum=290.1398399750233, pre_den_sum_squares=920.9461385038898, pre_num_den_sum=634.239482353647,
    num_pre_num_sum=1113.6215759318352, num_pre_den_sum=1559.2878434944676,
    den_pre_num_sum=1460.3181079276983, den_pre_den_sum=2130.9404074446747,
)
GB_RATIO_RA_B = CupedRatioStats(
    "B", n=100,
    num_sum=514.7757826608777, num_sum_squares=2994.897482705013,
    den_sum=705.4090874383759, den_sum_squares=5291.36604146392, num_den_sum=3918.1561431600717,
    pre_num_sum=206.94157227402536, pre_num_sum_squares=514.2903702246757,
    pre_den_sum=302.54389139107326, pre_den_sum_squares=994.4506208125663, pre_num_den_sum=698.4173425817908,
    num_pre_num_sum=1237.0953021125997, num_pre_den_sum=1701.0287270040265,
    den_pre_num_sum=1604.0759503266522, den_pre_den_sum=2292.081739775257,
)


def r5(x: float) -> float:
    return round(x, 5)


# --------------------------------------------------------------------------------------------------
# GrowthBook reference numbers
# --------------------------------------------------------------------------------------------------


def test_growthbook_welch_case_absolute_and_relative() -> None:
    c = compare(GB_A, GB_B)
    assert r5(c.absolute.estimate) == 0.29
    assert r5(c.absolute.se) == 0.12478
    assert (r5(c.absolute.ci_lower), r5(c.absolute.ci_upper)) == (0.04538, 0.53462)
    assert r5(c.absolute.p_value) == 0.02016
    assert r5(c.relative.estimate) == 0.70732
    assert r5(c.relative.se) == 0.37879
    assert (r5(c.relative.ci_lower), r5(c.relative.ci_upper)) == (-0.03526, 1.44989)
    assert r5(c.relative.p_value) == 0.06191
    assert c.kind == "mean"
    assert c.control_mean == pytest.approx(0.41)
    assert c.treatment_mean == pytest.approx(0.7)
    # One comparison: the "correction" changes nothing.
    assert c.absolute.p_adjusted == c.absolute.p_value
    # p < 0.05 on the absolute difference: significant, although the relative interval covers 0.
    assert c.significant()


def test_growthbook_proportion_case_relative_effect() -> None:
    """gbstats test_two_sided_ttest_binom: 14/28 vs 16/30 → relative 0.06667, se 0.2717.

    gbstats reads proportions with a t distribution (CI −0.47767 to 0.61101 on ~56 df); we use the
    normal reference for proportions, so the interval is the same estimate ± 1.95996 · se.
    """
    c = compare(ProportionStats("A", 28, 14), ProportionStats("B", 30, 16))
    assert r5(c.relative.estimate) == 0.06667
    assert round(c.relative.se, 4) == 0.2717
    z = 1.959963984540054
    assert c.relative.ci_lower == pytest.approx(c.relative.estimate - z * c.relative.se, abs=1e-12)
    assert c.relative.df is None
    assert any("fewer than 30 units" in w for w in c.warnings)


def test_growthbook_ratio_cuped_case() -> None:
    """gbstats test_two_sided_ttest_test_runs_ratio_ra: relative −0.0007, CI (−0.00841, 0.00700),
    se 0.00391, p 0.85771; and its sequential twin (default tuning 5000): CI (−0.02063, 0.01923), p 1."""
    c = compare(GB_RATIO_RA_A, GB_RATIO_RA_B, method="sequential")
    assert c.kind == "cuped_ratio"
    assert r5(c.relative.estimate) == -0.0007
    assert r5(c.relative.se) == 0.00391
    assert (r5(c.relative.ci_lower), r5(c.relative.ci_upper)) == (-0.00841, 0.007)
    assert r5(c.relative.p_value) == 0.85771
    assert c.sequential_relative is not None
    assert (r5(c.sequential_relative.ci_lower), r5(c.sequential_relative.ci_upper)) == (-0.02063, 0.01923)
    assert c.sequential_relative.p_value == 1.0
    assert c.theta is not None
    assert 0 < c.theta < 1


def test_growthbook_sequential_cases() -> None:
    """gbstats TestSequentialTTest: mean (tuning 1000), proportion and CUPED mean (tuning 5000)."""
    a = MeanStats("A", n=3000, sum=1396.87, sum_squares=52377.9767)
    c = compare(a, GB_B, method="sequential", tuning=1000)
    seq = c.sequential_relative
    assert seq is not None
    assert (r5(seq.estimate), r5(seq.se)) == (0.50336, 0.33341)
    assert (r5(seq.ci_lower), r5(seq.ci_upper)) == (-0.55844, 1.56516)
    assert seq.p_value == 1.0

    c = compare(ProportionStats("A", 3000, 1396), ProportionStats("B", 3461, 2422), method="sequential")
    seq = c.sequential_relative
    assert seq is not None
    assert (r5(seq.estimate), r5(seq.se)) == (0.50386, 0.03386)
    assert (r5(seq.ci_lower), r5(seq.ci_upper)) == (0.40098, 0.60675)
    assert r5(seq.p_value) == 0.0

    a_ra = CupedMeanStats("A", 3000, 1396.87, 52377.9767, pre_sum=16.87, pre_sum_squares=527.9767,
                          cross_sum=1)
    b_ra = CupedMeanStats("B", 3461, 2422.7, 134698.29, pre_sum=22.7, pre_sum_squares=1348.29, cross_sum=1)
    seq = compare(a_ra, b_ra, method="sequential").sequential_relative
    assert seq is not None
    assert (r5(seq.estimate), r5(seq.se)) == (0.50338, 0.33341)
    assert (r5(seq.ci_lower), r5(seq.ci_upper)) == (-0.50969, 1.51646)


def test_sequential_intervals_are_wider_than_fixed_and_narrow_with_good_tuning() -> None:
    """gbstats test_sequential_test_tuning_as_expected: tuning far below N gives the widest interval,
    tuning near N (6461) the narrowest; always wider than the fixed-horizon interval."""
    a = MeanStats("A", n=3000, sum=1396.87, sum_squares=52377.9767)
    widths = {}
    for tuning in (10, 6461, 10_000):
        c = compare(a, GB_B, method="sequential", tuning=tuning)
        assert c.sequential_absolute is not None
        widths[tuning] = c.sequential_absolute.ci_upper - c.sequential_absolute.ci_lower
        assert widths[tuning] > c.absolute.ci_upper - c.absolute.ci_lower
    assert widths[10] > widths[10_000] > widths[6461]


def test_growthbook_bayesian_effect_case() -> None:
    """gbstats tests/bayesian TestGaussianEffectABTest-era case: means 10 vs 10.5 (n 10 each) → relative
    0.05, sd 0.03572, chance to win 0.91923, risk (control, treatment) = (0.05131, 0.00131)."""
    c = compare(MeanStats("A", 10, 100, 1002.25), MeanStats("B", 10, 105, 1111.5))
    assert c.bayes is not None
    assert r5(c.bayes.mean) == 0.05
    assert r5(c.bayes.sd) == 0.03572
    assert r5(c.bayes.chance_to_win) == 0.91923
    assert (r5(c.bayes.risk_control), r5(c.bayes.expected_loss)) == (0.05131, 0.00131)
    assert (round(c.bayes.ci_lower, 2), round(c.bayes.ci_upper, 2)) == (-0.02, 0.12)


# --------------------------------------------------------------------------------------------------
# Reference libraries on raw data
# --------------------------------------------------------------------------------------------------


def _mean_stats(name: str, y: np.ndarray) -> MeanStats:
    return MeanStats(name, len(y), float(y.sum()), float((y * y).sum()))


def test_welch_matches_scipy_on_raw_arrays() -> None:
    rng = np.random.default_rng(11)
    ya = rng.lognormal(3.0, 1.2, 800) * (rng.random(800) < 0.3)  # revenue per user: mostly zero
    yb = rng.lognormal(3.1, 1.2, 950) * (rng.random(950) < 0.32)
    ref = st.ttest_ind(yb, ya, equal_var=False)
    ci = ref.confidence_interval(0.9)
    c = compare(_mean_stats("A", ya), _mean_stats("B", yb), alpha=0.1)
    assert c.absolute.estimate == pytest.approx(yb.mean() - ya.mean(), rel=1e-12)
    assert c.absolute.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert c.absolute.df == pytest.approx(ref.df, rel=1e-9)
    assert (c.absolute.ci_lower, c.absolute.ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_two_proportion_test_matches_statsmodels() -> None:
    a, b = ProportionStats("A", 5000, 500), ProportionStats("B", 5100, 581)
    c = compare(a, b)
    z, p = proportions_ztest([581, 500], [5100, 5000])  # pooled variance under H0
    assert c.absolute.p_value == pytest.approx(p, rel=1e-9)
    pooled = 1081 / 10_100  # the p-value's z uses the pooled rate under H0 …
    assert c.absolute.estimate / math.sqrt(pooled * (1 - pooled) * (1 / 5100 + 1 / 5000)) == pytest.approx(z)
    low, high = confint_proportions_2indep(581, 5100, 500, 5000, method="wald", compare="diff")
    # … the interval the unpooled (Wald) se.
    assert (c.absolute.ci_lower, c.absolute.ci_upper) == pytest.approx((low, high), rel=1e-9)
    # By hand: 581/5100 − 500/5000 = 0.0139216; se = sqrt(.1139·.8861/5100 + .1·.9/5000).
    assert c.absolute.estimate == pytest.approx(581 / 5100 - 0.1, abs=1e-15)
    assert c.absolute.se == pytest.approx(math.sqrt(581 / 5100 * (1 - 581 / 5100) / 5100 + 0.09 / 5000))


def test_ratio_metric_matches_linearisation_on_raw_data() -> None:
    """AOV = revenue / orders per customer: delta-method se equals the se from the linearised variable
    ``(m − R d) / d̄`` (the influence function), computed here directly on the raw arrays."""
    rng = np.random.default_rng(5)

    def arm(n: int, value: float) -> tuple[np.ndarray, np.ndarray]:
        orders = rng.poisson(0.8, n).astype(float)
        revenue = np.where(orders > 0, rng.gamma(np.maximum(orders, 1) * 2.0, value / 2.0), 0.0)
        return revenue, orders

    (ma, da), (mb, db) = arm(3000, 80.0), arm(3100, 84.0)

    def stats(name: str, m: np.ndarray, d: np.ndarray) -> RatioStats:
        return RatioStats(name, len(m), m.sum(), (m * m).sum(), d.sum(), (d * d).sum(), (m * d).sum())

    c = compare(stats("A", ma, da), stats("B", mb, db))
    ra, rb = ma.sum() / da.sum(), mb.sum() / db.sum()
    la, lb = (ma - ra * da) / da.mean(), (mb - rb * db) / db.mean()
    se = math.sqrt(la.var(ddof=1) / len(la) + lb.var(ddof=1) / len(lb))
    assert c.kind == "ratio"
    assert c.absolute.estimate == pytest.approx(rb - ra, rel=1e-12)
    assert c.absolute.se == pytest.approx(se, rel=1e-9)
    ref = st.ttest_ind(lb + rb, la + ra, equal_var=False)  # Welch on the linearised values
    assert c.absolute.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    # Relative: delta method on (R_b / R_a − 1) with independent arms.
    rel_se = math.sqrt(lb.var(ddof=1) / len(lb) / ra**2 + la.var(ddof=1) / len(la) * rb**2 / ra**4)
    assert c.relative.se == pytest.approx(rel_se, rel=1e-9)


def test_cuped_mean_equals_welch_on_adjusted_values_and_shrinks_the_interval() -> None:
    rng = np.random.default_rng(3)
    xa, xb = rng.gamma(2.0, 50.0, 2000), rng.gamma(2.0, 50.0, 2100)
    ya = 0.8 * xa + rng.normal(0, 30, 2000)
    yb = 0.8 * xb + rng.normal(5, 30, 2100)  # true effect +5

    def stats(name: str, y: np.ndarray, x: np.ndarray) -> CupedMeanStats:
        return CupedMeanStats(name, len(y), y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())

    c = compare(stats("A", ya, xa), stats("B", yb, xb))
    x, y = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    theta = np.cov(y, x, ddof=1)[0, 1] / x.var(ddof=1)  # one θ for both arms, pooled
    assert c.theta == pytest.approx(theta, rel=1e-9)
    adj_a, adj_b = ya - theta * xa, yb - theta * xb
    ref = st.ttest_ind(adj_b, adj_a, equal_var=False)
    assert c.absolute.estimate == pytest.approx(adj_b.mean() - adj_a.mean(), rel=1e-9)
    assert c.absolute.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert c.absolute.df == pytest.approx(ref.df, rel=1e-9)
    plain = compare(_mean_stats("A", ya), _mean_stats("B", yb))
    # Variance shrinks by about 1 − corr(y, x)²: here corr ≈ 0.92, so the interval is ~2.5× narrower.
    assert c.absolute.se < 0.5 * plain.absolute.se
    assert c.control_mean == pytest.approx(ya.mean())  # summaries stay unadjusted


def test_cuped_ratio_matches_linearisation_on_raw_data() -> None:
    """Regression-adjusted ratio: θ and the se from per-unit influence functions on raw arrays."""
    rng = np.random.default_rng(8)

    def arm(n: int, lift: float) -> tuple[np.ndarray, ...]:
        d0 = rng.poisson(1.0, n).astype(float) + 1
        m0 = d0 * rng.gamma(4.0, 20.0, n)
        d = rng.poisson(0.5 + 0.5 * d0).astype(float) + 1
        m = d * (0.5 * m0 / d0 + rng.gamma(4.0, 10.0, n)) * lift
        return m, d, m0, d0

    def stats(name: str, m: np.ndarray, d: np.ndarray, m0: np.ndarray, d0: np.ndarray) -> CupedRatioStats:
        return CupedRatioStats(name, len(m), m.sum(), (m * m).sum(), d.sum(), (d * d).sum(), (m * d).sum(),
                               m0.sum(), (m0 * m0).sum(), d0.sum(), (d0 * d0).sum(), (m0 * d0).sum(),
                               (m * m0).sum(), (m * d0).sum(), (d * m0).sum(), (d * d0).sum())

    a, b = arm(1500, 1.0), arm(1600, 1.03)
    c = compare(stats("A", *a), stats("B", *b))

    def influence(m: np.ndarray, d: np.ndarray, m0: np.ndarray, d0: np.ndarray) -> tuple[np.ndarray, ...]:
        r, r0 = m.sum() / d.sum(), m0.sum() / d0.sum()
        return (m - r * d) / d.mean(), (m0 - r0 * d0) / d0.mean(), r, r0

    la, la0, ra, ra0 = influence(*a)
    lb, lb0, rb, rb0 = influence(*b)
    theta = (np.cov(la, la0)[0, 1] + np.cov(lb, lb0)[0, 1]) / (la0.var(ddof=1) + lb0.var(ddof=1))
    assert c.theta == pytest.approx(theta, rel=1e-9)
    assert c.absolute.estimate == pytest.approx((rb - theta * rb0) - (ra - theta * ra0), rel=1e-9)
    se = math.sqrt((la - theta * la0).var(ddof=1) / len(la) + (lb - theta * lb0).var(ddof=1) / len(lb))
    assert c.absolute.se == pytest.approx(se, rel=1e-9)
    plain = compare(*(RatioStats(s.name, s.n, s.num_sum, s.num_sum_squares, s.den_sum, s.den_sum_squares,
                                 s.num_den_sum) for s in (stats("A", *a), stats("B", *b))))
    assert c.absolute.se < plain.absolute.se


# --------------------------------------------------------------------------------------------------
# Analysis: corrections, SRM, JSON
# --------------------------------------------------------------------------------------------------


def test_analyse_corrects_across_treatments_like_statsmodels() -> None:
    variants = [ProportionStats("control", 10_000, 1000), ProportionStats("B", 10_100, 1120),
                ProportionStats("C", 9_900, 1050), ProportionStats("D", 10_050, 1010)]
    for correction, sm_name in (("holm", "holm"), ("bh", "fdr_bh")):
        res = analyse(variants, correction=correction)  # type: ignore[arg-type]
        raw = [c.relative.p_value for c in res.comparisons]
        expected = multipletests(raw, method=sm_name)[1]
        assert [c.relative.p_adjusted for c in res.comparisons] == pytest.approx(list(expected), rel=1e-12)
        raw_abs = [c.absolute.p_value for c in res.comparisons]
        assert [c.absolute.p_adjusted for c in res.comparisons] == pytest.approx(
            list(multipletests(raw_abs, method=sm_name)[1]), rel=1e-12)
    assert [v.name for v in res.variants] == ["control", "B", "C", "D"]
    assert res.variants[1].mean == pytest.approx(0.1108911)
    none = analyse(variants, correction="none")
    assert all(c.absolute.p_adjusted == c.absolute.p_value for c in none.comparisons)


def test_correct_analyses_widens_the_family_to_all_metrics() -> None:
    conv = analyse([ProportionStats("A", 4000, 400), ProportionStats("B", 4000, 460)], correction="none")
    rev = analyse([GB_A, GB_B], correction="none")
    both = correct_analyses([conv, rev], "holm")
    raw = [conv.comparisons[0].absolute.p_value, rev.comparisons[0].absolute.p_value]
    expected = multipletests(raw, method="holm")[1]
    got = [both[0].comparisons[0].absolute.p_adjusted, both[1].comparisons[0].absolute.p_adjusted]
    assert got == pytest.approx(list(expected), rel=1e-12)
    assert all(a.correction == "holm" for a in both)
    assert both[1].comparisons[0].absolute.p_adjusted > rev.comparisons[0].absolute.p_adjusted


def test_srm_check_matches_scipy_chisquare_and_flags_a_broken_split() -> None:
    ok = srm_check([5021, 4979], [0.5, 0.5])
    ref = st.chisquare([5021, 4979], [5000, 5000])
    assert ok.chi_square == pytest.approx(ref.statistic)
    assert ok.p_value == pytest.approx(ref.pvalue)
    assert not ok.mismatch
    broken = srm_check([5200, 4800], [1, 1])  # 52/48 on 10,000 users: χ² = 16, p ≈ 6e-5
    assert broken.chi_square == pytest.approx(16.0)
    assert broken.mismatch
    three = srm_check([2000, 2000, 4000], [25, 25, 50])
    assert three.df == 2
    assert three.chi_square == pytest.approx(0.0)
    assert three.expected == (2000, 2000, 4000)
    res = analyse([ProportionStats("A", 5200, 520), ProportionStats("B", 4800, 500)], weights=[0.5, 0.5])
    assert res.srm is not None
    assert res.srm.mismatch


def test_as_dict_is_strict_json() -> None:
    res = analyse([ProportionStats("A", 500, 0), ProportionStats("B", 500, 7)], weights=[1, 1],
                  method="sequential")
    text = json.dumps(res.as_dict(), allow_nan=False)
    data = json.loads(text)
    comp = data["comparisons"][0]
    assert comp["relative"]["estimate"] is None  # control rate 0: relative effect undefined, not NaN
    assert comp["absolute"]["estimate"] == pytest.approx(0.014)
    assert {"absolute", "relative", "sequential_absolute", "sequential_relative", "bayes", "bayes_absolute",
            "warnings", "significant", "theta"} <= set(comp)
    assert any("control's mean is zero" in w for w in comp["warnings"])
    assert data["srm"]["mismatch"] is False


def test_zero_variance_gives_no_test_instead_of_a_crash() -> None:
    c = compare(ProportionStats("A", 100, 0), ProportionStats("B", 100, 0))
    assert math.isnan(c.absolute.p_value)
    assert not c.significant()
    assert any("no variance" in w for w in c.warnings)
    # An arm without a single order yet: AOV is undefined there; the comparison says so.
    ratio = compare(RatioStats("A", 50, 900.0, 40_000.0, 9.0, 11.0, 600.0),
                    RatioStats("B", 50, 0.0, 0.0, 0.0, 0.0, 0.0))
    assert math.isnan(ratio.absolute.estimate)
    assert ratio.control_mean == pytest.approx(100.0)
    assert ratio.warnings[0] == "variant 'B' has den_sum 0: the ratio is undefined"
    assert not ratio.significant()


# --------------------------------------------------------------------------------------------------
# Bad input names the variant and field
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stats", "message"), [
    (MeanStats("B", 1, 1.0, 1.0), "variant 'B': n must be at least 2"),
    (ProportionStats("B", 100, 101), "variant 'B': conversions must be between 0 and n = 100"),
    (ProportionStats("B", 100, -1), "conversions must be between 0"),
    (MeanStats("B", 10, 100.0, 50.0), "variant 'B': sum_squares = 50.0 is smaller than sum²/n"),
    (MeanStats("B", 10, math.nan, 50.0), "variant 'B': sum must be finite"),
    (CupedMeanStats("B", 10, 10.0, 20.0, 10.0, 20.0, 100.0), "variant 'B': |cross_sum|"),
])
def test_bad_statistics_are_refused_with_the_variant_and_field(stats: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message.replace("|", r"\|").replace("(", r"\(")):
        compare(MeanStats("A", 10, 10.0, 20.0) if not isinstance(stats, ProportionStats)
                else ProportionStats("A", 100, 10), stats)  # type: ignore[arg-type]


def test_mismatched_kinds_and_bad_options_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="variant 'B': statistics type ProportionStats does not"):
        compare(GB_A, ProportionStats("B", 100, 10))
    with pytest.raises(InvalidArgumentError, match="alpha"):
        compare(GB_A, GB_B, alpha=1.5)
    with pytest.raises(InvalidArgumentError, match="tuning"):
        compare(GB_A, GB_B, method="sequential", tuning=0)
    with pytest.raises(InvalidArgumentError, match="weights: 3 weight"):
        analyse([GB_A, GB_B], weights=[1, 1, 1])
    with pytest.raises(InvalidArgumentError, match="duplicate variant name 'A'"):
        analyse([GB_A, MeanStats("A", 10, 1.0, 1.0)])
    with pytest.raises(InvalidArgumentError, match="correction"):
        analyse([GB_A, GB_B], correction="bonferroni")  # type: ignore[arg-type]
