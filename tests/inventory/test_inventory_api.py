"""``/api/v1/inventory``: the plan over the example tea shop (products, order lines and stock
imported through the real import path), at-risk and slow movers, a clearance draft written to the
operational store (SQLite and PostgreSQL), scopes, and 4xx problems naming the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.api import router as accounts_router
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.inventory.api import router as inventory_router
from growthwheel.promotions import repository
from growthwheel.store import db
from growthwheel.warehouse import ingest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "generic"


@pytest.fixture
def client(store_cfg: Settings) -> Iterator[TestClient]:
    for table, name in (("products", "products.csv"), ("order_lines", "order_lines.csv"),
                        ("inventory", "inventory.csv")):
        ingest.import_files(table, [EXAMPLES / name], cfg=store_cfg)
    app = create_app(store_cfg, routers=[accounts_router, inventory_router])
    with TestClient(app) as test_client:
        yield test_client


def test_plan_risk_slow_movers_and_a_clearance_draft(
        client: TestClient, store_cfg: Settings, make_api_key: Callable[..., str]) -> None:
    reader = {"Authorization": f"Bearer {make_api_key('read')}"}
    writer = {"Authorization": f"Bearer {make_api_key('read', 'write')}"}
    plan = client.get("/api/v1/inventory/plan", params={"service_level": 0.9}, headers=reader)
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["as_of"] == "2024-07-04"  # the last paid order (the last snapshot is 2024-06-16)
    items = {it["sku"]: it for it in body["items"]}
    assert {"TEA-LJ-250", "CUP-CEL-01", "POT-YX-200"} <= set(items)
    cups = items["CUP-CEL-01"]
    assert cups["lead_time_days"] == 30  # the one receipt's lead time
    assert cups["unit_cost"] == 1850 or cups["unit_cost"] is not None
    pot = items["POT-YX-200"]
    assert pot["on_hand"] is not None
    assert pot["clearance"] is not None  # a teapot that sells a few a year: stock for far longer
    slow = client.get("/api/v1/inventory/slow-movers", headers=reader).json()["items"]
    assert "POT-YX-200" in {it["sku"] for it in slow}
    risky = client.get("/api/v1/inventory/at-risk", params={"threshold": 0.0, "until": "2024-07-31",
                                                           "uplift": 3}, headers=reader).json()
    assert risky["until"] == "2024-07-31"
    assert len(risky["items"]) == len(body["items"]) - sum(1 for it in body["items"] if it["on_hand"] is None)

    denied = client.post("/api/v1/inventory/clearance", json={"skus": ["POT-YX-200"], "discount_percent": 30},
                         headers=reader)
    assert denied.status_code == 403
    made = client.post("/api/v1/inventory/clearance",
                       json={"skus": ["POT-YX-200", "GIFT-BOX-M"], "discount_percent": 30}, headers=writer)
    assert made.status_code == 201, made.text
    draft = made.json()
    assert draft["status"] == "draft"
    assert draft["console_url"] == f"/promotions/{draft['promotion_id']}"
    with db.session_scope(store_cfg) as session:
        stored = repository.promotion(session, draft["promotion_id"])
        assert stored is not None
        assert stored.status == "draft"
        assert stored.definition["reward"] == {"type": "percent_off", "rate_bp": 3000}
        assert sorted(stored.definition["conditions"]["skus"]) == ["GIFT-BOX-M", "POT-YX-200"]


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)  # no store write: one store is enough
@pytest.mark.parametrize(("params", "field"), [
    ({"service_level": 1.2}, "service_level"),
    ({"grain": "month"}, "grain"),
    ({"until": "2024-02-30"}, "until"),
    ({"as_of": "2024-06-01", "until": "2024-05-01"}, "until"),
    ({"horizon": 0}, "horizon"),
])
def test_bad_parameters_are_4xx_naming_the_field(
        client: TestClient, make_api_key: Callable[..., str], params: dict[str, object], field: str) -> None:
    reader = {"Authorization": f"Bearer {make_api_key('read')}"}
    bad = client.get("/api/v1/inventory/plan", params=params, headers=reader)
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert field in bad.text
