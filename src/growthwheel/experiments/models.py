"""The experiments table of the operational store.

An experiment (or hold-out) is its set-up: variants with weights (control first), traffic share,
optional layer (a range of the layer's buckets), targeting by a saved segment, the unit it
randomises, the metrics and the analysis. Exposures and outcomes are facts in the warehouse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

STATUSES = ("draft", "running", "stopped")
KINDS = ("experiment", "holdout")
UNITS = ("customer", "anonymous")
METHODS = ("fixed", "sequential")


class Experiment(Base):
    """An A/B test or a hold-out: status moves draft → running → stopped."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'running', 'stopped')", name="status"),
        CheckConstraint("kind IN ('experiment', 'holdout')", name="kind"),
        CheckConstraint("unit IN ('customer', 'anonymous')", name="unit"),
        CheckConstraint("method IN ('fixed', 'sequential')", name="method"),
        CheckConstraint("traffic >= 0 AND traffic <= 1", name="traffic"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    """URL-safe slug the shop's code asks for (``GET /api/v1/experiments/{key}/assignment``)."""
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str | None] = mapped_column(String(4000), default=None)
    kind: Mapped[str] = mapped_column(String(16), default="experiment")
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    unit: Mapped[str] = mapped_column(String(16), default="customer")
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """``[{"name": ..., "weight": ...}, ...]``, control first, weights summing to 1."""
    traffic: Mapped[float] = mapped_column(Float, default=1.0)
    layer: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    bucket_start: Mapped[int | None] = mapped_column(Integer, default=None)
    """First layer bucket owned while running (layered experiments only)."""
    bucket_end: Mapped[int | None] = mapped_column(Integer, default=None)
    segment_id: Mapped[str | None] = mapped_column(String(32), default=None)
    """Target segment: only its members (as of its last refresh) take part."""
    salt: Mapped[str] = mapped_column(String(64))
    primary_metric: Mapped[dict[str, Any]] = mapped_column(JSON)
    secondary_metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    guardrail_metrics: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    method: Mapped[str] = mapped_column(String(16), default="fixed")
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    planned_units: Mapped[int | None] = mapped_column(Integer, default=None)
    """Units the fixed-horizon test was planned for (results before that are a peek)."""
    cuped_days: Mapped[int] = mapped_column(Integer, default=14)
    """Pre-exposure days used as the CUPED covariate (0 = no CUPED)."""
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
