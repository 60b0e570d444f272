"""Customer search and profile: rows from the repository turned into the API's schemas.

Personal data: callers that may not see it (``can_see_pii`` False, i.e. analysts) get email and
phone masked, and their search does not match on email or phone either, so a search cannot be
used to guess a masked address one character at a time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from growthwheel.accounts.service import mask_email, mask_phone
from growthwheel.customers import repository
from growthwheel.customers.schemas import (
    CustomerAttributes,
    CustomerKpis,
    CustomerPage,
    CustomerProfile,
    CustomerSummary,
    CustomerSummaryKpis,
    EventOut,
    Money,
    OrderLineOut,
    OrderOut,
)
from growthwheel.errors import NoDataError
from growthwheel.kit.money import currency_exponent
from growthwheel.kit.pagination import decode_cursor, paginate

#: Orders and events shown on a profile unless the caller asks for another number.
DEFAULT_TIMELINE = 50

class CustomerNotFoundError(NoDataError):
    """No customer with that id (neither in ``customers`` nor as a buyer in ``orders``)."""

    code = "customer_not_found"
    status = 404


def _utc(value: datetime | None) -> datetime | None:
    """A stored (naive UTC) timestamp as an aware UTC datetime."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _half_up(num: int, den: int) -> int:
    """``num / den`` rounded half away from zero to an integer (``den`` > 0)."""
    sign = -1 if num < 0 else 1
    return sign * ((2 * abs(num) + den) // (2 * den))


class _Money:
    """Builds :class:`Money` values in one currency."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.exponent = currency_exponent(currency)

    def __call__(self, minor: int) -> Money:
        return Money.of(minor, self.currency, self.exponent)

    def maybe(self, minor: int | None) -> Money | None:
        return None if minor is None else self(minor)


def _contact(row: dict[str, Any], can_see_pii: bool) -> tuple[str | None, str | None]:
    email, phone = row.get("email"), row.get("phone")
    if can_see_pii:
        return email, phone
    return mask_email(email), mask_phone(phone)


def search_customers(
    con: Any,
    *,
    query: str = "",
    limit: int = 50,
    cursor: str | None = None,
    can_see_pii: bool,
    currency: str,
) -> CustomerPage:
    """A page of customers matching ``query`` (id, name, and for PII roles email or phone).

    Sorted by customer id; ``cursor`` is the ``next_cursor`` of the previous page. Each customer
    comes with paid orders, net revenue and last order date.
    """
    after = str(decode_cursor(cursor, (str,))[0]) if cursor else None
    fetched = repository.search(con, query, match_contact=can_see_pii, after=after, limit=limit + 1)
    page, next_cursor = paginate(fetched, limit, lambda row: (row["customer_id"],))
    summaries = repository.order_summaries(con, [row["customer_id"] for row in page])
    money = _Money(currency)
    items = []
    for row in page:
        stats = summaries.get(row["customer_id"])
        email, phone = _contact(row, can_see_pii)
        items.append(
            CustomerSummary(
                customer_id=row["customer_id"],
                name=row["name"],
                email=email,
                phone=phone,
                city=row["city"],
                channel=row["channel"],
                signed_up_at=_utc(row["signed_up_at"]),
                kpis=CustomerSummaryKpis(
                    orders=int(stats["orders"]) if stats else 0,
                    net_revenue=money(int(stats["gmv"]) - int(stats["refunded"]) if stats else 0),
                    last_order_date=stats["last_order_date"] if stats else None,
                ),
            )
        )
    return CustomerPage(items=items, next_cursor=next_cursor, currency=currency)


def _attributes(row: dict[str, Any], can_see_pii: bool) -> CustomerAttributes:
    email, phone = _contact(row, can_see_pii)
    tags = [t.strip() for t in (row.get("tags") or "").split(";") if t.strip()]
    values = {name: row.get(name) for name in repository.ATTRIBUTES}
    values.update(email=email, phone=phone, tags=tags, signed_up_at=_utc(row.get("signed_up_at")))
    return CustomerAttributes(**values, pii_masked=not can_see_pii)


def _kpis(con: Any, row: dict[str, Any], money: _Money) -> CustomerKpis:
    customer_id = row["customer_id"]
    stats = repository.order_summaries(con, [customer_id]).get(customer_id)
    orders = int(stats["orders"]) if stats else 0
    gmv = int(stats["gmv"]) if stats else 0
    refunded = int(stats["refunded"]) if stats else 0
    channel = row.get("channel") or (repository.first_order_channel(con, customer_id) if stats else None)
    return CustomerKpis(
        orders=orders,
        gmv=money(gmv),
        net_revenue=money(gmv - refunded),
        aov=money(_half_up(gmv, orders)) if orders else None,
        refunded=money(refunded),
        first_order_date=stats["first_order_date"] if stats else None,
        last_order_date=stats["last_order_date"] if stats else None,
        favourite_category=repository.favourite_category(con, customer_id) if stats else None,
        channel=channel,
    )


def _orders(con: Any, customer_id: str, limit: int, money: _Money) -> tuple[list[OrderOut], bool]:
    fetched = repository.customer_orders(con, customer_id, limit + 1)
    page = fetched[:limit]
    lines: dict[str, list[OrderLineOut]] = {}
    for line in repository.lines_of(con, [o["order_id"] for o in page]):
        lines.setdefault(line["order_id"], []).append(
            OrderLineOut(
                line_no=line["line_no"],
                sku=line["sku"],
                product_name=line["product_name"],
                category=line["category"],
                quantity=line["quantity"],
                unit_price=money.maybe(line["unit_price"]),
                discount=money.maybe(line["discount_amount"]),
                line_total=money.maybe(line["line_total"]),
                refunded=money.maybe(line["refunded_amount"]),
            )
        )
    orders = [
        OrderOut(
            order_id=o["order_id"],
            ordered_at=_utc(o["ordered_at"]),
            order_date=o["order_date"],
            status=o["status"],
            channel=o["channel"],
            coupon_code=o["coupon_code"],
            item_count=o["item_count"],
            total=money.maybe(o["total_amount"]),
            discount=money.maybe(o["discount_amount"]),
            shipping=money.maybe(o["shipping_amount"]),
            refunded=money.maybe(o["refunded_amount"]),
            lines=lines.get(o["order_id"], []),
        )
        for o in page
    ]
    return orders, len(fetched) > limit


def _properties(text: Any) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _event(row: dict[str, Any]) -> EventOut:
    return EventOut(
        event_id=row["event_id"],
        type=row["type"],
        occurred_at=_utc(row.get("occurred_at")),
        customer_id=row.get("customer_id"),
        anonymous_id=row.get("anonymous_id"),
        session_id=row.get("session_id"),
        sku=row.get("sku"),
        order_id=row.get("order_id"),
        url=row.get("url"),
        referrer=row.get("referrer"),
        utm_source=row.get("utm_source"),
        utm_medium=row.get("utm_medium"),
        utm_campaign=row.get("utm_campaign"),
        device=row.get("device"),
        properties=_properties(row.get("properties")),
        stitched=bool(row.get("stitched")),
    )


def customer_profile(
    con: Any,
    customer_id: str,
    *,
    can_see_pii: bool,
    currency: str,
    order_limit: int = DEFAULT_TIMELINE,
    event_limit: int = DEFAULT_TIMELINE,
) -> CustomerProfile:
    """The profile of ``customer_id``: attributes, KPIs, latest orders with lines, latest events.

    The event timeline includes the anonymous events of devices that later identified as the
    customer. Raises :class:`CustomerNotFoundError` for an unknown id.
    """
    row = repository.customer(con, customer_id)
    if row is None:
        raise CustomerNotFoundError(f"no customer with id {customer_id!r}")
    money = _Money(currency)
    orders, more_orders = _orders(con, customer_id, order_limit, money)
    events = repository.customer_events(con, customer_id, event_limit + 1)
    return CustomerProfile(
        customer=_attributes(row, can_see_pii),
        kpis=_kpis(con, row, money),
        orders=orders,
        has_more_orders=more_orders,
        events=[_event(e) for e in events[:event_limit]],
        has_more_events=len(events) > event_limit,
        currency=currency,
    )
