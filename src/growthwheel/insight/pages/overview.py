"""The Overview page (``/``): KPI cards against the previous period, GMV / orders trend, channel
and category mix, new vs returning buyers, for a date range (the numbers:
:mod:`growthwheel.insight.overview`). Template ``templates/insight/overview.html.j2``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from growthwheel.api.deps import PageUser
from growthwheel.config import Settings
from growthwheel.customers.pages import CHANNEL_KEYS, coded
from growthwheel.insight import overview as ov
from growthwheel.insight.kpis import METRICS, NONE_LABEL
from growthwheel.insight.pages import drill
from growthwheel.kit.money import currency_exponent
from growthwheel.warehouse import db as warehouse_db
from growthwheel.web.i18n import (
    Translator,
    format_change,
    format_count,
    format_money,
    format_ratio,
    k,
)
from growthwheel.web.pages import backend, page_translator, render, shop_of

router = APIRouter(include_in_schema=False)


#: Longest range the Overview computes (days).
MAX_RANGE_DAYS = 1096
METRIC_KEYS = {
    "gmv": k("metric.gmv"),
    "orders": k("metric.orders"),
    "buyers": k("metric.buyers"),
    "aov": k("metric.aov"),
    "new_buyers": k("metric.new_buyers"),
    "repurchase_rate": k("metric.repurchase_rate"),
    "session_conversion_rate": k("metric.session_conversion_rate"),
    "refund_rate": k("metric.refund_rate"),
}
TREND_KEYS = {"day": k("overview.by_day"), "week": k("overview.by_week")}


def _parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class _CardView:
    metric: str
    label_key: str
    value: str
    previous: str
    change: str
    tone: str
    last_year: str = "–"
    yoy: str = "–"
    yoy_tone: str = "neutral"


def _metric_text(name: str, value: Any, currency: str) -> str:
    metric = METRICS[name]
    if metric.unit == "money":
        return format_money(value, currency)
    if metric.unit == "count":
        return format_count(value)
    return format_ratio(value, metric.percent)


def _change(value: Any, before: Any) -> float | None:
    """The relative change from ``before`` to ``value`` (``None`` when either is unknown or
    ``before`` is 0)."""
    if value is None or before is None:
        return None
    try:
        base = float(before)
        return None if base == 0 or base != base else (float(value) - base) / abs(base)
    except (TypeError, ValueError):
        return None


def _chart_data(data: ov.Overview, t: Translator, currency: str,
                narrow: dict[str, str] | None = None) -> dict[str, Any]:
    """What ``app.js`` draws, labels included (so that charts speak the page's language)."""
    return {
        "currency": format_money(0, currency).rstrip("0.,") or currency,
        "labels": {
            "gmv": t("metric.gmv"), "orders": t("metric.orders"),
            "new": t("overview.new_buyers"), "returning": t("overview.returning_buyers"),
            "empty": t("overview.no_data_in_range"),
        },
        "trend": {
            "periods": data.trend_periods, "gmv": data.trend_gmv, "orders": data.trend_orders,
            "new": data.trend_new, "returning": data.trend_returning,
        },
        "channels": [{"name": coded(t, CHANNEL_KEYS, name) or name, "value": float(gmv), "orders": n,
                      "href": _buyers_href(data, t, channel=name, narrow=narrow)}
                     for name, gmv, n in data.channels],
        "categories": [
            {"name": name, "value": float(gmv), "orders": n,
             "href": _buyers_href(data, t, category=name, narrow=narrow)}
            for name, gmv, n in data.categories
        ],
    }


def _buyers_href(data: ov.Overview, t: Translator, *, channel: str | None = None,
                 category: str | None = None, narrow: dict[str, str] | None = None) -> str | None:
    """The customer list of the buyers behind a slice of the channel or category mix: a paid
    order in the range through that channel / holding that category (and the page's filters)."""
    narrow = narrow or {}
    channel = channel or narrow.get("channel")
    category = category or narrow.get("category")
    if channel == NONE_LABEL or category == NONE_LABEL:
        return None
    cond: dict[str, Any] = {"type": "orders", "measure": "count", "op": ">=", "value": 1,
                            "window": {"from": data.start.isoformat(), "to": data.end.isoformat()}}
    if channel:
        cond["channel"] = [channel]
    if category:
        cond["category"] = [category]
    shown = coded(t, CHANNEL_KEYS, channel) if channel else category
    label = f"{shown} · {data.start.isoformat()} – {data.end.isoformat()}"
    return drill.customers_href(cond, data.end, label)


_overviews: OrderedDict[tuple[Any, ...], ov.Overview] = OrderedDict()
_overviews_lock = threading.Lock()
#: Overviews kept in memory (keyed by data directory, range and warehouse version).
OVERVIEW_CACHE_SIZE = 32



def _cached_overview(request: Request, con: Any, start: date, end: date, exponent: int,
                     channel: str = "", category: str = "") -> ov.Overview:
    """:func:`overview.overview` (of the shop narrowed to ``channel`` / ``category``), remembered
    until the warehouse changes (switching language or coming back to the page is then instant)."""
    cfg: Settings = request.app.state.cfg
    key = (str(cfg.data_dir), start, end, exponent, channel, category, warehouse_db.warehouse_version(con))
    with _overviews_lock:
        found = _overviews.get(key)
        if found is not None:
            _overviews.move_to_end(key)
            return found
    data = ov.overview(ov.narrowed(con, channel=channel, category=category), start, end,
                       currency_exponent=exponent)
    with _overviews_lock:
        _overviews[key] = data
        while len(_overviews) > OVERVIEW_CACHE_SIZE:
            _overviews.popitem(last=False)
    return data


_options: dict[tuple[Any, ...], tuple[list[str], list[str]]] = {}


def _cached_options(request: Request, con: Any) -> tuple[list[str], list[str]]:
    """:func:`overview.filter_options`, remembered until the warehouse changes."""
    cfg: Settings = request.app.state.cfg
    key = (str(cfg.data_dir), warehouse_db.warehouse_version(con))
    with _overviews_lock:
        found = _options.get(key)
    if found is None:
        found = ov.filter_options(con)
        with _overviews_lock:
            if len(_options) > OVERVIEW_CACHE_SIZE:
                _options.clear()
            _options[key] = found
    return found


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request,
    user: PageUser,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    days: Annotated[int | None, Query(ge=1, le=MAX_RANGE_DAYS)] = None,
    channel: Annotated[str, Query(max_length=200)] = "",
    category: Annotated[str, Query(max_length=200)] = "",
    compare: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """KPI cards against the previous period and (``compare=last_year``, computed on request) the
    same period last year, GMV / orders trend,
    channel and category mix, new vs returning buyers, for a date range (default: the last 30 days
    with data), for the whole shop or one channel and / or category."""
    t = page_translator(request)
    shop = shop_of(request)
    exponent = currency_exponent(shop.currency)
    with backend(request) as con:
        last_day = ov.last_day_with_data(con)
        if last_day is None:
            return render(request, "insight/overview.html.j2", {"ov": None}, user=user)
        if start is None and end is None and days is None:
            days = ov.DEFAULT_DAYS
        first, last = ov.resolve_range(_parse_day(start), _parse_day(end), days, last_day)
        if (last - first).days >= MAX_RANGE_DAYS:
            first = last - timedelta(days=MAX_RANGE_DAYS - 1)
        channels, categories = _cached_options(request, con)
        channel = channel.strip() if channel.strip() in channels else ""
        category = category.strip() if category.strip() in categories else ""
        data = _cached_overview(request, con, first, last, exponent, channel, category)
        yoy_wanted = compare == "last_year"
        last_year = _cached_overview(request, con, ov.year_before(first), ov.year_before(last), exponent,
                                     channel, category) if yoy_wanted else None
    before = {c.metric: c.value for c in last_year.cards} if last_year else {}
    cards = []
    for c in data.cards:
        better = METRICS[c.metric].higher_is_better
        change, tone = format_change(c.change, better)
        yoy, yoy_tone = format_change(_change(c.value, before.get(c.metric)), better)
        cards.append(_CardView(
            c.metric, METRIC_KEYS[c.metric], _metric_text(c.metric, c.value, shop.currency),
            _metric_text(c.metric, c.previous, shop.currency), change, tone,
            _metric_text(c.metric, before.get(c.metric), shop.currency), yoy, yoy_tone,
        ))
    narrow = {k_: v for k_, v in (("channel", channel), ("category", category),
                                  ("compare", "last_year" if yoy_wanted else "")) if v}
    presets = [
        {"days": n, "href": "/?" + urlencode({"days": n, **narrow}),
         "active": last == last_day and (last - first).days + 1 == n}
        for n in ov.PRESETS
    ]
    context = {
        "ov": data,
        "cards": cards,
        "presets": presets,
        "trend_by_key": TREND_KEYS[data.trend_by],
        "new_buyers": format_count(data.new_buyers),
        "returning_buyers": format_count(data.returning_buyers),
        "chart_data": _chart_data(data, t, shop.currency, {"channel": channel, "category": category}),
        "last_year": last_year,
        "compare_href": "/?" + urlencode({"start": first.isoformat(), "end": last.isoformat(),
                                          **{k_: v for k_, v in narrow.items() if k_ != "compare"},
                                          **({} if yoy_wanted else {"compare": "last_year"})}),
        "channels": [{"value": c, "name": coded(t, CHANNEL_KEYS, c) or c} for c in channels],
        "categories": categories, "channel": channel, "category": category,
    }
    return render(request, "insight/overview.html.j2", context, user=user)

