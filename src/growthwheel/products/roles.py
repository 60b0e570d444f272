"""Product roles (商品角色矩阵): traffic drivers, profit makers, potential products, slow movers and the
long tail, per period, from the warehouse's facts.

The per-SKU figures are Ibis expressions (:func:`sku_figures`), so they run on DuckDB and on Spark;
the classification (:func:`classify`) then works on one row per SKU in pandas. Definitions, over the
paid orders placed in the period ``[start, end]`` (shop-local order dates):

* **entry share** = first orders holding the SKU / all first orders in the period. A first order is
  the customer's earliest paid order ever (ties: smallest order id), so it marks a new buyer; the
  **new-buyer ratio** = the SKU's buyers whose first order held it / the SKU's buyers.
* **pull-through** = of the spend of the SKU's buyers from their first purchase of it in the period
  (that basket included) to the period's end, the share spent on other SKUs.
* **gross margin** = net revenue (``line_total − refunded_amount``) − cost of the goods kept
  (``quantity × products.cost``, scaled by the part of the line not refunded), as ``kpis`` does.
  A SKU **without a cost** has no margin: it is never a profit maker, and it says so.
* **views** = distinct sessions (an event without a session counts alone) with a ``view`` event of
  the SKU; **conversion** = orders holding the SKU / views (capped at 1), judged by its Wilson lower
  bound so that 2 orders from 3 views is not called potential.
* **growth** = orders in the period / orders in the equally long period just before − 1.

Roles (:class:`RoleRules` holds every threshold; a SKU may meet several, its ``role`` is the first
of ``ROLES`` it meets):

* ``traffic_driver`` (引流款/爆款): entry share ≥ ``traffic_entry_lift`` × the average selling SKU's,
  at least ``traffic_min_first_orders`` first orders, pull-through ≥ ``traffic_min_pull_through``;
* ``profit_maker`` (利润款): among the SKUs that together make the first ``profit_margin_share`` of
  the period's gross margin (largest first), with a margin rate at least the shop's;
* ``potential`` (潜力款): conversion's Wilson lower bound above ``potential_conversion_lift`` × the
  shop's conversion per view, views at most the ``potential_max_views_quantile`` quantile of the
  viewed SKUs', and a growing share: its orders rose by more than the shop's against the period
  before (or it was launched in the period);
* ``slow_mover`` (滞销款): on sale before the period began, units at most ``slow_units_ratio`` ×
  the median selling SKU's (zero included);
* ``long_tail`` (长尾款): outside the SKUs that make the first ``1 − long_tail_share`` of revenue;
* ``core`` (常规款): the rest.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.insight.rfm import paid_orders

ROLES = ("traffic_driver", "profit_maker", "potential", "slow_mover", "long_tail", "core")
ROLE_NAMES = {
    "traffic_driver": ("Traffic driver", "引流款"),
    "profit_maker": ("Profit maker", "利润款"),
    "potential": ("Potential product", "潜力款"),
    "slow_mover": ("Slow mover", "滞销款"),
    "long_tail": ("Long tail", "长尾款"),
    "core": ("Core product", "常规款"),
}


@dataclass(frozen=True)
class RoleRules:
    """Every threshold of the roles (see the module's documentation)."""

    traffic_entry_lift: float = 6.0
    traffic_min_first_orders: int = 10
    traffic_min_pull_through: float = 0.3
    profit_margin_share: float = 0.3
    potential_z: float = 1.96
    potential_conversion_lift: float = 3.0
    potential_max_views_quantile: float = 0.5
    slow_units_ratio: float = 0.1
    long_tail_share: float = 0.2

    def check(self) -> None:
        """Raise :class:`InvalidArgumentError` naming the first threshold out of range."""
        for name, low, high in (("traffic_entry_lift", 0.0, 1e6), ("traffic_min_pull_through", 0.0, 1.0),
                                ("profit_margin_share", 0.0, 1.0), ("potential_z", 0.0, 10.0),
                                ("potential_conversion_lift", 0.0, 1e6),
                                ("potential_max_views_quantile", 0.0, 1.0),
                                ("slow_units_ratio", 0.0, 1.0), ("long_tail_share", 0.0, 1.0)):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and low <= value <= high):
                raise InvalidArgumentError(f"{name}: between {low:g} and {high:g}")
        if self.traffic_min_first_orders < 0:
            raise InvalidArgumentError("traffic_min_first_orders: at least 0")


