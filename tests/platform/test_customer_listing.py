"""The customer list (``customers.listing``) over a tiny warehouse: filters, sorting, totals and
exports, and the promise behind "save as segment": the list's definition previews to the list's
own customers. Expected values are worked out by hand from the rows below (money in fen)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from growthwheel.customers import listing
from growthwheel.insight.rfm import rfm_scores
from growthwheel.segments import service as segments
from growthwheel.segments.compile import Context
from growthwheel.segments.definition import parse_definition
from tiny_warehouse import make_warehouse

AS_OF = date(2025, 3, 31)
CTX = Context(as_of=AS_OF)


def customer(cid: str, name: str, channel: str | None, email: str | None = None) -> dict[str, Any]:
    return {"customer_id": cid, "name": name, "channel": channel, "email": email,
            "phone": "+86 138-0013-8000",
            "signed_up_at": datetime(2025, 1, 2, 2, 30, tzinfo=UTC).replace(tzinfo=None)}


def order(oid: str, cid: str, day: date, total: int, status: str = "paid",
          refunded: int = 0) -> dict[str, Any]:
    return {"order_id": oid, "customer_id": cid, "order_date": day,
            "ordered_at": datetime(day.year, day.month, day.day, 4, tzinfo=UTC).replace(tzinfo=None),
            "status": status, "total_amount": total, "refunded_amount": refunded, "currency": "CNY"}


CUSTOMERS = [
    customer("c1", "王芳", "抖音", "wang@example.com"),
    customer("c2", "李雷", "抖音"),
    customer("c3", "=HYPERLINK(1)", "小红书"),
    customer("c4", "赵六", None),
]
ORDERS = [
    order("o1", "c1", date(2025, 3, 1), 10_000),
    order("o2", "c1", date(2025, 3, 20), 5_000, refunded=1_000),
    order("o3", "c2", date(2025, 2, 1), 30_000),
    order("o4", "c3", date(2025, 3, 30), 2_000),
    order("o5", "c3", date(2025, 3, 31), 9_000, status="cancelled"),
    order("o6", "c9", date(2025, 1, 5), 1_000),  # a buyer known only from orders
]


def _con() -> Any:
    return make_warehouse({"customers": CUSTOMERS, "orders": ORDERS})


def _ids(con: Any, query: listing.ListQuery, **kw: Any) -> tuple[list[str], int]:
    rows, total = listing.list_page(con, query, CTX, match_contact=kw.get("contact", True),
                                    offset=0, limit=50)
    return [r["customer_id"] for r in rows], total


def test_filters_sorting_and_totals() -> None:
    con = _con()
    assert _ids(con, listing.ListQuery()) == (["c1", "c2", "c3", "c4", "c9"], 5)
    # net revenue: c2 300.00, c1 140.00, c3 20.00, c9 10.00 (the cancelled order does not count)
    assert _ids(con, listing.ListQuery(buyers="yes", sort="net_revenue", descending=True)) \
        == (["c2", "c1", "c3", "c9"], 4)
    assert _ids(con, listing.ListQuery(buyers="no")) == (["c4"], 1)
    by_last = listing.ListQuery(channel="抖音", sort="last_order", descending=True)
    assert _ids(con, by_last) == (["c1", "c2"], 2)
    assert _ids(con, listing.ListQuery(sort="orders")) == (["c4", "c2", "c3", "c9", "c1"], 5)
    # the search matches e-mail only for roles that see it
    assert _ids(con, listing.ListQuery(q="wang@"))[1] == 1
    assert _ids(con, listing.ListQuery(q="wang@"), contact=False)[1] == 0
    rows, total = listing.list_page(con, listing.ListQuery(), CTX, match_contact=True, offset=2, limit=2)
    assert ([r["customer_id"] for r in rows], total) == (["c3", "c4"], 5)


def test_a_drilled_list_is_its_segment() -> None:
    con = _con()
    scores = rfm_scores(con.table("orders"), AS_OF).to_pyarrow().to_pylist()
    segment = scores[0]["segment"]
    members = sorted(r["customer_id"] for r in scores if r["segment"] == segment)
    node = parse_definition({"type": "score", "field": "rfm_segment", "op": "equals", "value": segment})
    query = listing.ListQuery(definition=node, as_of=AS_OF, sort="customer_id")
    ids, total = _ids(con, query)
    assert ids == members
    assert total == len(members)
    narrowed = listing.ListQuery(definition=node, as_of=AS_OF, channel="抖音", buyers="yes")
    saved = listing.filter_definition(narrowed)
    assert saved is not None
    preview = segments.preview(con, saved, CTX, sample=0)
    assert preview.count == _ids(con, narrowed)[1]
    assert listing.filter_definition(listing.ListQuery(segment_id="s1")) is None


def test_export_rows_mask_contact_convert_money_and_time() -> None:
    con = _con()
    rows = list(listing.export_rows(con, listing.ListQuery(channel="小红书"), CTX, can_see_pii=False,
                                    exponent=2, zone=ZoneInfo("Asia/Shanghai")))
    assert len(rows) == 1
    [row] = rows
    assert row[0] == "c3"
    assert row[1] == "=HYPERLINK(1)"  # defused by the writer (kit.export), not here
    assert "*" in row[3]  # phone masked for a role without PII
    assert row[6].isoformat() == "2025-01-02T10:30:00+08:00"
    assert row[7:9] == [1, Decimal("20.00")]
