"""Promotion pages: the list, the form and create, one promotion (definition, schedule,
status and its tryout)."""


import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from growthwheel.accounts.models import utcnow
from growthwheel.api.deps import DbSession, PageUser, Principal, check_csrf
from growthwheel.errors import GrowthwheelError
from growthwheel.loyalty import repository as loyalty_repository
from growthwheel.promotions import repository, service
from growthwheel.promotions.definition import parse_definition
from growthwheel.promotions.models import (
    Promotion,
)
from growthwheel.promotions.pages.common import (
    ACTION_KEYS,
    ACTIONS,
    PROMOTION_FIELDS,
    PROMOTION_TYPES,
    TRY_LINES,
    _can_edit,
    _condition_rows,
    _forbidden,
    _FormError,
    _integer,
    _money,
    _names,
    _not_found,
    _open_edit,
    _pairs,
    _percent,
    _promotion_row,
    _refused_field,
    _Shop,
    _shop,
    _text,
    _when,
)
from growthwheel.promotions.pages.tryout import (
    _try_form,
    price_tryout,
)
from growthwheel.web.i18n import (
    k,
)
from growthwheel.web.pages import page_translator, render

router = APIRouter(include_in_schema=False)

Ref = Annotated[str, Path(min_length=1, max_length=64)]

#: Codes per page of a batch.

# Promotions: list, form, create
# ---------------------------------------------------------------------------------------------


@router.get("/promotions", response_class=HTMLResponse)
def promotions_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """Every promotion, newest first, with its state, budget burn and flash-sale stock."""
    t, shop, now = page_translator(request), _shop(request), utcnow()
    rows = [_promotion_row(t, shop, p, now) for p in repository.all_promotions(session)]
    return render(request, "promotions/index.html.j2", {"promotions": rows, "can_edit": _can_edit(user)},
                  user=user)


def _stack_choices(session: Session) -> list[dict[str, str]]:
    """What a promotion may say it combines with: the other promotions and the coupon batches."""
    found = [{"value": p.id, "label": p.name} for p in repository.all_promotions(session)]
    found += [{"value": f"coupon:{b.id}", "label": b.name, "coupon": "1"}
              for b in repository.all_batches(session)]
    return found


_PROMOTION_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(PROMOTION_FIELDS, ""), "type": "spend_tiers", "status": "active", "gift_quantity": "1",
    "priority": "0", "first_order": False, "exclusive": False, "combines_with": [],
}


#: Rows of a tier ladder the form shows at least (one more than are filled, up to the most).
TIER_ROWS, MAX_TIER_ROWS = 4, 10
_ROW_SPLIT = re.compile(r"[,，;；\n]+")
_CELL_SPLIT = re.compile(r"\s*[:：=/]\s*")


def tier_rows(text: str) -> list[tuple[str, str]]:
    """A ladder typed as ``200:20, 300:50`` as form rows ``[("200", "20"), ("300", "50")]``, padded
    with empty rows to :data:`TIER_ROWS` (one spare row beyond the filled ones)."""
    rows: list[tuple[str, str]] = []
    for part in (p.strip() for p in _ROW_SPLIT.split(text or "")):
        if part:
            cells = [*_CELL_SPLIT.split(part, maxsplit=1), ""]
            rows.append((cells[0].strip(), cells[1].strip()))
    want = min(MAX_TIER_ROWS, max(TIER_ROWS, len(rows) + 1))
    return rows[:MAX_TIER_ROWS] + [("", "")] * max(0, want - len(rows))


def ladder_text(firsts: list[str], seconds: list[str]) -> str:
    """The rows of a ladder (two lists of cells) as ``first:second, …``; empty rows are skipped, a
    half-filled row stays half-filled so that the ladder is refused with its field."""
    rows = []
    for first, second in zip(firsts, seconds, strict=False):
        first, second = first.strip(), second.strip()
        if first or second:
            rows.append(f"{first}:{second}")
    return ", ".join(rows[:MAX_TIER_ROWS])


def store_wide_unlimited(body: Mapping[str, Any]) -> bool:
    """A promotion that goes live for every product, channel and customer with no budget."""
    conditions = body["definition"]["conditions"]
    return (body["status"] == "active" and body["budget_count"] is None
            and body["budget_amount"] is None and body.get("stock") is None
            and not any(conditions[c] for c in ("skus", "categories", "channels", "first_order_only",
                                                 "min_amount", "min_quantity")))


def _promotion_form_page(request: Request, user: Principal, session: Session, form: Mapping[str, Any],
                         errors: Mapping[str, str], *, wide_warning: bool = False) -> HTMLResponse:
    context = {
        "form": form, "errors": errors, "can_edit": _can_edit(user), "types": PROMOTION_TYPES,
        "choices": _stack_choices(session), "currency": _shop(request).currency,
        "tier_rows": tier_rows(str(form.get("tiers") or "")),
        "qty_rows": tier_rows(str(form.get("qty_tiers") or "")),
        "wide_warning": wide_warning,
    }
    return render(request, "promotions/new.html.j2", context, user=user)


