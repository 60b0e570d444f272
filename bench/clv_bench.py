"""Benchmark: BG/NBD + Gamma-Gamma fit and scoring on 1,000,000 customers, against ``lifetimes``.

Draws customers from the BG/NBD + Gamma-Gamma process (true parameters below, rates per week),
acquired uniformly over a year and observed to its last day; durations are whole days, as the
warehouse gives them, expressed in months (30.4375 days). Both libraries get the same arrays:

* **fit**: BG/NBD on every customer, Gamma-Gamma on the repeat buyers;
* **score**: P(alive), expected purchases over 12 months, and CLV over 12 months at 1% a month.

Ours is ``growthwheel.stats.clv`` (identical rows merged into counts inside the fit, predictions
on distinct rows). ``lifetimes`` 0.11.3 runs as documented (one row per customer); it is also
timed fitting the same merged rows with its ``weights`` argument, to separate the algorithm from
the compression. Prints times, the speed ratio and the parameter differences. Usage::

    python bench/clv_bench.py [--customers 1000000] [--lifetimes-customers N] [--seed 1]

``--lifetimes-customers`` (default: all) times lifetimes on a random subsample when it is too slow
on the full set; the report then says so and compares against our time on that same subsample.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from growthwheel.stats import clv

TRUE_BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}  # alpha per week
TRUE_GG = {"p": 6.0, "q": 3.5, "v": 15.0}
DAYS = 365
MONTH = clv.DAYS_PER_MONTH
HORIZON = 12
DISCOUNT = 0.01


def draw(n: int, seed: int, whole_days: bool = True) -> pd.DataFrame:
    """``n`` customers: frequency, recency and age in months, mean repeat spend.

    With ``whole_days`` the time of the last purchase is rounded down to its day, as in real data
    (which makes recency about half a day short on average: visible against the truth at 1M).
    """
    rng = np.random.default_rng(seed)
    first = rng.integers(0, DAYS, n)  # acquisition day; the last observed day is DAYS - 1
    age_weeks = (DAYS - 1 - first) / 7
    lam = rng.gamma(TRUE_BG["r"], 1 / TRUE_BG["alpha"], n)
    p = rng.beta(TRUE_BG["a"], TRUE_BG["b"], n)
    arrivals = rng.poisson(lam * age_weeks)
    lifetime = rng.geometric(p)  # repeat purchases before dropping out
    x = np.minimum(arrivals, lifetime)
    # Time of the x-th of `arrivals` uniform arrivals: the x-th order statistic ~ T * Beta(x, n-x+1).
    last = np.where(x > 0, age_weeks * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
    recency_days = np.floor(last * 7) if whole_days else last * 7
    nu = rng.gamma(TRUE_GG["q"], 1 / TRUE_GG["v"], n)
    total = rng.gamma(TRUE_GG["p"] * np.maximum(x, 1), 1 / nu)  # sum of x spends ~ Gamma(p x, nu)
    monetary = np.where(x > 0, np.round(total / np.maximum(x, 1), 2), np.nan)
    return pd.DataFrame({
        "frequency": x.astype(float),
        "recency": recency_days / MONTH,
        "T": (DAYS - 1 - first) / MONTH,
        "monetary": monetary,
    })


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def ours(df: pd.DataFrame) -> dict[str, Any]:
    cpu = time.process_time()
    data = clv.RfmData(df.frequency.to_numpy(), df.recency.to_numpy(), df["T"].to_numpy(),
                       monetary=df.monetary.to_numpy(), time_unit="month")
    bg, t_bg = timed(lambda: clv.fit_bgnbd(data))
    gg, t_gg = timed(lambda: clv.fit_gamma_gamma(data))

    def score() -> tuple[Any, Any, Any]:
        s = clv.score_customers(bg.params, gg.params, data.frequency, data.recency, data.age,
                                data.monetary, periods=HORIZON, discount_rate=DISCOUNT)
        return s.p_alive, s.expected_purchases, s.clv

    scores, t_score = timed(score)
    return {"cpu": time.process_time() - cpu,
            "bg": bg.params.as_dict(), "gg": gg.params.as_dict(), "bg_se": bg.std_errors,
            "gg_se": gg.std_errors, "converged": bg.converged and gg.converged,
            "t_bg": t_bg, "t_gg": t_gg, "t_score": t_score, "scores": scores}


def theirs(df: pd.DataFrame, compressed: bool = False) -> dict[str, Any]:
    import lifetimes  # reference only (bench and tests)

    warnings.filterwarnings("ignore")
    x, t_x, big_t = df.frequency, df.recency, df["T"]
    if compressed:
        rows = df.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
        bgf, t_bg = timed(lambda: lifetimes.BetaGeoFitter().fit(rows.frequency, rows.recency, rows["T"],
                                                                weights=rows.n))
        return {"bg": bgf.params_.to_dict(), "t_bg": t_bg, "rows": len(rows)}
    bgf, t_bg = timed(lambda: lifetimes.BetaGeoFitter().fit(x, t_x, big_t))
    repeat = df[df.frequency > 0]
    ggf, t_gg = timed(lambda: lifetimes.GammaGammaFitter().fit(repeat.frequency, repeat.monetary))

    def score() -> tuple[Any, Any, Any]:
        alive = bgf.conditional_probability_alive(x, t_x, big_t)
        expected = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON, x, t_x, big_t)
        value = ggf.customer_lifetime_value(bgf, x, t_x, big_t, df.monetary.fillna(0.0), time=HORIZON,
                                            discount_rate=DISCOUNT, freq="M")
        return alive, expected, value

    scores, t_score = timed(score)
    return {"bg": bgf.params_.to_dict(), "gg": ggf.params_.to_dict(), "t_bg": t_bg, "t_gg": t_gg,
            "t_score": t_score, "scores": scores}


def truth_in_months() -> dict[str, float]:
    return TRUE_BG | {"alpha": TRUE_BG["alpha"] * 7 / MONTH}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lifetimes-customers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--continuous", action="store_true",
                        help="keep exact recencies instead of whole days (nothing to merge)")
    args = parser.parse_args()

    df, t_draw = timed(lambda: draw(args.customers, args.seed, whole_days=not args.continuous))
    print(f"drew {len(df):,} customers in {t_draw:.1f} s: {int((df.frequency > 0).sum()):,} repeat buyers, "
          f"{int(df.frequency.sum()):,} repeat purchases; durations in months of {MONTH} days "
          f"({'exact' if args.continuous else 'whole days'})")
    mine = ours(df)
    total_mine = mine["t_bg"] + mine["t_gg"] + mine["t_score"]
    print(f"\ngrowthwheel.stats.clv on {len(df):,}: BG/NBD fit {mine['t_bg']:.2f} s · Gamma-Gamma fit "
          f"{mine['t_gg']:.2f} s · scoring {mine['t_score']:.2f} s · total {total_mine:.2f} s "
          f"(converged: {mine['converged']}); CPU time {mine['cpu']:.2f} s (all threads; a busy "
          f"machine inflates the wall time, not this); peak RSS so far {peak_rss_mb():,.0f} MiB")

    sub = df
    mine_sub, total_sub = mine, total_mine
    if args.lifetimes_customers and args.lifetimes_customers < len(df):
        sub = df.sample(n=args.lifetimes_customers, random_state=args.seed).reset_index(drop=True)
        mine_sub = ours(sub)
        total_sub = mine_sub["t_bg"] + mine_sub["t_gg"] + mine_sub["t_score"]
        print(f"NOTE: lifetimes is timed on a random subsample of {len(sub):,} customers, not on all "
              f"{len(df):,}; ours on the same subsample: total {total_sub:.2f} s "
              f"(CPU {mine_sub['cpu']:.2f} s); {len(df):,} / {len(sub):,}: wall "
              f"{total_mine / total_sub:.2f}x, CPU {mine['cpu'] / mine_sub['cpu']:.2f}x")
    cpu = time.process_time()
    ref = theirs(sub)
    ref_cpu = time.process_time() - cpu
    total_ref = ref["t_bg"] + ref["t_gg"] + ref["t_score"]
    print(f"lifetimes 0.11.3 on {len(sub):,}: BG/NBD fit {ref['t_bg']:.2f} s · Gamma-Gamma fit "
          f"{ref['t_gg']:.2f} s · scoring {ref['t_score']:.2f} s · total {total_ref:.2f} s "
          f"(CPU {ref_cpu:.2f} s; ours / lifetimes CPU on the same customers: "
          f"{mine_sub['cpu'] / ref_cpu:.3f})")
    print(f"\nspeed-up, same {len(sub):,} customers: fit + score {total_ref / total_sub:.1f}x "
          f"(BG/NBD fit {ref['t_bg'] / mine_sub['t_bg']:.1f}x, Gamma-Gamma fit "
          f"{ref['t_gg'] / mine_sub['t_gg']:.1f}x, scoring {ref['t_score'] / mine_sub['t_score']:.1f}x)")
    weighted = theirs(sub, compressed=True)
    print(f"lifetimes BG/NBD fit given the same {weighted['rows']:,} merged rows with weights: "
          f"{weighted['t_bg']:.2f} s ({weighted['t_bg'] / mine_sub['t_bg']:.1f}x ours)")

    print("\nparameters (alpha per month)      ours          lifetimes     rel. diff    truth"
          "   ours−truth/SE")
    truth = truth_in_months() | TRUE_GG
    for group in ("bg", "gg"):
        for name, value in mine_sub[group].items():
            other = ref[group][name]
            se = mine_sub[f"{group}_se"][name]
            z = (value - truth[name]) / se if se and math.isfinite(se) else math.nan
            diff = abs(value - other) / abs(other)
            print(f"  {group.upper():3s} {name:6s} {value:26.6f} {other:13.6f} {diff:11.2e}"
                  f" {truth[name]:9.4f} {z:+8.2f}")
    for label, a, b in zip(("P(alive)", "expected purchases (12 months)", "CLV (12 months, 1%/month)"),
                           mine_sub["scores"], ref["scores"], strict=True):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        print(f"  {label:32s} max rel. diff {np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)):.2e} "
              "(each library at its own fitted parameters)")


if __name__ == "__main__":
    main()
