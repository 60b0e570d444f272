"""Console pages of the customer list: ``/customers`` (filters, sorting, a total, live search; HTMX
swaps only the results), its exports (``/customers.csv``, ``/customers.xlsx``), saving the list as
a segment (``POST /customers/save-segment``) and acting on a saved segment's list in one step
(``POST /customers/act/coupons``: issue a coupon batch's codes to its members).

A drill-down from an insight page opens ``/customers?def=<segment definition>&as_of=<day>&label=…``:
the customers behind a count. The list and its segment are one definition (``customers.listing``),
so a list saved as a segment and refreshed as of the same day has as many members as the list.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from growthwheel.api.deps import DbSession, PageUser, Principal, check_csrf
from growthwheel.api.warehouse import warehouse
from growthwheel.customers import listing
from growthwheel.errors import GrowthwheelError
from growthwheel.kit import export
from growthwheel.kit.money import currency_exponent
from growthwheel.promotions import repository as promotions_repository
from growthwheel.segments import repository as segments_repository
from growthwheel.segments import service as segments_service
from growthwheel.segments.definition import SegmentDefinitionError, parse_definition
from growthwheel.web.i18n import Translator, format_count, format_money, k
from growthwheel.web.pages import is_fragment, local_time, page_translator, render, shop_of

router = APIRouter(include_in_schema=False)


#: Customers per page of the list.
PAGE_SIZE = 25
#: Longest definition (JSON text) a list URL or form may carry.
MAX_DEFINITION = 20_000
#: The list's columns that sort, with their header key.
SORT_KEYS = {
    "customer_id": k("customers.col.id"), "name": k("customers.col.name"),
    "orders": k("customers.col.orders"), "net_revenue": k("customers.col.net_revenue"),
    "last_order": k("customers.col.last_order"),
}
BUYER_KEYS = {"": k("customers.filter.buyers_all"), "yes": k("customers.filter.buyers_yes"),
              "no": k("customers.filter.buyers_no")}


class ListError(Exception):
    """A list parameter that cannot be used: the field and the message (catalogue key or text)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ListError("as_of", k("customers.error.as_of")) from None


def parse_query(params: Any) -> listing.ListQuery:
    """A :class:`listing.ListQuery` from the list's query or form parameters; raises
    :class:`ListError` naming the field when one cannot be used."""
    raw = str(params.get("def") or "")
    definition = None
    if raw:
        if len(raw) > MAX_DEFINITION:
            raise ListError("def", k("customers.error.definition_size"))
        try:
            definition = parse_definition(raw)
        except SegmentDefinitionError as exc:
            raise ListError("def", exc.message) from None
    sort = str(params.get("sort") or "customer_id")
    buyers = str(params.get("buyers") or "")
    return listing.ListQuery(
        q=str(params.get("q") or "")[:200],
        definition=definition,
        as_of=_day(str(params.get("as_of") or "")[:40]),
        segment_id=str(params.get("segment") or "")[:200] or None,
        channel=str(params.get("channel") or "")[:200].strip(),
        buyers=buyers if buyers in listing.BUYERS else "",
        sort=sort if sort in SORT_KEYS else "customer_id",
        descending=params.get("dir") == "desc",
    )


def query_params(query: listing.ListQuery, raw_def: str, label: str, **changes: str) -> dict[str, str]:
    """The URL parameters of a list (empty ones left out), with ``changes``."""
    params = {
        "def": raw_def, "as_of": query.as_of.isoformat() if query.as_of else "",
        "segment": query.segment_id or "", "label": label, "q": query.q, "channel": query.channel,
        "buyers": query.buyers, "sort": query.sort if query.sort != "customer_id" else "",
        "dir": "desc" if query.descending else "",
    }
    params.update(changes)
    return {name: value for name, value in params.items() if value}


def _href(path: str, params: dict[str, str]) -> str:
    return path + ("?" + urlencode(params) if params else "")


def _context_of(request: Request, con: Any, query: listing.ListQuery) -> Any:
    return segments_service.context(request.app.state.cfg, con, query.as_of)


def _channels(con: Any) -> list[str]:
    customers = con.table("customers")
    found = customers.filter(customers.channel.notnull()).select("channel").distinct()
    return sorted(str(r["channel"]) for r in found.order_by("channel").limit(200).to_pyarrow().to_pylist())


def _can_edit(user: Principal) -> bool:
    return "write" in user.scopes


def _rows(rows: list[dict[str, Any]], t: Translator, currency: str, exponent: int, *,
          can_see_pii: bool) -> list[dict[str, Any]]:
    """The rows as shown; e-mail and phone masked unless ``can_see_pii`` (analysts never see them)."""
    from growthwheel.accounts.service import mask_email, mask_phone
    from growthwheel.customers.pages import CHANNEL_KEYS, coded, customer_href

    def contact(r: dict[str, Any]) -> tuple[Any, Any]:
        return (r["email"], r["phone"]) if can_see_pii else (mask_email(r["email"]), mask_phone(r["phone"]))

    return [
        {
            "customer_id": r["customer_id"], "href": customer_href(r["customer_id"]), "name": r["name"],
            "email": contact(r)[0], "phone": contact(r)[1], "city": r["city"],
            "channel": coded(t, CHANNEL_KEYS, r["channel"]),
            "orders": format_count(int(r["orders"])),
            "net_revenue": format_money(_major(int(r["net_minor"]), exponent), currency, places=exponent),
            "last_order": r["last_order"].isoformat() if r["last_order"] else None,
        }
        for r in rows
    ]


