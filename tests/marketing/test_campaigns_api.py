"""Campaign and influencer routes on a real app, store on SQLite and PostgreSQL, real DuckDB
warehouse: numbers worked out by hand from ``campaign_data``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.marketing import campaign_data as data

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.marketing.campaigns.api import router as campaigns_router
from growthwheel.marketing.influencers.api import router as influencers_router


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Any, tmp_path: Path) -> Iterator[TestClient]:
    data.load(store_cfg, tmp_path)
    key = make_api_key("read", "write")
    app = create_app(store_cfg, routers=[campaigns_router, influencers_router])
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


def ok(response: Any, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json() if code != 204 else None


def problem(response: Any, code: int) -> str:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json().get("detail", "")) + str(response.json().get("errors", ""))


def test_campaign_pacing_review_and_influencers(client: TestClient) -> None:
    a = ok(client.post("/api/v1/marketing/influencers", json=data.KOL_A), 201)
    b = ok(client.post("/api/v1/marketing/influencers", json=data.KOC_B), 201)
    assert (a["tier"], b["tier"]) == ("head", "koc")
    assert a["platform"] == "douyin"
    assert a["utm_link"] == ("https://shop.example.com/p/P1?ref=x&utm_source=douyin&utm_medium=influencer"
                             "&utm_campaign=KOL_A")
    assert b["cost"] == 2_000
    c = ok(client.post("/api/v1/marketing/campaigns", json=data.campaign_body([a["id"], b["id"]])), 201)
    assert c["budget"] == {"douyin": 50_000}
    assert (c["starts_on"], c["ends_on"]) == ("2024-11-01", "2024-11-07")
    assert [p["kind"] for p in c["phases"]] == ["warm_up", "peak", "after_glow"]

    # Pacing on 4 Nov: warm-up ended (¥200 of ¥400: missed); peak day 1 of 2: expected ¥600,
    # actual ¥400 (o2 + o3) → pace 2/3, behind, projected ¥800; after-glow not started.
    pace = ok(client.get("/api/v1/marketing/campaigns/Double 11 2024/pacing", params={"as_of": "2024-11-04"}))
    warm, peak, glow = pace["phases"]
    assert warm["gmv"]["target"] == pytest.approx(40_000)
    assert (warm["gmv"]["actual"], warm["gmv"]["status"]) == (20_000, "missed")
    assert peak["gmv"]["expected"] == pytest.approx(60_000)
    assert peak["gmv"]["actual"] == 40_000
    assert peak["gmv"]["pace"] == pytest.approx(2 / 3)
    assert peak["gmv"]["projected"] == pytest.approx(80_000)
    assert peak["gmv"]["status"] == "behind"
    assert glow["share"] == pytest.approx(0.2)
    assert glow["gmv"]["status"] == "not_started"
    assert peak["new_buyers"]["actual"] == 1  # c3 (c2 bought in October)
    assert pace["gmv"]["expected"] == pytest.approx(100_000)
    assert pace["gmv"]["actual"] == 60_000
    assert pace["gmv"]["status"] == "behind"

    # The signal for alerts: on 4 Nov the peak and the campaign are behind on GMV; new buyers
    # (1 of 6 × ½ expected in the peak) too. On 20 Nov nothing runs any more.
    behind = ok(client.get("/api/v1/marketing/campaigns/signals/behind", params={"as_of": "2024-11-04"}))
    got = {(s["scope"], s["metric"]): s for s in behind["signals"]}
    assert set(got) == {("phase", "gmv"), ("campaign", "gmv"), ("phase", "new_buyers"),
                        ("campaign", "new_buyers")}
    assert got[("phase", "gmv")]["phase"] == "爆发"
    assert got[("phase", "gmv")]["pace"] == pytest.approx(2 / 3)
    assert ok(client.get("/api/v1/marketing/campaigns/signals/behind"))["signals"] == []

    # Review as of the last order (20 Nov).
    r = ok(client.get(f"/api/v1/marketing/campaigns/{c['id']}/review"))
    assert r["as_of"] == "2024-11-20"
    assert r["finished"]
    cu, pr, op = r["customers"], r["products"], r["operations"]
    assert (cu["buyers"], cu["new_buyers"]) == (5, 4)
    assert cu["new_share"] == pytest.approx(0.8)
    assert cu["repurchase_rate"] == pytest.approx(0.25)  # c1 came back on 20 Nov
    assert cu["acquired_value_per_customer"] == pytest.approx(130_000 / 4)
    assert pr["revenue"] == 150_000
    assert [h["sku"] for h in pr["heroes"]] == ["P2", "P3", "P1"]  # ties broken by SKU
    assert pr["hero_contribution"] == pytest.approx(1.0)
    assert pr["active_sku_rate"] == pytest.approx(0.75)
    # Sell-through at the campaign's end (7 Nov): P2 sold 2 of 4 + 1 received (3 left), P1 3 of
    # 10 (7 left), P3 has no stock count; the heroes together: 5 / (5 + 10).
    through = {h["sku"]: h["sell_through"] for h in pr["heroes"]}
    assert through["P2"] == pytest.approx(0.4)
    assert through["P1"] == pytest.approx(0.3)
    assert through["P3"] is None
    assert pr["sell_through"] == pytest.approx(1 / 3)
    assert (op["gmv"], op["orders"]) == (150_000, 5)
    assert op["ad_spend"] == 30_000  # douyin only: baidu is not in the budget
    assert op["influencer_cost"] == 22_000
    assert op["roi"] == pytest.approx(150_000 / 52_000)
    assert op["cac"] == pytest.approx(13_000)
    assert op["cost_per_order"] == pytest.approx(10_400)
    assert op["budget"] == [{"channel": "douyin", "budget": 50_000, "spend": 30_000, "used": 0.6}]
    assert [p["gmv"] for p in r["phases"]] == [20_000, 100_000, 30_000]

    html = client.get(f"/api/v1/marketing/campaigns/{c['id']}/report.html")
    assert html.status_code == 200
    assert "活动复盘" in html.text
    assert "Double 11 2024" in html.text
    assert "My shop" in html.text  # the shop's name
    assert 'data-kind="peak"' in html.text
    assert "https://" not in html.text.split("<script")[0]  # nothing fetched from a network
    assert "echarts" in html.text

    rep = ok(client.get("/api/v1/marketing/influencers/report",
                        params={"from": "2024-11-01", "to": "2024-11-07"}))
    rows = {x["code"]: x for x in rep["rows"]}
    kol = rows["KOL_A"]
    assert (kol["orders"], kol["revenue"], kol["new_customers"]) == (1, 10_000, 1)
    assert rows["KOL_A"]["roi"] == pytest.approx(0.5)
    assert (rows["KOC_B"]["orders"], rows["KOC_B"]["revenue"]) == (1, 60_000)
    assert rows["KOC_B"]["roi"] == pytest.approx(30.0)
    assert [x["code"] for x in rep["rows"]] == ["KOC_B", "KOL_A"]  # ranked by ROI
    pyramid = {t["tier"]: t for t in rep["pyramid"]}
    assert pyramid["head"]["revenue"] == 10_000
    assert pyramid["koc"]["revenue"] == 60_000
    assert pyramid["waist"]["influencers"] == 0
    assert pyramid["waist"]["roi"] is None
    # Attached to the campaign: its cost is in the review, so it cannot be removed until detached.
    assert "Double 11 2024" in problem(client.delete("/api/v1/marketing/influencers/KOL_A"), 409)
    assert ok(client.get("/api/v1/marketing/influencers/KOL_A"))["code"] == "KOL_A"
    ok(client.put("/api/v1/marketing/campaigns/Double 11 2024", json=data.campaign_body([b["id"]])))
    ok(client.delete("/api/v1/marketing/influencers/KOL_A"), 204)


def test_bad_input_is_a_4xx_naming_the_field(client: TestClient) -> None:
    body = data.campaign_body([])
    body["links"] = [{"kind": "segment", "ref_id": "nope"}]
    assert "links[0].ref_id" in problem(client.post("/api/v1/marketing/campaigns", json=body), 422)
    body = data.campaign_body([])
    body["phases"][1]["starts_on"] = "2024-11-02"  # type: ignore[index]
    assert "phases[1].starts_on" in problem(client.post("/api/v1/marketing/campaigns", json=body), 422)
    body = data.campaign_body([])
    body["phases"][2]["share"] = 0.5  # type: ignore[index]
    assert "shares" in problem(client.post("/api/v1/marketing/campaigns", json=body), 422)
    body = data.campaign_body([])
    body["budget"] = {"douyin": -1}
    assert "budget" in problem(client.post("/api/v1/marketing/campaigns", json=body), 422)
    body = data.campaign_body([])
    body["phases"][0]["starts_on"] = "0001-01-01"  # type: ignore[index]
    assert "starts_on" in problem(client.post("/api/v1/marketing/campaigns", json=body), 422)
    ok(client.post("/api/v1/marketing/campaigns", json=data.campaign_body([])), 201)
    assert "as_of" in problem(client.get("/api/v1/marketing/campaigns/Double 11 2024/pacing",
                                         params={"as_of": "0001-01-01"}), 422)
    assert "to" in problem(client.get("/api/v1/marketing/influencers/report",
                                      params={"from": "2024-11-01", "to": "9999-12-31"}), 422)
    assert "name" in problem(client.post("/api/v1/marketing/campaigns", json=data.campaign_body([])), 409)
    problem(client.get("/api/v1/marketing/campaigns/none/pacing"), 404)
    assert "followers" in problem(client.post("/api/v1/marketing/influencers",
                                              json={**data.KOL_A, "followers": -5}), 422)
    assert "code" in problem(client.post("/api/v1/marketing/influencers",
                                         json={**data.KOL_A, "code": "has space"}), 422)
    ok(client.post("/api/v1/marketing/influencers", json=data.KOL_A), 201)
    problem(client.post("/api/v1/marketing/influencers", json=data.KOL_A), 409)
    problem(client.get("/api/v1/marketing/influencers/report",
                       params={"from": "2024-11-07", "to": "2024-11-01"}), 422)
    # Edits: followers re-tier at once; delete removes.
    moved = ok(client.put("/api/v1/marketing/influencers/KOL_A", json={**data.KOL_A, "followers": 300_000}))
    assert moved["tier"] == "waist"
    ok(client.delete("/api/v1/marketing/influencers/KOL_A"), 204)
    problem(client.get("/api/v1/marketing/influencers/KOL_A"), 404)
    ok(client.delete("/api/v1/marketing/campaigns/Double 11 2024"), 204)
    assert ok(client.get("/api/v1/marketing/campaigns"))["campaigns"] == []


def test_attached_promotions_and_coupon_batches_in_the_review(client: TestClient,
                                                              store_cfg: Settings) -> None:
    from datetime import UTC, datetime

    from growthwheel.promotions import coupons
    from growthwheel.promotions.models import Promotion
    from growthwheel.store import db

    with db.session_scope(store_cfg) as session:
        session.add(Promotion(id="D11PROMO", name="双11 满300减30", layer="order", status="ended",
                              definition={"reward": {"type": "spend_tiers", "tiers": [[30000, 3000]]}},
                              created_by="tests"))
        batch = coupons.create_batch(
            session, name="双11 券", definition={"reward": {"type": "order_amount_off", "amount": 1000}},
            valid_from=datetime(2024, 11, 1, tzinfo=UTC), valid_until=datetime(2024, 11, 30, tzinfo=UTC),
            budget_count=10, actor_name="tests")
        batch_id = batch.id
    body = data.campaign_body([])
    body["links"] = [{"kind": "promotion", "ref_id": "D11PROMO"},
                     {"kind": "coupon_batch", "ref_id": batch_id}]
    c = ok(client.post("/api/v1/marketing/campaigns", json=body), 201)
    r = ok(client.get(f"/api/v1/marketing/campaigns/{c['id']}/review"))
    assert r["operations"]["promotions"] == [{"id": "D11PROMO", "name": "双11 满300减30", "orders": 2,
                                              "revenue": 90_000, "discount": 9_000}]
    assert r["operations"]["discount"] == 9_000
    assert r["operations"]["coupon_batches"] == [{"id": batch_id, "name": "双11 券", "issued": 0,
                                                  "redeemed": 0, "discount": 0}]
    html = client.get(f"/api/v1/marketing/campaigns/{c['id']}/report.html").text
    assert "双11 满300减30" in html
