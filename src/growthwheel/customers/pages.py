"""Console pages of customers: ``/customers`` (the list, in ``list_pages``) and ``/customers/{id}``
(the profile: attributes, contact masked for analysts, KPIs, orders, events). Templates under
``templates/customers/``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from growthwheel.accounts.models import utcnow
from growthwheel.api.deps import DbSession, PageUser
from growthwheel.customers import list_pages, view360
from growthwheel.customers import service as customers
from growthwheel.customers.schemas import CustomerProfile, Money
from growthwheel.customers.view360_pages import view360_context
from growthwheel.kit.money import currency_exponent
from growthwheel.recs import pages as recs_pages
from growthwheel.segments import service as segments_service
from growthwheel.warehouse import db as warehouse_db
from growthwheel.web.i18n import Translator, format_count, format_money, k
from growthwheel.web.pages import (
    backend,
    error_page,
    local_time,
    page_language,
    page_translator,
    render,
    shop_of,
)

router = APIRouter(include_in_schema=False)
router.include_router(list_pages.router)  # /customers (the list), its exports and actions


#: Customers per page of the list.
PAGE_SIZE = list_pages.PAGE_SIZE

STATUS_KEYS = {
    "pending": k("status.pending"),
    "paid": k("status.paid"),
    "shipped": k("status.shipped"),
    "completed": k("status.completed"),
    "partially_refunded": k("status.partially_refunded"),
    "refunded": k("status.refunded"),
    "cancelled": k("status.cancelled"),
}
EVENT_KEYS = {
    "view": k("event.view"),
    "search": k("event.search"),
    "add_to_cart": k("event.add_to_cart"),
    "checkout": k("event.checkout"),
    "purchase": k("event.purchase"),
}
ATTRIBUTE_KEYS = {
    "customer_id": k("attr.customer_id"),
    "email": k("attr.email"),
    "phone": k("attr.phone"),
    "gender": k("attr.gender"),
    "birthday": k("attr.birthday"),
    "location": k("attr.location"),
    "signed_up_at": k("attr.signed_up_at"),
    "channel": k("attr.channel"),
    "utm": k("attr.utm"),
    "accepts_marketing": k("attr.accepts_marketing"),
}
PROFILE_KPI_KEYS = {
    "orders": k("metric.orders"),
    "gmv": k("metric.gmv"),
    "net_revenue": k("metric.net_revenue"),
    "aov": k("metric.aov"),
    "refunded": k("customer.kpi.refunded"),
    "first_order_date": k("customer.kpi.first_order"),
    "last_order_date": k("customer.kpi.last_order"),
    "favourite_category": k("customer.kpi.favourite_category"),
}
#: Values the shop records in a code, shown in the reader's language (others as recorded).
GENDER_KEYS = {"F": k("gender.F"), "M": k("gender.M")}
DEVICE_KEYS = {
    "mobile": k("device.mobile"), "desktop": k("device.desktop"), "tablet": k("device.tablet"),
    "mini_program": k("device.mini_program"), "app": k("device.app"),
}
#: The channel the warehouse records for an order or customer without one (``direct``).
CHANNEL_KEYS = {"direct": k("channel.direct")}
COUNTRY_KEYS = {"CN": k("country.CN"), "HK": k("country.HK"), "TW": k("country.TW"),
                "US": k("country.US")}


def coded(t: Translator, keys: dict[str, str], value: str | None) -> str | None:
    """``value`` in the reader's language when it is one of the codes of ``keys``."""
    if value is None:
        return None
    key = keys.get(value.strip()) or keys.get(value.strip().upper()) or keys.get(value.strip().lower())
    return t(key) if key else value


def customer_href(customer_id: str) -> str:
    """The profile URL of a customer (the id percent-encoded)."""
    return "/customers/" + quote(customer_id, safe="")


def money_text(money: Money | None, currency: str) -> str:
    """A money amount of a profile as ``¥1,234.50``; ``–`` when unknown."""
    if money is None:
        return "–"
    return format_money(Decimal(money.amount), currency)


def _attribute_rows(profile: CustomerProfile, t: Translator, zone: ZoneInfo) -> list[dict[str, str]]:
    c = profile.customer
    place = ", ".join(p for p in (c.city, c.province, coded(t, COUNTRY_KEYS, c.country)) if p)
    utm = " / ".join(p for p in (c.utm_source, c.utm_medium, c.utm_campaign) if p)
    marketing = (
        "–" if c.accepts_marketing is None
        else t("common.yes") if c.accepts_marketing else t("common.no")
    )
    values = {
        "customer_id": c.customer_id,
        "email": c.email or "–",
        "phone": c.phone or "–",
        "gender": coded(t, GENDER_KEYS, c.gender) or "–",
        "birthday": c.birthday.isoformat() if c.birthday else "–",
        "location": place or "–",
        "signed_up_at": local_time(c.signed_up_at, zone),
        "channel": coded(t, CHANNEL_KEYS, profile.kpis.channel or c.channel) or "–",
        "utm": utm or "–",
        "accepts_marketing": marketing,
    }
    return [{"name": name, "label_key": ATTRIBUTE_KEYS[name], "value": values[name]}
            for name in ATTRIBUTE_KEYS]


