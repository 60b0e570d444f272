"""The periodic review (复盘) rendered from a real DuckDB warehouse.

The shop: one paid order a day from 2024-01-01 to 2024-03-31 (shop time), whose product rotates
between three SKUs, plus a cancelled order every week that must never count. In the last week
(Mon 03-25 .. Sun 03-31) a new product, JAR, takes over the snack days: it is the top riser and
the snack the top faller. Expected numbers are computed below from the rows, in plain Python.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.tiny_warehouse import make_warehouse

from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.reports.review import period_label, render_review, review_period

SHOP_TZ = ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2024, 1, 1), date(2024, 3, 31)
REVIEW_WEEK = date(2024, 3, 25)
PRODUCTS = {  # sku: (name, category, price, cost)
    "TEA": ("Oolong tea 乌龙茶", "Tea", 6800, 2500),
    "CUP": ("Glass cup", "Teaware", 3900, 1200),
    "NUT": ("Roasted nuts", "Snacks", 2500, 1000),
    "JAR": ("Tea caddy", "Teaware", 12000, 4000),
}


def _build() -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    orders, lines, paid = [], [], []
    day = FIRST
    n = 0
    while day <= LAST:
        sku = ["TEA", "CUP", "NUT"][n % 3]
        if day >= REVIEW_WEEK and sku == "NUT":
            sku = "JAR"
        qty = 1 + n % 2
        name, _, price, _ = PRODUCTS[sku]
        local = datetime(day.year, day.month, day.day, 20, 30, tzinfo=SHOP_TZ)
        utc = local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        for suffix, status in (("", "paid"), ("x", "cancelled")):
            if suffix and day.weekday() != 2:
                continue  # one cancelled order every Wednesday
            order_id = f"o{n}{suffix}"
            total = qty * price
            orders.append({
                "order_id": order_id, "customer_id": f"c{n % 9}", "ordered_at": utc,
                "order_date": day, "status": status, "channel": ["douyin", "baidu"][n % 2],
                "item_count": qty, "gross_amount": total, "discount_amount": 0,
                "total_amount": total, "shipping_amount": 0, "refunded_amount": 0,
            })
            lines.append({"order_id": order_id, "line_no": 1, "sku": sku, "product_name": name,
                          "quantity": qty, "unit_price": price, "discount_amount": 0,
                          "line_total": total, "refunded_amount": 0})
            if status == "paid":
                paid.append({**orders[-1], "sku": sku})
        day += timedelta(days=1)
        n += 1
    spend = [{"date": FIRST + timedelta(days=i), "channel": "douyin", "spend": 1500}
             for i in range((LAST - FIRST).days + 1)]
    products = [{"sku": k, "name": v[0], "category": v[1], "price": v[2], "cost": v[3]}
                for k, v in PRODUCTS.items()]
    data = {"orders": orders, "order_lines": lines, "ad_spend": spend, "products": products}
    return data, paid


@pytest.fixture(scope="module")
def shop() -> tuple[Any, list[dict[str, Any]]]:
    data, paid = _build()
    return make_warehouse(data), paid


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _charts(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="gw-charts">(.*?)</script>', html,
                      re.DOTALL)
    assert match, "chart data missing"
    charts: dict[str, Any] = json.loads(match.group(1))
    return charts


def _card(html: str, metric: str) -> tuple[str, str]:
    match = re.search(
        rf'data-metric="{metric}".*?<div class="value">([^<]*)</div>.*?class="chg[^"]*">([^<]*)<',
        html, re.DOTALL)
    assert match, metric
    return match.group(1).strip(), " ".join(match.group(2).split())


def _values(series: dict[str, Any]) -> list[float]:
    return [v["value"] if isinstance(v, dict) else v for v in series["data"]]


def test_weekly_review_is_self_contained_and_shows_the_numbers(
    shop: tuple[Any, list[dict[str, Any]]],
) -> None:
    con, paid = shop
    html = render_review(con, period="week", shop_name="Tea & Co 茶铺", currency="CNY")

    # Self-contained: no external script, stylesheet or image; ECharts is inlined.
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["\']?(https?:)?//',
                         html, re.IGNORECASE)
    assert "echarts.init" in html
    assert 'version:"6.' in html  # the vendored ECharts build itself
    assert "Tea &amp; Co 茶铺" in html  # escaped
    assert "2024-03-25 – 2024-03-31" in html  # the last complete week before the last order
    assert "2024-W13" in html

    weekly: dict[date, int] = defaultdict(int)
    weekly_orders: dict[date, int] = defaultdict(int)
    for order in paid:
        weekly[_monday(order["order_date"])] += order["total_amount"]
        weekly_orders[_monday(order["order_date"])] += 1
    gmv_now, gmv_before = weekly[REVIEW_WEEK], weekly[REVIEW_WEEK - timedelta(days=7)]
    value, change = _card(html, "gmv")
    assert value == f"¥{Decimal(gmv_now) / 100:,.2f}"
    rise = (gmv_now - gmv_before) / gmv_before
    assert change == f"{'▲' if rise > 0 else '▼'} {abs(rise) * 100:.1f}%"
    assert _card(html, "orders")[0] == "7"  # one paid order a day; the cancelled one not counted
    spend_now = 7 * 1500
    assert _card(html, "ad_spend") == (f"¥{Decimal(spend_now) / 100:,.2f}", "→ 0.0%")
    douyin_now = sum(o["total_amount"] for o in paid
                     if o["channel"] == "douyin" and _monday(o["order_date"]) == REVIEW_WEEK)
    assert _card(html, "roas")[0] == f"{douyin_now / spend_now:,.2f}"

    charts = _charts(html)
    trend = charts["chart-trend"]
    weeks = [REVIEW_WEEK - timedelta(weeks=11 - i) for i in range(12)]
    assert trend["xAxis"]["data"] == [period_label(w, "week") for w in weeks]
    assert _values(trend["series"][0]) == [weekly[w] / 100 for w in weeks]
    assert trend["series"][1]["data"] == [weekly_orders[w] for w in weeks]
    days = charts["chart-days"]
    assert days["xAxis"]["data"] == [f"03-{d}" for d in range(25, 32)]
    by_day = {o["order_date"]: o["total_amount"] / 100 for o in paid}
    assert _values(days["series"][0]) == [by_day[REVIEW_WEEK + timedelta(days=i)]
                                          for i in range(7)]

    # Breakdowns: both channels and the categories sold in the week.
    assert set(charts["chart-channels"]["yAxis"]["data"]) == {"baidu", "douyin"}
    assert set(charts["chart-categories"]["yAxis"]["data"]) == {"Tea", "Teaware"}
    assert '<td class="name">douyin</td>' in html
    assert '<td class="name">Teaware</td>' in html

    # Top movers: the tea caddy rose most, the nuts fell (no longer sold in the review week).
    rising = html.split('<tbody class="rising">')[1].split("</tbody>")[0]
    falling = html.split('<tbody class="falling">')[1].split("</tbody>")[0]
    assert "Tea caddy" in rising
    assert "Roasted nuts" in falling
    movers = charts["chart-movers"]
    assert "Tea caddy" in movers["yAxis"]["data"]
    jar_gmv = sum(o["total_amount"] for o in paid if o["sku"] == "JAR") / 100
    assert jar_gmv in _values(movers["series"][0])


def test_review_period_choice() -> None:
    # The week ending on as_of counts as complete; otherwise the week before.
    assert review_period(date(2024, 3, 31), "week") == date(2024, 3, 25)
    assert review_period(date(2024, 3, 30), "week") == date(2024, 3, 18)
    assert review_period(date(2024, 3, 31), "month") == date(2024, 3, 1)
    assert review_period(date(2024, 3, 30), "month") == date(2024, 2, 1)
    assert review_period(date(2024, 3, 31), "quarter") == date(2024, 1, 1)
    assert review_period(date(2024, 6, 29), "quarter") == date(2024, 1, 1)


def test_monthly_and_quarterly_reviews(shop: tuple[Any, list[dict[str, Any]]]) -> None:
    con, paid = shop
    feb = render_review(con, period="month", as_of=date(2024, 3, 10), shop_name="S",
                        currency="CNY")
    assert "2024-02-01 – 2024-02-29" in feb
    feb_gmv = sum(o["total_amount"] for o in paid if o["order_date"].month == 2)
    assert _card(feb, "gmv")[0] == f"¥{Decimal(feb_gmv) / 100:,.2f}"
    assert _card(feb, "orders")[0] == "29"
    assert len(_charts(feb)["chart-days"]["xAxis"]["data"]) == 29

    q1 = render_review(con, period="quarter", shop_name="S", currency="USD")
    assert "2024 Q1" in q1
    assert _card(q1, "gmv")[0] == f"${Decimal(sum(o['total_amount'] for o in paid)) / 100:,.2f}"
    assert _card(q1, "gmv")[1] == "–"  # nothing in the quarter before to compare with


def test_nothing_to_review() -> None:
    empty = make_warehouse({})
    with pytest.raises(NoDataError, match="no orders"):
        render_review(empty, period="week", shop_name="S", currency="CNY")
    data, _ = _build()
    con = make_warehouse(data)
    with pytest.raises(NoDataError, match="nothing to review"):
        render_review(con, period="week", as_of=date(2023, 6, 1), shop_name="S", currency="CNY")
    with pytest.raises(InvalidArgumentError, match="review period"):
        render_review(con, period="day", shop_name="S", currency="CNY")
