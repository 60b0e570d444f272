"""Alerts through the server: the REST routes (evaluate, inbox, moves, rules, errors) and the
console page in Chinese and English, on imported orders with one spiking day."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.accounts.api import router as accounts_router
from growthwheel.alerts.api import router as alerts_router
from growthwheel.alerts.pages import router as alerts_pages
from growthwheel.alerts.rules import BUILTIN_RULES
from growthwheel.alerts.service import ensure_builtin_rules
from growthwheel.config import Settings
from growthwheel.store import db
from growthwheel.web.pages import router as shell_router
from served_app import app_over

FIRST = date(2025, 3, 3)  # a Monday
SPIKE = date(2025, 4, 23)
DAYS = 70
PER_WEEKDAY = [8, 7, 7, 8, 9, 12, 11]
AppCfg = tuple[Any, Settings, str, str]


def _orders_csv() -> str:
    lines = ["order_id,customer_id,ordered_at,total,status"]
    for i in range(DAYS):
        day = FIRST + timedelta(days=i)
        n = PER_WEEKDAY[day.weekday()] * (3 if day == SPIKE else 1) + (i % 3)
        for j in range(n):
            at = f"{day.isoformat()}T{10 + j % 10:02d}:00:00+08:00"
            lines.append(f"o{i:03d}{j:02d},c{(i * 7 + j) % 300},{at},{99 + j}.00,paid")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def app_cfg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Settings, str, str]]:
    with app_over(tmp_path_factory.mktemp("alerts"), "alerts", {"orders": _orders_csv()},
                  [accounts_router, alerts_router, alerts_pages, shell_router]) as made:
        yield made


@pytest.fixture(scope="module")
def client(app_cfg: tuple[Any, Settings, str, str]) -> Iterator[TestClient]:
    app, _cfg, key, _reader = app_cfg
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_evaluate_finds_the_spike_and_the_inbox_moves(client: TestClient) -> None:
    ok(client.post("/api/v1/alerts/rules", json={
        "name": "订单异常", "metric": "orders", "kind": "anomaly", "params": {"direction": "up", "z": 4},
        "notify": [{"channel": "email", "recipient": "ops@example.com"}]}), 201)
    done = ok(client.post("/api/v1/alerts/evaluate", json={"since": "2025-04-01"}))
    assert done["rules"] == 1 + len(BUILTIN_RULES)
    inbox = ok(client.get("/api/v1/alerts", params={"status": "open"}))
    spikes = [a for a in inbox["alerts"] if a["rule"] == "订单异常"]
    assert [a["period_start"] for a in spikes] == [SPIKE.isoformat()]
    assert spikes[0]["notified"] is True
    assert spikes[0]["drill_down"].startswith("/?start=")
    again = ok(client.post("/api/v1/alerts/evaluate", json={"since": "2025-04-01"}))
    assert again["new_alerts"] == 0
    alert_id = spikes[0]["id"]
    assert ok(client.post(f"/api/v1/alerts/{alert_id}/acknowledge"))["status"] == "acknowledged"
    assert client.post(f"/api/v1/alerts/{alert_id}/acknowledge").status_code == 409
    resolved = ok(client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"note": "flash sale"}))
    assert resolved["note"] == "flash sale"
    assert client.post("/api/v1/alerts/nope/acknowledge").status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "metric": "nonsense", "kind": "anomaly"}, "metric"),
    ({"name": "x", "metric": "orders", "kind": "threshold", "params": {"op": ">"}}, "params.limit"),
    ({"name": "x", "metric": "orders", "kind": "change", "params": {"at_least": 1e99}}, "params.at_least"),
    ({"name": "x", "metric": "orders", "kind": "anomaly", "period": "week"}, "period"),
])
def test_bad_rules_are_422_naming_the_field(client: TestClient, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/v1/alerts/rules", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text


def test_bad_evaluate_date_and_reader_scope(client: TestClient, app_cfg: AppCfg) -> None:
    assert client.post("/api/v1/alerts/evaluate", json={"since": "2025-13-01"}).status_code == 422
    _app, _cfg, _key, reader = app_cfg
    response = client.post("/api/v1/alerts/evaluate", json={}, headers={"Authorization": f"Bearer {reader}"})
    assert response.status_code == 403
    assert client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {reader}"}).status_code == 200


def _login(app: Any, cfg: Settings) -> TestClient:
    browser = TestClient(app)
    secret = accounts.server_secret(cfg.data_dir)
    token = accounts.anonymous_csrf_token(secret)
    response = browser.post("/login", data={"email": "ops@example.com", "password": "pw-operator-0123456789",
                                            "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return browser


def test_console_page_in_both_languages(client: TestClient, app_cfg: AppCfg) -> None:
    app, cfg, _key, _reader = app_cfg
    browser = _login(app, cfg)
    with browser:
        zh = browser.get("/alerts?lang=zh&status=all")
        assert zh.status_code == 200
        assert "预警" in zh.text
        assert "差评激增" in zh.text
        assert "获客成本上升" in zh.text
        assert "Negative-review spike" not in zh.text
        en = browser.get("/alerts?lang=en&status=all")
        assert "Negative-review spike" in en.text
        assert "差评激增" not in en.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', zh.text)
        assert csrf is not None
        made = browser.post("/alerts/rules", data={
            "csrf_token": csrf.group(1), "name": "退款率周环比", "metric": "refund_rate", "kind": "change",
            "period": "week", "compare": "previous", "direction": "up", "at_least_pct": "50"},
            follow_redirects=False)
        assert made.status_code == 303
        assert "done=created" in made.headers["location"]
        bad = browser.post("/alerts/rules", data={
            "csrf_token": csrf.group(1), "name": "坏规则", "metric": "orders", "kind": "threshold", "op": ">",
            "limit": "abc"}, follow_redirects=False)
        assert "error=" in bad.headers["location"]
        rules = ok(client.get("/api/v1/alerts/rules"))
        made_rule = next(r for r in rules if r["name"] == "退款率周环比")
        assert made_rule["params"] == {"compare": "previous", "direction": "up", "at_least": 0.5}
        # The resolved tab shows exactly what the API calls resolved (the notes of the alerts an
        # earlier test of this module resolved, or the empty-inbox text when run alone).
        resolved = ok(client.get("/api/v1/alerts", params={"status": "resolved"}))["alerts"]
        page = browser.get("/alerts?status=resolved&lang=zh")
        if resolved:
            assert all(a["note"] in page.text for a in resolved)
            assert "没有预警" not in page.text
        else:
            assert "没有预警" in page.text


def test_migrated_store_has_builtins_once(app_cfg: AppCfg, client: TestClient) -> None:
    names = [r["builtin"] for r in ok(client.get("/api/v1/alerts/rules")) if r["builtin"]]
    assert sorted(names) == sorted(set(names))
    assert sorted(names) == sorted(BUILTIN_RULES)
    # Migrating and seeding again adds nothing (the built-ins are keyed by name in the database).
    cfg = app_cfg[1]
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        assert ensure_builtin_rules(session) == 0
    again = [r["builtin"] for r in ok(client.get("/api/v1/alerts/rules")) if r["builtin"]]
    assert sorted(again) == sorted(names)
