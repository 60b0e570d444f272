"""Demand forecasting: speed (SKUs per second) and accuracy against seasonal naive.

Demand with known parameters: each SKU sells on a day with probability ``p`` (uniform 0.02–0.9,
higher at the weekend) a Poisson(``size``) quantity (``size`` uniform 1–8), so smooth,
intermittent and lumpy items are mixed, like a shop's catalogue. On ``--skus`` SKUs × ``--days``
days it runs the whole rolling-origin backtest of ``inventory/forecast.py`` (every method, 4
origins of 14 days, a method chosen per SKU on the first three, graded on the last) and prints:

* SKUs per second of the whole backtest, against the baseline measured in the same run:
  statsmodels fitting one model per SKU (``ExponentialSmoothing`` with additive weekly seasonality,
  parameters optimised — the usual "fit ETS per SKU" loop) on ``--sample`` SKUs;
* MASE and RMSSE of every method, of the per-SKU choice and of seasonal naive on the last origin,
  and statsmodels' fitted ETS on the same sample and origin.

    nice -n 5 .venv/bin/python bench/forecast_bench.py --skus 10000 --sample 200
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from growthwheel.inventory import forecast as fc


def known_demand(n: int, days: int, seed: int) -> np.ndarray:
    """``n`` SKUs × ``days`` of demand with known parameters (see the module docstring)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.9, n)
    size = rng.uniform(1, 8, n)
    week = np.tile([1, 1, 1, 1, 1.2, 1.5, 1.3], days // 7 + 1)[:days]
    prob = np.clip(p[:, None] * week[None, :], 0, 1)
    return ((rng.random((n, days)) < prob) * rng.poisson(size[:, None], (n, days))).astype(float)


def statsmodels_ets(y: np.ndarray, h: int) -> np.ndarray:
    """One fitted additive-seasonal exponential smoothing per row (the per-SKU baseline)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    out = np.zeros((y.shape[0], h))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(y.shape[0]):
            try:
                fit = ExponentialSmoothing(y[i], seasonal="add", seasonal_periods=7,
                                           initialization_method="estimated").fit()
                out[i] = np.maximum(fit.forecast(h), 0)
            except (ValueError, np.linalg.LinAlgError):
                out[i] = y[i, -7:].mean()
    return out


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sample", type=int, default=200, help="SKUs fitted one by one by statsmodels")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    h, m, origins = 14, 7, 4
    y = known_demand(args.skus, args.days, args.seed)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.skus:,} SKUs x {args.days} days, "
          f"{(y > 0).mean():.1%} of SKU-days with a sale")

    started = time.perf_counter()
    result = fc.backtest(y, h=h, m=m, origins=origins)
    ours = time.perf_counter() - started
    ours_rate = args.skus / ours
    fits_per_sku = origins * len(result.methods)

    cut = y.shape[1] - h
    sample = y[: args.sample]
    started = time.perf_counter()
    base_pred = statsmodels_ets(sample[:, :cut], h)
    base = time.perf_counter() - started
    base_rate = args.sample / base  # one fit per SKU (one origin, one method)

    print(f"\nspeed: whole backtest ({fits_per_sku} forecasts per SKU) {ours:.2f} s = "
          f"{ours_rate:,.0f} SKUs/s; "
          f"statsmodels ETS, one fit per SKU: {base:.2f} s for {args.sample} = {base_rate:,.1f} SKUs/s")
    print(f"ratio (SKUs/s, ours with {fits_per_sku} forecasts each / statsmodels with 1): "
          f"{ours_rate / base_rate:,.0f}x")

    mase, rmsse = result.summary(), result.summary_rmsse()
    print("\naccuracy over all origins (mean over SKUs; lower is better)")
    print(f"{'method':<20}{'MASE':>8}{'RMSSE':>8}")
    for name in result.methods:
        print(f"{name:<20}{mase[name]:>8.3f}{rmsse[name]:>8.3f}")
    print("\nlast origin only (the per-SKU choice is picked on the first three)")
    print(f"{'chosen per SKU':<20}{mase['selected_holdout']:>8.3f}{rmsse['selected_holdout']:>8.3f}")
    print(f"{'seasonal naive':<20}{mase['baseline_holdout']:>8.3f}{rmsse['baseline_holdout']:>8.3f}")
    print(f"ratio chosen / seasonal naive: MASE {mase['selected_holdout'] / mase['baseline_holdout']:.3f}, "
          f"RMSSE {rmsse['selected_holdout'] / rmsse['baseline_holdout']:.3f}")

    test = sample[:, cut:]
    scale = fc.mase_scale(sample[:, :cut], m)
    scale_sq = fc.rmsse_scale(sample[:, :cut], m)
    chosen = fc.forecast(sample[:, :cut], h, m, result.chosen[: args.sample])
    for label, pred in (("statsmodels ETS", base_pred), ("chosen per SKU", chosen),
                        ("seasonal naive", fc.seasonal_naive(sample[:, :cut], h, m))):
        a = np.nanmean(np.abs(test - pred).mean(axis=1) / scale)
        r = np.nanmean(np.sqrt(((test - pred) ** 2).mean(axis=1)) / scale_sq)
        print(f"sample of {args.sample}, last origin, {label:<16} MASE {a:.3f}  RMSSE {r:.3f}")


if __name__ == "__main__":
    main()
