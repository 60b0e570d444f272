"""``/api/v1/customers``: search, masking, cursor pagination and the profile, over a tiny warehouse.

The warehouse is built by importing hand-written files; every expected number below is worked out
by hand from those files (money in fen: 160.00 CNY is 16000).
"""

from __future__ import annotations

import base64
import math
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.schemas import ROLE_SCOPES, Principal
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.api.deps import current_principal
from growthwheel.config import Settings
from growthwheel.customers.api import router as customers_router
from growthwheel.warehouse.ingest import import_files

CUSTOMERS = """\
    customer_id,email,phone,name,city,channel,signed_up_at,tags
    c001,Alice@Example.com,+86 138-0013-8000,Alice Wang,Shanghai,douyin,2024-01-02 10:00:00 +0800,vip; tea
    c002,bob@shop.cn,13900001111,Bob Li,Beijing,,2024-01-05,
    c003,carol@example.com,,Carol 陈,Hangzhou,baidu,,
    c004,dave@mail.com,021-5555-1234,Dave,,,,
    c005,fan@tea.cn,,100% Tea_Fan,,,,
    """
# c009 has orders but no customer row: a buyer known only from orders.
LINES = """\
    order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,status,refunded_amount,utm_source,category,product_name
    O1,c001,2024-03-05 14:00:00 +0800,S1,2,40.00,20.00,paid,,douyin,Tea,Green tea
    O1,c001,2024-03-05 14:00:00 +0800,S2,1,120.00,120.00,paid,,douyin,Teaware,Teapot
    O2,c001,2024-04-10 09:00:00 +0800,S1,1,20.00,20.00,partially_refunded,5.00,,Tea,Green tea
    O3,c001,2024-05-01 09:00:00 +0800,S3,3,90.00,30.00,cancelled,,,Tea,Oolong
    O4,c001,2024-05-20 09:00:00 +0800,S1,1,20.00,20.00,pending,,,Tea,Green tea
    O5,c002,2024-03-06 12:00:00 +0800,S2,1,120.00,120.00,paid,,baidu,Teaware,Teapot
    O7,c002,2024-03-20 12:00:00 +0800,S4,1,0.01,0.01,paid,,baidu,,Sample
    O6,c009,2024-02-01 12:00:00 +0800,S1,5,100.00,20.00,paid,,weibo,Tea,Green tea
    """
# anon-1 browses, then signs in as c001 (e6 carries both ids); anon-2 never identifies.
EVENTS = """\
    event_id,type,occurred_at,customer_id,anonymous_id,sku,order_id,url,properties
    e4,view,2024-03-04 10:00:00 +0800,,anon-1,S2,,https://shop.example/p/S2,
    e6,login,2024-03-05 12:00:00 +0800,c001,anon-1,,,,
    e1,view,2024-03-05 13:00:00 +0800,c001,,S1,,https://shop.example/p/S1?utm_source=douyin,
    e2,add_to_cart,2024-03-05 13:05:00 +0800,c001,,S1,,,
    e3,purchase,2024-03-05 14:00:00 +0800,c001,,,O1,,"{""value"": 160}"
    e5,view,2024-03-06 10:00:00 +0800,c002,,S2,,,
    e7,view,2024-03-06 11:00:00 +0800,,anon-2,S3,,,
    """
ALL_IDS = ["c001", "c002", "c003", "c004", "c005", "c009"]

