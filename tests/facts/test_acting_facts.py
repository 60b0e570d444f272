"""Acting facts flow back (issue 12 item 2): orders and refunds committed through the checkout,
points moves, coupons and messages reach the warehouse through the ingest path, keyed, so a later
import of the same order from the shop's export changes nothing. Real store (SQLite and
PostgreSQL), real DuckDB warehouse, the real app over HTTP (TestClient)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from growthwheel.accounts.models import utcnow
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.facts import service as facts
from growthwheel.facts.models import FactRow
from growthwheel.jobs import warehouse_access
from growthwheel.store import db
from growthwheel.store.db import session_scope
from growthwheel.warehouse.ingest import import_files

COUPON_10 = {"reward": {"type": "order_amount_off", "amount": 1000}, "conditions": {"min_amount": 10000}}
ORDER = {
    "order_id": "ord-1", "customer_id": "alice", "coupon_codes": ["SAVE10"], "expected_total": 22000,
    "lines": [{"line_id": "A", "sku": "TEA-A", "unit_price": 15000, "quantity": 1},
              {"line_id": "B", "sku": "CUP-B", "unit_price": 8000, "quantity": 1}],
}


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Callable[..., str]) -> Iterator[TestClient]:
    key = make_api_key("read", "write")
    with TestClient(create_app(store_cfg), headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def drain_on_server(client: TestClient) -> facts.DrainResult:
    """What the internal ``facts/drain`` route does: the drain on the server's writer thread."""
    owner = client.app.state.warehouse  # type: ignore[attr-defined]
    cfg = owner.cfg
    return owner.run_serial(lambda: facts.drain_all(lambda: session_scope(cfg), facts.direct_importer(cfg)))


def read(client: TestClient, sql: str) -> list[tuple[Any, ...]]:
    owner = client.app.state.warehouse  # type: ignore[attr-defined]
    with owner.read() as backend:
        return list(backend.raw_sql(sql).fetchall())


def pending(cfg: Settings) -> int:
    with session_scope(cfg) as s:
        query = sa.select(sa.func.count()).select_from(FactRow).where(FactRow.done_at.is_(None))
        return int(s.scalar(query) or 0)


def shop(client: TestClient) -> None:
    ok(client.post("/api/v1/coupon-batches", json={
        "name": "满100减10", "definition": COUPON_10, "code_mode": "shared", "shared_code": "SAVE10",
        "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z", "per_customer_limit": 5,
    }), 201)


