"""``/api/v1/journeys`` on SQLite and PostgreSQL: create (a bad definition is a 422 naming the
field), list, get, activate / pause / end (409 when the status forbids it), audience preview
with a count over the real warehouse, report; the analyst role cannot change anything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.schemas import ROLE_SCOPES, Principal
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.api.deps import current_principal
from growthwheel.config import Settings
from growthwheel.journeys.rest import router
from growthwheel.warehouse.db import open_duckdb

ADMIN = Principal(kind="user", id="u1", name="admin@example.com", role="admin", scopes=ROLE_SCOPES["admin"])
ANALYST = Principal(
    kind="user", id="u2", name="analyst@example.com", role="analyst", scopes=ROLE_SCOPES["analyst"]
)
BASE = "/api/v1/journeys"
DEFINITION = {
    "trigger": {"kind": "purchase_count", "n": 1},
    "start": "hello",
    "steps": [
        {"id": "hello", "type": "tag", "tag": "welcomed", "next": "out"},
        {"id": "out", "type": "exit"},
    ],
}


@pytest.fixture
def client(store_cfg: Settings) -> Iterator[TestClient]:
    con = open_duckdb(store_cfg)
    recent = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=3)
    con.execute(
        "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) "
        "SELECT printf('o%d', i), printf('c%d', i % 7), ? + to_hours(i), ?, 'paid', 100 "
        "FROM range(20) t(i)",
        [recent, recent.date()],
    )
    con.close()
    app = warehouse_api.install(create_app(store_cfg, routers=[router]))
    app.dependency_overrides[current_principal] = lambda: ADMIN
    with TestClient(app) as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def test_life_cycle_preview_and_report(client: TestClient) -> None:
    created = ok(client.post(BASE, json={"name": "welcome", "definition": DEFINITION}), 201)
    assert created["status"] == "draft"
    assert ok(client.get(f"{BASE}/welcome"))["id"] == created["id"]
    assert [j["name"] for j in ok(client.get(BASE, params={"status": "draft"}))] == ["welcome"]
    duplicate = client.post(BASE, json={"name": "welcome", "definition": DEFINITION})
    assert duplicate.status_code == 409
    preview = ok(client.post(f"{BASE}/preview", json={"definition": DEFINITION, "days": 30}))
    assert preview["customers"] == 7  # seven buyers made a first purchase three days ago
    assert ok(client.post(f"{BASE}/{created['id']}/activate"))["status"] == "active"
    assert ok(client.post(f"{BASE}/{created['id']}/pause"))["status"] == "paused"
    assert client.post(f"{BASE}/{created['id']}/pause").status_code == 409
    assert ok(client.post(f"{BASE}/{created['id']}/end"))["status"] == "ended"
    report = ok(client.get(f"{BASE}/welcome/report"))
    assert report["entered"] == 0
    assert "hold-out" in report["uplift_words"]["en"]
    assert client.get(f"{BASE}/nope").status_code == 404


def test_bad_definitions_are_422_naming_the_field(client: TestClient) -> None:
    cycle = {
        **DEFINITION,
        "steps": [
            {"id": "hello", "type": "tag", "tag": "x", "next": "again"},
            {"id": "again", "type": "wait", "hours": 1, "next": "hello"},
        ],
    }
    response = client.post(BASE, json={"name": "loop", "definition": cycle})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "cycle" in response.text
    bad_template = {
        **DEFINITION,
        "steps": [
            {
                "id": "hello",
                "type": "send",
                "channel": "email",
                "next": "out",
                "template": {"texts": {"zh": {"subject": "hi {{ oops", "text": "x"}}},
            },
            {"id": "out", "type": "exit"},
        ],
    }
    response = client.post(BASE, json={"name": "tpl", "definition": bad_template})
    assert response.status_code == 422
    assert "steps[0].template.texts.zh.subject" in response.text
    unknown = {**DEFINITION, "trigger": {"kind": "moon_phase"}}
    response = client.post(BASE, json={"name": "moon", "definition": unknown})
    assert response.status_code == 422
    assert "definition.trigger" in response.text


def test_analyst_cannot_change_journeys(client: TestClient) -> None:
    client.app.dependency_overrides[current_principal] = lambda: ANALYST  # type: ignore[attr-defined]
    assert client.post(BASE, json={"name": "x", "definition": DEFINITION}).status_code == 403
    assert client.get(BASE).status_code == 200
