"""``/api/v1/experiments`` on SQLite and PostgreSQL: set-up and life cycle (audited), assignment
with exposures recorded as events, layers, targeting by segment, hold-outs, status and results,
scopes and problem+json errors."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from growthwheel.accounts.models import AuditEntry
from growthwheel.accounts.schemas import ROLE_SCOPES, Principal
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.api.deps import current_principal
from growthwheel.config import Settings
from growthwheel.experiments import service
from growthwheel.experiments.api import router as experiments_router
from growthwheel.experiments.assignment import assign
from growthwheel.segments.models import Segment
from growthwheel.segments.repository import MEMBERS_TABLE, ensure_tables
from growthwheel.store.db import session_scope

ADMIN = Principal(kind="user", id="u1", name="admin@example.com", role="admin", scopes=ROLE_SCOPES["admin"])
ANALYST = Principal(kind="user", id="u2", name="analyst@example.com", role="analyst",
                    scopes=ROLE_SCOPES["analyst"])
CUSTOMERS = [f"c{i:04d}" for i in range(400)]
ASKED = CUSTOMERS[:120]  # asked through HTTP (each answer is a request)
BASE = "/api/v1/experiments"


@pytest.fixture
def client(store_cfg: Settings) -> Iterator[TestClient]:
    app = warehouse_api.install(create_app(store_cfg, routers=[experiments_router]))
    app.state.warehouse_options = {"flush_seconds": 0.1}
    app.dependency_overrides[current_principal] = lambda: ADMIN
    with TestClient(app) as test_client:
        yield test_client


def as_role(client: TestClient, principal: Principal) -> None:
    client.app.dependency_overrides[current_principal] = lambda: principal  # type: ignore[attr-defined]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def setup(key: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "name": f"Test {key}", "planned_units": 1000,
            "variants": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}], **extra}


def test_life_cycle_assignment_exposures_and_audit(client: TestClient, store_cfg: Settings) -> None:
    created = ok(client.post(BASE, json=setup("pdp-layout", traffic=0.5)), 201)
    assert (created["status"], created["created_by"]) == ("draft", "admin@example.com")
    assert created["traffic"] == 0.5
    assert ok(client.post(BASE, json=setup("pdp-layout")), 409)["code"] == "experiment_exists"
    draft = ok(client.get(f"{BASE}/pdp-layout/assignment", params={"customer_id": "c1"}))
    assert draft == {"variant": None, "in_experiment": False, "reason": "not_running",
                     "experiment": "pdp-layout", "exposure_recorded": False}

    ok(client.post(f"{BASE}/pdp-layout/start"))
    plan = service.plan_of(_experiment(store_cfg, "pdp-layout"))
    answers = {c: ok(client.get(f"{BASE}/pdp-layout/assignment", params={"customer_id": c})) for c in ASKED}
    for customer, answer in answers.items():  # the same answer as the pure assignment, worked out apart
        expected = assign(plan, customer)
        assert (answer["variant"], answer["reason"]) == (expected.variant, expected.reason)
        assert answer["exposure_recorded"] is answer["in_experiment"]
    again = ok(client.get(f"{BASE}/pdp-layout/assignment",
                          params={"customer_id": CUSTOMERS[0], "expose": False}))
    assert again["variant"] == answers[CUSTOMERS[0]]["variant"]
    assert again["exposure_recorded"] is False
    in_it = Counter(a["variant"] for a in answers.values() if a["in_experiment"])
    assert 35 < sum(in_it.values()) < 85  # traffic 0.5 of 120

    client.app.state.warehouse.flush_events()  # type: ignore[attr-defined]
    status = ok(client.get(f"{BASE}/pdp-layout/status"))
    assert {v["name"]: v["units"] for v in status["variants"]} == {
        "control": in_it["control"], "treatment": in_it["treatment"]}
    assert status["multiple_exposures"] == 0
    assert status["srm"]["mismatch"] is False
    with client.app.state.warehouse.read() as backend:  # type: ignore[attr-defined]
        events = backend.table("events").to_pyarrow().to_pylist()
    assert len(events) == sum(in_it.values())
    assert {e["type"] for e in events} == {"experiment_exposure"}
    assert {json.dumps(json.loads(e["properties"]), sort_keys=True) for e in events} == {
        json.dumps({"experiment": "pdp-layout", "variant": v}, sort_keys=True) for v in in_it}

    found = ok(client.get(f"{BASE}/pdp-layout/results"))
    assert found["status"]["units"] == sum(in_it.values())
    assert [m["label"] for m in found["metrics"]] == ["conversion"]
    assert [w["code"] for w in found["warnings"]] == ["peeking"]  # fixed horizon, below its planned size

    ok(client.post(f"{BASE}/pdp-layout/stop"))
    stopped = ok(client.get(f"{BASE}/pdp-layout/assignment", params={"customer_id": "c0001"}))
    assert stopped["reason"] == "not_running"
    assert ok(client.post(f"{BASE}/pdp-layout/start"), 409)["code"] == "experiment_state"
    assert ok(client.patch(f"{BASE}/pdp-layout", json={"name": "x"}), 409)["code"] == "experiment_state"
    with session_scope(store_cfg) as session:
        actions = [a.action for a in session.scalars(select(AuditEntry).where(
            AuditEntry.target == "experiment:pdp-layout").order_by(AuditEntry.id))]
    assert actions == ["experiment.create", "experiment.start", "experiment.stop"]


def _experiment(cfg: Settings, key: str) -> Any:
    with session_scope(cfg) as session:
        exp = service.get_experiment(session, key)
        session.expunge(exp)
        return exp


def test_bad_input_is_a_problem_naming_the_field(client: TestClient) -> None:
    bad = setup("x", variants=[{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.6}])
    response = client.post(BASE, json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "variants" in response.json()["detail"]
    assert "sum to 1" in response.json()["detail"]
    assert "key" in ok(client.post(BASE, json=setup("Not A Slug")), 422)["detail"]
    retention = setup("r", primary_metric={"kind": "retention", "days_from": 7})
    assert "days_to" in ok(client.post(BASE, json=retention), 422)["detail"]
    assert ok(client.get(f"{BASE}/nope"), 404)["code"] == "experiment_not_found"
    ok(client.post(BASE, json=setup("anon", unit="anonymous")), 201)
    ok(client.post(f"{BASE}/anon/start"))
    missing = ok(client.get(f"{BASE}/anon/assignment", params={"customer_id": "c1"}), 422)
    assert "anonymous_id" in missing["detail"]
    assert ok(client.get(f"{BASE}/anon/assignment", params={"anonymous_id": "dev-1"}))["reason"] == "assigned"


def test_analysts_read_but_do_not_change(client: TestClient) -> None:
    ok(client.post(BASE, json=setup("ab1")), 201)
    as_role(client, ANALYST)
    assert ok(client.post(BASE, json=setup("ab2")), 403)["code"] == "forbidden"
    assert ok(client.post(f"{BASE}/ab1/start"), 403)["code"] == "forbidden"
    assert [e["key"] for e in ok(client.get(BASE))] == ["ab1"]
    assert ok(client.get(f"{BASE}/ab1"))["status"] == "draft"


def test_a_layer_never_gives_a_unit_two_experiments(client: TestClient) -> None:
    ok(client.post(BASE, json=setup("one", layer="checkout", traffic=0.6)), 201)
    ok(client.post(BASE, json=setup("two", layer="checkout", traffic=0.6)), 201)
    first = ok(client.post(f"{BASE}/one/start"))
    assert (first["bucket_start"], first["bucket_end"]) == (0, 6000)
    full = ok(client.post(f"{BASE}/two/start"), 409)
    assert full["code"] == "layer_full"
    assert "traffic" in full["detail"]
    ok(client.patch(f"{BASE}/two", json={"traffic": 0.4}))
    second = ok(client.post(f"{BASE}/two/start"))
    assert (second["bucket_start"], second["bucket_end"]) == (6000, 10_000)
    placed: Counter[tuple[bool, ...]] = Counter()
    for customer in ASKED[:60]:
        asked = {"customer_id": customer, "expose": False}
        placed[tuple(ok(client.get(f"{BASE}/{k}/assignment", params=asked))["in_experiment"]
                     for k in ("one", "two"))] += 1
    assert placed[(True, True)] == 0
    assert placed[(False, False)] == 0
    assert placed[(True, False)] > placed[(False, True)] > 0
    # Ramping "one" up is refused while "two" holds the rest of the layer.
    assert ok(client.patch(f"{BASE}/one", json={"traffic": 0.7}), 409)["code"] == "layer_full"


def test_targeting_reads_segment_members_once_per_refresh(client: TestClient, store_cfg: Settings) -> None:
    refreshed = datetime(2025, 3, 1, tzinfo=UTC)
    with session_scope(store_cfg) as session:
        seg = Segment(name="VIPs", definition={"all": []}, created_by="test", refreshed_at=refreshed,
                      members=2)
        session.add(seg)
        session.flush()
        segment_id = seg.id

    def write(con: Any) -> None:
        ensure_tables(con)
        con.executemany(f"INSERT INTO {MEMBERS_TABLE} VALUES (?, ?, ?)",
                        [[segment_id, "vip-1", refreshed.replace(tzinfo=None)],
                         [segment_id, "vip-2", refreshed.replace(tzinfo=None)]])

    client.app.state.warehouse.run_write(write)  # type: ignore[attr-defined]
    ok(client.post(BASE, json=setup("vip-test", segment="VIPs")), 201)
    ok(client.post(f"{BASE}/vip-test/start"))
    reads = service.MEMBERS.reads
    def reason(customer: str) -> str:
        return str(ok(client.get(f"{BASE}/vip-test/assignment", params={"customer_id": customer}))["reason"])

    assert [reason("vip-1"), reason("vip-2"), reason("c9")] == ["assigned", "assigned", "not_targeted"]
    assert service.MEMBERS.reads == reads + 1  # one warehouse read, then the cache
    assert ok(client.post(BASE, json=setup("bad-seg", segment="nope")), 422)["detail"].startswith("segment")


def test_a_holdout_reserves_its_share_through_the_same_assignment(
    client: TestClient, store_cfg: Settings
) -> None:
    body = {"key": "winback-holdout", "name": "Win-back hold-out", "kind": "holdout", "holdout_share": 0.1}
    created = ok(client.post(BASE, json=body), 201)
    assert created["variants"] == [{"name": "holdout", "weight": 0.1}, {"name": "treated", "weight": 0.9}]
    assert ok(client.post(BASE, json={**body, "key": "h2", "variants": setup("x")["variants"]}), 422)
    ok(client.post(f"{BASE}/winback-holdout/start"))
    with session_scope(store_cfg) as session:
        held = {c for c in CUSTOMERS if service.in_holdout(session, "winback-holdout", c)}
    api = {c for c in ASKED if ok(client.get(f"{BASE}/winback-holdout/assignment", params={
        "customer_id": c, "expose": False}))["variant"] == "holdout"}
    assert held & set(ASKED) == api
    assert 20 <= len(held) <= 65  # 10% of 400, within about 3.5 standard deviations


def test_a_fixed_horizon_test_does_not_start_without_its_planned_size(client: TestClient) -> None:
    ok(client.post(BASE, json={**setup("unplanned"), "planned_units": None}), 201)
    refused = ok(client.post(f"{BASE}/unplanned/start"), 422)
    assert refused["code"] == "planned_units_required"
    assert "planned_units" in refused["detail"]
    assert ok(client.get(f"{BASE}/unplanned"))["status"] == "draft"
    ok(client.patch(f"{BASE}/unplanned", json={"planned_units": 4000}))
    assert ok(client.post(f"{BASE}/unplanned/start"))["status"] == "running"
    # a sequential test needs no planned size: its intervals hold however often one looks
    ok(client.post(BASE, json={**setup("seq"), "planned_units": None, "method": "sequential"}), 201)
    assert ok(client.post(f"{BASE}/seq/start"))["status"] == "running"
