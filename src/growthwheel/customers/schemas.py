"""What the customers API answers: search results and the customer profile."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from growthwheel.kit.money import major_text
from growthwheel.kit.pagination import Page


class Money(BaseModel):
    """An amount of money: integer minor units (分 / cents) with its currency, never a float."""

    minor: int = Field(description="Integer minor units (分 / cents).")
    currency: str = Field(description="ISO 4217 code.")
    amount: str = Field(description="The same amount as exact decimal text in major units, e.g. `123.45`.")

    @classmethod
    def of(cls, minor: int, currency: str, exponent: int) -> Money:
        """``minor`` units of ``currency`` (whose minor-unit exponent is ``exponent``)."""
        return cls(minor=minor, currency=currency, amount=major_text(minor, exponent))


class CustomerSummaryKpis(BaseModel):
    """The few numbers shown next to a customer in a list (paid orders only)."""

    orders: int = Field(description="Paid orders (statuses that count toward GMV).")
    net_revenue: Money = Field(description="Σ total_amount − Σ refunded_amount of the paid orders.")
    last_order_date: date | None = Field(description="Shop-local date of the latest paid order.")


class CustomerSummary(BaseModel):
    """One customer in a search result. Email and phone are masked for roles without PII access."""

    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    city: str | None
    channel: str | None = Field(description="Acquisition channel.")
    signed_up_at: datetime | None
    kpis: CustomerSummaryKpis


class CustomerPage(Page[CustomerSummary]):
    """A page of customers sorted by id; follow ``next_cursor`` for the next one."""

    currency: str


class CustomerAttributes(BaseModel):
    """A customer's stored attributes (null when the customer is only known from orders)."""

    customer_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    gender: str | None = None
    birthday: date | None = None
    city: str | None = None
    province: str | None = None
    country: str | None = None
    signed_up_at: datetime | None = None
    channel: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    accepts_marketing: bool | None = None
    tags: list[str] = Field(default_factory=list)
    pii_masked: bool = Field(description="Whether email and phone were masked for the caller's role.")


class CustomerKpis(BaseModel):
    """A customer's numbers over their paid orders (as the KPI catalogue counts them)."""

    orders: int = Field(description="Paid orders.")
    gmv: Money = Field(description="Buyer's GMV: Σ total_amount of the paid orders (refunds not subtracted).")
    net_revenue: Money = Field(description="GMV − refunds.")
    aov: Money | None = Field(description="GMV / orders, half-up to the minor unit; null without orders.")
    refunded: Money = Field(description="Σ refunded_amount of the paid orders.")
    first_order_date: date | None = Field(description="Shop-local date of the first paid order.")
    last_order_date: date | None = Field(description="Shop-local date of the latest paid order.")
    favourite_category: str | None = Field(
        description="Category with the most GMV among the customer's paid order lines "
        "(ties: more units, then name)."
    )
    channel: str | None = Field(
        description="Acquisition channel: the customer's own, else the channel of the first paid order."
    )


class OrderLineOut(BaseModel):
    """One line of an order."""

    line_no: int
    sku: str | None
    product_name: str | None
    category: str | None
    quantity: int | None
    unit_price: Money | None
    discount: Money | None
    line_total: Money | None
    refunded: Money | None


class OrderOut(BaseModel):
    """One order of the customer, with its lines (empty for orders imported without lines)."""

    order_id: str
    ordered_at: datetime | None
    order_date: date | None
    status: str | None
    channel: str | None
    coupon_code: str | None
    item_count: int | None
    total: Money | None
    discount: Money | None
    shipping: Money | None
    refunded: Money | None
    lines: list[OrderLineOut]


class EventOut(BaseModel):
    """One behaviour event."""

    event_id: str
    type: str
    occurred_at: datetime | None
    customer_id: str | None
    anonymous_id: str | None
    session_id: str | None
    sku: str | None
    order_id: str | None
    url: str | None
    referrer: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    device: str | None
    properties: dict[str, Any] | None
    stitched: bool = Field(
        default=False,
        description="Recorded under an anonymous id before the customer identified on that device.",
    )


class CustomerProfile(BaseModel):
    """Everything about one customer: attributes, KPIs, order timeline and event timeline."""

    customer: CustomerAttributes
    kpis: CustomerKpis
    orders: list[OrderOut] = Field(description="Orders of every status, newest first.")
    has_more_orders: bool = Field(description="Whether older orders were left out.")
    events: list[EventOut] = Field(description="Latest events, newest first.")
    has_more_events: bool = Field(description="Whether older events were left out.")
    currency: str
