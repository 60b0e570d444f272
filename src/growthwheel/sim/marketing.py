"""Demo touchpoint paths whose true channel effects are known (issue 14, item 6, first part).

Journeys are drawn from a known absorbing Markov chain over the demo shop's channels (抖音, 百度,
小红书, 微信, 邮件订阅, 达人): from *start* a first channel, then from each channel another
channel, a conversion or the end of the journey (*null*), with the probabilities of
:data:`TRANSITIONS`. Under this process the causal effect of removing a channel — every journey
that would reach it ends there — is exactly the chain's removal effect, computed here from the true
matrix (not from the simulated paths) and written to the ground truth. The paths are written in
ChannelAttribution's layout (``path, total_conversions, total_conversion_value, total_null``), so
``growthwheel marketing paths demo-files/marketing_paths.csv`` attributes them and its Markov column
can be held against ``ground_truth.json`` → ``marketing``.

Conversion values are drawn per conversion (log-normal, mean per last channel in
:data:`MEAN_VALUE`, yuan). Journeys longer than :data:`MAX_STEPS` touches end as null (at these
probabilities fewer than one in a billion do).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from growthwheel.stats.attribution import MarkovChain, absorption

CHANNELS = ("抖音", "百度", "小红书", "微信", "邮件订阅", "达人")
#: Probability of the first channel of a journey.
START = (0.34, 0.22, 0.20, 0.10, 0.06, 0.08)
#: From each channel (rows, in CHANNELS order): next channel × 6, then conversion, then null.
TRANSITIONS = (
    (0.10, 0.05, 0.12, 0.06, 0.02, 0.05, 0.04, 0.56),  # 抖音: browsing, seldom buys at once
    (0.03, 0.05, 0.04, 0.05, 0.03, 0.02, 0.14, 0.64),  # 百度: search intent converts
    (0.08, 0.10, 0.08, 0.06, 0.02, 0.08, 0.06, 0.52),  # 小红书: research, sends to search
    (0.02, 0.03, 0.02, 0.05, 0.05, 0.01, 0.12, 0.70),  # 微信
    (0.01, 0.02, 0.01, 0.04, 0.02, 0.00, 0.16, 0.74),  # 邮件订阅: existing customers
    (0.06, 0.12, 0.10, 0.04, 0.01, 0.04, 0.09, 0.54),  # 达人: influencer posts
)
#: Mean conversion value (yuan) by the channel the conversion came from.
MEAN_VALUE = (168.0, 215.0, 192.0, 236.0, 251.0, 205.0)
MAX_STEPS = 40


def true_chain() -> MarkovChain:
    """The true chain as :class:`MarkovChain` (state 0 = start, then the channels in order)."""
    import scipy.sparse as sp

    k = len(CHANNELS)
    q = np.zeros((k + 1, k + 1))
    q[0, 1:] = START
    conv = np.zeros(k + 1)
    null = np.zeros(k + 1)
    value = np.zeros(k + 1)
    for i, row in enumerate(TRANSITIONS, start=1):
        q[i, 1:] = row[:k]
        conv[i], null[i] = row[k], row[k + 1]
        value[i] = row[k] * MEAN_VALUE[i - 1]
    states = ((), *((i,) for i in range(k)))
    return MarkovChain(states, sp.csr_matrix(q), conv, value, null)


def true_effects() -> dict[str, Any]:
    """Conversion probability per journey and each channel's removal effect, from the true chain
    (exact solve), with the share of conversions each channel is owed in proportion to them."""
    chain = true_chain()
    p, v = absorption(chain)
    effects = {}
    for i, name in enumerate(CHANNELS):
        removed = np.zeros(len(CHANNELS) + 1, dtype=bool)
        removed[i + 1] = True
        effects[name] = 1.0 - absorption(chain, removed)[0] / p
    total = sum(effects.values())
    return {
        "conversion_probability": p,
        "expected_value_per_journey": v,
        "removal_effects": effects,
        "markov_share": {c: e / total for c, e in effects.items()},
    }


def simulate(journeys: int, seed: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Draw ``journeys`` journeys; the paths aggregated (path → conversions, value, nulls) and the
    ground truth (the chain, its exact removal effects and what was drawn)."""
    rng = np.random.default_rng(seed)
    k = len(CHANNELS)
    start_cum = np.cumsum(START)
    rows = np.array(TRANSITIONS)
    cum = np.cumsum(rows, axis=1)
    state = np.minimum(np.searchsorted(start_cum, rng.random(journeys) * start_cum[-1]), k - 1)
    trail = [state.astype(np.int8)]
    alive = np.ones(journeys, dtype=bool)
    outcome = np.full(journeys, -1)  # -1 running, 1 converted, 0 null
    last = state.copy()
    for _ in range(MAX_STEPS):
        idx = np.nonzero(alive)[0]
        if len(idx) == 0:
            break
        u = rng.random(len(idx)) * cum[last[idx], -1]
        nxt = (u[:, None] > cum[last[idx]]).sum(axis=1)
        step = np.full(journeys, -1, dtype=np.int8)
        moving = nxt < k
        step[idx[moving]] = nxt[moving]
        outcome[idx[nxt == k]] = 1
        outcome[idx[nxt > k]] = 0
        alive[idx[~moving]] = False
        last[idx[moving]] = nxt[moving]
        trail.append(step)
    outcome[outcome == -1] = 0  # past MAX_STEPS
    steps = np.vstack(trail).T
    sigma = 0.5
    mu = np.log(np.array(MEAN_VALUE)[last]) - sigma**2 / 2
    values = np.round(rng.lognormal(mu, sigma), 2)
    paths: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for j in range(journeys):
        key = " > ".join(CHANNELS[c] for c in steps[j] if c >= 0)
        cell = paths[key]
        if outcome[j] == 1:
            cell[0] += 1
            cell[1] += float(values[j])
        else:
            cell[2] += 1
    truth = {
        "model": "absorbing Markov chain over the channels (sim/marketing.py)",
        "channels": list(CHANNELS),
        "start": dict(zip(CHANNELS, START, strict=True)),
        "transitions": {c: dict(zip([*CHANNELS, "(conversion)", "(null)"], row, strict=True))
                        for c, row in zip(CHANNELS, TRANSITIONS, strict=True)},
        **true_effects(),
        "journeys": journeys,
        "conversions": int((outcome == 1).sum()),
        "seed": seed,
    }
    return dict(paths), truth


def write_paths(out_dir: Path, *, journeys: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Write ``marketing_paths.csv`` into ``out_dir``; the ground truth to merge under
    ``marketing`` in ``ground_truth.json``."""
    paths, truth = simulate(journeys, seed)
    target = out_dir / "marketing_paths.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "total_conversions", "total_conversion_value", "total_null"])
        for key in sorted(paths):
            conv, value, null = paths[key]
            writer.writerow([key, int(conv), f"{value:.2f}", int(null)])
    truth["file"] = target.name
    return target, truth
