"""What the promotions API takes and answers (pydantic). Amounts are integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from growthwheel.kit import ids
from growthwheel.promotions.definition import Definition

#: The largest amount in minor units: a price, and a whole cart's ``Σ unit_price × quantity`` too
#: (10^13: 100 billion yuan). Every line may be within its bounds while the cart is not, so the
#: cart is bounded as a whole; with it, totals, discounts and per-order points stay far below 2^63.
MAX_AMOUNT = 10**13

Id = ids.Id  # the shop's rule for ids (kit.ids): trimmed, NFC, exact case, no invisible characters
Money = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
Count = Annotated[int, Field(ge=1, le=10**9)]
CodeText = Annotated[str, Field(min_length=1, max_length=40)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Carts and orders
# ---------------------------------------------------------------------------------------------


class LineIn(_In):
    """A cart line as the shop's checkout sends it."""

    line_id: Id
    sku: Annotated[str, Field(min_length=1, max_length=128)]
    unit_price: Money
    quantity: Annotated[int, Field(ge=1, le=100_000)]
    category: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    member_prices: Annotated[dict[Annotated[str, Field(min_length=1, max_length=32)], Money],
                             Field(max_length=20)] = {}
    """Unit price per tier code (for member-price promotions)."""
    deposit_paid: Money = 0
    """Presale (定金膨胀): deposit already paid per line."""
    deposit_credit: Money = 0
    """Presale: what the deposit counts for at this final payment (≥ deposit_paid)."""


class CartIn(_In):
    """A cart to price: who buys, what, with which coupons and how many points."""

    customer_id: Id
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=200)]
    coupon_codes: Annotated[list[CodeText], Field(max_length=10)] = []
    points_to_use: Annotated[int, Field(ge=0, le=10**12)] = 0
    shipping_fee: Money = 0
    channel: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    first_order: bool | None = None
    """The shop may say the customer is not new (``false``); ``true`` is only believed if no order
    of the customer was committed here."""
    explain_all: bool = Field(default=False, description=(
        "List in not_applied every live promotion, also those no product of the cart is for (the "
        "answer then names nearly every promotion of the shop); by default they are only counted, "
        "in not_applied_elsewhere."))

    @field_validator("lines")
    @classmethod
    def _cart_amount_bounded(cls, lines: list[LineIn]) -> list[LineIn]:
        """The cart's amount, not only each line's, is at most :data:`MAX_AMOUNT`."""
        amount = sum(line.unit_price * line.quantity for line in lines)
        if amount > MAX_AMOUNT:
            raise ValueError(f"the cart's amount (Σ unit_price × quantity) is {amount:,} minor units, past "
                             f"the largest amount of {MAX_AMOUNT:,}")
        return lines


class OrderIn(CartIn):
    """Commit an order: the cart, its id (idempotency key) and optionally the total the customer saw."""

    order_id: Id
    expected_total: Money | None = None
    """If given and the re-priced total differs, nothing is taken and the answer is 409 ``price_changed``."""
    contact_phone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    shipping_address: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    device_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """Phone, shipping address and device of the order: checked against the inviter's when this is
    a referred customer's first paid order (self-referral, ``docs/social.md``); stored only hashed."""


class RefundLineIn(_In):
    """Units of one line to refund."""

    line_id: Id
    quantity: Annotated[int, Field(ge=1, le=100_000)]


class RefundIn(_In):
    """A refund: its id (idempotency key) and the units to refund (none given = all that is left)."""

    refund_id: Id
    lines: Annotated[list[RefundLineIn], Field(max_length=200)] | None = None


class LineDiscountOut(BaseModel):
    """One promotion's discount on one line."""

    model_config = ConfigDict(from_attributes=True)

    promotion_id: str
    layer: str
    amount: int
    coupon_code: str | None = None


class PricedLineOut(BaseModel):
    """A priced line: ``subtotal - discounts - deposit_credit = paid``."""

    model_config = ConfigDict(from_attributes=True)

    line_id: str
    sku: str
    unit_price: int
    quantity: int
    subtotal: int
    discounts: list[LineDiscountOut]
    deposit_paid: int
    deposit_credit: int
    paid: int
    is_gift: bool = False


class TotalsOut(BaseModel):
    """Cart totals."""

    model_config = ConfigDict(from_attributes=True)

    subtotal: int
    item_discount: int
    deposit_credit: int
    order_discount: int
    coupon_discount: int
    points_discount: int
    shipping_fee: int
    shipping_discount: int
    goods_total: int
    shipping: int
    total: int


class NudgeOut(BaseModel):
    """A near miss: spend (or add) a little more to save."""

    model_config = ConfigDict(from_attributes=True)

    promotion_id: str
    short_amount: int
    short_quantity: int
    would_save: int
    message: str


class AppliedOut(BaseModel):
    """A promotion that applied, with its split over the lines."""

    model_config = ConfigDict(from_attributes=True)

    promotion_id: str
    name: str
    layer: str
    amount: int
    per_line: list[tuple[str, int]]
    coupon_code: str | None = None
    shipping_discount: int = 0
    gift_sku: str | None = None
    gift_quantity: int = 0


