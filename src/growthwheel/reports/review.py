"""The periodic review (复盘): one self-contained HTML page for a week, month or quarter.

It covers the last complete period on or before ``as_of``. It shows KPI cards with the change
against the previous period, a trend over the last 12 periods, the days of the period, the
channel and category breakdowns and the top movers (products and categories whose GMV rose or fell
most). The numbers come from :mod:`growthwheel.insight.kpis`. The charts are ECharts options
embedded as JSON, and ECharts itself is inlined, so the file opens without a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

import jinja2
import pandas as pd

from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.insight.kpis import (
    METRICS,
    NONE_LABEL,
    Metric,
    gmv_by_product,
    kpi_frame,
    period_end,
    period_start,
    shift_period,
)
from growthwheel.kit.money import currency_exponent

REVIEW_PERIODS = ("week", "month", "quarter")
TREND_PERIODS = 12
TOP_MOVERS = 5
TOP_CATEGORIES = 12

_TITLES = {
    "week": ("Weekly review", "周度复盘"),
    "month": ("Monthly review", "月度复盘"),
    "quarter": ("Quarterly review", "季度复盘"),
}
_SYMBOLS = {"CNY": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$", "TWD": "NT$"}
_PALETTE = {"gmv": "#2f6fde", "current": "#e8590c", "orders": "#2b8a3e", "spend": "#adb5bd",
            "up": "#2b8a3e", "down": "#c92a2a", "prev": "#c5d4f2"}


# --------------------------------------------------------------------------------------------
# Pure helpers: which period, labels, formatting
# --------------------------------------------------------------------------------------------


def review_period(as_of: date, period: str) -> date:
    """Start of the last complete ``period`` ending on or before ``as_of`` (as_of counts as done)."""
    start = period_start(as_of, period)
    if period_end(start, period) > as_of:
        start = shift_period(start, period, -1)
    return start


def period_label(start: date, period: str) -> str:
    """Short label of a period: ``2024-W02``, ``2024-01``, ``2024 Q1`` or ``2024-01-08``."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{start:%Y-%m}"
    if period == "quarter":
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    return start.isoformat()


def format_value(metric: Metric, value: Any, currency: str) -> str:
    """A metric's value as shown on a card or in a table (``–`` when undefined)."""
    if value is None:
        return "–"
    if metric.unit == "money":
        exponent = currency_exponent(currency)
        symbol = _SYMBOLS.get(currency, currency + " ")
        return f"{symbol}{Decimal(value):,.{exponent}f}"
    if metric.unit == "count":
        return f"{int(value):,}"
    if metric.percent:
        return f"{float(value) * 100:.1f}%"
    return f"{float(value):,.2f}"


@dataclass(frozen=True)
class Change:
    """A period-over-period change as shown: text, arrow and whether it is good news."""

    text: str
    arrow: str
    tone: str  # "good", "bad", "neutral" or "none"


def describe_change(metric: Metric, change: float | None) -> Change:
    """How a relative change reads on a card: ``▲ 12.5%`` in green when a rise is good news."""
    if change is None:
        return Change("–", "", "none")
    if change == 0:
        return Change("0.0%", "→", "neutral")
    arrow = "▲" if change > 0 else "▼"
    if metric.higher_is_better is None:
        tone = "neutral"
    else:
        tone = "good" if (change > 0) == metric.higher_is_better else "bad"
    return Change(f"{abs(change) * 100:.1f}%", arrow, tone)


