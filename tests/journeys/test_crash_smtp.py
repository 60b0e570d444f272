"""Must-show (issue 12): SIGKILL the worker in the middle of a 10,000-message batch of journey
emails to a real SMTP server, restart it, and count what each customer received.

Real parts: the ``growthwheel worker`` command in its own process (its channels built from
``channels.json``: the guarded SMTP channel), aiosmtpd on 127.0.0.1 in this process, whose log of
``X-Growthwheel-Key`` headers is the witness; SQLite with one worker, PostgreSQL with two workers
after the restart.

What holds, exactly:

1. after the kill and the restart(s), **no customer received two messages**; every message is
   either ``sent`` (and arrived) or a dead letter ``in_doubt`` — at most **one**, the message the
   killed worker had handed to SMTP without recording the answer (it may or may not have arrived);
2. after an operator checks each in-doubt letter against the SMTP log and replays only those that
   did not arrive, **every customer received exactly one message**.

The killed worker's outbox lease (300 s by default) is made to run out by moving ``lease_until``
into the past, standing in for the five minutes a real restart would wait.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from channel_servers import free_port
from sqlalchemy import func, select, update

from growthwheel.config import Settings
from growthwheel.jobs import outbox
from growthwheel.jobs.models import OutboxRow
from growthwheel.store.db import migrate, session_scope

pytestmark = pytest.mark.slow

TOTAL = 10_000
_KEY = re.compile(rb"^X-Growthwheel-Key: (.+?)\r?$", re.M)


class Witness:
    """An SMTP handler that logs the key of every message it accepts (and nothing heavier)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = _KEY.search(envelope.content)
        with self.lock:
            self.keys.append(found.group(1).decode() if found else "?")
        return "250 Message accepted"

    def count(self) -> int:
        with self.lock:
            return len(self.keys)


@pytest.fixture
def witness() -> Iterator[tuple[int, Witness]]:
    handler = Witness()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


def _wait(condition: Callable[[], bool], timeout: float, what: str,
          state: Callable[[], str] = lambda: "") -> None:
    """Poll ``condition``; the timeouts are generous (a loaded 2-core CI delivers ~15 emails/s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {state()}")
        time.sleep(0.1)


def _state(cfg: Settings, log: Witness) -> str:
    with session_scope(cfg) as session:
        return f"(outbox {outbox.counts(session)}, {log.count()} received)"


class Workers:
    """``growthwheel worker`` processes; whatever is left is killed at the end."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "GROWTHWHEEL_DATA_DIR": str(self.cfg.data_dir)}
        if self.cfg.database_url:
            env["GROWTHWHEEL_DATABASE_URL"] = self.cfg.database_url
        code = "from growthwheel.cli.main import main; main()"
        proc = subprocess.Popen([sys.executable, "-c", code, "worker", "--poll", "0.1"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.running.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _pending(cfg: Settings) -> int:
    with session_scope(cfg) as session:
        counts = outbox.counts(session)
    return counts.get("pending", 0) + counts.get("claimed", 0) + counts.get("sending", 0)


def test_sigkill_mid_batch_of_10000_emails_each_customer_gets_exactly_one(
    store_cfg: Settings, witness: tuple[int, Witness],
) -> None:
    port, log = witness
    cfg = store_cfg
    migrate(cfg)
    (cfg.data_dir / "channels.json").write_text(json.dumps({
        "public_url": "https://shop.example",
        "email": {"host": "127.0.0.1", "port": port, "sender": "Shop <news@shop.example>"},
    }), encoding="utf-8")
    now = datetime.now(UTC) - timedelta(seconds=1)
    keys: dict[str, str] = {}
    with session_scope(cfg) as session:
        for n in range(TOTAL):
            customer = f"c{n:05d}"
            key = outbox.outbox_key("winback", "mail", customer, "once")
            keys[key] = customer
            outbox.enqueue(session, key=key, channel="email", recipient=f"{customer}@example.com",
                           customer_id=customer, journey_id="winback", step_id="mail", occurrence="once",
                           now=now, payload={"subject": "好久不见", "text": f"回归券 {n}", "html": None,
                                             "lang": "zh", "headers": {}, "data": {}})

    workers = Workers(cfg)
    try:
        first = workers.start()
        _wait(lambda: log.count() >= TOTAL * 3 // 20, 1200, "the first worker to send 15 %")
        first.send_signal(signal.SIGKILL)
        first.wait()
        at_kill = log.count()
        assert at_kill < TOTAL
        with session_scope(cfg) as session:  # the dead worker's leases run out
            session.execute(update(OutboxRow).where(OutboxRow.lease_until.is_not(None))
                            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        for _ in range(2 if cfg.database_url else 1):
            workers.start()
        _wait(lambda: _pending(cfg) == 0, 3600, "the outbox to drain", lambda: _state(cfg, log))
    finally:
        workers.stop_all()

    received = Counter(log.keys)
    assert "?" not in received
    assert max(received.values()) == 1, [k for k, n in received.items() if n > 1][:5]  # nobody twice
    with session_scope(cfg) as session:
        rows = {r.key: (r.id, r.status, r.dead_reason) for r in session.scalars(select(OutboxRow))}
    sent = {k for k, (_i, status, _r) in rows.items() if status == "sent"}
    doubtful = {k for k, (_i, status, _r) in rows.items() if status == "dead"}
    assert {rows[k][2] for k in doubtful} <= {"in_doubt"}
    assert len(doubtful) <= 1  # the one message in the killed worker's hands
    assert sent | doubtful == set(keys)
    assert sent <= set(received)
    assert set(received) - sent <= doubtful

    # the operator checks each in-doubt letter against the SMTP log; replays the ones that never came
    missing = [rows[k][0] for k in doubtful if k not in received]
    with session_scope(cfg) as session:
        assert outbox.replay(session, missing, now=datetime.now(UTC)) == len(missing)
    if missing:
        workers = Workers(cfg)
        try:
            workers.start()
            _wait(lambda: _pending(cfg) == 0, 120, "the replayed letter to go")
        finally:
            workers.stop_all()
    per_customer = Counter(keys[k] for k in log.keys)
    assert len(per_customer) == TOTAL
    assert set(per_customer.values()) == {1}  # exactly one each
    with session_scope(cfg) as session:
        dead = session.scalar(select(func.count()).where(OutboxRow.status == "dead"))
    assert dead == len(doubtful) - len(missing)  # an in-doubt letter that did arrive stays a dead letter