@dataclass(frozen=True)
class Period:
    """Shop-local days ``start`` to ``end`` inclusive, and the label it was asked with."""

    label: str
    start: date
    end: date

    @property
    def days(self) -> int:
        """Length in days."""
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The equally long period just before."""
        return Period(f"before {self.label}", self.start - timedelta(days=self.days),
                      self.start - timedelta(days=1))


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")
_LAST = re.compile(r"^last(\d{1,4})$")


def parse_period(text: str, last_day: date) -> Period:
    """``YYYY-MM``, ``YYYY-Qn``, ``YYYY`` or ``lastN`` (the N days ending on ``last_day``, the last
    order date); :class:`InvalidArgumentError` naming ``period`` otherwise."""
    value = text.strip()
    year = value[:4]
    if year.isdigit() and not 1900 <= int(year) <= 2999:
        raise InvalidArgumentError(f"period: {text!r}: a year between 1900 and 2999 / "
                                   "年份应在 1900 至 2999 之间")
    try:
        if m := _MONTH.match(value):
            y, mo = int(m[1]), int(m[2])
            start = date(y, mo, 1)
            nxt = date(y + mo // 12, mo % 12 + 1, 1)
            return Period(value, start, nxt - timedelta(days=1))
        if m := _QUARTER.match(value):
            y, q = int(m[1]), int(m[2])
            start = date(y, 3 * q - 2, 1)
            nxt = date(y + 1, 1, 1) if q == 4 else date(y, 3 * q + 1, 1)
            return Period(value.upper(), start, nxt - timedelta(days=1))
        if m := _YEAR.match(value):
            y = int(m[1])
            return Period(value, date(y, 1, 1), date(y, 12, 31))
        if (m := _LAST.match(value)) and int(m[1]) >= 1:
            n = int(m[1])
            return Period(value, last_day - timedelta(days=n - 1), last_day)
    except ValueError:
        pass
    raise InvalidArgumentError(
        f"period: {text!r} is not YYYY-MM, YYYY-Qn, YYYY or lastN (e.g. 2025-11, 2025-Q4, last90) / "
        f"周期格式应为 YYYY-MM、YYYY-Qn、YYYY 或 lastN")


def wilson_lower(successes: float, trials: float, z: float) -> float:
    """Lower bound of the Wilson score interval of a proportion (0 without trials)."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - margin) / (1 + z * z / trials))


# ---------------------------------------------------------------------------------------------
# Per-SKU figures (Ibis)
# ---------------------------------------------------------------------------------------------


def _paid_lines(con: Any) -> ir.Table:
    o = paid_orders(con.table("orders")).select(
        o_order="order_id", customer_id="customer_id", ordered_at="ordered_at", order_date="order_date")
    lines = con.table("order_lines")
    j = lines.join(o, lines.order_id == o.o_order)
    return j.select(
        order_id=j.order_id, customer_id=j.customer_id, ordered_at=j.ordered_at, order_date=j.order_date,
        sku=j.sku, quantity=j.quantity.fill_null(0), line_total=j.line_total.fill_null(0),
        refunded=j.refunded_amount.fill_null(0))


def _first_orders(con: Any) -> ir.Table:
    """``f_order, f_date``: each customer's first paid order (earliest time, then smallest id)."""
    o = paid_orders(con.table("orders"))
    earliest = o.group_by(e_customer=o.customer_id).aggregate(first_at=o.ordered_at.min())
    at_first = o.join(earliest, (o.customer_id == earliest.e_customer) & (o.ordered_at == earliest.first_at))
    first = at_first.group_by(c=at_first.customer_id).aggregate(f_order=at_first.order_id.min())
    dated = o.select(d_order="order_id", f_date="order_date")
    j = first.join(dated, first.f_order == dated.d_order)
    return j.select("f_order", "f_date")


def _in(col: ir.Value, start: date, end: date) -> ir.BooleanValue:
    return (col >= ibis.literal(start)) & (col <= ibis.literal(end))


