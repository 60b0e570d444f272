"""Confidence sequences, the Bayesian read-out and outlier capping, checked independently:
the mixture e-value against numerical integration of the normal-mixture martingale, losses against
numerical integration of the posterior, the conjugate update worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as st

from growthwheel.errors import InvalidArgumentError
from growthwheel.stats import bayes, sequential
from growthwheel.stats.outliers import winsorise


def test_e_value_is_the_normal_mixture_martingale() -> None:
    """Howard et al. (2021): M = ∫ exp(λS − λ²V/2) N(λ; 0, τ²) dλ with S = N·x̄, V = N·σ², τ² = ρ²/σ²."""
    alpha, tuning = 0.05, 4000.0
    r2 = sequential.rho(alpha, tuning) ** 2
    for n, xbar, sigma in ((500, 0.08, 1.3), (4000, 0.05, 1.0), (20_000, -0.01, 2.0)):
        se = sigma / math.sqrt(n)
        s_sum, v = n * xbar, n * sigma**2
        tau = math.sqrt(r2) / sigma

        def integrand(lam: float, s_sum: float = s_sum, v: float = v, tau: float = tau) -> float:
            return math.exp(lam * s_sum - lam * lam * v / 2) * st.norm.pdf(lam, 0, tau)

        mixture, _ = integrate.quad(integrand, -20 * tau, 20 * tau, limit=200)
        p = sequential.p_value(xbar, se, n, alpha=alpha, tuning=tuning)
        assert p == pytest.approx(min(1.0, 1.0 / mixture), rel=1e-6)


def test_p_value_below_alpha_exactly_when_the_interval_excludes_zero() -> None:
    se = np.full(400, 0.1)
    est = np.linspace(-0.6, 0.6, 400)
    n = np.full(400, 3000.0)
    width = sequential.half_width(se, n, alpha=0.05, tuning=3000)
    p = sequential.p_value(est, se, n, alpha=0.05, tuning=3000)
    excludes = np.abs(est) > width
    assert ((p < 0.05) == excludes).all()
    assert excludes.any()
    assert not excludes.all()
    # Scalars give the same numbers as arrays.
    assert sequential.half_width(0.1, 3000.0, tuning=3000) == pytest.approx(float(width[0]))
    assert sequential.p_value(0.6, 0.1, 3000.0, tuning=3000) == pytest.approx(float(p[-1]))


def test_rho_and_bad_tuning() -> None:
    # ρ² = (−2 ln α + ln(−2 ln α + 1)) / tuning: α = 0.05 → (5.99146 + 1.94469) / 5000.
    assert sequential.rho(0.05, 5000) ** 2 == pytest.approx((5.991465 + 1.944690) / 5000, rel=1e-6)
    with pytest.raises(InvalidArgumentError, match="tuning"):
        sequential.rho(0.05, -1)


def test_posterior_losses_match_numerical_integration() -> None:
    post = bayes.posterior(0.03, 0.02)
    dist = st.norm(0.03, 0.02)
    loss, _ = integrate.quad(lambda x: max(0.0, -x) * dist.pdf(x), -0.2, 0.2, points=[0.0])
    gain, _ = integrate.quad(lambda x: max(0.0, x) * dist.pdf(x), -0.2, 0.2, points=[0.0])
    assert post.chance_to_win == pytest.approx(dist.sf(0.0))
    assert post.expected_loss == pytest.approx(loss, rel=1e-7)
    assert post.risk_control == pytest.approx(gain, rel=1e-7)
    assert (post.ci_lower, post.ci_upper) == pytest.approx(dist.ppf([0.025, 0.975]))
    lower = bayes.posterior(0.03, 0.02, higher_is_better=False)  # e.g. a refund rate
    assert lower.chance_to_win == pytest.approx(1 - post.chance_to_win)
    assert lower.expected_loss == pytest.approx(post.risk_control)


def test_weak_prior_shrinks_by_the_conjugate_formula() -> None:
    # Prior N(0, 0.1²), data 0.3 ± 0.1: precision 100 + 100 = 200 → mean 0.15, sd √(1/200).
    post = bayes.posterior(0.3, 0.1, prior_sd=0.1)
    assert post.mean == pytest.approx(0.15)
    assert post.sd == pytest.approx(math.sqrt(1 / 200))
    assert math.isnan(bayes.posterior(0.1, 0.0).chance_to_win)
    with pytest.raises(InvalidArgumentError, match="prior_sd"):
        bayes.posterior(0.1, 0.1, prior_sd=0.0)


def test_winsorise_caps_at_interpolated_quantiles() -> None:
    values = np.arange(1, 101, dtype=float)  # 1 … 100
    capped = winsorise(values, upper=0.99, lower=0.01)
    # Linear interpolation: 0.99 · 99 = 98.01 → 99 + 0.01 = 99.01; 0.01 · 99 = 0.99 → 1.99.
    assert capped.max() == pytest.approx(99.01)
    assert capped.min() == pytest.approx(1.99)
    assert (capped[1:99] == values[1:99]).all()
    assert winsorise(values, upper=None).tolist() == values.tolist()
    with pytest.raises(InvalidArgumentError, match="values: 1 value"):
        winsorise([1.0, math.nan])
    with pytest.raises(InvalidArgumentError, match=r"upper: 1\.5"):
        winsorise(values, upper=1.5)
