"""Tables of the journeys in the operational store (migration 0009).

``journeys``             one row per journey: name, status (``draft`` → ``active`` ⇄ ``paused`` →
                         ``ended``), the current definition and its version, and
                         ``evaluated_until``: the instant up to which its trigger was evaluated
                         (the next tick looks at what happened after it).
``journey_versions``     every definition a journey ever had (an enrolment keeps the version it
                         entered with, so editing a journey never rewires people mid-way).
``journey_enrolments``   one row per (journey, customer, occurrence) — **unique in the database**,
                         so two ticks that find the same trigger occurrence enrol once. ``held_out``
                         enrolments get nothing and are the control group. ``step_id`` and
                         ``due_at`` say where an active enrolment stands and when it moves next;
                         ``seq`` counts its moves: an advance is one conditional ``UPDATE … WHERE
                         seq = :seen``, so two workers never advance one enrolment twice.
                         ``converted_at`` / ``conversion_order_id`` / ``conversion_amount`` record
                         the goal.
``journey_step_log``     one row per (enrolment, step) visited, unique: what the step did (sent,
                         issued a code, branched, …) — the per-step counts of the report.
``customer_traits``      tags and attributes set on customers by journey steps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

JOURNEY_STATUSES = ("draft", "active", "paused", "ended")
ENROLMENT_STATUSES = ("active", "held_out", "completed", "exited", "converted", "failed")
ID = 64


class Journey(Base):
    """A journey and its current definition."""

    __tablename__ = "journeys"
    __table_args__ = (CheckConstraint("status IN ('draft', 'active', 'paused', 'ended')", name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    evaluated_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JourneyVersion(Base):
    """One version of a journey's definition."""

    __tablename__ = "journey_versions"

    journey_id: Mapped[str] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Enrolment(Base):
    """A customer's way through a journey, for one occurrence of its trigger."""

    __tablename__ = "journey_enrolments"
    __table_args__ = (
        UniqueConstraint("journey_id", "customer_id", "occurrence", name="uq_journey_enrolments_occurrence"),
        CheckConstraint(
            "status IN ('active', 'held_out', 'completed', 'exited', 'converted', 'failed')", name="status"),
        Index("ix_journey_enrolments_due", "status", "due_at"),
        Index("ix_journey_enrolments_customer", "journey_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    journey_id: Mapped[str] = mapped_column(ForeignKey("journeys.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[str] = mapped_column(String(ID))
    occurrence: Mapped[str] = mapped_column(String(200))
    held_out: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    step_id: Mapped[str | None] = mapped_column(String(40), default=None)
    waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    """True while ``step_id`` is a wait step that has started (``due_at`` is its end)."""
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What earlier steps produced (coupon codes by step) for later templates."""
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    triggered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    goal_until: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    conversion_order_id: Mapped[str | None] = mapped_column(String(ID), default=None)
    conversion_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_error: Mapped[str | None] = mapped_column(String(2000), default=None)


class StepLog(Base):
    """What one step did for one enrolment."""

    __tablename__ = "journey_step_log"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "step_id", name="uq_journey_step_log_step"),
        Index("ix_journey_step_log_journey", "journey_id", "step_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    enrolment_id: Mapped[str] = mapped_column(ForeignKey("journey_enrolments.id", ondelete="CASCADE"))
    journey_id: Mapped[str] = mapped_column(String(32))
    step_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[str] = mapped_column(String(ID))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class CustomerTrait(Base):
    """A tag (``kind='tag'``, ``value`` null) or attribute set on a customer by a journey."""

    __tablename__ = "customer_traits"
    __table_args__ = (CheckConstraint("kind IN ('tag', 'attribute')", name="kind"),)

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(500), default=None)
    source: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
