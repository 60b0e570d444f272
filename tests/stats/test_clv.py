"""BG/NBD, Pareto/NBD and Gamma-Gamma: fits, standard errors and predictions checked against the
published CDNOW numbers, the ``lifetimes`` reference library (tests only) and direct integration.

The published CDNOW summary (``cdnow_customers_summary_with_transactions.csv``, Fader & Hardie) ships
in the ``lifetimes`` wheel and is read from its files; ``tests/insight/test_clv_summary.py`` rebuilds
the same summary from the raw transactions through the warehouse.
"""

from __future__ import annotations

import importlib.metadata
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from growthwheel.errors import InvalidArgumentError
from growthwheel.stats import clv

lifetimes: Any = pytest.importorskip("lifetimes")  # reference implementation, dev extra only


def _dataset(name: str) -> Path:
    return Path(str(importlib.metadata.distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}")))


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """Published CDNOW calibration summary: x, t_x, T (weeks) and zbar (mean repeat spend, $)."""
    return pd.read_csv(_dataset("cdnow_customers_summary_with_transactions.csv"))


@pytest.fixture(scope="module")
def data(cdnow: pd.DataFrame) -> clv.RfmData:
    return clv.RfmData(cdnow.x, cdnow.t_x, cdnow["T"], monetary=cdnow.zbar.where(cdnow.x > 0))


def _rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _lifetimes_model(cls: Any, params: dict[str, float]) -> Any:
    model = cls()
    model.params_ = pd.Series(params)
    if hasattr(model, "conditional_expected_number_of_purchases_up_to_time"):
        model.predict = model.conditional_expected_number_of_purchases_up_to_time
    return model


# ---------------------------------------------------------------------------------------------
# Fits on the published summary
# ---------------------------------------------------------------------------------------------


def test_bgnbd_reproduces_the_published_cdnow_fit_and_lifetimes_standard_errors(
    data: clv.RfmData, cdnow: pd.DataFrame
) -> None:
    fit = clv.fit_bgnbd(data)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee 2005
    for name, value in published.items():
        assert getattr(fit.params, name) == pytest.approx(value, rel=0.005), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)  # the paper's LL
    assert fit.converged
    assert fit.at_bounds == ()
    assert fit.n_customers == 2357
    assert fit.time_unit == "week"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lifetimes.BetaGeoFitter().fit(cdnow.x, cdnow.t_x, cdnow["T"])
    assert _rel(list(fit.params.as_dict().values()), ref.params_[["r", "alpha", "a", "b"]]) < 1e-4
    # Standard errors: inverse Hessian of the negative log-likelihood in the parameters themselves.
    se = ref.standard_errors_
    for name in ("r", "alpha", "a", "b"):
        assert fit.std_errors[name] == pytest.approx(se[name], rel=1e-3), name


