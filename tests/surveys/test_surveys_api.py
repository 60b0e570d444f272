"""Surveys through the server: create, answer once (API and signed link page), NPS by period /
channel / segment with its interval, repurchase by NPS group from real warehouse orders, errors
as problem+json naming the field, the console page in zh and en."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.api import router as accounts_router
from growthwheel.config import Settings
from growthwheel.journeys.channels.links import LinkMaker
from growthwheel.journeys.channels.templates import MessageTemplate, Recipient, TemplateText, render
from growthwheel.segments.models import Segment
from growthwheel.segments.repository import MEMBERS_TABLE, ensure_tables
from growthwheel.surveys.api import router as surveys_api
from growthwheel.surveys.pages import router as surveys_pages
from growthwheel.surveys.public import router as surveys_public
from growthwheel.warehouse import connect
from growthwheel.web.pages import router as shell_router
from served_app import app_over

# 60 customers answer on 2025-03-05: c0–c19 promoters (10), c20–c39 passives (8), c40–c59 detractors (3)
PROMOTERS, PASSIVES, DETRACTORS = range(20), range(20, 40), range(40, 60)
ANSWERED = "2025-03-05T10:00:00+08:00"


def _orders_csv() -> str:
    lines = ["order_id,customer_id,ordered_at,total,status"]
    lines += [f"first{i},c{i},2025-02-0{1 + i % 9}T12:00:00+08:00,100.00,paid" for i in range(60)]
    lines += [f"again{i},c{i},2025-03-20T12:00:00+08:00,80.00,paid" for i in range(10)]  # 10 promoters
    lines += ["again40,c40,2025-03-25T12:00:00+08:00,80.00,paid",  # one detractor
              "before41,c41,2025-03-04T12:00:00+08:00,80.00,paid",  # before answering: not a repurchase
              "late42,c42,2025-05-20T12:00:00+08:00,80.00,paid",  # after 30 days: not within the window
              "cancel43,c43,2025-03-10T12:00:00+08:00,80.00,cancelled",  # not paid
              "last,c99,2025-06-30T12:00:00+08:00,10.00,paid"]  # the warehouse's last order
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def app_cfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Settings, str, str, str]]:
    made: dict[str, str] = {}

    def early_birds(session: Any, _cfg: Settings) -> None:
        seg = Segment(name="早鸟", definition={"all": []}, created_by="tests")
        session.add(seg)
        session.flush()
        made["segment"] = seg.id

    with app_over(tmp_path_factory.mktemp("surveys"), "surveys", {"orders": _orders_csv()},
                  [accounts_router, surveys_api, surveys_pages, surveys_public, shell_router],
                  prepare=early_birds) as (app, cfg, key, reader):
        backend = connect(cfg, read_only=False)
        con = backend.con
        ensure_tables(con)
        # the segment holds 10 promoters and 10 detractors: its NPS is 0
        for i in [*range(10), *range(40, 50)]:
            con.execute(f"INSERT INTO {MEMBERS_TABLE} VALUES (?, ?, TIMESTAMP '2025-03-01 00:00:00')",
                        [made["segment"], f"c{i}"])
        backend.disconnect()
        yield app, cfg, key, reader, made["segment"]


@pytest.fixture(scope="module")
def client(app_cfg: tuple[Any, Settings, str, str, str]) -> Iterator[TestClient]:
    app, _cfg, key, _reader, _seg = app_cfg
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


@pytest.fixture(scope="module")
def survey(client: TestClient) -> dict[str, Any]:
    made = ok(client.post("/api/v1/surveys", json={"name": "购后 NPS", "channel": "email"}), 201)
    for i in range(60):
        score = 10 if i in PROMOTERS else 8 if i in PASSIVES else 3
        ok(client.post(f"/api/v1/surveys/{made['id']}/answers",
                       json={"customer_id": f"c{i}", "score": score, "answered_at": ANSWERED}), 201)
    return made  # type: ignore[no-any-return]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_answers_are_recorded_once_per_customer_and_key(client: TestClient, survey: dict[str, Any]) -> None:
    url = f"/api/v1/surveys/{survey['id']}/answers"
    again = ok(client.post(url, json={"customer_id": "c0", "score": 10, "answered_at": ANSWERED}), 200)
    assert again["created"] is False
    conflict = client.post(url, json={"customer_id": "c0", "score": 2})
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "answer_conflict"
    # another response key is another answer (e.g. one per order)
    other = ok(client.post(url, json={"customer_id": "c0", "score": 9, "response_key": "order-7",
                                      "comment": "物流很快"}), 201)
    assert other["channel"] == "email"  # the survey's channel tag
    # the comment went through the voice domain's sentiment and aspects
    assert other["sentiment"] > 0.5
    assert other["aspects"]["mentions"][0]["aspect"] == "logistics"
    assert other["aspects"]["mentions"][0]["polarity"] == "positive"
    complaint = ok(client.post(url, json={"customer_id": "c60", "score": 2, "response_key": "order-8",
                                          "comment": "包装破损，客服回复很慢"}), 201)
    assert complaint["sentiment"] < 0.5
    aspects = {r["aspect"]: r for r in ok(client.get(f"/api/v1/surveys/{survey['id']}/nps"))["aspects"]}
    assert aspects["packaging"]["detractor_negative"] == 1
    assert aspects["logistics"]["positive"] == 1
    listed = ok(client.get("/api/v1/surveys"))
    assert [s["answers"] for s in listed if s["id"] == survey["id"]] == [62]
    [mine] = [s for s in listed if s["id"] == survey["id"]]
    assert (mine["nps"]["promoters"], mine["nps"]["detractors"]) == (21, 21)


@pytest.mark.parametrize(("body", "field"), [
    ({"customer_id": "c1", "score": 11}, "score"),
    ({"customer_id": "c1", "score": "7"}, "score"),
    ({"customer_id": "", "score": 7}, "customer_id"),
    ({"customer_id": "c1", "score": 7, "comment": "x" * 2001}, "comment"),
    ({"customer_id": "c\u200b1", "score": 7}, "customer_id"),
    ({"customer_id": "c1", "score": 7, "comment": "a\u0000b"}, "comment"),
    ({"customer_id": "c1", "score": 7, "answered_at": "9999-12-31T23:00:00-05:00"}, "answered_at"),
    ({"customer_id": "c1", "score": 7, "answered_at": "2999-01-01T00:00:00Z"}, "answered_at"),
])
def test_bad_answers_are_422_naming_the_field(client: TestClient, survey: dict[str, Any],
                                              body: dict[str, Any], field: str) -> None:
    response = client.post(f"/api/v1/surveys/{survey['id']}/answers", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_errors_for_missing_surveys_names_and_scopes(app_cfg: Any, client: TestClient,
                                                     survey: dict[str, Any]) -> None:
    assert client.get("/api/v1/surveys/nope/nps").status_code == 404
    taken = client.post("/api/v1/surveys", json={"name": "购后 NPS"})
    assert taken.status_code == 409
    assert "name" in taken.json()["detail"]
    assert client.get(f"/api/v1/surveys/{survey['id']}/nps", params={"period": "day"}).status_code == 422
    assert client.get(f"/api/v1/surveys/{survey['id']}/repurchase", params={"days": 0}).status_code == 422
    reader = app_cfg[3]
    refused = client.post(f"/api/v1/surveys/{survey['id']}/answers", json={"customer_id": "c1", "score": 5},
                          headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403


def test_nps_by_period_and_channel_with_interval(client: TestClient, survey: dict[str, Any]) -> None:
    report = ok(client.get(f"/api/v1/surveys/{survey['id']}/nps",
                           params={"period": "month", "until": "2025-04-01T00:00:00+08:00"}))
    overall = report["overall"]
    assert (overall["promoters"], overall["passives"], overall["detractors"]) == (20, 20, 20)
    assert overall["nps"] == 0.0
    assert overall["low"] < 0 < overall["high"]
    assert overall["wald_low"] == pytest.approx(-20.66, abs=0.01)  # 1.96 * sqrt(2/3 / 60) = 0.2066
    assert [r["group"] for r in report["by_period"]] == ["2025-03-01"]
    assert [r["group"] for r in report["by_channel"]] == ["email"]
    weekly = ok(client.get(f"/api/v1/surveys/{survey['id']}/nps", params={"period": "week"}))
    assert weekly["by_period"][0]["group"] == "2025-03-03"  # the shop-local Monday


def test_nps_by_saved_segment(app_cfg: Any, client: TestClient, survey: dict[str, Any]) -> None:
    rows = ok(client.get(f"/api/v1/surveys/{survey['id']}/segments"))
    assert [(r["group"], r["segment_id"], r["n"]) for r in rows] == [("早鸟", app_cfg[4], 21)]  # c0 twice
    assert rows[0]["promoters"] == 11
    assert rows[0]["detractors"] == 10


def test_repurchase_by_nps_group(client: TestClient, survey: dict[str, Any]) -> None:
    data = ok(client.get(f"/api/v1/surveys/{survey['id']}/repurchase", params={"days": 30}))
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["promoter"]["eligible"] == 20  # c0's second answer is today's: its window is open
    assert groups["promoter"]["repurchased"] == 10  # c0–c9
    assert groups["passive"]["repurchased"] == 0
    assert groups["detractor"]["repurchased"] == 1  # c40 (c41 before, c42 too late, c43 cancelled)
    assert groups["detractor"]["share"] == 0.05
    assert data["as_of"].startswith("2025-06-30")
    # a window that has not closed by the last order: nothing is eligible yet
    late = ok(client.get(f"/api/v1/surveys/{survey['id']}/repurchase", params={"days": 200}))
    assert all(g["eligible"] == 0 and g["share"] is None for g in late["groups"])


def test_signed_link_answers_once_in_both_languages(app_cfg: Any, client: TestClient,
                                                    survey: dict[str, Any]) -> None:
    url = ok(client.post(f"/api/v1/surveys/{survey['id']}/links",
                         json={"customer_id": "c77", "channel": "sms", "message_key": "m-1"}), 201)["url"]
    path = url.split("127.0.0.1:8000", 1)[1]
    anon = TestClient(client.app)
    page = anon.get(path, params={"lang": "en"})
    assert page.status_code == 200
    assert "How likely are you to recommend us" in page.text
    assert anon.get(path, params={"lang": "zh"}).text.count("您有多大可能把我们推荐给朋友或同事") == 1
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    bad = anon.post(path, data={"csrf_token": csrf.group(1), "score": "12"})
    assert bad.status_code == 422
    assert "0 到 10" in bad.text
    nul = anon.post(path, data={"csrf_token": csrf.group(1), "score": "9", "comment": "坏\x00字符"})
    assert nul.status_code == 422
    assert "无法保存的字符" in nul.text
    done = anon.post(path, data={"csrf_token": csrf.group(1), "score": "9", "comment": "很满意"})
    assert done.status_code == 200
    assert "谢谢" in done.text
    twice = anon.post(path, data={"csrf_token": csrf.group(1), "score": "2"})
    assert "已经收到过" in twice.text
    report = ok(client.get(f"/api/v1/surveys/{survey['id']}/nps"))
    assert {r["group"]: r["n"] for r in report["by_channel"]}["sms"] == 1
    tampered = anon.get(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
    assert tampered.status_code == 400
    assert anon.post(path, data={"score": "9"}).status_code == 403  # no CSRF token


def test_journey_templates_can_carry_the_survey_link(app_cfg: Any, survey: dict[str, Any]) -> None:
    template = MessageTemplate(name="nps", channel="sms", sms_template_code="SMS_1",
                               texts={"zh": TemplateText(text="请为我们打分：{{ survey_url('购后 NPS') }}",
                                                         sms_params={"url": "{{ survey_url('购后 NPS') }}"})})
    links = LinkMaker(secret=b"s" * 32, base_url="https://shop.example.com", customer_id="c5", channel="sms",
                      message_key="journey:1:c5")
    message = render(template, Recipient("c5", "13800000000", "zh"), links=links)
    url = message.data["template_params"]["url"]
    assert url.startswith("https://shop.example.com/s/")
    assert url in message.text


def test_console_page_in_both_languages(app_cfg: Any, survey: dict[str, Any]) -> None:
    app = app_cfg[0]
    with TestClient(app) as browser:
        login = browser.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf is not None
        browser.post("/login", data={"email": "ops@example.com", "password": "pw-operator-0123456789",
                                     "csrf_token": csrf.group(1), "next": "/surveys"})
        listing = browser.get("/surveys", params={"lang": "zh"})
        assert listing.status_code == 200
        assert "购后 NPS" in listing.text
        row = re.search(r'<tr data-survey="[^"]+">.*?</tr>', listing.text, re.S)
        assert row is not None
        assert "+" in row.group(0)  # the survey's NPS and interval beside its answers
        zh = browser.get(f"/surveys/{survey['id']}", params={"lang": "zh", "days": "30"})
        assert zh.status_code == 200
        assert "各周期 NPS" in zh.text
        assert 'id="chart-nps"' in zh.text
        assert "survey_url(" in zh.text
        en = browser.get(f"/surveys/{survey['id']}", params={"lang": "en", "period": "month"})
        assert "NPS by period" in en.text
        assert "Promoters (9–10)" in en.text
        assert "What the comments talk about" in en.text
        assert "Packaging" in en.text
        assert browser.get("/surveys/nope").status_code == 404
        form_csrf = re.search(r'name="csrf_token" value="([^"]+)"', listing.text)
        assert form_csrf is not None
        made = browser.post("/surveys", data={"csrf_token": form_csrf.group(1), "name": " "},
                            follow_redirects=False)
        assert made.status_code == 303
        assert "error=" in made.headers["location"]
        shown = browser.get(made.headers["location"])
        assert "name" in shown.text


def test_answer_time_needs_an_offset(client: TestClient, survey: dict[str, Any]) -> None:
    response = client.post(f"/api/v1/surveys/{survey['id']}/answers",
                           json={"customer_id": "c3", "score": 7, "response_key": "naive",
                                 "answered_at": "2025-03-05T10:00:00"})
    assert response.status_code == 422
    assert "answered_at" in response.text
    stamped = datetime(2025, 3, 5, 10, tzinfo=UTC).isoformat()
    ok(client.post(f"/api/v1/surveys/{survey['id']}/answers",
                   json={"customer_id": "c3", "score": 7, "response_key": "aware", "answered_at": stamped}),
       201)
