"""Stock of the demo shop (issue 15 item 6): weekly snapshots and supplier receipts per SKU with
known lead times, written as the ``inventory`` import file, and the ground truth to check the
inventory plan against.

Demand is what the simulated customers bought (units per SKU and day): it emerges from the
customers, so each SKU's *known* demand rate is its realised mean over the history, written to the
ground truth. Stock follows a continuous-review (s, Q) policy per SKU with the category's lead
time (normal, mean and sd known), reorder point ``s = μL + z·sqrt(L σ² + μ² σL²)`` at 95 % and
``Q`` = the EOQ (order cost 200 CNY, holding 25 % of cost a year), at least a week of demand.
Sales are not censored by stock (a stock-out is recorded, the orders stand).

Designed cases, chosen without randomness:

* **overstocked** — the :data:`OVERSTOCKED` slowest sellers on sale from the start get a year and a
  half of their demand up front and are never reordered: the plan's slow movers;
* **at risk at the end** — the :data:`AT_RISK` best sellers' supplier stops delivering for the last
  :data:`SUPPLIER_GAP` days (a quarter of a shorter history): little stock and nothing inbound
  at the end.

A separate random stream (``[seed, 93]``) draws the lead times, so the other tables are unchanged.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.stats import norm

from growthwheel.sim import text
from growthwheel.sim.catalogue import CATEGORIES, Catalogue

Array = npt.NDArray[Any]

#: Mean and sd of the supplier lead time in days, per category (in ``CATEGORIES`` order, cycled).
LEAD_TIMES = ((14, 3.5), (21, 6.0), (10, 2.5), (30, 8.0), (7, 2.0), (18, 4.5), (12, 3.0), (25, 6.0))
SERVICE_LEVEL = 0.95
ORDER_COST_FEN = 20_000
HOLDING_RATE = 0.25
SNAPSHOT_EVERY = 7
OVERSTOCKED = 5
AT_RISK = 5
SUPPLIER_GAP = 90


def lead_time(category: int) -> tuple[float, float]:
    """(mean, sd) of a category's lead time in days."""
    mean, sd = LEAD_TIMES[category % len(LEAD_TIMES)]
    return float(mean), float(sd)


