"""Tables of the promotions domain in the operational store (membership and points: ``loyalty.models``).

* ``promotions``: a promotion stored as data (``definition``, validated into the pricing core's
  dataclasses), with its schedule, status, budget (count of orders and/or discount money) and,
  for a flash sale (秒杀), its stock. ``used_*`` and ``stock_used`` only ever move through one
  atomic conditional ``UPDATE`` (``… SET used = used + 1 WHERE … AND used < limit``) and are held
  in range by CHECK constraints as well.
* ``coupon_batches`` / ``coupon_codes`` / ``coupon_customer_uses`` / ``coupon_redemptions``:
  batches of coupons (generated unique codes or one shared code) with a budget, a per-customer
  limit and a validity window; each redemption is tied to one order (unique per order and code).
* ``checkout_orders`` / ``checkout_order_lines`` / ``checkout_refunds``: orders committed
  through the API with their stored price allocation, and their refunds (idempotent on ids).
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
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

PROMOTION_STATUSES = ("draft", "active", "paused", "ended")
RELEASE_RULES = ("never", "full_refund", "full_refund_within_validity")


class Promotion(Base):
    """A promotion: its pricing definition (data), schedule, status, budget and flash-sale stock."""

    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'paused', 'ended')", name="status"),
        CheckConstraint("budget_count IS NULL OR used_count <= budget_count", name="budget_count"),
        CheckConstraint("budget_amount IS NULL OR used_amount <= budget_amount", name="budget_amount"),
        CheckConstraint("stock_limit IS NULL OR stock_used <= stock_limit", name="stock"),
        CheckConstraint("used_count >= 0 AND used_amount >= 0 AND stock_used >= 0", name="used"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    layer: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    budget_count: Mapped[int | None] = mapped_column(Integer, default=None)
    """At most this many orders may get the promotion."""
    budget_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """At most this much discount (minor units) in total."""
    used_count: Mapped[int] = mapped_column(Integer, default=0)
    used_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    stock_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    """Flash sale: units that may be sold at the sale price."""
    stock_used: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponBatch(Base):
    """A batch of coupons: what they give (``definition``), budget, limits, validity, refund rule."""

    __tablename__ = "coupon_batches"
    __table_args__ = (
        CheckConstraint("code_mode IN ('unique', 'shared')", name="code_mode"),
        CheckConstraint(
            "release_on_refund IN ('never', 'full_refund', 'full_refund_within_validity')", name="release"
        ),
        CheckConstraint("budget_count IS NULL OR used_count <= budget_count", name="budget_count"),
        CheckConstraint("budget_amount IS NULL OR used_amount <= budget_amount", name="budget_amount"),
        CheckConstraint("used_count >= 0 AND used_amount >= 0", name="used"),
        CheckConstraint("per_customer_limit >= 1", name="per_customer"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    code_mode: Mapped[str] = mapped_column(String(16))
    shared_code: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    budget_count: Mapped[int | None] = mapped_column(Integer, default=None)
    budget_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    used_count: Mapped[int] = mapped_column(Integer, default=0)
    used_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    per_customer_limit: Mapped[int] = mapped_column(Integer, default=1)
    release_on_refund: Mapped[str] = mapped_column(String(32), default="full_refund_within_validity")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponCode(Base):
    """One code of a batch. ``customer_id`` set: issued to (and only usable by) that customer."""

    __tablename__ = "coupon_codes"
    __table_args__ = (
        CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="uses"),
        CheckConstraint("uses >= 0", name="uses_positive"),
        UniqueConstraint("batch_id", "customer_id", "issue_key", name="uq_coupon_codes_issue"),
        # NULLs are distinct in the constraint above, so codes issued without a key need their own
        # rule: one per customer and batch (issue 10).
        Index("uq_coupon_codes_unkeyed", "batch_id", "customer_id", unique=True,
              sqlite_where=text("issue_key IS NULL AND customer_id IS NOT NULL"),
              postgresql_where=text("issue_key IS NULL AND customer_id IS NOT NULL")),
        Index("ix_coupon_codes_customer_id", "customer_id"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("coupon_batches.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    issue_key: Mapped[str | None] = mapped_column(String(100), default=None)
    """Why it was issued (``segment:<id>``, ``birthday:2026``…): issuing twice with one key is a no-op."""
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    max_uses: Mapped[int | None] = mapped_column(Integer, default=None)
    """1 for a generated code; ``NULL`` for a shared code (the batch budget limits it)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CouponCustomerUse(Base):
    """How many times a customer has redeemed a batch (kept below the batch's per-customer limit)."""

    __tablename__ = "coupon_customer_uses"
    __table_args__ = (CheckConstraint("used >= 0", name="used"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("coupon_batches.id", ondelete="CASCADE"),
                                          primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


class CouponRedemption(Base):
    """A coupon used on an order (released again when a refund qualifies)."""

    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("order_id", "code", name="uq_coupon_redemptions_order_code"),
        CheckConstraint("status IN ('redeemed', 'released')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("coupon_batches.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str] = mapped_column(String(64))
    discount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="redeemed")
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class CheckoutOrder(Base):
    """An order committed through the API, with what was charged and earned, and its stored answer."""

    __tablename__ = "checkout_orders"
    __table_args__ = (
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= total", name="refunded"),
        CheckConstraint("total >= 0", name="total"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24), default="paid")
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    shipping: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    """What the customer paid (goods after every discount, plus shipping)."""
    points_used: Mapped[int] = mapped_column(BigInteger, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    points_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_clawed: Mapped[int] = mapped_column(BigInteger, default=0)
    growth_clawed: Mapped[int] = mapped_column(BigInteger, default=0)
    priced: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The priced cart as answered at commit (lines, allocations, applied promotions)."""
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckoutOrderLine(Base):
    """One line of a committed order: what it was charged and how much of it has been refunded."""

    __tablename__ = "checkout_order_lines"
    __table_args__ = (
        CheckConstraint("refunded_quantity >= 0 AND refunded_quantity <= quantity", name="refunded_qty"),
        CheckConstraint("refunded_amount >= 0 AND refunded_amount <= paid", name="refunded_amount"),
    )

    order_id: Mapped[str] = mapped_column(ForeignKey("checkout_orders.id", ondelete="CASCADE"),
                                          primary_key=True)
    line_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger)
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)


class CheckoutRefund(Base):
    """A refund of a committed order (idempotent on its id), with everything it reversed."""

    __tablename__ = "checkout_refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("checkout_orders.id", ondelete="CASCADE"), index=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
