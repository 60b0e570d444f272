"""Tables of the worker in the operational store: schedules, runs and the outbox.

``job_schedules``
    One row per thing that runs on a schedule (``name`` such as ``loyalty.expire_points`` or
    ``segments.refresh:<segment id>``): the job ``kind`` it runs with ``params``, when
    (``every_seconds``, or daily at ``daily_at`` in the shop's time zone), ``next_run_at``, and the
    **lease** (``lease_owner``, ``lease_token``, ``lease_until``) a worker takes with one conditional
    UPDATE before running it. ``failures`` counts consecutive failed attempts (for the backoff).
``job_runs``
    One row per attempt: who ran it, when, how it ended (``running`` → ``succeeded`` / ``failed``, or
    ``lost`` when its worker died and the lease expired), the job's result or error.
``outbox``
    Every outgoing effect (a message, a webhook) decided by the domain, written in the decider's
    own transaction under a unique ``key`` (journey, step, customer, occurrence); the worker
    delivers it (``pending`` → ``claimed`` under a lease → ``sending`` while its channel has it →
    ``sent``; ``skipped`` when the channel
    decided not to send, e.g. no consent; back to ``pending`` with a backoff or a deferral; ``dead``
    after the last attempt, a permanent refusal or an in-doubt send; dead letters can be replayed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

RUN_STATUSES = ("running", "succeeded", "failed", "lost")
OUTBOX_STATUSES = ("pending", "claimed", "sending", "sent", "skipped", "dead")


class JobSchedule(Base):
    """A job on a schedule, with its lease and its failure count."""

    __tablename__ = "job_schedules"
    __table_args__ = (
        CheckConstraint("every_seconds IS NULL OR every_seconds > 0", name="every"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        Index("ix_job_schedules_due", "enabled", "next_run_at"),
    )

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    every_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    daily_at: Mapped[str | None] = mapped_column(String(5), default=None)
    """``HH:MM`` in the shop's time zone (instead of ``every_seconds``)."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    backoff_seconds: Mapped[int] = mapped_column(Integer, default=30)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_token: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRun(Base):
    """One attempt at a scheduled job."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed', 'lost')", name="status"),
        Index("ix_job_runs_schedule_started", "schedule", "started_at"),
        Index("ix_job_runs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    schedule: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    lease_token: Mapped[str] = mapped_column(String(32), index=True)
    worker: Mapped[str] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """The ``now`` the job ran as of (the schedule's due time, or the worker's clock)."""
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    status: Mapped[str] = mapped_column(String(16), default="running")
    will_retry: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class OutboxRow(Base):
    """An outgoing effect waiting for (or done with) delivery."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'claimed', 'sending', 'sent', 'skipped', 'dead')",
                        name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    journey_id: Mapped[str | None] = mapped_column(String(64), default=None)
    step_id: Mapped[str | None] = mapped_column(String(64), default=None)
    occurrence: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    provider_id: Mapped[str | None] = mapped_column(String(200), default=None)
    dead_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    replays: Mapped[int] = mapped_column(Integer, default=0)
