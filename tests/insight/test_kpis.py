"""The KPI catalogue on a real DuckDB warehouse.

A tiny shop whose KPIs are worked out by hand below, then a randomised shop checked against an
independent pandas computation written from the definitions (not from the Ibis code).
"""

from __future__ import annotations

import json
import math
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.kpis import (
    METRICS,
    frame_columns,
    kpi_frame,
    kpi_records,
    period_end,
    period_start,
    shift_period,
)
from growthwheel.warehouse import schema
from tiny_warehouse import make_warehouse

SHOP_TZ = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")
PAID = set(schema.PAID_STATUSES)




def local_date(at: datetime) -> date:
    """The shop-local date of an aware time (what the import stores as order_date)."""
    return at.astimezone(SHOP_TZ).date()


def naive_utc(at: datetime) -> datetime:
    """An aware time as the naive UTC wall time the warehouse stores."""
    return at.astimezone(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------
# The hand-built shop. Week 1 = Mon 2024-01-01 .. Sun 01-07, week 2 = 01-08 .. 01-14 (shop time).
# Products: TEA (Tea, cost 20.00), CUP (Teaware, cost 15.00), GIFT (no category, no cost).
# ---------------------------------------------------------------------------------------------


def _order(
    order_id: str, customer: str, at: datetime, status: str, channel: str | None,
    lines: list[tuple[str, str | None, int, int, int, int]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An order and its lines; a line is (sku, line category, qty, unit price, discount, refunded)."""
    line_rows = []
    for n, (sku, category, qty, price, discount, refunded) in enumerate(lines, start=1):
        line_rows.append({
            "order_id": order_id, "line_no": n, "sku": sku, "category": category,
            "quantity": qty, "unit_price": price, "discount_amount": discount,
            "line_total": qty * price - discount, "refunded_amount": refunded,
        })
    total = sum(r["line_total"] for r in line_rows)
    discount = sum(r["discount_amount"] for r in line_rows)
    order = {
        "order_id": order_id, "customer_id": customer, "ordered_at": naive_utc(at),
        "order_date": local_date(at), "status": status, "channel": channel, "currency": "CNY",
        "item_count": sum(r["quantity"] for r in line_rows), "gross_amount": total + discount,
        "discount_amount": discount, "total_amount": total, "shipping_amount": 1000,
        "refunded_amount": sum(r["refunded_amount"] for r in line_rows),
    }
    return order, line_rows


def _event(n: int, kind: str, local: datetime, session: str | None,
           customer: str | None = None, anonymous: str | None = None) -> dict[str, Any]:
    return {"event_id": f"e{n}", "type": kind, "occurred_at": naive_utc(local),
            "event_date": local.date(),
            "session_id": session, "customer_id": customer, "anonymous_id": anonymous}


def tiny_shop() -> dict[str, list[dict[str, Any]]]:
    """The hand-built shop; every expected number in the tests below is worked out from it."""
    orders_and_lines = [
        # week 1
        _order("o1", "alice", datetime(2024, 1, 2, 2, tzinfo=UTC), "paid", "douyin",
               [("TEA", "Tea", 2, 5000, 1000, 0)]),
        _order("o2", "bob", datetime(2024, 1, 3, 4, tzinfo=UTC), "completed", "baidu",
               [("CUP", None, 1, 8000, 0, 0), ("GIFT", "Gifts", 1, 2000, 0, 0)]),
        _order("o3", "carol", datetime(2024, 1, 4, 5, tzinfo=UTC), "cancelled", "douyin",
               [("TEA", "Tea", 1, 5000, 0, 0)]),
        _order("o1b", "alice", datetime(2024, 1, 5, 6, tzinfo=UTC), "shipped", None,
               [("CUP", None, 1, 8000, 0, 0)]),
        # Sunday 17:30 UTC is Monday 01:30 in Shanghai: week 2.
        _order("o4", "alice", datetime(2024, 1, 7, 17, 30, tzinfo=UTC), "partially_refunded", "douyin",
               [("TEA", "Tea", 2, 5000, 0, 5000), ("CUP", None, 1, 8000, 0, 0)]),
        # week 2
        _order("o5", "bob", datetime(2024, 1, 9, 3, tzinfo=UTC), "refunded", "baidu",
               [("GIFT", None, 1, 2000, 0, 2000)]),
        _order("o6", "carol", datetime(2024, 1, 10, 3, tzinfo=UTC), "paid", "douyin",
               [("TEA", "Tea", 1, 5000, 500, 0)]),
        _order("o7", "dave", datetime(2024, 1, 12, 3, tzinfo=UTC), "pending", "douyin",
               [("TEA", "Tea", 1, 5000, 0, 0)]),
    ]
    events = [
        # week 1: s1 converts; s2 browses; bob's session-less events on 01-03 (converts);
        # an anonymous session-less view on 01-05; s5 starts Sunday 23:50 and buys after midnight.
        _event(1, "view", datetime(2024, 1, 2, 10, tzinfo=SHOP_TZ), "s1", "alice"),
        _event(2, "add_to_cart", datetime(2024, 1, 2, 10, 5, tzinfo=SHOP_TZ), "s1", "alice"),
        _event(3, "purchase", datetime(2024, 1, 2, 10, 9, tzinfo=SHOP_TZ), "s1", "alice"),
        _event(4, "view", datetime(2024, 1, 3, 11, tzinfo=SHOP_TZ), "s2", None, "a1"),
        _event(5, "view", datetime(2024, 1, 3, 12, tzinfo=SHOP_TZ), None, "bob"),
        _event(6, "purchase", datetime(2024, 1, 3, 12, 30, tzinfo=SHOP_TZ), None, "bob"),
        _event(7, "view", datetime(2024, 1, 5, 9, tzinfo=SHOP_TZ), None, None, "a2"),
        _event(8, "view", datetime(2024, 1, 7, 23, 50, tzinfo=SHOP_TZ), "s5", "alice"),
        _event(9, "purchase", datetime(2024, 1, 8, 0, 10, tzinfo=SHOP_TZ), "s5", "alice"),
        # week 2: s3 converts, s4 does not.
        _event(10, "view", datetime(2024, 1, 10, 9, tzinfo=SHOP_TZ), "s3", "carol"),
        _event(11, "purchase", datetime(2024, 1, 10, 9, 20, tzinfo=SHOP_TZ), "s3", "carol"),
        _event(12, "view", datetime(2024, 1, 11, 9, tzinfo=SHOP_TZ), "s4", None, "a3"),
    ]
    return {
        "products": [
            {"sku": "TEA", "name": "Oolong", "category": "Tea", "price": 5000, "cost": 2000},
            {"sku": "CUP", "name": "Cup", "category": "Teaware", "price": 8000, "cost": 1500},
            {"sku": "GIFT", "name": "Gift box", "category": None, "price": 2000, "cost": None},
        ],
        "orders": [o for o, _ in orders_and_lines],
        "order_lines": [line for _, lines in orders_and_lines for line in lines],
        "events": events,
        "ad_spend": [
            {"date": date(2023, 12, 31), "channel": "douyin", "spend": 999},
            {"date": date(2024, 1, 2), "channel": "douyin", "spend": 10000},
            {"date": date(2024, 1, 3), "channel": "baidu", "spend": 5000},
            {"date": date(2024, 1, 9), "channel": "douyin", "spend": 20000},
            {"date": date(2024, 1, 14), "channel": "douyin", "spend": 1000},
        ],
    }


@pytest.fixture(scope="module")
def shop() -> Any:
    return make_warehouse(tiny_shop())


W0, W1, W2 = date(2023, 12, 25), date(2024, 1, 1), date(2024, 1, 8)


def _by(df: pd.DataFrame, key: str | None = None) -> dict[Any, dict[str, Any]]:
    """Rows keyed by period, or by (period, dimension value)."""
    rows = df.to_dict(orient="records")
    if key is None:
        return {r["period"]: r for r in rows}
    return {(r["period"], r[key]): r for r in rows}


def test_weekly_kpis_worked_out_by_hand(shop: Any) -> None:
    df = kpi_frame(shop, by="week")
    assert list(df.columns) == frame_columns()
    rows = _by(df)
    # The week before only has ad spend; it is there so week 1 has a change for spend.
    assert list(rows) == [W0, W1, W2]
    w0 = rows[W0]
    assert (w0["orders"], w0["gmv"], w0["ad_spend"], w0["aov"]) == (0, Decimal("0.00"),
                                                                    Decimal("9.99"), None)

    w1 = rows[W1]
    # o1 (90.00) + o2 (100.00) + o1b (80.00); o3 is cancelled; o4 is Monday in shop time.
    assert (w1["orders"], w1["buyers"], w1["new_buyers"]) == (3, 2, 2)
    assert (w1["gmv"], w1["net_revenue"]) == (Decimal("270.00"), Decimal("270.00"))
    assert w1["aov"] == Decimal("90.00")
    assert w1["new_buyer_share"] == 1.0
    assert w1["items_per_order"] == pytest.approx(5 / 3)
    assert w1["repurchase_rate"] == 0.5  # alice bought twice, bob once
    assert (w1["sessions"], w1["session_conversion_rate"]) == (5, 0.6)
    assert w1["refund_rate"] == 0.0
    assert w1["discount_rate"] == pytest.approx(1000 / 28000)
    # Costed lines: o1 TEA 90.00 - 2x20, o2 CUP 80.00 - 15, o1b CUP 80.00 - 15 (GIFT has no cost).
    assert w1["gross_margin"] == pytest.approx((25000 - 7000) / 25000)
    assert w1["ad_spend"] == Decimal("150.00")
    assert w1["cac"] == Decimal("75.00")
    assert w1["roas"] == pytest.approx(19000 / 15000)  # o1b has no channel: not attributed
    assert w1["orders_change"] is None  # nothing to compare with
    assert w1["ad_spend_change"] == pytest.approx((15000 - 999) / 999)

    w2 = rows[W2]
    # o4 (180.00, 50.00 refunded), o5 (20.00, all refunded), o6 (45.00); o7 is pending.
    assert (w2["orders"], w2["buyers"], w2["new_buyers"]) == (3, 3, 1)  # carol is new
    assert w2["new_buyer_share"] == pytest.approx(1 / 3)
    assert w2["gmv"] == Decimal("245.00")
    assert w2["net_revenue"] == Decimal("175.00")
    assert w2["aov"] == Decimal("81.67")  # 245 / 3, half-up to the fen
    assert w2["repurchase_rate"] == 0.0
    assert (w2["sessions"], w2["session_conversion_rate"]) == (2, 0.5)
    assert w2["refund_rate"] == pytest.approx(7000 / 24500)
    assert w2["discount_rate"] == pytest.approx(500 / 25000)
    # o4 TEA: 50.00 kept of 100.00, so half its 40.00 cost; o4 CUP 80 - 15; o6 TEA 45 - 20.
    assert w2["gross_margin"] == pytest.approx((17500 - 5500) / 17500)
    assert w2["ad_spend"] == Decimal("210.00")
    assert w2["cac"] == Decimal("210.00")
    assert w2["roas"] == pytest.approx(24500 / 21000)
    assert w2["orders_change"] == 0.0
    assert w2["buyers_change"] == 0.5
    assert w2["new_buyers_change"] == -0.5
    assert w2["gmv_change"] == pytest.approx((245 - 270) / 270)
    assert w2["ad_spend_change"] == pytest.approx(0.4)
    assert w2["cac_change"] == pytest.approx((210 - 75) / 75)
    assert w2["repurchase_rate_change"] == -1.0


def test_monthly_repurchase_and_new_buyers(shop: Any) -> None:
    rows = _by(kpi_frame(shop, by="month"))
    assert list(rows) == [date(2023, 12, 1), date(2024, 1, 1)]
    jan = rows[date(2024, 1, 1)]
    assert (jan["orders"], jan["buyers"], jan["new_buyers"]) == (6, 3, 3)
    # alice: o1, o1b, o4; bob: o2, o5; carol: o6.
    assert jan["repurchase_rate"] == pytest.approx(2 / 3)
    assert jan["gmv"] == Decimal("515.00")
    assert jan["ad_spend_change"] == pytest.approx((36000 - 999) / 999)
    quarter = _by(kpi_frame(shop, by="quarter"))
    assert quarter[date(2024, 1, 1)]["gmv"] == Decimal("515.00")
    days = _by(kpi_frame(shop, by="day", start=date(2024, 1, 8), end=date(2024, 1, 8)))
    assert list(days) == [date(2024, 1, 8)]
    assert days[date(2024, 1, 8)]["gmv"] == Decimal("180.00")  # o4, placed Sunday UTC
    assert days[date(2024, 1, 8)]["gmv_change"] is None  # Sunday 01-07 had no paid order


def test_date_range_is_inclusive_and_first_row_keeps_its_change(shop: Any) -> None:
    only_w2 = _by(kpi_frame(shop, by="week", start=W2))
    assert list(only_w2) == [W2]
    assert only_w2[W2]["gmv_change"] == pytest.approx((245 - 270) / 270)
    # A start inside week 1 cuts o1 (01-02) off week 1; the end date keeps 01-10 (o6) and
    # drops 01-12 onwards.
    cut = _by(kpi_frame(shop, by="week", start=date(2024, 1, 3), end=date(2024, 1, 10)))
    assert list(cut) == [W1, W2]
    assert (cut[W1]["orders"], cut[W1]["gmv"]) == (2, Decimal("180.00"))
    assert cut[W1]["new_buyers"] == 1  # bob; alice's first order is before the start
    assert cut[W2]["ad_spend"] == Decimal("200.00")  # the 01-14 spend is after the end
    assert cut[W2]["gmv"] == Decimal("245.00")
    with pytest.raises(InvalidArgumentError, match="after end"):
        kpi_frame(shop, start=date(2024, 2, 1), end=date(2024, 1, 1))
    with pytest.raises(InvalidArgumentError, match="unknown period"):
        kpi_frame(shop, by="year")
    with pytest.raises(InvalidArgumentError, match="unknown dimension"):
        kpi_frame(shop, dimension="city")


def test_breakdown_by_category(shop: Any) -> None:
    df = kpi_frame(shop, by="week", dimension="category")
    assert list(df.columns) == frame_columns("category")
    rows = _by(df, "category")
    # CUP lines have no category: the catalogue's "Teaware" is used. o5's GIFT line has none and
    # the catalogue has none either; o2's GIFT line says "Gifts".
    assert set(rows) == {(W1, "Tea"), (W1, "Teaware"), (W1, "Gifts"),
                         (W2, "Tea"), (W2, "Teaware"), (W2, "(none)")}
    tea = rows[(W2, "Tea")]  # o4 TEA (100.00, 50.00 refunded) and o6 TEA (45.00)
    assert (tea["orders"], tea["buyers"], tea["gmv"]) == (2, 2, Decimal("145.00"))
    assert tea["net_revenue"] == Decimal("95.00")
    assert tea["aov"] == Decimal("72.50")
    assert tea["items_per_order"] == 1.5
    assert tea["refund_rate"] == pytest.approx(5000 / 14500)
    assert tea["discount_rate"] == pytest.approx(500 / 15000)
    assert tea["gross_margin"] == pytest.approx((9500 - 4000) / 9500)
    assert tea["gmv_change"] == pytest.approx((145 - 90) / 90)
    for metric in ("new_buyers", "new_buyer_share", "sessions", "session_conversion_rate",
                   "ad_spend", "cac", "roas"):
        assert tea[metric] is None, metric
    teaware_w1 = rows[(W1, "Teaware")]  # o2 (bob) and o1b (alice)
    assert (teaware_w1["orders"], teaware_w1["buyers"], teaware_w1["repurchase_rate"]) == (
        2, 2, 0.0)
    assert rows[(W2, "Teaware")]["gross_margin"] == pytest.approx((8000 - 1500) / 8000)
    gift = rows[(W2, "(none)")]
    assert (gift["gmv"], gift["net_revenue"], gift["refund_rate"]) == (
        Decimal("20.00"), Decimal("0.00"), 1.0)
    assert gift["gross_margin"] is None  # no cost known
    assert gift["gmv_change"] is None  # no "(none)" row the week before
    # Category GMVs add up to the period's GMV.
    assert sum(r["gmv"] for (p, _), r in rows.items() if p == W2) == Decimal("245.00")


def test_breakdown_by_channel(shop: Any) -> None:
    rows = _by(kpi_frame(shop, by="week", dimension="channel"), "channel")
    assert set(rows) == {(W0, "douyin"), (W1, "douyin"), (W1, "baidu"), (W1, "(none)"),
                         (W2, "douyin"), (W2, "baidu")}
    douyin = rows[(W1, "douyin")]
    assert (douyin["orders"], douyin["new_buyers"], douyin["gmv"]) == (1, 1, Decimal("90.00"))
    assert (douyin["ad_spend"], douyin["cac"]) == (Decimal("100.00"), Decimal("100.00"))
    assert douyin["roas"] == 0.9
    assert douyin["ad_spend_change"] == pytest.approx((10000 - 999) / 999)
    assert douyin["sessions"] is None  # sessions are not attributed to channels
    none = rows[(W1, "(none)")]
    assert (none["orders"], none["new_buyers"], none["ad_spend"]) == (1, 0, Decimal("0.00"))
    assert (none["cac"], none["roas"]) == (None, None)
    d2 = rows[(W2, "douyin")]  # o4 and o6; carol's first paid order (o6) came through douyin
    assert (d2["orders"], d2["buyers"], d2["new_buyers"]) == (2, 2, 1)
    assert d2["cac"] == Decimal("210.00")
    assert d2["roas"] == pytest.approx(22500 / 21000)
    b2 = rows[(W2, "baidu")]
    assert (b2["net_revenue"], b2["new_buyers"], b2["cac"]) == (Decimal("0.00"), 0, None)
    assert rows[(W1, "baidu")]["cac"] == Decimal("50.00")


def test_first_order_ties_go_to_the_smallest_order_id() -> None:
    """A new buyer's first order is the earliest one, ties broken by the smallest order id: erin's
    two orders at the same moment count her once, under the channel of "t1" (not "t2", listed
    first); frank's earlier cancelled order does not make him new in January."""
    at = datetime(2024, 1, 15, 4, tzinfo=UTC)
    orders_and_lines = [
        _order("t2", "erin", at, "paid", "wechat", [("TEA", "Tea", 1, 5000, 0, 0)]),
        _order("t1", "erin", at, "paid", "douyin", [("TEA", "Tea", 1, 5000, 0, 0)]),
        _order("t3", "erin", at + timedelta(days=40), "paid", "baidu", [("TEA", "Tea", 1, 5000, 0, 0)]),
        _order("f0", "frank", at - timedelta(days=30), "cancelled", "baidu",
               [("TEA", "Tea", 1, 5000, 0, 0)]),
        _order("f1", "frank", at + timedelta(days=1), "paid", "wechat", [("TEA", "Tea", 1, 5000, 0, 0)]),
    ]
    con = make_warehouse({"orders": [o for o, _ in orders_and_lines],
                          "order_lines": [li for _, lines in orders_and_lines for li in lines]})
    rows = _by(kpi_frame(con, by="month", dimension="channel"), "channel")
    new = {key: r["new_buyers"] for key, r in rows.items() if r["new_buyers"]}
    assert new == {(date(2024, 1, 1), "douyin"): 1, (date(2024, 1, 1), "wechat"): 1}
    monthly = _by(kpi_frame(con, by="month"))
    assert [monthly[p]["new_buyers"] for p in sorted(monthly)] == [2, 0]


def test_records_are_json_ready(shop: Any) -> None:
    records = kpi_records(kpi_frame(shop, by="week", dimension="channel"))
    text = json.dumps(records)  # no Decimal, date or numpy value left
    first = json.loads(text)[1]
    assert (first["period"], first["channel"]) == ("2024-01-01", "(none)")
    assert (first["gmv"], first["orders"], first["cac"]) == (80.0, 1, None)
    week2 = kpi_records(kpi_frame(shop, by="week", start=W2))[0]
    assert week2["aov"] == 81.67
    assert week2["gmv_change"] == round((245 - 270) / 270, 6)
    assert set(week2) == set(frame_columns())


def test_empty_warehouse_gives_empty_frame() -> None:
    df = kpi_frame(make_warehouse({}), by="week", dimension="channel")
    assert df.empty
    assert list(df.columns) == frame_columns("channel")
    assert kpi_records(df) == []


def test_metric_registry_documents_every_column() -> None:
    assert list(METRICS)[:4] == ["orders", "buyers", "new_buyers", "new_buyer_share"]
    assert {m.unit for m in METRICS.values()} == {"money", "count", "ratio"}
    for metric in METRICS.values():
        assert "=" in metric.formula, metric.name
        assert metric.label_en, metric.name
        assert metric.label_zh, metric.name


def test_calendar_helpers() -> None:
    assert period_start(date(2024, 1, 7), "week") == date(2024, 1, 1)  # Sunday → Monday before
    assert period_start(date(2024, 8, 31), "quarter") == date(2024, 7, 1)
    assert shift_period(date(2024, 1, 1), "quarter", -1) == date(2023, 10, 1)
    assert shift_period(date(2024, 12, 1), "month", 1) == date(2025, 1, 1)
    assert period_end(date(2024, 2, 1), "month") == date(2024, 2, 29)
    assert period_end(date(2024, 1, 1), "week") == date(2024, 1, 7)


# ---------------------------------------------------------------------------------------------
# A randomised shop against an independent pandas computation.
# ---------------------------------------------------------------------------------------------


def random_shop(seed: int) -> dict[str, list[dict[str, Any]]]:
    """A few hundred random orders over ~4 months, with lines, events and ad spend."""
    rng = random.Random(seed)
    products = [
        {"sku": f"P{i}", "name": f"P{i}", "category": ["A", "B", None][i % 3],
         "price": rng.randrange(500, 20000), "cost": None if i == 4 else rng.randrange(100, 5000)}
        for i in range(8)
    ]
    statuses = [*schema.PAID_STATUSES, "pending", "cancelled"]
    channels = ["douyin", "baidu", "wechat", None]
    orders, lines, events = [], [], []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(400):
        at = start + timedelta(minutes=rng.randrange(120 * 24 * 60))
        status = rng.choice(statuses)
        refund_all = status == "refunded"
        items = []
        for _ in range(rng.randrange(1, 4)):
            p = rng.choice(products)
            qty = rng.randrange(1, 4)
            discount = rng.choice([0, 0, 50, 300])
            total = qty * p["price"] - discount
            refunded = total if refund_all else (
                rng.randrange(total + 1) if status == "partially_refunded" else 0)
            items.append((p["sku"], rng.choice([p["category"], None, "Z"]), qty, p["price"],
                          discount, refunded))
        order, order_lines = _order(f"o{n}", f"c{rng.randrange(60)}", at, status,
                                    rng.choice(channels), items)
        if rng.random() < 0.1:
            order["item_count"] = None
        orders.append(order)
        lines.extend(order_lines)
    start = datetime(2024, 1, 1, tzinfo=SHOP_TZ)
    for n in range(600):
        local = start + timedelta(minutes=rng.randrange(120 * 24 * 60))
        session = f"s{rng.randrange(250)}" if rng.random() < 0.7 else None
        events.append(_event(n, rng.choice(["view", "view", "add_to_cart", "purchase"]), local,
                             session, rng.choice([None, f"c{rng.randrange(60)}"]),
                             f"a{rng.randrange(40)}"))
    spend = [{"date": date(2024, 1, 1) + timedelta(days=d), "channel": ch,
              "spend": rng.randrange(0, 30000)}
             for d in range(0, 120, 2) for ch in ("douyin", "baidu", "tv")]
    return {"products": products, "orders": orders, "order_lines": lines, "events": events,
            "ad_spend": spend}


def _ratio(num: Any, den: Any) -> Fraction | None:
    """An exact ratio of two integer sums (None when the denominator is zero)."""
    return None if den == 0 else Fraction(int(num), int(den))


def reference(data: dict[str, list[dict[str, Any]]], by: str, dimension: str | None,
              start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """The KPIs computed directly from the definitions with pandas (no Ibis, no shared code)."""
    def period(days: pd.Series) -> pd.Series:
        ts = pd.to_datetime(days)
        if by == "week":
            ts = ts - pd.to_timedelta(ts.dt.day_of_week, unit="D")
        elif by == "month":
            ts = ts.dt.to_period("M").dt.start_time
        elif by == "quarter":
            ts = ts.dt.to_period("Q").dt.start_time
        return ts.dt.date

    def within(days: pd.Series) -> pd.Series:
        keep = pd.Series(True, index=days.index)
        if start is not None:
            keep &= days >= start
        if end is not None:
            keep &= days <= end
        return keep

    orders = pd.DataFrame(data["orders"])
    orders = orders[orders.status.isin(PAID)].copy()
    orders["channel"] = orders.channel.fillna("(none)")
    products = pd.DataFrame(data["products"]).set_index("sku")
    lines = pd.DataFrame(data["order_lines"]).merge(
        orders[["order_id", "customer_id", "order_date", "channel"]], on="order_id")
    lines["category"] = lines.category.fillna(lines.sku.map(products.category)).fillna("(none)")
    lines["cost"] = lines.sku.map(products.cost)
    first = orders.sort_values(["ordered_at", "order_id"]).drop_duplicates("customer_id")
    ads = pd.DataFrame(data["ad_spend"])
    paid_channels = set(ads.channel)
    events = pd.DataFrame(data["events"])
    events["key"] = events.session_id.fillna(
        events.customer_id.fillna(events.anonymous_id) + "|" + events.event_date.astype(str))
    sessions = events.groupby("key").agg(day=("event_date", "min"),
                                         bought=("type", lambda s: (s == "purchase").any()))

    orders, lines = orders[within(orders.order_date)], lines[within(lines.order_date)]
    first, ads = first[within(first.order_date)], ads[within(ads.date)]
    sessions = sessions[within(sessions.day)]
    for frame, col in ((orders, "order_date"), (lines, "order_date"), (first, "order_date"),
                       (ads, "date"), (sessions, "day")):
        frame.insert(0, "period", period(frame[col]))

    key = ["period"] + ([dimension] if dimension else [])
    base = lines if dimension == "category" else orders
    out = []
    for group, sub in base.groupby(key):
        p = group[0]
        value = group[1] if dimension else None

        def same(frame: pd.DataFrame, p: date = p, value: Any = value) -> pd.DataFrame:
            sel = frame.period == p
            if dimension:
                sel &= frame[dimension] == value
            return frame[sel]

        if dimension == "category":
            gmv, refunded = sub.line_total.sum(), sub.refunded_amount.sum()
            per_buyer = sub.groupby("customer_id").order_id.nunique()
            n_orders = sub.order_id.nunique()
            items, item_orders = sub.quantity.sum(), n_orders
            discount = sub.discount_amount.sum()
            gross = (sub.line_total + sub.discount_amount).sum()
        else:
            gmv, refunded = sub.total_amount.sum(), sub.refunded_amount.sum()
            per_buyer = sub.groupby("customer_id").order_id.count()
            n_orders = len(sub)
            items, item_orders = sub.item_count.sum(), sub.item_count.notna().sum()
            discount, gross = sub.discount_amount.sum(), sub.gross_amount.sum()
        costed = same(lines)
        costed = costed[costed.cost.notna()]
        net = costed.line_total - costed.refunded_amount
        kept = (costed.quantity * costed.cost * net / costed.line_total.where(
            costed.line_total > 0)).fillna(costed.quantity * costed.cost)
        kept = (kept + 0.5).apply(math.floor)  # each line's kept cost rounded half-up to the fen
        row = {
            "period": p, "orders": n_orders, "buyers": len(per_buyer),
            "gmv": gmv, "net_revenue": gmv - refunded,
            "aov": _ratio(gmv, n_orders), "items_per_order": _ratio(items, item_orders),
            "repurchase_rate": _ratio((per_buyer >= 2).sum(), len(per_buyer)),
            "refund_rate": _ratio(refunded, gmv), "discount_rate": _ratio(discount, gross),
            "gross_margin": None if net.sum() == 0 else (net.sum() - kept.sum()) / net.sum(),
        }
        if dimension:
            row[dimension] = value
        if dimension != "category":
            new = len(same(first))
            spend = same(ads).spend.sum()
            attributed = sub[sub.channel.isin(paid_channels)].total_amount.sum()
            row.update(new_buyers=new, new_buyer_share=_ratio(new, len(per_buyer)),
                       ad_spend=spend, cac=_ratio(spend, new) if spend else None,  # no spend: no CAC
                       roas=_ratio(attributed, spend))
        if dimension is None:
            s = sessions[sessions.period == p]
            row.update(sessions=len(s), session_conversion_rate=_ratio(s.bought.sum(), len(s)))
        out.append(row)
    return pd.DataFrame(out)


MONEY = [name for name, m in METRICS.items() if m.unit == "money"]


@pytest.mark.parametrize(
    ("seed", "by", "dimension", "start", "end"),
    [
        (1, "month", None, None, None),
        (2, "week", None, date(2024, 1, 17), date(2024, 4, 2)),
        (3, "week", "channel", None, None),
        (4, "month", "category", None, date(2024, 3, 20)),
        (5, "day", None, date(2024, 2, 1), date(2024, 2, 29)),
        (6, "quarter", "channel", date(2024, 2, 10), None),
    ],
)
def test_random_shop_matches_pandas(
    seed: int, by: str, dimension: str | None, start: date | None, end: date | None
) -> None:
    data = random_shop(seed)
    got = kpi_frame(make_warehouse(data), by=by, dimension=dimension, start=start, end=end)
    expected = reference(data, by, dimension, start, end)
    key = ["period"] + ([dimension] if dimension else [])
    got_rows = {tuple(r[k] for k in key): r for r in got.to_dict(orient="records")}
    # Rows with orders (the reference has no rows for periods without orders).
    busy = {k: r for k, r in got_rows.items() if r["orders"]}
    exp_rows = {tuple(r[k] for k in key): r for r in expected.to_dict(orient="records")}
    assert set(busy) == set(exp_rows)
    assert len(exp_rows) >= 3
    for k, exp in exp_rows.items():
        row = busy[k]
        for name, value in exp.items():
            if name in key:
                continue
            actual = row[name]
            if value is None or (isinstance(value, float) and pd.isna(value)):
                assert actual is None, (k, name)
            elif name in MONEY:
                exact = Fraction(value) / 100
                expected_major = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
                    Decimal("0.01"), "ROUND_HALF_UP")
                assert actual == expected_major, (k, name)
            else:
                assert actual == pytest.approx(float(value), rel=1e-9), (k, name)
    # Changes: against the previous calendar period of the same breakdown value.
    for k, row in got_rows.items():
        prev = got_rows.get((shift_period(k[0], by, -1), *k[1:]))
        if prev is not None and prev["gmv"]:
            assert row["gmv_change"] == pytest.approx(
                float(row["gmv"] / prev["gmv"] - 1)), k
        elif start is None or k[0] > period_start(start, by):
            assert row["gmv_change"] is None, k
