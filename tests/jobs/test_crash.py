"""Crash safety with real worker processes (``worker_proc.py``) on SQLite and PostgreSQL.

* Outbox: a worker is SIGKILLed in the middle of a batch, others carry on; the receiver on
  127.0.0.1 (the witness) got every message at most once, and every message is either received
  and ``sent`` or held as an ``in_doubt`` dead letter (at most one: the message in the killed
  worker's hands). On PostgreSQL two workers share the rest.
* Jobs: two workers never run one schedule at once, even when a run outlasts the lease (the
  heartbeat renews it); a worker SIGKILLed mid-run loses its lease, its run is marked ``lost``
  and the other worker runs the job again only after the lease expired.
* SIGTERM stops a worker gracefully (exit code 0).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select, update

from growthwheel.config import Settings
from growthwheel.jobs import outbox, scheduler
from growthwheel.jobs.models import JobRun, JobSchedule, OutboxRow
from growthwheel.store.db import session_scope

PROC = Path(__file__).with_name("worker_proc.py")
LEASE = 2


@scheduler.job("tests.slow")
def _slow_placeholder(ctx: scheduler.JobContext) -> dict[str, object]:
    """Registered here too so that ``put_schedule`` accepts the kind (the processes run it)."""
    raise AssertionError("runs in the worker processes only")


class Receiver:
    """An HTTP server on 127.0.0.1 that logs every message key it receives, and from whom."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []
        lock = threading.Lock()
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(0.002)  # a provider takes a moment
                with lock:
                    got.append((body["key"], body["worker"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


class Procs:
    """Worker processes started by a test; whatever is left is killed at the end."""

    def __init__(self, cfg: Settings, receiver: Receiver) -> None:
        self.cfg, self.receiver = cfg, receiver
        self.running: list[subprocess.Popen[str]] = []

    def start(self) -> subprocess.Popen[str]:
        args = [sys.executable, str(PROC), "--data-dir", str(self.cfg.data_dir), "--receiver",
                self.receiver.url, "--lease", str(LEASE)]
        if self.cfg.database_url:
            args += ["--db-url", self.cfg.database_url]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str]) -> tuple[int, str]:
        """SIGTERM and wait: the exit code and what it printed."""
        proc.send_signal(signal.SIGTERM)
        output, errors = proc.communicate(timeout=60)
        assert proc.returncode == 0, errors[-2000:]
        return proc.returncode, output

    def kill_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def procs(store_cfg: Settings, receiver: Receiver) -> Iterator[Procs]:
    found = Procs(store_cfg, receiver)
    yield found
    found.kill_all()


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigkill_mid_batch_then_restart_sends_every_message_at_most_once(
    store_cfg: Settings, receiver: Receiver, procs: Procs,
) -> None:
    total = 1200
    now = datetime.now(UTC) - timedelta(seconds=1)
    with session_scope(store_cfg) as session:
        for n in range(total):
            outbox.enqueue(session, key=f"msg-{n:05d}", channel="email", recipient=f"c{n}@example.com",
                           payload={"n": n}, now=now)
    first = procs.start()
    _wait(lambda: len(receiver.got) >= 150, 90, "the first worker to send 150 messages")
    first.kill()  # SIGKILL, mid-batch
    first.wait()
    at_kill = len(receiver.got)
    assert at_kill < total
    survivors = [procs.start() for _ in range(2 if store_cfg.database_url else 1)]

    def drained() -> bool:
        with session_scope(store_cfg) as session:
            counts = outbox.counts(session)
        return counts["pending"] + counts["claimed"] + counts["sending"] == 0

    _wait(drained, 180, "the outbox to drain")
    for proc in survivors:
        _code, output = procs.stop(proc)
        assert "stopped" in output

    received = Counter(key for key, _worker in receiver.got)
    assert max(received.values()) == 1, [k for k, n in received.items() if n > 1]
    with session_scope(store_cfg) as session:
        rows = {r.key: r for r in session.scalars(select(OutboxRow))}
    sent = {k for k, r in rows.items() if r.status == "sent"}
    doubtful = {k for k, r in rows.items() if r.status == "dead"}
    assert {r.dead_reason for k, r in rows.items() if k in doubtful} <= {"in_doubt"}
    assert len(doubtful) <= 1  # only the message in the killed worker's hands
    assert sent | doubtful == set(rows)
    assert len(rows) == total
    assert sent <= set(received)  # everything recorded as sent really arrived
    assert set(received) - sent <= doubtful  # an in-doubt message may or may not have arrived
    by_worker = Counter(worker for _key, worker in receiver.got[at_kill:])
    if store_cfg.database_url:  # two workers shared what was left
        assert len(by_worker) >= 2, by_worker


def _log_lines(path: Path) -> list[tuple[str, int, float]]:
    if not path.exists():
        return []
    return [(kind, int(pid), float(at)) for kind, pid, at in
            (line.split() for line in path.read_text().splitlines() if line)]


def test_a_job_never_runs_twice_at_once_and_is_taken_over_after_a_sigkill(
    store_cfg: Settings, tmp_path: Path, procs: Procs,
) -> None:
    log = tmp_path / "slow.log"
    with session_scope(store_cfg) as session:
        spec = scheduler.ScheduleSpec("slow", "tests.slow", every_seconds=3600,
                                      params={"log": str(log), "seconds": 3 * LEASE / 2 + 0.5})
        scheduler.put_schedule(session, spec, now=datetime.now(UTC), timezone="UTC")
    a, b = procs.start(), procs.start()
    _wait(lambda: any(k == "end" for k, _p, _t in _log_lines(log)), 60, "the first run to end")
    time.sleep(LEASE + 0.5)  # the other worker had every chance to (wrongly) start it too
    lines = _log_lines(log)
    assert [k for k, _p, _t in lines] == ["start", "end"]  # one run, longer than the lease: no overlap

    with session_scope(store_cfg) as session:  # due again now
        session.execute(update(JobSchedule).where(JobSchedule.name == "slow")
                        .values(next_run_at=datetime.now(UTC) - timedelta(seconds=1)))
    _wait(lambda: len(_log_lines(log)) >= 3, 30, "the second run to start")
    _kind, victim_pid, started = _log_lines(log)[2]
    victim = a if a.pid == victim_pid else b
    survivor = b if victim is a else a
    victim.kill()
    victim.wait()
    _wait(lambda: len(_log_lines(log)) >= 5, 60, "the survivor to take the job over and finish it")
    lines = _log_lines(log)
    assert [(k, p) for k, p, _t in lines[2:]] == [("start", victim_pid), ("start", survivor.pid),
                                                  ("end", survivor.pid)]
    assert lines[3][2] - started >= LEASE * 0.9  # not before the dead worker's lease expired
    def statuses() -> list[tuple[str, str]]:
        with session_scope(store_cfg) as session:
            query = select(JobRun).where(JobRun.schedule == "slow").order_by(JobRun.started_at)
            return [(r.status, r.worker) for r in session.scalars(query).all()]

    # The survivor logs "end" just before it records the run: wait for the record, not the log.
    _wait(lambda: [s for s, _w in statuses()] == ["succeeded", "lost", "succeeded"], 30,
          "the runs to be recorded as succeeded, lost, succeeded")
    assert statuses()[1][1] == f"proc-{victim_pid}"
    procs.stop(survivor)
