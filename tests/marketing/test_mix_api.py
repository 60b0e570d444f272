"""The marketing-mix routes on a real server app over a small simulated shop (84 days, 3 channels)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.marketing.api import router as marketing_router
from growthwheel.store import db

from . import mix_data

SPAN = {"from": mix_data.START.isoformat(), "to": mix_data.END.isoformat()}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, int]]]:
    folder = tmp_path_factory.mktemp("mix")
    cfg = Settings(data_dir=folder / "data")
    spend = mix_data.build(folder, cfg)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _row = accounts.create_api_key(session, "mix", ("read",), created_by="tests")
    app = create_app(cfg, routers=[marketing_router])
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client, spend
    db.engine(cfg).dispose()


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_model_per_channel_with_intervals_and_curves(shop: tuple[TestClient, dict[str, int]]) -> None:
    client, spend = shop
    body = ok(client.get("/api/v1/marketing/mmm", params=SPAN))
    assert body["periods"] == mix_data.DAYS
    assert body["outcome"] == "new_customers"
    by = {row["channel"]: row for row in body["channels"]}
    assert set(by) == set(spend)
    for name, row in by.items():
        assert row["spend"] == spend[name]  # minor units, as imported
        for q in ("contribution", "roas", "elasticity", "marginal_roas"):
            assert 0 <= row[q]["low"] <= row[q]["mean"] <= row[q]["high"], (name, q)
        assert row["marginal_roas"]["mean"] == pytest.approx(row["elasticity"]["mean"] * row["roas"]["mean"])
        assert row["roas_per_1000"]["mean"] == pytest.approx(1000 * row["roas"]["mean"])
    # New customers come from the channels only: the contributions add up to (about) all of them.
    total = sum(row["contribution"]["mean"] for row in body["channels"])
    assert total == pytest.approx(body["outcome_total"], rel=0.05)
    for curve in body["curves"]:
        assert curve["outcome"][0] == 0
        assert curve["outcome"] == sorted(curve["outcome"])  # more spend, more outcome
        mid = len(curve["spend"]) // 2  # the period's own spend
        assert curve["spend"][mid] == pytest.approx(by[curve["channel"]]["spend"])
        assert curve["outcome"][mid] == pytest.approx(by[curve["channel"]]["contribution"]["mean"], rel=1e-6)


def test_plan_hits_the_total_with_the_reserve_and_beats_the_current_split(
        shop: tuple[TestClient, dict[str, int]]) -> None:
    client, spend = shop
    total = sum(spend.values())
    body = ok(client.post("/api/v1/marketing/mmm/plan", json={**SPAN, "total": total, "reserve_share": 0.1,
                                                               "bounds": {"百度": {"lower": 500_000}}}))
    assert body["reserve"] == round(total * 0.1)
    assert sum(line["spend"] for line in body["lines"]) + body["reserve"] == total
    lines = {line["channel"]: line for line in body["lines"]}
    assert lines["百度"]["spend"] >= 500_000
    assert body["expected_outcome"] >= body["current_split_outcome"]
    free = [line["marginal_return"] for line in body["lines"] if line["bound"] is None]
    assert max(free) == pytest.approx(min(free), rel=1e-3)
    again = ok(client.post("/api/v1/marketing/mmm/plan", json={**SPAN, "total": total, "reserve_share": 0.1,
                                                                "bounds": {"百度": {"lower": 500_000}}}))
    assert again == body  # deterministic


def test_weekly_grain(shop: tuple[TestClient, dict[str, int]]) -> None:
    client, spend = shop
    body = ok(client.get("/api/v1/marketing/mmm", params={**SPAN, "grain": "week"}))
    assert body["grain"] == "week"
    assert body["periods"] == mix_data.DAYS // 7
    assert body["period_days"] == 7
    assert {row["channel"]: row["spend"] for row in body["channels"]} == spend  # whole weeks: all 84 days
    plan = ok(client.post("/api/v1/marketing/mmm/plan", json={**SPAN, "grain": "week", "total": 1_000_000,
                                                               "period_days": 28}))
    assert plan["period_days"] == 28
    assert sum(line["spend"] for line in plan["lines"]) == 1_000_000


def test_days_left_out_of_the_fit(shop: tuple[TestClient, dict[str, int]]) -> None:
    """A known incident's days (``exclude``) leave the fit and the figures: the channel's spend and
    contribution cover the other days; the plan takes the same exclusion."""
    client, spend = shop
    full = {row["channel"]: row for row in ok(client.get("/api/v1/marketing/mmm", params=SPAN))["channels"]}
    incident = ["抖音:2025-03-10..2025-03-16"]
    body = ok(client.get("/api/v1/marketing/mmm", params={**SPAN, "exclude": incident}))
    assert body["excluded"] == [{"channel": "抖音", "from": "2025-03-10", "to": "2025-03-16"}]
    assert any("left out" in note for note in body["notes"])
    by = {row["channel"]: row for row in body["channels"]}
    assert by["抖音"]["spend"] < spend["抖音"]
    assert by["抖音"]["contribution"]["mean"] < full["抖音"]["contribution"]["mean"]
    assert by["百度"]["spend"] == spend["百度"]
    plan = ok(client.post("/api/v1/marketing/mmm/plan",
                          json={**SPAN, "total": 1_000_000, "exclude": ["2025-03-10..2025-03-16"]}))
    assert sum(line["spend"] for line in plan["lines"]) == 1_000_000


@pytest.mark.parametrize(("method", "url", "payload", "field"), [
    ("get", "/api/v1/marketing/mmm", {**SPAN, "exclude": "抖音:2025-03-40"}, "exclude"),
    ("get", "/api/v1/marketing/mmm", {**SPAN, "exclude": "微博:2025-03-10..2025-03-12"}, "exclude"),
    ("get", "/api/v1/marketing/mmm", {**SPAN, "exclude": "2025-03-12..2025-03-10"}, "exclude"),
    ("post", "/api/v1/marketing/mmm/plan", {**SPAN, "total": 1000, "exclude": ["2025-03-03..2025-05-25"]},
     "exclude"),
    ("get", "/api/v1/marketing/mmm", {"from": "2025-03-03", "to": "2025-03-20"}, "from"),
    ("get", "/api/v1/marketing/mmm", {"from": "2025-05-01", "to": "2025-03-20"}, "to"),
    ("get", "/api/v1/marketing/mmm", {**SPAN, "outcome": "likes"}, "outcome"),
    ("get", "/api/v1/marketing/mmm", {**SPAN, "grain": "month"}, "grain"),
    ("get", "/api/v1/marketing/mmm", {"from": "2025-03-03", "to": "2025-04-20", "grain": "week"}, "from"),
    ("post", "/api/v1/marketing/mmm/plan", {**SPAN, "total": 0}, "total"),
    ("post", "/api/v1/marketing/mmm/plan", {**SPAN, "total": 1000, "reserve_share": 1.5}, "reserve_share"),
    ("post", "/api/v1/marketing/mmm/plan", {**SPAN, "total": 1000, "bounds": {"微博": {"lower": 1}}},
     "bounds"),
    ("post", "/api/v1/marketing/mmm/plan", {**SPAN, "total": 1000, "bounds": {"抖音": {"lower": 5000}}},
     "bounds"),
    ("post", "/api/v1/marketing/mmm/plan",
     {**SPAN, "total": 10_000, "bounds": {"抖音": {"lower": 50, "upper": 10}}}, "upper"),
])
def test_bad_input_is_a_422_naming_the_field(shop: tuple[TestClient, dict[str, int]], method: str, url: str,
                                             payload: dict[str, Any], field: str) -> None:
    client, _ = shop
    response = client.get(url, params=payload) if method == "get" else client.post(url, json=payload)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_no_spend_is_a_404(shop: tuple[TestClient, dict[str, int]]) -> None:
    client, _ = shop
    response = client.get("/api/v1/marketing/mmm", params={"from": "2020-01-01", "to": "2020-03-31"})
    assert response.status_code == 404
    assert "no ad spend" in response.json()["detail"]
