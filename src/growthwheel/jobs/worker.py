"""The worker loop behind ``growthwheel worker``: scheduled jobs, then the outbox, again and again.

One pass (:meth:`Worker.run_once`): add any missing default schedule, run every due schedule this
worker can claim (one at a time, each under a lease), then deliver due outbox messages in batches
until none is due. :meth:`Worker.run_forever` repeats passes, sleeping ``poll_seconds`` when idle,
until :meth:`Worker.stop` is called (``growthwheel worker`` calls it on SIGTERM / SIGINT): the job
that is running finishes and is recorded, the outbox batch in hand is handed back (messages not
yet given to a channel return to ``pending`` without counting an attempt), then the loop exits.
Several workers may run at once, on one machine or many (PostgreSQL), and share the work.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from growthwheel.config import Settings
from growthwheel.jobs import outbox, scheduler
from growthwheel.jobs import tasks as _tasks  # registers the jobs
from growthwheel.store.db import migrate, session_scope

log = logging.getLogger(__name__)


def worker_name() -> str:
    """``host:pid``: who holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}"


def system_clock() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


@dataclass
class PassSummary:
    """What one pass did."""

    runs: list[scheduler.RunOutcome] = field(default_factory=list)
    delivery: outbox.DeliveryStats = field(default_factory=outbox.DeliveryStats)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"runs": [{"schedule": r.schedule, "kind": r.kind, "status": r.status, "result": r.result,
                          "error": r.error, "will_retry": r.will_retry} for r in self.runs],
                "outbox": self.delivery.as_dict()}


class Worker:
    """Runs due jobs and delivers the outbox for one data directory / store."""

    def __init__(self, cfg: Settings, *, name: str | None = None, clock: scheduler.Clock = system_clock,
                 channels: Mapping[str, outbox.Channel] | None = None, poll_seconds: float = 1.0,
                 lease_seconds: int = scheduler.DEFAULT_LEASE_SECONDS,
                 outbox_lease_seconds: int = outbox.DEFAULT_LEASE_SECONDS,
                 outbox_batch: int = outbox.DEFAULT_BATCH,
                 defaults: list[scheduler.ScheduleSpec] | None = None) -> None:
        self.cfg = cfg
        self.name = name or worker_name()
        self.clock = clock
        self.channels = dict(channels) if channels is not None else outbox.configured_channels(cfg)
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.outbox_lease_seconds = outbox_lease_seconds
        self.outbox_batch = outbox_batch
        self.defaults = _tasks.DEFAULT_SCHEDULES if defaults is None else defaults
        self._stop = threading.Event()
        self._prepared = False

    def stop(self) -> None:
        """Ask the loop to finish the job in hand and exit (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def prepare(self) -> None:
        """Migrate the store and add the missing default schedules (once per worker)."""
        if self._prepared:
            return
        migrate(self.cfg)
        with session_scope(self.cfg) as session:
            outbox.begin_immediate(session)
            scheduler.ensure_schedules(session, self.defaults, now=self.clock(),
                                       timezone=self.cfg.shop().timezone)
        self._prepared = True

    def run_once(self) -> PassSummary:
        """One pass: due jobs, then the outbox until nothing is due."""
        self.prepare()
        summary = PassSummary()
        summary.runs = scheduler.run_due(self.cfg, worker=self.name, clock=self.clock,
                                         timezone=self.cfg.shop().timezone, lease_seconds=self.lease_seconds,
                                         should_stop=lambda: self.stopping)
        total = summary.delivery
        while not self.stopping:
            batch = outbox.deliver_due(self.cfg, self.channels, worker=self.name, clock=self.clock,
                                       limit=self.outbox_batch, lease_seconds=self.outbox_lease_seconds,
                                       should_stop=lambda: self.stopping)
            for name in ("claimed", "sent", "skipped", "deferred", "retried", "dead"):
                setattr(total, name, getattr(total, name) + getattr(batch, name))
            total.errors.extend(batch.errors[:20])
            if batch.claimed < self.outbox_batch:
                break
        return summary

    def run_forever(self, *, parent: int | None = None) -> None:
        """Passes until stopped; sleeps ``poll_seconds`` after a pass that found nothing to do.
        An unexpected error in a pass (the database went away) is logged and the pass retried.
        With ``parent`` (a process id) the loop also stops once that process is gone."""
        while not self.stopping:
            if parent is not None and os.getppid() != parent:
                break
            try:
                summary = self.run_once()
            except Exception:
                log.exception("worker pass failed; retrying in %.0f s", max(self.poll_seconds, 5.0))
                self._stop.wait(max(self.poll_seconds, 5.0))
                continue
            if not summary.runs and summary.delivery.claimed == 0:
                self._stop.wait(self.poll_seconds)


def spawn(cfg: Settings) -> subprocess.Popen[bytes]:
    """Start ``growthwheel worker`` for this data directory in a background process that stops when
    this process does (``growthwheel demo`` runs it beside the server)."""
    code = "from growthwheel.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "--data-dir", str(cfg.data_dir), "worker", "--exit-with-parent",
         str(os.getpid())],
        stdout=subprocess.DEVNULL, env={**os.environ, "GROWTHWHEEL_DATA_DIR": str(cfg.data_dir)})


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM the worker and wait for it to finish its job in hand (SIGKILL after ``timeout``)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)