def sku_figures(con: Any, period: Period) -> ir.Table:
    """One row per SKU sold in ``period``: ``sku, orders, buyers, units, revenue, refunded,
    cogs_kept (null without a cost), first_orders, pull_other, pull_total``."""
    lines = _paid_lines(con)
    win = lines.filter(_in(lines.order_date, period.start, period.end))
    first = _first_orders(con).select("f_order")
    win = win.left_join(first, win.order_id == first.f_order)
    products = con.table("products").select(p_sku="sku", p_cost="cost")
    win = win.left_join(products, win.sku == products.p_sku)
    net = win.line_total - win.refunded
    full_cost = (win.quantity * win.p_cost).cast("float64")
    kept = ibis.ifelse(win.line_total > 0, full_cost * net.cast("float64") / win.line_total.cast("float64"),
                       full_cost).round(0).cast("int64")
    t = win.mutate(
        is_first_order=ibis.ifelse(win.f_order.notnull(), win.order_id, ibis.null().cast("string")),
        cogs=ibis.ifelse(win.p_cost.notnull(), kept, ibis.null().cast("int64")),
        costed=ibis.ifelse(win.p_cost.notnull(), 1, 0),
    )
    base = t.group_by("sku").aggregate(
        orders=t.order_id.nunique(), buyers=t.customer_id.nunique(), units=t.quantity.sum(),
        revenue=t.line_total.sum(), refunded=t.refunded.sum(), cogs_kept=t.cogs.sum(),
        costed_lines=t.costed.sum(), first_orders=t.is_first_order.nunique(),
    )
    # Pull-through: every line of a buyer from the first time they bought the SKU in the period.
    t0 = win.group_by(["sku", "customer_id"]).aggregate(t0=win.ordered_at.min())
    later = win.select(c_customer="customer_id", c_at="ordered_at", c_sku="sku", c_amount="line_total")
    j = t0.join(later, (t0.customer_id == later.c_customer) & (later.c_at >= t0.t0))
    pull = j.group_by(pull_sku=j.sku).aggregate(
        pull_total=j.c_amount.sum(),
        pull_other=ibis.ifelse(j.c_sku != j.sku, j.c_amount, 0).sum())
    out = base.left_join(pull, base.sku == pull.pull_sku)
    return out.drop("pull_sku")


def first_order_count(con: Any, period: Period) -> int:
    """First orders (new buyers) placed in ``period``."""
    f = _first_orders(con)
    return int(f.filter(_in(f.f_date, period.start, period.end)).count().execute())


def sku_orders(con: Any, period: Period) -> ir.Table:
    """``sku, orders`` in ``period`` (for growth)."""
    lines = _paid_lines(con)
    win = lines.filter(_in(lines.order_date, period.start, period.end))
    return win.group_by("sku").aggregate(orders=win.order_id.nunique())


def sku_views(con: Any, period: Period) -> ir.Table | None:
    """``sku, views, carts``: distinct sessions viewing / adding each SKU to the cart in ``period``
    (None when the warehouse has no events)."""
    if "events" not in con.list_tables():
        return None
    e = con.table("events")
    e = e.filter(e.sku.notnull() & e.type.isin(["view", "add_to_cart"])
                 & _in(e.event_date, period.start, period.end))
    visit = e.session_id.coalesce(e.event_id)
    e = e.mutate(visit=visit)
    return e.group_by("sku").aggregate(
        views=ibis.ifelse(e.type == "view", e.visit, ibis.null().cast("string")).nunique(),
        carts=ibis.ifelse(e.type == "add_to_cart", e.visit, ibis.null().cast("string")).nunique())


def last_order_date(con: Any) -> date:
    """The latest order date of a paid order (:class:`NoDataError` without orders)."""
    if not {"orders", "order_lines", "products"} <= set(con.list_tables()):
        raise NoDataError("no orders, order lines or products in the warehouse: import them first "
                          "/ 仓库中没有订单、订单明细或商品，请先导入")
    value = paid_orders(con.table("orders")).order_date.max().execute()
    if value is None or pd.isna(value):
        raise NoDataError("no paid orders in the warehouse / 仓库中没有已支付订单")
    return pd.Timestamp(value).date()


def gather(con: Any, period: Period) -> tuple[pd.DataFrame, int]:
    """One row per SKU of the catalogue or sold in ``period`` with every figure, and the number of
    first orders in the period."""
    figures = sku_figures(con, period).execute()
    prev = sku_orders(con, period.previous()).execute().rename(columns={"orders": "orders_before"})
    p = con.table("products")
    catalogue = p.select(sku=p.sku, name=p.name, category=p.category, price=p.price, cost=p.cost,
                         launched_at=p.launched_at).execute()
    frame = catalogue.merge(figures, on="sku", how="outer").merge(prev, on="sku", how="left")
    views = sku_views(con, period)
    if views is not None:
        frame = frame.merge(views.execute(), on="sku", how="left")
    else:
        frame["views"] = pd.NA
        frame["carts"] = pd.NA
    return frame, first_order_count(con, period)


