"""Tables of the service queue in the operational store (migration ``0016_voice``).

``review_cases``  one row per negative review that needs an answer: **unique ``review_id``**, so
                  syncing the same review twice, or two workers at once, opens one case. A case
                  is due ``SLA_HOURS`` after the review was written. Its status moves ``open`` →
                  ``claimed`` (an owner) → ``replied`` (or ``closed`` without a reply) by
                  conditional updates, so two operators never hold the same case.
``voice_state``   small key → value bookkeeping (the last review synced from the warehouse).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

CASE_STATUSES = ("open", "claimed", "replied", "closed")
SLA_HOURS = 48


class ReviewCase(Base):
    """A negative review waiting for (or given) the shop's answer."""

    __tablename__ = "review_cases"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'claimed', 'replied', 'closed')", name="status"),
        Index("ix_review_cases_status_due", "status", "due_at"),
        Index("ix_review_cases_sku", "sku", "review_created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    review_id: Mapped[str] = mapped_column(String(200), unique=True)
    sku: Mapped[str] = mapped_column(String(200))
    rating: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    body: Mapped[str] = mapped_column(Text, default="")
    customer_id: Mapped[str | None] = mapped_column(String(200), default=None)
    order_id: Mapped[str | None] = mapped_column(String(200), default=None)
    sentiment: Mapped[float] = mapped_column(Float)
    aspects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    review_created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    owner: Mapped[str | None] = mapped_column(String(320), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reply: Mapped[str | None] = mapped_column(Text, default=None)
    template: Mapped[str | None] = mapped_column(String(40), default=None)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VoiceState(Base):
    """Bookkeeping of the voice domain (key → value)."""

    __tablename__ = "voice_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(400))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
