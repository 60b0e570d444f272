"""Editing and deleting campaigns and influencers in the console (real app, signed in, en and zh):
forms filled in from the store, errors next to the field, a confirmation before deleting, an
influencer attached to a campaign kept until detached, analysts refused."""

from __future__ import annotations

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
def shop(store_cfg: Settings, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The tiny shop; KOL_A and KOC_B attached to Double 11 2024 with a promotion, and a second
    campaign whose name an edit may collide with."""
    data.load(store_cfg, tmp_path)
    with db.session_scope(store_cfg) as session:
        ids = {x["code"]: influencers.create(session, InfluencerIn.model_validate(x), actor="t").id
               for x in (data.KOL_A, data.KOC_B)}
        session.add(Promotion(id="D11PROMO", name="双11 满300减30", layer="order", status="ended",
                              definition={"reward": {"type": "spend_tiers", "tiers": [[30000, 3000]]}},
                              created_by="tests"))
        body = data.campaign_body(list(ids.values()))
        body["links"] = [*body["links"], {"kind": "promotion", "ref_id": "D11PROMO"}]  # type: ignore[misc]
        body["description"] = "kept by the console's edit"
        ids["campaign"] = service.create(session, CampaignIn.model_validate(body), actor="t").id
        other = {**data.campaign_body([]), "name": "618 2024"}
        ids["other"] = service.create(session, CampaignIn.model_validate(other), actor="t").id
    app = create_app(store_cfg, routers=[accounts_router, pages_router, campaign_pages])
    with TestClient(app) as client:
        yield client, ids


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _inputs(html: str) -> dict[str, str]:
    """The form's text, date and hidden inputs by name (their value attributes)."""
    out = {m.group(1): m.group(2) for m in re.finditer(r'<input[^>]*name="([^"]+)" value="([^"]*)"', html)}
    budget = re.search(r'<textarea name="budget"[^>]*>(.*?)</textarea>', html, flags=re.S)
    if budget:
        out["budget"] = budget.group(1)
    return out


def _field_error(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" role="alert" data-field="{field}"[^>]*>(.*?)</p>', html)
    assert found is not None, f"no error next to {field}"
    return found.group(1)


def test_edit_a_campaign(shop: tuple[TestClient, dict[str, str]], make_user: Callable[..., Any],
                         log_in: Callable[..., None]) -> None:
    client, ids = shop
    user = make_user("operator")
    log_in(client, user.email, user.password)
    cid = ids["campaign"]
    page = client.get(f"/marketing/campaigns/{cid}")
    assert f'href="/marketing/campaigns/{cid}/edit"' in page.text
    form_page = client.get(f"/marketing/campaigns/{cid}/edit")
    assert form_page.status_code == 200
    filled = _inputs(form_page.text)
    assert filled["name"] == "Double 11 2024"
    assert filled["target_gmv"] == "2000.00"  # ¥2,000 as typed, not 200000 fen
    assert (filled["peak_from"], filled["peak_to"]) == ("2024-11-04", "2024-11-05")
    assert filled["peak_share"] == "0.6"  # kept (hidden): the form has no share column
    assert filled["budget"].strip() == "douyin = 500.00"
    assert form_page.text.count('name="keep_link"') == 3
    assert form_page.text.count(" checked>") == 3
    # New peak days (the after-glow moves with them), a new budget, KOC_B detached.
    form = {**filled, "csrf_token": _csrf(form_page.text), "profile": "linear",
            "peak_from": "2024-11-04", "peak_to": "2024-11-06", "after_glow_from": "2024-11-07",
            "after_glow_to": "2024-11-08", "budget": "douyin = 650\nbaidu = 80.50",
            "keep_link": [f"influencer:{ids['KOL_A']}", "promotion:D11PROMO"]}
    done = client.post(f"/marketing/campaigns/{cid}/edit", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/marketing/campaigns/{cid}?done=saved"
    assert 'data-testid="campaign-saved"' in client.get(done.headers["location"]).text
    with db.session_scope(client.app.state.cfg) as session:
        saved = service.get(session, cid)
        assert saved.budget == {"douyin": 65_000, "baidu": 8_050}
        assert saved.target_gmv == 200_000
        assert saved.description == "kept by the console's edit"
        phases = [(p.kind, str(p.starts_on), str(p.ends_on), p.share) for p in service.phases(session, saved)]
        assert phases == [
            ("warm_up", "2024-11-01", "2024-11-03", 0.2), ("peak", "2024-11-04", "2024-11-06", 0.6),
            ("after_glow", "2024-11-07", "2024-11-08", None)]
        assert {(x.kind, x.ref_id) for x in service.links(session, saved)} == {
            ("influencer", ids["KOL_A"]), ("promotion", "D11PROMO")}
    # Errors next to the field, in the reader's language, the form as typed.
    zh = client.get(f"/marketing/campaigns/{cid}/edit", params={"lang": "zh"})
    bad = client.post(f"/marketing/campaigns/{cid}/edit",
                      data={**form, "csrf_token": _csrf(zh.text), "peak_from": "2024-11-02"})
    assert bad.status_code == 422
    assert _field_error(bad.text, "phases").startswith("阶段：")
    assert _inputs(bad.text)["peak_from"] == "2024-11-02"
    taken = client.post(f"/marketing/campaigns/{cid}/edit", data={**form, "name": "618 2024"})
    assert taken.status_code == 422
    assert _field_error(taken.text, "name") == "名称：已有同名活动。"
    money = client.post(f"/marketing/campaigns/{cid}/edit", data={**form, "budget": "douyin 5"},
                        params={"lang": "en"})
    assert _field_error(money.text, "budget").startswith("Budget:")
    with db.session_scope(client.app.state.cfg) as session:
        assert service.get(session, cid).name == "Double 11 2024"  # nothing saved by the bad posts


def test_edit_and_remove_influencers(shop: tuple[TestClient, dict[str, str]], make_user: Callable[..., Any],
                                     log_in: Callable[..., None]) -> None:
    client, ids = shop
    user = make_user("operator")
    log_in(client, user.email, user.password)
    listing = client.get("/marketing/influencers", params={"from": "2024-11-01", "to": "2024-11-07"})
    assert f'href="/marketing/influencers/{ids["KOL_A"]}/edit"' in listing.text
    page = client.get(f"/marketing/influencers/{ids['KOL_A']}/edit")
    filled = _inputs(page.text)
    assert (filled["code"], filled["followers"], filled["cost_per_deal"]) == ("KOL_A", "1500000", "200.00")
    form = {**filled, "csrf_token": _csrf(page.text), "followers": "300000", "cost_per_deal": "150.5"}
    done = client.post(f"/marketing/influencers/{ids['KOL_A']}/edit", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    with db.session_scope(client.app.state.cfg) as session:
        moved = influencers.get(session, "KOL_A")
        assert (moved.followers, moved.cost_per_deal) == (300_000, 15_050)
    bad = client.post(f"/marketing/influencers/{ids['KOL_A']}/edit", data={**form, "followers": "-3"},
                      params={"lang": "zh"})
    assert bad.status_code == 422
    assert _field_error(bad.text, "followers") == "粉丝数：不小于 0 的整数。"
    taken = client.post(f"/marketing/influencers/{ids['KOL_A']}/edit", data={**form, "code": "KOC_B"})
    assert _field_error(taken.text, "code") == "追踪码：已被其他达人使用。"
    # KOC_B is attached to Double 11 2024: the confirmation names the campaign and a POST is refused.
    ask = client.get(f"/marketing/influencers/{ids['KOC_B']}/delete", params={"lang": "en"})
    assert "Double 11 2024" in ask.text
    assert 'data-testid="delete-blocked"' in ask.text
    assert 'data-testid="delete-confirm"' not in ask.text
    refused = client.post(f"/marketing/influencers/{ids['KOC_B']}/delete",
                          data={"csrf_token": _csrf(ask.text)})
    assert refused.status_code == 409
    with db.session_scope(client.app.state.cfg) as session:
        assert influencers.get(session, "KOC_B").code == "KOC_B"
        with pytest.raises(influencers.InfluencerInUseError):  # the API and CLI answer the same
            influencers.delete(session, "KOC_B")
    # Detached from the campaign, it can go.
    edit = client.get(f"/marketing/campaigns/{ids['campaign']}/edit")
    form_c = {**_inputs(edit.text), "csrf_token": _csrf(edit.text), "profile": "linear",
              "keep_link": [f"influencer:{ids['KOL_A']}", "promotion:D11PROMO"]}
    assert client.post(f"/marketing/campaigns/{ids['campaign']}/edit", data=form_c,
                       follow_redirects=False).status_code == 303
    ask = client.get(f"/marketing/influencers/{ids['KOC_B']}/delete")
    assert 'data-testid="delete-confirm"' in ask.text
    gone = client.post(f"/marketing/influencers/{ids['KOC_B']}/delete",
                       data={"csrf_token": _csrf(ask.text)}, follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == "/marketing/influencers?done=deleted"
    with db.session_scope(client.app.state.cfg) as session:
        assert [i.code for i in influencers.list_all(session)] == ["KOL_A"]


def test_delete_a_campaign_after_asking_and_analysts_refused(
        shop: tuple[TestClient, dict[str, str]], make_user: Callable[..., Any],
        log_in: Callable[..., None]) -> None:
    client, ids = shop
    analyst = make_user("analyst")
    log_in(client, analyst.email, analyst.password)
    cid = ids["other"]
    page = client.get(f"/marketing/campaigns/{cid}")
    assert "/edit" not in page.text
    assert "/delete" not in page.text
    assert "/edit" not in client.get("/marketing/influencers").text
    token = _csrf(page.text)
    assert client.get(f"/marketing/campaigns/{cid}/edit").status_code == 403
    assert client.get(f"/marketing/campaigns/{cid}/delete").status_code == 403
    assert client.get(f"/marketing/influencers/{ids['KOL_A']}/edit").status_code == 403
    for url, form in ((f"/marketing/campaigns/{cid}/edit", {"name": "x"}),
                      (f"/marketing/campaigns/{cid}/delete", {}),
                      (f"/marketing/influencers/{ids['KOL_A']}/edit", {"code": "X"}),
                      (f"/marketing/influencers/{ids['KOL_A']}/delete", {})):
        denied = client.post(url, data={**form, "csrf_token": token}, follow_redirects=False)
        assert denied.status_code == 403, url
    operator = make_user("operator")
    client.cookies.clear()
    log_in(client, operator.email, operator.password)
    ask = client.get(f"/marketing/campaigns/{cid}/delete", params={"lang": "zh"})
    assert "删除活动 618 2024？" in ask.text
    assert f'action="/marketing/campaigns/{cid}/delete"' in ask.text
    forged = client.post(f"/marketing/campaigns/{cid}/delete", data={"csrf_token": "x"})
    assert forged.status_code == 403
    gone = client.post(f"/marketing/campaigns/{cid}/delete", data={"csrf_token": _csrf(ask.text)},
                       follow_redirects=False)
    assert gone.status_code == 303
    assert "活动已删除。" in client.get(gone.headers["location"]).text
    assert client.get(f"/marketing/campaigns/{cid}/edit").status_code == 404
    with db.session_scope(client.app.state.cfg) as session:
        assert [c.name for c in service.list_all(session)] == ["Double 11 2024"]