class NotAppliedOut(BaseModel):
    """A promotion that did not apply, with a machine code and a reason."""

    model_config = ConfigDict(from_attributes=True)

    promotion_id: str
    name: str
    layer: str
    code: str
    reason: str
    coupon_code: str | None = None
    nudge: NudgeOut | None = None


class PricedCartOut(BaseModel):
    """The priced cart: lines with allocated discounts, totals, what applied and what nearly did."""

    model_config = ConfigDict(from_attributes=True)

    currency: str
    customer_id: str
    tier: str | None
    lines: list[PricedLineOut]
    totals: TotalsOut
    applied: list[AppliedOut]
    not_applied: list[NotAppliedOut]
    nudges: list[NudgeOut]
    points_used: int
    points_to_earn: int
    growth_to_earn: int
    exact: bool
    not_applied_elsewhere: int = Field(default=0, description=(
        "Live promotions left out of not_applied because no product of the cart is one they are for "
        "(send explain_all to list them)."))


class OrderOut(BaseModel):
    """A committed order (the same answer for every retry with the same payload)."""

    order_id: str
    customer_id: str
    status: str
    currency: str
    total: int
    refunded_amount: int
    points_used: int
    points_earned: int
    growth_earned: int
    coupons: list[str]
    tier_after: str | None
    committed_at: datetime
    priced: PricedCartOut


class RefundOut(BaseModel):
    """What a refund gave back and took back."""

    refund_id: str
    order_id: str
    amount: int
    """Money returned: the exact paid amount of the refunded units (plus shipping on the last refund)."""
    shipping: int
    lines: list[RefundLineIn]
    order_status: str
    refunded_total: int
    coupons_released: list[str]
    points_returned: int
    points_clawed_back: int
    points_shortfall: int
    """Earned points that could not be taken back because the customer had spent them."""
    growth_clawed_back: int
    tier_after: str | None
    created_at: datetime


# ---------------------------------------------------------------------------------------------
# Promotions and coupons
# ---------------------------------------------------------------------------------------------


class PromotionCreate(_In):
    """A new promotion."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    definition: Definition
    status: Literal["draft", "active"] = "draft"
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    budget_count: Count | None = None
    budget_amount: Annotated[int, Field(ge=1, le=10**13)] | None = None
    stock: Annotated[int, Field(ge=0, le=10**9)] | None = None
    """Flash sale (``flash_sale`` reward): units at the sale price."""


class PromotionUpdate(_In):
    """Change a promotion's status or schedule."""

    status: Literal["draft", "active", "paused", "ended"] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class PromotionOut(BaseModel):
    """A stored promotion with its budget burn and stock."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    layer: str
    definition: dict[str, Any]
    status: str
    starts_at: datetime | None
    ends_at: datetime | None
    budget_count: int | None
    budget_amount: int | None
    used_count: int
    used_amount: int
    stock_limit: int | None
    stock_used: int
    created_by: str
    created_at: datetime


class BatchCreate(_In):
    """A new coupon batch."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    definition: Definition
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    code_mode: Literal["unique", "shared"] = "unique"
    shared_code: Annotated[str, Field(min_length=3, max_length=40)] | None = None
    budget_count: Count | None = None
    budget_amount: Annotated[int, Field(ge=1, le=10**13)] | None = None
    per_customer_limit: Annotated[int, Field(ge=1, le=10_000)] = 1
    release_on_refund: Literal["never", "full_refund", "full_refund_within_validity"] = (
        "full_refund_within_validity")


class BatchOut(BaseModel):
    """A coupon batch with its budget burn."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    definition: dict[str, Any]
    code_mode: str
    shared_code: str | None
    valid_from: datetime
    valid_until: datetime
    budget_count: int | None
    budget_amount: int | None
    used_count: int
    used_amount: int
    per_customer_limit: int
    release_on_refund: str
    active: bool
    issued_count: int
    created_by: str
    created_at: datetime


class GenerateIn(_In):
    """Generate bearer codes."""

    count: Annotated[int, Field(ge=1, le=100_000)]


class IssueIn(_In):
    """Issue codes to customers, or to every member of a saved segment (exactly one of the two)."""

    customer_ids: Annotated[list[Id], Field(max_length=100_000)] | None = None
    segment_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    issue_key: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    """Issuing twice with one key serves each customer once (default ``segment:<id>`` for a segment)."""
    dry_run: bool = False
    """Issue nothing: answer how many would get a code and the warnings (check before issuing)."""


class IssueWarningOut(BaseModel):
    """A reason to think twice before issuing (``promotions.issue_checks``)."""

    code: str
    """``repeat_buyers``: a first-order-only batch, and ``customers`` of the audience ordered before;
    ``over_redemption_cap``: ``codes`` unredeemed codes after the issue for ``cap`` redemptions left."""
    message: str
    customers: int
    audience: int
    cap: int | None = None
    codes: int | None = None


class IssueOut(BaseModel):
    """Codes issued (customer → code) and customers who already had one under the key; with
    ``dry_run`` nothing is issued and ``would_issue`` says how many would get a code."""

    issued: dict[str, str]
    already: list[str]
    would_issue: int | None = None
    warnings: list[IssueWarningOut] = []


class CodesOut(BaseModel):
    """Generated codes."""

    codes: list[str]
