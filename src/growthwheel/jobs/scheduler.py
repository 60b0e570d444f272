"""Scheduled jobs: claim under a lease, run, record, retry with backoff.

**Why our own table and not procrastinate.** procrastinate is a good PostgreSQL task queue, but it
is PostgreSQL only (LISTEN/NOTIFY, PL/pgSQL procedures) and Growthwheel's embedded default is
SQLite; it would also give us a second migration system beside Alembic and a second place where
job state lives. What we need is small — a few dozen schedules, not millions of tasks — and is
done by two SQL statements that work on both databases: a worker **claims** a due schedule with
one conditional UPDATE (``… SET lease_token = :t, lease_until = :now + lease WHERE name = :n AND
next_run_at <= :now AND (lease_until IS NULL OR lease_until < :now)``); exactly one worker's
UPDATE matches. On PostgreSQL the candidate is first read with ``FOR UPDATE SKIP LOCKED``, so
several workers looking at once take *different* due schedules instead of queueing on the same
row; on SQLite the claim runs inside ``BEGIN IMMEDIATE`` (SQLite has one writer at a time).

**A job never runs twice at once.** While a job runs, a heartbeat renews its lease every third of
the lease time. A worker that is killed stops renewing: its lease expires and another worker (or
the same one restarted) claims the schedule again, marking the dead worker's run ``lost``. A
paused worker whose lease expired cannot commit either: every transaction a job opens through
:meth:`JobContext.transaction` re-checks the lease token in the same transaction (a conditional
UPDATE of the schedule row, which on PostgreSQL also locks it) and rolls back when it no longer
holds it — so the work of two holders of one schedule can never both commit.

**Failures.** A job that raises is recorded as a ``failed`` run with its error; the schedule is
retried after ``backoff_seconds × 2^(failures-1)`` (capped) until ``max_attempts`` consecutive
failures, then waits for its next regular time. Jobs are written to be idempotent (expiring what
is due, issuing with an issue key, refunding with a fixed refund id), so a retry or a run taken
over after a crash does the remaining work only.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from growthwheel.accounts.models import new_id
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.jobs.models import JobRun, JobSchedule
from growthwheel.jobs.outbox import backoff_seconds, begin_immediate
from growthwheel.store.db import session_scope

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 120
Clock = Callable[[], datetime]


class LeaseLostError(GrowthwheelError):
    """The worker no longer holds the job's lease (it expired and another worker took it)."""

    code = "lease_lost"
    status = 409


# ---------------------------------------------------------------------------------------------
# What a job is
# ---------------------------------------------------------------------------------------------