def _major(minor: int, exponent: int) -> Any:
    from decimal import Decimal

    return Decimal(minor).scaleb(-exponent)


def _list_context(request: Request, user: Principal, session: Any, page: int) -> tuple[dict[str, Any], int]:
    t = page_translator(request)
    params = request.query_params
    raw_def = str(params.get("def") or "")[:MAX_DEFINITION]
    label = str(params.get("label") or "")[:200]
    currency = shop_of(request).currency
    exponent = currency_exponent(currency)
    errors: dict[str, str] = {}
    try:
        query = parse_query(params)
    except ListError as exc:
        errors[exc.field] = exc.message
        query = listing.ListQuery(q=str(params.get("q") or "")[:200])
        raw_def = ""
    seg = None
    if query.segment_id:
        seg = segments_repository.segment_by_id(session, query.segment_id)
        if seg is None:
            errors["segment"] = k("customers.error.segment")
            query = listing.ListQuery(q=query.q)
    with warehouse(request).read() as con:
        ctx = _context_of(request, con, query)
        try:
            rows, total = listing.list_page(con, query, ctx, match_contact=user.can_see_pii,
                                            offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        except GrowthwheelError as exc:  # e.g. a score condition without scores
            errors["def"] = exc.message
            query = listing.ListQuery(q=query.q)
            raw_def = ""
            rows, total = listing.list_page(con, query, ctx, match_contact=user.can_see_pii,
                                            offset=0, limit=PAGE_SIZE)
        channels = _channels(con)
    base = query_params(query, raw_def, label)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    sorts = []
    for name, key in SORT_KEYS.items():
        active = query.sort == name
        flip = "" if (active and query.descending) else "desc" if active else ""
        if not active and name in ("orders", "net_revenue", "last_order"):
            flip = "desc"  # the biggest and the latest first, as an operator looks for them
        sorts.append({"name": name, "key": key, "active": active, "descending": active and query.descending,
                      "href": _href("/customers", {**base, "sort": name, "dir": flip})})
    filtered = bool(raw_def or query.channel or query.buyers)
    batches = [{"id": b.id, "name": b.name} for b in promotions_repository.all_batches(session) if b.active] \
        if seg is not None and _can_edit(user) else []
    context = {
        "q": query.q, "label": label, "raw_def": raw_def, "total": format_count(total), "total_n": total,
        "as_of": ctx.as_of.isoformat(), "channel": query.channel, "buyers": query.buyers,
        "sort": query.sort, "dir": "desc" if query.descending else "",
        "channels": channels, "buyer_options": [{"value": v, "key": key} for v, key in BUYER_KEYS.items()],
        "sorts": sorts, "errors": errors,
        "customers": _rows(rows, t, currency, exponent, can_see_pii=user.can_see_pii),
        "pii_masked": not user.can_see_pii,
        "search_hint_key": k("customers.search_hint_pii") if user.can_see_pii else k("customers.search_hint"),
        "page": page, "pages": pages,
        "prev_href": _href("/customers", {**base, "page": str(page - 1)}) if page > 1 else None,
        "next_href": _href("/customers", {**base, "page": str(page + 1)}) if page < pages else None,
        "first_href": _href("/customers", base) if page > 1 else None,
        "csv_href": _href("/customers.csv", base), "xlsx_href": _href("/customers.xlsx", base),
        "can_save": _can_edit(user) and filtered and not query.q and seg is None and not errors,
        "segment": {"id": seg.id, "name": seg.name,
                    "refreshed": local_time(seg.refreshed_at, ZoneInfo(shop_of(request).timezone))
                    if seg.refreshed_at else "",
                    "href": f"/segments/{seg.id}",
                    "experiment_href": _href("/experiments/new", {"segment": seg.name}),
                    "journey_href": _href("/journeys/new", {"segment": seg.id})} if seg else None,
        "saved": params.get("saved") == "1",
        "batches": batches, "can_edit": _can_edit(user),
        "clear_href": "/customers",
    }
    return context, 400 if errors else 200


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 1_000_000 else 1


@router.get("/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    user: PageUser,
    session: DbSession,
    page: Annotated[str | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    """Customers filtered (a drill-down's definition, a saved segment, channel, buyers, search),
    sorted by any column, with their total, pages, CSV / Excel export, and — for a filtered list —
    saving it as a segment, for a saved segment's list the actions on it."""
    context, status = _list_context(request, user, session, _page_number(page))
    template = "customers/_results.html.j2" if is_fragment(request) else "customers/index.html.j2"
    return render(request, template, context, user=user, status=status)


def _export(request: Request, user: Principal, kind: str) -> Response:
    shop = shop_of(request)
    exponent = currency_exponent(shop.currency)
    try:
        query = parse_query(request.query_params)
    except ListError as exc:
        t = page_translator(request)
        message = t(exc.message) if exc.message.startswith("customers.") else exc.message
        return Response(json.dumps({"type": "about:blank", "title": "Bad Request", "status": 400,
                                    "detail": message, "field": exc.field}, ensure_ascii=False),
                        status_code=400, media_type="application/problem+json")
    header = [*listing.EXPORT_COLUMNS[:-2], f"net_revenue_{shop.currency.lower()}", "last_order"]
    with warehouse(request).read() as con:
        ctx = _context_of(request, con, query)
        rows = list(listing.export_rows(con, query, ctx, can_see_pii=user.can_see_pii, exponent=exponent,
                                        zone=ZoneInfo(shop.timezone)))
    headers = {"Content-Disposition": f'attachment; filename="customers.{kind}"', "Cache-Control": "no-store"}
    if kind == "xlsx":
        try:
            data = export.xlsx_bytes(header, rows, sheet="customers")
        except export.TooManyRowsError as exc:
            return Response(json.dumps({"type": "about:blank", "title": "Bad Request", "status": 400,
                                        "detail": str(exc), "field": "format"}),
                            status_code=400, media_type="application/problem+json")
        return Response(data, media_type=export.XLSX_MEDIA_TYPE, headers=headers)
    return Response("".join(export.csv_chunks(header, rows)), media_type="text/csv; charset=utf-8",
                    headers=headers)


@router.get("/customers.csv")
def customers_csv(request: Request, user: PageUser) -> Response:
    """The list as CSV (every page, sorted as shown; contact masked for analysts)."""
    return _export(request, user, "csv")


@router.get("/customers.xlsx")
def customers_xlsx(request: Request, user: PageUser) -> Response:
    """The list as an Excel workbook (cells escaped as in the CSV)."""
    return _export(request, user, "xlsx")


def _save(request: Request, session: Any, user: Principal,
          form: dict[str, str]) -> tuple[str | None, str, str]:
    """Save and refresh (as of the list's day); ``(segment id, "", "")`` or ``(None, field, message)``."""
    try:
        query = parse_query(form)
    except ListError as exc:
        return None, exc.field, exc.message
    if query.q or query.segment_id:
        return None, "q", k("customers.error.save_search")
    node = listing.filter_definition(query)
    if node is None:
        return None, "def", k("customers.error.save_nothing")
    owner = warehouse(request)
    try:
        name = segments_service.check_name(form.get("name", ""))
    except GrowthwheelError:
        return None, "name", k("customers.error.name")
    if segments_repository.segment_by_name(session, name) is not None:
        return None, "name", k("customers.error.name_taken")
    try:
        seg = segments_service.create_segment(session, name, node, principal=user)
        with owner.read() as con:
            ctx = _context_of(request, con, query)
        segments_service.refresh_segment(session, seg, ctx, owner.run_write, principal=user)
    except GrowthwheelError as exc:
        session.rollback()
        return None, "name", exc.message
    return seg.id, "", ""


@router.post("/customers/save-segment", response_class=HTMLResponse)
async def save_list_as_segment(request: Request, user: PageUser, session: DbSession) -> Response:
    """Save the filtered list as a segment (operators and admins) and refresh it as of the list's
    day; then open the segment's list with the actions on it."""
    await check_csrf(request)
    data = await request.form()
    form = {name: str(data.get(name) or "")[:MAX_DEFINITION]
            for name in ("name", "def", "as_of", "channel", "buyers", "q", "label")}
    t = page_translator(request)
    if not _can_edit(user):
        return render(request, "error.html.j2",
                      {"title_key": k("error.forbidden"), "message_key": k("customers.error.not_allowed"),
                       "back_href": "/customers"}, user=user, status=403)
    seg_id, bad, message = await run_in_threadpool(_save, request, session, user, form)
    if seg_id is None:
        context, _status = await run_in_threadpool(
            lambda: _list_context(request, user, session, 1))
        shown = t(message) if message.startswith("customers.") else message
        context["errors"] = {**context["errors"], "save_" + bad: shown}
        context["save_name"] = form["name"]
        return render(request, "customers/index.html.j2", context, user=user, status=422)
    return RedirectResponse(_href("/customers", {"segment": seg_id, "saved": "1"}), status_code=303)


_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@router.post("/customers/act/coupons")
async def issue_coupons_to_segment(request: Request, user: PageUser) -> Response:
    """Issue a coupon batch's codes to a saved segment's members in one step: the form (``batch``,
    ``segment``, CSRF token) goes on, as it is (307), to the batch's issue form handler, which
    warns first when the audience cannot redeem the batch or exceeds its budget."""
    await check_csrf(request)
    data = await request.form()
    batch = str(data.get("batch") or "")
    if not _SAFE_ID.match(batch):
        return render(request, "error.html.j2",
                      {"title_key": k("customers.error.batch_title"),
                       "message_key": k("customers.error.batch"),
                       "back_href": _href("/customers", {"segment": str(data.get("segment") or "")[:64]})},
                      user=user, status=422)
    return RedirectResponse(f"/coupons/{batch}/issue", status_code=307)
