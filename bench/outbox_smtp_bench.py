"""Messages per second through the whole outbox path against a bare ``smtplib`` loop, same server,
same run (issue 12: aim at 0.5x of the bare loop or better).

Starts an aiosmtpd server on 127.0.0.1, in a process of its own, that accepts and counts
messages. Then:

* **bare**: one ``smtplib.SMTP`` connection, ``send_message`` of one of the journey's emails built
  once (the same text, HTML, headers: the same bytes on the wire) with only ``To`` changed — the
  fastest a Python sender gets these emails to this server; measured before and after the outbox
  run, the mean is the baseline (the machine is shared);
* **outbox**: N rendered journey emails queued in the outbox of a fresh operational store (SQLite
  by default, or ``--database-url``), delivered by ``jobs.outbox.deliver_due`` batches (claim under
  a lease → mark ``sending`` → the guard: consent, suppression, quiet hours, frequency caps across
  journeys, the daily cap → SMTP over one reused connection → record the outcome), as the worker
  does. 3 % of the customers revoked consent and 2 % of the addresses are suppressed (skipped, not
  sent); every tenth customer has a second message from another journey the same day, which the
  cap (1 email per 24 h) refuses.

Checks that the server received exactly one email per customer who may receive one, and prints
messages per second of both and their ratio.

    nice -n 5 .venv/bin/python bench/outbox_smtp_bench.py [N] [--database-url URL] [--one-at-a-time]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import smtplib
import socket
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from growthwheel.accounts.service import server_secret
from growthwheel.config import Settings
from growthwheel.jobs import outbox
from growthwheel.jobs.models import OutboxRow
from growthwheel.journeys.channels import store
from growthwheel.journeys.channels.guard import GuardedChannel, message_of, payload_of
from growthwheel.journeys.channels.links import LinkMaker, Utm
from growthwheel.journeys.channels.rules import FrequencyCap, QuietHours, Rules
from growthwheel.journeys.channels.smtp import SmtpChannel, build_email
from growthwheel.journeys.channels.templates import MessageTemplate, Recipient, TemplateText, render
from growthwheel.store.db import engine, migrate, session_scope

NOW = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai: outside the quiet hours
TEXT = "{{ customer.name }}，您好，送您一张回归券：WB-1234\n" * 5
HTML = "<p>{{ customer.name }}，您好，送您一张<b>回归券</b>：WB-1234</p>" * 5


class Counter_:
    """Accepts every message, remembers each recipient."""

    def __init__(self) -> None:
        self.to: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            self.to[rcpt] += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bare_loop(cfg: Settings, port: int, n: int) -> tuple[float, int]:
    """The baseline: the first queued email, built once (same text, HTML, headers, so the same
    bytes on the wire as the outbox sends), re-sent with only ``To`` changed over one connection."""
    with session_scope(cfg) as session:
        row = session.scalars(select(OutboxRow).order_by(OutboxRow.created_at, OutboxRow.id).limit(1)).one()
        message = message_of(outbox.OutboxMessage(key=row.key, channel="email", recipient=row.recipient,
                                                  payload=row.payload, customer_id=row.customer_id), "email")
    base = build_email(message, row.key, sender="news@tea.example.com", domain="tea.example.com")
    size = len(base.as_bytes())
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for i in range(n):
            del base["To"]
            base["To"] = f"bare{i}@example.com"
            conn.send_message(base)
    return n / (time.perf_counter() - started), size


def queue(cfg: Settings, n: int) -> set[str]:
    """Queue the journey emails; returns the addresses that may receive one."""
    texts = {"zh": TemplateText(subject="好久不见", text=TEXT, html=HTML)}
    template = MessageTemplate("winback", "email", texts)
    secret = server_secret(cfg.data_dir)
    allowed: set[str] = set()
    with session_scope(cfg) as session:
        for i in range(n):
            customer, address = f"c{i}", f"c{i}@example.com"
            if i % 33 == 5:
                store.set_consent(session, customer, "email", False, source="bench", now=NOW)
            elif i % 50 == 7:
                store.suppress(session, "email", address, "manual", now=NOW)
            else:
                allowed.add(address)
            journeys = ("winback", "birthday") if i % 10 == 0 else ("winback",)
            for journey in journeys:
                key = outbox.outbox_key(journey, "s1", customer, "1")
                links = LinkMaker(secret, "https://growth.example.com", customer, "email", key,
                                  Utm("growthwheel", "email", journey))
                who = Recipient(customer, address, "zh", {"name": f"顾客{i}"})
                message = render(template, who, links=links)
                outbox.enqueue(session, key=key, channel="email", recipient=address,
                               payload=payload_of(message),
                               customer_id=customer, journey_id=journey, step_id="s1", occurrence="1",
                               now=NOW - timedelta(seconds=1))
    return allowed


class OneAtATime:
    """The guard without its batch check (no ``prepare``): each message admitted in a transaction
    of its own, as before the batch check."""

    def __init__(self, guarded: GuardedChannel) -> None:
        self.guarded = guarded
        self.name = guarded.name
        self.idempotent = guarded.idempotent

    def deliver(self, message: outbox.OutboxMessage) -> outbox.DeliveryResult:
        return self.guarded.deliver(message)


def through_outbox(cfg: Settings, port: int, batch: int,
                   one_at_a_time: bool = False) -> tuple[float, outbox.DeliveryStats]:
    rules = Rules(timezone="Asia/Shanghai",
                  caps=(FrequencyCap("email", 1, timedelta(hours=24)),
                        FrequencyCap("*", 3, timedelta(days=7))),
                  quiet_hours={"*": QuietHours(clock_time(21, 0), clock_time(9, 0))},
                  daily_caps={"email": 1_000_000})
    smtp = SmtpChannel("127.0.0.1", port, "news@tea.example.com")
    guarded = GuardedChannel(cfg, smtp, rules, clock=lambda: NOW)
    channels: dict[str, Any] = {"email": OneAtATime(guarded) if one_at_a_time else guarded}
    total = outbox.DeliveryStats()
    started = time.perf_counter()
    while True:
        done = outbox.deliver_due(cfg, channels, worker="bench", clock=lambda: NOW, limit=batch)
        for name in ("claimed", "sent", "skipped", "deferred", "retried", "dead"):
            setattr(total, name, getattr(total, name) + getattr(done, name))
        if done.claimed == 0:
            break
    seconds = time.perf_counter() - started
    smtp.close()
    return total.sent / seconds, total


def serve(port: int, out: str, ready: Any, stop: Any) -> None:
    """The SMTP server, in a process of its own (as a real one is: not sharing the sender's GIL);
    writes how many emails each recipient got to ``out`` when stopped."""
    handler = Counter_()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()
    Path(out).write_text(json.dumps(dict(handler.to)), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--batch", type=int, default=outbox.DEFAULT_BATCH)
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="also time the guard admitting each message alone (as before)")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "received.json")
        ready, stop = multiprocessing.Event(), multiprocessing.Event()
        server = multiprocessing.Process(target=serve, args=(port, out, ready, stop), daemon=True)
        server.start()
        try:
            ready.wait(30)
            cfg = Settings(data_dir=Path(tmp) / "data", database_url=args.database_url)
            migrate(cfg)
            allowed = queue(cfg, args.n)
            bare, size = bare_loop(cfg, port, args.n)
            rate, stats = through_outbox(cfg, port, args.batch)
            bare_after, _size = bare_loop(cfg, port, args.n)  # the machine is shared: measure it again
            engine(cfg).dispose()
            single = None
            if args.one_at_a_time:  # the guard's per-message transactions, on a store of its own
                other = Settings(data_dir=Path(tmp) / "single", database_url=args.database_url)
                migrate(other)
                queue(other, args.n)
                single, again = through_outbox(other, port, args.batch, one_at_a_time=True)
                assert again.sent == stats.sent, (again.sent, stats.sent)
                engine(other).dispose()
        finally:
            stop.set()
            server.join(30)
        received: dict[str, int] = json.loads(Path(out).read_text(encoding="utf-8"))
    got = {to: c for to, c in received.items() if not to.startswith("bare")}
    assert set(got) == allowed, (len(got), len(allowed))
    each = 2 if args.one_at_a_time else 1  # (the second run sends the same emails again)
    assert set(got.values()) == {each}, Counter(got.values())  # exactly one email each per run: the cap held
    assert stats.sent == len(allowed), (stats.sent, len(allowed))
    store_name = "PostgreSQL" if args.database_url else "SQLite"
    print(f"messages={stats.sent:,} sent, {stats.skipped:,} skipped (consent, suppression, cap); "
          f"store={store_name}, batch={args.batch}")
    baseline = (bare + bare_after) / 2
    print(f"email of {size:,} bytes (text + HTML, tracked links, unsubscribe footer, open pixel)")
    print(f"bare smtplib loop:            {baseline:8.0f} msg/s  (before {bare:.0f}, after {bare_after:.0f})")
    print(f"outbox -> guard -> SMTP:      {rate:8.0f} msg/s")
    print(f"ratio (outbox/bare): {rate / baseline:.2f}  (aim >= 0.5)")
    if single is not None:
        print(f"same path, the guard one message at a time: {single:8.0f} msg/s  "
              f"({rate / single:.2f}x with the batch check; ratio to bare {single / baseline:.2f})")


if __name__ == "__main__":
    main()
