"""The fact outbox (``fact_outbox``): facts written in the same transaction as the act that made
them (an order, a refund, a points move, a coupon issued or redeemed, a message's status), drained
into the warehouse through the ingest path by :func:`growthwheel.facts.service.drain`.

A row is one fact: ``kind`` ``order`` (``payload`` = the order's lines in the generic
``order_lines`` import columns, the whole order as it stands after the act) or ``event``
(``payload`` = one row of the generic ``events`` columns). ``key`` is the order id or the event id:
importing is keyed on it, so draining a row twice changes nothing. ``done_at`` is set once the
warehouse has committed it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, utcnow
from growthwheel.store.db import Base

_SERIAL = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

FACT_KINDS = ("order", "event")


class FactRow(Base):
    """One fact waiting for (or already in) the warehouse."""

    __tablename__ = "fact_outbox"
    __table_args__ = (
        Index("ix_fact_outbox_pending", "id", sqlite_where=text("done_at IS NULL"),
              postgresql_where=text("done_at IS NULL")),
        Index("ix_fact_outbox_key", "key"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(300))
    payload: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class FactCursor(Base):
    """How far a sweep of another domain's rows (messages queued, sent, clicked) has recorded facts."""

    __tablename__ = "fact_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
