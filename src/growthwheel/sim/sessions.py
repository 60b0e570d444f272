"""Sessions and behaviour events: view -> add_to_cart -> checkout -> purchase, with drop-offs.

Every order is the purchase of one session that went through every step. The step probabilities
of a session depend on its month and channel (:func:`step_probabilities`): a base funnel
(:data:`FUNNEL`) whose view -> cart step is scaled by the month's shopping intent
(:data:`MONTH_INTENT`: festivals lift it, the weeks after Spring Festival and summer lower it) and
the channel's (:data:`CHANNEL_INTENT`: people who come from WeChat, the newsletter or straight to
the shop mean to buy more than feed-scrollers from Douyin), clipped to 5-10 %, and whose
checkout -> purchase step is scaled by the channel's :data:`CHANNEL_PAYMENT`. A session then
converts with ``c = p1 p2 p3``, 1.6-3.8 % depending on the cell, as in real shops.

Non-buying sessions are added per order so that, in every (month, channel) cell, the step
probabilities are exactly the cell's in expectation: ``Poisson((1 - c) / c)`` of them per order of
the cell, each stopping at view / cart / checkout with probabilities proportional to
``(1 - p1, p1 (1 - p2), p1 p2 (1 - p3))``. A non-buying session is attached to its order: it
happens that day (through the same channel) and belongs to an existing customer when that order is
a repeat order, else to an anonymous prospect or, sometimes, to the order's customer browsing
before their first purchase (same device id, no customer id yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from growthwheel.sim import catalogue as cat
from growthwheel.sim.customers import CHANNEL_INDEX, CHANNELS
from growthwheel.sim.orders import Orders
from growthwheel.sim.seasons import DAY, Calendar, seconds_of_day

Array = npt.NDArray[Any]

#: Base step probabilities of a session, before the month and channel factors.
FUNNEL = {"view_to_cart": 0.08, "cart_to_checkout": 0.50, "checkout_to_purchase": 0.72}
#: Factor on view -> cart by shop-local month (January .. December).
MONTH_INTENT = (0.92, 0.78, 0.95, 1.0, 1.05, 1.22, 0.88, 0.85, 0.98, 1.1, 1.3, 1.08)
#: Factor on view -> cart by channel (the simulator's channel keys).
CHANNEL_INTENT = {"douyin": 0.78, "baidu": 1.05, "xiaohongshu": 0.9, "wechat": 1.15,
                  "newsletter": 1.2, "direct": 1.1}
#: Factor on checkout -> purchase (paying) by channel.
CHANNEL_PAYMENT = {"douyin": 0.92, "baidu": 1.0, "xiaohongshu": 0.95, "wechat": 1.08,
                   "newsletter": 1.05, "direct": 1.04}
#: Bounds of view -> cart after the factors.
CART_RATE_BOUNDS = (0.05, 0.10)
EXTRA_VIEWS = 0.5  # Poisson mean of product views beyond the first / the bought SKUs
PRE_VISIT_SHARE = 0.25  # of sessions attached to a first order: its buyer browsing beforehand
PROSPECTS_PER_SESSION = 0.6  # distinct prospects per prospect session (the rest come back)
DEVICES = ("mobile", "mini_program", "desktop")
DEVICE_MIX = (0.6, 0.25, 0.15)
WECHAT_DEVICE_MIX = (0.25, 0.7, 0.05)
TYPES = ("view", "add_to_cart", "checkout", "purchase")


@dataclass(frozen=True)
class Sessions:
    """Sessions (sorted by start) and their events (sorted by time)."""

    customer: Array  # per session: customer index, -1 anonymous
    device_owner: Array  # per session: index into the device-id space (customers first)
    channel: Array
    order: Array  # per session: order index of its purchase, -1 none
    stage: Array  # 0 view, 1 cart, 2 checkout, 3 purchase
    device: Array  # index into DEVICES
    day: Array  # shop-local day the session starts
    prospects: int  # distinct anonymous prospects (device ids after the customers')
    ev_session: Array
    ev_type: Array  # index into TYPES
    ev_time: Array
    ev_sku: Array  # -1 none
    ev_landing: Array  # bool: first event of its session
    ev_customer: Array  # -1 anonymous (before the purchase step of a first order)
    month: Array  # per session: month (0-11) of the order it belongs to, its funnel cell


def step_probabilities() -> Array:
    """The true step probabilities per (month 0-11, channel in ``CHANNELS`` order, step 0-2):
    view -> cart, cart -> checkout, checkout -> purchase."""
    keys = [c.key for c in CHANNELS]
    p1 = FUNNEL["view_to_cart"] * np.outer(MONTH_INTENT, [CHANNEL_INTENT[k] for k in keys])
    p1 = np.clip(p1, *CART_RATE_BOUNDS)
    p2 = np.full_like(p1, FUNNEL["cart_to_checkout"])
    p3 = FUNNEL["checkout_to_purchase"] * np.broadcast_to(
        np.array([CHANNEL_PAYMENT[k] for k in keys]), p1.shape
    )
    return np.stack([p1, p2, p3], axis=-1)


def order_months(calendar: Calendar, day: Array) -> Array:
    """Shop-local month (0-11) of each simulated day index."""
    months: Array = np.array([d.month - 1 for d in calendar.dates], dtype=np.int64)
    picked: Array = months[np.clip(day, 0, len(months) - 1)]
    return picked


def make_sessions(
    rng: np.random.Generator,
    calendar: Calendar,
    catalogue: cat.Catalogue,
    orders: Orders,
    acquired_at: Array,
) -> Sessions:
    """Draw the non-buying sessions and every session's events."""
    n_orders = len(orders.customer)
    n_customers = len(acquired_at)
    probs = step_probabilities()[order_months(calendar, orders.day), orders.channel]
    p1, p2, p3 = probs[:, 0], probs[:, 1], probs[:, 2]
    conversion = p1 * p2 * p3
    per_order = rng.poisson((1 - conversion) / conversion)
    attached = np.repeat(np.arange(n_orders), per_order)
    m = len(attached)
    stop = np.stack([1 - p1, p1 * (1 - p2), p1 * p2 * (1 - p3)], axis=1)[attached]
    cut = np.cumsum(stop / stop.sum(axis=1, keepdims=True), axis=1)
    nb_stage = np.minimum((rng.random(m)[:, None] >= cut).sum(axis=1), 2)
    nb_day = orders.day[attached]
    nb_start = nb_day * DAY + seconds_of_day(rng, m, calendar.peak_day[nb_day])
    first = orders.is_first[attached]
    pre_start = orders.ordered_at[attached] - rng.integers(600, 3 * DAY, m)
    pre_visit = first & (rng.random(m) < PRE_VISIT_SHARE) & (pre_start >= 0)
    nb_start = np.where(pre_visit, pre_start, nb_start)
    # Sessions attached to repeat orders belong to a customer acquired before the session.
    known_before = np.searchsorted(acquired_at, nb_start, side="left")
    nb_customer = np.where(
        ~first & (known_before > 0), (rng.random(m) * known_before).astype(np.int64), -1
    )
    prospect = (nb_customer < 0) & ~pre_visit
    pool = max(1, int(prospect.sum() * PROSPECTS_PER_SESSION))
    nb_device_owner = np.where(
        pre_visit,
        orders.customer[attached],
        np.where(prospect, n_customers + rng.integers(0, pool, m), nb_customer),
    )
    # All sessions: purchases first, then the non-buying ones.
    customer = np.concatenate([orders.customer, nb_customer])
    device_owner = np.concatenate([orders.customer, nb_device_owner])
    channel = np.concatenate([orders.channel, orders.channel[attached]])
    attached_to = np.concatenate([np.arange(n_orders), attached])
    stage = np.concatenate([np.full(n_orders, 3), nb_stage])
    s_order = np.concatenate([np.arange(n_orders), np.full(m, -1)])
    n_s = n_orders + m
    wechat = channel == CHANNEL_INDEX["wechat"]
    device = np.where(
        wechat,
        rng.choice(3, size=n_s, p=WECHAT_DEVICE_MIX),
        rng.choice(3, size=n_s, p=DEVICE_MIX),
    )
    lines = np.bincount(orders.line_order, minlength=n_orders)
    line_start = np.cumsum(lines) - lines
    s_lines = np.concatenate([lines, np.zeros(m, dtype=np.int64)])
    views = np.where(stage == 3, s_lines, 1) + rng.poisson(EXTRA_VIEWS, n_s)
    carts = np.where(stage == 3, s_lines, (stage >= 1).astype(np.int64))
    checkout = (stage >= 2).astype(np.int64)
    buy = (stage == 3).astype(np.int64)
    per_session = views + carts + checkout + buy
    e_s = np.repeat(np.arange(n_s), per_session)
    offset = np.cumsum(per_session) - per_session
    rank = np.arange(len(e_s)) - offset[e_s]
    v, c, k = views[e_s], carts[e_s], checkout[e_s]
    e_type = np.select([rank < v, rank < v + c, rank < v + c + k], [0, 1, 2], default=3)
    # Products: a purchase session views and carts exactly the bought SKUs (plus extra views).
    e_order = s_order[e_s]
    e_sku = np.full(len(e_s), -1, dtype=np.int64)
    bought_view = (e_order >= 0) & (e_type == 0) & (rank < s_lines[e_s])
    bought_cart = (e_order >= 0) & (e_type == 1)
    e_sku[bought_view] = orders.line_sku[line_start[e_order[bought_view]] + rank[bought_view]]
    cart_rank = rank - v
    e_sku[bought_cart] = orders.line_sku[line_start[e_order[bought_cart]] + cart_rank[bought_cart]]
    browse = (e_type == 0) & ~bought_view
    browsed = rng.choice(catalogue.size, size=int(browse.sum()), p=catalogue.view_appeal)
    start_day = np.concatenate([orders.day, nb_start // DAY])
    fallback = orders.line_sku[line_start[attached_to]]
    launched = catalogue.launched_day[browsed] < start_day[e_s[browse]]
    e_sku[browse] = np.where(launched, browsed, fallback[e_s[browse]])
    # A non-buying session's cart holds the product it landed on.
    nb_cart = (e_order < 0) & (e_type == 1)
    e_sku[nb_cart] = e_sku[offset[e_s[nb_cart]]]
    # Times: gaps between steps; purchase sessions end with checkout at the order time and the
    # purchase at payment, the others run forward from their start.
    gap = np.select(
        [e_type == 0, e_type == 1, e_type == 2],
        [3 + rng.exponential(45.0, len(e_s)), 2 + rng.exponential(20.0, len(e_s)),
         5 + rng.exponential(30.0, len(e_s))],
        default=0.0,
    ).astype(np.int64)
    cum = np.cumsum(gap)
    cum_in = cum - (cum[offset] - gap[offset])[e_s]  # within session, first event = its gap
    last_pre = offset + per_session - 1 - buy  # index of the last event before any purchase
    total_pre = cum_in[last_pre]
    ordered_at = np.where(s_order >= 0, orders.ordered_at[np.maximum(s_order, 0)], 0)
    s_start = np.concatenate([np.zeros(n_orders, dtype=np.int64), nb_start])
    e_time = np.where(
        e_order >= 0,
        ordered_at[e_s] - (total_pre[e_s] - cum_in),
        s_start[e_s] + cum_in - gap[offset[e_s]],
    )
    paid = e_type == 3
    e_time[paid] = orders.paid_at[e_order[paid]]
    e_time = np.maximum(e_time, 0)
    # Before paying for the first order the buyer is anonymous; checkout identifies them.
    first_order = np.concatenate([orders.is_first, np.zeros(m, dtype=bool)])
    e_customer = np.where(first_order[e_s] & (e_type < 2), -1, customer[e_s])
    s_day = e_time[offset] // DAY
    # Sort sessions by start and events by time.
    s_sort = np.lexsort((np.arange(n_s), e_time[offset]))
    s_rank = np.empty(n_s, dtype=np.int64)
    s_rank[s_sort] = np.arange(n_s)
    e_sort = np.lexsort((rank, s_rank[e_s], e_time))
    return Sessions(
        customer=customer[s_sort],
        device_owner=device_owner[s_sort],
        channel=channel[s_sort],
        order=s_order[s_sort],
        stage=stage[s_sort],
        device=device[s_sort],
        day=s_day[s_sort],
        prospects=pool,
        ev_session=s_rank[e_s][e_sort],
        ev_type=e_type[e_sort],
        ev_time=e_time[e_sort],
        ev_sku=e_sku[e_sort],
        ev_landing=(rank == 0)[e_sort],
        ev_customer=e_customer[e_sort],
        month=np.concatenate([order_months(calendar, orders.day),
                              order_months(calendar, orders.day[attached])])[s_sort],
    )


def clicks(sessions: Sessions, days: int) -> Array:
    """Sessions per (day, channel): the clicks an ad platform reports for paid channels."""
    out = np.zeros((days, len(CHANNELS)), dtype=np.int64)
    inside = (sessions.day >= 0) & (sessions.day < days)
    np.add.at(out, (sessions.day[inside], sessions.channel[inside]), 1)
    return out


def _rates(view: float, cart: float, checkout: float, purchase: float) -> dict[str, float]:
    return {
        "view_to_cart": round(cart / view, 6) if view else 0.0,
        "cart_to_checkout": round(checkout / cart, 6) if cart else 0.0,
        "checkout_to_purchase": round(purchase / checkout, 6) if checkout else 0.0,
        "session_conversion": round(purchase / view, 6) if view else 0.0,
    }


def expected_rates(sessions: Sessions) -> dict[str, Any]:
    """The true funnel rates overall, per month (``"01"`` .. ``"12"``) and per channel key: the
    expected sessions reaching each step given the orders of each (month, channel) cell (a cell
    with ``n`` orders and conversion ``c`` expects ``n / c`` sessions, ``n p1 / c`` carts, ...)."""
    probs = step_probabilities()
    buying = sessions.order >= 0
    orders = np.zeros(probs.shape[:2])
    np.add.at(orders, (sessions.month[buying], sessions.channel[buying]), 1)
    p1, p2, p3 = probs[..., 0], probs[..., 1], probs[..., 2]
    views = orders / (p1 * p2 * p3)
    reach = np.stack([views, views * p1, views * p1 * p2, orders], axis=-1)  # month, channel, step

    def rates(counts: Array) -> dict[str, float]:
        return _rates(*(float(x) for x in counts))

    return {
        "overall": rates(reach.sum(axis=(0, 1))),
        "by_month": {f"{m + 1:02d}": rates(reach[m].sum(axis=0))
                     for m in range(12) if orders[m].sum()},
        "by_channel": {c.key: rates(reach[:, i].sum(axis=0))
                       for i, c in enumerate(CHANNELS) if orders[:, i].sum()},
    }


def describe(sessions: Sessions) -> dict[str, Any]:
    """Funnel parameters, the true rates and realised counts, for ``ground_truth.json``."""
    reached = [int((sessions.stage >= s).sum()) for s in range(4)]
    truth = expected_rates(sessions)
    overall = truth["overall"]
    probs = step_probabilities()
    return {
        "unit": "session",
        "step_probabilities": {k: overall[k] for k in FUNNEL},
        "session_conversion": overall["session_conversion"],
        "rates_by_month": truth["by_month"],
        "rates_by_channel": truth["by_channel"],
        "model": "per (month, channel): view_to_cart = clip(base * month_intent * channel_intent, "
        f"{CART_RATE_BOUNDS[0]}, {CART_RATE_BOUNDS[1]}), cart_to_checkout = base, "
        "checkout_to_purchase = base * channel_payment; the rates above are the expected ones "
        "given the orders of each cell",
        "base_step_probabilities": FUNNEL,
        "month_intent": {f"{m + 1:02d}": v for m, v in enumerate(MONTH_INTENT)},
        "channel_intent": CHANNEL_INTENT,
        "channel_payment": CHANNEL_PAYMENT,
        "cells": [
            {"month": m + 1, "channel": c.key, "utm_source": c.utm_source,
             **_rates(1.0, float(probs[m, i, 0]), float(probs[m, i, 0] * probs[m, i, 1]),
                      float(probs[m, i].prod()))}
            for m in range(12) for i, c in enumerate(CHANNELS)
        ],
        "non_buying_sessions": "per order, Poisson((1 - c) / c) with c its cell's conversion, "
        "stopping at view / add_to_cart / checkout in proportion to (1-p1, p1(1-p2), p1 p2 (1-p3))",
        "extra_views_poisson_mean": EXTRA_VIEWS,
        "pre_purchase_visit_share": PRE_VISIT_SHARE,
        "anonymous_until": "a first order's checkout (view and add_to_cart events carry only "
        "anonymous_id; checkout and purchase carry customer_id and anonymous_id)",
        "sessions_reaching": dict(zip(TYPES, reached, strict=True)),
        "events_by_type": {
            t: int((sessions.ev_type == i).sum()) for i, t in enumerate(TYPES)
        },
        "distinct_prospects_at_most": sessions.prospects,
    }