@router.get("/promotions/new", response_class=HTMLResponse)
def new_promotion_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The form to create and schedule a promotion (read-only users are told they cannot)."""
    return _promotion_form_page(request, user, session, dict(_PROMOTION_DEFAULTS), {})


def _reward_from_form(shop: _Shop, form: Mapping[str, Any]) -> dict[str, Any]:
    kind = _text(form, "type")
    if kind == "percent_off":
        return {"type": kind, "rate_bp": _percent(form, "percent")}
    if kind == "amount_off":
        return {"type": kind, "amount": _money(shop, form, "amount", required=True)}
    if kind == "flash_sale":
        return {"type": kind, "price": _money(shop, form, "price", required=True)}
    if kind == "spend_tiers":
        return {"type": kind, "tiers": _pairs(shop, form, "tiers", quantity=False)}
    if kind == "every_x_off_y":
        return {"type": kind, "every": _money(shop, form, "every", required=True),
                "off": _money(shop, form, "off", required=True), "cap": _money(shop, form, "cap")}
    if kind == "quantity_tiers":
        return {"type": kind, "tiers": _pairs(shop, form, "qty_tiers", quantity=True)}
    if kind == "free_shipping":
        return {"type": kind}
    if kind == "gift":
        return {"type": kind, "sku": _text(form, "gift_sku"),
                "quantity": _integer(form, "gift_quantity") or 1,
                "value": _money(shop, form, "gift_value") or 0}
    raise _FormError("type", k("promotions.error.type"))


def promotion_body(shop: _Shop, form: Mapping[str, Any]) -> dict[str, Any]:
    """The service's arguments (definition as the API's JSON) for a submitted promotion form."""
    reward = _reward_from_form(shop, form)
    definition = {
        "reward": reward,
        "conditions": {
            "skus": _names(form, "skus"), "categories": _names(form, "categories"),
            "channels": _names(form, "channels"), "first_order_only": bool(form.get("first_order")),
            "min_amount": _money(shop, form, "min_amount") or 0,
            "min_quantity": _integer(form, "min_quantity") or 0,
        },
        "exclusive": bool(form.get("exclusive")),
        "combines_with": list(form.get("combines_with") or []),
        "priority": _integer(form, "priority") or 0,
    }
    status = _text(form, "status")
    if status not in ("draft", "active"):
        raise _FormError("status", k("promotions.error.status"))
    return {
        "name": _text(form, "name"), "definition": definition, "status": status,
        "starts_at": _when(shop, form, "starts_at"), "ends_at": _when(shop, form, "ends_at"),
        "budget_count": _integer(form, "budget_count"), "budget_amount": _money(shop, form, "budget_amount"),
        "stock": _integer(form, "stock") if reward["type"] == "flash_sale" else None,
    }


@router.post("/promotions", response_class=HTMLResponse)
async def create_promotion(request: Request, user: PageUser, session: DbSession) -> Response:
    """Create the promotion and go to its page; a refused field comes back with its message."""
    await check_csrf(request)
    raw = await request.form()
    form: dict[str, Any] = {name: str(raw.get(name) or "") for name in PROMOTION_FIELDS}
    form.update(first_order=bool(raw.get("first_order")), exclusive=bool(raw.get("exclusive")),
                combines_with=[str(v) for v in raw.getlist("combines_with") if str(v).strip()][:100])
    # Tier ladders come as rows of cells (the text form ``200:20, 300:50`` still works).
    for field, first, second in (("tiers", "tier_at", "tier_off"), ("qty_tiers", "qty_at", "qty_pct")):
        if first in raw:
            form[field] = ladder_text([str(v) for v in raw.getlist(first)],
                                      [str(v) for v in raw.getlist(second)])
    if not _can_edit(user):
        return _forbidden(request, user, "/promotions")
    shop = _shop(request)
    errors: dict[str, str] = {}
    row: Promotion | None = None
    try:
        body = promotion_body(shop, form)
        if store_wide_unlimited(body) and raw.get("confirm_wide") != "1":
            # Every order of the shop would get it, with no budget: the operator confirms first.
            return await run_in_threadpool(
                lambda: _promotion_form_page(request, user, session, form, {}, wide_warning=True))
        row = await run_in_threadpool(lambda: service.create_promotion(session, principal=user, **body))
    except _FormError as exc:
        errors[exc.field] = exc.key
    except GrowthwheelError as exc:
        refused = _refused_field(exc.message, PROMOTION_FIELDS, reward_type=form["type"])
        errors[refused] = exc.text(page_translator(request))
    if row is None:
        await run_in_threadpool(session.rollback)  # nothing of a refused form is kept
        return await run_in_threadpool(_promotion_form_page, request, user, session, form, errors)
    return RedirectResponse(f"/promotions/{row.id}", status_code=303)


# ---------------------------------------------------------------------------------------------

def _combines_names(session: Session, refs: list[str]) -> str:
    named = {c["value"]: c["label"] for c in _stack_choices(session)}
    return ", ".join(named.get(r, r) for r in refs)


def _promotion_page(request: Request, user: Principal, session: Session, row: Promotion, *,
                    schedule: Mapping[str, str] | None = None,
                    schedule_errors: Mapping[str, str] | None = None) -> HTMLResponse:
    t, shop, now = page_translator(request), _shop(request), utcnow()
    view = _promotion_row(t, shop, row, now)
    definition = parse_definition(row.definition).model_dump(mode="json")
    conditions = _condition_rows(t, shop, definition["conditions"])
    stacking = {"exclusive": definition["exclusive"], "priority": definition["priority"],
                "combines_with": _combines_names(session, definition["combines_with"])}
    params = request.query_params
    form = _try_form(params)
    tryout: dict[str, Any] | None = None
    try_errors: dict[str, str] = {}
    if params.get("try"):
        try:
            tryout = price_tryout(t, shop, session, row, form, now)
        except _FormError as exc:
            try_errors[exc.field] = exc.key
    editable = _can_edit(user) and row.status != "ended"
    actions = [{"name": name, "key": ACTION_KEYS[name]} for name, status in ACTIONS.items()
               if status != row.status] if editable else []
    tiers = [tier.code for tier in loyalty_repository.tiers(session)]
    context = {
        "promo": view, "conditions": conditions, "stacking": stacking, "definition": definition,
        "created": shop.local(row.created_at), "created_by": row.created_by, "actions": actions,
        "can_edit": _can_edit(user), "try": form, "tryout": tryout, "try_errors": try_errors,
        "try_rows": range(TRY_LINES), "tiers": tiers, "can_schedule": editable,
        "schedule": schedule or {"starts_at": shop.field_time(row.starts_at),
                                 "ends_at": shop.field_time(row.ends_at)},
        "errors": schedule_errors or {},
    }
    return render(request, "promotions/detail.html.j2", context, user=user)


@router.get("/promotions/{promotion_id}", response_class=HTMLResponse)
def promotion_page(request: Request, user: PageUser, session: DbSession, promotion_id: Ref) -> HTMLResponse:
    """A promotion: definition, schedule, budget, status actions and the price-a-cart tryout."""
    row = repository.promotion(session, promotion_id)
    if row is None:
        return _not_found(request, user, "/promotions")
    return _promotion_page(request, user, session, row)


@router.post("/promotions/{promotion_id}/schedule", response_class=HTMLResponse)
async def reschedule_promotion(request: Request, user: PageUser, session: DbSession,
                               promotion_id: Ref) -> Response:
    """Move the promotion's start and end (operators and admins; an empty field keeps its time)."""
    back = f"/promotions/{promotion_id}"
    opened = await _open_edit(request, user, lambda: repository.promotion(session, promotion_id), back,
                              "/promotions")
    if isinstance(opened, Response):
        return opened
    raw, row = opened
    form = {name: str(raw.get(name) or "")[:20] for name in ("starts_at", "ends_at")}
    shop = _shop(request)
    errors: dict[str, str] = {}
    try:
        starts_at, ends_at = _when(shop, form, "starts_at"), _when(shop, form, "ends_at")
        await run_in_threadpool(lambda: service.update_promotion(session, row, starts_at=starts_at,
                                                                 ends_at=ends_at, principal=user))
    except _FormError as exc:
        errors[exc.field] = exc.key
    except GrowthwheelError as exc:
        refused = _refused_field(exc.message, ("starts_at", "ends_at"), default="ends_at")
        errors[refused] = exc.text(page_translator(request))
    if errors:
        await run_in_threadpool(session.rollback)  # the refused change is not committed with the request
        return await run_in_threadpool(lambda: _promotion_page(request, user, session, row, schedule=form,
                                                               schedule_errors=errors))
    return RedirectResponse(back, status_code=303)


@router.post("/promotions/{promotion_id}/status", response_class=HTMLResponse)
async def change_promotion_status(request: Request, user: PageUser, session: DbSession,
                                  promotion_id: Ref) -> Response:
    """Activate, pause or end the promotion (operators and admins), then back to its page."""
    back = f"/promotions/{promotion_id}"
    opened = await _open_edit(request, user, lambda: repository.promotion(session, promotion_id), back,
                              "/promotions")
    if isinstance(opened, Response):
        return opened
    raw, row = opened
    action = str(raw.get("action") or "")
    if action in ACTIONS:
        await run_in_threadpool(lambda: service.update_promotion(session, row, status=ACTIONS[action],
                                                                 principal=user))
    return RedirectResponse(back, status_code=303)


# ---------------------------------------------------------------------------------------------
