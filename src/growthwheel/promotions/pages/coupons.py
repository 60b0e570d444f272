"""Coupon pages: batches with their burn, the form and create, one batch (burn chart, codes,
CSV, generate, issue)."""


import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from growthwheel.accounts.models import utcnow
from growthwheel.api.deps import DbSession, PageUser, Principal, check_csrf
from growthwheel.api.warehouse import warehouse
from growthwheel.customers.pages import customer_href
from growthwheel.errors import GrowthwheelError
from growthwheel.kit import export
from growthwheel.promotions import coupons, issue_checks, repository, service
from growthwheel.promotions.models import (
    CouponBatch,
    CouponCode,
    CouponRedemption,
)
from growthwheel.promotions.pages.common import (
    _SPLIT,
    CODE_MODES,
    CODES_PER_PAGE,
    COUPON_FIELDS,
    COUPON_KINDS,
    RELEASE_KEYS,
    STATE_BADGE,
    STATE_KEYS,
    _aware,
    _can_edit,
    _forbidden,
    _FormError,
    _integer,
    _money,
    _names,
    _not_found,
    _open_edit,
    _page_number,
    _percent,
    _refused_field,
    _Shop,
    _shop,
    _text,
    _when,
    reward_text,
)
from growthwheel.segments import repository as segments_repository
from growthwheel.segments import service as segments_service
from growthwheel.web.i18n import (
    Translator,
    format_count,
    format_money,
    k,
)
from growthwheel.web.pages import page_translator, render

router = APIRouter(include_in_schema=False)

Ref = Annotated[str, Path(min_length=1, max_length=64)]

#: Codes per page of a batch.

# Coupons: burn, list, form, create
# ---------------------------------------------------------------------------------------------


def _code_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(CouponCode.batch_id, func.count()).group_by(CouponCode.batch_id))
    return {str(batch_id): int(count) for batch_id, count in rows}


def _share(used: int, limit: int | None) -> float | None:
    return None if not limit else min(used / limit, 1.0)


def _batch_view(t: Translator, shop: _Shop, batch: CouponBatch, codes: int, now: datetime) -> dict[str, Any]:
    definition = batch.definition
    reward = definition.get("reward", {})
    threshold = definition.get("conditions", {}).get("min_amount", 0)
    valid_until, valid_from = _aware(batch.valid_until), _aware(batch.valid_from)
    assert valid_until is not None
    assert valid_from is not None
    if not batch.active:
        state = "paused"
    else:
        state = "ended" if now >= valid_until else "scheduled" if now < valid_from else "live"
    share_count, share_amount = _share(batch.used_count, batch.budget_count), \
        _share(batch.used_amount, batch.budget_amount)
    burn = max((s for s in (share_count, share_amount) if s is not None), default=None)
    return {
        "id": batch.id, "href": f"/coupons/{batch.id}", "name": batch.name,
        "reward": reward_text(t, shop, reward),
        "threshold": shop.money(threshold) if threshold else "",
        "mode_key": CODE_MODES[batch.code_mode], "shared_code": batch.shared_code or "",
        "valid": f"{shop.local(batch.valid_from)} – {shop.local(batch.valid_until)}",
        "state": state, "state_key": STATE_KEYS[state], "badge": STATE_BADGE[state],
        "codes": format_count(codes), "issued": format_count(batch.issued_count),
        "redeemed": format_count(batch.used_count),
        "budget_count": format_count(batch.budget_count) if batch.budget_count is not None else "",
        "remaining": (format_count(batch.budget_count - batch.used_count)
                      if batch.budget_count is not None else ""),
        "spent": shop.money(batch.used_amount),
        "budget_amount": shop.money(batch.budget_amount) if batch.budget_amount is not None else "",
        "money_left": (shop.money(batch.budget_amount - batch.used_amount)
                       if batch.budget_amount is not None else ""),
        "burn": f"{burn:.0%}" if burn is not None else "",
        "burn_value": round(burn * 100) if burn is not None else None,
        "per_customer": format_count(batch.per_customer_limit),
        "release_key": RELEASE_KEYS.get(batch.release_on_refund, k("coupons.release.never")),
    }


@router.get("/coupons", response_class=HTMLResponse)
def coupons_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """Every coupon batch with its budget burn, newest first."""
    t, shop, now = page_translator(request), _shop(request), utcnow()
    counts = _code_counts(session)
    rows = [_batch_view(t, shop, b, counts.get(b.id, 0), now) for b in repository.all_batches(session)]
    return render(request, "coupons/index.html.j2", {"batches": rows, "can_edit": _can_edit(user)}, user=user)


