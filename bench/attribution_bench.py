"""Benchmark: every attribution model over N touchpoints against a pandas last-touch baseline.

Generates journeys over 12 channels (deterministic, numpy): path lengths 1–10 (mean ≈ 3.3),
channels drawn with unequal weights and a tendency to repeat, ages in days, about one journey in
eight converting with a value. The same flat touches are then attributed

* by the **baseline**: a plain pandas implementation of the last-touch model (a DataFrame of touches
  with ``path_id``; the last touch of each path found by ``groupby().tail(1)``; conversions and
  value summed per channel);
* by ``growthwheel.stats.attribution``: first, last, linear, time decay, position-based, Markov
  (first order, exact absorbing-chain solve), Markov second order, and Shapley (exact over the
  2¹² coalitions) — each timed on its own, then all seven of ``attribute()`` together, each time on
  a fresh copy of the paths (the per-touch positions the models share are computed once per copy).

Each time is printed with its ratio to the pandas last-touch time measured in the same run (< 1 is
faster than the baseline). The last-touch results of both must agree exactly. Peak memory is the
process's peak RSS (VmHWM). Usage::

    python bench/attribution_bench.py [--touches 10000000] [--seed 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from growthwheel.stats import attribution as attr

CHANNELS = ("douyin", "baidu", "xiaohongshu", "wechat", "weibo", "email", "sms", "organic_search",
            "social", "referral", "influencer", "bilibili")


def generate(touches: int, seed: int) -> attr.Paths:
    """Journeys adding up to about ``touches`` touches."""
    rng = np.random.default_rng(seed)
    n_paths = round(touches * 0.3 / (1 - 0.7**10))  # E[min(Geometric(0.3), 10)] touches a path
    lengths = np.minimum(rng.geometric(0.3, n_paths), 10).astype(np.int64)
    total = int(lengths.sum())
    weights = np.array([12, 10, 8, 8, 4, 6, 3, 9, 5, 3, 4, 2], dtype=np.float64)
    drawn = rng.choice(len(CHANNELS), size=total, p=weights / weights.sum()).astype(np.int64)
    repeat = rng.random(total) < 0.25  # a quarter of the touches repeat the one before
    repeat[0] = False
    idx = np.arange(total)
    last_fresh = np.maximum.accumulate(np.where(repeat, 0, idx))
    touches_arr = drawn[last_fresh]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # conversion more likely for paths touching channels 0, 2 and 10 (a known signal)
    path = np.repeat(np.arange(n_paths), lengths)
    lift = np.bincount(path, weights=np.isin(touches_arr, (0, 2, 10)).astype(float), minlength=n_paths)
    p = 0.06 + 0.05 * np.minimum(lift, 3)
    converted = (rng.random(n_paths) < p).astype(np.float64)
    value = converted * np.round(rng.lognormal(5.0, 0.6, n_paths) * 100)
    ages = rng.exponential(4.0, total)
    return attr.Paths(CHANNELS, touches_arr, offsets, converted, value, 1.0 - converted, ages,
                      converted * (rng.random(n_paths) < 0.4))


def pandas_last_touch(paths: attr.Paths) -> pd.DataFrame:
    """The baseline: last touch in pandas from a touches DataFrame."""
    df = pd.DataFrame({"path_id": paths.path_of_touch(), "channel": paths.touches})
    last = df.groupby("path_id", sort=False).tail(1)
    last = last.assign(conversions=paths.conversions[last["path_id"].to_numpy()],
                       value=paths.values[last["path_id"].to_numpy()])
    return last.groupby("channel")[["conversions", "value"]].sum()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touches", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    gen_s, paths = timed(lambda: generate(args.touches, args.seed))
    print(f"{len(paths.touches):,} touches in {paths.n_paths:,} journeys "
          f"({int(paths.conversions.sum()):,} converting), generated in {gen_s:.1f} s")
    base_s, base = timed(lambda: pandas_last_touch(paths))
    print(f"baseline pandas last touch: {base_s:.2f} s")
    runs: list[tuple[str, Callable[[attr.Paths], attr.Credit]]] = [
        ("first_touch", attr.first_touch),
        ("last_touch", attr.last_touch),
        ("linear", attr.linear),
        ("time_decay", attr.time_decay),
        ("position_based", attr.position_based),
        ("markov (order 1, exact)", attr.markov),
        ("markov (order 2, exact)", lambda p: attr.markov(p, 2)),
        ("shapley (exact, 12 channels)", attr.shapley),
    ]
    print(f"{'model':<30} {'seconds':>8} {'× pandas last touch':>20}")
    for name, fn in runs:
        fresh = dataclasses.replace(paths)  # nothing computed for it yet (per-touch positions are cached)
        seconds, credit = timed(lambda: fn(fresh))  # noqa: B023
        print(f"{name:<30} {seconds:8.2f} {seconds / base_s:20.2f}")
        if name == "last_touch":
            ours = pd.Series(credit.conversions, index=range(len(CHANNELS)))
            assert np.array_equal(ours.loc[base.index].to_numpy(), base["conversions"].to_numpy())
            assert np.allclose(credit.values[base.index.to_numpy()], base["value"].to_numpy())
    fresh = dataclasses.replace(paths)
    all_s, _ = timed(lambda: attr.attribute(fresh))
    print(f"{'all seven (attribute())':<30} {all_s:8.2f} {all_s / base_s:20.2f}")
    print(f"peak RSS {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
