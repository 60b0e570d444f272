"""Serving: the worker's ``recs.refresh`` job builds the lists from a real warehouse and stores them
(SQLite and PostgreSQL); the REST routes answer from the store with exclusions applied at once,
role-based access, and 4xx problems naming the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.api import router as accounts_router
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.jobs import scheduler
from growthwheel.jobs import tasks as _tasks  # noqa: F401  (registers the jobs)
from growthwheel.recs import service
from growthwheel.recs.api import router as recs_router
from growthwheel.store import db
from growthwheel.warehouse import connect, ingest

PRODUCTS = """sku,name,category,price,consumption_cycle_days
A,挂耳咖啡,食品/咖啡,59.00,30
B,滤纸,食品/咖啡,9.90,
C,马克杯,家居/杯具,39.00,
D,绿茶,食品/茶,45.00,
E,坚果,食品/零食,29.00,
"""
# Baskets: o1 {A,B} o2 {A,C} o3 {A} (c1); o4 {A,B} o5 {B,C} (c2); o6 {A,B,E} (c3); o7 {D,E} (c4);
# o8 {A,B} o9 {D} (c5). The last day is 2025-03-06.
LINES = [
    ("o1", "c1", "2025-01-01T10:00:00Z", "A"), ("o1", "c1", "2025-01-01T10:00:00Z", "B"),
    ("o2", "c1", "2025-02-01T10:00:00Z", "A"), ("o2", "c1", "2025-02-01T10:00:00Z", "C"),
    ("o3", "c1", "2025-03-01T10:00:00Z", "A"),
    ("o4", "c2", "2025-01-10T10:00:00Z", "A"), ("o4", "c2", "2025-01-10T10:00:00Z", "B"),
    ("o5", "c2", "2025-02-20T10:00:00Z", "B"), ("o5", "c2", "2025-02-20T10:00:00Z", "C"),
    ("o6", "c3", "2025-02-15T10:00:00Z", "A"), ("o6", "c3", "2025-02-15T10:00:00Z", "B"),
    ("o6", "c3", "2025-02-15T10:00:00Z", "E"),
    ("o7", "c4", "2025-03-05T10:00:00Z", "D"), ("o7", "c4", "2025-03-05T10:00:00Z", "E"),
    ("o8", "c5", "2025-01-20T10:00:00Z", "A"), ("o8", "c5", "2025-01-20T10:00:00Z", "B"),
    ("o9", "c5", "2025-03-06T10:00:00Z", "D"),
]
NOW = datetime(2025, 3, 7, 3, 0, tzinfo=UTC)
# Stock on 1 March: one E (sold on 5 March: none left) and five D (two sold since).
INVENTORY = ("sku,date,on_hand,received,lead_time_days,unit_cost,location\n"
             "E,2025-03-01,1,,,,\nD,2025-03-01,5,,,,\n")


def _warehouse(folder: Path) -> Settings:
    cfg = Settings(data_dir=folder, database_url=None)
    (folder / "products.csv").write_text(PRODUCTS, encoding="utf-8")
    rows = ["order_id,customer_id,ordered_at,sku,quantity,line_total"]
    rows += [f"{o},{c},{t},{s},1,10.00" for o, c, t, s in LINES]
    (folder / "lines.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ingest.import_files("products", [folder / "products.csv"], cfg=cfg)
    ingest.import_files("order_lines", [folder / "lines.csv"], cfg=cfg)
    (folder / "inventory.csv").write_text(INVENTORY, encoding="utf-8")
    ingest.import_files("inventory", [folder / "inventory.csv"], cfg=cfg)
    return cfg


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cfg = _warehouse(tmp_path_factory.mktemp("recs-wh"))
    backend = connect(cfg)
    try:
        return service.build(backend, evaluate=False, weights={"replenish": 1.0, "item_cosine": 0.5,
                                                                "popularity": 0.1})
    finally:
        backend.disconnect()


def test_build_lists_replenishment_just_bought_and_also_bought(built: dict[str, Any]) -> None:
    lists = dict(zip(built["customers"], built["lists"], strict=True))
    assert built["as_of"] == "2025-03-06"
    # c1 bought coffee (30-day cycle) on 1 March: just bought and not due, so not in the list.
    assert "A" not in [i[0] for i in lists["c1"]]
    # c2's coffee, bought on 10 January, is overdue: first, as a replenishment.
    assert lists["c2"][0][:1] == ["A"]
    assert lists["c2"][0][2] == "replenish"
    # c4 bought D and E yesterday: neither comes back.
    assert not {"D", "E"} & {i[0] for i in lists["c4"]}
    # Coffee's also-bought: filter paper in 4 of the 6 coffee baskets, 5 of 9 baskets hold it.
    also_a = built["products"]["A"]
    assert [row[0] for row in also_a] == ["B"]
    assert also_a[0][1] == pytest.approx(4 / 6)
    assert also_a[0][2] == pytest.approx((4 / 6) / (5 / 9))
    assert also_a[0][3] == pytest.approx(4 / 9)
    assert also_a[0][4] == "滤纸"
    assert [p[0] for p in built["popular"]][:2] == ["A", "B"]
    assert built["out_of_stock"] == ["E"]  # by the inventory fact at the last day


def test_out_of_stock_exclusions_follow_the_stock(store_cfg: Settings, built: dict[str, Any]) -> None:
    with db.session_scope(store_cfg) as session:
        service.set_exclusion(session, "C", "not_for_sale", "ops@example.com", NOW)
        service.save(session, built, NOW)
        assert {x["sku"]: (x["reason"], x["created_by"]) for x in service.exclusions(session)} == {
            "C": ("not_for_sale", "ops@example.com"), "E": ("out_of_stock", "inventory")}
        assert "E" not in [i["sku"] for i in service.for_customer(session, "nobody", limit=5)["items"]]
        # E back in stock, C now out of stock: E comes back; the operator's word on C stands.
        service.sync_stock_exclusions(session, ["C"], NOW)
        assert {x["sku"]: (x["reason"], x["created_by"]) for x in service.exclusions(session)} == {
            "C": ("not_for_sale", "ops@example.com")}


@pytest.fixture
def client(store_cfg: Settings, built: dict[str, Any]) -> Iterator[TestClient]:
    with db.session_scope(store_cfg) as session:
        service.save(session, built, NOW)
    app = create_app(store_cfg, routers=[accounts_router, recs_router], with_warehouse=False)
    with TestClient(app) as test_client:
        yield test_client


def test_serving_from_the_store_with_exclusions_and_roles(
        client: TestClient, make_api_key: Callable[..., str]) -> None:
    reader = {"Authorization": f"Bearer {make_api_key('read')}"}
    writer = {"Authorization": f"Bearer {make_api_key('read', 'write')}"}
    assert client.get("/api/v1/recommendations/c2").status_code == 401
    got = client.get("/api/v1/recommendations/c2", headers=reader)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["source"] == "personal"
    assert body["items"][0]["sku"] == "A"
    assert body["items"][0]["reason"] == "replenish"
    assert body["items"][0]["name"] == "挂耳咖啡"
    also = client.get("/api/v1/products/A/also-bought", headers=reader).json()
    assert [i["sku"] for i in also["items"]] == ["B"]
    assert also["items"][0]["confidence"] == pytest.approx(4 / 6)
    # A reader may not exclude; a writer may, and the exclusion applies to the next answer.
    assert client.put("/api/v1/recommendations/exclusions/A", json={"reason": "out_of_stock"},
                      headers=reader).status_code == 403
    done = client.put("/api/v1/recommendations/exclusions/A", json={"reason": "out_of_stock"}, headers=writer)
    assert done.status_code == 200, done.text
    after = client.get("/api/v1/recommendations/c2", headers=reader).json()
    assert "A" not in [i["sku"] for i in after["items"]]
    listed = client.get("/api/v1/recommendations/exclusions/list", headers=reader).json()
    assert listed["exclusions"][0]["reason"] == "out_of_stock"
    client.put("/api/v1/recommendations/exclusions/B", json={"reason": "not_for_sale"}, headers=writer)
    assert client.get("/api/v1/products/A/also-bought", headers=reader).json()["items"] == []
    assert client.delete("/api/v1/recommendations/exclusions/A", headers=writer).json()["removed"] is True
    assert client.get("/api/v1/recommendations/c2", headers=reader).json()["items"][0]["sku"] == "A"
    # A customer without history gets the popular list (without the excluded B).
    new = client.get("/api/v1/recommendations/nobody", params={"limit": 3}, headers=reader).json()
    assert new["source"] == "popular"
    assert [i["sku"] for i in new["items"]][:1] == ["A"]
    assert "B" not in [i["sku"] for i in new["items"]]


def test_bad_input_is_a_4xx_naming_the_field(client: TestClient, make_api_key: Callable[..., str]) -> None:
    reader = {"Authorization": f"Bearer {make_api_key('read', 'write')}"}
    bad = client.get("/api/v1/recommendations/c1", params={"limit": 0}, headers=reader)
    assert bad.status_code == 422
    assert "limit" in bad.text
    bad = client.put("/api/v1/recommendations/exclusions/A", json={"reason": "sold"}, headers=reader)
    assert bad.status_code == 422
    assert "reason" in bad.text
    missing = client.get("/api/v1/products/ZZ/also-bought", headers=reader)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "sku" in missing.json()["detail"]
    long = client.get("/api/v1/recommendations/" + "x" * 201, headers=reader)
    assert long.status_code == 422


def test_the_worker_job_refreshes_the_store(tmp_path: Path) -> None:
    cfg = _warehouse(tmp_path)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        spec = scheduler.ScheduleSpec("recs.refresh", "recs.refresh", every_seconds=86_400)
        scheduler.put_schedule(session, spec, now=NOW, timezone="UTC")
    outcomes = scheduler.run_due(cfg, worker="w", clock=lambda: NOW, timezone="UTC")
    assert [o.status for o in outcomes] == ["succeeded"], outcomes
    with db.session_scope(cfg) as session:
        run = service.latest_run(session)
        assert run is not None
        assert run.customers == 5
        assert run.evaluation["models"]  # the offline evaluation that chose the blend is kept
        assert service.also_bought(session, "A")["items"][0]["sku"] == "B"
        # The weights are the evaluation's choice here: the overdue coffee is in c2's list.
        assert "A" in [i["sku"] for i in service.for_customer(session, "c2")["items"]]
    db.engine(cfg).dispose()
