"""What the social-selling API takes and answers (pydantic). Money in integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from growthwheel.kit.ids import Id
from growthwheel.social.bargain import MAX_CUTS
from growthwheel.social.groups import MAX_GROUP_SIZE, MAX_TIME_LIMIT_MINUTES

_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Ident = Id
"""A customer, order or sku id as the shop's systems spell it (the rule of ``kit.ids``)."""
Signal = Annotated[str, StringConstraints(max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_PRINTABLE)]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")]
MAX_MINOR = 10**13
"""Largest amount accepted, in minor units (100 billion in a two-decimal currency)."""
Minor = Annotated[int, Field(ge=0, le=MAX_MINOR)]
_PHONE = "Contact phone, any format (`+86 138-0013-8000`); compared after normalising, stored as a digest."
_ADDRESS = "Shipping address; compared after normalising (case, spaces, punctuation, full-width)."
_DEVICE = "Device id of the app or browser."


class Signals(BaseModel):
    """A customer's contact signals, used only for the self-referral checks."""

    phone: Signal | None = Field(default=None, description=_PHONE)
    address: Signal | None = Field(default=None, description=_ADDRESS)
    device: Signal | None = Field(default=None, description=_DEVICE)


class InviteCodeRequest(Signals):
    """Get (or create on first request) a customer's invite code."""

    customer_id: Ident


class InviteCodeOut(BaseModel):
    """A customer's invite code."""

    customer_id: str
    code: str = Field(description="8 symbols without look-alikes (no 0 O 1 I L U V).")


class BindRequest(Signals):
    """An invitee (at sign-up or first visit) binds to the owner of ``code``."""

    invitee_id: Ident
    code: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="The invite code as typed; case, spaces and dashes are ignored.")


class ReferralOut(BaseModel):
    """An invitee bound to an inviter and where the reward stands."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    inviter_id: str
    invitee_id: str
    status: Literal["bound", "pending", "rewarded", "cancelled"] = Field(
        description="bound → pending (first order paid, refund window running) → rewarded | cancelled.")
    bound_at: datetime
    first_order_id: str | None
    first_paid_at: datetime | None
    eligible_at: datetime | None = Field(description="When the first order has survived its refund window.")
    settled_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


class RewardOut(BaseModel):
    """What one side of a settled referral receives."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    referral_id: str
    side: Literal["inviter", "invitee"]
    customer_id: str
    kind: Literal["points", "coupon"]
    points: int | None
    coupon_batch_id: str | None
    status: Literal["pending", "granted"]
    created_at: datetime
    granted_at: datetime | None
    grant_ref: str | None = Field(description="`points_lot:<id>` or `coupon:<code>` once granted.")
    grant_error: str | None = Field(description="Why the last grant failed (retried by the next run).")


class ReferralCustomerOut(BaseModel):
    """A customer's side of the referral programme."""

    customer_id: str
    code: str | None
    invited_by: ReferralOut | None
    invitees: list[ReferralOut]
    rewards: list[RewardOut]


class OrderPaid(Signals):
    """The shop's order system reports a paid order (the ``on_order_paid`` hook over HTTP)."""

    order_id: Ident
    customer_id: Ident
    paid_at: AwareDatetime


class OrderRefunded(BaseModel):
    """The shop's order system reports a refund (full or partial) of an order."""

    refunded_at: AwareDatetime


class HookOut(BaseModel):
    """What a hook did to a referral (``null`` when none was concerned)."""

    referral: str | None = Field(description="`pending`, `cancelled:<reason>`, `cancelled` or null.")


class RewardIn(BaseModel):
    """One side's reward: points, or a coupon of a batch."""

    kind: Literal["points", "coupon"]
    points: int | None = Field(default=None, ge=1, le=10_000_000)
    coupon_batch_id: Ident | None = None


class PolicyIO(BaseModel):
    """The referral programme's settings."""

    refund_window_days: int = Field(ge=0, le=365, description="Days a first order must go unrefunded.")
    inviter: RewardIn
    invitee: RewardIn


