"""Tables of the social-selling domain in the operational store.

Referral (邀请有礼)
    ``social_invite_codes`` one code per customer; ``social_referrals`` one row per invitee (the
    unique ``invitee_id`` is what makes a binding happen once); ``social_referral_attempts`` every
    bind attempt, refused ones with their reason; ``social_fingerprints`` SHA-256 digests of the
    normalised phone numbers, shipping addresses and device ids seen per customer (never the
    values themselves), used by the self-referral checks; ``social_orders`` the paid orders the
    orders code reported through the hooks; ``social_referral_rewards`` what to grant once a
    referral settles; ``social_referral_policy`` the single row of programme settings.
Group buying (拼团)
    ``social_group_deals`` → ``social_groups`` (``seats_taken`` is raised by one atomic
    conditional UPDATE per join) → ``social_group_members``.
Bargain (砍价)
    ``social_bargain_offers`` → ``social_bargains`` (``cuts_done`` raised atomically) →
    ``social_bargain_cuts`` (one per helper: unique ``(bargain_id, helper_id)``). A customer has
    at most one ``open`` bargain per offer (a partial unique index).

Money columns are integer minor units in the row's ``currency``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
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

ID = 64
"""Length of customer, order and sku identifiers (kept as the source system's strings)."""


class InviteCode(Base):
    """A customer's invite code (one per customer)."""

    __tablename__ = "social_invite_codes"

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """An invitee bound to an inviter, and where the reward stands.

    ``status``: ``bound`` (waiting for the invitee's first paid order) → ``pending`` (that order
    is paid; ``eligible_at`` = paid + refund window) → ``rewarded`` (settled, rewards written) or
    ``cancelled`` (refunded inside the window, or the order revealed a self-referral).
    """

    __tablename__ = "social_referrals"
    __table_args__ = (
        CheckConstraint("status IN ('bound', 'pending', 'rewarded', 'cancelled')", name="status"),
        CheckConstraint("inviter_id <> invitee_id", name="not_self"),
        Index("ix_social_referrals_status_eligible", "status", "eligible_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    invitee_id: Mapped[str] = mapped_column(String(ID), unique=True)
    inviter_id: Mapped[str] = mapped_column(String(ID), index=True)
    code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="bound")
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_order_id: Mapped[str | None] = mapped_column(String(ID), default=None)
    first_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    eligible_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancel_reason: Mapped[str | None] = mapped_column(String(64), default=None)


class ReferralAttempt(Base):
    """One bind attempt: ``outcome`` ``bound`` or ``refused`` with a machine ``reason``."""

    __tablename__ = "social_referral_attempts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    invitee_id: Mapped[str] = mapped_column(String(ID), index=True)
    inviter_id: Mapped[str | None] = mapped_column(String(ID), default=None)
    code: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64), default=None)


