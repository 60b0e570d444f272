"""The console: server-rendered pages (Jinja2, autoescaped) with HTMX for the live parts.

Pages: ``/login`` (the form; the POST handlers of ``/login`` and ``/logout`` belong to accounts),
``/`` Overview, ``/customers`` (live search) and ``/customers/{id}`` (profile), ``/imports``
(upload) and ``/imports/{job}`` (progress, polled every second by HTMX until the job is done).

Every page needs a signed-in user (``current_user_page`` redirects anonymous visitors to the login
form); every form POST carries the CSRF token. Every visible string comes from the catalogues
(``i18n/*.json``); keys chosen in Python are marked with :func:`growthwheel.web.i18n.k`.
Pages read the warehouse through the server's warehouse owner (``app.state.warehouse.read()``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import ibis
import jinja2
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from growthwheel import __version__
from growthwheel.accounts.api import safe_next
from growthwheel.api.deps import Principal, check_csrf, csrf_token, current_user_page
from growthwheel.api.imports import job_error, limited_form, shown_value, upload_names
from growthwheel.api.warehouse import warehouse
from growthwheel.config import Settings, ShopSettings
from growthwheel.customers import service as customers
from growthwheel.customers.schemas import CustomerProfile, Money
from growthwheel.errors import ImportFileError, InvalidArgumentError
from growthwheel.insight.kpis import METRICS
from growthwheel.kit.money import currency_exponent
from growthwheel.warehouse import db as warehouse_db
from growthwheel.warehouse import uploads
from growthwheel.warehouse.ingest import FORMATS
from growthwheel.warehouse.jobs import ImportJob
from growthwheel.warehouse.schema import resolve_table
from growthwheel.web import overview as ov
from growthwheel.web.i18n import (
    COOKIE,
    HTML_LANG,
    LANGS,
    Translator,
    choose_language,
    format_change,
    format_count,
    format_money,
    format_ratio,
    k,
    translator,
)

router = APIRouter(include_in_schema=False)

User = Annotated[Principal, Depends(current_user_page)]

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

#: Customers per page of the list.
PAGE_SIZE = 25
#: Longest range the Overview computes (days).
MAX_RANGE_DAYS = 1096
#: Quarantined rows listed under a finished import.
QUARANTINE_SHOWN = 200
#: Imports listed on the imports page.
RECENT_IMPORTS = 20
LANG_COOKIE_SECONDS = 365 * 24 * 3600

#: Content-Security-Policy of every page: scripts only from this server (no inline script runs).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

NAV: tuple[tuple[str, str], ...] = (
    ("/", k("nav.overview")),
    ("/customers", k("nav.customers")),
    ("/segments", k("nav.segments")),
    ("/experiments", k("nav.experiments")),
    ("/promotions", k("nav.promotions")),
    ("/coupons", k("nav.coupons")),
    ("/loyalty", k("nav.loyalty")),
    ("/jobs", k("nav.jobs")),
    ("/imports", k("nav.imports")),
)
ROLE_KEYS = {"admin": k("role.admin"), "operator": k("role.operator"), "analyst": k("role.analyst")}
LANG_KEYS = {"zh": k("lang.zh"), "en": k("lang.en")}
METRIC_KEYS = {
    "gmv": k("metric.gmv"),
    "orders": k("metric.orders"),
    "buyers": k("metric.buyers"),
    "aov": k("metric.aov"),
    "new_buyers": k("metric.new_buyers"),
    "repurchase_rate": k("metric.repurchase_rate"),
    "session_conversion_rate": k("metric.session_conversion_rate"),
    "refund_rate": k("metric.refund_rate"),
}
TREND_KEYS = {"day": k("overview.by_day"), "week": k("overview.by_week")}
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
TABLE_KEYS = {
    "order_lines": k("table.order_lines"),
    "orders": k("table.orders"),
    "customers": k("table.customers"),
    "products": k("table.products"),
    "events": k("table.events"),
    "ad_spend": k("table.ad_spend"),
    "reviews": k("table.reviews"),
}
FORMAT_KEYS = {
    "generic": k("format.generic"),
    "shopify": k("format.shopify"),
    "taobao": k("format.taobao"),
}
JOB_STATE_KEYS = {
    "queued": k("job.queued"),
    "running": k("job.running"),
    "done": k("job.done"),
    "failed": k("job.failed"),
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
COUNT_KEYS = {
    "rows_read": k("imports.count.read"),
    "inserted": k("imports.count.inserted"),
    "updated": k("imports.count.updated"),
    "unchanged": k("imports.count.unchanged"),
    "superseded": k("imports.count.superseded"),
    "rows_quarantined": k("imports.count.quarantined"),
}
#: ``/login?error=<code>``: the accounts error codes a failed sign-in comes back with.
LOGIN_ERRORS = {
    "invalid_credentials": k("login.error.invalid"),
    "too_many_requests": k("login.error.throttled"),
    "csrf_failed": k("login.error.csrf"),
}


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _language(request: Request) -> tuple[str, bool]:
    """The page language and whether it was just chosen with ``?lang=`` (then remembered)."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return str(asked), True
    return choose_language(request.cookies.get(COOKIE), request.headers.get("accept-language")), False