def simulate_stock(seed: int, start: date, days: int, cat: Catalogue, line_sku: Array, line_day: Array,
                   line_quantity: Array) -> tuple[pa.Table, dict[str, Any]]:
    """The ``inventory`` table (generic import columns, all text) and its ground truth."""
    rng = np.random.default_rng([seed, 93])
    n = cat.size
    demand = np.zeros((n, days))
    np.add.at(demand, (np.asarray(line_sku, dtype=np.int64), np.asarray(line_day, dtype=np.int64)),
              np.asarray(line_quantity, dtype=float))
    launch = np.clip(np.asarray(cat.launched_day, dtype=np.int64), 0, days - 1)
    alive = np.maximum(days - launch, 1)
    rate = demand.sum(axis=1) / alive
    spread = np.array([demand[k, launch[k]:].std() for k in range(n)])
    lt_mean = np.array([lead_time(int(c))[0] for c in cat.category])
    lt_sd = np.array([lead_time(int(c))[1] for c in cat.category])
    z = float(norm.ppf(SERVICE_LEVEL))
    reorder = rate * lt_mean + z * np.sqrt(lt_mean * spread**2 + rate**2 * lt_sd**2)
    unit_cost = np.maximum(np.asarray(cat.cost, dtype=float), 1.0)
    eoq = np.sqrt(2 * rate * 365 * ORDER_COST_FEN / (HOLDING_RATE * unit_cost))
    quantity = np.maximum(np.ceil(np.maximum(eoq, 7 * rate)), 1.0)

    started = launch < days
    on_sale_from_start = np.asarray(cat.launched_day) < 0
    candidates = np.flatnonzero(on_sale_from_start & (rate > 0))
    by_rate = candidates[np.argsort(rate[candidates], kind="stable")]
    overstocked = by_rate[:OVERSTOCKED]
    at_risk = by_rate[::-1][:AT_RISK]
    on_hand = np.ceil(reorder + quantity)
    on_hand[overstocked] = np.ceil(rate[overstocked] * 545) + 20
    arrival = np.full(n, -1)  # day the open order arrives (-1: none open)
    open_qty = np.zeros(n)
    open_lead = np.zeros(n, dtype=np.int64)
    snap_sku: list[Array] = []
    snap_day: list[Array] = []
    snap_qty: list[Array] = []
    rec_sku: list[int] = []
    rec_day: list[int] = []
    rec_qty: list[int] = []
    rec_lead: list[int] = []
    gap = min(SUPPLIER_GAP, max(1, days // 4))  # a short demo keeps three quarters of normal supply
    stockout_days = np.zeros(n, dtype=np.int64)
    never_reorder = np.zeros(n, dtype=bool)
    never_reorder[overstocked] = True
    for day in range(days):
        live = started & (launch <= day)
        due = arrival == day
        if due.any():
            idx = np.flatnonzero(due)
            on_hand[idx] += open_qty[idx]
            rec_sku += idx.tolist()
            rec_day += [day] * len(idx)
            rec_qty += open_qty[idx].astype(int).tolist()
            rec_lead += open_lead[idx].tolist()
            arrival[idx] = -1
            open_qty[idx] = 0
        need = demand[:, day]
        stockout_days += (live & (need > on_hand)).astype(np.int64)
        on_hand = np.where(live, np.maximum(on_hand - need, 0.0), on_hand)
        supplier_down = day >= days - gap
        blocked = never_reorder.copy()
        if supplier_down:
            blocked[at_risk] = True
        order = live & (arrival < 0) & (on_hand <= reorder) & ~blocked & (rate > 0)
        if order.any():
            idx = np.flatnonzero(order)
            leads = np.maximum(1, np.rint(rng.normal(lt_mean[idx], lt_sd[idx]))).astype(np.int64)
            arrival[idx] = day + leads
            open_qty[idx] = quantity[idx]
            open_lead[idx] = leads
        if (day + 1) % SNAPSHOT_EVERY == 0 or day == days - 1:
            idx = np.flatnonzero(live)
            snap_sku.append(idx)
            snap_day.append(np.full(len(idx), day))
            snap_qty.append(on_hand[idx].astype(np.int64))
    s_sku = np.concatenate(snap_sku) if snap_sku else np.zeros(0, dtype=np.int64)
    s_day = np.concatenate(snap_day) if snap_day else np.zeros(0, dtype=np.int64)
    s_qty = np.concatenate(snap_qty) if snap_qty else np.zeros(0, dtype=np.int64)
    r_sku, r_day = np.asarray(rec_sku, dtype=np.int64), np.asarray(rec_day, dtype=np.int64)
    skus = pa.array(cat.sku, type=pa.string())
    empty = pa.nulls(len(s_sku), type=pa.string())
    snapshots = pa.table({
        "sku": skus.take(pa.array(s_sku)), "date": text.dates(start, s_day),
        "on_hand": text.integers(s_qty), "received": empty, "lead_time_days": empty, "unit_cost": empty,
    })
    none = pa.nulls(len(r_sku), type=pa.string())
    receipts = pa.table({
        "sku": skus.take(pa.array(r_sku)), "date": text.dates(start, r_day), "on_hand": none,
        "received": text.integers(np.asarray(rec_qty, dtype=np.int64)),
        "lead_time_days": text.integers(np.asarray(rec_lead, dtype=np.int64)),
        "unit_cost": text.money(np.asarray(cat.cost, dtype=np.int64)[r_sku]),
    })
    table = pa.concat_tables([snapshots, receipts])
    truth = {
        "how": ("continuous review (s, Q) per SKU: s = mu*L + z*sqrt(L*sd^2 + mu^2*sdL^2) at service "
                f"level {SERVICE_LEVEL}, Q = max(EOQ, 7 days of demand) with order cost "
                f"{ORDER_COST_FEN / 100:g} CNY and holding {HOLDING_RATE} of unit cost a year; lead "
                "times normal per category; weekly end-of-day snapshots; sales not censored by stock"),
        "lead_time_days": {c.name: {"mean": lead_time(k)[0], "sd": lead_time(k)[1]}
                           for k, c in enumerate(CATEGORIES)},
        "service_level": SERVICE_LEVEL,
        "order_cost_cny": ORDER_COST_FEN / 100,
        "holding_rate": HOLDING_RATE,
        "overstocked": [cat.sku[i] for i in overstocked],
        "at_risk_at_end": [cat.sku[i] for i in at_risk],
        "supplier_gap_days": gap,
        "demand_per_day": {cat.sku[i]: round(float(rate[i]), 4) for i in np.argsort(-rate)[:20]},
        "snapshots": len(s_sku),
        "receipts": len(r_sku),
        "stockout_sku_days": int(stockout_days.sum()),
        "end_on_hand": {cat.sku[i]: int(on_hand[i]) for i in (*overstocked, *at_risk)},
    }
    return table, truth
