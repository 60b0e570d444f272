"""Tables of the recommendations domain in the operational store (precomputed, served by key).

* ``rec_customers``: each customer's ranked recommendations (JSON list of ``[sku, score, reason]``),
  written by the ``recs.refresh`` job; one primary-key read serves a request;
* ``rec_products``: each product's "bought it also bought" list (JSON list of
  ``[sku, confidence, lift, support]``);
* ``rec_exclusions``: SKUs never recommended (``out_of_stock``, ``not_for_sale``), applied when
  serving, so an exclusion takes effect at once;
* ``rec_runs``: one row per refresh: when, the blend's weights, the offline evaluation, the
  popular list that answers customers without history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, utcnow
from growthwheel.store.db import Base

_SERIAL = BigInteger().with_variant(Integer(), "sqlite")

EXCLUSION_REASONS = ("out_of_stock", "not_for_sale")


class RecCustomer(Base):
    """A customer's precomputed recommendations."""

    __tablename__ = "rec_customers"

    customer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    run_id: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecProduct(Base):
    """A product's precomputed also-bought list."""

    __tablename__ = "rec_products"

    sku: Mapped[str] = mapped_column(String(200), primary_key=True)
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    run_id: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecExclusion(Base):
    """A SKU that is never recommended, and why."""

    __tablename__ = "rec_exclusions"
    __table_args__ = (CheckConstraint("reason IN ('out_of_stock', 'not_for_sale')", name="reason"),)

    sku: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecRun(Base):
    """One refresh of the precomputed recommendations."""

    __tablename__ = "rec_runs"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    customers: Mapped[int] = mapped_column(BigInteger)
    products: Mapped[int] = mapped_column(BigInteger)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    popular: Mapped[list[Any]] = mapped_column(JSON, default=list)
