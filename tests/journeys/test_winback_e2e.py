"""Must-show (issue 12): a dormant customer goes through win-back end to end, with real parts only.

A shop imported through the normal ingest path (DuckDB warehouse, SQLite store), ``channels.json``
pointing email at a real SMTP server (aiosmtpd on 127.0.0.1), and the real worker
(:class:`growthwheel.jobs.worker.Worker`) running the ``journeys.tick`` and ``facts.drain`` jobs and
delivering the outbox through the configured, guarded SMTP channel. Then the real app's checkout
(``POST /api/v1/orders`` over HTTP) takes the code from the email.

What it shows: the dormant customer (and only she) enters, gets exactly one email whose coupon code
is the one issued to her; the order with that code is priced with the coupon, becomes a warehouse
fact (``orders``, ``source = checkout``) through the worker's drain and shows in her profile; the
next tick counts the journey's conversion with that order and its amount; another pass sends
nothing more.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from fastapi.testclient import TestClient
from sqlalchemy import select

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.jobs.scheduler import ScheduleSpec
from growthwheel.jobs.worker import Worker
from growthwheel.journeys import service
from growthwheel.journeys.models import Enrolment
from growthwheel.journeys.report import journey_report
from growthwheel.promotions import coupons
from growthwheel.promotions.models import CouponCode
from growthwheel.store.db import engine, migrate, session_scope
from growthwheel.warehouse.ingest import import_files

# The worker's first pass (enrolment) runs on a clock at NOW + 5 s; the order goes through the real
# checkout at the real time, which must come after the enrolment for it to count as a conversion:
# NOW two minutes back, so that holds however fast the steps between them run (at NOW = the real
# time, a run faster than 5 s placed the order before the enrolment and failed).
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)


def _day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


def shop(cfg: Settings, scratch: Path) -> None:
    """alice: one order 120 days ago (dormant: past 90, not yet churned at 180); bob: ordered 5 days
    ago (active); carol: 300 days ago (churned). Default thresholds (too few repeat gaps to learn)."""
    customers = scratch / "customers.csv"
    customers.write_text(
        "customer_id,email,name\nalice,alice@example.com,Alice\nbob,bob@example.com,Bob\n"
        "carol,carol@example.com,Carol\n", encoding="utf-8")
    lines = scratch / "lines.csv"
    lines.write_text(
        "order_id,customer_id,ordered_at,sku,quantity,line_total\n"
        f"o-a,alice,{_day(120)},TEA-A,1,150.00\no-b,bob,{_day(5)},TEA-A,1,150.00\n"
        f"o-c,carol,{_day(300)},TEA-A,1,150.00\n", encoding="utf-8")
    for table, path in (("customers", customers), ("order_lines", lines)):
        result = import_files(table, [path], cfg=cfg)
        assert result.rows_quarantined == 0, result


WINBACK = {
    "trigger": {"kind": "lifecycle", "stage": "dormant"},
    "start": "coupon",
    "steps": [
        {"id": "coupon", "type": "coupon", "batch_id": "BATCH", "next": "mail"},
        {"id": "mail", "type": "send", "channel": "email", "next": "wait", "template": {"texts": {
            "en": {"subject": "We miss you, {{ customer.name }}",
                   "text": "Your code: {{ coupon.code }} (10.00 off, until {{ coupon.valid_until }})"},
            "zh": {"subject": "{{ customer.name }}，好久不见", "text": "回归券 {{ coupon.code }}"}}}},
        {"id": "wait", "type": "wait", "hours": 72, "next": "check"},
        {"id": "check", "type": "condition", "condition": {"kind": "ordered"}, "then": "done",
         "else": "done"},
        {"id": "done", "type": "exit"},
    ],
    "holdout_share": 0.0,
    "backfill_days": 60,
    "goal": {"within_days": 30},
}


def test_dormant_customer_winback_email_coupon_checkout_fact_profile_conversion(
    tmp_path: Path, smtp_server: tuple[int, Any],
) -> None:
    port, mailbox = smtp_server
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    shop(cfg, tmp_path)
    migrate(cfg)
    (cfg.data_dir / "channels.json").write_text(json.dumps({
        "public_url": "https://shop.example", "email": {"host": "127.0.0.1", "port": port,
                                                        "sender": "Tea Shop <news@shop.example>"},
    }), encoding="utf-8")
    with session_scope(cfg) as session:
        batch = coupons.create_batch(session, name="回归券", valid_from=NOW - timedelta(days=1),
                                     valid_until=NOW + timedelta(days=30), actor_name="test",
                                     definition={"reward": {"type": "order_amount_off", "amount": 1000}})
        definition = json.loads(json.dumps(WINBACK).replace("BATCH", batch.id))
        journey = service.create_journey(session, "win-back", definition, actor_name="test", now=NOW)
        service.change_status(session, journey.id, "activate", actor_name="test", now=NOW)
        journey_id = journey.id
        key, _row = accounts.create_api_key(session, "shop", ("read", "write"), created_by="tests")

    clock = [NOW + timedelta(seconds=5)]
    worker = Worker(cfg, name="w1", clock=lambda: clock[0], poll_seconds=0.05, defaults=[
        ScheduleSpec("journeys.tick", "journeys.tick", every_seconds=60),
        ScheduleSpec("facts.drain", "facts.drain", every_seconds=60)])
    first = worker.run_once()
    runs = {r.schedule: r for r in first.runs}
    assert runs["journeys.tick"].status == "succeeded", runs["journeys.tick"]
    assert runs["journeys.tick"].result["enrolled"] == 1, runs["journeys.tick"].result
    assert first.delivery.sent == 1, first.delivery.as_dict()

    # one email, to alice only, carrying the code issued to her
    assert [m["To"] for m in mailbox.messages] == ["alice@example.com"]
    mail = mailbox.messages[0]
    assert mail["Subject"] == "Alice，好久不见"  # no language known for her: the shop's zh
    body = mail.get_body(preferencelist=("plain",)).get_content()
    with session_scope(cfg) as session:
        issued = session.scalars(select(CouponCode).where(CouponCode.customer_id == "alice")).one()
        code = issued.code
        others = select(CouponCode.customer_id).where(CouponCode.customer_id != "alice",
                                                      CouponCode.customer_id.is_not(None))
        assert session.scalars(others).all() == []
    assert f"回归券 {code}" in body
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.search(r"https://shop\.example/m/u/\S+", mail["List-Unsubscribe"])

    # she orders with it through the checkout
    order = {"order_id": "wb-1", "customer_id": "alice", "coupon_codes": [code],
             "lines": [{"line_id": "A", "sku": "TEA-A", "unit_price": 15000, "quantity": 1}]}
    with TestClient(create_app(cfg), headers={"Authorization": f"Bearer {key}"}) as client:
        answer = client.post("/api/v1/orders", json=order)
        assert answer.status_code == 201, answer.text
        placed = answer.json()
    assert placed["total"] == 14000  # 150.00 − the coupon's 10.00

    # the worker drains the order into the warehouse and the tick counts the conversion
    clock[0] = datetime.now(UTC) + timedelta(seconds=61)
    second = worker.run_once()
    runs = {r.schedule: r for r in second.runs}
    assert runs["facts.drain"].status == "succeeded", runs["facts.drain"]
    assert runs["journeys.tick"].status == "succeeded", runs["journeys.tick"]
    with session_scope(cfg) as session:
        e = session.scalars(select(Enrolment).where(Enrolment.journey_id == journey_id)).one()
        assert (e.customer_id, e.status, e.conversion_order_id, e.conversion_amount) == (
            "alice", "converted", "wb-1", 14000)
        report = journey_report(session, service.get_journey(session, journey_id))
    treated = report["treatment"]
    assert (report["entered"], treated["converted"], treated["revenue"]) == (1, 1, 14000)

    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        facts = con.execute("SELECT customer_id, total_amount, source, coupon_code FROM orders "
                            "WHERE order_id = 'wb-1'").fetchall()
    finally:
        con.close()
    assert facts == [("alice", 14000, "checkout", code)]
    with TestClient(create_app(cfg), headers={"Authorization": f"Bearer {key}"}) as client:
        profile = client.get("/api/v1/customers/alice")
        assert profile.status_code == 200, profile.text
        kpis = profile.json()["kpis"]
    assert kpis["orders"] == 2
    assert kpis["gmv"]["minor"] == 15000 + 14000

    # later passes send nothing more
    clock[0] = datetime.now(UTC) + timedelta(days=4)
    worker.run_once()
    assert len(mailbox.messages) == 1
    engine(cfg).dispose()
