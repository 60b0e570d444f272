"""A campaign read against the warehouse: live pacing per phase and the three-axis review (复盘).

Definitions (shop-local ``order_date``; paid orders are ``orders.status`` in the paid statuses):

* **GMV** — Σ ``total_amount`` of paid orders placed in the window (as the KPI catalogue);
* **new buyer** — a customer whose first paid order ever falls in the window (phase or campaign);
* **customers axis** — buyers, new buyers and their share; **repurchase of the acquired**: the
  share of new buyers with another paid order after the campaign's last day, up to ``as_of``;
  **value of the acquired**: their net spend (total − refunds) from their first order up to
  ``as_of``, per customer (observed value to date, not a forecast: say how many days it covers);
* **products axis** — revenue and units per SKU (order lines of the window's paid orders); the
  **heroes** are the top :data:`HEROES` SKUs by revenue and their **contribution** is their share of
  the window's line revenue; the **active-SKU rate** (动销率) is the share of the catalogue's SKUs
  that sold at least one unit; a hero's **sell-through** (售罄率) is units sold in the window /
  (units sold + units on hand at its end, from the ``inventory`` fact as the inventory plan counts
  them), and the heroes' together the same over those with known stock (``None`` without stock);
* **operations axis** — **cost** = ad spend in the window on the budget's channels (every channel
  when the budget names none) + the attached influencers' cost (cost per deal × deals); **ROI** =
  GMV / cost (投入产出比, as the glossary); **CAC** = cost / new buyers; **cost per order**; spend
  against budget per channel; the discount given; each attached promotion's orders, revenue and
  discount in the window (order lines naming it), each attached coupon batch's counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

import ibis
from ibis import _

from growthwheel.errors import InvalidArgumentError
from growthwheel.marketing.campaigns import pacing
from growthwheel.marketing.campaigns.schemas import check_day
from growthwheel.warehouse.schema import PAID_STATUSES

HEROES = 5


def _paid(con: Any) -> Any:
    return con.table("orders").filter(_.status.isin(PAID_STATUSES) & _.customer_id.notnull())


def _first_days(con: Any) -> Any:
    return _paid(con).group_by("customer_id").aggregate(first_day=_.order_date.min())


def _rows(expr: Any) -> list[dict[str, Any]]:
    return list(expr.to_pyarrow().to_pylist())


def daily(con: Any, start: date, end: date) -> dict[str, dict[date, float]]:
    """GMV, orders and new buyers per day over ``[start, end]`` (days without orders left out)."""
    orders = _paid(con).filter((_.order_date >= start) & (_.order_date <= end))
    by_day = orders.group_by("order_date").aggregate(gmv=_.total_amount.sum(), orders=_.count())
    firsts = _first_days(con).filter((_.first_day >= start) & (_.first_day <= end))
    new = firsts.group_by("first_day").aggregate(n=_.count())
    out: dict[str, dict[date, float]] = {"gmv": {}, "orders": {}, "new_buyers": {}}
    for r in _rows(by_day):
        out["gmv"][r["order_date"]] = float(r["gmv"] or 0)
        out["orders"][r["order_date"]] = float(r["orders"] or 0)
    for r in _rows(new):
        out["new_buyers"][r["first_day"]] = float(r["n"])
    return out


def last_order_day(con: Any) -> date | None:
    """The last day with a paid order (the default "today" of a demo or a historical shop)."""
    value = _paid(con).aggregate(last=_.order_date.max()).to_pyarrow().column("last")[0].as_py()
    return value if isinstance(value, date) else None


def _checked(as_of: date | None) -> date | None:
    try:
        return check_day(as_of, "as_of")
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None


def _window(phases: Sequence[pacing.Phase]) -> tuple[date, date]:
    return phases[0].starts_on, phases[-1].ends_on


def _pace_json(m: pacing.MetricPace) -> dict[str, Any]:
    return asdict(m)


def pace(con: Any, campaign: Any, phases: Sequence[pacing.Phase], *, as_of: date | None = None,
         tolerance: float = pacing.DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Pacing of ``campaign`` on ``as_of`` (default: the last day with a paid order): per phase and
    overall, GMV and new buyers against target, expected to date, pace and projection."""
    if not phases:
        raise InvalidArgumentError("phases: the campaign has none")
    start, end = _window(phases)
    as_of = _checked(as_of) or last_order_day(con) or start
    series = daily(con, start, end)
    history = None
    if campaign.profile == "last_year":
        shift = pacing.LAST_YEAR_SHIFT
        history = daily(con, start - shift, end - shift)["gmv"]
    try:
        paces = pacing.pace_phases(
            phases, as_of=as_of, target_gmv=campaign.target_gmv, target_new_buyers=campaign.target_new_buyers,
            gmv_by_day=series["gmv"], new_buyers_by_day=series["new_buyers"], profile=campaign.profile,
            history=history, tolerance=tolerance)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None
    return {
        "campaign": campaign.name, "as_of": as_of.isoformat(), "profile": campaign.profile,
        "tolerance": tolerance, "from": start.isoformat(), "to": end.isoformat(),
        "gmv": _pace_json(pacing.overall(paces, "gmv", tolerance)),
        "new_buyers": _pace_json(pacing.overall(paces, "new_buyers", tolerance)),
        "phases": [{"kind": p.kind, "name": p.name, "starts_on": p.starts_on.isoformat(),
                    "ends_on": p.ends_on.isoformat(), "share": p.share, "days": p.days,
                    "days_elapsed": p.days_elapsed, "gmv": _pace_json(p.gmv),
                    "new_buyers": _pace_json(p.new_buyers)} for p in paces],
        "daily": [{"day": d.isoformat(), "gmv": series["gmv"].get(d, 0.0),
                   "new_buyers": series["new_buyers"].get(d, 0.0)}
                  for d in (start + timedelta(days=i) for i in range((min(as_of, end) - start).days + 1))],
    }


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else num / den


