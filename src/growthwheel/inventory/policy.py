"""Inventory policy arithmetic (pure, no I/O): safety stock, reorder point, EOQ, days of cover,
turnover (库存周转率), stock-out probability and clearance suggestions.

Units: demand and stock in units; lead times in the same period as the demand (days for daily
demand); costs in integer minor units (the EOQ does not depend on the currency's scale as long as
the order cost and the holding cost share it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm


def z_value(service_level: float) -> float:
    """The standard normal quantile for a cycle service level (0.95 → 1.645)."""
    if not 0.0 < service_level < 1.0:
        raise ValueError("service_level: strictly between 0 and 1")
    return float(norm.ppf(service_level))


def lead_time_demand_sd(demand_sd: float, lead_time: float, demand_mean: float = 0.0,
                        lead_time_sd: float = 0.0) -> float:
    """Standard deviation of demand over a lead time: ``sqrt(L σd² + d² σL²)`` (independent
    per-period demand, lead time independent of demand)."""
    if demand_sd < 0 or lead_time < 0 or lead_time_sd < 0 or demand_mean < 0:
        raise ValueError("demand_sd, lead_time, lead_time_sd and demand_mean: not negative")
    return math.sqrt(lead_time * demand_sd**2 + demand_mean**2 * lead_time_sd**2)


def safety_stock(service_level: float, demand_sd: float, lead_time: float, demand_mean: float = 0.0,
                 lead_time_sd: float = 0.0) -> float:
    """Safety stock for a cycle service level: ``z · sqrt(L σd² + d² σL²)``."""
    return z_value(service_level) * lead_time_demand_sd(demand_sd, lead_time, demand_mean, lead_time_sd)


def reorder_point(demand_mean: float, lead_time: float, safety: float) -> float:
    """Reorder point: expected demand over the lead time plus safety stock."""
    return demand_mean * lead_time + safety


def eoq(annual_demand: float, order_cost: float, holding_cost: float) -> float:
    """Economic order quantity ``sqrt(2 D S / H)`` (``H``: cost of holding one unit for a year)."""
    if annual_demand < 0 or order_cost < 0:
        raise ValueError("annual_demand and order_cost: not negative")
    if holding_cost <= 0:
        raise ValueError("holding_cost: positive")
    return math.sqrt(2.0 * annual_demand * order_cost / holding_cost)


def days_of_cover(on_hand: float, daily_demand: float) -> float:
    """Days the stock on hand lasts at the forecast rate (infinite with no demand)."""
    if on_hand <= 0:
        return 0.0
    return math.inf if daily_demand <= 0 else on_hand / daily_demand


def turnover(cost_of_goods_sold: float, average_inventory: float) -> float:
    """Inventory turnover (库存周转率): cost of goods sold over the average inventory (both at cost,
    or both in units) for the same period; infinite when nothing was held."""
    if average_inventory <= 0:
        return math.inf if cost_of_goods_sold > 0 else 0.0
    return cost_of_goods_sold / average_inventory


def days_in_inventory(period_days: float, turns: float) -> float:
    """Average days an item stays in stock (库存周转天数): the period's days over its turnover."""
    return math.inf if turns <= 0 else period_days / turns


def stockout_probability(available: float, demand_mean: float, demand_sd: float) -> float:
    """Probability that demand over a window exceeds what is available for it, with demand normal
    (mean, sd) and a continuity correction of half a unit; exact 0/1 when the sd is 0."""
    if available <= 0 and demand_mean > 0:
        return 1.0
    if demand_sd <= 0:
        return 1.0 if demand_mean > available else 0.0
    return float(norm.sf((available + 0.5 - demand_mean) / demand_sd))


@dataclass(frozen=True)
class Clearance:
    """A suggested clearance for a slow mover: a discount and the units beyond the target cover."""

    discount_percent: int
    excess_units: int
    reason: str


def clearance(on_hand: float, daily_demand: float, target_days: float = 60.0,
              days_since_sale: int | None = None) -> Clearance | None:
    """A clearance suggestion when the stock covers more than ``target_days`` of demand (or nothing
    sold in ``target_days``): 10 % off for up to twice the target, 20 % up to four times, 30 %
    beyond or with no demand at all. ``None`` for an item that is not a slow mover."""
    cover = days_of_cover(on_hand, daily_demand)
    stale = days_since_sale is not None and days_since_sale >= target_days
    if on_hand <= 0 or (cover <= target_days and not stale):
        return None
    excess = max(0, math.floor(on_hand - daily_demand * target_days))
    if excess == 0 and not stale:
        return None
    if math.isinf(cover) or cover > 4 * target_days:
        percent = 30
    elif cover > 2 * target_days:
        percent = 20
    else:
        percent = 10
    reason = "no_sales" if stale and (math.isinf(cover) or cover <= target_days) else "excess_cover"
    return Clearance(percent, excess if excess else math.floor(on_hand), reason)
