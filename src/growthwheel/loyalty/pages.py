"""Console pages of the loyalty domain (moved from ``promotions.pages``; paths unchanged).

* ``GET /loyalty``: the tier ladder (edit: ``POST /loyalty/tiers``) and the members with tier,
  growth value (成长值) and points (积分); ``GET /loyalty/members/{customer_id}``: points lots with
  expiry, the ledger, the growth history and (``POST …/adjust``) a manual adjustment with a reason.

Every page needs a signed-in user; every write needs the ``write`` scope (operators, admins; others
get 403), the CSRF token, and is audited by the service it calls. The form helpers (errors next to
their fields, the shop's time zone, paging) are the promotions pages' own. Visible strings come
from ``i18n/<lang>/loyalty.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select, union
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from growthwheel.accounts.models import utcnow
from growthwheel.api.deps import DbSession, PageUser, Principal, check_csrf
from growthwheel.customers.pages import customer_href
from growthwheel.errors import GrowthwheelError
from growthwheel.loyalty import repository
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.models import GrowthEntry, Member, MemberTier, PointsAccount
from growthwheel.promotions import repository as promotions_repository
from growthwheel.promotions import rules
from growthwheel.promotions.pages.common import (
    _aware,
    _can_edit,
    _forbidden,
    _FormError,
    _integer,
    _page_number,
    _Shop,
    _shop,
)
from growthwheel.web.i18n import format_count, k
from growthwheel.web.pages import page_translator, render

router = APIRouter(include_in_schema=False)

Ref = Annotated[str, Path(min_length=1, max_length=64)]

#: Members per page of the members list.
MEMBERS_PER_PAGE = 50
#: Rows of the tier form (the ladder plus empty rows to add tiers).
TIER_ROWS = 5
#: Growth entries listed on a member's page.
GROWTH_SHOWN = 50

LEDGER_KEYS = {
    "earn": k("loyalty.kind.earn"), "redeem": k("loyalty.kind.redeem"), "expire": k("loyalty.kind.expire"),
    "adjust": k("loyalty.kind.adjust"), "clawback": k("loyalty.kind.clawback"),
    "return": k("loyalty.kind.return"),
}
GROWTH_KEYS = {"earn": k("loyalty.growth.earn"), "clawback": k("loyalty.growth.clawback")}


# ---------------------------------------------------------------------------------------------
# Loyalty: tiers, members, a member's points
# ---------------------------------------------------------------------------------------------


def _multiplier(bp: int) -> str:
    return f"{Decimal(bp) / rules.BASIS:f}".rstrip("0").rstrip(".") or "0"


def _member_ids(session: Session, q: str, page: int) -> tuple[list[str], int]:
    ids = union(select(Member.customer_id), select(PointsAccount.customer_id)).subquery()
    query = select(ids.c.customer_id)
    if q:
        query = query.where(ids.c.customer_id.startswith(q, autoescape=True))
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    found = list(session.scalars(query.order_by(ids.c.customer_id).offset((page - 1) * MEMBERS_PER_PAGE)
                                 .limit(MEMBERS_PER_PAGE)))
    return [str(c) for c in found], total


def _tier_form(shop: _Shop, tiers: list[Any]) -> list[dict[str, Any]]:
    rows = [{"code": tr.code, "name": tr.name, "min_growth": str(tr.min_growth),
             "multiplier": _multiplier(tr.points_multiplier_bp), "free_shipping": tr.free_shipping,
             "birthday_batch": tr.birthday_batch_id or ""} for tr in tiers]
    blank = {"code": "", "name": "", "min_growth": "", "multiplier": "1", "free_shipping": False,
             "birthday_batch": ""}
    return rows + [dict(blank) for _ in range(max(TIER_ROWS - len(rows), 1))]


def _loyalty_page(request: Request, user: Principal, session: Session, *,
                  tier_rows: list[dict[str, Any]] | None, tier_error: str | None) -> HTMLResponse:
    shop = _shop(request)
    tiers = repository.tiers(session)
    batches = {b.id: b.name for b in promotions_repository.all_batches(session)}
    tier_names = {tr.code: tr.name for tr in tiers}
    q = str(request.query_params.get("q") or "").strip()[:64]
    number = _page_number(request.query_params.get("page"))
    ids, total = _member_ids(session, q, number)
    members = {m.customer_id: m for m in session.scalars(select(Member).where(Member.customer_id.in_(ids)))}
    accounts = {a.customer_id: a for a in
                session.scalars(select(PointsAccount).where(PointsAccount.customer_id.in_(ids)))}
    rows = []
    for cid in ids:
        member, account = members.get(cid), accounts.get(cid)
        tier = member.tier_code if member else None
        rows.append({"id": cid, "href": f"/loyalty/members/{cid}",
                     "tier": tier_names.get(tier or "", tier or ""),
                     "growth": format_count(member.growth if member else 0),
                     "points": format_count(account.balance if account else 0),
                     "since": shop.local(member.tier_since) if member and member.tier_since else ""})
    pages = max((total + MEMBERS_PER_PAGE - 1) // MEMBERS_PER_PAGE, 1)

    def href(n: int) -> str:
        return "?" + urlencode({"q": q, "page": n} if q else {"page": n})

    context = {
        "tiers": [{"code": tr.code, "name": tr.name, "min_growth": format_count(tr.min_growth),
                   "multiplier": _multiplier(tr.points_multiplier_bp), "free_shipping": tr.free_shipping,
                   "birthday": batches.get(tr.birthday_batch_id or "", "")} for tr in tiers],
        "tier_rows": tier_rows if tier_rows is not None else _tier_form(shop, tiers),
        "tier_error": tier_error, "batches": [{"id": i, "name": n} for i, n in batches.items()],
        "members": rows, "member_total": format_count(total), "q": q, "page": number, "pages": pages,
        "prev_href": href(number - 1) if number > 1 else "",
        "next_href": href(number + 1) if number < pages else "",
        "can_edit": _can_edit(user), "window_days": loyalty.DEFAULT_PROGRAM.window_days,
    }
    return render(request, "loyalty/index.html.j2", context, user=user)


@router.get("/loyalty", response_class=HTMLResponse)
def loyalty_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The tier ladder (editable by operators and admins) and the members (search by id prefix)."""
    return _loyalty_page(request, user, session, tier_rows=None, tier_error=None)


