"""Benchmark: the marketing-mix model on two years of daily data × 6 channels — time, memory, accuracy.

Data (deterministic, numpy): 730 days from 2025-01-01 with the demo shop's calendar (weekly pattern,
618 and Double 11 ramps); six paid channels whose budgets follow the season, weekly flights of
their own and day-to-day noise; each channel's expected daily outcome is
``demand(d) · β_c · h_c(adstock_c(spend))`` with known decay (0 to 0.6), half-saturation and shape,
so each channel's true ROAS, spend elasticity and marginal ROAS over the period are known. Counts
are Poisson.

Timed, each on the same data:

* **baseline** — the model every analyst runs first: a Poisson GLM (``statsmodels``) of each day's
  count on log spend per channel and the same demand columns (no adstock, no saturation); its time
  is the unit of the ratios printed;
* ``stats.mmm.fit`` with one outcome per channel (the demo's case: customers by acquisition channel);
* ``stats.mmm.fit`` with the total outcome (baseline + channels, the classic MMM);
* ``stats.mmm.budget_curves`` + the allocator.

Memory: peak of Python allocations during the fit (``tracemalloc``, numpy included) and the
process's peak RSS. Accuracy: each channel's estimate against the truth, and the coverage of the
90 % intervals over ``--seeds`` independent one-year demo shops (``sim.customers``: the demo's own
three paid channels). Run with ``nice -n 5``; the load average is printed. Usage::

    python bench/mmm_bench.py [--seeds 20] [--demo-customers 20000]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
from datetime import date
from typing import Any

import numpy as np

from growthwheel.sim import customers, seasons
from growthwheel.stats import mmm
from growthwheel.stats.budget import allocate

#: (name, daily base spend in fen, ceiling β per day, half saturation K in fen, shape s, decay)
CHANNELS = (
    ("douyin", 400_000, 40.0, 500_000, 0.9, 0.0),
    ("baidu", 250_000, 25.0, 300_000, 1.2, 0.3),
    ("xiaohongshu", 200_000, 20.0, 150_000, 0.8, 0.0),
    ("bilibili", 120_000, 10.0, 200_000, 1.0, 0.6),
    ("weibo", 80_000, 6.0, 60_000, 0.7, 0.2),
    ("kuaishou", 150_000, 12.0, 250_000, 1.5, 0.4),
)


def six_channels(seed: int) -> dict[str, Any]:
    """Two years of daily spend and outcome per channel with the truth of each channel."""
    rng = np.random.default_rng(seed)
    cal = seasons.make_calendar(date(2025, 1, 1), 730)
    week = np.arange(cal.days) // 7
    spend = np.empty((cal.days, len(CHANNELS)))
    for j, (_, base, *_rest) in enumerate(CHANNELS):
        flights = np.exp(0.45 * np.sin(2 * np.pi * week / (5 + j) + j))
        spend[:, j] = np.rint(base * cal.spend_multiplier() * flights * rng.lognormal(0, 0.15, cal.days))
    expected = np.empty_like(spend)
    truth = []
    for j, (name, _, beta, k, s, decay) in enumerate(CHANNELS):
        a = mmm.adstock(spend[:, j], decay)
        h = a**s / (a**s + k**s)
        expected[:, j] = cal.demand * beta * h
        contrib = float(expected[:, j].sum())
        elasticity = float((cal.demand * beta * h * s * (1 - h)).sum() / contrib)
        truth.append({"channel": name, "roas": contrib / spend[:, j].sum(), "elasticity": elasticity,
                      "decay": decay})
    counts = rng.poisson(expected)
    baseline = cal.demand * 30.0
    total = rng.poisson(expected.sum(axis=1) + baseline)
    return {"dates": cal.dates, "spend": spend, "counts": counts, "total": total, "truth": truth,
            "baseline": float(baseline.sum())}


def glm_baseline(data: dict[str, Any]) -> tuple[float, float]:
    """Wall and CPU seconds for the per-channel log-log Poisson GLMs (statsmodels, one BLAS thread
    like the model's fit), the unit of the ratios."""
    import statsmodels.api as sm
    from threadpoolctl import threadpool_limits

    design, _ = mmm.demand_design(data["dates"])
    wall, cpu = time.perf_counter(), time.process_time()
    with threadpool_limits(1):
        for j in range(data["spend"].shape[1]):
            x = np.column_stack([np.ones(len(design)), np.log(np.maximum(data["spend"][:, j], 1.0)), design])
            sm.GLM(data["counts"][:, j], x, family=sm.families.Poisson()).fit()
    return time.perf_counter() - wall, time.process_time() - cpu


def timed(label: str, func: Any, unit: float) -> Any:
    """Run ``func`` under tracemalloc; print wall and CPU time, the CPU time's ratio to ``unit``
    (the baseline's CPU time: on a shared machine wall time mostly measures the neighbours) and
    peak memory."""
    tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    out = func()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<44} {wall:8.2f} s wall {cpu:8.2f} s CPU   ×{cpu / unit:7.1f} baseline CPU   "
          f"peak {peak / 2**20:7.1f} MiB")
    return out


