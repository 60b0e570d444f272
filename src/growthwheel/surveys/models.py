"""Tables of the surveys domain in the operational store (migration ``surveys``).

``surveys``         one row per survey: a name, the NPS question in zh and en, an optional
                    channel / campaign / journey tag, whether it still takes answers.
``survey_answers``  one row per answer: the score 0–10, an optional comment, who answered
                    (``customer_id``), through what (``source`` ``api`` or ``link``, the message
                    ``channel``) and when. **Unique (survey, customer, response key)**: the same
                    answer sent twice (a retried request, a second click) is recorded once.
                    ``sentiment`` / ``aspects`` hold the comment's scores when a scorer ran.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

_SERIAL = BigInteger().with_variant(Integer(), "sqlite")
SOURCES = ("api", "link")


class Survey(Base):
    """An NPS survey (one 0–10 question and an optional comment)."""

    __tablename__ = "surveys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    question_zh: Mapped[str] = mapped_column(String(500))
    question_en: Mapped[str] = mapped_column(String(500))
    channel: Mapped[str | None] = mapped_column(String(40), default=None)
    campaign: Mapped[str | None] = mapped_column(String(200), default=None)
    journey: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SurveyAnswer(Base):
    """One customer's answer to a survey."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 10", name="score"),
        CheckConstraint("source IN ('api', 'link')", name="source"),
        UniqueConstraint("survey_id", "customer_id", "response_key"),
        Index("ix_survey_answers_survey_answered", "survey_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(String(200))
    response_key: Mapped[str] = mapped_column(String(200), default="")
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(2000), default=None)
    source: Mapped[str] = mapped_column(String(8), default="api")
    channel: Mapped[str | None] = mapped_column(String(40), default=None)
    message_key: Mapped[str | None] = mapped_column(String(400), default=None)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sentiment: Mapped[float | None] = mapped_column(Float, default=None)
    aspects: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
