"""What becomes of a message after it goes out (issue 12 item 2): delivered, opened, bounced and
unsubscribed are each recorded once per message — by the send (SMTP 250 / 5xx against a real
aiosmtpd server), the open pixel, the one-click link and a signed provider callback, over the real
app — shown per step in the journey's report and drained as warehouse facts, once."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import httpx
from channel_servers import Mailbox
from fastapi.testclient import TestClient
from sqlalchemy import select

from growthwheel.accounts.service import server_secret
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.jobs import outbox, warehouse_access
from growthwheel.journeys.channels import store
from growthwheel.journeys.channels.guard import GuardedChannel, payload_of
from growthwheel.journeys.channels.links import LinkMaker
from growthwheel.journeys.channels.models import ChannelMessageEvent
from growthwheel.journeys.channels.rules import Rules
from growthwheel.journeys.channels.smtp import SmtpChannel
from growthwheel.journeys.channels.templates import MessageTemplate, Recipient, TemplateText, render
from growthwheel.journeys.channels.webhook import sign_headers
from growthwheel.journeys.report import message_counts
from growthwheel.store.db import session_scope

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
SECRET = "provider-callback-secret-0123"
BASE = "http://testserver"


def _queue(cfg: Settings, customer: str, address: str, journey: str = "j1") -> str:
    key = f"j|{journey}|s1|{customer}|1"
    template = MessageTemplate("winback", "email", {"zh": TemplateText(
        subject="好久不见", text="回归券 WB-1", html="<p>回归券 <b>WB-1</b></p>")})
    links = LinkMaker(server_secret(cfg.data_dir), BASE, customer, "email", key)
    message = render(template, Recipient(customer, address, "zh"), links=links)
    with session_scope(cfg) as session:
        outbox.enqueue(session, key=key, channel="email", recipient=address, payload=payload_of(message),
                       customer_id=customer, journey_id=journey, step_id="s1", occurrence="1", now=NOW)
    return key


def _signed(client: TestClient, body: dict[str, object], secret: str = SECRET) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = sign_headers(secret.encode(), raw, timestamp=int(time.time()), idempotency_key="cb")
    return client.post("/m/status", content=raw, headers=headers)


def _local(url: str) -> str:
    assert url.startswith(BASE), url
    return url[len(BASE):]


DEFINITION = {
    "trigger": {"kind": "purchase_count", "n": 1}, "start": "s1",
    "steps": [{"id": "s1", "type": "tag", "tag": "welcomed", "next": "out"}, {"id": "out", "type": "exit"}],
}


def test_delivered_opened_bounced_unsubscribed_once_each_in_report_and_warehouse(
    store_cfg: Settings, smtp_server: tuple[int, Mailbox], make_api_key: Callable[..., str],
    make_user: Callable[..., Any], log_in: Callable[..., None],
) -> None:
    port, mailbox = smtp_server
    key = make_api_key("read", "write")
    with TestClient(create_app(store_cfg), headers={"Authorization": f"Bearer {key}"}) as api:
        made = api.post("/api/v1/journeys", json={"name": "welcome", "definition": DEFINITION})
        assert made.status_code == 201, made.text
        journey = str(made.json()["id"])
    ann = _queue(store_cfg, "ann", "ann@example.com", journey)
    bo = _queue(store_cfg, "bo", "bo@example.com", journey)
    cy = _queue(store_cfg, "cy", "bounce@example.com", journey)  # the SMTP server answers 550
    smtp = SmtpChannel("127.0.0.1", port, "news@tea.example.com")
    guarded = GuardedChannel(store_cfg, smtp, Rules(timezone="Asia/Shanghai"), clock=lambda: NOW)
    stats = outbox.deliver_due(store_cfg, {"email": guarded}, worker="w1", clock=lambda: NOW)
    smtp.close()
    assert (stats.sent, stats.dead) == (2, 1)
    with session_scope(store_cfg) as session:
        events = [(e.message_key, e.kind, e.source, e.customer_id)
                  for e in session.scalars(select(ChannelMessageEvent))]
        suppressed = store.blocked(session, "cy", "email", "bounce@example.com", require_opt_in=False)
    assert suppressed == "suppressed"
    assert events == [(cy, "bounced", "send", "cy")]  # SMTP 550 at send time

    received = {m["To"]: m for m in mailbox.messages}
    html = received["ann@example.com"].get_body(preferencelist=("html",))
    assert html is not None
    pixel = re.search(r'<img src="([^"]+/m/o/[^"]+)"', html.get_content())
    assert pixel is not None
    unsubscribe = re.sub(r"\s+", "", str(received["bo@example.com"]["List-Unsubscribe"])).strip("<>")

    (store_cfg.data_dir / "channels.json").write_text(json.dumps({"status_secret": SECRET}), "utf-8")
    with TestClient(create_app(store_cfg)) as client:
        for _ in range(3):  # a mail client loads the pixel each time the mail is shown
            seen = client.get(_local(pixel.group(1)))
            assert seen.status_code == 200
            assert seen.headers["content-type"] == "image/gif"
        assert client.get("/m/o/not-a-token.x").status_code == 400
        for _ in range(2):
            assert client.post(_local(unsubscribe)).status_code == 200

        first = _signed(client, {"message_key": ann, "status": "delivered", "detail": "250 2.0.0 in mailbox"})
        assert first.status_code == 200, first.text
        assert first.json() == {"message_key": ann, "status": "delivered", "recorded": True}
        assert _signed(client, {"message_key": ann, "status": "delivered"}).json()["recorded"] is False
        later = _signed(client, {"message_key": bo, "status": "bounced", "detail": "5.2.2 mailbox full"})
        assert later.json()["recorded"] is True
        # refused: a wrong signature, a status we do not know (named), a message never queued
        forged = _signed(client, {"message_key": ann, "status": "bounced"}, secret="another-secret-0123456")
        assert forged.status_code == 401
        wrong = _signed(client, {"message_key": ann, "status": "exploded"})
        assert wrong.status_code == 422
        assert wrong.headers["content-type"].startswith("application/problem+json")
        assert "status" in wrong.json()["detail"]
        unknown = _signed(client, {"message_key": "j|nope|s1|x|1", "status": "delivered"})
        assert unknown.status_code == 404
        assert "message_key" in unknown.json()["detail"]
        assert client.post("/m/status", content=b"{}").status_code == 401
        admin = make_user("admin")
        log_in(client, admin.email, admin.password)
        api_report = client.get(f"/api/v1/journeys/{journey}/report").json()
        page = client.get(f"/journeys/{journey}", headers={"Accept-Language": "zh"})
        assert page.status_code == 200

    with session_scope(store_cfg) as session:
        kinds = Counter((e.message_key, e.kind) for e in session.scalars(select(ChannelMessageEvent)))
        assert store.blocked(session, "bo", "email", "bo@example.com", require_opt_in=False) == "unsubscribed"
        counts = message_counts(session, journey)
    assert kinds == Counter({(ann, "opened"): 1, (ann, "delivered"): 1, (bo, "unsubscribed"): 1,
                             (bo, "bounced"): 1, (cy, "bounced"): 1})
    assert counts == [{"step": "s1", "queued": 3, "sent": 2, "delivered": 2, "opened": 1, "clicked": 0,
                       "bounced": 2, "unsubscribed": 1, "skipped": 0, "failed": 1}]
    assert api_report["messages"] == counts  # the journey's report, per step
    row = re.search(r'<tr data-step="s1">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert "已送达" in page.text
    assert "退订" in page.text
    shown = dict(re.findall(r'data-count="(\w+)">(\d+)<', row.group(1)))
    assert shown == {k: str(v) for k, v in counts[0].items() if k != "step"}

    drained = warehouse_access.drain_facts(store_cfg, lambda: session_scope(store_cfg))
    assert warehouse_access.drain_facts(store_cfg, lambda: session_scope(store_cfg))["facts"] == 0
    assert drained["events"] > 0
    con = duckdb.connect(str(store_cfg.warehouse_path), read_only=True)
    try:
        facts = con.execute("SELECT customer_id, type, count(*) FROM events WHERE type LIKE 'message_%' "
                            "GROUP BY ALL ORDER BY ALL").fetchall()
    finally:
        con.close()
    assert facts == [
        ("ann", "message_delivered", 1), ("ann", "message_opened", 1), ("ann", "message_queued", 1),
        ("ann", "message_sent", 1),
        ("bo", "message_bounced", 1), ("bo", "message_delivered", 1), ("bo", "message_queued", 1),
        ("bo", "message_sent", 1), ("bo", "message_unsubscribed", 1),
        ("cy", "message_bounced", 1), ("cy", "message_failed", 1), ("cy", "message_queued", 1),
    ]


def test_status_callbacks_are_off_without_a_secret(store_cfg: Settings) -> None:
    with TestClient(create_app(store_cfg)) as client:
        off = _signed(client, {"message_key": "k", "status": "delivered"})
    assert off.status_code == 404
    assert "status_secret" in off.json()["detail"]