def report(fit: mmm.Fit, truth: list[dict[str, Any]]) -> None:
    """Each channel's estimate against the truth."""
    for ch, t in zip(fit.channels, truth, strict=True):
        print(f"  {ch.channel:<12} elasticity {t['elasticity']:.3f} → {ch.elasticity.mean:.3f} "
              f"[{ch.elasticity.low:.3f}, {ch.elasticity.high:.3f}]  ROAS/1e4 {1e4 * t['roas']:.3f} → "
              f"{1e4 * ch.roas.mean:.3f} [{1e4 * ch.roas.low:.3f}, {1e4 * ch.roas.high:.3f}]  "
              f"decay {t['decay']:.2f} → {ch.decay.mean:.2f}")


def demo_coverage(seeds: int) -> None:
    """Coverage of the 90 % intervals over independent one-year demo shops."""
    cal = seasons.make_calendar(date(2025, 1, 1), 365)
    paid = customers.paid_channels()
    hits = {"elasticity": 0, "roas": 0, "marginal_roas": 0}
    errors = []
    gains = []
    seconds = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        acq = customers.acquire(rng, cal, 20_000)
        counts = rng.poisson(acq.expected)[:, customers.PAID]
        started = time.perf_counter()
        fit = mmm.fit(cal.dates, acq.spend_fen, counts, [c.name for c in paid])
        seconds.append(time.perf_counter() - started)
        for j, ch in enumerate(fit.channels):
            t = customers.response_truth(acq, j)
            hits["elasticity"] += ch.elasticity.contains(t["spend_elasticity"])
            hits["roas"] += ch.roas.contains(t["roas_customers_per_cny"] / 100)
            hits["marginal_roas"] += ch.marginal_roas.contains(t["marginal_roas_customers_per_cny"] / 100)
            errors.append(ch.elasticity.mean - t["spend_elasticity"])
        curves, _ = mmm.budget_curves(fit)
        actual = [int(x) for x in acq.spend_fen.sum(axis=0)]
        expected = acq.expected[:, customers.PAID].sum(axis=0)
        betas = [c.beta for c in paid]

        def true_total(split: list[int], expected: Any = expected, actual: list[int] = actual,
                       betas: list[float] = betas) -> float:
            return float(sum(e * (x / a) ** b
                             for e, x, a, b in zip(expected, split, actual, betas, strict=True)))

        plan = [line.spend for line in allocate(curves, sum(actual)).lines]
        gains.append(true_total(plan) - true_total(actual))
    n = seeds * len(paid)
    print(f"demo shop, {seeds} one-year draws × {len(paid)} paid channels, 90 % intervals:")
    for name, hit in hits.items():
        print(f"  coverage of {name:<14} {hit}/{n} = {hit / n:.0%}")
    err = np.asarray(errors)
    print(f"  elasticity error: mean {err.mean():+.4f}, RMSE {np.sqrt(np.mean(err**2)):.4f}")
    print(f"  allocator on the fitted curves vs the actual split, on the true curves: gain "
          f"{np.mean(gains):+.1f} new customers a year (min {np.min(gains):+.1f}, of ~13,400)")
    print(f"  fit time per year × 3 channels: median {np.median(seconds):.2f} s")