def test_a_checkout_order_and_its_refund_become_warehouse_facts_and_reach_the_profile(
        client: TestClient, store_cfg: Settings, tmp_path: Path) -> None:
    shop(client)
    order = ok(client.post("/api/v1/orders", json=ORDER), 201)
    assert order["total"] == 22000
    assert order["points_earned"] == 220
    # Before the drain the warehouse does not know the order; the facts wait in the store.
    assert read(client, "SELECT count(*) FROM orders") == [(0,)]
    assert pending(store_cfg) >= 3  # the order, its coupon redemption, its points earned
    done = drain_on_server(client)
    assert done.orders == 1
    assert done.events >= 2
    assert pending(store_cfg) == 0

    # By hand: 150.00 + 80.00 = 230.00; SAVE10 takes 10.00 over the lines by amount (150 : 80):
    # 6.52|17 and 3.47|83 → A 6.52, B 3.48. Paid: A 143.48, B 76.52 = 220.00.
    rows = read(client, "SELECT order_id, customer_id, status, total_amount, discount_amount, gross_amount, "
                        "refunded_amount, points_earned, points_used, source, coupon_code FROM orders")
    assert rows == [("ord-1", "alice", "paid", 22000, 1000, 23000, 0, 220, 0, "checkout", "SAVE10")]
    lines = read(client, "SELECT sku, quantity, unit_price, discount_amount, line_total, coupon_codes "
                         "FROM order_lines ORDER BY line_no")
    assert lines == [("TEA-A", 1, 15000, 652, 14348, "SAVE10"), ("CUP-B", 1, 8000, 348, 7652, "SAVE10")]
    events = dict(read(client, "SELECT type, count(*) FROM events GROUP BY type"))
    assert events == {"coupon_redeemed": 1, "points_moved": 1}
    points = read(client, "SELECT properties FROM events WHERE type = 'points_moved'")
    assert json.loads(points[0][0]) == {"kind": "earn", "lot_id": 1, "points": 220}

    profile = ok(client.get("/api/v1/customers/alice"))
    assert profile["kpis"]["orders"] == 1
    assert profile["kpis"]["gmv"]["minor"] == 22000
    assert profile["kpis"]["refunded"]["minor"] == 0

    # Refund line B: the same order, now partially refunded, replaces the stored one.
    refund = {"refund_id": "r1", "lines": [{"line_id": "B", "quantity": 1}]}
    ok(client.post("/api/v1/orders/ord-1/refunds", json=refund), 201)
    drain_on_server(client)
    assert read(client, "SELECT count(*), any_value(status), any_value(refunded_amount) FROM orders") == [
        (1, "partially_refunded", 7652)]
    assert read(client, "SELECT refunded_amount FROM order_lines ORDER BY line_no") == [(0,), (7652,)]
    profile = ok(client.get("/api/v1/customers/alice"))
    assert profile["kpis"]["refunded"]["minor"] == 7652
    assert profile["kpis"]["net_revenue"]["minor"] == 22000 - 7652
    moved = dict(read(client, "SELECT json_extract_string(properties, '$.kind'), "
                              "sum(CAST(json_extract_string(properties, '$.points') AS BIGINT)) "
                              "FROM events WHERE type = 'points_moved' GROUP BY 1"))
    assert moved == {"earn": 220, "clawback": -76}  # floor(220 × 76.52 / 220.00)

    # The shop later imports the same order from its own export (other amounts, no refund): the
    # stored order is neither duplicated nor changed.
    export = tmp_path / "export.csv"
    export.write_text("order_id,customer_id,ordered_at,sku,quantity,line_total\n"
                      "ord-1,alice,2026-01-01,TEA-A,1,150.00\nord-1,alice,2026-01-01,CUP-B,1,80.00\n"
                      "ord-2,alice,2026-01-02,TEA-A,1,150.00\n", encoding="utf-8")
    owner = client.app.state.warehouse  # type: ignore[attr-defined]
    job = owner.job(owner.submit_import("order_lines", [export]))
    assert job is not None
    assert job.wait(60)
    assert job.status == "done", job.error
    assert job.result is not None
    counts = job.result.tables["orders"]
    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 0, 1)
    assert read(client, "SELECT order_id, total_amount, refunded_amount, source FROM orders ORDER BY 1") == [
        ("ord-1", 22000, 7652, "checkout"), ("ord-2", 15000, 0, "import")]
    assert read(client, "SELECT count(*) FROM order_lines WHERE order_id = 'ord-1'") == [(2,)]
    # Draining again (a repeated fact) changes nothing either.
    assert drain_on_server(client).facts == 0


def test_the_drain_is_kill_safe_a_repeated_import_counts_nothing_twice(store_cfg: Settings) -> None:
    """A drain killed after the warehouse committed but before the store marked the facts done
    imports them again on the next run: keyed, so nothing is counted twice."""
    from datetime import UTC, datetime

    from growthwheel.promotions.models import CheckoutOrder, CheckoutOrderLine

    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with session_scope(store_cfg) as s:
        order = CheckoutOrder(id="o-k", customer_id="bob", currency="CNY", request_hash="x", status="paid",
                              subtotal=5000, discount=0, shipping=500, total=5500, points_used=0,
                              points_earned=50, growth_earned=50, priced={}, committed_at=now)
        line = CheckoutOrderLine(order_id="o-k", line_id="1", sku="S", quantity=2, unit_price=2500,
                                 subtotal=5000, discount=0, paid=5000)
        s.add_all([order, line])
        s.flush()
        facts.record_order(s, order, [line], now=now)
        facts.record_event(s, event_id="points_moved:x1", type="points_moved", occurred_at=now,
                           customer_id="bob", properties={"kind": "earn", "points": 50})

    class Killed(Exception):
        pass

    importer = facts.direct_importer(store_cfg)
    calls: list[str] = []

    def dies_after_the_warehouse_commit(table: str, rows: Any, source: str) -> Any:
        result = importer(table, rows, source)
        calls.append(table)
        if table == "events":
            raise Killed
        return result

    with pytest.raises(Killed):
        facts.drain(lambda: session_scope(store_cfg), dies_after_the_warehouse_commit)
    assert calls == ["order_lines", "events"]
    assert pending(store_cfg) == 2  # not marked: the next drain does them again
    out = warehouse_access.drain_facts(store_cfg, lambda: session_scope(store_cfg))  # the worker's job
    assert out["facts"] == 2
    assert pending(store_cfg) == 0
    con = duckdb.connect(str(store_cfg.warehouse_path), read_only=True)
    try:
        found = con.execute("SELECT count(*), sum(total_amount), sum(shipping_amount) FROM orders").fetchall()
        assert found == [(1, 5000, 500)]
        assert con.execute("SELECT count(*) FROM order_lines").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(1,)]
        imports = con.execute("SELECT table_name, inserted, unchanged FROM _imports "
                              "ORDER BY finished_at").fetchall()
    finally:
        con.close()
    assert imports == [("order_lines", 1, 0), ("events", 1, 0), ("order_lines", 0, 1), ("events", 0, 1)]