def test_gamma_gamma_reproduces_the_published_cdnow_fit(data: clv.RfmData, cdnow: pd.DataFrame) -> None:
    fit = clv.fit_gamma_gamma(data)
    published = {"p": 6.25, "q": 3.74, "v": 15.44}  # Fader, Hardie & Lee 2005, "RFM and CLV"
    for name, value in published.items():
        assert getattr(fit.params, name) == pytest.approx(value, rel=0.005), name
    assert fit.n_customers == int((cdnow.x > 0).sum()) == 946  # repeat buyers only
    assert fit.converged
    repeat = cdnow[cdnow.x > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lifetimes.GammaGammaFitter().fit(repeat.x, repeat.zbar)
    for name in ("p", "q", "v"):
        assert getattr(fit.params, name) == pytest.approx(ref.params_[name], rel=1e-4)
        assert fit.std_errors[name] == pytest.approx(ref.standard_errors_[name], rel=1e-3)
    # Mean spend per purchase p·v/(q−1) (the paper's $35.4 at the rounded parameters).
    assert fit.params.mean_spend == pytest.approx(6.25 * 15.44 / 2.74, rel=0.003)


def test_paretonbd_matches_published_values_lifetimes_and_direct_integration(
    data: clv.RfmData, cdnow: pd.DataFrame
) -> None:
    fit = clv.fit_paretonbd(data)
    # Published (Fader, Hardie & Lee 2005, same data and convention), two decimals.
    for name, value in {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}.items():
        assert getattr(fit.params, name) == pytest.approx(value, abs=0.005 + 1e-9), name
    assert fit.log_likelihood == pytest.approx(-9595.0, abs=0.05)
    assert fit.converged

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lifetimes.ParetoNBDFitter().fit(cdnow.x, cdnow.t_x, cdnow["T"])
    # lifetimes' Nelder-Mead stops at slightly different points from run to run (seen under
    # parallel test load); the published values and the likelihood above are the authority.
    assert _rel(list(fit.params.as_dict().values()), ref.params_[["r", "alpha", "s", "beta"]]) < 1e-2

    # Per-customer log-likelihood: lifetimes' formula, and for a few rows the defining integral
    # L = c·[(α+T)^-(r+x) (β+T)^-s + s ∫_{t_x}^{T} (α+τ)^-(r+x) (β+τ)^-(s+1) dτ].
    params = clv.ParetoNbdParams(0.553, 10.578, 0.606, 11.669)
    ours = clv.paretonbd_log_likelihood(params, data)
    theirs = lifetimes.ParetoNBDFitter._conditional_log_likelihood(
        [params.r, params.alpha, params.s, params.beta], cdnow.x.to_numpy(), cdnow.t_x.to_numpy(),
        cdnow["T"].to_numpy())
    assert _rel(ours, theirs) < 1e-9
    r, alpha, s, beta = params.r, params.alpha, params.s, params.beta
    for i in (0, 1, 2, 40, 1000):
        x, t_x, big_t = cdnow.x[i], cdnow.t_x[i], cdnow["T"][i]
        integral, _ = integrate.quad(lambda tau, x=x: (alpha + tau) ** -(r + x) * (beta + tau) ** -(s + 1),
                                     t_x, big_t, epsabs=0, epsrel=1e-12)
        common = special.gammaln(r + x) - special.gammaln(r) + r * math.log(alpha) + s * math.log(beta)
        direct = common + math.log((alpha + big_t) ** -(r + x) * (beta + big_t) ** -s + s * integral)
        assert ours[i] == pytest.approx(direct, rel=1e-9)

    # Standard errors: the Hessian of lifetimes' log-likelihood, by central differences here.
    theta = np.array(list(fit.params.as_dict().values()))
    x, t_x, big_t = (cdnow[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))

    def nll(th: np.ndarray) -> float:
        return -float(lifetimes.ParetoNBDFitter._conditional_log_likelihood(th, x, t_x, big_t).sum())

    h = 1e-3 * theta
    hess = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            e_i, e_j = np.eye(4)[i] * h[i], np.eye(4)[j] * h[j]
            hess[i, j] = (nll(theta + e_i + e_j) - nll(theta + e_i - e_j) - nll(theta - e_i + e_j)
                          + nll(theta - e_i - e_j)) / (4 * h[i] * h[j])
    expected = np.sqrt(np.diag(np.linalg.inv(hess)))
    for k, name in enumerate(clv.ParetoNbdParams.names):
        assert fit.std_errors[name] == pytest.approx(expected[k], rel=0.01), name


def test_compressed_rows_give_the_same_fit(data: clv.RfmData) -> None:
    compact, inverse = clv.compress(data)
    assert compact.n_customers == data.n_customers == 2357
    assert len(compact.frequency) < 2357  # many customers share (x, t_x, T)
    np.testing.assert_array_equal(compact.frequency[inverse], data.frequency)
    np.testing.assert_array_equal(compact.age[inverse], data.age)
    a, b = clv.fit_bgnbd(data), clv.fit_bgnbd(compact)
    assert _rel(list(a.params.as_dict().values()), list(b.params.as_dict().values())) < 1e-6
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-10)
    # The time unit only rescales alpha: the same data in days.
    days = clv.RfmData(data.frequency, data.recency * 7, data.age * 7, time_unit="day")
    in_days = clv.fit_bgnbd(days)
    assert in_days.params.alpha == pytest.approx(a.params.alpha * 7, rel=1e-4)
    assert in_days.params.r == pytest.approx(a.params.r, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# Predictions against lifetimes at the same parameters
# ---------------------------------------------------------------------------------------------


def test_predictions_match_lifetimes_for_the_same_parameters(cdnow: pd.DataFrame) -> None:
    x, t_x, big_t, m = (cdnow[c].to_numpy(dtype=float) for c in ("x", "t_x", "T", "zbar"))
    bg = clv.BgNbdParams(0.243, 4.414, 0.793, 2.426)
    pn = clv.ParetoNbdParams(0.553, 10.578, 0.606, 11.669)
    gg = clv.GammaGammaParams(6.25, 3.74, 15.44)
    ref_bg = _lifetimes_model(lifetimes.BetaGeoFitter, bg.as_dict())
    ref_pn = _lifetimes_model(lifetimes.ParetoNBDFitter, pn.as_dict())
    ref_gg = _lifetimes_model(lifetimes.GammaGammaFitter, gg.as_dict())

    assert _rel(clv.p_alive(bg, x, t_x, big_t), ref_bg.conditional_probability_alive(x, t_x, big_t)) < 1e-6
    assert _rel(clv.p_alive(pn, x, t_x, big_t), ref_pn.conditional_probability_alive(x, t_x, big_t)) < 1e-6
    for t in (1.0, 39.0, 104.0):
        for ours, ref in ((bg, ref_bg), (pn, ref_pn)):
            expected = ref.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, big_t)
            assert _rel(clv.expected_purchases(ours, t, x, t_x, big_t), expected) < 1e-6
    repeat = x > 0
    assert _rel(clv.expected_spend(gg, x[repeat], m[repeat]),
                ref_gg.conditional_expected_average_profit(x[repeat], m[repeat])) < 1e-6
    # No repeat purchase: the population mean p·v/(q−1).
    assert clv.expected_spend(gg, [0.0], [np.nan])[0] == pytest.approx(6.25 * 15.44 / 2.74)

    # CLV over 12 months at 1% a month, with the parameters in months (lifetimes steps by month).
    per_month = 7 / clv.DAYS_PER_MONTH
    bg_month = clv.BgNbdParams(bg.r, bg.alpha * per_month, bg.a, bg.b)
    ours = clv.customer_lifetime_value(bg_month, gg, x, t_x * per_month, big_t * per_month, m,
                                       periods=12, discount_rate=clv.discount_per_unit(0.01, "month"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ref_gg.customer_lifetime_value(
            _lifetimes_model(lifetimes.BetaGeoFitter, bg_month.as_dict()), pd.Series(x),
            pd.Series(t_x * per_month), pd.Series(big_t * per_month), pd.Series(m), time=12,
            discount_rate=0.01, freq="M")
    assert _rel(ours[repeat], theirs.to_numpy()[repeat]) < 1e-6


def test_hand_computed_predictions() -> None:
    bg = clv.BgNbdParams(r=1.0, alpha=2.0, a=1.0 + 1e-12, b=3.0)
    # P(alive) by hand: 1 / (1 + a/(b+x-1) · ((α+T)/(α+t_x))^(r+x)) for x=1, t_x=2, T=6.
    assert clv.p_alive(bg, 1, 2, 6)[0] == pytest.approx(1 / (1 + 1 / 3 * (8 / 4) ** 2), rel=1e-9)
    assert clv.p_alive(bg, 0, 0, 6)[0] == 1.0  # nobody can drop out before a repeat purchase
    # a = 1 exactly is a removable singularity: finite and between its neighbours.
    mid = clv.expected_purchases(bg, 5.0, 1, 2, 6)[0]
    lo = clv.expected_purchases(clv.BgNbdParams(1.0, 2.0, 0.999, 3.0), 5.0, 1, 2, 6)[0]
    hi = clv.expected_purchases(clv.BgNbdParams(1.0, 2.0, 1.001, 3.0), 5.0, 1, 2, 6)[0]
    assert min(lo, hi) <= mid <= max(lo, hi)
    assert clv.expected_purchases(bg, 0.0, 1, 2, 6)[0] == 0.0
    # Discounting: 1% a month is (1.01)^(7/30.4375) − 1 a week.
    assert clv.discount_per_unit(0.01, "week") == pytest.approx(1.01 ** (7 / 30.4375) - 1)


@pytest.mark.parametrize("purchases", [
    clv.BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5),
    clv.BgNbdParams(r=0.3, alpha=2.0, a=0.4, b=0.3),  # a + b < 1: 2F1 < 0 for x = 0
    clv.BgNbdParams(r=1.0, alpha=2.0, a=1.0 + 1e-12, b=3.0),  # the singular a = 1
    clv.ParetoNbdParams(r=0.55, alpha=10.6, s=0.61, beta=11.7),
    clv.ParetoNbdParams(r=0.55, alpha=10.6, s=1.0, beta=11.7),
])
def test_scores_equal_the_sum_of_expected_purchases_exactly(purchases: clv.PurchaseParams) -> None:
    """Scoring computes the alive-rate once per distinct (x, T) and P(alive) once per customer;
    the numbers are the same, bit for bit, as summing ``expected_purchases`` period by period."""
    rng = np.random.default_rng(3)
    n = 2000
    big_t = rng.integers(1, 40, n).astype(float)
    x = np.minimum(rng.poisson(1.5, n), 12).astype(float)
    t_x = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * big_t), 0.0)
    m = np.where(x > 0, rng.uniform(5, 80, n), np.nan)
    gg = clv.GammaGammaParams(p=6.0, q=3.5, v=15.0)
    got = clv.score_customers(purchases, gg, x, t_x, big_t, m, periods=12, discount_rate=0.01)
    value, previous = np.zeros(n), np.zeros(n)
    for k in range(1, 13):
        cumulative = clv.expected_purchases(purchases, float(k), x, t_x, big_t)
        value += (cumulative - previous) / 1.01 ** k
        previous = cumulative
    np.testing.assert_array_equal(got.expected_purchases, previous)
    np.testing.assert_array_equal(got.clv, value * clv.expected_spend(gg, x, m))
    np.testing.assert_array_equal(got.p_alive, clv.p_alive(purchases, x, t_x, big_t))
    assert np.all(np.isfinite(got.clv))
    assert np.all(got.expected_purchases > 0)