# ---------------------------------------------------------------------------------------------
# Classification (pandas, one row per SKU)
# ---------------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return float(value)


def classify(frame: pd.DataFrame, first_orders: int, period: Period,
             rules: RoleRules | None = None) -> dict[str, Any]:
    """Every SKU's figures, the roles it meets and its role, and the shop-level references."""
    rules = rules or RoleRules()
    rules.check()
    f = frame.copy()
    for col in ("orders", "buyers", "units", "revenue", "refunded", "first_orders", "pull_other",
                "pull_total", "orders_before"):
        f[col] = pd.to_numeric(f[col], errors="coerce").fillna(0).astype("int64")
    for col in ("views", "carts", "cogs_kept", "cost", "costed_lines"):
        f[col] = pd.to_numeric(f[col], errors="coerce") if col in f else float("nan")
    f["net"] = f["revenue"] - f["refunded"]
    costed = f["cost"].notna() & (f["orders"] > 0)
    f["margin"] = (f["net"] - f["cogs_kept"]).where(costed)
    f["margin_rate"] = (f["margin"] / f["net"].where(f["net"] > 0)).where(costed)
    selling = f["orders"] > 0
    n_selling = int(selling.sum())

    # Traffic drivers.
    f["entry_share"] = f["first_orders"] / first_orders if first_orders else 0.0
    mean_entry = float(f.loc[selling, "entry_share"].mean()) if n_selling else 0.0
    f["new_buyer_ratio"] = (f["first_orders"] / f["buyers"].where(f["buyers"] > 0)).fillna(0.0)
    f["pull_through"] = (f["pull_other"] / f["pull_total"].where(f["pull_total"] > 0)).fillna(0.0)
    entry_bar = rules.traffic_entry_lift * mean_entry
    traffic = (selling & (f["entry_share"] >= entry_bar) & (f["entry_share"] > 0)
               & (f["first_orders"] >= rules.traffic_min_first_orders)
               & (f["pull_through"] >= rules.traffic_min_pull_through))

    # Profit makers: the largest margins making the first share of the total, at the shop's rate.
    margin_total = float(f.loc[f["margin"] > 0, "margin"].sum())
    net_costed = float(f.loc[costed, "net"].sum())
    shop_rate = (float(f.loc[costed, "margin"].sum()) / net_costed) if net_costed > 0 else None
    order = f["margin"].where(f["margin"] > 0).sort_values(ascending=False, na_position="last")
    before = order.cumsum() - order  # margin of the larger ones
    head: list[Any] = (list(before[before < rules.profit_margin_share * margin_total].index)
                       if margin_total > 0 else [])
    f["margin_rank_share"] = (before / margin_total) if margin_total > 0 else float("nan")
    profit = pd.Series(False, index=f.index)
    profit.loc[head] = True
    profit &= costed & (f["margin"] > 0)
    if shop_rate is not None:
        profit &= f["margin_rate"] >= shop_rate

    # Potential: converts well from few views, growing.
    viewed = f["views"].notna() & (f["views"] > 0)
    total_views = float(f.loc[viewed, "views"].sum())
    shop_conversion = (float(f.loc[viewed, "orders"].clip(upper=f.loc[viewed, "views"]).sum()) / total_views
                       if total_views else None)
    f["conversion"] = (f["orders"].clip(upper=f["views"]) / f["views"]).where(viewed)
    f["conversion_low"] = [
        wilson_lower(min(o, v), v, rules.potential_z) if ok else float("nan")
        for o, v, ok in zip(f["orders"], f["views"].fillna(0), viewed, strict=True)]
    views_bar = (float(f.loc[viewed, "views"].quantile(rules.potential_max_views_quantile))
                 if viewed.any() else 0.0)
    launched = pd.to_datetime(f["launched_at"], errors="coerce") if "launched_at" in f else None
    began = pd.Timestamp(period.start)
    new_in_period = (launched >= began) if launched is not None else False  # NaT compares False
    f["growth"] = (f["orders"] / f["orders_before"].where(f["orders_before"] > 0) - 1.0)
    orders_now = int(f["orders"].sum())
    orders_then = int(f["orders_before"].sum())
    shop_growth = orders_now / orders_then if orders_then else None
    # Growing = gaining share: orders up by more than the shop's (or launched in the period).
    growing = new_in_period | ((f["orders"] > f["orders_before"] * (shop_growth or 0.0))
                               & (f["orders"] > f["orders_before"]))
    conversion_bar = rules.potential_conversion_lift * (shop_conversion or 1.0)
    potential = (viewed & selling & (f["views"] <= views_bar) & growing
                 & (f["conversion_low"] > conversion_bar))

    # Slow movers and the long tail.
    median_units = float(f.loc[selling, "units"].median()) if n_selling else 0.0
    on_sale_before = ~(launched >= began) if launched is not None else True
    in_catalogue = f["name"].notna()
    slow = in_catalogue & on_sale_before & (f["units"] <= rules.slow_units_ratio * median_units)
    revenue_total = float(f.loc[selling, "revenue"].sum())
    by_rev = f["revenue"].where(selling).sort_values(ascending=False, na_position="last")
    rev_before = by_rev.cumsum() - by_rev
    f["revenue_rank_share"] = (rev_before / revenue_total) if revenue_total > 0 else float("nan")
    tail = selling & (f["revenue_rank_share"] >= 1.0 - rules.long_tail_share)

    flags = {"traffic_driver": traffic, "profit_maker": profit, "potential": potential,
             "slow_mover": slow, "long_tail": tail}
    f["roles"] = [[r for r in ROLES[:-1] if bool(flags[r].loc[i])] for i in f.index]
    f["role"] = [rs[0] if rs else "core" for rs in f["roles"]]
    refs = {
        "first_orders": first_orders, "selling_skus": n_selling, "mean_entry_share": mean_entry,
        "traffic_entry_bar": entry_bar, "margin_total": margin_total, "shop_margin_rate": shop_rate,
        "shop_conversion": shop_conversion, "conversion_bar": conversion_bar,
        "shop_order_growth": None if shop_growth is None else shop_growth - 1.0,
        "views_bar": views_bar, "median_units": median_units,
        "slow_units_bar": rules.slow_units_ratio * median_units, "revenue_total": revenue_total,
    }
    return {"frame": f, "references": refs}


