"""Campaign and influencer console pages through the real app, signed in, in English and Chinese
(the tiny shop of ``campaign_data``; figures worked out there)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.api import router as accounts_router
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.marketing.campaigns import service
from growthwheel.marketing.campaigns.pages import router as campaign_pages
from growthwheel.marketing.campaigns.schemas import CampaignIn, InfluencerIn
from growthwheel.marketing.influencers import service as influencers
from growthwheel.promotions.models import Promotion
from growthwheel.store import db
from growthwheel.web.pages import router as pages_router

from . import campaign_data as data

pytestmark = pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)


@pytest.fixture
def client(store_cfg: Settings, tmp_path: Path, make_user: Callable[..., Any],
           log_in: Callable[..., None]) -> Iterator[TestClient]:
    data.load(store_cfg, tmp_path)
    with db.session_scope(store_cfg) as session:
        ids = [influencers.create(session, InfluencerIn.model_validate(x), actor="t").id
               for x in (data.KOL_A, data.KOC_B)]
        session.add(Promotion(id="D11PROMO", name="双11 满300减30", layer="order", status="ended",
                              definition={"reward": {"type": "spend_tiers", "tiers": [[30000, 3000]]}},
                              created_by="tests"))
        body = data.campaign_body(ids)
        body["links"] = [*body["links"], {"kind": "promotion", "ref_id": "D11PROMO"}]  # type: ignore[misc]
        service.create(session, CampaignIn.model_validate(body), actor="t")
    app = create_app(store_cfg, routers=[accounts_router, pages_router, campaign_pages])
    with TestClient(app) as test_client:
        user = make_user("analyst")
        log_in(test_client, user.email, user.password)
        yield test_client


def test_campaign_list_and_page(client: TestClient) -> None:
    listing = client.get("/marketing/campaigns")
    assert listing.status_code == 200
    link = re.search(r'href="(/marketing/campaigns/[0-9a-f]{32})"', listing.text)
    assert link is not None
    assert 'data-status="missed"' in listing.text  # as of 20 Nov: ¥1,500 of ¥2,000
    page = client.get(link.group(1), params={"as_of": "2024-11-04"})
    assert page.status_code == 200
    html = page.text
    peak = re.search(r'<tr data-kind="peak" data-status="(\w+)">(.*?)</tr>', html, flags=re.S)
    assert peak is not None
    assert peak.group(1) == "behind"
    assert "¥600.00" in peak.group(2)  # expected to date
    assert "¥400.00" in peak.group(2)  # actual
    assert "66.7%" in peak.group(2)
    ops = re.search(r'data-axis="operations">(.*?)</section>', html, flags=re.S)
    assert ops is not None
    assert "¥300.00" in ops.group(1)  # douyin's spend (baidu is not in the budget)
    assert "¥220.00" in ops.group(1)  # the two influencers' fees
    promos = re.search(r'id="promotions-table">(.*?)</table>', html, flags=re.S)
    assert promos is not None
    assert "双11 满300减30" in promos.group(1)
    assert "¥90.00" in promos.group(1)  # ¥30 + ¥60 off
    assert "¥900.00" in promos.group(1)  # o2 + o4
    chart = re.search(r'<script type="application/json" id="campaign-data">(.*?)</script>', html, flags=re.S)
    assert chart is not None
    series = json.loads(chart.group(1))
    assert series["days"] == ["2024-11-01", "2024-11-02", "2024-11-03", "2024-11-04"]
    assert series["actual"] == [200, 200, 200, 600]  # yuan, cumulative
    assert series["expected"] == pytest.approx([133.33, 266.67, 400, 1000], abs=0.01)  # peak: 1,200 × ½
    zh = client.get(link.group(1), params={"lang": "zh", "as_of": "2024-11-04"}).text
    assert "爆发/正式" in zh
    assert "落后" in zh
    assert "人：客户" in zh
    bad = client.get(link.group(1), params={"as_of": "nope"})
    assert bad.status_code == 200
    assert "YYYY-MM-DD" in bad.text
    assert client.get("/marketing/campaigns/none").status_code == 404


def test_influencer_ranking_and_pyramid(client: TestClient) -> None:
    page = client.get("/marketing/influencers", params={"from": "2024-11-01", "to": "2024-11-07"})
    assert page.status_code == 200
    html = page.text
    assert html.index('data-code="KOC_B"') < html.index('data-code="KOL_A"')  # ROI 30 before 0.5
    head = re.search(r'<tr data-tier="head">(.*?)</tr>', html, flags=re.S)
    assert head is not None
    assert "¥100.00" in head.group(1)
    assert "utm_campaign=KOL_A" in html
    zh = client.get("/marketing/influencers", params={"lang": "zh", "from": "2024-11-01", "to": "2024-11-07"})
    assert "达人金字塔" in zh.text
    assert "头部" in zh.text
    bad = client.get("/marketing/influencers", params={"rank_by": "x"})
    assert bad.status_code == 200
    assert 'data-testid="influencers-error"' in bad.text


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_register_an_influencer_from_the_page(store_cfg: Settings, tmp_path: Path,
                                              make_user: Callable[..., Any],
                                              log_in: Callable[..., None]) -> None:
    data.load(store_cfg, tmp_path)
    app = create_app(store_cfg, routers=[accounts_router, pages_router, campaign_pages])
    with TestClient(app) as client:
        user = make_user("operator")
        log_in(client, user.email, user.password)
        page = client.get("/marketing/influencers")
        form = {"csrf_token": _csrf(page.text), "code": "KOL_C", "name": "C", "platform": "Weibo",
                "followers": "250000", "cost_per_deal": "1500.5", "deals": "2",
                "landing_url": "https://shop.example.com/p"}
        done = client.post("/marketing/influencers", data=form, follow_redirects=False)
        assert done.status_code == 303, done.text
        with db.session_scope(store_cfg) as session:
            inf = influencers.get(session, "KOL_C")
            got = (inf.platform, inf.followers, inf.cost_per_deal, inf.deals)
        assert got == ("weibo", 250_000, 150_050, 2)
        again = client.post("/marketing/influencers", data=form, follow_redirects=False)
        assert again.status_code == 422
        assert "another influencer has it" in again.text
        bad = client.post("/marketing/influencers", data={**form, "code": "KOL_D", "cost_per_deal": "1.234"},
                          follow_redirects=False)
        assert bad.status_code == 422
        assert "Fee per deal" in bad.text
        assert 'value="KOL_D"' in bad.text  # the form keeps what was typed
        bad = client.post("/marketing/influencers", data={**form, "code": "KOL_E", "followers": "-3"},
                          follow_redirects=False)
        assert "Followers" in bad.text
        forged = client.post("/marketing/influencers", data={**form, "csrf_token": "x"},
                             follow_redirects=False)
        assert forged.status_code == 403
        analyst = make_user("analyst")
        client.cookies.clear()
        log_in(client, analyst.email, analyst.password)
        page = client.get("/marketing/influencers")
        assert 'data-testid="influencer-add"' not in page.text
        denied = client.post("/marketing/influencers", data={**form, "csrf_token": _csrf(page.text),
                                                             "code": "KOL_F"}, follow_redirects=False)
        assert denied.status_code == 403


def test_create_a_campaign_from_the_form(store_cfg: Settings, tmp_path: Path, make_user: Callable[..., Any],
                                         log_in: Callable[..., None]) -> None:
    data.load(store_cfg, tmp_path)
    app = create_app(store_cfg, routers=[accounts_router, pages_router, campaign_pages])
    with TestClient(app) as client:
        user = make_user("operator")
        log_in(client, user.email, user.password)
        assert 'data-testid="campaign-new-link"' in client.get("/marketing/campaigns").text
        page = client.get("/marketing/campaigns/new", params={"lang": "zh"})
        assert "新建活动" in page.text
        page = client.get("/marketing/campaigns/new", params={"lang": "en"})  # the language is remembered
        form = {"csrf_token": _csrf(page.text), "name": "双11 2024", "target_gmv": "2,000",
                "target_new_buyers": "10", "target_roi": "2.5", "profile": "linear",
                "budget": "douyin = 500\nbaidu=100.50\n",
                "warm_up_name": "蓄水", "warm_up_from": "2024-11-01", "warm_up_to": "2024-11-03",
                "peak_name": "爆发", "peak_from": "2024-11-04", "peak_to": "2024-11-05",
                "after_glow_from": "", "after_glow_to": ""}
        done = client.post("/marketing/campaigns", data=form, follow_redirects=False)
        assert done.status_code == 303, done.text
        with db.session_scope(store_cfg) as session:
            saved = service.get(session, "双11 2024")
            assert (saved.target_gmv, saved.target_new_buyers, saved.target_roi) == (200_000, 10, 2.5)
            assert saved.budget == {"douyin": 50_000, "baidu": 10_050}
            assert [p.kind for p in service.phases(session, saved)] == ["warm_up", "peak"]
        opened = client.get(done.headers["location"])
        assert opened.status_code == 200
        assert "双11 2024" in opened.text
        for change, group in (({"name": "双11 2024"}, "another campaign has it"),
                              ({"name": "x", "budget": "douyin 500"}, "Budget"),
                              ({"name": "x", "target_gmv": "-1"}, "Targets"),
                              ({"name": "x", "peak_from": "2024-11-02"}, "Phases"),
                              ({"name": "x", "warm_up_from": "", "warm_up_to": "", "peak_from": "",
                                "peak_to": ""}, "Phases")):
            bad = client.post("/marketing/campaigns", data={**form, **change}, follow_redirects=False)
            assert bad.status_code == 422, change
            assert group in bad.text, change
            assert 'name="warm_up_name"' in bad.text  # the form again, as typed
        analyst = make_user("analyst")
        client.cookies.clear()
        log_in(client, analyst.email, analyst.password)
        assert 'data-testid="campaign-new-link"' not in client.get("/marketing/campaigns").text