class Fingerprint(Base):
    """A digest of a normalised phone, address or device id seen for a customer."""

    __tablename__ = "social_fingerprints"
    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "digest", name="uq_social_fingerprints_value"),
        CheckConstraint("kind IN ('phone', 'address', 'device')", name="kind"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PaidOrder(Base):
    """A paid order reported by ``on_order_paid`` (and its refund, if any)."""

    __tablename__ = "social_orders"

    order_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ReferralReward(Base):
    """What to grant one side of a settled referral: ``points`` or a coupon of ``coupon_batch_id``.

    ``status`` is ``pending`` until a granter (the points / coupon services) has granted it, then
    ``granted`` with ``grant_ref`` (the points lot or the coupon code).
    """

    __tablename__ = "social_referral_rewards"
    __table_args__ = (
        UniqueConstraint("referral_id", "side", name="uq_social_referral_rewards_side"),
        CheckConstraint("side IN ('inviter', 'invitee')", name="side"),
        CheckConstraint("kind IN ('points', 'coupon')", name="kind"),
        CheckConstraint("status IN ('pending', 'granted')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    referral_id: Mapped[str] = mapped_column(ForeignKey("social_referrals.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int | None] = mapped_column(Integer, default=None)
    coupon_batch_id: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    grant_ref: Mapped[str | None] = mapped_column(String(128), default=None)
    grant_error: Mapped[str | None] = mapped_column(String(255), default=None)
    """Why the last grant attempt failed (the row stays ``pending`` and is retried next run)."""


class ReferralPolicyRow(Base):
    """The referral programme's settings (one row, ``id`` = 1; defaults when absent)."""

    __tablename__ = "social_referral_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    refund_window_days: Mapped[int] = mapped_column(Integer)
    inviter_reward: Mapped[str] = mapped_column(String(16))
    inviter_points: Mapped[int | None] = mapped_column(Integer, default=None)
    inviter_coupon_batch_id: Mapped[str | None] = mapped_column(String(64), default=None)
    invitee_reward: Mapped[str] = mapped_column(String(16))
    invitee_points: Mapped[int | None] = mapped_column(Integer, default=None)
    invitee_coupon_batch_id: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(320))


class GroupDeal(Base):
    """A group-buying deal: ``group_size`` buyers within ``time_limit_minutes`` get ``group_price``.

    ``max_groups`` bounds the groups that are open or complete at once (failed groups give their
    slot back); ``groups_open`` counts them and is changed only by conditional UPDATEs.
    """

    __tablename__ = "social_group_deals"
    __table_args__ = (
        CheckConstraint("group_size >= 2", name="group_size"),
        CheckConstraint("group_price >= 0", name="group_price"),
        CheckConstraint("max_groups IS NULL OR groups_open <= max_groups", name="groups_open"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(ID), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    list_price: Mapped[int | None] = mapped_column(BigInteger, default=None)
    group_price: Mapped[int] = mapped_column(BigInteger)
    group_size: Mapped[int] = mapped_column(Integer)
    time_limit_minutes: Mapped[int] = mapped_column(Integer)
    max_groups: Mapped[int | None] = mapped_column(Integer, default=None)
    groups_open: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Group(Base):
    """One group of a deal. ``status``: ``open`` → ``complete`` (size reached) or ``failed``."""

    __tablename__ = "social_groups"
    __table_args__ = (
        CheckConstraint("seats_taken >= 0 AND seats_taken <= size", name="seats"),
        CheckConstraint("status IN ('open', 'complete', 'failed')", name="status"),
        Index("ix_social_groups_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deal_id: Mapped[str] = mapped_column(ForeignKey("social_group_deals.id", ondelete="CASCADE"), index=True)
    leader_id: Mapped[str] = mapped_column(String(ID))
    size: Mapped[int] = mapped_column(Integer)
    seats_taken: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class GroupMember(Base):
    """A buyer's seat in a group, holding ``amount`` (the group price) against ``order_id``.

    ``status``: ``held`` while the group is open or once it completes; ``released`` when it failed
    (``refund_amount`` is then what the shop must refund: the amount if the hold was paid).
    """

    __tablename__ = "social_group_members"
    __table_args__ = (
        UniqueConstraint("group_id", "customer_id", name="uq_social_group_members_customer"),
        CheckConstraint("status IN ('held', 'released')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("social_groups.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[str] = mapped_column(String(ID))
    order_id: Mapped[str | None] = mapped_column(String(ID), default=None)
    amount: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    is_leader: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="held")
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    refund_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)


class BargainOffer(Base):
    """A bargain offer: from ``start_price`` down to ``floor_price`` in ``cuts`` helper cuts."""

    __tablename__ = "social_bargain_offers"
    __table_args__ = (
        CheckConstraint("floor_price >= 0 AND start_price - floor_price >= cuts", name="prices"),
        CheckConstraint("cuts >= 1", name="cuts"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(ID), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    start_price: Mapped[int] = mapped_column(BigInteger)
    floor_price: Mapped[int] = mapped_column(BigInteger)
    cuts: Mapped[int] = mapped_column(Integer)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Bargain(Base):
    """A customer's bargain. ``status``: ``open`` → ``reached`` (floor hit) or ``expired``.

    The cut amounts are ``bargain.cut_sequence(start, floor, cuts_total, seed)``; cut number n
    is taken by whoever raises ``cuts_done`` from n − 1 to n.
    """

    __tablename__ = "social_bargains"
    __table_args__ = (
        CheckConstraint("cuts_done >= 0 AND cuts_done <= cuts_total", name="cuts_done"),
        CheckConstraint("current_price >= floor_price", name="above_floor"),
        CheckConstraint("status IN ('open', 'reached', 'expired')", name="status"),
        Index("ix_social_bargains_status_expires", "status", "expires_at"),
        # One open bargain per customer and offer, held by the database (issue 10).
        Index("uq_social_bargains_open", "offer_id", "customer_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    offer_id: Mapped[str] = mapped_column(ForeignKey("social_bargain_offers.id", ondelete="CASCADE"),
                                          index=True)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    start_price: Mapped[int] = mapped_column(BigInteger)
    floor_price: Mapped[int] = mapped_column(BigInteger)
    cuts_total: Mapped[int] = mapped_column(Integer)
    cuts_done: Mapped[int] = mapped_column(Integer, default=0)
    current_price: Mapped[int] = mapped_column(BigInteger)
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class BargainCut(Base):
    """One helper's cut (the ``seq``-th of the bargain)."""

    __tablename__ = "social_bargain_cuts"
    __table_args__ = (
        UniqueConstraint("bargain_id", "helper_id", name="uq_social_bargain_cuts_helper"),
        UniqueConstraint("bargain_id", "seq", name="uq_social_bargain_cuts_seq"),
        CheckConstraint("amount > 0", name="amount"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    bargain_id: Mapped[str] = mapped_column(ForeignKey("social_bargains.id", ondelete="CASCADE"))
    helper_id: Mapped[str] = mapped_column(String(ID))
    seq: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    price_after: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