# ---------------------------------------------------------------------------------------------
# Explanations (zh and en) and the answer
# ---------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def explain(row: dict[str, Any], refs: dict[str, Any], rules: RoleRules, exponent: int = 2
            ) -> dict[str, str]:
    """Why the SKU has its role, with the figures and thresholds, in English and Chinese."""
    role = row["role"]
    unit = 10 ** exponent

    def money(v: float | None) -> str:
        return "–" if v is None else f"{v / unit:,.2f}"

    if role == "traffic_driver":
        en = (f"{_pct(row['entry_share'])} of the period's {refs['first_orders']} first orders held it "
              f"(bar {_pct(refs['traffic_entry_bar'])} = {rules.traffic_entry_lift:g}× the average SKU's), "
              f"{_pct(row['new_buyer_ratio'])} of its buyers were new, and {_pct(row['pull_through'])} of "
              f"their spend from then on went to other products (bar {_pct(rules.traffic_min_pull_through)})")
        zh = (f"本期 {refs['first_orders']} 个首单中 {_pct(row['entry_share'])} 含该商品（门槛 "
              f"{_pct(refs['traffic_entry_bar'])}，即平均商品的 {rules.traffic_entry_lift:g} 倍），其买家中 "
              f"{_pct(row['new_buyer_ratio'])} 为新客，此后消费的 {_pct(row['pull_through'])} 花在其他商品上"
              f"（门槛 {_pct(rules.traffic_min_pull_through)}）")
    elif role == "profit_maker":
        en = (f"gross margin {money(row['margin'])} at a {_pct(row['margin_rate'])} rate (shop "
              f"{_pct(refs['shop_margin_rate'])}); among the products making the first "
              f"{_pct(rules.profit_margin_share)} of the period's gross margin")
        zh = (f"毛利 {money(row['margin'])}，毛利率 {_pct(row['margin_rate'])}（全店 "
              f"{_pct(refs['shop_margin_rate'])}）；"
              f"属于贡献本期前 {_pct(rules.profit_margin_share)} 毛利的商品")
    elif role == "potential":
        growth = ("no orders in the period before" if row["growth"] is None
                  else f"orders {_pct(row['growth'])} against the period before")
        growth_zh = "上期无订单" if row["growth"] is None else f"订单较上期 {_pct(row['growth'])}"
        en = (f"{row['orders']} orders from {row['views']} views: conversion {_pct(row['conversion'])}, "
              f"at least {_pct(row['conversion_low'])} (Wilson lower bound) against a bar of "
              f"{_pct(refs['conversion_bar'])} ({rules.potential_conversion_lift:g}× the shop's "
              f"{_pct(refs['shop_conversion'])}), with few views (≤ {refs['views_bar']:g}); {growth}")
        zh = (f"{row['views']} 次浏览带来 {row['orders']} 单：转化率 {_pct(row['conversion'])}，"
              f"下限 {_pct(row['conversion_low'])}（威尔逊区间）高于门槛 {_pct(refs['conversion_bar'])}"
              f"（全店 {_pct(refs['shop_conversion'])} 的 {rules.potential_conversion_lift:g} 倍），"
              f"且浏览少（≤ {refs['views_bar']:g}）；{growth_zh}")
    elif role == "slow_mover":
        en = (f"{row['units']} units sold in the period while on sale throughout (bar "
              f"{refs['slow_units_bar']:g} = {rules.slow_units_ratio:g}× the median product's "
              f"{refs['median_units']:g})")
        zh = (f"在售整期仅售出 {row['units']} 件（门槛 {refs['slow_units_bar']:g}，即中位商品 "
              f"{refs['median_units']:g} 件的 {rules.slow_units_ratio:g} 倍）")
    elif role == "long_tail":
        en = (f"revenue {money(row['revenue'])}: outside the products making the first "
              f"{_pct(1 - rules.long_tail_share)} of revenue")
        zh = f"销售额 {money(row['revenue'])}：不在贡献前 {_pct(1 - rules.long_tail_share)} 销售额的商品之内"
    else:
        en = "a steady seller: none of the other roles' thresholds is met"
        zh = "常规销售：未达到其他角色的门槛"
    if row.get("margin") is None and row["orders"] > 0:
        en += "; no cost in the catalogue, so its margin is unknown and it cannot be a profit maker"
        zh += "；商品资料缺少成本，毛利未知，不判为利润款"
    return {"en": en, "zh": zh}


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


