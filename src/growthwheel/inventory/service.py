"""The inventory plan over the warehouse: per-SKU demand forecasts (chosen by backtest), stock on
hand, safety stock, reorder point, EOQ, days of cover, turnover, stock-out risk before a date and
slow movers with a clearance suggestion.

Reads ``order_lines`` × ``orders`` (paid orders, units per SKU and shop-local day), ``inventory``
(snapshots and receipts) and ``products`` (unit cost) through Ibis, so it runs on DuckDB and Spark;
the arithmetic is :mod:`growthwheel.inventory.forecast` and :mod:`growthwheel.inventory.policy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.inventory import forecast as fc
from growthwheel.inventory import policy
from growthwheel.warehouse.schema import PAID_STATUSES

#: The days a plan may be asked about (a history and a horizon of dates Python can hold).
EARLIEST = date(1970, 1, 1)
LATEST = date(2199, 12, 31)
GRAINS = {"day": (1, 7), "week": (7, 52)}
"""Grain → (days per period, season length in periods)."""


@dataclass(frozen=True)
class PlanOptions:
    """What the plan is asked for (every field has a sensible default)."""

    as_of: date | None = None
    grain: str = "day"
    horizon: int = 14
    history_days: int = 182
    service_level: float = 0.95
    lead_time_days: float = 14.0
    order_cost: int = 5_000
    holding_rate: float = 0.25
    until: date | None = None
    uplift: float = 1.0
    target_cover_days: float = 60.0
    choose: str = "sku"
    turnover_days: int = 90

    def check(self) -> None:
        """A clear error naming the field for any value out of range."""
        checks = [
            ("grain", self.grain in GRAINS, "day or week"),
            ("horizon", 1 <= self.horizon <= 90, "between 1 and 90 periods"),
            ("history_days", 56 <= self.history_days <= 1_100, "between 56 and 1100 days"),
            ("service_level", 0.5 <= self.service_level < 1, "at least 0.5 and below 1"),
            ("lead_time_days", 0 <= self.lead_time_days <= 365, "between 0 and 365"),
            ("order_cost", 0 <= self.order_cost <= 10**10, "not negative (minor units)"),
            ("holding_rate", 0 < self.holding_rate <= 5, "above 0 and at most 5 (a year)"),
            ("uplift", 0 < self.uplift <= 50, "above 0 and at most 50"),
            ("target_cover_days", 1 <= self.target_cover_days <= 1_000, "between 1 and 1000"),
            ("choose", self.choose in ("sku", "overall"), "sku or overall"),
            ("turnover_days", 7 <= self.turnover_days <= 730, "between 7 and 730"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise InvalidArgumentError(f"{name}: {rule}")
        for name, day in (("as_of", self.as_of), ("until", self.until)):
            if day is not None and not EARLIEST <= day <= LATEST:
                raise InvalidArgumentError(f"{name}: between {EARLIEST} and {LATEST}")
        if self.until is not None and self.as_of is not None and self.until <= self.as_of:
            raise InvalidArgumentError("until: after as_of")


def _latest_day(con: Any) -> date | None:
    orders = con.table("orders")
    found = orders.filter(orders.status.isin(PAID_STATUSES)).order_date.max().execute()
    stock = None
    if _has_inventory(con):
        inventory = con.table("inventory")
        stock = inventory.filter(inventory.kind == "snapshot").date.max().execute()  # receipts may be due
    days = [pd.Timestamp(d).date() for d in (found, stock) if d is not None and not pd.isna(d)]
    return max(days) if days else None


def _has_inventory(con: Any) -> bool:
    return "inventory" in con.list_tables()


def daily_demand(con: Any, first: date, last: date) -> pd.DataFrame:
    """Units sold per SKU and shop-local day in ``[first, last]`` (paid orders): sku, day, units."""
    orders = con.table("orders")
    lines = con.table("order_lines")
    paid = orders.filter(orders.status.isin(PAID_STATUSES), orders.order_date >= first,
                         orders.order_date <= last).select("order_id", "order_date")
    joined = lines.join(paid, "order_id")
    expr = joined.group_by(sku=joined.sku, day=joined.order_date).aggregate(units=joined.quantity.sum())
    frame: pd.DataFrame = expr.execute()
    return frame


def _stock(con: Any, as_of: date, until: date, turnover_first: date) -> dict[str, dict[str, Any]]:
    """Per SKU: units on hand at ``as_of`` (each location's latest snapshot plus later receipts up
    to ``as_of``; sales after the snapshot are taken off by the caller), receipts due after
    ``as_of`` up to ``until``, lead times of past receipts, the last receipt's unit cost and the
    average units on hand over the turnover window."""
    out: dict[str, dict[str, Any]] = {}
    if not _has_inventory(con):  # a warehouse made before the inventory fact existed
        return out
    inv = con.table("inventory")
    rows: pd.DataFrame = inv.filter(inv.date <= until).select(
        "sku", "date", "kind", "location", "on_hand", "received", "lead_time_days", "unit_cost").execute()
    if rows.empty:
        return out
    rows["date"] = pd.to_datetime(rows["date"]).dt.date
    for sku, group in rows.groupby("sku", sort=True):
        snaps = group[(group["kind"] == "snapshot") & (group["date"] <= as_of)]
        receipts = group[group["kind"] == "receipt"]
        on_hand = 0.0
        snapshot_day: date | None = None
        for _, loc in snaps.groupby("location"):
            latest = loc.sort_values("date").iloc[-1]
            day = latest["date"]
            later = receipts[(receipts["location"] == latest["location"]) & (receipts["date"] > day)
                             & (receipts["date"] <= as_of)]
            on_hand += float(latest["on_hand"]) + float(later["received"].sum())
            snapshot_day = day if snapshot_day is None else min(snapshot_day, day)
        past = receipts[receipts["date"] <= as_of]
        due = receipts[(receipts["date"] > as_of) & (receipts["date"] <= until)]
        leads = past["lead_time_days"].dropna().astype(float)
        costs = past.sort_values("date")["unit_cost"].dropna()
        window = snaps[snaps["date"] >= turnover_first]
        daily_totals = window.groupby("date")["on_hand"].sum()
        out[str(sku)] = {
            "snapshot_day": snapshot_day,
            "on_hand": on_hand if snapshot_day is not None else None,
            "inbound": float(due["received"].sum()),
            "lead_times": leads.tolist(),
            "unit_cost": int(costs.iloc[-1]) if len(costs) else None,
            "average_on_hand": float(daily_totals.mean()) if len(daily_totals) else None,
        }
    return out


def on_hand_at(con: Any, day: date) -> dict[str, float]:
    """Units on hand per SKU at the end of ``day``, counted as the plan counts them: each location's
    latest snapshot up to ``day`` plus the receipts after it, less the units sold after the
    snapshot day. SKUs without a snapshot up to ``day`` are left out (unknown, not zero)."""
    stock = {sku: info for sku, info in _stock(con, day, day, day).items()
             if info["on_hand"] is not None and info["snapshot_day"] is not None}
    if not stock:
        return {}
    first = min(info["snapshot_day"] for info in stock.values()) + timedelta(days=1)
    sold = daily_demand(con, first, day) if first <= day else pd.DataFrame(columns=["sku", "day", "units"])
    sold["day"] = pd.to_datetime(sold["day"]).dt.date
    out: dict[str, float] = {}
    for sku, info in stock.items():
        after = sold[(sold["sku"].astype(str) == sku) & (sold["day"] > info["snapshot_day"])]
        out[sku] = max(0.0, float(info["on_hand"]) - float(after["units"].sum()))
    return out


def _costs(con: Any) -> dict[str, int]:
    products = con.table("products")
    frame = products.filter(products.cost.notnull()).select("sku", "cost").execute()
    return {str(s): int(c) for s, c in zip(frame["sku"], frame["cost"], strict=True)}


def _names(con: Any) -> dict[str, str]:
    products = con.table("products")
    frame = products.select("sku", "name").execute()
    return {str(s): str(n) for s, n in zip(frame["sku"], frame["name"], strict=True) if n is not None}


def _finite(value: float, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def plan(con: Any, options: PlanOptions | None = None) -> dict[str, Any]:
    """The inventory plan (see the module docstring); ``NoDataError`` when nothing sold or stocked."""
    options = options or PlanOptions()
    options.check()
    as_of = options.as_of or _latest_day(con)
    if as_of is None:
        raise NoDataError("no paid orders and no inventory in the warehouse")
    until = options.until or as_of + timedelta(days=options.horizon * GRAINS[options.grain][0])
    if until <= as_of:
        raise InvalidArgumentError("until: after as_of")
    period, season = GRAINS[options.grain]
    first = as_of - timedelta(days=options.history_days - 1)
    sales = daily_demand(con, first, as_of)
    turnover_first = as_of - timedelta(days=options.turnover_days - 1)
    stock = _stock(con, as_of, until, turnover_first)
    skus = sorted(set(map(str, sales["sku"])) | set(stock))
    if not skus:
        raise NoDataError("no paid orders and no inventory in the warehouse")
    index = {sku: i for i, sku in enumerate(skus)}
    daily = np.zeros((len(skus), options.history_days))
    if not sales.empty:
        rows = sales["sku"].astype(str).map(index).to_numpy()
        cols = (pd.to_datetime(sales["day"]).dt.date.map(lambda d: (d - first).days)).to_numpy()
        np.add.at(daily, (rows, cols.astype(int)), sales["units"].to_numpy(dtype=float))
    y = daily if period == 1 else fc.weekly(daily)
    h = options.horizon
    try:
        result: fc.Backtest | None = fc.backtest(y, h=h, m=season, origins=4, choose=options.choose)
    except ValueError:
        try:
            result = fc.backtest(y, h=h, m=1, origins=3, choose=options.choose)
            season = 1
        except ValueError:
            result = None
    if result is not None:
        methods, sigma = result.chosen, result.sigma
    else:  # too little history for a backtest: SBA and the spread of what was seen
        methods, sigma = ["sba"] * len(skus), y.std(axis=1)
    future = fc.forecast(y, h, season, methods)
    costs = _costs(con)
    names = _names(con)
    window_days = (until - as_of).days
    items: list[dict[str, Any]] = []
    for sku, i in index.items():
        rate = float(future[i].mean()) / period
        sd_day = float(sigma[i]) / math.sqrt(period)
        info = stock.get(sku, {})
        on_hand = info.get("on_hand")
        if on_hand is not None and info.get("snapshot_day") is not None:
            since = (info["snapshot_day"] - first).days + 1
            sold_after = float(daily[i, max(since, 0):].sum())
            on_hand = max(0.0, on_hand - sold_after)
        leads = info.get("lead_times") or []
        lead = float(np.mean(leads)) if leads else options.lead_time_days
        lead_sd = float(np.std(leads, ddof=1)) if len(leads) > 1 else 0.0
        safety = policy.safety_stock(options.service_level, sd_day, lead, rate, lead_sd)
        rop = policy.reorder_point(rate, lead, safety)
        cost = costs.get(sku) or info.get("unit_cost")
        order_qty = (policy.eoq(rate * 365, options.order_cost, options.holding_rate * cost)
                     if cost and rate > 0 else None)
        inbound = float(info.get("inbound", 0.0))
        item: dict[str, Any] = {
            "sku": sku, "name": names.get(sku), "method": methods[i],
            "daily_demand": round(rate, 3), "demand_sd": round(sd_day, 3),
            "forecast": [round(float(v), 2) for v in future[i]],
            "lead_time_days": round(lead, 1), "lead_time_sd": round(lead_sd, 1),
            "safety_stock": round(safety, 1), "reorder_point": round(rop, 1),
            "eoq": None if order_qty is None else round(order_qty), "unit_cost": cost,
            "on_hand": None if on_hand is None else round(on_hand), "inbound": round(inbound),
            "days_of_cover": None, "turnover": None, "days_in_inventory": None,
            "reorder_now": False, "stockout_risk": None, "clearance": None,
        }
        if on_hand is not None:
            sold = float(daily[i, -options.turnover_days:].sum())
            average = info.get("average_on_hand")
            turns = policy.turnover(sold, average if average is not None else on_hand)
            item["days_of_cover"] = _finite(policy.days_of_cover(on_hand, rate), 1)
            item["turnover"] = _finite(turns)
            item["days_in_inventory"] = _finite(policy.days_in_inventory(options.turnover_days, turns), 1)
            item["reorder_now"] = on_hand + inbound <= rop and rate > 0
            mean = rate * window_days * options.uplift
            sd = sd_day * math.sqrt(window_days) * options.uplift
            item["stockout_risk"] = round(policy.stockout_probability(on_hand + inbound, mean, sd), 4)
            sold_days = np.flatnonzero(daily[i] > 0)
            since_sale = (options.history_days - 1 - int(sold_days[-1])) if sold_days.size \
                else options.history_days  # nothing sold in the whole history
            suggestion = policy.clearance(on_hand, rate, options.target_cover_days, since_sale)
            if suggestion is not None:
                item["clearance"] = {"discount_percent": suggestion.discount_percent,
                                     "excess_units": suggestion.excess_units, "reason": suggestion.reason}
        items.append(item)
    items.sort(key=lambda it: (-(it["stockout_risk"] or 0.0), it["sku"]))
    backtest: dict[str, Any] | None = None
    if result is not None:
        counts: dict[str, int] = {}
        for name in result.chosen:
            counts[name] = counts.get(name, 0) + 1
        backtest = {"mase": {k: _finite(v, 4) for k, v in result.summary().items()},
                    "rmsse": {k: _finite(v, 4) for k, v in result.summary_rmsse().items()},
                    "chosen": counts, "overall": result.overall(), "origins": len(result.origins),
                    "horizon": result.horizon, "season": season}
    return {
        "as_of": as_of.isoformat(), "until": until.isoformat(), "grain": options.grain,
        "horizon": h, "service_level": options.service_level, "uplift": options.uplift,
        "skus": len(items), "backtest": backtest, "items": items,
    }


def slow_movers(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a plan with a clearance suggestion, the most excess first."""
    found = [it for it in report["items"] if it.get("clearance")]
    return sorted(found, key=lambda it: -it["clearance"]["excess_units"])


