"""Journeys against a real operational store (SQLite and PostgreSQL) and a real DuckDB warehouse:
enrolment, hold-out, steps and their effects, goal, re-entry, and exactly-once under two
concurrent ticks."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import ibis
import pytest
from sqlalchemy import func, select

from growthwheel.config import Settings
from growthwheel.jobs.models import OutboxRow
from growthwheel.journeys import engine, service
from growthwheel.journeys.models import CustomerTrait, Enrolment, StepLog
from growthwheel.journeys.report import journey_report
from growthwheel.journeys.repository import WarehouseView
from growthwheel.promotions import coupons
from growthwheel.promotions.models import CouponCode
from growthwheel.store.db import session_scope
from growthwheel.warehouse.schema import TABLES, ddl

NOW = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
ENV = service.Env(timezone="Asia/Shanghai", secret=b"s" * 32, public_url="https://shop.example")


def warehouse(customers: int, *, last_order_days_ago: int = 120) -> duckdb.DuckDBPyConnection:
    """A DuckDB warehouse: ``customers`` customers c000…, each with one paid order long ago."""
    con = duckdb.connect()
    for name, table in TABLES.items():
        con.execute(ddl(name, table.stored))
    day = (NOW - timedelta(days=last_order_days_ago)).date()
    con.execute(
        "INSERT INTO customers (customer_id, email, name) SELECT printf('c%03d', i), "
        "printf('c%03d@example.com', i), 'Name' FROM range(?) t(i)",
        [customers],
    )
    con.execute(
        "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) "
        "SELECT printf('o%03d', i), printf('c%03d', i), CAST(? AS TIMESTAMP), ?, 'paid', 5000 "
        "FROM range(?) t(i)",
        [day.isoformat(), day, customers],
    )
    return con


def order(con: duckdb.DuckDBPyConnection, order_id: str, customer: str, at: datetime, amount: int) -> None:
    con.execute(
        "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) "
        "VALUES (?, ?, ?, ?, 'paid', ?)",
        [order_id, customer, at.replace(tzinfo=None), at.date(), amount],
    )


def winback(batch_id: str, holdout: float = 0.2, **extra: Any) -> dict[str, Any]:
    return {
        "trigger": {"kind": "lifecycle", "stage": "dormant"},
        "start": "coupon",
        "steps": [
            {"id": "coupon", "type": "coupon", "batch_id": batch_id, "next": "mail"},
            {
                "id": "mail",
                "type": "send",
                "channel": "email",
                "next": "wait",
                "template": {
                    "texts": {
                        "zh": {"subject": "{{ customer.name }}，好久不见", "text": "回归券 {{ coupon.code }}"}
                    }
                },
            },
            {"id": "wait", "type": "wait", "hours": 72, "next": "check"},
            {
                "id": "check",
                "type": "condition",
                "condition": {"kind": "ordered"},
                "then": "done",
                "else": "tag",
            },
            {"id": "tag", "type": "tag", "tag": "winback-no-reply", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
        "holdout_share": holdout,
        "backfill_days": 400,
        "goal": {"within_days": 30},
        **extra,
    }


def setup_journey(cfg: Settings, definition_of: Any, *, budget: int | None = None) -> str:
    with session_scope(cfg) as session:
        batch = coupons.create_batch(
            session,
            name="回归券",
            definition={"reward": {"type": "order_amount_off", "amount": 1000}},
            valid_from=NOW - timedelta(days=1),
            valid_until=NOW + timedelta(days=60),
            budget_count=budget,
            actor_name="test",
        )
        row = service.create_journey(session, "win-back", definition_of(batch.id), actor_name="test", now=NOW)
        service.change_status(session, row.id, "activate", actor_name="test", now=NOW)
        return row.id


def count(cfg: Settings, model: Any, *where: Any) -> int:
    with session_scope(cfg) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_winback_enrols_holds_out_sends_once_and_converts(store_cfg: Settings) -> None:
    con = warehouse(60)
    view = WarehouseView(ibis.duckdb.from_connection(con))
    journey_id = setup_journey(store_cfg, winback)

    first = service.tick(store_cfg, view, now=NOW, env=ENV)
    assert first.enrolled == 60
    held = count(store_cfg, Enrolment, Enrolment.held_out.is_(True))
    treated = 60 - held
    # 20 % of 60, drawn by hashing the (random) journey id with each customer: exactly the hash's say.
    assert held == sum(engine.held_out(journey_id, f"c{i:03d}", 0.2) for i in range(60))
    assert 0 < held < 60
    # every treated customer: one code, one queued email carrying that code; the held-out: nothing
    assert count(store_cfg, CouponCode, CouponCode.customer_id.is_not(None)) == treated
    with session_scope(store_cfg) as session:
        mails = list(session.scalars(select(OutboxRow)))
        codes = dict(session.execute(select(CouponCode.customer_id, CouponCode.code)).all())
        held_ids = set(session.scalars(select(Enrolment.customer_id).where(Enrolment.held_out.is_(True))))
    assert len(mails) == treated
    assert {m.customer_id for m in mails}.isdisjoint(held_ids)
    for mail in mails:
        assert mail.customer_id is not None
        assert codes[mail.customer_id] in mail.payload["text"]
        assert mail.recipient == f"{mail.customer_id}@example.com"
        assert mail.key == f"j|{journey_id}|mail|{mail.customer_id}|once"

    # a second tick at the same instant changes nothing
    again = service.tick(store_cfg, view, now=NOW, env=ENV)
    assert (again.enrolled, again.advanced) == (0, 0)
    assert count(store_cfg, OutboxRow) == treated

    # one treated and one held-out customer order within the goal window
    buyer = sorted({m.customer_id for m in mails if m.customer_id})[0]
    control_buyer = sorted(held_ids)[0]
    order(con, "late-1", buyer, NOW + timedelta(days=1), 8000)
    order(con, "late-2", control_buyer, NOW + timedelta(days=2), 3000)
    later = service.tick(store_cfg, view, now=NOW + timedelta(hours=73), env=ENV)
    assert later.converted == 2
    with session_scope(store_cfg) as session:
        mine = session.scalars(select(Enrolment).where(Enrolment.customer_id == buyer)).one()
        assert (mine.status, mine.conversion_order_id, mine.conversion_amount) == (
            "converted",
            "late-1",
            8000,
        )
        control = session.scalars(select(Enrolment).where(Enrolment.customer_id == control_buyer)).one()
        assert (control.status, control.conversion_amount) == ("held_out", 3000)
        # the others waited 72 h, had not ordered, got the tag and left
        tagged = set(
            session.scalars(select(CustomerTrait.customer_id).where(CustomerTrait.name == "winback-no-reply"))
        )
        assert len(tagged) == treated - 1
        assert buyer not in tagged
        assert Counter(session.scalars(select(Enrolment.status))) == {
            "completed": treated - 1,
            "converted": 1,
            "held_out": held,
        }
        report = journey_report(session, service.get_journey(session, journey_id))
    assert report["entered"] == 60
    assert report["treatment"]["converted"] == 1
    assert report["holdout"]["converted"] == 1
    assert report["treatment"]["revenue"] == 8000
    steps = {(s["step"], s["outcome"]): s["enrolments"] for s in report["steps"]}
    assert steps[("coupon", "issued")] == treated
    assert steps[("mail", "queued")] == treated
    assert steps[("check", "else")] == treated - 1
    assert "95%" in report["uplift"]["conversion"]["words"]["en"]
    assert "置信区间" in report["uplift"]["conversion"]["words"]["zh"]


def test_coupon_budget_is_respected(store_cfg: Settings) -> None:
    con = warehouse(12)
    view = WarehouseView(ibis.duckdb.from_connection(con))
    setup_journey(store_cfg, lambda b: winback(b, holdout=0.0), budget=5)
    service.tick(store_cfg, view, now=NOW, env=ENV)
    assert count(store_cfg, CouponCode, CouponCode.customer_id.is_not(None)) == 5
    with session_scope(store_cfg) as session:
        outcomes = Counter(session.scalars(select(StepLog.outcome).where(StepLog.step_id == "coupon")))
        reasons = {
            str(r["reason"])
            for r in session.scalars(select(StepLog.detail).where(StepLog.outcome == "coupon_unavailable"))
        }
    assert outcomes == {"issued": 5, "coupon_unavailable": 7}
    assert all(r.startswith("coupon_budget_spent") for r in reasons)
    assert count(store_cfg, OutboxRow) == 12  # the journey goes on: the mail still goes out


@pytest.mark.parametrize("policy", ["never", "after_days", "always"])
def test_reentry_policy(tmp_path: Any, policy: str) -> None:
    from growthwheel.store import db

    cfg = Settings(data_dir=tmp_path, database_url=None)
    db.migrate(cfg)
    con = duckdb.connect()
    for name, table in TABLES.items():
        con.execute(ddl(name, table.stored))
    view = WarehouseView(ibis.duckdb.from_connection(con))
    reentry: dict[str, Any] = {"policy": policy} | ({"days": 10} if policy == "after_days" else {})
    definition = {
        "trigger": {"kind": "event", "event": "add_to_cart", "without": "purchase", "within_hours": 1},
        "start": "tag",
        "steps": [{"id": "tag", "type": "tag", "tag": "cart", "next": "out"}, {"id": "out", "type": "exit"}],
        "holdout_share": 0.0,
        "reentry": reentry,
    }
    with session_scope(cfg) as session:
        row = service.create_journey(session, "cart", definition, actor_name="t", now=NOW)
        service.change_status(session, row.id, "activate", actor_name="t", now=NOW)
    entered = []
    for day in range(4):  # an abandoned cart every 5 days, a tick 2 hours after each
        at = NOW + timedelta(days=5 * day, minutes=10)
        con.execute(
            "INSERT INTO events (event_id, type, occurred_at, customer_id) "
            "VALUES (?, 'add_to_cart', ?, 'c1')",
            [f"e{day}", at.replace(tzinfo=None)],
        )
        entered.append(service.tick(cfg, view, now=at + timedelta(hours=2), env=ENV).enrolled)
    expected = {"never": [1, 0, 0, 0], "after_days": [1, 0, 1, 0], "always": [1, 1, 1, 1]}[policy]
    assert entered == expected
    # a purchase within the hour means the cart was not abandoned: no entry
    at = NOW + timedelta(days=40)
    con.execute(
        "INSERT INTO events (event_id, type, occurred_at, customer_id) VALUES ('e9', 'add_to_cart', ?, 'c1'),"
        " ('p9', 'purchase', ?, 'c1')",
        [at.replace(tzinfo=None), (at + timedelta(minutes=30)).replace(tzinfo=None)],
    )
    assert service.tick(cfg, view, now=at + timedelta(hours=2), env=ENV).enrolled == 0
    db.engine(cfg).dispose()


def test_two_concurrent_ticks_enqueue_exactly_once(store_cfg: Settings) -> None:
    customers = 150
    con = warehouse(customers)
    setup_journey(store_cfg, lambda b: winback(b, holdout=0.1))
    gate = threading.Barrier(2)
    results: list[service.TickStats] = []
    errors: list[BaseException] = []

    def run() -> None:
        view = WarehouseView(ibis.duckdb.from_connection(con.cursor()))
        gate.wait()
        try:
            results.append(service.tick(store_cfg, view, now=NOW, env=ENV, batch=25))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    held = count(store_cfg, Enrolment, Enrolment.held_out.is_(True))
    treated = customers - held
    assert count(store_cfg, Enrolment) == customers
    assert sum(r.enrolled for r in results) == customers
    assert sum(r.advanced for r in results) == treated  # each enrolment moved by exactly one tick
    with session_scope(store_cfg) as session:
        keys = list(session.scalars(select(OutboxRow.key)))
        per_customer = Counter(
            session.scalars(select(CouponCode.customer_id).where(CouponCode.customer_id.is_not(None)))
        )
        logs = Counter(session.execute(select(StepLog.enrolment_id, StepLog.step_id)).all())
    assert len(keys) == len(set(keys)) == treated
    assert len(per_customer) == treated
    assert set(per_customer.values()) == {1}
    assert set(logs.values()) == {1}


def test_a_message_shows_the_customers_recommendations(store_cfg: Settings) -> None:
    """A send step whose template names ``product_block(products)`` shows the customer's stored
    recommendations (the popular list for someone without a personal one; excluded SKUs never)."""
    from growthwheel.recs.models import RecCustomer, RecExclusion, RecRun

    def definition(batch_id: str) -> dict[str, Any]:
        body = winback(batch_id, holdout=0.0)
        mail = next(s for s in body["steps"] if s["id"] == "mail")
        mail["template"]["texts"]["zh"]["text"] = "为您推荐：\n{{ product_block(products) }}"
        return body

    con = warehouse(3)
    with session_scope(store_cfg) as session:
        run = RecRun(customers=1, products=3, popular=[["TEA-9", 5.0, "popular", "大红袍"],
                                                        ["CUP-1", 4.0, "popular", "茶杯"]])
        session.add(run)
        session.flush()
        session.add(RecCustomer(customer_id="c000", run_id=run.id, computed_at=NOW,
                                items=[["TEA-1", 0.9, "repurchase", "龙井"],
                                       ["TEA-2", 0.5, "cosine", "碧螺春"],
                                       ["OUT-1", 0.4, "cosine", "断货茶"]]))
        session.add(RecExclusion(sku="OUT-1", reason="out_of_stock", created_by="test", created_at=NOW))
    setup_journey(store_cfg, definition)
    service.tick(store_cfg, WarehouseView(ibis.duckdb.from_connection(con)), now=NOW, env=ENV)
    with session_scope(store_cfg) as session:
        texts = {m.customer_id: m.payload["text"] for m in session.scalars(select(OutboxRow))}
    assert "- 龙井" in texts["c000"]
    assert "- 碧螺春" in texts["c000"]
    assert "断货茶" not in texts["c000"]  # excluded
    assert "- 大红袍" in texts["c001"]  # no personal list: the popular one


@pytest.mark.parametrize("held", [0, 1, 2])
def test_the_report_of_a_journey_with_a_tiny_hold_out_explains_instead_of_failing(
    store_cfg: Settings, held: int
) -> None:
    """One held-out entrant has no variance: the report (and so the journey page) says it needs
    two per group rather than failing with the comparison's 'n must be at least 2'."""
    journey_id = setup_journey(store_cfg, winback)
    with session_scope(store_cfg) as session:
        for i in range(5):
            session.add(Enrolment(journey_id=journey_id, version=1, customer_id=f"c{i:03d}",
                                  occurrence="once", held_out=i < held,
                                  status="held_out" if i < held else "completed",
                                  entered_at=NOW, triggered_at=NOW, goal_until=NOW + timedelta(days=30)))
        session.flush()
        report = journey_report(session, service.get_journey(session, journey_id))
    assert (report["holdout"]["entered"], report["treatment"]["entered"]) == (held, 5 - held)
    if held < 2:
        assert report["uplift"] is None
        assert "at least 2 entrants each" in report["uplift_words"]["en"]
        assert "至少 2 位" in report["uplift_words"]["zh"]
    else:
        assert report["uplift"]["conversion"]["estimate"] == 0.0
