"""Tables of the inventory domain in the operational store.

* ``inventory_plans``: one row per refresh of the inventory plan (the worker's daily
  ``inventory.refresh`` job, or ``growthwheel inventory refresh``): when, the day it is as of, how
  many SKUs, how many to reorder now, how many at risk, and the whole plan as JSON, which the
  console page shows without recomputing it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, utcnow
from growthwheel.store.db import Base

_SERIAL = BigInteger().with_variant(Integer(), "sqlite")


class InventoryPlan(Base):
    """One computed inventory plan."""

    __tablename__ = "inventory_plans"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    as_of: Mapped[str] = mapped_column(String(10))
    skus: Mapped[int] = mapped_column(BigInteger)
    reorder: Mapped[int] = mapped_column(BigInteger)
    at_risk: Mapped[int] = mapped_column(BigInteger)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