def at_risk(report: dict[str, Any], threshold: float = 0.5) -> list[dict[str, Any]]:
    """The items of a plan whose stock-out risk before ``until`` is at least ``threshold``."""
    return [it for it in report["items"]
            if it.get("stockout_risk") is not None and it["stockout_risk"] >= threshold]


def clearance_definition(skus: list[str], discount_percent: int) -> dict[str, Any]:
    """A promotion definition (percent off the given SKUs) for a clearance draft."""
    if not skus:
        raise InvalidArgumentError("skus: at least one")
    if not 1 <= discount_percent <= 90:
        raise InvalidArgumentError("discount_percent: between 1 and 90")
    return {"reward": {"type": "percent_off", "rate_bp": discount_percent * 100},
            "conditions": {"skus": sorted(set(skus))}}


def save(session: Any, report: dict[str, Any], now: Any) -> Any:
    """Store ``report`` as the latest plan (the caller owns the transaction); returns the row."""
    from growthwheel.inventory.models import InventoryPlan

    row = InventoryPlan(computed_at=now, as_of=report["as_of"], skus=report["skus"],
                        reorder=sum(1 for it in report["items"] if it["reorder_now"]),
                        at_risk=len(at_risk(report)), report=report)
    session.add(row)
    session.flush()
    return row


def latest(session: Any) -> Any:
    """The most recently stored plan, or ``None``."""
    from sqlalchemy import select

    from growthwheel.inventory.models import InventoryPlan

    return session.execute(select(InventoryPlan).order_by(InventoryPlan.computed_at.desc(),
                                                          InventoryPlan.id.desc()).limit(1)).scalar()


__all__ = ["PlanOptions", "at_risk", "clearance_definition", "daily_demand", "latest", "plan", "save",
           "slow_movers"]
