"""Repeat buying (BG/NBD in calendar time) and spend per order (Gamma-Gamma).

Per customer ``i`` acquired at time ``t0_i`` (its first order):

* ``lambda_i ~ Gamma(shape=r, rate=alpha)``: purchases per week while alive;
* ``p_i ~ Beta(a, b)``: after each repeat purchase the customer drops out with probability ``p_i``;
* repeat purchases arrive as a Poisson process with rate ``lambda_i`` until the dropout;
* ``nu_i ~ Gamma(shape=q, rate=gamma)`` and each order's spend ``z ~ Gamma(shape=p, rate=nu_i)``
  (CNY, goods after discounts, excluding shipping).

Purchases on the same shop-local day merge into one order (one order per customer per day), the
usual daily granularity of transaction data. Repeat orders keep the day the process gave them and
get a time of day from the hourly profile; there is no seasonality in repeat timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from growthwheel.sim.seasons import DAY

Array = npt.NDArray[Any]

WEEK = 7 * DAY


@dataclass(frozen=True)
class BgNbd:
    """True BG/NBD parameters; ``r`` and ``alpha`` for a rate per week."""

    r: float = 0.35
    alpha: float = 8.0
    a: float = 1.25
    b: float = 4.0


@dataclass(frozen=True)
class GammaGamma:
    """True Gamma-Gamma parameters for spend per order in CNY."""

    p: float = 4.0
    q: float = 3.5
    gamma: float = 90.0


@dataclass(frozen=True)
class Transactions:
    """Per-customer latent values and the merged orders (sorted by customer, then time)."""

    lam: Array  # per customer, per week
    p_drop: Array
    nu: Array
    alive: Array  # bool: still alive at the end of the period
    repeat_transactions: Array  # per customer: repeat purchases before merging same-day ones
    order_customer: Array
    order_day: Array
    order_is_first: Array  # bool
    spend: Array  # per order: z in CNY (float)


def simulate(
    rng: np.random.Generator,
    acquired_at: Array,
    horizon: int,
    bgnbd: BgNbd,
    gg: GammaGamma,
) -> Transactions:
    """Draw every customer's repeat purchases up to ``horizon`` seconds and each order's spend."""
    n = len(acquired_at)
    lam = rng.gamma(bgnbd.r, 1.0 / bgnbd.alpha, n)
    p_drop = rng.beta(bgnbd.a, bgnbd.b, n)
    nu = rng.gamma(gg.q, 1.0 / gg.gamma, n)
    exposure = (horizon - acquired_at) / WEEK  # weeks observed after the first order
    arrivals = rng.poisson(lam * exposure)
    lifetime = rng.geometric(p_drop)  # repeat purchases before dropping out, >= 1
    repeats = np.minimum(arrivals, lifetime)
    alive = lifetime > arrivals
    # Given the count, Poisson arrival times are sorted uniforms; keep the first `repeats` of them.
    owner = np.repeat(np.arange(n), arrivals)
    when = rng.random(len(owner)) * exposure[owner]
    order = np.lexsort((when, owner))
    owner, when = owner[order], when[order]
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < repeats[owner]
    owner, when = owner[keep], when[keep]
    repeat_day = (acquired_at[owner] + np.floor(when * WEEK).astype(np.int64)) // DAY
    first_day = acquired_at // DAY
    cust = np.concatenate([np.arange(n), owner])
    day = np.concatenate([first_day, repeat_day])
    first = np.concatenate([np.ones(n, dtype=bool), np.zeros(len(owner), dtype=bool)])
    # One order per customer and day: the first order wins a tie with a same-day repeat.
    order = np.lexsort((~first, day, cust))
    cust, day, first = cust[order], day[order], first[order]
    distinct = np.ones(len(cust), dtype=bool)
    distinct[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
    cust, day, first = cust[distinct], day[distinct], first[distinct]
    spend = rng.gamma(gg.p, 1.0 / nu[cust])
    return Transactions(
        lam=lam,
        p_drop=p_drop,
        nu=nu,
        alive=alive,
        repeat_transactions=repeats,
        order_customer=cust,
        order_day=day,
        order_is_first=first,
        spend=spend,
    )


def describe(bgnbd: BgNbd, gg: GammaGamma, tx: Transactions) -> dict[str, Any]:
    """True parameters and what the draw produced, for ``ground_truth.json``."""
    n = len(tx.lam)
    return {
        "repeat_purchase": {
            "model": "BG/NBD (Fader, Hardie & Lee 2005) in calendar time",
            "time_unit": "week",
            "r": bgnbd.r,
            "alpha": bgnbd.alpha,
            "a": bgnbd.a,
            "b": bgnbd.b,
            "lambda": "Gamma(shape=r, rate=alpha), purchases per week; mean r/alpha = "
            f"{bgnbd.r / bgnbd.alpha:.6f}",
            "dropout": "p ~ Beta(a, b); after each repeat purchase the customer drops out with "
            "probability p (the first purchase never ends a customer)",
            "first_purchase": "the acquisition order (time 0 of the customer's process)",
            "same_day_purchases": "merged into one order (at most one order per customer per day)",
            "seasonality": "none",
            "simulated": {
                "customers": n,
                "mean_lambda_per_week": round(float(tx.lam.mean()), 6),
                "mean_p": round(float(tx.p_drop.mean()), 6),
                "alive_at_end_share": round(float(tx.alive.mean()), 6),
                "repeat_purchases_before_merge": int(tx.repeat_transactions.sum()),
                "repeat_orders_after_merge": int((~tx.order_is_first).sum()),
            },
        },
        "monetary": {
            "model": "Gamma-Gamma (Fader, Hardie & Lee 2005 / Colombo & Jiang 1999)",
            "value": "order total in CNY (major units): goods after discounts, excluding shipping",
            "p": gg.p,
            "q": gg.q,
            "gamma": gg.gamma,
            "spend": "z ~ Gamma(shape=p, rate=nu) per order, nu ~ Gamma(shape=q, rate=gamma) per "
            f"customer; mean spend per order = p*gamma/(q-1) = {gg.p * gg.gamma / (gg.q - 1):.4f}",
            "applies_to": "every order, first and repeat",
        },
    }
