"""Schedules on SQLite and PostgreSQL: leases keep a job from running twice at once, a lease that
expires is taken over (the dead worker's run marked lost), a job that lost its lease cannot
commit, failures retry with backoff, and daily times follow the shop's time zone across DST."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from growthwheel.config import Settings
from growthwheel.jobs import scheduler
from growthwheel.jobs.models import JobRun, JobSchedule
from growthwheel.jobs.scheduler import JobContext, LeaseLostError, ScheduleSpec
from growthwheel.store.db import session_scope

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CALLS: list[str] = []


@scheduler.job("tests.count")
def _count(ctx: JobContext) -> dict[str, Any]:
    """Count calls; fail while params say so."""
    CALLS.append(ctx.schedule)
    if ctx.params.get("fail"):
        raise RuntimeError("boom")
    return {"calls": len(CALLS)}


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    CALLS.clear()
    yield
    CALLS.clear()


def _put(cfg: Settings, spec: ScheduleSpec, now: datetime = T0) -> None:
    with session_scope(cfg) as session:
        scheduler.put_schedule(session, spec, now=now, timezone="Asia/Shanghai")


def _runs(cfg: Settings, name: str) -> list[JobRun]:
    with session_scope(cfg) as session:
        query = select(JobRun).where(JobRun.schedule == name).order_by(JobRun.started_at)
        return list(session.scalars(query))


def test_daily_times_follow_the_shop_zone_across_dst() -> None:
    ny = "America/New_York"
    # 2026-03-08: clocks go from 02:00 to 03:00; 02:30 does not exist that day.
    before = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST
    at = scheduler.next_run(None, "02:30", before, ny)
    assert at.astimezone(ZoneInfo(ny)).strftime("%H:%M %Z") == "03:30 EDT"
    # The day after, 09:00 local is 13:00 UTC (EDT), the day before it was 14:00 UTC (EST).
    assert scheduler.next_run(None, "09:00", datetime(2026, 3, 7, 15, 0, tzinfo=UTC), ny) == \
        datetime(2026, 3, 8, 13, 0, tzinfo=UTC)
    assert scheduler.next_run(None, "09:00", datetime(2026, 3, 6, 15, 0, tzinfo=UTC), ny) == \
        datetime(2026, 3, 7, 14, 0, tzinfo=UTC)
    # 2026-11-01: 01:30 happens twice; the job runs at the first one only.
    first = scheduler.next_run(None, "01:30", datetime(2026, 11, 1, 4, 0, tzinfo=UTC), ny)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert scheduler.next_run(None, "01:30", first, ny) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    # Intervals skip what was missed instead of catching up.
    after = T0 + timedelta(seconds=150)
    assert scheduler.next_run(60, None, after, "UTC", due=T0) == T0 + timedelta(seconds=180)


def test_a_claimed_job_is_not_claimed_again_until_its_lease_expires(store_cfg: Settings) -> None:
    _put(store_cfg, ScheduleSpec("count", "tests.count", every_seconds=3600))
    with session_scope(store_cfg) as session:
        first = scheduler.claim_due(session, worker="a", now=T0, lease_seconds=60)
    assert first is not None
    with session_scope(store_cfg) as session:  # the lease is held: nobody else gets it
        early = T0 + timedelta(seconds=59)
        assert scheduler.claim_due(session, worker="b", now=early, lease_seconds=60) is None
    # Worker "a" dies without a word; after the lease, "b" takes the job over.
    with session_scope(store_cfg) as session:
        second = scheduler.claim_due(session, worker="b", now=T0 + timedelta(seconds=61), lease_seconds=60)
    assert second is not None
    assert second.token != first.token
    runs = _runs(store_cfg, "count")
    assert [r.status for r in runs] == ["lost", "running"]
    assert runs[1].worker == "b"
    # "a" comes back and tries to record its run: its lease is gone, nothing moves.
    outcome = scheduler._record(store_cfg, first, now=T0 + timedelta(seconds=62), timezone="UTC",
                                result={"late": True}, error=None)
    assert outcome.status == "lost"
    outcome = scheduler.run_claimed(store_cfg, second, clock=lambda: T0 + timedelta(seconds=63),
                                    timezone="UTC")
    assert outcome.status == "succeeded"
    assert CALLS == ["count"]
    with session_scope(store_cfg) as session:
        row = session.get(JobSchedule, "count")
        assert row is not None
        assert row.lease_token is None
        assert row.next_run_at == T0 + timedelta(hours=1)


def test_a_job_that_lost_its_lease_cannot_commit(store_cfg: Settings) -> None:
    _put(store_cfg, ScheduleSpec("count", "tests.count", every_seconds=3600))
    with session_scope(store_cfg) as session:
        lease = scheduler.claim_due(session, worker="a", now=T0, lease_seconds=60)
    assert lease is not None
    ctx = JobContext(cfg=store_cfg, now=T0, params={}, schedule="count", lease_token=lease.token,
                     clock=lambda: T0, lease_seconds=60)
    with session_scope(store_cfg) as session:  # "b" takes over after the lease ran out
        assert scheduler.claim_due(session, worker="b", now=T0 + timedelta(minutes=5), lease_seconds=60)
    def work() -> None:
        with ctx.transaction() as session:
            row = session.get(JobSchedule, "count")
            assert row is not None
            row.max_attempts = 99  # some work of the job

    with pytest.raises(LeaseLostError):
        work()
    with session_scope(store_cfg) as session:
        row = session.get(JobSchedule, "count")
        assert row is not None
        assert row.max_attempts == 5


def test_failures_retry_with_backoff_then_wait_for_the_next_regular_time(store_cfg: Settings) -> None:
    _put(store_cfg, ScheduleSpec("flaky", "tests.count", every_seconds=86_400, params={"fail": True},
                                 max_attempts=3, backoff_seconds=10))
    now = T0
    waits = []
    for attempt in (1, 2, 3):
        outcomes = scheduler.run_due(store_cfg, worker="w", clock=lambda at=now: at, timezone="UTC")
        assert [(o.status, o.will_retry) for o in outcomes] == [("failed", attempt < 3)]
        assert "boom" in (outcomes[0].error or "")
        with session_scope(store_cfg) as session:
            row = session.get(JobSchedule, "flaky")
            assert row is not None
            waits.append((row.next_run_at - now).total_seconds())
            now = row.next_run_at
    assert 9 <= waits[0] <= 11
    assert 18 <= waits[1] <= 22
    assert now == T0 + timedelta(days=1)  # after the last attempt: the next regular run
    runs = _runs(store_cfg, "flaky")
    assert [(r.status, r.attempt, r.will_retry) for r in runs] == [
        ("failed", 1, True), ("failed", 2, True), ("failed", 3, False)]
    assert all(r.error and "boom" in r.error for r in runs)


def test_unknown_kind_and_bad_times_are_refused_naming_the_field(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        for spec, field in ((ScheduleSpec("x", "nope", every_seconds=5), "kind"),
                            (ScheduleSpec("x", "tests.count", daily_at="25:00"), "daily_at"),
                            (ScheduleSpec("x", "tests.count"), "every_seconds / daily_at"),
                            (ScheduleSpec("x", "tests.count", every_seconds=0), "every_seconds")):
            with pytest.raises(Exception, match=field):
                scheduler.put_schedule(session, spec, now=T0, timezone="UTC")
