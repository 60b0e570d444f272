"""The marketing REST routes on a real server app: spend upload, attribution, paths, budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.marketing.api import router as marketing_router
from growthwheel.store import db
from growthwheel.warehouse import ingest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "marketing"

EVENTS = """event_id,type,occurred_at,customer_id,session_id,utm_source,utm_medium,utm_campaign,referrer
e1,view,2024-12-01T10:00:00+08:00,c1,s1,douyin,cpc,双11返场-面霜,
e2,view,2024-12-01T11:00:00+08:00,c2,s2,douyin,cpc,新品-精华,
e3,view,2024-12-02T09:00:00+08:00,c2,s3,,,,https://www.baidu.com/s?wd=x
e4,view,2024-12-02T09:00:00+08:00,c3,s4,douyin,cpc,新品-精华,
e5,view,2024-12-02T10:00:00+08:00,c4,s5,,,,https://www.baidu.com/s?wd=y
"""
ORDERS = """order_id,customer_id,ordered_at,total,status
o1,c1,2024-12-01T12:00:00+08:00,300.00,paid
o2,c2,2024-12-02T12:00:00+08:00,200.00,paid
o0,c2,2024-11-01T12:00:00+08:00,50.00,paid
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("mkt")
    cfg = Settings(data_dir=folder / "data")
    (folder / "events.csv").write_text(EVENTS, encoding="utf-8")
    (folder / "orders.csv").write_text(ORDERS, encoding="utf-8")
    ingest.import_files("events", [folder / "events.csv"], cfg=cfg)
    ingest.import_files("orders", [folder / "orders.csv"], cfg=cfg)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _row = accounts.create_api_key(session, "marketing", ("read", "ingest"), created_by="tests")
    app = create_app(cfg, routers=[marketing_router])
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client
    db.engine(cfg).dispose()


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_spend_upload_then_attribution_with_roas_and_cac(client: TestClient) -> None:
    with (EXAMPLES / "oceanengine_daily_report.csv").open("rb") as f:
        done = ok(client.post("/api/v1/marketing/spend/imports", data={"platform": "oceanengine"},
                              files=[("files", ("巨量.csv", f, "text/csv"))]))
    assert done["rows_quarantined"] == 0
    assert done["tables"]["ad_spend"]["inserted"] == 4  # day × campaign
    spend = ok(client.get("/api/v1/marketing/spend", params={"from": "2024-12-01", "to": "2024-12-31"}))
    assert spend["rows"] == [{"channel": "douyin", "spend": 1_288_885}]
    body = ok(client.get("/api/v1/marketing/attribution",
                         params={"from": "2024-12-01", "to": "2024-12-31", "lookback_days": 30}))
    assert body["conversions"] == 2
    assert body["null_journeys"] == 2  # c3 and c4 touched and did not buy
    rows = {(r["model"], r["channel"]): r for r in body["rows"]}
    last = rows[("last_touch", "douyin")]
    assert last["conversions"] == 1  # o1; o2's last touch is the baidu visit
    assert last["value"] == 30_000
    assert last["new_customers"] == 1  # c1's first order; c2 had bought in November
    assert last["spend"] == 1_288_885
    assert last["roas"] == pytest.approx(30_000 / 1_288_885)
    assert last["cac"] == pytest.approx(1_288_885)
    assert rows[("last_touch", "organic_search")]["conversions"] == 1
    assert set(body["models"]) == {"first_touch", "last_touch", "linear", "time_decay", "position_based",
                                   "markov", "shapley"}
    for model in body["models"]:
        assert sum(r["conversions"] for r in body["rows"] if r["model"] == model) == pytest.approx(2)
    by_campaign = ok(client.get("/api/v1/marketing/attribution", params={
        "from": "2024-12-01", "to": "2024-12-31", "level": "campaign", "models": ["first_touch"]}))
    firsts = {r["channel"]: r for r in by_campaign["rows"]}
    assert firsts["douyin / 双11返场-面霜"]["conversions"] == 1
    assert firsts["douyin / 双11返场-面霜"]["spend"] == 351240 + 188010 + 330175


def test_paths_endpoint_three_path_example(client: TestClient) -> None:
    body = ok(client.post("/api/v1/marketing/attribution/paths", json={
        "paths": [{"path": "A > B", "conversions": 1, "value": 30}, {"path": ["B"], "conversions": 1,
                   "value": 10}, {"path": "A", "nulls": 1}],
        "models": ["markov", "last_touch"], "spend": {"A": 10}}))
    rows = {(r["model"], r["channel"]): r for r in body["rows"]}
    assert rows[("markov", "A")]["conversions"] == pytest.approx(2 / 3)
    assert rows[("markov", "A")]["roas"] == pytest.approx(40 / 3 / 10)
    assert body["removal_effects"]["markov"] == pytest.approx({"A": 0.5, "B": 1.0})


def test_budget_endpoint(client: TestClient) -> None:
    body = ok(client.post("/api/v1/marketing/budget/allocate", json={
        "total": 1_000_000, "reserve_share": 0.1,
        "curves": [{"channel": "douyin", "kind": "exponential", "beta": 900_000, "k": 300_000,
                    "current": 450_000},
                   {"channel": "baidu", "beta": 400_000, "k": 200_000, "upper": 300_000,
                    "current": 450_000}]}))
    assert body["reserve"] == 100_000
    assert sum(line["spend"] for line in body["lines"]) == 900_000
    assert body["outcome"] > body["current_outcome"]


@pytest.mark.parametrize(("method", "url", "payload", "field"), [
    ("get", "/api/v1/marketing/attribution", {"from": "2024-12-31", "to": "2024-12-01"}, "to"),
    ("get", "/api/v1/marketing/attribution", {"from": "2024-12-01", "to": "2024-12-31",
                                              "lookback_days": 0}, "lookback_days"),
    ("get", "/api/v1/marketing/attribution", {"from": "2024-12-01", "to": "2024-12-31",
                                              "models": ["magic"]}, "models"),
    ("post", "/api/v1/marketing/budget/allocate",
     {"total": 100, "curves": [{"channel": "a", "beta": 1, "k": 1, "lower": 200}]}, "bounds"),
    ("post", "/api/v1/marketing/budget/allocate",
     {"total": 100, "curves": [{"channel": "a", "beta": -1, "k": 1}]}, "beta"),
    ("post", "/api/v1/marketing/attribution/paths", {"paths": []}, "paths"),
])
def test_bad_input_is_a_422_naming_the_field(client: TestClient, method: str, url: str,
                                             payload: dict[str, Any], field: str) -> None:
    if method == "get":
        response = client.get(url, params=payload)
    else:
        response = client.post(url, json=payload)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_no_orders_is_a_404_and_no_key_a_401(client: TestClient) -> None:
    response = client.get("/api/v1/marketing/attribution", params={"from": "2020-01-01", "to": "2020-01-31"})
    assert response.status_code == 404
    assert "no paid orders" in response.json()["detail"]
    anonymous = client.get("/api/v1/marketing/spend", params={"from": "2024-12-01", "to": "2024-12-31"},
                           headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_wrong_platform_upload(client: TestClient) -> None:
    with (EXAMPLES / "oceanengine_daily_report.csv").open("rb") as f:
        response = client.post("/api/v1/marketing/spend/imports", data={"platform": "meta"},
                               files=[("files", ("x.csv", f, "text/csv"))])
    assert response.status_code == 422
    assert "x.csv" in response.json()["detail"]
