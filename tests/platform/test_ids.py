"""The shop's rule for ids (issue 10, item 7; ``kit.ids``): trimmed of any blank, NFC, case kept,
no control or invisible characters — the same in imports (DuckDB SQL), the API's schemas and
the services (so the CLI and console too)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.kit.ids import Id, canonical_id, canonical_id_sql, unusable_sql
from growthwheel.promotions import coupons
from growthwheel.social import deals, service
from growthwheel.social.api import request_time
from growthwheel.social.api import router as social_router
from growthwheel.store.db import session_scope
from growthwheel.warehouse import connect, ingest

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)
DECOMPOSED = unicodedata.normalize("NFD", "José")  # "Jose" + combining acute accent
SAME = ["C0000031", " C0000031", "C0000031\u3000", "\u00a0C0000031\t", "\ufeffC0000031"]
REFUSED = ["C00\u200b00031", "C0000031\x00", "C00\u202e00031", "a\u2028b", "", " \u3000 ", "x" * 65]


def test_the_rule_by_example() -> None:
    assert {canonical_id(v) for v in SAME} == {"C0000031"}
    assert canonical_id(DECOMPOSED) == "José" == unicodedata.normalize("NFC", "José")
    # case is part of the id: Stripe, Salesforce and base-62 ids depend on it
    assert canonical_id("c0000031") != canonical_id("C0000031")
    assert canonical_id("gid://shopify/Customer/7") == "gid://shopify/Customer/7"
    assert canonical_id("小明_ABC") == "小明_ABC"  # Taobao member names as registered
    for value in REFUSED:
        with pytest.raises(InvalidArgumentError, match=r"^invitee_id: "):
            canonical_id(value, "invitee_id")


def test_the_pydantic_type_names_the_field() -> None:
    class Body(BaseModel):
        customer_id: Id

    assert Body(customer_id=" C0000031\u3000").customer_id == "C0000031"
    with pytest.raises(ValidationError) as caught:
        Body(customer_id="C00\u200b00031")
    assert caught.value.errors()[0]["loc"] == ("customer_id",)
    assert "U+200B" in caught.value.errors()[0]["msg"]


def test_imports_apply_the_same_rule_as_python() -> None:
    con = duckdb.connect()
    values = [*SAME, *REFUSED[:4], DECOMPOSED, "c0000031", "Ｃ0000031"]
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    sql = canonical_id_sql("v")
    rows = con.execute(f"SELECT v, {sql}, {unusable_sql(sql)} FROM t").fetchall()
    for raw, normal, unusable in rows:
        try:
            expected, refused = canonical_id(raw), False
        except InvalidArgumentError:
            expected, refused = unicodedata.normalize("NFC", raw.strip(" \t\u3000\u00a0\ufeff")), True
        assert (normal, bool(unusable)) == (expected, refused), raw


def test_an_import_keeps_one_customer_per_id(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    path = tmp_path / "orders.csv"
    rows = [("O1", "C0000031"), ("O2", "C0000031\u3000"), ("O3", "\u00a0C0000031"), ("O4", "c0000031"),
            ("O5", "C00\u200b00031"), ("O6", DECOMPOSED)]
    lines = "".join(f"{o},{c},2026-03-01T10:00:00+08:00,10.00\n" for o, c in rows)
    path.write_text("order_id,customer_id,ordered_at,total\n" + lines, encoding="utf-8")
    result = ingest.import_files("orders", [path], cfg=cfg)
    assert result.rows_quarantined == 1
    backend = connect(cfg)
    try:
        orders = backend.table("orders").select("order_id", "customer_id").to_pyarrow().to_pylist()
        by_order = {r["order_id"]: r["customer_id"] for r in orders}
        assert by_order == {"O1": "C0000031", "O2": "C0000031", "O3": "C0000031", "O4": "c0000031",
                            "O6": "José"}
        bad = backend.table("_quarantine").to_pyarrow().to_pylist()
        assert [(b["column_name"], b["reason"]) for b in bad] == [
            ("customer_id", "contains a control or invisible character")]
    finally:
        backend.disconnect()


def test_services_apply_the_rule_for_every_face(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        batch = coupons.create_batch(
            session, name="welcome", definition={"reward": {"type": "order_amount_off", "amount": 500}},
            valid_from=T0, valid_until=T0 + timedelta(days=9))
        first = coupons.issue(session, batch, ["C0000031\u3000"], now=T0)
        again = coupons.issue(session, batch, [" C0000031", "c0000031"], now=T0)
        assert list(first.issued) == ["C0000031"]
        assert (again.already, list(again.issued)) == (["C0000031"], ["c0000031"])
        with pytest.raises(InvalidArgumentError, match=r"^customer_ids\[1\]: "):
            coupons.issue(session, batch, ["ok", "C00\u200b00031"], now=T0)
        offer = deals.create_offer(session, name="pot", sku="POT", currency="CNY", start_price=1000,
                                     floor_price=500, cuts=3, duration_minutes=60, principal=None)
        deals.start_bargain(session, offer.id, "C0000031", now=T0)
        with pytest.raises(deals.BargainExistsError):
            deals.start_bargain(session, offer.id, "C0000031\u00a0", now=T0)


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)  # the HTTP face; services cover PostgreSQL
def test_the_api_refuses_invisible_characters_naming_the_field(
    store_cfg: Settings, make_api_key: Callable[..., str],
) -> None:
    with session_scope(store_cfg) as session:
        deal = deals.create_deal(session, name="拼团", sku="TEA", currency="CNY", group_price=100,
                                   group_size=3, time_limit_minutes=60, principal=None)
        group = deals.open_group(session, deal.id, "leader", now=T0)
        code = service.invite_code(session, "alice", now=T0).code
    app = create_app(store_cfg, routers=[social_router])
    app.dependency_overrides[request_time] = lambda: T0
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key('read', 'write')}"
        seats = f"/api/v1/social/groups/{group.id}/members"
        assert client.post(seats, json={"customer_id": "C0000031"}).status_code == 201
        again = client.post(seats, json={"customer_id": "C0000031\u3000"})
        assert (again.status_code, again.json()["code"]) == (409, "already_joined")
        hidden = client.post(seats, json={"customer_id": "C00\u200b00031"})
        assert hidden.status_code == 422, hidden.text
        assert hidden.json()["detail"].startswith("body.customer_id: ")
        bind = client.post("/api/v1/social/referral/bindings", json={"invitee_id": "b\u200bob", "code": code})
        assert bind.status_code == 422
        assert "invitee_id" in bind.json()["detail"]


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_reading_a_customer_applies_the_rule_too(
    store_cfg: Settings, make_api_key: Callable[..., str],
) -> None:
    path = store_cfg.data_dir / "orders.csv"
    path.write_text("order_id,customer_id,ordered_at,total\nO1,C0000031,2026-03-01T10:00:00+08:00,10.00\n",
                    encoding="utf-8")
    ingest.import_files("orders", [path], cfg=store_cfg)
    with TestClient(create_app(store_cfg)) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key('read')}"
        found = client.get("/api/v1/customers/%E3%80%80C0000031%C2%A0")  # full-width and no-break spaces
        assert found.status_code == 200, found.text
        assert found.json()["customer"]["customer_id"] == "C0000031"
        assert client.get("/api/v1/customers/c0000031").status_code == 404  # case is part of the id
        assert client.get("/api/v1/customers/C00%E2%80%8B00031").status_code == 404  # no id holds a U+200B
