"""``/api/v1/segments`` over the tea shop: preview, save, refresh on the server's writer thread,
CSV export masked for analysts, tags, scopes and problem+json errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tea_shop import doc_examples

from growthwheel.accounts.models import AuditEntry
from growthwheel.accounts.schemas import ROLE_SCOPES, Principal
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.api.deps import current_principal
from growthwheel.config import Settings
from growthwheel.segments import scores
from growthwheel.segments.api import router as segments_router
from growthwheel.store.db import session_scope

ADMIN = Principal(kind="user", id="u1", name="admin@example.com", role="admin", scopes=ROLE_SCOPES["admin"])
ANALYST = Principal(kind="user", id="u2", name="analyst@example.com", role="analyst",
                    scopes=ROLE_SCOPES["analyst"])


@pytest.fixture
def client(tea_shop: Settings) -> Iterator[TestClient]:
    scores.set_score_resolver(scores.warehouse_scores)
    app = warehouse_api.install(create_app(tea_shop, routers=[segments_router]))
    app.dependency_overrides[current_principal] = lambda: ADMIN
    with TestClient(app) as test_client:
        yield test_client
    scores.set_score_resolver(None)


def as_role(client: TestClient, principal: Principal) -> None:
    client.app.dependency_overrides[current_principal] = lambda: principal  # type: ignore[attr-defined]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_preview_counts_and_masks_for_analysts(client: TestClient) -> None:
    body = {"definition": doc_examples()["recent-signups"], "as_of": "2025-03-31", "sample": 5}
    admin = ok(client.post("/api/v1/segments/preview", json=body))
    assert admin["count"] == 2
    assert admin["as_of"] == "2025-03-31"
    alice = next(s for s in admin["sample"] if s["customer_id"] == "c1")
    assert alice["email"] == "alice@example.com"
    as_role(client, ANALYST)
    analyst = ok(client.post("/api/v1/segments/preview", json=body))
    alice = next(s for s in analyst["sample"] if s["customer_id"] == "c1")
    assert (alice["email"], alice["phone"]) == ("a***@example.com", "138****8000")


def test_a_bad_definition_is_a_problem_naming_the_place(client: TestClient) -> None:
    bad = {"definition": {"all": [{"type": "orders", "op": ">=", "value": 1, "window": {"last": -1}}]}}
    response = client.post("/api/v1/segments/preview", json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_segment"
    assert "all[0].window.last" in response.json()["detail"]


def test_analysts_read_but_do_not_change(client: TestClient) -> None:
    as_role(client, ANALYST)
    denied = client.post("/api/v1/segments", json={"name": "x", "definition": {"all": []}})
    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden"
    assert client.post("/api/v1/segments/tags/vip", json={"add": ["c2"]}).status_code == 403
    assert ok(client.get("/api/v1/segments")) == []
    assert ok(client.get("/api/v1/segments/schema"))["title"] == "Growthwheel segment definition"


def test_save_refresh_history_and_export(client: TestClient, tea_shop: Settings) -> None:
    created = ok(client.post("/api/v1/segments", json={
        "name": "Tea buyers", "definition": doc_examples()["bought-tea-30d"], "tag": "tea-recent",
        "description": "bought tea in the last 30 days"}), 201)
    seg_id = created["id"]
    assert created["members"] is None
    assert created["created_by"] == "admin@example.com"
    again = client.post("/api/v1/segments", json={"name": "Tea buyers", "definition": {"all": []}})
    assert again.status_code == 409
    assert again.json()["code"] == "segment_exists"

    first = ok(client.post(f"/api/v1/segments/{seg_id}/refresh", json={"as_of": "2025-03-31"}))
    assert (first["members"], first["entered"], first["left"], first["tagged"]) == (2, 2, 0, 2)
    second = ok(client.post(f"/api/v1/segments/{seg_id}/refresh", json={"as_of": "2025-04-25"}))
    assert (second["members"], second["entered"], second["left"], second["untagged"]) == (2, 1, 1, 1)
    got = ok(client.get("/api/v1/segments/Tea buyers"))  # by name too
    assert (got["id"], got["members"], got["as_of"]) == (seg_id, 2, "2025-04-25")
    history = ok(client.get(f"/api/v1/segments/{seg_id}/history"))
    assert [(h["entered"], h["left"]) for h in history] == [(1, 1), (2, 0)]

    export = client.get(f"/api/v1/segments/{seg_id}/members.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert f'filename="segment-{seg_id}.csv"' in export.headers["content-disposition"]
    members = list(csv.DictReader(io.StringIO(export.text)))
    assert [(m["customer_id"], m["email"]) for m in members] == [("c3", ""), ("c4", "dave@mail.com")]
    as_role(client, ANALYST)
    masked = list(csv.DictReader(io.StringIO(client.get(f"/api/v1/segments/{seg_id}/members.csv").text)))
    assert [(m["customer_id"], m["email"], m["phone"]) for m in masked] == [
        ("c3", "", "+86 139-****-1111"), ("c4", "d***@mail.com", "")]

    tags = {t["tag"]: t for t in ok(client.get("/api/v1/segments/tags"))}
    assert tags["tea-recent"]["rule"] == 2
    with session_scope(tea_shop) as session:
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["segment.create", "segment.refresh", "segment.refresh"]


def test_export_before_refresh_and_unknown_segments(client: TestClient) -> None:
    created = client.post("/api/v1/segments", json={"name": "Nobody yet", "definition": {"all": []}})
    seg_id = ok(created, 201)["id"]
    response = client.get(f"/api/v1/segments/{seg_id}/members.csv")
    assert response.status_code == 404
    assert response.json()["code"] == "segment_not_refreshed"
    assert client.get("/api/v1/segments/nope").json()["code"] == "segment_not_found"
    assert client.post("/api/v1/segments/nope/refresh").status_code == 404


def test_manual_tags_and_delete(client: TestClient) -> None:
    changed = ok(client.post("/api/v1/segments/tags/follow up", json={"add": ["c2", "c4"]}))
    assert changed == {"tag": "follow up", "added": 2, "removed": 0}
    unknown = client.post("/api/v1/segments/tags/follow up", json={"remove": ["c2", "ghost"]})
    assert unknown.status_code == 422
    assert "'ghost'" in unknown.json()["detail"]
    assert ok(client.post("/api/v1/segments/tags/follow up", json={"remove": ["c2"]}))["removed"] == 1
    seg_id = ok(client.post("/api/v1/segments", json={
        "name": "Followed up", "definition": {"type": "tag", "tags": ["follow up"]}}), 201)["id"]
    assert ok(client.post(f"/api/v1/segments/{seg_id}/refresh", json={"as_of": "2025-03-31"}))["members"] == 1
    assert client.delete(f"/api/v1/segments/{seg_id}").status_code == 204
    assert client.get(f"/api/v1/segments/{seg_id}").status_code == 404