def demo_end_to_end(customers_count: int) -> None:
    """The real demo (``build_demo``: simulate, import) then the model through the warehouse
    (``marketing.mix``) against ``ground_truth.json``."""
    import json
    import tempfile
    from pathlib import Path

    from growthwheel.config import Settings
    from growthwheel.marketing import mix
    from growthwheel.sim.demo import build_demo
    from growthwheel.warehouse import db

    with tempfile.TemporaryDirectory() as folder:
        cfg = Settings(data_dir=Path(folder) / "data")
        started = time.perf_counter()
        build_demo(cfg, customers=customers_count, days=365, seed=7, start=date(2025, 1, 1))
        seconds = time.perf_counter() - started
        print(f"demo built ({customers_count:,} customers, 365 days) in {seconds:.0f} s")
        truth = json.loads((cfg.data_dir / "ground_truth.json").read_text(encoding="utf-8"))
        channels = truth["acquisition"]["channels"]
        con = db.connect(cfg)
        try:
            first, last = date(2025, 1, 1), date(2025, 12, 31)
            report = mix.report(con, start=first, end=last, timezone=cfg.shop().timezone)
            total = sum(c["spend"] for c in report["channels"])
            plan = mix.plan(con, start=first, end=last, total=total, timezone=cfg.shop().timezone)
        finally:
            con.disconnect()
        for c in report["channels"]:
            t = channels[c["channel"]]
            e, r = c["elasticity"], c["roas"]
            roas = t["roas_customers_per_cny"] / 100
            e_in = "in" if e["low"] <= t["spend_elasticity"] <= e["high"] else "OUT"
            r_in = "in" if r["low"] <= roas <= r["high"] else "OUT"
            print(f"  {c['channel']:<4} elasticity {t['spend_elasticity']:.3f} → {e['mean']:.3f} "
                  f"[{e['low']:.3f}, {e['high']:.3f}] {e_in}"
                  f"   new customers per ¥1,000 {1e5 * roas:.2f} → {1e5 * r['mean']:.2f} "
                  f"[{1e5 * r['low']:.2f}, {1e5 * r['high']:.2f}] {r_in}")

        # On the simulator's true curves: expected · (X / X_observed)^beta per channel.
        def true_total(split: dict[str, float]) -> float:
            return sum(channels[ch]["expected_new_customers"]
                       * (x / (channels[ch]["spend_cny"] * 100)) ** channels[ch]["spend_elasticity"]
                       for ch, x in split.items())

        planned = {line["channel"]: float(line["spend"]) for line in plan["lines"]}
        actual = {c["channel"]: float(c["spend"]) for c in report["channels"]}
        print(f"  plan vs actual split on the true curves: {true_total(planned) - true_total(actual):+.1f} "
              f"new customers (of {true_total(actual):,.0f})")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--demo-customers", type=int, default=0,
                        help="also build the real demo with this many customers (20000: ~5 min) and fit it")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} CPUs")
    data = six_channels(args.seed)
    names = [c[0] for c in CHANNELS]
    glm_baseline(data)  # warm-up (imports)
    wall, unit = glm_baseline(data)
    print(f"{'baseline: 6 log-log Poisson GLMs (statsmodels)':<44} {wall:8.2f} s wall {unit:8.2f} s CPU")
    per = timed("mmm.fit, 730 days × 6 channels, per channel",
                lambda: mmm.fit(data["dates"], data["spend"], data["counts"], names), unit)
    report(per, data["truth"])
    print(f"  evaluations {per.iterations}, R² {per.r_squared:.3f}, dispersion {per.dispersion:.2f}")
    tot = timed("mmm.fit, 730 days × 6 channels, total outcome",
                lambda: mmm.fit(data["dates"], data["spend"], data["total"], names), unit)
    report(tot, data["truth"])
    print(f"  baseline {data['baseline']:.0f} → {tot.baseline.mean:.0f} [{tot.baseline.low:.0f}, "
          f"{tot.baseline.high:.0f}], R² {tot.r_squared:.3f}")
    timed("budget_curves + allocate (6 channels)",
          lambda: allocate(mmm.budget_curves(per)[0], int(data["spend"].sum()), reserve_share=0.1), unit)
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    demo_coverage(args.seeds)
    if args.demo_customers:
        demo_end_to_end(args.demo_customers)


if __name__ == "__main__":
    main()
