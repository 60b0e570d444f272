"""Tables of the loyalty domain in the operational store (moved from ``promotions.models``; the
table names are unchanged).

* ``member_tiers`` / ``members`` / ``growth_entries``: membership tiers by growth value (成长值)
  over a rolling window; growth entries are dated by the order that earned them.
* ``points_accounts`` / ``points_lots`` / ``points_ledger``: the points ledger (append-only; the
  balance is its sum), earned points in lots with an expiry, and one balance row per customer
  whose CHECK keeps it from going below zero.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, utcnow
from growthwheel.store.db import Base

_SERIAL = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

LEDGER_KINDS = ("earn", "redeem", "expire", "adjust", "clawback", "return")


class MemberTier(Base):
    """A membership tier: reached at ``min_growth`` over the rolling window, with its benefits."""

    __tablename__ = "member_tiers"
    __table_args__ = (CheckConstraint("points_multiplier_bp >= 0", name="multiplier"),)

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    min_growth: Mapped[int] = mapped_column(BigInteger, unique=True)
    points_multiplier_bp: Mapped[int] = mapped_column(Integer, default=10_000)
    """Points multiplier in basis points (10000 = ×1, 15000 = ×1.5)."""
    free_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    birthday_batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("coupon_batches.id", ondelete="SET NULL"), default=None
    )


class Member(Base):
    """A customer's membership: current tier, growth over the window, birthday for the coupon job."""

    __tablename__ = "members"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier_code: Mapped[str | None] = mapped_column(ForeignKey("member_tiers.code", ondelete="SET NULL"),
                                                  default=None)
    growth: Mapped[int] = mapped_column(BigInteger, default=0)
    """Growth value inside the rolling window at ``evaluated_at``."""
    birthday: Mapped[date | None] = mapped_column(Date, default=None)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tier_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class GrowthEntry(Base):
    """Growth value earned (or clawed back) by an order; ``effective_at`` places it in the window."""

    __tablename__ = "growth_entries"
    __table_args__ = (Index("ix_growth_entries_customer_at", "customer_id", "effective_at"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When the growth counts: the order's time (a claw-back is dated like the order it reverses)."""
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)


class PointsAccount(Base):
    """A customer's points balance; always the sum of their ledger, never below zero."""

    __tablename__ = "points_accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance"),)

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PointsLot(Base):
    """Points earned together, spent soonest-to-expire first, expired by the job after ``expires_at``."""

    __tablename__ = "points_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining"),
        Index("ix_points_lots_customer_expires", "customer_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    earned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)


class PointsLedgerEntry(Base):
    """One move of points (append-only): earn, redeem, expire, adjust, clawback, return."""

    __tablename__ = "points_ledger"
    __table_args__ = (
        CheckConstraint("kind IN ('earn', 'redeem', 'expire', 'adjust', 'clawback', 'return')", name="kind"),
        CheckConstraint("points <> 0", name="nonzero"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("points_lots.id"), default=None)
    order_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    note: Mapped[str | None] = mapped_column(String(500), default=None)