def _profile_cards(profile: CustomerProfile, currency: str) -> list[dict[str, str]]:
    kp = profile.kpis
    values = {
        "orders": format_count(kp.orders),
        "gmv": money_text(kp.gmv, currency),
        "net_revenue": money_text(kp.net_revenue, currency),
        "aov": money_text(kp.aov, currency),
        "refunded": money_text(kp.refunded, currency),
        "first_order_date": kp.first_order_date.isoformat() if kp.first_order_date else "–",
        "last_order_date": kp.last_order_date.isoformat() if kp.last_order_date else "–",
        "favourite_category": kp.favourite_category or "–",
    }
    return [{"name": name, "label_key": PROFILE_KPI_KEYS[name], "value": values[name]}
            for name in PROFILE_KPI_KEYS]


def _meta(*items: tuple[str | None, str | None]) -> list[dict[str, str | None]]:
    """The facts under a timeline entry: (label key or ``None``, value), empty values left out."""
    return [{"key": key, "value": value} for key, value in items if value]


@router.get("/customers/{customer_id:path}", response_class=HTMLResponse)
def customer_page(request: Request, user: PageUser, session: DbSession, customer_id: str) -> HTMLResponse:
    """A customer's profile (customer 360): attributes (contact masked for analysts), KPIs, RFM
    class, lifecycle stage and its history, predicted CLV and P(alive), tags, segments, coupons,
    tier and points, messages, every order (imported or committed through the checkout), events."""
    t = page_translator(request)
    shop = shop_of(request)
    zone = ZoneInfo(shop.timezone)
    with backend(request) as con:
        try:
            profile = customers.customer_profile(
                con, customer_id[:200], can_see_pii=user.can_see_pii, currency=shop.currency
            )
        except customers.CustomerNotFoundError:
            return error_page(request, user, 404, k("customer.not_found"),
                               k("customer.not_found_body"), "/customers")
        as_of = segments_service.default_as_of(request.app.state.cfg, con)
        version = (str(request.app.state.cfg.data_dir), warehouse_db.warehouse_version(con))
        wfacts = view360.warehouse_facts(con, profile.customer.customer_id, as_of, cache_key=version)
    sfacts = view360.store_facts(session, profile.customer.customer_id, utcnow(), wfacts.segment_ids)
    orders: list[dict[str, Any]] = [
        {
            "order_id": o.order_id,
            "when": local_time(o.ordered_at, zone),
            "status": o.status or "–",
            "status_key": STATUS_KEYS.get(o.status or ""),
            "status_class": o.status if o.status in STATUS_KEYS else "other",
            "total": money_text(o.total, shop.currency),
            "meta": _meta(
                (k("customer.channel"), coded(t, CHANNEL_KEYS, o.channel)),
                (k("customer.coupon"), o.coupon_code),
                (k("customer.refunded"),
                 money_text(o.refunded, shop.currency) if o.refunded and o.refunded.minor else None),
            ),
            "lines": [
                {"name": line.product_name or line.sku or "–", "sku": line.sku or "",
                 "quantity": line.quantity if line.quantity is not None else "–",
                 "total": money_text(line.line_total, shop.currency)}
                for line in o.lines
            ],
        }
        for o in profile.orders
    ]
    events = [
        {
            "when": local_time(e.occurred_at, zone), "type": e.type,
            "type_key": EVENT_KEYS.get(e.type), "sku": e.sku, "order_id": e.order_id,
            "meta": _meta(
                (k("customer.source"), " / ".join(p for p in (e.utm_source, e.utm_medium) if p)),
                (k("customer.device"), coded(t, DEVICE_KEYS, e.device)),
                (None, e.url),
            ),
        }
        for e in profile.events
    ]
    known = {o.order_id for o in profile.orders}
    checkout_ids = {o["order_id"] for o in sfacts.checkout_orders}
    for o in orders:
        o["checkout"] = o["order_id"] in checkout_ids
    pending = [
        {"order_id": o["order_id"], "when": local_time(o["committed_at"], zone), "status": o["status"],
         "status_key": STATUS_KEYS.get(o["status"] or ""),
         "status_class": o["status"] if o["status"] in STATUS_KEYS else "other",
         "total": format_money(Decimal(o["total"]).scaleb(-currency_exponent(shop.currency)), shop.currency),
         "meta": [], "lines": [], "checkout": True, "_at": o["committed_at"]}
        for o in sfacts.checkout_orders if o["order_id"] not in known
    ]
    if pending:  # committed through the checkout, not yet in the warehouse: first, newest first
        orders = [*pending, *orders]
        for o in orders:
            o.pop("_at", None)
    context = {
        "profile": profile,
        "view": view360_context(t, wfacts, sfacts, shop.currency, zone, lang=page_language(request),
                                can_edit="write" in user.scopes),
        "kpi_cards": _profile_cards(profile, shop.currency),
        "attributes": _attribute_rows(profile, t, zone),
        "orders": orders,
        "events": events,
        "recommended": recs_pages.customer_block(session, customer_id, zone),
    }
    return render(request, "customers/profile.html.j2", context, user=user)