# ---------------------------------------------------------------------------------------------
# Robustness and clear errors
# ---------------------------------------------------------------------------------------------


def test_fits_where_lifetimes_fails_to_converge() -> None:
    # 29 customers who keep buying up to the last week: nobody has visibly dropped out, so the
    # maximum likelihood drop-out probability goes to 0 (a -> 0). lifetimes' unbounded Nelder-Mead
    # gives up with ConvergenceError; the bounded fit ends on the bound and says so.
    x = np.arange(1, 30, dtype=float)
    t_x, big_t = np.full(29, 29.0), np.full(29, 30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(lifetimes.utils.ConvergenceError):
            lifetimes.BetaGeoFitter().fit(x, t_x, big_t)
    fit = clv.fit_bgnbd(clv.RfmData(x, t_x, big_t))
    assert fit.converged
    # a goes to 0 (on the bound, or where the likelihood is flat): it gets no standard error and
    # the message says so; r and alpha are well determined.
    assert fit.params.a < 1e-3
    assert math.isnan(fit.std_errors["a"])
    assert "a reached the bound" in fit.message or "a: not identified by the data" in fit.message
    assert all(math.isfinite(fit.std_errors[k]) for k in ("r", "alpha"))
    # The maximum: no drop-out at all (a -> 0) is as good as it gets.
    limit = clv.bgnbd_log_likelihood(clv.BgNbdParams(fit.params.r, fit.params.alpha, 1e-12, 1.0),
                                     clv.RfmData(x, t_x, big_t)).sum()
    assert fit.log_likelihood == pytest.approx(limit, abs=1e-3)
    # The fit is usable: everyone is almost surely alive, and the average customer's rate r/alpha
    # matches the data (a Poisson rate: total purchases / total time).
    assert np.all(clv.p_alive(fit.params, x, t_x, big_t) > 0.99)
    assert fit.params.r / fit.params.alpha == pytest.approx(x.sum() / big_t.sum(), rel=0.02)
    ahead = clv.expected_purchases(fit.params, 10.0, x, t_x, big_t)
    assert np.all(np.isfinite(ahead))
    assert ahead[-1] > ahead[0]


def test_clear_errors_for_data_that_cannot_be_fitted() -> None:
    once = clv.RfmData([0, 0, 0], [0, 0, 0], [5, 3, 1], monetary=[np.nan] * 3)
    with pytest.raises(clv.CannotFitError, match="no repeat buyers: all 3 customers") as info:
        clv.fit_bgnbd(once)
    assert info.value.code == "cannot_fit"
    with pytest.raises(clv.CannotFitError, match="no repeat buyers"):
        clv.fit_paretonbd(once)
    with pytest.raises(clv.CannotFitError, match="no repeat buyers among 3 customers"):
        clv.fit_gamma_gamma(once)
    with pytest.raises(clv.CannotFitError, match="no customers"):
        clv.fit_bgnbd(clv.RfmData([], [], []))

    free = clv.RfmData([1, 2, 0], [1, 2, 0], [3, 3, 3], monetary=[0.0, -5.0, np.nan])
    with pytest.raises(clv.CannotFitError, match="no repeat buyer has a positive spend") as info:
        clv.fit_gamma_gamma(free)
    assert "2 repeat buyer(s)" in info.value.message

    # Repeat buyers with a non-positive spend are left out of the spend model and counted.
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, 300).astype(float)
    m = rng.gamma(5.0, 10.0, 300)
    m[:7] = 0.0
    fit = clv.fit_gamma_gamma(clv.RfmData(x, x, x + 1, monetary=m))
    assert fit.n_customers == 293
    assert fit.n_excluded == 7
    assert "7 repeat buyer(s) without a positive mean spend were left out" in fit.message

    with pytest.raises(InvalidArgumentError, match=r"t_x > T\) for 1 customer"):
        clv.RfmData([1, 1], [2, 5], [3, 4])
    with pytest.raises(InvalidArgumentError, match="frequency: 1 negative"):
        clv.RfmData([-1], [0], [3])
    with pytest.raises(InvalidArgumentError, match="age: 1 missing"):
        clv.RfmData([1], [0], [np.nan])
    with pytest.raises(InvalidArgumentError, match="not whole numbers"):
        clv.RfmData([1.5], [1], [3])
    with pytest.raises(InvalidArgumentError, match="frequency 0"):
        clv.RfmData([0], [1], [3])
    with pytest.raises(InvalidArgumentError, match="unknown time unit"):
        clv.RfmData([1], [1], [3], time_unit="year")
    with pytest.raises(clv.CannotFitError, match="not finite"):
        clv.expected_spend(clv.GammaGammaParams(2.0, 0.9, 10.0), [1], [5.0])


def test_holdout_comparison_by_hand() -> None:
    frequency = [0, 0, 1, 3, 9, 12]
    predicted = [0.5, 0.1, 1.0, 2.0, 6.0, 8.0]
    actual = [1, 0, 0, 2, 5, 10]
    result = clv.compare_holdout(frequency, predicted, actual, top=7)
    assert result.actual_total == 18
    assert result.predicted_total == pytest.approx(17.6)
    assert result.mean_absolute_error == pytest.approx((0.5 + 0.1 + 1 + 0 + 1 + 2) / 6)
    rows = {row.frequency: row for row in result.rows}
    assert list(rows) == ["0", "1", "3", "7+"]
    assert rows["0"].customers == 2
    assert rows["0"].predicted_mean == pytest.approx(0.3)
    assert rows["7+"].actual_total == 15
    assert rows["7+"].mean_absolute_error == pytest.approx(1.5)