COLUMNS = ("sku", "name", "category", "role", "roles", "orders", "buyers", "units", "revenue", "net",
           "margin", "margin_rate", "first_orders", "entry_share", "new_buyer_ratio", "pull_through",
           "views", "carts", "conversion", "conversion_low", "orders_before", "growth")


def roles(con: Any, period: str = "last90", rules: RoleRules | None = None, exponent: int = 2
          ) -> dict[str, Any]:
    """The product matrix of ``period``: one item per SKU (figures in minor units, role, every role
    it meets, explanation in en and zh), the references the thresholds were drawn from, the
    thresholds, and per role its SKUs with a segment definition of their buyers in the period."""
    rules = rules or RoleRules()
    rules.check()
    p = parse_period(period, last_order_date(con))
    frame, firsts = gather(con, p)
    result = classify(frame, firsts, p, rules)
    f: pd.DataFrame = result["frame"]
    refs = {k: _clean(v) for k, v in result["references"].items()}
    f = f.sort_values(["role", "revenue", "sku"], ascending=[True, False, True],
                      key=lambda s: s.map(ROLES.index) if s.name == "role" else s)
    items = []
    for rec in f.to_dict(orient="records"):
        row = {c: _clean(rec.get(c)) for c in COLUMNS}
        row["roles"] = list(rec["roles"])
        for c in ("orders", "buyers", "units", "revenue", "net", "first_orders", "orders_before"):
            row[c] = int(row[c] or 0)
        for c in ("views", "carts", "margin"):
            row[c] = None if row[c] is None else int(row[c])
        row["explanation"] = explain(row, refs, rules, exponent)
        items.append(row)
    by_role = {r: [i["sku"] for i in items if i["role"] == r] for r in ROLES}
    return {
        "period": {"label": p.label, "start": p.start.isoformat(), "end": p.end.isoformat()},
        "references": refs, "thresholds": asdict(rules), "counts": {r: len(v) for r, v in by_role.items()},
        "skus": by_role, "items": items,
    }


def segment_definition(skus: list[str], period: dict[str, str]) -> dict[str, Any]:
    """A segment definition (``segments``' JSON) of the customers who bought any of ``skus`` in the
    period: usable with ``growthwheel segments create --file`` or the segments API."""
    return {"type": "orders", "measure": "count", "op": ">=", "value": 1, "sku": list(skus),
            "window": {"from": period["start"], "to": period["end"]}}