def test_an_import_from_a_file_never_overrides_a_checkout_order_but_the_checkout_may(tmp_path: Path) -> None:
    """The rule in the merge itself, on an order-level ``orders`` import too."""
    cfg = Settings(data_dir=tmp_path, database_url=None)
    (tmp_path / "a.csv").write_text("order_id,customer_id,ordered_at,total\no1,c1,2026-01-01,10.00\n",
                                    encoding="utf-8")
    import pyarrow as pa

    from growthwheel.warehouse import ingest

    rows = pa.table({"order_id": ["o1"], "customer_id": ["c1"], "ordered_at": ["2026-01-01T10:00:00+00:00"],
                     "total": ["12.00"]})
    ingest.import_rows("orders", rows, "checkout", cfg=cfg, origin="checkout")
    again = import_files("orders", [tmp_path / "a.csv"], cfg=cfg)
    assert again.tables["orders"].unchanged == 1
    changed = rows.append_column("refunded_amount", pa.array(["12.00"]))
    result = ingest.import_rows("orders", changed, "checkout", cfg=cfg, origin="checkout")
    assert result.tables["orders"].updated == 1
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT total_amount, refunded_amount, status, source FROM orders").fetchall() == [
            (1200, 1200, "refunded", "checkout")]
    finally:
        con.close()


def test_checkout_facts_on_the_spark_warehouse_and_members_read_through_spark(
        spark_session: Any, tmp_path: Path) -> None:
    """The same keyed facts on the Spark warehouse, read back through Spark (Ibis on PySpark), and
    the members' history read from it (``loyalty.history.read_history``)."""
    from datetime import UTC, datetime

    import pyarrow as pa

    from growthwheel.loyalty import history
    from growthwheel.warehouse import db, ingest

    cfg = Settings(data_dir=tmp_path / "spark-data", warehouse="spark", database_url=None)
    rows = pa.table({"order_id": ["o1", "o1"], "customer_id": ["c1", "c1"],
                     "ordered_at": ["2026-01-01T10:00:00+00:00"] * 2, "sku": ["S", "T"],
                     "quantity": ["1", "2"], "line_total": ["100.00", "20.50"], "promotion_ids": ["p1", None],
                     "points_amount": ["1.00", None], "points_used": ["100", None],
                     "points_earned": ["120", None]})
    ingest.import_rows("order_lines", rows, "checkout", cfg=cfg, origin="checkout")
    export = tmp_path / "export.csv"
    export.write_text("order_id,customer_id,ordered_at,sku,quantity,line_total\n"
                      "o1,c1,2026-01-01,S,1,999.00\no2,c1,2026-02-01,S,1,300.00\n", encoding="utf-8")
    again = import_files("order_lines", [export], cfg=cfg)
    assert (again.tables["orders"].inserted, again.tables["orders"].unchanged) == (1, 1)
    backend = db.connect(cfg)
    try:
        o = backend.table("orders")
        found = o.select("order_id", "total_amount", "points_used", "points_earned", "source")
        assert sorted(tuple(r.values()) for r in found.to_pyarrow().to_pylist()) == [
            ("o1", 12050, 100, 120, "checkout"), ("o2", 30000, None, None, "import")]
        people, growth = history.read_history(backend, datetime(2026, 6, 1, tzinfo=UTC))
    finally:
        backend.disconnect()
    assert set(people) == {"c1"}
    assert [(oid, amount) for oid, _at, amount in growth["c1"]] == [("o2", 300)]  # o1 is the checkout's