def _coupon_form_page(request: Request, user: Principal, form: Mapping[str, Any],
                      errors: Mapping[str, str]) -> HTMLResponse:
    context = {"form": form, "errors": errors, "can_edit": _can_edit(user), "kinds": COUPON_KINDS,
               "modes": CODE_MODES, "releases": RELEASE_KEYS, "currency": _shop(request).currency}
    return render(request, "coupons/new.html.j2", context, user=user)


@router.get("/coupons/new", response_class=HTMLResponse)
def new_coupon_page(request: Request, user: PageUser) -> HTMLResponse:
    """The form to generate a coupon batch: valid from now for 30 days, one use per customer."""
    shop = _shop(request)
    now = utcnow().replace(second=0, microsecond=0)
    form = {**dict.fromkeys(COUPON_FIELDS, ""), "kind": "amount", "code_mode": "unique", "count": "0",
            "per_customer_limit": "1", "release_on_refund": "full_refund_within_validity",
            "valid_from": shop.field_time(now), "valid_until": shop.field_time(now + timedelta(days=30)),
            "first_order": False}
    return _coupon_form_page(request, user, form, {})


def coupon_body(shop: _Shop, form: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The service's arguments for a submitted coupon form, and how many codes to generate."""
    kind = _text(form, "kind")
    if kind == "amount":
        reward: dict[str, Any] = {"type": "order_amount_off",
                                  "amount": _money(shop, form, "amount", required=True)}
    elif kind == "percent":
        reward = {"type": "order_percent_off", "rate_bp": _percent(form, "percent"),
                  "cap": _money(shop, form, "cap")}
    else:
        raise _FormError("kind", k("promotions.error.type"))
    definition = {"reward": reward,
                  "conditions": {"min_amount": _money(shop, form, "threshold") or 0,
                                 "categories": _names(form, "categories"),
                                 "first_order_only": bool(form.get("first_order"))}}
    valid_from, valid_until = _when(shop, form, "valid_from"), _when(shop, form, "valid_until")
    if valid_from is None:
        raise _FormError("valid_from", k("promotions.error.required"))
    if valid_until is None:
        raise _FormError("valid_until", k("promotions.error.required"))
    mode = _text(form, "code_mode")
    count = _integer(form, "count") or 0
    if count < 0 or count > coupons.MAX_GENERATE:
        raise _FormError("count", k("coupons.error.count"))
    body = {
        "name": _text(form, "name"), "definition": definition, "valid_from": valid_from,
        "valid_until": valid_until, "code_mode": mode, "shared_code": _text(form, "shared_code") or None,
        "budget_count": _integer(form, "budget_count"), "budget_amount": _money(shop, form, "budget_amount"),
        "per_customer_limit": _integer(form, "per_customer_limit") or 1,
        "release_on_refund": _text(form, "release_on_refund"),
    }
    return body, (count if mode == "unique" else 0)


def _create_batch(session: Session, user: Principal, body: dict[str, Any], count: int) -> CouponBatch:
    batch = coupons.create_batch(session, principal=user, **body)
    if count:
        coupons.generate_codes(session, batch, count, principal=user)
    return batch


@router.post("/coupons", response_class=HTMLResponse)
async def create_coupon_batch(request: Request, user: PageUser, session: DbSession) -> Response:
    """Create the batch (and generate its codes) and go to its page; a refused field comes back."""
    await check_csrf(request)
    raw = await request.form()
    form: dict[str, Any] = {name: str(raw.get(name) or "") for name in COUPON_FIELDS}
    form["first_order"] = bool(raw.get("first_order"))
    if not _can_edit(user):
        return _forbidden(request, user, "/coupons")
    errors: dict[str, str] = {}
    batch: CouponBatch | None = None
    try:
        body, count = coupon_body(_shop(request), form)
        batch = await run_in_threadpool(_create_batch, session, user, body, count)
    except _FormError as exc:
        errors[exc.field] = exc.key
    except GrowthwheelError as exc:
        field = _refused_field(exc.message, COUPON_FIELDS)
        if exc.message.startswith("valid_from / valid_until"):
            field = "valid_until"
        errors[{"percent": "percent", "amount": "amount"}.get(field, field)] = exc.text(
            page_translator(request))
    if batch is None:
        await run_in_threadpool(session.rollback)  # nothing of a refused form is kept
        return _coupon_form_page(request, user, form, errors)
    return RedirectResponse(f"/coupons/{batch.id}", status_code=303)


# ---------------------------------------------------------------------------------------------
# One batch: burn chart, codes, CSV, generate, issue
# ---------------------------------------------------------------------------------------------


def burn_series(shop: _Shop, redemptions: list[CouponRedemption]) -> list[dict[str, Any]]:
    """Per shop-local day: redemptions and discount (net of releases, on the day of the release),
    and their running totals, which end at the batch's ``used_count`` / ``used_amount``."""
    moves: dict[str, list[int]] = {}
    for r in redemptions:
        day = shop.local(r.redeemed_at)[:10]
        moves.setdefault(day, [0, 0])
        moves[day][0] += 1
        moves[day][1] += r.discount
        if r.status == "released" and r.released_at is not None:
            back = shop.local(r.released_at)[:10]
            moves.setdefault(back, [0, 0])
            moves[back][0] -= 1
            moves[back][1] -= r.discount
    series = []
    count = amount = 0
    for day in sorted(moves):
        count += moves[day][0]
        amount += moves[day][1]
        series.append({"day": day, "count": moves[day][0], "amount": moves[day][1], "cum_count": count,
                       "cum_amount": amount, "cum_major": float(Decimal(amount).scaleb(-shop.exponent))})
    return series


#: Longest stretch of days the burn chart draws (the latest ones).
BURN_DAYS = 120


def burn_days(shop: _Shop, series: list[dict[str, Any]], batch: CouponBatch,
              now: datetime) -> tuple[list[str], list[float], list[int]]:
    """Every shop-local day from the batch's start to today (or its end), with the cumulative
    discount (major units) and redemptions carried over days without any; the latest
    :data:`BURN_DAYS` days. Empty when nothing was redeemed."""
    if not series:
        return [], [], []
    first = min(datetime.fromisoformat(shop.local(batch.valid_from)[:10]).date(),
                datetime.fromisoformat(series[0]["day"]).date())
    until = min(_aware(batch.valid_until) or now, now)
    last = max(datetime.fromisoformat(shop.local(until)[:10]).date(),
               datetime.fromisoformat(series[-1]["day"]).date())
    first = max(first, last - timedelta(days=BURN_DAYS - 1))
    by_day = {s["day"]: s for s in series}
    before = [s for s in series if s["day"] < first.isoformat()]
    amount, count = (before[-1]["cum_major"], before[-1]["cum_count"]) if before else (0.0, 0)
    days, spent, redeemed = [], [], []
    day = first
    while day <= last:
        found = by_day.get(day.isoformat())
        if found is not None:
            amount, count = found["cum_major"], found["cum_count"]
        days.append(day.isoformat())
        spent.append(amount)
        redeemed.append(count)
        day += timedelta(days=1)
    return days, spent, redeemed


def _codes_page(session: Session, batch_id: str, page: int) -> tuple[list[CouponCode], int]:
    total = int(session.scalar(select(func.count()).select_from(CouponCode)
                               .where(CouponCode.batch_id == batch_id)) or 0)
    rows = list(session.scalars(select(CouponCode).where(CouponCode.batch_id == batch_id)
                                .order_by(CouponCode.created_at, CouponCode.code)
                                .offset((page - 1) * CODES_PER_PAGE).limit(CODES_PER_PAGE)))
    return rows, total


def _mask(code: str) -> str:
    return code[:4] + "•" * max(len(code) - 4, 4)


def _batch_page(request: Request, user: Principal, session: Session, batch: CouponBatch, *, page: int = 1,
                notice: str | None = None, errors: Mapping[str, str] | None = None,
                form: Mapping[str, str] | None = None,
                issue_warnings: list[str] | None = None) -> HTMLResponse:
    t, shop, now = page_translator(request), _shop(request), utcnow()
    codes, total = _codes_page(session, batch.id, page)
    view = _batch_view(t, shop, batch, total, now)
    redemptions = list(session.scalars(select(CouponRedemption).where(CouponRedemption.batch_id == batch.id)
                                       .order_by(CouponRedemption.redeemed_at)))
    series = burn_series(shop, redemptions)
    can_edit = _can_edit(user)
    days, spent, redeemed = burn_days(shop, series, batch, now)
    chart = {
        "days": days, "spent": spent, "redeemed": redeemed,
        "symbol": format_money(Decimal(0), shop.currency, places=0)[:-1],  # "¥0" → "¥"
        "budget": (float(Decimal(batch.budget_amount).scaleb(-shop.exponent))
                   if batch.budget_amount is not None else None),
        "budget_count": batch.budget_count,
        "labels": {"spent": t(k("coupons.chart.spent")), "redeemed": t(k("coupons.chart.redeemed")),
                   "budget": t(k("coupons.chart.budget")), "budget_count": t(k("coupons.chart.budget_count")),
                   "empty": t(k("coupons.chart.empty"))},
    }
    pages = max((total + CODES_PER_PAGE - 1) // CODES_PER_PAGE, 1)
    code_rows = [{"code": c.code if can_edit else _mask(c.code), "customer": c.customer_id or "",
                  "customer_href": customer_href(c.customer_id) if c.customer_id else "",
                  "issue_key": c.issue_key or "", "issued": shop.local(c.issued_at) if c.issued_at else "",
                  "uses": format_count(c.uses),
                  "max_uses": format_count(c.max_uses) if c.max_uses is not None else "∞"} for c in codes]
    segments = [{"id": s.id, "name": s.name,
                 "members": format_count(s.members) if s.members is not None else "–"}
                for s in segments_repository.all_segments(session)]
    context = {
        "batch": view, "codes": code_rows, "page": page, "pages": pages, "code_total": format_count(total),
        "prev_href": f"?page={page - 1}" if page > 1 else "",
        "next_href": f"?page={page + 1}" if page < pages else "",
        "chart": chart, "series": [{**s, "amount_text": shop.money(s["amount"]),
                                    "cum_text": shop.money(s["cum_amount"])} for s in series[-30:]],
        "can_edit": can_edit, "segments": segments, "notice": notice, "errors": errors or {},
        "form": form or {"count": "", "customers": "", "segment": ""},
        "unique": batch.code_mode == "unique", "csv_href": f"/coupons/{batch.id}/codes.csv",
        "issue_warnings": issue_warnings or [],
    }
    return render(request, "coupons/detail.html.j2", context, user=user)


@router.get("/coupons/{batch_id}", response_class=HTMLResponse)
def coupon_batch_page(request: Request, user: PageUser, session: DbSession, batch_id: Ref,
                      page: Annotated[str | None, Query(max_length=8)] = None) -> HTMLResponse:
    """A batch: its rules, burn numbers and chart, its codes (paginated), generate and issue forms."""
    batch = repository.batch(session, batch_id)
    if batch is None:
        return _not_found(request, user, "/coupons")
    t = page_translator(request)
    params = request.query_params
    notice = None
    issued, already, generated = params.get("issued"), params.get("already"), params.get("generated")
    if issued and issued.isdigit() and already and already.isdigit():
        notice = t(k("coupons.issued_notice"), issued=format_count(int(issued)),
                   already=format_count(int(already)))
    elif generated and generated.isdigit():
        notice = t(k("coupons.generated_notice"), count=format_count(int(generated)))
    return _batch_page(request, user, session, batch, page=_page_number(page), notice=notice)


def _csv_rows(session: Session, batch_id: str, zone: ZoneInfo) -> Iterator[str]:
    """The batch's codes as CSV, through the export writer (customer ids and issue keys come from
    outside: a formula-like one is defused)."""

    def rows() -> Iterator[list[Any]]:
        offset = 0
        while True:
            chunk = list(session.scalars(select(CouponCode).where(CouponCode.batch_id == batch_id)
                                         .order_by(CouponCode.created_at, CouponCode.code)
                                         .offset(offset).limit(5000)))
            for c in chunk:
                issued = _aware(c.issued_at)
                yield [c.code, c.customer_id, c.issue_key,
                       issued.astimezone(zone).isoformat() if issued else None, c.uses, c.max_uses]
            if len(chunk) < 5000:
                return
            offset += 5000

    return export.csv_chunks(["code", "customer_id", "issue_key", "issued_at", "uses", "max_uses"], rows())


@router.get("/coupons/{batch_id}/codes.csv")
def coupon_codes_csv(request: Request, user: PageUser, session: DbSession, batch_id: Ref) -> Response:
    """Every code of the batch as CSV (operators and admins: codes are bearer vouchers)."""
    if not _can_edit(user):
        return _forbidden(request, user, f"/coupons/{batch_id}")
    batch = repository.batch(session, batch_id)
    if batch is None:
        return _not_found(request, user, "/coupons")
    rows = list(_csv_rows(session, batch.id, _shop(request).zone))  # read before the session closes
    filename = re.sub(r"[^A-Za-z0-9_-]+", "_", batch.name)[:60] or "coupons"
    return StreamingResponse(iter(rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}-codes.csv"',
                                      "Cache-Control": "no-store"})


@router.post("/coupons/{batch_id}/generate", response_class=HTMLResponse)
async def generate_coupon_codes(request: Request, user: PageUser, session: DbSession,
                                batch_id: Ref) -> Response:
    """Generate bearer codes for a unique batch (operators and admins)."""
    back = f"/coupons/{batch_id}"
    opened = await _open_edit(request, user, lambda: repository.batch(session, batch_id), back, "/coupons")
    if isinstance(opened, Response):
        return opened
    raw, batch = opened
    text = str(raw.get("count") or "").strip()[:8]
    form = {"count": text, "customers": "", "segment": ""}
    error: str | None = None
    if not text.isdigit() or not 1 <= int(text) <= coupons.MAX_GENERATE:
        error = k("coupons.error.count")
    else:
        try:
            await run_in_threadpool(lambda: coupons.generate_codes(session, batch, int(text), principal=user))
        except GrowthwheelError as exc:
            error = exc.text(page_translator(request))
    if error is not None:
        await run_in_threadpool(session.rollback)
        return await run_in_threadpool(lambda: _batch_page(request, user, session, batch, form=form,
                                                           errors={"count": error}))
    return RedirectResponse(f"{back}?generated={int(text)}", status_code=303)


def _issue(request: Request, session: Session, user: Principal, batch: CouponBatch, customers: list[str],
           segment_id: str, *, confirmed: bool) -> coupons.IssueResult | list[str]:
    """Issue, or (not ``confirmed`` and something to warn about) the warnings, issuing nothing."""
    key = None
    with warehouse(request).read() as backend:
        if segment_id:
            seg = segments_service.get_segment(session, segment_id)
            customers = service.segment_member_ids(backend, seg.id)
            key = f"segment:{seg.id}"
        if not confirmed:
            _fresh, found = issue_checks.issue_warnings(session, backend, batch, customers, issue_key=key)
            if found:
                t = page_translator(request)
                return [issue_checks.warning_text(t, w) for w in found]
    return coupons.issue(session, batch, customers, issue_key=key, principal=user)


@router.post("/coupons/{batch_id}/issue", response_class=HTMLResponse)
async def issue_coupon_codes(request: Request, user: PageUser, session: DbSession, batch_id: Ref) -> Response:
    """Give each listed customer, or each current member of a saved segment, their own code
    (operators and admins); a segment is served once (issue key ``segment:<id>``)."""
    back = f"/coupons/{batch_id}"
    opened = await _open_edit(request, user, lambda: repository.batch(session, batch_id), back, "/coupons")
    if isinstance(opened, Response):
        return opened
    raw, batch = opened
    typed = str(raw.get("customers") or "")[:2_000_000]
    customers = [c for c in _SPLIT.split(typed) if c]
    segment_id = str(raw.get("segment") or "").strip()[:200]
    form = {"count": "", "customers": typed[:5000], "segment": segment_id}
    target = "segment" if segment_id else "customers"
    error: str | None = None
    if bool(customers) == bool(segment_id):
        error = k("coupons.error.issue_target")
    else:
        try:
            confirmed = raw.get("confirm") == "1"
            outcome = await run_in_threadpool(lambda: _issue(request, session, user, batch, customers,
                                                             segment_id, confirmed=confirmed))
        except GrowthwheelError as exc:
            error = exc.text(page_translator(request))
        else:
            if isinstance(outcome, list):  # warnings first: the operator confirms or changes the audience
                await run_in_threadpool(session.rollback)
                asked = {**form, "customers_full": typed}
                return await run_in_threadpool(lambda: _batch_page(request, user, session, batch, form=asked,
                                                                   issue_warnings=outcome))
            result = outcome
    if error is not None:
        await run_in_threadpool(session.rollback)
        return await run_in_threadpool(lambda: _batch_page(request, user, session, batch, form=form,
                                                           errors={target: error}))
    query = urlencode({"issued": len(result.issued), "already": len(result.already)})
    return RedirectResponse(f"{back}?{query}", status_code=303)