def tier_specs(rows: list[dict[str, Any]]) -> list[loyalty.TierSpec]:
    """The ladder typed in the tier form (rows without a code are left out)."""
    specs = []
    for index, row in enumerate(rows):
        if not row["code"].strip():
            continue
        growth = row["min_growth"].strip()
        if not growth.isdigit():
            raise _FormError(f"min_growth_{index}", k("promotions.error.integer"))
        try:
            multiplier = Decimal(row["multiplier"].strip() or "1") * rules.BASIS
        except InvalidOperation:
            raise _FormError(f"multiplier_{index}", k("loyalty.error.multiplier")) from None
        if not multiplier.is_finite() or multiplier < 0 or multiplier != multiplier.to_integral_value() \
                or multiplier > 100 * rules.BASIS:
            raise _FormError(f"multiplier_{index}", k("loyalty.error.multiplier"))
        code = row["code"].strip()
        specs.append(loyalty.TierSpec(code=code, name=row["name"].strip() or code,
                                      min_growth=int(growth), points_multiplier_bp=int(multiplier),
                                      free_shipping=row["free_shipping"],
                                      birthday_batch_id=row["birthday_batch"] or None))
    return specs


@router.post("/loyalty/tiers", response_class=HTMLResponse)
async def save_tiers(request: Request, user: PageUser, session: DbSession) -> Response:
    """Replace the tier ladder (operators and admins); every member is re-evaluated against it."""
    await check_csrf(request)
    raw = await request.form()
    if not _can_edit(user):
        return _forbidden(request, user, "/loyalty")
    rows = [{"code": str(raw.get(f"code_{i}") or "")[:32], "name": str(raw.get(f"name_{i}") or "")[:100],
             "min_growth": str(raw.get(f"min_growth_{i}") or "")[:13],
             "multiplier": str(raw.get(f"multiplier_{i}") or "")[:8],
             "free_shipping": bool(raw.get(f"free_shipping_{i}")),
             "birthday_batch": str(raw.get(f"birthday_batch_{i}") or "")[:64]}
            for i in range(TIER_ROWS + 20) if f"code_{i}" in raw]
    error: str | None = None
    try:
        specs = tier_specs(rows)
        await run_in_threadpool(lambda: loyalty.set_tiers(session, specs, principal=user))
    except _FormError as exc:
        error = page_translator(request)(exc.key)
    except GrowthwheelError as exc:
        error = exc.message
    if error is not None:
        await run_in_threadpool(session.rollback)
        return await run_in_threadpool(lambda: _loyalty_page(request, user, session, tier_rows=rows,
                                                             tier_error=error))
    return RedirectResponse("/loyalty", status_code=303)