def _customers(con: Any, start: date, end: date, as_of: date) -> dict[str, Any]:
    paid = _paid(con)
    window = paid.filter((_.order_date >= start) & (_.order_date <= end))
    head = _rows(window.aggregate(buyers=_.customer_id.nunique()))[0]
    firsts = _first_days(con).filter((_.first_day >= start) & (_.first_day <= end))
    acquired = paid.join(firsts, "customer_id").filter(_.order_date <= as_of)
    per = acquired.group_by("customer_id").aggregate(
        value=(_.total_amount - ibis.coalesce(_.refunded_amount, 0)).sum(),
        after=(_.order_date > end).cast("int64").sum())
    agg = _rows(per.aggregate(n=_.count(), value=_.value.sum(),
                              repeaters=(_.after > 0).cast("int64").sum()))[0]
    buyers = int(head["buyers"] or 0)
    new = int(agg["n"] or 0)
    return {"buyers": buyers, "new_buyers": new, "new_share": _ratio(new, buyers),
            "repurchase_rate": _ratio(float(agg["repeaters"] or 0), new) if as_of > end else None,
            "repurchase_days": max(0, (as_of - end).days),
            "acquired_value": float(agg["value"] or 0),
            "acquired_value_per_customer": _ratio(float(agg["value"] or 0), new),
            "value_days": max(0, (as_of - start).days + 1)}


def _products(con: Any, start: date, end: date) -> dict[str, Any]:
    orders = _paid(con).filter((_.order_date >= start) & (_.order_date <= end)).select("order_id")
    lines = con.table("order_lines").join(orders, "order_id")
    per = lines.group_by("sku").aggregate(
        revenue=_.line_total.sum(), units=_.quantity.sum(), name=_.product_name.max())
    rows = sorted(_rows(per), key=lambda r: (-(r["revenue"] or 0), str(r["sku"])))
    total = float(sum(r["revenue"] or 0 for r in rows))
    catalogue = int(_rows(con.table("products").aggregate(n=_.count()))[0]["n"] or 0)
    sold = sum(1 for r in rows if (r["units"] or 0) > 0)
    from growthwheel.inventory.service import on_hand_at

    stock = on_hand_at(con, end)
    heroes = [{"sku": r["sku"], "name": r["name"], "revenue": int(r["revenue"] or 0),
               "units": int(r["units"] or 0), "share": _ratio(float(r["revenue"] or 0), total),
               "on_hand": stock.get(str(r["sku"])),
               "sell_through": _sell_through(int(r["units"] or 0), stock.get(str(r["sku"])))}
              for r in rows[:HEROES]]
    known = [h for h in heroes if h["on_hand"] is not None]
    return {"revenue": total, "skus_sold": sold, "catalogue_skus": catalogue,
            "active_sku_rate": _ratio(sold, catalogue) if catalogue else None,
            "hero_contribution": _ratio(float(sum(h["revenue"] for h in heroes)), total),
            "heroes": heroes,
            "sell_through": _sell_through(sum(h["units"] for h in known),
                                          sum(h["on_hand"] for h in known) if known else None)}


def _sell_through(units: int, on_hand: float | None) -> float | None:
    """Units sold / (units sold + units left); ``None`` when the stock is unknown or both are 0."""
    if on_hand is None or units + on_hand <= 0:
        return None
    return units / (units + on_hand)