ADMIN = Principal(kind="user", id="u1", name="admin@example.com", role="admin", scopes=ROLE_SCOPES["admin"])
ANALYST = Principal(
    kind="user", id="u2", name="analyst@example.com", role="analyst", scopes=ROLE_SCOPES["analyst"]
)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app over the tiny warehouse; the caller is ADMIN unless a test says otherwise."""
    root = tmp_path_factory.mktemp("customers")
    cfg = Settings(data_dir=root / "data", database_url=None)
    for table, name, text in (("customers", "customers.csv", CUSTOMERS),
                              ("order_lines", "lines.csv", LINES), ("events", "events.csv", EVENTS)):
        result = import_files(table, [_write(root, name, text)], cfg=cfg)
        assert result.rows_quarantined == 0
    app = warehouse_api.install(create_app(cfg, routers=[customers_router]))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def as_admin(client: TestClient) -> Iterator[TestClient]:
    client.app.dependency_overrides[current_principal] = lambda: ADMIN  # type: ignore[attr-defined]
    yield client
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]


@pytest.fixture
def as_analyst(client: TestClient) -> Iterator[TestClient]:
    client.app.dependency_overrides[current_principal] = lambda: ANALYST  # type: ignore[attr-defined]
    yield client
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]


def ids(body: dict[str, Any]) -> list[str]:
    return [item["customer_id"] for item in body["items"]]


def search(client: TestClient, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/customers", params={"q": q, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def money(minor: int) -> dict[str, Any]:
    return {"minor": minor, "currency": "CNY", "amount": f"{minor // 100}.{minor % 100:02d}"}


def test_search_finds_by_email_fragment_any_case_with_kpis(as_admin: TestClient) -> None:
    body = search(as_admin, "EXAMPLE.COM")
    assert ids(body) == ["c001", "c003"]
    alice = body["items"][0]
    assert alice["email"] == "Alice@Example.com"  # admins see it as written
    # Paid orders O1 (160.00) and O2 (20.00, 5.00 refunded); O3 is cancelled and O4 pending.
    assert alice["kpis"] == {"orders": 2, "net_revenue": money(17500), "last_order_date": "2024-04-10"}
    assert body["items"][1]["kpis"] == {"orders": 0, "net_revenue": money(0), "last_order_date": None}
    assert body["currency"] == "CNY"


def test_search_by_name_id_and_phone_digits(as_admin: TestClient) -> None:
    assert ids(search(as_admin, "wang")) == ["c001"]
    assert ids(search(as_admin, "陈")) == ["c003"]
    assert ids(search(as_admin, "C009")) == ["c009"]  # known only from its orders
    assert ids(search(as_admin, "13800138000")) == ["c001"]  # stored as +86 138-0013-8000
    assert ids(search(as_admin, "5555-12")) == ["c004"]
    # % and _ are plain characters, not LIKE wildcards.
    assert ids(search(as_admin, "%")) == ["c005"]
    assert ids(search(as_admin, "a_f")) == ["c005"]
    assert ids(search(as_admin, "")) == ALL_IDS


@pytest.mark.parametrize(
    "hostile",
    [
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "'; DROP TABLE customers; --",
        '" OR ""="',
        "\\",
        "') UNION SELECT email, phone FROM customers --",
        "\x00",
        "𝕏" * 200,
    ],
)
def test_sql_and_script_fragments_are_just_text(as_admin: TestClient, hostile: str) -> None:
    body = search(as_admin, hostile)
    if hostile != "\x00":  # a NUL is dropped, leaving an empty query (all customers)
        assert body["items"] == []
    assert ids(search(as_admin, "")) == ALL_IDS  # nothing was dropped or changed
    response = as_admin.get(f"/api/v1/customers/{quote(hostile[:50], safe='')}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_analyst_sees_email_and_phone_masked_everywhere(as_analyst: TestClient) -> None:
    listing = as_analyst.get("/api/v1/customers").text
    profile = as_analyst.get("/api/v1/customers/c001")
    assert profile.status_code == 200
    for raw in ("Alice@Example.com", "13800138000", "138-0013-8000", "bob@shop.cn", "13900001111",
                "carol@example.com", "021-5555-1234", "dave@mail.com", "fan@tea.cn"):
        assert raw not in listing
        assert raw not in profile.text
    body = search(as_analyst, "")
    by_id = {item["customer_id"]: item for item in body["items"]}
    assert by_id["c001"]["email"] == "A***@Example.com"
    assert by_id["c001"]["phone"] == "+86 138-****-8000"
    assert by_id["c002"]["phone"] == "139****1111"
    assert by_id["c001"]["name"] == "Alice Wang"
    customer = profile.json()["customer"]
    assert (customer["email"], customer["phone"], customer["pii_masked"]) == (
        "A***@Example.com", "+86 138-****-8000", True)
    # Searching by what is masked would reveal it one character at a time: analysts cannot.
    assert ids(search(as_analyst, "example.com")) == []
    assert ids(search(as_analyst, "13800138000")) == []
    assert ids(search(as_analyst, "alice")) == ["c001"]


@pytest.mark.parametrize(("q", "expected"), [("", ALL_IDS), ("c00", ALL_IDS), ("example", ["c001", "c003"])])
@pytest.mark.parametrize("limit", [1, 2, 4, 5, 6, 50])
def test_pagination_walks_every_customer_exactly_once(
    as_admin: TestClient, q: str, expected: list[str], limit: int
) -> None:
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = search(as_admin, q, **params)
        pages += 1
        assert len(body["items"]) <= limit
        seen += ids(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 20
    assert seen == expected
    assert pages == max(1, math.ceil(len(expected) / limit))


def test_bad_cursor_and_limit_are_problems(as_admin: TestClient) -> None:
    wrong_type = base64.urlsafe_b64encode(b"[1]").decode().rstrip("=")
    for params in ({"cursor": "not a cursor!"}, {"cursor": wrong_type}, {"limit": 0}, {"limit": 10_000}):
        response = as_admin.get("/api/v1/customers", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] in ("invalid_argument", "validation_error")


def test_profile_attributes_kpis_and_timelines(as_admin: TestClient) -> None:
    response = as_admin.get("/api/v1/customers/c001")
    assert response.status_code == 200
    body = response.json()
    customer = body["customer"]
    assert customer["name"] == "Alice Wang"
    assert customer["email"] == "Alice@Example.com"
    assert customer["tags"] == ["vip", "tea"]
    assert customer["signed_up_at"] == "2024-01-02T02:00:00Z"  # 10:00 in Shanghai
    assert body["kpis"] == {
        "orders": 2,
        "gmv": money(18000),  # 160.00 + 20.00
        "net_revenue": money(17500),
        "aov": money(9000),
        "refunded": money(500),
        "first_order_date": "2024-03-05",
        "last_order_date": "2024-04-10",
        # Paid lines: Tea 40.00 + 20.00 = 60.00 (3 units) < Teaware 120.00 (1 unit); the cancelled
        # 90.00 of Tea in O3 would have changed the answer had it counted.
        "favourite_category": "Teaware",
        "channel": "douyin",
    }
    orders = body["orders"]
    assert [o["order_id"] for o in orders] == ["O4", "O3", "O2", "O1"]
    assert [o["status"] for o in orders] == ["pending", "cancelled", "partially_refunded", "paid"]
    first = orders[-1]
    assert first["ordered_at"] == "2024-03-05T06:00:00Z"
    assert first["total"] == money(16000)
    assert [(line["sku"], line["quantity"], line["line_total"]["minor"], line["category"])
            for line in first["lines"]] == [("S1", 2, 4000, "Tea"), ("S2", 1, 12000, "Teaware")]
    assert orders[1]["lines"][0]["refunded"] == money(0)
    assert orders[2]["refunded"] == money(500)
    assert body["has_more_orders"] is False
    events = body["events"]
    # Newest first; e4 was browsed anonymously on the device that signed in as c001 with e6.
    assert [(e["event_id"], e["stitched"]) for e in events] == [
        ("e3", False), ("e2", False), ("e1", False), ("e6", False), ("e4", True)]
    assert events[0]["properties"] == {"value": 160}
    assert events[2]["utm_source"] == "douyin"
    assert "e7" not in response.text  # anon-2 never identified


def test_profile_aov_rounds_half_up_and_buyer_without_customer_row(as_admin: TestClient) -> None:
    bob = as_admin.get("/api/v1/customers/c002").json()
    assert bob["kpis"]["gmv"] == money(12001)
    assert bob["kpis"]["aov"] == money(6001)  # 12001 / 2 = 6000.5 fen, half-up
    assert bob["kpis"]["channel"] == "direct"  # imported without a channel: the default
    only_orders = as_admin.get("/api/v1/customers/c009").json()
    assert only_orders["customer"]["name"] is None
    assert only_orders["kpis"]["orders"] == 1
    assert only_orders["kpis"]["channel"] == "weibo"  # from its first paid order
    assert only_orders["kpis"]["favourite_category"] == "Tea"
    dave = as_admin.get("/api/v1/customers/c004").json()
    assert dave["kpis"]["orders"] == 0
    assert dave["kpis"]["aov"] is None
    assert dave["kpis"]["favourite_category"] is None
    assert dave["orders"] == []
    assert dave["events"] == []


def test_profile_timeline_limits(as_admin: TestClient) -> None:
    body = as_admin.get("/api/v1/customers/c001", params={"orders": 2, "events": 1}).json()
    assert [o["order_id"] for o in body["orders"]] == ["O4", "O3"]
    assert body["has_more_orders"] is True
    assert [e["event_id"] for e in body["events"]] == ["e3"]
    assert body["has_more_events"] is True


def test_unknown_customer_is_404_problem(as_admin: TestClient) -> None:
    response = as_admin.get("/api/v1/customers/nobody")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "customer_not_found"
    assert problem["status"] == 404
    assert "nobody" in problem["detail"]


def test_anonymous_caller_is_refused(client: TestClient) -> None:
    for path in ("/api/v1/customers", "/api/v1/customers/c001"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


def test_openapi_documents_the_schemas(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"CustomerPage", "CustomerProfile", "CustomerKpis", "Money"} <= set(schemas)
    listing = spec["paths"]["/api/v1/customers"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"q", "limit", "cursor"}
