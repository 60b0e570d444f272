"""Demand forecasts: hand-worked Croston/SBA/TSB, statsmodels as the reference for SES and
ETS(A,N,A), and the backtest on demand with known parameters and on a real public series."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from growthwheel.inventory import forecast as fc

INTERMITTENT = [0.0, 3.0, 0.0, 0.0, 5.0, 0.0, 2.0]


def test_croston_and_sba_by_hand() -> None:
    # started at the first demand (z = 3, p = 2); demand 5 after 3 periods: z = 3.2, p = 2.1;
    # demand 2 after 2 periods: z = 3.08, p = 2.09 → rate 3.08 / 2.09; SBA × (1 - 0.1 / 2)
    assert fc.croston(np.array([INTERMITTENT]), 3, alpha=0.1)[0] == pytest.approx([3.08 / 2.09] * 3)
    assert fc.sba(np.array([INTERMITTENT]), 1, alpha=0.1)[0, 0] == pytest.approx(0.95 * 3.08 / 2.09)


def test_tsb_by_hand_and_its_decay() -> None:
    # probability 1/2 at the first demand (the second period), then 0.45, 0.405, 0.4645, 0.41805,
    # 0.476245; size 3.08 as in Croston
    assert fc.tsb(np.array([INTERMITTENT]), 1, alpha=0.1, beta=0.1)[0, 0] == pytest.approx(0.476245 * 3.08)
    # an item that stopped selling: TSB's forecast falls, Croston's stays where it was
    stopped = np.array([[4.0, 0, 4, 0, 4, 0] + [0.0] * 30])
    assert fc.tsb(stopped, 1)[0, 0] < 0.1 * fc.croston(stopped, 1)[0, 0]
    never = np.zeros((1, 10))
    assert fc.croston(never, 2).tolist() == [[0.0, 0.0]]
    assert fc.tsb(never, 2).tolist() == [[0.0, 0.0]]


def test_ses_and_ets_equal_statsmodels() -> None:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.holtwinters import SimpleExpSmoothing

    rng = np.random.default_rng(1)
    y = 10 + 3 * np.sin(np.arange(60) * 2 * np.pi / 7) + rng.normal(0, 1, 60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SimpleExpSmoothing(y, initialization_method="known", initial_level=y[0]).fit(
            smoothing_level=0.3, optimized=False).forecast(3)
        level0, season0 = y[:7].mean(), y[:7] - y[:7].mean()
        model = ETSModel(y, error="add", seasonal="add", seasonal_periods=7,
                         initialization_method="known", initial_level=level0, initial_seasonal=season0)
        ets_ref = model.smooth([0.1, 0.1]).forecast(10)
    assert fc.ses(y, 3, alpha=0.3)[0] == pytest.approx(ref)
    ours = fc.ets_seasonal(y, 10, 7, 0.1, 0.1, level0=np.array([level0]), season0=season0[None, :])
    assert ours[0] == pytest.approx(ets_ref)


def test_vectorised_rows_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(2)
    y = rng.poisson(2, (5, 40)) * (rng.random((5, 40)) < 0.4)
    for name, method in fc.METHODS.items():
        together = method(y.astype(float), 7, 7)
        alone = np.vstack([method(y[i : i + 1].astype(float), 7, 7) for i in range(5)])
        assert together == pytest.approx(alone), name


def known_demand(n: int = 200, days: int = 280, seed: int = 3) -> np.ndarray:
    """Daily demand with known parameters: each SKU sells on a day with probability ``p`` (higher at
    the weekend) a Poisson(size) quantity — smooth, intermittent and lumpy items mixed."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.9, n)
    size = rng.uniform(1, 8, n)
    week = np.tile([1, 1, 1, 1, 1.2, 1.5, 1.3], days // 7)
    prob = np.clip(p[:, None] * week[None, :], 0, 1)
    return ((rng.random((n, days)) < prob) * rng.poisson(size[:, None], (n, days))).astype(float)


def test_backtest_beats_seasonal_naive_on_known_demand() -> None:
    y = known_demand()
    result = fc.backtest(y, h=14, m=7, origins=4)
    summary = result.summary()
    # the choice, judged on the last origin only (not the ones it was picked on), beats the baseline
    assert summary["selected_holdout"] < 0.95 * summary["baseline_holdout"]
    squared = result.summary_rmsse()
    assert squared["selected_holdout"] < 0.9 * squared["baseline_holdout"]
    # the intermittent-demand methods beat seasonal naive on average over every origin
    for name in ("croston", "sba", "tsb"):
        assert summary[name] < 0.9 * summary["seasonal_naive"]
    assert set(result.chosen) <= set(fc.METHODS)
    assert len(result.chosen) == y.shape[0]
    assert (result.sigma > 0).all()
    overall = fc.backtest(y, h=14, m=7, origins=4, choose="overall")
    assert len(set(overall.chosen)) == 1
    assert overall.summary()["selected_holdout"] < overall.summary()["baseline_holdout"]


def test_real_public_series_ets_beats_seasonal_naive() -> None:
    # statsmodels ships one real demand-like monthly series: euro-area electrical equipment orders
    # (index, 1995-2016). No SKU-level retail demand ships in any installed package.
    from statsmodels.datasets import elec_equip

    y = elec_equip.load_pandas().data.iloc[:, 0].to_numpy()[None, :]
    result = fc.backtest(y, h=12, m=12, origins=6, methods=("ets_seasonal", "ets_seasonal_fast"))
    summary = result.summary()
    assert summary["ets_seasonal_fast"] < 0.8 * summary["seasonal_naive"]
    assert summary["selected_holdout"] < summary["baseline_holdout"]


def test_weekly_and_errors() -> None:
    daily = np.arange(1, 16, dtype=float)[None, :]
    assert fc.weekly(daily).tolist() == [[2 + 3 + 4 + 5 + 6 + 7 + 8, 9 + 10 + 11 + 12 + 13 + 14 + 15]]
    with pytest.raises(ValueError, match="too short"):
        fc.backtest(np.ones((1, 20)), h=7, m=7, origins=3)
    with pytest.raises(ValueError, match="unknown"):
        fc.backtest(np.ones((1, 60)), h=7, m=7, methods=("prophet",))
    mixed = fc.forecast(known_demand(4, 70), 5, 7, ["tsb", "ses", "tsb", "seasonal_naive"])
    assert mixed.shape == (4, 5)
    assert (mixed >= 0).all()
