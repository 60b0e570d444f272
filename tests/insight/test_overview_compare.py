"""The Overview narrowed to a channel or a category, and compared with the same period last year
(``insight.overview``): every number worked out by hand from the rows below (money in fen)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from growthwheel.insight import overview as ov
from tiny_warehouse import make_warehouse


def order(order_id: str, customer: str, day: date, total: int, channel: str) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": customer, "order_date": day,
            "ordered_at": datetime(day.year, day.month, day.day, 4, tzinfo=UTC).replace(tzinfo=None),
            "status": "paid", "total_amount": total, "refunded_amount": 0, "currency": "CNY",
            "channel": channel}


def line(order_id: str, no: int, sku: str, total: int, category: str | None) -> dict[str, Any]:
    return {"order_id": order_id, "line_no": no, "sku": sku, "quantity": 1, "line_total": total,
            "unit_price": total, "category": category}


ORDERS = [
    order("A1", "c1", date(2025, 3, 5), 10_000, "小红书"),
    order("A2", "c2", date(2025, 3, 6), 5_000, "抖音"),
    order("A3", "c1", date(2025, 3, 9), 3_000, "抖音"),
    order("L1", "c3", date(2024, 3, 6), 7_000, "抖音"),  # the same days a year before
    order("L2", "c1", date(2024, 3, 8), 2_000, "小红书"),
]
LINES = [
    line("A1", 1, "T1", 6_000, "茶叶/绿茶"), line("A1", 2, "P1", 4_000, "茶具"),
    line("A2", 1, "P1", 5_000, None),  # the catalogue says 茶具
    line("A3", 1, "T1", 3_000, "茶叶/绿茶"),
    line("L1", 1, "T1", 7_000, "茶叶"), line("L2", 1, "P1", 2_000, "茶具"),
]
PRODUCTS = [{"sku": "T1", "name": "绿茶", "category": "茶叶/绿茶"},
            {"sku": "P1", "name": "茶壶", "category": "茶具"}]
START, END = date(2025, 3, 1), date(2025, 3, 10)


def _cards(con: Any, start: date = START, end: date = END) -> dict[str, Any]:
    return {c.metric: c.value for c in ov.overview(con, start, end).cards}


def test_channel_and_category_narrow_the_overview_and_last_year_is_the_same_days() -> None:
    con = make_warehouse({"orders": ORDERS, "order_lines": LINES, "products": PRODUCTS})
    whole = _cards(con)
    assert (float(whole["gmv"]), whole["orders"], whole["buyers"]) == (180.0, 3, 2)
    douyin = _cards(ov.narrowed(con, channel="抖音"))
    assert (float(douyin["gmv"]), douyin["orders"], douyin["buyers"]) == (80.0, 2, 2)
    teaware = ov.narrowed(con, category="茶具")  # A1 (a line of it) and A2 (by the catalogue)
    cards = _cards(teaware)
    assert (cards["orders"], cards["buyers"]) == (2, 2)
    assert [name for name, _gmv, _n in ov.overview(teaware, START, END).categories] == ["茶具"]
    tea = _cards(ov.narrowed(con, category="茶叶"))  # 茶叶 covers 茶叶/绿茶: A1 and A3
    assert tea["orders"] == 2
    both = _cards(ov.narrowed(con, channel="抖音", category="茶叶"))
    assert both["orders"] == 1
    last = _cards(con, ov.year_before(START), ov.year_before(END))
    assert (float(last["gmv"]), last["orders"]) == (90.0, 2)
    assert ov.year_before(date(2024, 2, 29)) == date(2023, 2, 28)
    channels, categories = ov.filter_options(con)
    assert channels == ["小红书", "抖音"]
    assert categories == ["茶具", "茶叶"]