class SettleOut(BaseModel):
    """What a settlement run did."""

    rewarded: list[str] = Field(description="Referrals settled in this run.")
    rewards: list[RewardOut] = Field(description="Rewards written in this run (two per referral).")
    granted: list[RewardOut] = Field(description="Rewards granted in this run (points, coupons).")
    failed: list[RewardOut] = Field(description="Rewards whose grant failed; pending, retried next run.")


class GroupDealCreate(BaseModel):
    """A new group-buying deal."""

    name: Name
    sku: Ident
    currency: Currency
    group_price: Minor
    group_size: int = Field(ge=2, le=MAX_GROUP_SIZE, description="Buyers per group, the leader included.")
    time_limit_minutes: int = Field(ge=1, le=MAX_TIME_LIMIT_MINUTES,
                                    description="A group must fill in this time.")
    list_price: Minor | None = None
    max_groups: int | None = Field(
        default=None, ge=1, le=1_000_000,
        description="Groups open or complete at once (failed groups give theirs back).")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class GroupDealOut(BaseModel):
    """A group-buying deal."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    sku: str
    currency: str
    list_price: int | None
    group_price: int
    group_size: int
    time_limit_minutes: int
    max_groups: int | None
    groups_open: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    created_by: str
    created_at: datetime


class SeatRequest(BaseModel):
    """A buyer opening or joining a group, with the order holding the group price."""

    customer_id: Ident
    order_id: Ident | None = Field(default=None, description="The shop's order holding the seat.")
    paid: bool = Field(default=False, description="Whether that order is paid (a failed group refunds it).")


class MemberOut(BaseModel):
    """A seat in a group."""

    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    is_leader: bool
    order_id: str | None
    amount: int
    paid: bool
    status: Literal["held", "released"]
    joined_at: datetime
    released_at: datetime | None
    refund_amount: int | None


class GroupOut(BaseModel):
    """A group and its members."""

    id: str
    deal_id: str
    sku: str
    currency: str
    group_price: int
    size: int
    seats_taken: int
    seats_left: int
    status: Literal["open", "complete", "failed", "expired"] = Field(
        description="`expired`: past its deadline, not yet failed by the expire job.")
    opened_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    members: list[MemberOut]


class GroupRefundOut(BaseModel):
    """A refund to issue to a member of a failed group."""

    group_id: str
    customer_id: str
    order_id: str | None
    amount: int
    currency: str


class ExpireGroupsOut(BaseModel):
    """What the group expiry job did."""

    refunds: list[GroupRefundOut]


class BargainOfferCreate(BaseModel):
    """A new bargain offer."""

    name: Name
    sku: Ident
    currency: Currency
    start_price: Minor
    floor_price: Minor
    cuts: int = Field(ge=1, le=MAX_CUTS, description="Helper cuts from start_price to floor_price.")
    duration_minutes: int = Field(ge=1, le=MAX_TIME_LIMIT_MINUTES)


class BargainOfferOut(BaseModel):
    """A bargain offer."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    sku: str
    currency: str
    start_price: int
    floor_price: int
    cuts: int
    duration_minutes: int
    active: bool
    created_by: str
    created_at: datetime


class BargainStart(BaseModel):
    """A customer starting a bargain."""

    customer_id: Ident


class CutRequest(BaseModel):
    """A helper cutting a bargain."""

    helper_id: Ident


class CutOut(BaseModel):
    """One helper's cut."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    helper_id: str
    amount: int
    price_after: int
    at: datetime


class BargainOut(BaseModel):
    """A bargain and its cuts."""

    id: str
    offer_id: str
    customer_id: str
    currency: str
    start_price: int
    floor_price: int
    current_price: int
    cuts_total: int
    cuts_done: int
    status: Literal["open", "reached", "expired"]
    started_at: datetime
    expires_at: datetime
    reached_at: datetime | None
    cuts: list[CutOut]


class CutResult(BaseModel):
    """The cut just made and the bargain after it."""

    cut: CutOut
    bargain: BargainOut


class ExpireBargainsOut(BaseModel):
    """What the bargain expiry job did."""

    expired: int