def _num(value: Any) -> float | None:
    """A value for chart data: float, or None where undefined."""
    if value is None:
        return None
    return float(value)


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict(orient="records")]


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _movers(
    rows: list[dict[str, Any]], key: str, current: date, previous: date, label: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Items whose GMV rose or fell most from ``previous`` to ``current`` (absolute change)."""
    gmv: dict[Any, dict[date, Decimal]] = {}
    names: dict[Any, str] = {}
    for r in rows:
        gmv.setdefault(r[key], {})[r["period"]] = r["gmv"] or Decimal(0)
        names[r[key]] = str(r[label]) if label else str(r[key])
    movers = []
    for item, by_period in gmv.items():
        now, before = by_period.get(current, Decimal(0)), by_period.get(previous, Decimal(0))
        delta = now - before
        if delta:
            change = float(delta / before) if before else None
            movers.append({"key": item, "name": names[item], "now": now, "before": before,
                           "delta": delta, "change": change})
    rising = sorted((m for m in movers if m["delta"] > 0), key=lambda m: (-m["delta"], m["name"]))
    falling = sorted((m for m in movers if m["delta"] < 0), key=lambda m: (m["delta"], m["name"]))
    return {"rising": rising[:TOP_MOVERS], "falling": falling[:TOP_MOVERS]}


def _bar_line_option(labels: list[str], gmv: list[Any], orders: list[Any],
                     highlight: int | None) -> dict[str, Any]:
    """ECharts option: GMV bars (one highlighted) and an orders line on a second axis."""
    bars = [
        {"value": v, "itemStyle": {"color": _PALETTE["current"]}} if i == highlight else v
        for i, v in enumerate(gmv)
    ]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["GMV 成交额", "Orders 订单数"], "top": 0},
        "grid": {"left": 70, "right": 60, "top": 40, "bottom": 40},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": [{"type": "value", "name": "GMV"}, {"type": "value", "name": "Orders"}],
        "series": [
            {"name": "GMV 成交额", "type": "bar", "data": bars,
             "itemStyle": {"color": _PALETTE["gmv"]}},
            {"name": "Orders 订单数", "type": "line", "yAxisIndex": 1, "data": orders,
             "itemStyle": {"color": _PALETTE["orders"]}, "smooth": False},
        ],
    }


def _hbar_option(
    names: list[str], series: list[dict[str, Any]], *, legend: bool = True
) -> dict[str, Any]:
    """ECharts option: horizontal bars, first name at the top."""
    return {
        "animation": False,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "legend": {"top": 0, "show": legend},
        "grid": {"left": 130, "right": 40, "top": 36 if legend else 12, "bottom": 24},
        "xAxis": {"type": "value"},
        "yAxis": {"type": "category", "data": names[::-1], "axisLabel": {"width": 120,
                                                                          "overflow": "truncate"}},
        "series": [{**s, "type": "bar", "data": s["data"][::-1]} for s in series],
    }


def _breakdown(rows: list[dict[str, Any]], key: str, current: date) -> list[dict[str, Any]]:
    """The current period's rows of a breakdown, by GMV descending (``(none)`` last)."""
    now = [r for r in rows if r["period"] == current]
    return sorted(now, key=lambda r: (r[key] == NONE_LABEL, -(r["gmv"] or 0), str(r[key])))


def review_context(
    con: Any, *, period: str, as_of: date | None, shop_name: str, currency: str
) -> dict[str, Any]:
    """Everything the review template shows (plain values and chart options)."""
    if period not in REVIEW_PERIODS:
        raise InvalidArgumentError(
            f"unknown review period {period!r}; choose one of: {', '.join(REVIEW_PERIODS)}"
        )
    exponent = currency_exponent(currency)
    if as_of is None:
        last = con.table("orders").order_date.max().execute()
        if last is None or pd.isna(last):
            raise NoDataError("no orders in the warehouse: import some before writing a review")
        as_of = pd.Timestamp(last).date()
    current = review_period(as_of, period)
    previous = shift_period(current, period, -1)
    end = period_end(current, period)
    first_trend = shift_period(current, period, -(TREND_PERIODS - 1))

    trend = {r["period"]: r for r in _rows(kpi_frame(
        con, by=period, start=first_trend, end=end, currency_exponent=exponent))}
    trend_periods = [shift_period(first_trend, period, i) for i in range(TREND_PERIODS)]
    now = trend.get(current)
    if now is None:
        raise NoDataError(
            f"nothing recorded in {period_label(current, period)} ({current} – {end}): "
            "nothing to review"
        )
    before = trend.get(previous)

    cards = []
    for name, metric in METRICS.items():
        cards.append({
            "name": name, "label_en": metric.label_en, "label_zh": metric.label_zh,
            "value": format_value(metric, now[name], currency),
            "previous": format_value(metric, before[name], currency) if before else "–",
            "change": describe_change(metric, now[f"{name}_change"]),
            "formula": metric.formula,
        })

    days = {r["period"]: r for r in _rows(kpi_frame(
        con, by="day", start=current, end=end, currency_exponent=exponent))}
    day_list = [shift_period(current, "day", i) for i in range((end - current).days + 1)]

    channels = _rows(kpi_frame(con, by=period, start=previous, end=end, dimension="channel",
                               currency_exponent=exponent))
    categories = _rows(kpi_frame(con, by=period, start=previous, end=end, dimension="category",
                                 currency_exponent=exponent))
    products = _rows(gmv_by_product(con, by=period, start=previous, end=end,
                                    currency_exponent=exponent))
    channel_now = _breakdown(channels, "channel", current)
    category_now = _breakdown(categories, "category", current)
    category_prev = {r["category"]: r["gmv"] for r in categories if r["period"] == previous}
    product_movers = _movers(products, "sku", current, previous, label="name")
    category_movers = _movers(categories, "category", current, previous)

    movers_chart = product_movers["rising"] + product_movers["falling"][::-1]
    charts = {
        "chart-trend": _bar_line_option(
            [period_label(p, period) for p in trend_periods],
            [_num(trend[p]["gmv"]) if p in trend else 0 for p in trend_periods],
            [trend[p]["orders"] if p in trend else 0 for p in trend_periods],
            highlight=TREND_PERIODS - 1,
        ),
        "chart-days": _bar_line_option(
            [f"{d:%m-%d}" for d in day_list],
            [_num(days[d]["gmv"]) if d in days else 0 for d in day_list],
            [days[d]["orders"] if d in days else 0 for d in day_list],
            highlight=None,
        ),
        "chart-channels": _hbar_option(
            [str(r["channel"]) for r in channel_now],
            [{"name": "GMV 成交额", "data": [_num(r["gmv"]) for r in channel_now],
              "itemStyle": {"color": _PALETTE["gmv"]}},
             {"name": "Ad spend 广告花费", "data": [_num(r["ad_spend"]) for r in channel_now],
              "itemStyle": {"color": _PALETTE["spend"]}}],
        ),
        "chart-categories": _hbar_option(
            [str(r["category"]) for r in category_now[:TOP_CATEGORIES]],
            [{"name": f"{period_label(current, period)}",
              "data": [_num(r["gmv"]) for r in category_now[:TOP_CATEGORIES]],
              "itemStyle": {"color": _PALETTE["gmv"]}},
             {"name": f"{period_label(previous, period)}",
              "data": [_num(category_prev.get(r["category"]))
                       for r in category_now[:TOP_CATEGORIES]],
              "itemStyle": {"color": _PALETTE["prev"]}}],
        ),
        "chart-movers": _hbar_option(
            [m["name"] for m in movers_chart],
            [{"name": "GMV change 成交额变化",
              "data": [{"value": _num(m["delta"]), "itemStyle": {
                  "color": _PALETTE["up"] if m["delta"] > 0 else _PALETTE["down"]}}
                  for m in movers_chart]}],
            legend=False,
        ),
    }

    def cells(row: dict[str, Any], names: list[str]) -> dict[str, str]:
        return {n: format_value(METRICS[n], row[n], currency) for n in names}

    channel_cols = ["gmv", "orders", "buyers", "new_buyers", "aov", "ad_spend", "cac", "roas",
                    "refund_rate"]
    category_cols = ["gmv", "orders", "buyers", "items_per_order", "aov", "refund_rate",
                     "discount_rate", "gross_margin"]
    title_en, title_zh = _TITLES[period]
    return {
        "title_en": title_en,
        "title_zh": title_zh,
        "shop_name": shop_name,
        "currency": currency,
        "period": period,
        "label": period_label(current, period),
        "start": current,
        "end": end,
        "previous_label": period_label(previous, period),
        "previous_start": previous,
        "previous_end": period_end(previous, period),
        "as_of": as_of,
        "cards": cards,
        "channel_columns": [METRICS[n] for n in channel_cols],
        "channels": [{"name": r["channel"], "cells": cells(r, channel_cols),
                      "change": describe_change(METRICS["gmv"], r["gmv_change"])}
                     for r in channel_now],
        "category_columns": [METRICS[n] for n in category_cols],
        "categories": [{"name": r["category"], "cells": cells(r, category_cols),
                        "change": describe_change(METRICS["gmv"], r["gmv_change"])}
                       for r in category_now],
        "movers": {"products": product_movers, "categories": category_movers},
        "gmv_metric": METRICS["gmv"],
        "charts": charts,
        "metrics": list(METRICS.values()),
    }


def _echarts_source() -> str:
    """The vendored ECharts build, safe to inline in a ``<script>`` element."""
    path = resources.files("growthwheel").joinpath("web/static/vendor/echarts.min.js")
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("growthwheel.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def money(value: Any, currency: str) -> str:
        return format_value(METRICS["gmv"], value, currency)

    def signed_money(value: Any, currency: str) -> str:
        sign = "+" if value > 0 else "−" if value < 0 else ""
        return sign + money(abs(value), currency)

    def change(value: float | None) -> str:
        return "new" if value is None else f"{value * 100:+.1f}%"

    env.filters["money"] = money
    env.filters["signed_money"] = signed_money
    env.filters["change"] = change
    return env


def render_review(
    con: Any,
    *,
    period: str = "week",
    as_of: date | None = None,
    shop_name: str,
    currency: str,
    cfg: Any = None,
) -> str:
    """The periodic review (复盘) as one self-contained HTML page.

    ``con`` is an Ibis backend over the warehouse; ``period`` is ``week``, ``month`` or
    ``quarter``; the review covers the last complete period that ends on or before ``as_of``
    (default: the last shop-local date with an order). Money is shown in ``currency``'s major
    units. Raises ``NoDataError`` when there is nothing to review.
    With ``cfg`` (the settings of the shop's data directory) the review
    lists the alerts of the period from the operational store, and each survey's NPS. The voice of
    the customer (reviews, negative share, SKUs and aspects getting worse) comes from the warehouse.
    """
    context = review_context(con, period=period, as_of=as_of, shop_name=shop_name,
                             currency=currency)
    from growthwheel.voice.feedback import period_section

    context["voice"] = period_section(con, context["start"], context["end"])
    if cfg is not None:
        from growthwheel.alerts.inbox import report_rows

        context["alerts"] = report_rows(cfg, context["start"], context["end"])
        from growthwheel.surveys.service import review_rows

        context["nps"] = review_rows(cfg, context["start"], context["end"])
    template = _environment().get_template("review.html.j2")
    return template.render(**context, echarts_js=_echarts_source())