def test_message_statuses_and_clicks_become_events_once(store_cfg: Settings) -> None:
    """Messages queued, sent and clicked reach ``events``; a sweep seeing them again (its overlap)
    records nothing twice."""
    from datetime import UTC, datetime, timedelta

    from growthwheel.jobs.models import OutboxRow
    from growthwheel.journeys.channels.models import ChannelClick

    sent = datetime.now(UTC) - timedelta(minutes=2)
    with session_scope(store_cfg) as s:
        s.add(OutboxRow(id="m1", key="j1:s1:ann:1", channel="email", recipient="ann@example.com", payload={},
                        customer_id="ann", journey_id="j1", step_id="s1", status="sent",
                        next_attempt_at=sent, created_at=sent - timedelta(seconds=5), sent_at=sent))
        s.add(OutboxRow(id="m2", key="j1:s1:bo:1", channel="email", recipient="bo@example.com", payload={},
                        customer_id="bo", journey_id="j1", step_id="s1", status="pending",
                        next_attempt_at=sent, created_at=sent))
        s.add(ChannelClick(id="k1", message_key="j1:s1:ann:1", customer_id="ann", channel="email",
                           url="https://shop.example/p?utm_source=growthwheel",
                           clicked_at=sent + timedelta(seconds=30)))
    first = warehouse_access.drain_facts(store_cfg, lambda: session_scope(store_cfg))
    assert first["messages_swept"] == 5  # the sent one was accepted by its provider: delivered too
    assert first["events"] == 5
    again = warehouse_access.drain_facts(store_cfg, lambda: session_scope(store_cfg))
    assert again["messages_swept"] == 0
    assert again["facts"] == 0
    con = duckdb.connect(str(store_cfg.warehouse_path), read_only=True)
    try:
        found = con.execute("SELECT customer_id, type, json_extract_string(properties, '$.journey_id') "
                            "FROM events ORDER BY customer_id, type").fetchall()
    finally:
        con.close()
    assert found == [("ann", "message_clicked", None), ("ann", "message_delivered", "j1"),
                     ("ann", "message_queued", "j1"), ("ann", "message_sent", "j1"),
                     ("bo", "message_queued", "j1")]


def _fact_inserts(cfg: Settings, work: Callable[[Any], None]) -> tuple[list[str], int]:
    """The ``fact_outbox`` INSERT statements ``work(session)`` ran, and the rows it left."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO FACT_OUTBOX"):
            seen.append(statement)

    engine = db.engine(cfg)
    before = pending(cfg)
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        try:
            with session_scope(cfg) as session:
                work(session)
        except RuntimeError:
            pass
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return seen, pending(cfg) - before


def _event(session: Any, n: int) -> None:
    facts.record_event(session, event_id=f"points_moved:batch-{n}", type="points_moved",
                       occurred_at=utcnow(), customer_id="alice", properties={"n": n})


def test_batched_facts_are_written_in_one_statement_in_order_and_not_at_all_on_an_exception(
        store_cfg: Settings) -> None:
    def three(session: Any) -> None:
        with facts.batched(session):
            _event(session, 1)
            with facts.batched(session):  # nested: the outer block writes
                _event(session, 2)
            _event(session, 3)

    inserts, rows = _fact_inserts(store_cfg, three)
    assert (len(inserts), rows) == (1, 3)
    with session_scope(store_cfg) as session:
        keys = list(session.scalars(sa.select(FactRow.key).order_by(FactRow.id)))
    assert keys == [f"points_moved:batch-{n}" for n in (1, 2, 3)]

    def fails(session: Any) -> None:
        with facts.batched(session):
            _event(session, 4)
            raise RuntimeError("the act fails")

    inserts, rows = _fact_inserts(store_cfg, fails)
    assert (inserts, rows) == ([], 0)

    def unbatched(session: Any) -> None:
        _event(session, 5)
        _event(session, 6)

    inserts, rows = _fact_inserts(store_cfg, unbatched)
    assert (len(inserts), rows) == (2, 2)
