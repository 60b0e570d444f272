"""Sessions and behaviour events: view -> add_to_cart -> checkout -> purchase, with drop-offs.

Every order is the purchase of one session that went through every step. Non-buying sessions are
added so that, over all sessions, the step probabilities are exactly ``FUNNEL`` in expectation:
``number ~ Poisson(orders * (1 - c) / c)`` with ``c`` the product of the step probabilities, and
each stops at view / cart / checkout with probabilities proportional to
``(1 - p1, p1 (1 - p2), p1 p2 (1 - p3))``. A non-buying session is attached to a random order: it
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

FUNNEL = {"view_to_cart": 0.35, "cart_to_checkout": 0.55, "checkout_to_purchase": 0.80}
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
    p1, p2, p3 = FUNNEL.values()
    conversion = p1 * p2 * p3
    m = int(rng.poisson(n_orders * (1 - conversion) / conversion))
    stop = np.array([1 - p1, p1 * (1 - p2), p1 * p2 * (1 - p3)])
    nb_stage = rng.choice(3, size=m, p=stop / stop.sum())
    attached = rng.integers(0, n_orders, m)
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
    )


def clicks(sessions: Sessions, days: int) -> Array:
    """Sessions per (day, channel): the clicks an ad platform reports for paid channels."""
    out = np.zeros((days, len(CHANNELS)), dtype=np.int64)
    inside = (sessions.day >= 0) & (sessions.day < days)
    np.add.at(out, (sessions.day[inside], sessions.channel[inside]), 1)
    return out


def describe(sessions: Sessions) -> dict[str, Any]:
    """Funnel parameters and realised counts, for ``ground_truth.json``."""
    reached = [int((sessions.stage >= s).sum()) for s in range(4)]
    p1, p2, p3 = FUNNEL.values()
    return {
        "unit": "session",
        "step_probabilities": FUNNEL,
        "session_conversion": round(p1 * p2 * p3, 6),
        "non_buying_sessions": "Poisson(orders * (1 - conversion) / conversion), stopping at "
        "view / add_to_cart / checkout in proportion to (1-p1, p1(1-p2), p1 p2 (1-p3))",
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
