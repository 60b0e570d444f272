"""Tables of the segments domain in the operational store: saved segments (and tag rules).

A saved segment is a name and a definition (JSON, ``segments.definition``). A segment with a
``tag`` is a **tag rule**: refreshing it also puts that tag on its members and takes it off the
customers who left. Membership itself lives in the warehouse (``segments.repository``); the
columns ``refreshed_at``, ``members`` and ``as_of`` here only repeat what the last refresh found,
for listing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base


class Segment(Base):
    """A saved segment (or tag rule)."""

    __tablename__ = "segments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    tag: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    """Set for a tag rule: the tag its members carry."""
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    members: Mapped[int | None] = mapped_column(Integer, default=None)
    as_of: Mapped[date | None] = mapped_column(Date, default=None)