@dataclass
class JobContext:
    """What a running job gets: settings, the time it runs as of, its parameters, and
    transactions fenced by its lease."""

    cfg: Settings
    now: datetime
    params: Mapping[str, Any]
    schedule: str
    lease_token: str
    clock: Clock
    lease_seconds: int = DEFAULT_LEASE_SECONDS

    def check_lease(self, session: Session) -> None:
        """Raise :class:`LeaseLostError` unless this worker still holds the lease (and extend it);
        in ``session``'s transaction, so a commit that follows is fenced."""
        held = session.execute(
            update(JobSchedule)
            .where(JobSchedule.name == self.schedule, JobSchedule.lease_token == self.lease_token)
            .values(lease_until=self.clock() + timedelta(seconds=self.lease_seconds))
            .execution_options(synchronize_session=False))
        if int(getattr(held, "rowcount", 0)) != 1:
            raise LeaseLostError(f"job {self.schedule!r}: the lease was lost; another worker has it")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work in the operational store, committed only while the lease is held."""
        with session_scope(self.cfg) as session:
            yield session
            self.check_lease(session)


JobFn = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    """A registered job: its name, function and one line of what it does."""

    name: str
    run: JobFn
    doc: str


REGISTRY: dict[str, JobKind] = {}


def job(name: str) -> Callable[[JobFn], JobFn]:
    """Register a job function under ``name`` (its docstring's first line describes it)."""

    def register(fn: JobFn) -> JobFn:
        REGISTRY[name] = JobKind(name=name, run=fn, doc=(fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# When
# ---------------------------------------------------------------------------------------------


def parse_daily_at(value: str) -> time:
    """``HH:MM`` → time, or ``InvalidArgumentError`` naming the field."""
    try:
        hour, minute = (int(part) for part in value.split(":"))
        return time(hour, minute)
    except ValueError:
        raise InvalidArgumentError(f"daily_at: {value!r} is not HH:MM") from None


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at ``at`` in ``zone`` as an aware instant (``fold=0``): a wall time repeated when
    clocks go back is its first occurrence; one skipped when clocks go forward is read with the
    offset before the change, i.e. it lands one hour later in the new offset (02:30 → 03:30)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_run(every_seconds: int | None, daily_at: str | None, after: datetime, timezone: str,
             *, due: datetime | None = None) -> datetime:
    """The next time strictly after ``after``: ``due + k × every_seconds`` (missed intervals are
    skipped, not caught up), or the next ``daily_at`` in the shop's time zone (DST-safe)."""
    if every_seconds is not None:
        start = due or after
        if start > after:
            return start
        steps = int((after - start).total_seconds() // every_seconds) + 1
        return start + timedelta(seconds=every_seconds * steps)
    if daily_at is None:
        raise InvalidArgumentError("a schedule needs every_seconds or daily_at")
    at = parse_daily_at(daily_at)
    zone = ZoneInfo(timezone)
    day = after.astimezone(zone).date()
    for offset in range(3):
        candidate = _local_instant(day + timedelta(days=offset), at, zone)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a day has a next time of day")


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule as code declares it (the defaults) or an operator adds it."""

    name: str
    kind: str
    every_seconds: int | None = None
    daily_at: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    max_attempts: int = 5
    backoff_seconds: int = 30


def put_schedule(session: Session, spec: ScheduleSpec, *, now: datetime, timezone: str,
                 replace: bool = False) -> JobSchedule:
    """Create the schedule (or, with ``replace``, change its timing and parameters); the first run
    is due at once for interval schedules and at the next time of day for daily ones."""
    if spec.kind not in REGISTRY:
        raise InvalidArgumentError(f"kind: no job {spec.kind!r}")
    if (spec.every_seconds is None) == (spec.daily_at is None):
        raise InvalidArgumentError("every_seconds / daily_at: give exactly one")
    if spec.every_seconds is not None and spec.every_seconds < 1:
        raise InvalidArgumentError("every_seconds: at least 1")
    if spec.daily_at is not None:
        parse_daily_at(spec.daily_at)
    row = session.get(JobSchedule, spec.name)
    first = now if spec.every_seconds is not None else next_run(None, spec.daily_at, now, timezone)
    if row is None:
        row = JobSchedule(name=spec.name, kind=spec.kind, params=dict(spec.params),
                          every_seconds=spec.every_seconds, daily_at=spec.daily_at, enabled=True,
                          next_run_at=first, max_attempts=spec.max_attempts,
                          backoff_seconds=spec.backoff_seconds, failures=0, created_at=now)
        session.add(row)
    elif replace:
        row.kind, row.params = spec.kind, dict(spec.params)
        row.every_seconds, row.daily_at = spec.every_seconds, spec.daily_at
        row.max_attempts, row.backoff_seconds = spec.max_attempts, spec.backoff_seconds
        row.next_run_at, row.enabled = first, True
    session.flush()
    return row


def ensure_schedules(session: Session, specs: list[ScheduleSpec], *, now: datetime, timezone: str) -> int:
    """Add the schedules that do not exist yet (existing ones, perhaps changed by an operator, are
    kept); returns how many were added."""
    existing = set(session.scalars(select(JobSchedule.name)))
    added = 0
    for spec in specs:
        if spec.name not in existing:
            put_schedule(session, spec, now=now, timezone=timezone)
            added += 1
    return added


# ---------------------------------------------------------------------------------------------
# Claim, run, record
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """A claimed schedule."""

    schedule: str
    kind: str
    params: Mapping[str, Any]
    token: str
    run_id: str
    attempt: int
    due_at: datetime


def claim_due(session: Session, *, worker: str, now: datetime,
              lease_seconds: int = DEFAULT_LEASE_SECONDS) -> Lease | None:
    """Claim the most overdue schedule nobody holds (``None`` when nothing is due), in the caller's
    transaction: commit before running it. A run left ``running`` by an earlier holder whose lease
    expired is marked ``lost``."""
    begin_immediate(session)
    free = (JobSchedule.lease_until.is_(None)) | (JobSchedule.lease_until < now)
    query = (select(JobSchedule).where(JobSchedule.enabled.is_(True), JobSchedule.next_run_at <= now, free)
             .order_by(JobSchedule.next_run_at, JobSchedule.name).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.scalars(query).first()
    if row is None:
        return None
    token = new_id()
    won = session.execute(
        update(JobSchedule).where(JobSchedule.name == row.name, JobSchedule.enabled.is_(True),
                                  JobSchedule.next_run_at <= now, free)
        .values(lease_owner=worker, lease_token=token, lease_until=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False))
    if int(getattr(won, "rowcount", 0)) != 1:
        return None
    session.execute(
        update(JobRun).where(JobRun.schedule == row.name, JobRun.status == "running")
        .values(status="lost", finished_at=now,
                error="the worker running it stopped (its lease expired); the job was claimed again")
        .execution_options(synchronize_session=False))
    run = JobRun(id=new_id(), schedule=row.name, kind=row.kind, lease_token=token, worker=worker,
                 attempt=row.failures + 1, due_at=row.next_run_at, started_at=now, status="running",
                 will_retry=False)
    session.add(run)
    session.flush()
    return Lease(schedule=row.name, kind=row.kind, params=dict(row.params or {}), token=token, run_id=run.id,
                 attempt=run.attempt, due_at=row.next_run_at)


class _Heartbeat:
    """Renews a lease every third of its length until stopped."""

    def __init__(self, cfg: Settings, lease: Lease, clock: Clock, lease_seconds: int) -> None:
        self._cfg, self._lease, self._clock, self._seconds = cfg, lease, clock, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease:{lease.schedule}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(max(self._seconds / 3, 0.05)):
            try:
                with session_scope(self._cfg) as session:
                    session.execute(
                        update(JobSchedule)
                        .where(JobSchedule.name == self._lease.schedule,
                               JobSchedule.lease_token == self._lease.token)
                        .values(lease_until=self._clock() + timedelta(seconds=self._seconds))
                        .execution_options(synchronize_session=False))
            except Exception as exc:  # the next beat tries again; the fence protects the commit
                log.warning("lease renewal of %s failed: %r", self._lease.schedule, exc)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended."""

    schedule: str
    kind: str
    status: str
    result: dict[str, Any] | None
    error: str | None
    will_retry: bool


def _record(cfg: Settings, lease: Lease, *, now: datetime, timezone: str, result: dict[str, Any] | None,
            error: str | None) -> RunOutcome:
    """Write the run's end and move the schedule on (only if the lease is still ours)."""
    with session_scope(cfg) as session:
        begin_immediate(session)
        row = session.get(JobSchedule, lease.schedule)
        run = session.get(JobRun, lease.run_id)
        if row is None or row.lease_token != lease.token:
            if run is not None and run.status == "running":
                run.status, run.finished_at = "lost", now
                run.error = "the lease was lost before the run ended" + (f": {error}" if error else "")
            return RunOutcome(lease.schedule, lease.kind, "lost", result, error, False)
        # Intervals count from the schedule's creation, so retries do not shift the regular times.
        regular = next_run(row.every_seconds, row.daily_at, now, timezone, due=row.created_at)
        will_retry = False
        if error is None:
            row.failures, row.next_run_at, row.last_status, row.last_error = 0, regular, "succeeded", None
        else:
            failures = row.failures + 1
            if failures < row.max_attempts:
                will_retry = True
                row.failures = failures
                retry_at = now + timedelta(seconds=backoff_seconds(failures, row.backoff_seconds, row.name))
                row.next_run_at = min(retry_at, regular)
            else:
                row.failures, row.next_run_at = 0, regular
            row.last_status, row.last_error = "failed", error[:4000]
        row.lease_owner = row.lease_token = None
        row.lease_until = None
        row.last_run_at = now
        if run is not None:
            run.status = "succeeded" if error is None else "failed"
            run.finished_at, run.result, run.error, run.will_retry = now, result, error, will_retry
        return RunOutcome(lease.schedule, lease.kind, "succeeded" if error is None else "failed", result,
                          error, will_retry)


def run_claimed(cfg: Settings, lease: Lease, *, clock: Clock, timezone: str,
                lease_seconds: int = DEFAULT_LEASE_SECONDS) -> RunOutcome:
    """Run a claimed schedule's job under a heartbeat and record how it ended."""
    kind = REGISTRY.get(lease.kind)
    result: dict[str, Any] | None = None
    error: str | None = None
    ctx = JobContext(cfg=cfg, now=clock(), params=lease.params, schedule=lease.schedule,
                     lease_token=lease.token, clock=clock, lease_seconds=lease_seconds)
    with _Heartbeat(cfg, lease, clock, lease_seconds):
        if kind is None:
            error = f"no job {lease.kind!r} is registered in this worker"
        else:
            try:
                result = kind.run(ctx)
            except GrowthwheelError as exc:
                error = f"{exc.code}: {exc.message}"
            except Exception as exc:
                log.exception("job %s failed", lease.schedule)
                error = "".join(traceback.format_exception_only(exc)).strip()
    return _record(cfg, lease, now=clock(), timezone=timezone, result=result, error=error)


def run_due(cfg: Settings, *, worker: str, clock: Clock, timezone: str,
            lease_seconds: int = DEFAULT_LEASE_SECONDS, should_stop: Callable[[], bool] = lambda: False,
            limit: int | None = None) -> list[RunOutcome]:
    """Run every due schedule this worker can claim, one at a time, until none is left (or
    ``should_stop`` says so, or ``limit`` runs were made)."""
    outcomes: list[RunOutcome] = []
    while not should_stop() and (limit is None or len(outcomes) < limit):
        with session_scope(cfg) as session:
            lease = claim_due(session, worker=worker, now=clock(), lease_seconds=lease_seconds)
        if lease is None:
            break
        outcomes.append(run_claimed(cfg, lease, clock=clock, timezone=timezone, lease_seconds=lease_seconds))
    return outcomes
