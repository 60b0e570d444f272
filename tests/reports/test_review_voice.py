"""The periodic review's voice-of-the-customer section (issue 16 item 6), on a hand-made shop: the
review week 2024-03-25 … 31 has four reviews of which two are 1–2 stars about the tea's quality,
the week before two five-star ones praising it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from growthwheel.reports.review import render_review
from tiny_warehouse import make_warehouse

WEEK = date(2024, 3, 25)


def _order(i: int, day: date) -> dict[str, Any]:
    at = datetime(day.year, day.month, day.day, 4, tzinfo=UTC).replace(tzinfo=None)
    return {"order_id": f"o{i}", "customer_id": f"c{i}", "ordered_at": at, "order_date": day,
            "status": "paid", "channel": "web", "currency": "CNY", "item_count": 1, "gross_amount": 5000,
            "discount_amount": 0, "total_amount": 5000, "shipping_amount": 0, "refunded_amount": 0}


def _review(i: int, sku: str, day: date, rating: int, body: str) -> dict[str, Any]:
    return {"review_id": f"r{i}", "sku": sku, "rating": rating, "body": body, "language": "zh",
            "created_at": datetime(day.year, day.month, day.day, 6, tzinfo=UTC).replace(tzinfo=None),
            "review_date": day}


def test_the_review_hears_the_customers() -> None:
    orders = [_order(i, WEEK - timedelta(days=14) + timedelta(days=i)) for i in range(21)]
    reviews = [
        _review(1, "TEA-1", WEEK - timedelta(days=5), 5, "质量很好，做工精细"),
        _review(2, "TEA-1", WEEK - timedelta(days=4), 5, "质量不错，很满意"),
        _review(3, "TEA-1", WEEK + timedelta(days=1), 1, "质量太差了，做工粗糙"),
        _review(4, "TEA-1", WEEK + timedelta(days=2), 2, "质量很差，有异味"),
        _review(5, "CUP-1", WEEK + timedelta(days=3), 5, "包装很好"),
        _review(6, "CUP-1", WEEK + timedelta(days=4), 4, "物流很快"),
    ]
    con = make_warehouse({"orders": orders, "reviews": reviews})
    html = render_review(con, period="week", as_of=date(2024, 4, 1), shop_name="S", currency="CNY")
    assert "2024-03-25 – 2024-03-31" in html
    section = html[html.index('id="voice"'):html.index('id="voice-aspects"') + 2000]
    rows = [re.sub(r"<[^>]+>", " ", r).split() for r in re.findall(r"<tr><td>(.*?)</tr>", section, re.S)]
    assert rows[0][-4:] == ["4", "3.00", "2", "50.0%"]  # this period: 4 reviews, 2 negative
    assert rows[1][-4:] == ["2", "5.00", "0", "0.0%"]  # the week before
    assert rows[2] == ["TEA-1", "2", "2", "1.50"]  # the SKU with the most negative reviews
    aspects = section[section.index('id="voice-aspects"'):]
    assert "TEA-1" in aspects
    assert "Quality" in aspects
    assert "质量" in aspects
    assert "100% (2/2)" in aspects


def test_no_reviews_no_section() -> None:
    orders = [_order(i, WEEK - timedelta(days=7) + timedelta(days=i)) for i in range(14)]
    con = make_warehouse({"orders": orders})
    html = render_review(con, period="week", as_of=date(2024, 4, 1), shop_name="S", currency="CNY")
    assert 'id="voice"' not in html