def _spend(con: Any, start: date, end: date) -> dict[str, int]:
    spend = con.table("ad_spend").filter((_.date >= start) & (_.date <= end))
    return {str(r["channel"]): int(r["spend"] or 0)
            for r in _rows(spend.group_by("channel").aggregate(spend=_.spend.sum()))}


def _promotions(con: Any, start: date, end: date,
                promotions: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Orders and discount of each attached promotion in the window (lines that name it in
    ``order_lines.promotion_ids``)."""
    if not promotions:
        return []
    orders = _paid(con).filter((_.order_date >= start) & (_.order_date <= end)).select("order_id")
    lines = con.table("order_lines").join(orders, "order_id")
    out = []
    for pid, name in promotions:
        hit = lines.filter(lines.promotion_ids.notnull() & lines.promotion_ids.contains(pid))
        row = _rows(hit.aggregate(orders=hit.order_id.nunique(), discount=hit.discount_amount.sum(),
                                  revenue=hit.line_total.sum()))[0]
        out.append({"id": pid, "name": name, "orders": int(row["orders"] or 0),
                    "discount": int(row["discount"] or 0), "revenue": int(row["revenue"] or 0)})
    return out


def review(con: Any, campaign: Any, phases: Sequence[pacing.Phase], *, influencer_cost: int = 0,
           as_of: date | None = None, promotions: Sequence[tuple[str, str]] = (),
           coupon_batches: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The three-axis review of ``campaign`` (customers, products, operations) as of ``as_of``
    (default: the last day with a paid order), with the figures per phase. ``promotions`` (id,
    name) are the attached promotions, measured in the window; ``coupon_batches`` the attached
    batches' counters from the store, passed through."""
    if not phases:
        raise InvalidArgumentError("phases: the campaign has none")
    start, end = _window(phases)
    as_of = _checked(as_of) or last_order_day(con) or end
    window = _paid(con).filter((_.order_date >= start) & (_.order_date <= end))
    ops = _rows(window.aggregate(gmv=_.total_amount.sum(), orders=_.count(),
                                 discount=_.discount_amount.sum(), refunded=_.refunded_amount.sum()))[0]
    gmv = float(ops["gmv"] or 0)
    orders = int(ops["orders"] or 0)
    budget: dict[str, int] = dict(campaign.budget or {})
    spent_all = _spend(con, start, end)
    spent = {ch: v for ch, v in spent_all.items() if ch in budget} if budget else spent_all
    ad_cost = sum(spent.values())
    cost = ad_cost + influencer_cost
    customers = _customers(con, start, end, as_of)
    series = daily(con, start, end)
    per_phase = []
    for p in phases:
        days = [p.starts_on + timedelta(days=i) for i in range((p.ends_on - p.starts_on).days + 1)]
        per_phase.append({"kind": p.kind, "name": p.name, "starts_on": p.starts_on.isoformat(),
                          "ends_on": p.ends_on.isoformat(),
                          "gmv": sum(series["gmv"].get(d, 0.0) for d in days),
                          "orders": sum(series["orders"].get(d, 0.0) for d in days),
                          "new_buyers": sum(series["new_buyers"].get(d, 0.0) for d in days)})
    channels = sorted(set(budget) | set(spent))
    return {
        "campaign": campaign.name, "from": start.isoformat(), "to": end.isoformat(),
        "as_of": as_of.isoformat(),
        "finished": as_of >= end,
        "targets": {"gmv": campaign.target_gmv, "new_buyers": campaign.target_new_buyers,
                    "roi": campaign.target_roi},
        "customers": customers,
        "products": _products(con, start, end),
        "operations": {
            "gmv": gmv, "orders": orders, "discount": int(ops["discount"] or 0),
            "refunded": int(ops["refunded"] or 0), "ad_spend": ad_cost, "influencer_cost": influencer_cost,
            "cost": cost, "roi": _ratio(gmv, cost), "cac": _ratio(cost, customers["new_buyers"]),
            "cost_per_order": _ratio(cost, orders),
            "budget_total": sum(budget.values()),
            "budget": [{"channel": ch, "budget": budget.get(ch), "spend": spent.get(ch, 0),
                        "used": _ratio(spent.get(ch, 0), budget.get(ch))} for ch in channels],
            "promotions": _promotions(con, start, end, promotions),
            "coupon_batches": list(coupon_batches),
        },
        "attainment": {"gmv": _ratio(gmv, campaign.target_gmv),
                       "new_buyers": _ratio(customers["new_buyers"], campaign.target_new_buyers),
                       "roi": _ratio(_ratio(gmv, cost), campaign.target_roi)},
        "phases": per_phase,
    }
