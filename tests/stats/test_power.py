"""Power, sample size and MDE (``growthwheel.stats.power``) against statsmodels and worked examples.

Reference values:
* Baseline 10 %, absolute MDE 2 pp, α = 0.05 two-sided, power 0.8 → **3,841 per group** with the
  pooled-variance formula (Fleiss, Levin & Paik 2003, eq. 4.14 without continuity correction) — the
  number Evan Miller's sample-size calculator prints for these inputs. Worked by hand below.
* Cohen (1988), Table 2.4.1: d = 0.5, α = 0.05 two-sided, power 0.80 → 64 per group with the t-test;
  the normal approximation gives 63 (statsmodels ``zt_ind_solve_power``: 62.79).
"""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, tt_ind_solve_power, zt_ind_solve_power

from growthwheel.errors import InvalidArgumentError
from growthwheel.stats import power


def test_textbook_conversion_sample_size() -> None:
    r = power.sample_size_proportion(0.10, 0.02)
    # By hand: p̄ = 0.11; (1.959964·√(2·0.11·0.89) + 0.841621·√(0.09 + 0.1056))² / 0.02² = 3840.8 → 3841.
    by_hand = (1.959964 * math.sqrt(2 * 0.11 * 0.89) + 0.841621 * math.sqrt(0.09 + 0.12 * 0.88)) ** 2 / 0.0004
    assert by_hand == pytest.approx(3840.8, abs=0.1)
    assert r.per_variant == 3841
    assert r.total == 7682
    assert r.mde_relative == pytest.approx(0.2)
    # The same effect given as relative: 20 % of 10 %.
    assert power.sample_size_proportion(0.10, 0.20, relative=True).per_variant == 3841


def test_unpooled_formula_and_power_match_statsmodels() -> None:
    p1, p2 = 0.05, 0.06
    es = (p2 - p1) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    ref_n = NormalIndPower().solve_power(effect_size=es, alpha=0.05, power=0.9, ratio=1.0)
    r = power.sample_size_proportion(p1, 0.01, power=0.9, formula="unpooled")
    assert r.per_variant == math.ceil(ref_n)
    assert power.power_proportion(p1, 0.01, 8000, formula="unpooled") == pytest.approx(
        NormalIndPower().power(effect_size=es, nobs1=8000, alpha=0.05, ratio=1.0), rel=1e-10)
    # The pooled test needs a few more units than the Wald test for an increase from a low rate.
    assert power.sample_size_proportion(p1, 0.01, power=0.9).per_variant > r.per_variant


def test_mean_sample_size_matches_statsmodels_and_cohens_table() -> None:
    r = power.sample_size_mean(sd=1.0, mde=0.5)
    assert r.per_variant == math.ceil(zt_ind_solve_power(effect_size=0.5, alpha=0.05, power=0.8)) == 63
    t_based = tt_ind_solve_power(effect_size=0.5, alpha=0.05, power=0.8)
    assert math.ceil(t_based) == 64  # Cohen's table value
    assert r.per_variant <= t_based <= r.per_variant + 1
    # Revenue per user: sd ¥120, detect +¥6 (5 % of a ¥120 mean) at 90 % power.
    rel = power.sample_size_mean(sd=120.0, mde=0.05, baseline_mean=120.0, relative=True, power=0.9)
    assert rel.per_variant == math.ceil(zt_ind_solve_power(effect_size=6 / 120, alpha=0.05, power=0.9))
    assert power.power_mean(120.0, 6.0, 5000) == pytest.approx(
        NormalIndPower().power(effect_size=0.05, nobs1=5000, alpha=0.05, ratio=1.0), rel=1e-10)


def test_mde_for_given_traffic_inverts_the_sample_size() -> None:
    m = power.mde_proportion(0.10, 3841)
    assert m.mde_absolute == pytest.approx(0.02, abs=2e-5)  # 3841 was rounded up from 3840.8
    assert power.power_proportion(0.10, m.mde_absolute, 3841) == pytest.approx(0.8, abs=1e-9)
    mm = power.mde_mean(sd=50.0, n_per_variant=2000, baseline_mean=200.0)
    es = NormalIndPower().solve_power(effect_size=None, nobs1=2000, alpha=0.05, power=0.8, ratio=1.0)
    assert mm.mde_absolute == pytest.approx(es * 50.0, rel=1e-6)
    assert mm.mde_relative == pytest.approx(es * 50.0 / 200.0, rel=1e-6)


def test_more_variants_use_a_bonferroni_level_per_comparison() -> None:
    three = power.sample_size_proportion(0.10, 0.02, variants=3)
    assert three.alpha_per_comparison == pytest.approx(0.025)
    assert three.per_variant == power.sample_size_proportion(0.10, 0.02, alpha=0.025).per_variant
    assert three.total == 3 * three.per_variant
    assert three.per_variant > 3841


@pytest.mark.parametrize(("call", "message"), [
    (lambda: power.sample_size_proportion(1.5, 0.02), "baseline: 1.5 must be a conversion rate"),
    (lambda: power.sample_size_proportion(0.95, 0.1), "mde: baseline 0.95 \\+ effect 0.1"),
    (lambda: power.sample_size_proportion(0.1, 0.0), "mde: 0.0 must be a non-zero effect"),
    (lambda: power.sample_size_proportion(0.1, 0.02, variants=1), "variants: 1 must be"),
    (lambda: power.sample_size_proportion(0.1, 0.02, power=1.0), "power: 1.0 must be between"),
    (lambda: power.sample_size_mean(-1.0, 1.0), "sd: -1.0 must be a positive"),
    (lambda: power.sample_size_mean(1.0, 0.1, relative=True), "baseline: a relative mde needs"),
    (lambda: power.mde_proportion(0.5, 3), "traffic: 3 units per variant cannot reach power"),
])
def test_bad_inputs_name_the_field(call: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        call()  # type: ignore[operator]
