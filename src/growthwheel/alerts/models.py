"""Tables of the alerts in the operational store (migration ``alerts``).

``alert_rules``  one row per rule: the KPI (a metric of ``insight.kpis.METRICS``), an optional
                 dimension (``channel`` / ``category``), the kind (``threshold``, ``change`` or
                 ``anomaly``) and its parameters, where it notifies (a list of ``{channel,
                 recipient}``) and its cool-down. Built-in rules carry a ``builtin`` key.
``alerts``       one row per finding: **unique ``dedup_key``** (rule × dimension value × period),
                 so evaluating the same day twice, or two workers at once, records one alert. Its
                 status moves ``open`` → ``acknowledged`` → ``resolved`` by conditional updates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

RULE_KINDS = ("threshold", "change", "anomaly")
ALERT_STATUSES = ("open", "acknowledged", "resolved")


class AlertRule(Base):
    """A rule on one KPI (optionally by dimension)."""

    __tablename__ = "alert_rules"
    __table_args__ = (CheckConstraint("kind IN ('threshold', 'change', 'anomaly')", name="kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    builtin: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    metric: Mapped[str] = mapped_column(String(40))
    dimension: Mapped[str | None] = mapped_column(String(16), default=None)
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(8), default="day")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notify: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    cooldown_hours: Mapped[int] = mapped_column(Integer, default=24)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    """One finding of a rule, in the inbox."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="status"),
        Index("ix_alerts_status_created", "status", "created_at"),
        Index("ix_alerts_rule_value", "rule_id", "dimension_value", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(String(400), unique=True)
    metric: Mapped[str] = mapped_column(String(40))
    dimension: Mapped[str | None] = mapped_column(String(16), default=None)
    dimension_value: Mapped[str] = mapped_column(String(200), default="")
    period: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)
    reference: Mapped[float | None] = mapped_column(Float, default=None)
    lower: Mapped[float | None] = mapped_column(Float, default=None)
    upper: Mapped[float | None] = mapped_column(Float, default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(320), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(320), default=None)
    note: Mapped[str | None] = mapped_column(String(2000), default=None)