def _static(path: str) -> str:
    return f"/static/{path}?v={__version__}"


def _with_query(request: Request, **params: str | None) -> str:
    """The current path with ``params`` set in its query (``None`` removes one)."""
    query = {key: value for key, value in request.query_params.items() if key not in params}
    query.update({key: value for key, value in params.items() if value is not None})
    return request.url.path + ("?" + urlencode(query) if query else "")


def _shop(request: Request) -> ShopSettings:
    cfg: Settings = request.app.state.cfg
    return cfg.shop()


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    user: Principal | None = None,
    status: int = 200,
) -> HTMLResponse:
    """Render a console template with the shared context (language, user, CSRF token, navigation)."""
    lang, chosen = _language(request)
    t = translator(lang)
    path = request.url.path
    shared: dict[str, Any] = {
        "t": t,
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "static": _static,
        "lang_links": [
            {"code": code, "key": LANG_KEYS[code], "html_lang": HTML_LANG[code],
             "href": _with_query(request, lang=code), "active": code == lang}
            for code in LANGS
        ],
        "csrf": csrf_token(request),
        "user": user,
        "role_key": ROLE_KEYS.get(user.role or "", k("role.api_key")) if user else "",
        "nav": [
            {"href": href, "key": key,
             "active": path == href if href == "/" else path.startswith(href)}
            for href, key in NAV
        ],
        "shop_name": _shop(request).name,
    }
    html = _ENV.get_template(template).render({**shared, **context})
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Vary"] = "Cookie, Accept-Language, HX-Request"
    if chosen:
        response.set_cookie(COOKIE, lang, max_age=LANG_COOKIE_SECONDS, path="/", samesite="lax",
                            httponly=True)
    return response


def _is_fragment(request: Request) -> bool:
    """An HTMX request that wants only the part of the page it swaps."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")


def _error_page(request: Request, user: Principal, status: int, title: str, message: str,
                back: str) -> HTMLResponse:
    return render(request, "error.html.j2",
                  {"title_key": title, "message_key": message, "back_href": back},
                  user=user, status=status)


@contextmanager
def _backend(request: Request) -> Iterator[Any]:
    """An Ibis backend over the warehouse, from the server's warehouse owner (reads never wait)."""
    with warehouse(request).read() as con:
        yield con


