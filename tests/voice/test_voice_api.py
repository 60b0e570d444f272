"""Reviews through the server: capture into the warehouse and the queue, the queue's routes, the
product feedback over the warehouse's reviews, and problems naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.accounts.api import router as accounts_router
from growthwheel.config import Settings
from growthwheel.voice.api import router as voice_router
from growthwheel.voice.pages import router as voice_pages
from growthwheel.web.pages import router as shell_router
from served_app import app_over

NOW = datetime.now(UTC).replace(microsecond=0)
AppCfg = tuple[Any, Settings, str, str]


def _reviews_csv() -> str:
    """SKU A: logistics fine in the previous four weeks, then complained about in the last ones."""
    lines = ["review_id,sku,rating,created_at,body,language"]
    for i in range(8):
        before = NOW - timedelta(days=40 - i)
        lines.append(f"P{i},SKU-A,5,{before.isoformat()},物流很快，隔天就到了，包装完好。,zh")
    for i in range(4):
        recent = NOW - timedelta(days=10 - i)
        lines.append(f"N{i},SKU-A,2,{recent.isoformat()},物流太慢了，等了一个多星期才到。,zh")
    lines.append(f"N9,SKU-B,5,{(NOW - timedelta(days=3)).isoformat()},\"Great value, works well.\",en")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def app_cfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppCfg]:
    with app_over(tmp_path_factory.mktemp("voice"), "voice", {"reviews": _reviews_csv()},
                  [accounts_router, voice_router, voice_pages, shell_router]) as made:
        yield made


@pytest.fixture(scope="module")
def client(app_cfg: AppCfg) -> Iterator[TestClient]:
    app, _cfg, key, _reader = app_cfg
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_capture_sync_and_work_the_queue(client: TestClient) -> None:
    synced = ok(client.post("/api/v1/reviews/sync"))
    assert synced == {"read": 13, "opened": 4}
    assert ok(client.post("/api/v1/reviews/sync")) == {"read": 0, "opened": 0}
    captured = ok(client.post("/api/v1/reviews", json={
        "review_id": "API-1", "sku": "SKU-B", "rating": 1, "created_at": NOW.isoformat(),
        "body": "Cheaply made and broke after two uses.", "language": "en"}), 201)
    assert captured["label"] == "negative"
    assert captured["case"]["status"] == "open"
    assert [(a["aspect"], a["polarity"]) for a in captured["aspects"]] == [("quality", "negative")]
    fine = ok(client.post("/api/v1/reviews", json={
        "review_id": "API-2", "sku": "SKU-B", "rating": 5, "created_at": NOW.isoformat(),
        "body": "质量很好，会回购。"}), 201)
    assert fine["case"] is None
    assert fine["label"] == "positive"
    queue = ok(client.get("/api/v1/reviews/cases", params={"status": "open"}))
    assert queue["summary"]["open"] == 5
    first = ok(client.post("/api/v1/reviews/cases/claim-next"))["case"]
    assert first["review_id"] == "N0"  # due first
    assert first["owner"] == "voice"
    assert ok(client.post(f"/api/v1/reviews/cases/{first['id']}/claim"), 409) is not None
    replied = ok(client.post(f"/api/v1/reviews/cases/{first['id']}/reply",
                             json={"template": first["suggested_template"]}))
    assert replied["status"] == "replied"
    assert replied["reply"].startswith("亲")
    # written ten days ago: answered long after its 48 hours
    assert ok(client.get(f"/api/v1/reviews/cases/{first['id']}"))["breached"] is True
    fresh = ok(client.get("/api/v1/reviews/cases", params={"sku": "SKU-B", "status": "open"}))["cases"]
    assert [(c["review_id"], c["breached"]) for c in fresh] == [("API-1", False)]
    assert 47 * 3600 < fresh[0]["time_left_seconds"] <= 48 * 3600


def test_the_captured_review_is_in_the_warehouse(app_cfg: AppCfg, client: TestClient) -> None:
    app, _cfg, _key, _reader = app_cfg
    ok(client.post("/api/v1/reviews", json={
        "review_id": "API-3", "sku": "SKU-C", "rating": 4, "created_at": NOW.isoformat(),
        "title": "不错", "body": "和描述一致"}), 201)
    with app.state.warehouse.read() as con:
        t = con.table("reviews")
        rows = t.filter(t.review_id == "API-3").to_pyarrow().to_pylist()
    assert [(r["sku"], r["rating"], r["title"], r["body"]) for r in rows] == [
        ("SKU-C", 4, "不错", "和描述一致")]


def test_feedback_names_the_aspect_getting_worse_with_quotes(client: TestClient) -> None:
    out = ok(client.get("/api/v1/reviews/feedback", params={"days": 28}))
    worse = [(w["sku"], w["aspect"]) for w in out["worse"]]
    assert ("SKU-A", "logistics") in worse
    row = next(w for w in out["worse"] if (w["sku"], w["aspect"]) == ("SKU-A", "logistics"))
    assert row["negative"] == 4
    assert row["previous_negative"] == 0
    assert row["quotes"][0] == "物流太慢了"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/reviews", {"review_id": "x", "sku": "s", "rating": 9, "created_at": NOW.isoformat()},
     "rating"),
    ("/api/v1/reviews", {"review_id": "x", "sku": "s", "rating": 3, "created_at": "2026-01-01T10:00"},
     "created_at"),
    ("/api/v1/reviews/analyse", {"texts": []}, "texts"),
])
def test_bad_input_is_a_422_naming_the_field(client: TestClient, path: str, body: dict[str, Any],
                                             field: str) -> None:
    problem = ok(client.post(path, json=body), 422)
    assert field in str(problem)


def test_reply_problems_and_scopes(app_cfg: AppCfg, client: TestClient) -> None:
    case = ok(client.post("/api/v1/reviews/cases/claim-next"))["case"]
    problem = ok(client.post(f"/api/v1/reviews/cases/{case['id']}/reply", json={"template": "nope"}), 422)
    assert "template" in str(problem)
    zh = ok(client.post(f"/api/v1/reviews/cases/{case['id']}/reply", json={},
                        headers={"Accept-Language": "zh-CN"}), 422)
    assert "请填写回复内容" in str(zh)
    ok(client.post("/api/v1/reviews/cases/nope/claim"), 404)
    _app, _cfg, _key, reader = app_cfg
    denied = client.post("/api/v1/reviews/cases/claim-next", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    analysed = ok(client.post("/api/v1/reviews/analyse", json={"texts": ["包装破损了"]},
                              headers={"Authorization": f"Bearer {reader}"}))
    assert analysed[0]["aspects"][0]["aspect"] == "packaging"


def test_console_queue_and_feedback_pages(app_cfg: AppCfg, client: TestClient) -> None:
    app, cfg, _key, _reader = app_cfg
    browser = TestClient(app)
    token = accounts.anonymous_csrf_token(accounts.server_secret(cfg.data_dir))
    logged = browser.post("/login", data={"email": "ops@example.com", "password": "pw-operator-0123456789",
                                          "csrf_token": token}, follow_redirects=False)
    assert logged.status_code == 303, logged.text
    with browser:
        zh = browser.get("/reviews?lang=zh&status=open")
        assert zh.status_code == 200
        assert "评价服务队列" in zh.text
        assert "物流太慢了" in zh.text
        assert "Review service queue" not in zh.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', zh.text)
        assert csrf is not None
        synced = browser.post("/reviews/sync", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        assert "done=synced" in synced.headers["location"]
        took = browser.post("/reviews/claim-next", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        assert "done=claimed" in took.headers["location"]
        mine = browser.get("/reviews?status=claimed&lang=zh")
        assert 'data-testid="reply-form"' in mine.text
        case_id = re.search(r'action="/reviews/([^/]+)/move" class="stack"', mine.text)
        assert case_id is not None
        empty = browser.post(f"/reviews/{case_id.group(1)}/move", data={
            "csrf_token": csrf.group(1), "action": "reply", "text": "x" * 2001}, follow_redirects=False)
        assert "error=" in empty.headers["location"]
        done = browser.post(f"/reviews/{case_id.group(1)}/move", data={
            "csrf_token": csrf.group(1), "action": "reply", "template": "logistics", "text": ""},
            follow_redirects=False)
        assert "done=replied" in done.headers["location"]
        again = browser.post(f"/reviews/{case_id.group(1)}/move", data={
            "csrf_token": csrf.group(1), "action": "claim"}, follow_redirects=False)
        assert "done=conflict" in again.headers["location"]
        assert ok(client.get(f"/api/v1/reviews/cases/{case_id.group(1)}"))["template"] == "logistics"
        en = browser.get("/reviews?lang=en&status=replied")
        assert "Review service queue" in en.text
        feedback = browser.get("/reviews/feedback?lang=zh&days=28")
        assert feedback.status_code == 200
        assert 'data-sku="SKU-A" data-aspect="logistics"' in feedback.text
        assert "变差的维度" in feedback.text