def _member_page(request: Request, user: Principal, session: Session, customer_id: str, *,
                 form: Mapping[str, str], errors: Mapping[str, str]) -> HTMLResponse:
    shop, now = _shop(request), utcnow()
    out = loyalty.member_out(session, customer_id, now)
    tier = session.get(MemberTier, out.tier) if out.tier else None
    growth = list(session.scalars(select(GrowthEntry).where(GrowthEntry.customer_id == customer_id)
                                  .order_by(GrowthEntry.effective_at.desc(), GrowthEntry.id.desc())
                                  .limit(GROWTH_SHOWN)))
    window_start = now - timedelta(days=loyalty.DEFAULT_PROGRAM.window_days)
    context = {
        "member": {"id": customer_id, "profile_href": customer_href(customer_id),
                   "tier": tier.name if tier else "", "tier_code": out.tier or "",
                   "growth": format_count(out.growth), "balance": format_count(out.points_balance),
                   "spendable": format_count(out.points_spendable),
                   "multiplier": _multiplier(tier.points_multiplier_bp) if tier else "1"},
        "lots": [{"id": lot.id, "source_key": LEDGER_KEYS.get(lot.source, k("loyalty.kind.adjust")),
                  "earned": shop.local(lot.earned_at), "expires": shop.local(lot.expires_at),
                  "points": format_count(lot.points), "remaining": format_count(lot.remaining),
                  "expired": (_aware(lot.expires_at) or now) <= now, "order": lot.order_id or ""}
                 for lot in out.lots],
        "ledger": [{"at": shop.local(e.at), "kind_key": LEDGER_KEYS.get(e.kind, k("loyalty.kind.adjust")),
                    "kind": e.kind, "points": f"{e.points:+,}", "lot": e.lot_id or "",
                    "order": e.order_id or "", "note": e.note or ""} for e in out.ledger],
        "growth": [{"at": shop.local(g.effective_at),
                    "kind_key": GROWTH_KEYS.get(g.kind, k("loyalty.growth.earn")),
                    "amount": f"{g.amount:+,}", "order": g.order_id or "",
                    "in_window": (_aware(g.effective_at) or now) > window_start} for g in growth],
        "form": form, "errors": errors, "can_edit": _can_edit(user),
        "window_days": loyalty.DEFAULT_PROGRAM.window_days,
    }
    return render(request, "loyalty/member.html.j2", context, user=user)


@router.get("/loyalty/members/{customer_id}", response_class=HTMLResponse)
def member_page(request: Request, user: PageUser, session: DbSession, customer_id: Ref) -> HTMLResponse:
    """A member: tier, growth value and its history, points balance, lots with expiry, the ledger."""
    return _member_page(request, user, session, customer_id, form={"delta": "", "note": ""}, errors={})


@router.post("/loyalty/members/{customer_id}/adjust", response_class=HTMLResponse)
async def adjust_member_points(request: Request, user: PageUser, session: DbSession,
                               customer_id: Ref) -> Response:
    """Add (a new lot) or take (soonest-to-expire first) points with a reason (operators and admins)."""
    await check_csrf(request)
    raw = await request.form()
    back = f"/loyalty/members/{customer_id}"
    if not _can_edit(user):
        return _forbidden(request, user, back)
    form = {"delta": str(raw.get("delta") or "").strip()[:14],
            "note": str(raw.get("note") or "").strip()[:500]}
    errors: dict[str, str] = {}
    try:
        delta = _integer(form, "delta", required=True)
        assert delta is not None
        if not form["note"]:
            raise _FormError("note", k("loyalty.error.reason"))
        await run_in_threadpool(lambda: loyalty.adjust_points(session, customer_id, delta, utcnow(),
                                                              note=form["note"], principal=user))
    except _FormError as exc:
        errors[exc.field] = exc.key
    except GrowthwheelError as exc:
        errors["note" if exc.message.startswith("note") else "delta"] = exc.message
    if errors:
        await run_in_threadpool(session.rollback)  # e.g. the account row locked for a refused debit
        return await run_in_threadpool(lambda: _member_page(request, user, session, customer_id, form=form,
                                                            errors=errors))
    return RedirectResponse(back, status_code=303)