def _local_time(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------------------------------
# Login
# ---------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The sign-in form (it posts ``email``, ``password``, ``next`` and ``csrf_token`` to ``/login``)."""
    return render_login(request, next_path=next_path, error=error)


def render_login(request: Request, *, next_path: str | None = None, error: str | None = None,
                 email: str = "", status: int = 200) -> HTMLResponse:
    """The sign-in page, optionally with an error (a code of :data:`LOGIN_ERRORS`), e.g. for the
    accounts POST handler to answer a failed attempt with."""
    context = {"next": safe_next(next_path), "error_key": LOGIN_ERRORS.get(error or ""),
               "email": email, "body_class": "login-page"}
    response = render(request, "login.html.j2", context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------------------------


def _parse_day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class _CardView:
    metric: str
    label_key: str
    value: str
    previous: str
    change: str
    tone: str


def _metric_text(name: str, value: Any, currency: str) -> str:
    metric = METRICS[name]
    if metric.unit == "money":
        return format_money(value, currency)
    if metric.unit == "count":
        return format_count(value)
    return format_ratio(value, metric.percent)


def _chart_data(data: ov.Overview, t: Translator, currency: str) -> dict[str, Any]:
    """What ``app.js`` draws, labels included (so that charts speak the page's language)."""
    return {
        "currency": format_money(0, currency).rstrip("0.,") or currency,
        "labels": {
            "gmv": t("metric.gmv"), "orders": t("metric.orders"),
            "new": t("overview.new_buyers"), "returning": t("overview.returning_buyers"),
            "empty": t("overview.no_data_in_range"),
        },
        "trend": {
            "periods": data.trend_periods, "gmv": data.trend_gmv, "orders": data.trend_orders,
            "new": data.trend_new, "returning": data.trend_returning,
        },
        "channels": [{"name": name, "value": float(gmv), "orders": n} for name, gmv, n in data.channels],
        "categories": [
            {"name": name, "value": float(gmv), "orders": n} for name, gmv, n in data.categories
        ],
    }


_overviews: OrderedDict[tuple[Any, ...], ov.Overview] = OrderedDict()
_overviews_lock = threading.Lock()
#: Overviews kept in memory (keyed by data directory, range and warehouse version).
OVERVIEW_CACHE_SIZE = 32


def _warehouse_version(con: Any) -> tuple[int, str]:
    """Changes whenever the warehouse does: every write (imports and event flushes alike) goes
    through the import path, which logs a row in ``_imports``."""
    log = con.table(warehouse_db.IMPORTS_TABLE)
    row = log.aggregate(n=log.count(), last=log.finished_at.max()).to_pyarrow().to_pylist()[0]
    return int(row["n"]), str(row["last"])


def _cached_overview(request: Request, con: Any, start: date, end: date, exponent: int) -> ov.Overview:
    """:func:`overview.overview`, remembered until the warehouse changes (switching language or
    coming back to the page is then instant)."""
    cfg: Settings = request.app.state.cfg
    key = (str(cfg.data_dir), start, end, exponent, _warehouse_version(con))
    with _overviews_lock:
        found = _overviews.get(key)
        if found is not None:
            _overviews.move_to_end(key)
            return found
    data = ov.overview(con, start, end, currency_exponent=exponent)
    with _overviews_lock:
        _overviews[key] = data
        while len(_overviews) > OVERVIEW_CACHE_SIZE:
            _overviews.popitem(last=False)
    return data


@router.get("/", response_class=HTMLResponse)
def overview_page(
    request: Request,
    user: User,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    days: Annotated[int | None, Query(ge=1, le=MAX_RANGE_DAYS)] = None,
) -> HTMLResponse:
    """KPI cards against the previous period, GMV / orders trend, channel and category mix, new
    vs returning buyers, for a date range (default: the last 30 days with data)."""
    lang, _ = _language(request)
    t = translator(lang)
    shop = _shop(request)
    exponent = currency_exponent(shop.currency)
    with _backend(request) as con:
        last_day = ov.last_day_with_data(con)
        if last_day is None:
            return render(request, "overview.html.j2", {"ov": None}, user=user)
        if start is None and end is None and days is None:
            days = ov.DEFAULT_DAYS
        first, last = ov.resolve_range(_parse_day(start), _parse_day(end), days, last_day)
        if (last - first).days >= MAX_RANGE_DAYS:
            first = last - timedelta(days=MAX_RANGE_DAYS - 1)
        data = _cached_overview(request, con, first, last, exponent)
    cards = []
    for c in data.cards:
        change, tone = format_change(c.change, METRICS[c.metric].higher_is_better)
        cards.append(_CardView(
            c.metric, METRIC_KEYS[c.metric], _metric_text(c.metric, c.value, shop.currency),
            _metric_text(c.metric, c.previous, shop.currency), change, tone,
        ))
    presets = [
        {"days": n, "href": f"/?days={n}",
         "active": last == last_day and (last - first).days + 1 == n}
        for n in ov.PRESETS
    ]
    context = {
        "ov": data,
        "cards": cards,
        "presets": presets,
        "trend_by_key": TREND_KEYS[data.trend_by],
        "new_buyers": format_count(data.new_buyers),
        "returning_buyers": format_count(data.returning_buyers),
        "chart_data": _chart_data(data, t, shop.currency),
    }
    return render(request, "overview.html.j2", context, user=user)


# ---------------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------------


def customer_href(customer_id: str) -> str:
    """The profile URL of a customer (the id percent-encoded)."""
    return "/customers/" + quote(customer_id, safe="")


def _money_text(money: Money | None, currency: str) -> str:
    if money is None:
        return "–"
    return format_money(Decimal(money.amount), currency)


@router.get("/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    user: User,
    q: Annotated[str, Query(max_length=2000)] = "",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> HTMLResponse:
    """Customers sorted by id with live search (HTMX swaps only the results table)."""
    q = q[:200]
    currency = _shop(request).currency
    with _backend(request) as con:
        try:
            page = customers.search_customers(
                con, query=q, limit=PAGE_SIZE, cursor=cursor,
                can_see_pii=user.can_see_pii, currency=currency,
            )
        except InvalidArgumentError:  # a stale or edited cursor: start again from the first page
            cursor = None
            page = customers.search_customers(
                con, query=q, limit=PAGE_SIZE, cursor=None,
                can_see_pii=user.can_see_pii, currency=currency,
            )
    rows = [
        {
            "customer_id": c.customer_id, "href": customer_href(c.customer_id), "name": c.name,
            "email": c.email, "phone": c.phone, "city": c.city, "channel": c.channel,
            "orders": format_count(c.kpis.orders),
            "net_revenue": _money_text(c.kpis.net_revenue, currency),
            "last_order": c.kpis.last_order_date.isoformat() if c.kpis.last_order_date else None,
        }
        for c in page.items
    ]
    query = {"q": q} if q else {}
    context = {
        "q": q,
        "customers": rows,
        "pii_masked": not user.can_see_pii,
        "search_hint_key": k("customers.search_hint_pii") if user.can_see_pii
        else k("customers.search_hint"),
        "first_href": "/customers" + ("?" + urlencode(query) if query else "") if cursor else None,
        "next_href": "/customers?" + urlencode({**query, "cursor": page.next_cursor})
        if page.next_cursor else None,
    }
    template = "_customer_results.html.j2" if _is_fragment(request) else "customers.html.j2"
    return render(request, template, context, user=user)


def _attribute_rows(profile: CustomerProfile, t: Translator, zone: ZoneInfo) -> list[dict[str, str]]:
    c = profile.customer
    place = ", ".join(p for p in (c.city, c.province, c.country) if p)
    utm = " / ".join(p for p in (c.utm_source, c.utm_medium, c.utm_campaign) if p)
    marketing = (
        "–" if c.accepts_marketing is None
        else t("common.yes") if c.accepts_marketing else t("common.no")
    )
    values = {
        "customer_id": c.customer_id,
        "email": c.email or "–",
        "phone": c.phone or "–",
        "gender": c.gender or "–",
        "birthday": c.birthday.isoformat() if c.birthday else "–",
        "location": place or "–",
        "signed_up_at": _local_time(c.signed_up_at, zone),
        "channel": profile.kpis.channel or c.channel or "–",
        "utm": utm or "–",
        "accepts_marketing": marketing,
    }
    return [{"name": name, "label_key": ATTRIBUTE_KEYS[name], "value": values[name]}
            for name in ATTRIBUTE_KEYS]


def _profile_cards(profile: CustomerProfile, currency: str) -> list[dict[str, str]]:
    kp = profile.kpis
    values = {
        "orders": format_count(kp.orders),
        "gmv": _money_text(kp.gmv, currency),
        "net_revenue": _money_text(kp.net_revenue, currency),
        "aov": _money_text(kp.aov, currency),
        "refunded": _money_text(kp.refunded, currency),
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
def customer_page(request: Request, user: User, customer_id: str) -> HTMLResponse:
    """A customer's profile: attributes (contact masked for analysts), KPIs, orders, events."""
    lang, _ = _language(request)
    t = translator(lang)
    shop = _shop(request)
    zone = ZoneInfo(shop.timezone)
    with _backend(request) as con:
        try:
            profile = customers.customer_profile(
                con, customer_id[:200], can_see_pii=user.can_see_pii, currency=shop.currency
            )
        except customers.CustomerNotFoundError:
            return _error_page(request, user, 404, k("customer.not_found"),
                               k("customer.not_found_body"), "/customers")
    orders = [
        {
            "order_id": o.order_id,
            "when": _local_time(o.ordered_at, zone),
            "status": o.status or "–",
            "status_key": STATUS_KEYS.get(o.status or ""),
            "status_class": o.status if o.status in STATUS_KEYS else "other",
            "total": _money_text(o.total, shop.currency),
            "meta": _meta(
                (k("customer.channel"), o.channel), (k("customer.coupon"), o.coupon_code),
                (k("customer.refunded"),
                 _money_text(o.refunded, shop.currency) if o.refunded and o.refunded.minor else None),
            ),
            "lines": [
                {"name": line.product_name or line.sku or "–", "sku": line.sku or "",
                 "quantity": line.quantity if line.quantity is not None else "–",
                 "total": _money_text(line.line_total, shop.currency)}
                for line in o.lines
            ],
        }
        for o in profile.orders
    ]
    events = [
        {
            "when": _local_time(e.occurred_at, zone), "type": e.type,
            "type_key": EVENT_KEYS.get(e.type), "sku": e.sku, "order_id": e.order_id,
            "meta": _meta(
                (k("customer.source"), " / ".join(p for p in (e.utm_source, e.utm_medium) if p)),
                (k("customer.device"), e.device),
                (None, e.url),
            ),
        }
        for e in profile.events
    ]
    context = {
        "profile": profile,
        "kpi_cards": _profile_cards(profile, shop.currency),
        "attributes": _attribute_rows(profile, t, zone),
        "orders": orders,
        "events": events,
    }
    return render(request, "customer.html.j2", context, user=user)


# ---------------------------------------------------------------------------------------------
# Imports
# ---------------------------------------------------------------------------------------------

#: Tables offered in the upload form, most common first.
UPLOAD_TABLES: tuple[str, ...] = tuple(TABLE_KEYS)
#: Failures the console explains in the reader's language: error code → catalogue key ({file}).
IMPORT_ERROR_KEYS = {
    "file_not_text": k("imports.error.not_text"),
    "file_not_utf8": k("imports.error.not_utf8"),
}


def _table_key(name: str | None) -> str | None:
    """The catalogue key of a table's name (aliases such as ``lines`` included)."""
    try:
        return TABLE_KEYS.get(resolve_table(name or "").name)
    except KeyError:
        return None


def _can_import(user: Principal) -> bool:
    return "ingest" in user.scopes


def _recent_imports(con: Any, zone: ZoneInfo) -> list[dict[str, Any]]:
    table = con.table(warehouse_db.IMPORTS_TABLE)
    recent: list[dict[str, Any]] = (
        table.order_by(ibis.desc("finished_at")).limit(RECENT_IMPORTS).to_pyarrow().to_pylist()
    )
    return [
        {
            "finished": _local_time(r["finished_at"], zone),
            "table": r["table_name"],
            "table_key": _table_key(r["table_name"]),
            "files": ", ".join(Path(f).name for f in (r["files"] or "").split(";") if f),
            "rows_read": format_count(r["rows_read"]),
            "inserted": format_count(r["inserted"]),
            "updated": format_count(r["updated"]),
            "quarantined": format_count(r["quarantined"]) if r["quarantined"] else 0,
        }
        for r in recent
    ]


def _imports_context(request: Request, user: Principal, form: Mapping[str, str],
                     errors: Mapping[str, str]) -> dict[str, Any]:
    zone = ZoneInfo(_shop(request).timezone)
    with _backend(request) as con:
        recent = _recent_imports(con, zone)
    active = [
        {"href": import_href(job.id), "state_key": JOB_STATE_KEYS[job.status], "state": job.status,
         "table": job.table, "table_key": _table_key(job.table),
         "files": ", ".join(job.shown_files)}
        for job in warehouse(request).jobs()
        if job.status in ("queued", "running")
    ]
    return {
        "active": active,
        "problem": None,
        "can_import": _can_import(user),
        "table_options": [{"value": name, "key": TABLE_KEYS[name]} for name in UPLOAD_TABLES],
        "format_options": [{"value": name, "key": FORMAT_KEYS[name]} for name in FORMATS],
        "form": {"table": form.get("table", "order_lines"), "format": form.get("format", "generic")},
        "errors": errors,
        "recent": recent,
    }


@router.get("/imports", response_class=HTMLResponse)
def imports_page(request: Request, user: User) -> HTMLResponse:
    """The upload form and the latest imports."""
    return render(request, "imports.html.j2", _imports_context(request, user, {}, {}), user=user)


def _save_uploads(files: list[UploadFile], folder: Path) -> list[Path]:
    return [uploads.save(upload.file, folder, upload.filename, index)
            for index, upload in enumerate(files, start=1)]


@router.post("/imports", response_class=HTMLResponse)
async def submit_import(request: Request, user: User) -> Response:
    """Save the uploaded files in a folder of their own under ``<data dir>/uploads/``, hand them
    to the warehouse owner as a background import (named as uploaded; the folder goes when the
    import ends) and redirect to the job's progress page.

    The body is read under the same size limit as the API's upload (413 beyond), then the CSRF
    token is checked."""
    request = await limited_form(request)
    await check_csrf(request)
    if not _can_import(user):
        return await run_in_threadpool(
            _error_page, request, user, 403, k("error.forbidden"), k("imports.not_allowed"), "/imports"
        )
    form = await request.form()
    table = str(form.get("table") or "")
    fmt = str(form.get("format") or "")
    files = [
        f for f in form.getlist("files")
        if isinstance(f, UploadFile) and (f.filename or f.size)
    ]
    errors: dict[str, str] = {}
    if table not in TABLE_KEYS:
        errors["table"] = k("imports.error.table")
    if fmt not in FORMAT_KEYS:
        errors["format"] = k("imports.error.format")
    if not files:
        errors["files"] = k("imports.error.files")
    if errors:
        context = await run_in_threadpool(
            _imports_context, request, user, {"table": table, "format": fmt}, errors
        )
        return render(request, "imports.html.j2", context, user=user, status=422)
    cfg: Settings = request.app.state.cfg
    names = upload_names(files)
    folder = await run_in_threadpool(uploads.new_folder, cfg.data_dir)
    try:
        paths = await run_in_threadpool(_save_uploads, files, folder)
        job_id = await run_in_threadpool(
            lambda: warehouse(request).submit_import(table, paths, fmt, names=names,
                                                     on_done=lambda _job: uploads.discard(folder)))
    except (InvalidArgumentError, ImportFileError) as exc:
        uploads.discard(folder)
        context = await run_in_threadpool(
            _imports_context, request, user, {"table": table, "format": fmt}, {}
        )
        context["problem"] = exc.message
        return render(request, "imports.html.j2", context, user=user, status=422)
    except BaseException:
        uploads.discard(folder)
        raise
    return RedirectResponse(import_href(job_id), status_code=303)


def import_href(job_id: str) -> str:
    """The progress page of an import job."""
    return "/imports/" + quote(job_id, safe="")


@dataclass
class _JobView:
    """An import job as the progress fragment shows it."""

    href: str
    state: str
    state_key: str
    finished: bool
    succeeded: bool
    table: str
    table_key: str | None
    files: str
    percent: int | None
    phase: str
    error: str | None
    counts: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    quarantine_more: bool = False


def _quarantine_of(con: Any, import_id: str) -> list[dict[str, Any]]:
    q = con.table(warehouse_db.QUARANTINE_TABLE)
    q = q.filter(q.import_id == import_id).order_by(["file", "row_number", "column_name"])
    found: list[dict[str, Any]] = q.limit(QUARANTINE_SHOWN + 1).to_pyarrow().to_pylist()
    return found


def _job_error(request: Request, job: ImportJob) -> str | None:
    """A failed job's reason: in the reader's language for failures the console knows, else the
    import's own message (files named as uploaded, never a server path)."""
    key = IMPORT_ERROR_KEYS.get(job.error_code or "")
    if key is not None and job.error_file:
        return translator(_language(request)[0])(key, file=job.error_file)
    return job_error(job)


def _job_view(request: Request, job: ImportJob, can_see_pii: bool) -> _JobView:
    finished = job.status in ("done", "failed")
    result = job.result
    fraction = job.fraction
    view = _JobView(
        href=import_href(job.id),
        state=job.status,
        state_key=JOB_STATE_KEYS[job.status],
        finished=finished,
        succeeded=job.status == "done" and result is not None,
        table=job.table,
        table_key=_table_key(job.table),
        files=", ".join(job.shown_files),
        percent=None if fraction is None else max(0, min(100, round(fraction * 100))),
        phase=job.phase or "" if job.status == "running" else "",
        error=_job_error(request, job),
    )
    if result is not None:
        main = result.tables.get("orders" if result.table == "order_lines" else result.table)
        counts = {
            "rows_read": result.rows_read,
            "inserted": main.inserted if main else 0,
            "updated": main.updated if main else 0,
            "unchanged": main.unchanged if main else 0,
            "superseded": result.superseded,
            "rows_quarantined": result.rows_quarantined,
        }
        view.counts = [
            {"name": name, "label_key": COUNT_KEYS[name], "value": format_count(value),
             "warn": name == "rows_quarantined" and value > 0}
            for name, value in counts.items()
            if name != "superseded" or value
        ]
        if counts["rows_quarantined"]:
            with _backend(request) as con:
                rows = _quarantine_of(con, result.import_id)
            view.quarantine_more = len(rows) > QUARANTINE_SHOWN
            view.quarantine = [
                {"file": Path(str(r["file"])).name, "row": r["row_number"],
                 "column": r["column_name"],
                 "value": shown_value(r["column_name"], r["value"], can_see_pii) or "",
                 "reason": r["reason"]}
                for r in rows[:QUARANTINE_SHOWN]
            ]
    return view


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def import_job_page(request: Request, user: User, job_id: str) -> HTMLResponse:
    """An import's progress (HTMX polls the fragment every second until the job is finished),
    then its counts and quarantined rows."""
    job = warehouse(request).job(job_id[:200])
    if job is None:
        return _error_page(request, user, 404, k("imports.job_not_found"),
                           k("imports.job_not_found_body"), "/imports")
    view = _job_view(request, job, user.can_see_pii)
    template = "_import_progress.html.j2" if _is_fragment(request) else "import_job.html.j2"
    return render(request, template, {"job": view}, user=user)
