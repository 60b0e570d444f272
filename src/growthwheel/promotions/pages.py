"""Console pages of the promotions domain: promotions and coupons with their budget burn (membership
tiers, members and their points: ``loyalty.pages``, which shares this module's form helpers).

* ``GET /promotions``: every promotion with its type, layer, schedule and state (draft, scheduled,
  live, paused, ended), budget used against its limit and, for a flash sale (秒杀), stock sold.
* ``GET /promotions/new`` and ``POST /promotions`` (form, CSRF; operators and admins): create and
  schedule a promotion of the main reward types (item percentage / amount off, flash sale with
  stock, 满减 tiers, 每满减, 满件折, free shipping, gift) with its conditions and stacking. The
  form becomes the definition JSON the API takes and goes through the same service
  (:func:`growthwheel.promotions.service.create_promotion`, i.e. ``definition.parse_definition``
  and the pricing core's own checks); a refused field is shown next to it.
* ``GET /promotions/{id}``: definition, schedule, budget and a **price-a-cart tryout** (a ``GET``
  form: a few lines, channel, first order, tier) priced by the pure core
  (:func:`growthwheel.promotions.rules.price_cart`) with this promotion (and optionally every
  other live one): the priced lines, what applied, what did not and why, and the "spend X more"
  nudges. ``POST /promotions/{id}/status`` activates, pauses or ends it; ``POST …/schedule``
  moves its start and end.
* ``GET /coupons``: coupon batches with their burn (codes, issued, redeemed, remaining, discount
  spent against the money budget); ``GET /coupons/new`` and ``POST /coupons`` generate a batch;
  ``GET /coupons/{id}``: the batch, its burn chart (discount spent per day, cumulative, against
  the budget; ``static/promotions.js``), its codes (paginated; codes masked for read-only users)
  and ``GET /coupons/{id}/codes.csv``; ``POST /coupons/{id}/generate`` and ``/issue`` (to
  customers or every member of a saved segment).

Every page needs a signed-in user; every write needs the ``write`` scope (operators, admins; others
get 403), the CSRF token, and is audited by the service it calls. A refused form comes back (200,
like any re-shown form) with each message next to its field. Amounts are typed in major units of the shop's
currency (parsed exactly, :func:`growthwheel.kit.money.parse_major`) and shown with
:func:`growthwheel.web.i18n.format_money`. Visible strings come from ``i18n/<lang>/promotions.json``;
keys chosen here are marked with :func:`k`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from growthwheel.accounts.models import utcnow
from growthwheel.api.deps import DbSession, Principal, check_csrf, current_user_page
from growthwheel.api.warehouse import warehouse
from growthwheel.customers.pages import customer_href
from growthwheel.errors import GrowthwheelError
from growthwheel.kit import export
from growthwheel.kit.money import currency_exponent, major_text, parse_major
from growthwheel.loyalty import repository as loyalty_repository
from growthwheel.promotions import coupons, repository, rules, service
from growthwheel.promotions.definition import parse_definition
from growthwheel.promotions.models import (
    CouponBatch,
    CouponCode,
    CouponRedemption,
    Promotion,
)
from growthwheel.segments import repository as segments_repository
from growthwheel.segments import service as segments_service
from growthwheel.web.i18n import (
    COOKIE,
    LANGS,
    Translator,
    choose_language,
    format_count,
    format_money,
    k,
    translator,
)
from growthwheel.web.pages import render

router = APIRouter(include_in_schema=False)

User = Annotated[Principal, Depends(current_user_page)]
Ref = Annotated[str, Path(min_length=1, max_length=64)]

#: Codes per page of a batch.
CODES_PER_PAGE = 50
#: Lines of the tryout form.
TRY_LINES = 4

#: Reward types the promotion form offers (item rewards first), by form value.
PROMOTION_TYPES: dict[str, str] = {
    "percent_off": k("promotions.type.percent_off"),
    "amount_off": k("promotions.type.amount_off"),
    "flash_sale": k("promotions.type.flash_sale"),
    "spend_tiers": k("promotions.type.spend_tiers"),
    "every_x_off_y": k("promotions.type.every_x_off_y"),
    "quantity_tiers": k("promotions.type.quantity_tiers"),
    "free_shipping": k("promotions.type.free_shipping"),
    "gift": k("promotions.type.gift"),
}
#: Names of the other reward types (created through the API or the CLI), for the lists.
OTHER_TYPES: dict[str, str] = {
    "member_price": k("promotions.type.member_price"),
    "nth_item": k("promotions.type.nth_item"),
    "bundle": k("promotions.type.bundle"),
    "order_amount_off": k("promotions.type.order_amount_off"),
    "order_percent_off": k("promotions.type.order_percent_off"),
}
LAYER_KEYS = {"item": k("promotions.layer.item"), "order": k("promotions.layer.order"),
              "coupon": k("promotions.layer.coupon"), "points": k("promotions.layer.points")}
STATE_KEYS = {
    "draft": k("promotions.state.draft"),
    "scheduled": k("promotions.state.scheduled"),
    "live": k("promotions.state.live"),
    "paused": k("promotions.state.paused"),
    "ended": k("promotions.state.ended"),
}
STATE_BADGE = {"draft": "", "scheduled": "state-running", "live": "status-paid", "paused": "",
               "ended": "status-cancelled"}
#: Actions of the status form → stored status.
ACTIONS = {"activate": "active", "pause": "paused", "end": "ended"}
ACTION_KEYS = {"activate": k("promotions.action.activate"), "pause": k("promotions.action.pause"),
               "end": k("promotions.action.end")}
#: Reasons a promotion did not apply (the pricing core's codes).
REASON_KEYS = {
    "not_started": k("promotions.reason.not_started"),
    "ended": k("promotions.reason.ended"),
    "wrong_channel": k("promotions.reason.wrong_channel"),
    "wrong_tier": k("promotions.reason.wrong_tier"),
    "wrong_segment": k("promotions.reason.wrong_segment"),
    "not_first_order": k("promotions.reason.not_first_order"),
    "no_eligible_lines": k("promotions.reason.no_eligible_lines"),
    "below_min_quantity": k("promotions.reason.below_min_quantity"),
    "below_min_amount": k("promotions.reason.below_min_amount"),
    "below_threshold": k("promotions.reason.below_threshold"),
    "no_stock": k("promotions.reason.no_stock"),
    "no_member_price": k("promotions.reason.no_member_price"),
    "incomplete_bundle": k("promotions.reason.incomplete_bundle"),
    "no_benefit": k("promotions.reason.no_benefit"),
    "not_combinable": k("promotions.reason.not_combinable"),
    "worse_combination": k("promotions.reason.worse_combination"),
}
COUPON_KINDS = {"amount": k("coupons.kind.amount"), "percent": k("coupons.kind.percent")}
CODE_MODES = {"unique": k("coupons.mode.unique"), "shared": k("coupons.mode.shared")}
RELEASE_KEYS = {
    "full_refund_within_validity": k("coupons.release.full_refund_within_validity"),
    "full_refund": k("coupons.release.full_refund"),
    "never": k("coupons.release.never"),
}

#: Fields of the promotion form.
PROMOTION_FIELDS = ("name", "type", "percent", "amount", "price", "stock", "tiers", "every", "off", "cap",
                    "qty_tiers", "gift_sku", "gift_quantity", "gift_value", "skus", "categories",
                    "channels", "min_amount", "min_quantity", "starts_at", "ends_at", "status",
                    "budget_count", "budget_amount", "priority")
#: Fields of the coupon batch form.
COUPON_FIELDS = ("name", "kind", "amount", "percent", "cap", "threshold", "categories", "code_mode",
                 "shared_code", "count", "valid_from", "valid_until", "per_customer_limit",
                 "budget_count", "budget_amount", "release_on_refund")
#: Field of the definition (last part of the path of a refused field) → form field, by reward type.
_REWARD_FIELD = {"rate_bp": "percent", "amount": "amount", "price": "price", "every": "every",
                 "off": "off", "cap": "cap", "sku": "gift_sku", "quantity": "gift_quantity",
                 "value": "gift_value", "first_order_only": "first_order", "combines_with": "combines_with"}
_SPLIT = re.compile(r"[,，;；\s]+")
_PAIR = re.compile(r"^\s*([0-9.]+)\s*[:：=/]\s*([0-9.]+)\s*%?\s*$")


class _FormError(Exception):
    """A form field that could not be read (its catalogue key says why)."""

    def __init__(self, field: str, key: str) -> None:
        super().__init__(key)
        self.field = field
        self.key = key


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _t(request: Request) -> Translator:
    asked = request.query_params.get("lang")
    lang = str(asked) if asked in LANGS else choose_language(
        request.cookies.get(COOKIE), request.headers.get("accept-language"))
    return translator(lang)


def _can_edit(user: Principal) -> bool:
    return "write" in user.scopes


@dataclass(frozen=True)
class _Shop:
    currency: str
    exponent: int
    zone: ZoneInfo

    def money(self, minor: int | None) -> str:
        """Minor units as the shop's money text (``¥1,234.50``)."""
        if minor is None:
            return "–"
        return format_money(Decimal(minor).scaleb(-self.exponent), self.currency, places=self.exponent)

    def plain(self, minor: int | None) -> str:
        """Minor units as plain major-unit text for a form field (``1234.50``)."""
        return "" if minor is None else major_text(minor, self.exponent)

    def local(self, value: datetime | None) -> str:
        if value is None:
            return "–"
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def field_time(self, value: datetime | None) -> str:
        """A time as a ``datetime-local`` field value in the shop's zone."""
        if value is None:
            return ""
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")


def _shop(request: Request) -> _Shop:
    shop = request.app.state.cfg.shop()
    return _Shop(shop.currency, currency_exponent(shop.currency), ZoneInfo(shop.timezone))


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _text(form: Mapping[str, Any], name: str) -> str:
    return str(form.get(name) or "").strip()


def _money(shop: _Shop, form: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
    text = _text(form, name)
    if not text:
        if required:
            raise _FormError(name, k("promotions.error.required"))
        return None
    value = parse_major(text, shop.exponent)
    if value is None:
        raise _FormError(name, k("promotions.error.money"))
    return value


def _integer(form: Mapping[str, Any], name: str, *, required: bool = False) -> int | None:
    text = _text(form, name)
    if not text:
        if required:
            raise _FormError(name, k("promotions.error.required"))
        return None
    if not re.fullmatch(r"-?\d{1,12}", text):
        raise _FormError(name, k("promotions.error.integer"))
    return int(text)


def _rate_bp(text: str, name: str) -> int:
    """A percentage (``12.5``) as basis points (1250); more than two decimals is refused."""
    try:
        value = Decimal(text.strip().rstrip("%"))
    except InvalidOperation:
        raise _FormError(name, k("promotions.error.percent")) from None
    bp = value * 100
    if not value.is_finite() or bp != bp.to_integral_value() or not 0 < bp <= rules.BASIS:
        raise _FormError(name, k("promotions.error.percent"))
    return int(bp)


def _percent(form: Mapping[str, Any], name: str) -> int:
    text = _text(form, name)
    if not text:
        raise _FormError(name, k("promotions.error.required"))
    return _rate_bp(text, name)


def _names(form: Mapping[str, Any], name: str) -> list[str]:
    return [part for part in _SPLIT.split(_text(form, name)) if part]


def _when(shop: _Shop, form: Mapping[str, Any], name: str) -> datetime | None:
    """A ``datetime-local`` field, in the shop's time zone, as UTC."""
    text = _text(form, name)
    if not text:
        return None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise _FormError(name, k("promotions.error.time")) from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=shop.zone)
    return local.astimezone(UTC)


def _pairs(shop: _Shop, form: Mapping[str, Any], name: str, *, quantity: bool) -> list[list[int]]:
    """Tiers typed as ``200:20, 300:50`` (money : money off) or ``2:10, 3:20`` (items : % off)."""
    parts = [p for p in re.split(r"[,，;；\n]+", _text(form, name)) if p.strip()]
    if not parts:
        raise _FormError(name, k("promotions.error.required"))
    tiers: list[list[int]] = []
    for part in parts:
        match = _PAIR.match(part)
        if match is None:
            raise _FormError(name, k("promotions.error.tiers"))
        first, second = match.group(1), match.group(2)
        if quantity:
            if not first.isdigit():
                raise _FormError(name, k("promotions.error.tiers"))
            tiers.append([int(first), _rate_bp(second, name)])
        else:
            threshold, off = parse_major(first, shop.exponent), parse_major(second, shop.exponent)
            if threshold is None or off is None:
                raise _FormError(name, k("promotions.error.tiers"))
            tiers.append([threshold, off])
    return tiers


def _refused_field(message: str, fields: tuple[str, ...], *, reward_type: str = "",
                   default: str = "name") -> str:
    """The form field a service's message is about (``definition.reward.tiers.0: …``,
    ``definition: SpendTiers.tiers: …``, ``stock: …``)."""
    head = message.split(": ", 1)
    paths = [head[0]]
    if head[0] == "definition" and len(head) > 1:
        paths.append(head[1].split(": ", 1)[0])
    for path in paths:
        for part in path.replace("[", ".").replace("]", "").split("."):
            if part == "tiers" and "tiers" in fields:
                return "qty_tiers" if reward_type == "quantity_tiers" else "tiers"
            if part in _REWARD_FIELD and _REWARD_FIELD[part] in fields:
                return _REWARD_FIELD[part]
            if part in fields and part not in ("type", "name") and part != reward_type:
                return part
    name = head[0].split(" ", 1)[0]
    return name if name in fields else default


def _forbidden(request: Request, user: Principal, back: str) -> HTMLResponse:
    return render(request, "error.html.j2",
                  {"title_key": k("error.forbidden"), "message_key": k("promotions.not_allowed"),
                   "back_href": back}, user=user, status=403)


def _not_found(request: Request, user: Principal, back: str) -> HTMLResponse:
    return render(request, "error.html.j2",
                  {"title_key": k("promotions.not_found"), "message_key": k("promotions.not_found_body"),
                   "back_href": back}, user=user, status=404)


_Row = TypeVar("_Row")


async def _open_edit(request: Request, user: Principal, find: Callable[[], _Row | None], back: str,
                     listing: str) -> tuple[FormData, _Row] | Response:
    """What every edit form of an existing promotion or batch starts with: the CSRF check, the
    form, the operator / admin role, then the row it edits — read on a worker thread, never on the
    event loop. Returns the form and the row, or the 403 / 404 page to answer with."""
    await check_csrf(request)
    raw = await request.form()
    if not _can_edit(user):
        return _forbidden(request, user, back)
    row = await run_in_threadpool(find)
    if row is None:
        return _not_found(request, user, listing)
    return raw, row


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and 0 < int(text) < 10**6 else 1


# ---------------------------------------------------------------------------------------------
# Describing definitions
# ---------------------------------------------------------------------------------------------


def _fold(rate_bp: int) -> str:
    """A discount rate as the Chinese 折 figure (1500 bp off → ``8.5``)."""
    return f"{Decimal(rules.BASIS - rate_bp) / 1000:f}".rstrip("0").rstrip(".") or "0"


def _rate(rate_bp: int) -> str:
    return f"{Decimal(rate_bp) / 100:f}".rstrip("0").rstrip(".") + "%"


def reward_text(t: Translator, shop: _Shop, reward: Mapping[str, Any]) -> str:
    """What a reward gives, in the page's language (``满200减20 / 满300减50``)."""
    kind = str(reward.get("type"))
    m = shop.money
    if kind in ("percent_off", "order_percent_off"):
        text = t(k("promotions.reward.percent"), rate=_rate(reward["rate_bp"]), fold=_fold(reward["rate_bp"]))
        if reward.get("cap"):
            text += t(k("promotions.reward.cap"), cap=m(reward["cap"]))
        return text
    if kind == "amount_off":
        return t(k("promotions.reward.amount_each"), amount=m(reward["amount"]))
    if kind == "order_amount_off":
        return t(k("promotions.reward.amount_order"), amount=m(reward["amount"]))
    if kind == "flash_sale":
        return t(k("promotions.reward.flash"), price=m(reward["price"]))
    if kind == "member_price":
        return t(k("promotions.type.member_price"))
    if kind == "nth_item":
        return t(k("promotions.reward.nth"), n=reward["n"], rate=_rate(reward["rate_bp"]))
    if kind == "bundle":
        return t(k("promotions.reward.bundle"), skus=" + ".join(reward["skus"]), price=m(reward["price"]))
    if kind == "spend_tiers":
        return " / ".join(t(k("promotions.reward.tier"), threshold=m(a), off=m(b))
                          for a, b in reward["tiers"])
    if kind == "every_x_off_y":
        text = t(k("promotions.reward.every"), every=m(reward["every"]), off=m(reward["off"]))
        if reward.get("cap"):
            text += t(k("promotions.reward.cap"), cap=m(reward["cap"]))
        return text
    if kind == "quantity_tiers":
        return " / ".join(t(k("promotions.reward.quantity_tier"), n=n, rate=_rate(r), fold=_fold(r))
                          for n, r in reward["tiers"])
    if kind == "gift":
        return t(k("promotions.reward.gift"), quantity=reward.get("quantity", 1), sku=reward["sku"],
                 value=m(reward.get("value", 0)))
    if kind == "free_shipping":
        return t(k("promotions.type.free_shipping"))
    return kind


def _type_key(kind: str) -> str:
    return PROMOTION_TYPES.get(kind) or OTHER_TYPES.get(kind) or k("promotions.type.other")


def _condition_rows(t: Translator, shop: _Shop, conditions: Mapping[str, Any]) -> list[dict[str, str]]:
    rows = []
    for name, key in (("skus", k("promotions.field.skus")),
                      ("categories", k("promotions.field.categories")),
                      ("channels", k("promotions.field.channels")),
                      ("tiers", k("promotions.field.tiers_cond")),
                      ("segments", k("promotions.field.segments"))):
        if conditions.get(name):
            rows.append({"label": t(key), "value": ", ".join(conditions[name])})
    if conditions.get("min_amount"):
        rows.append({"label": t(k("promotions.field.min_amount")),
                     "value": shop.money(conditions["min_amount"])})
    if conditions.get("min_quantity"):
        rows.append({"label": t(k("promotions.field.min_quantity")),
                     "value": format_count(conditions["min_quantity"])})
    if conditions.get("first_order_only"):
        rows.append({"label": t(k("promotions.field.first_order")), "value": t(k("common.yes"))})
    return rows


def promotion_state(row: Promotion, now: datetime) -> str:
    """``draft``, ``paused``, ``ended`` as stored; an active promotion is ``scheduled`` before its
    start, ``live`` inside its window and ``ended`` after it."""
    if row.status != "active":
        return row.status
    starts, ends = _aware(row.starts_at), _aware(row.ends_at)
    if starts is not None and now < starts:
        return "scheduled"
    if ends is not None and now >= ends:
        return "ended"
    return "live"


def _budget_text(shop: _Shop, used: int, limit: int | None, money: bool) -> str:
    shown = shop.money(used) if money else format_count(used)
    if limit is None:
        return shown
    return f"{shown} / {shop.money(limit) if money else format_count(limit)}"


def _promotion_row(t: Translator, shop: _Shop, row: Promotion, now: datetime) -> dict[str, Any]:
    reward = row.definition.get("reward", {})
    state = promotion_state(row, now)
    return {
        "id": row.id, "href": f"/promotions/{row.id}", "name": row.name,
        "type_key": _type_key(str(reward.get("type"))), "reward": reward_text(t, shop, reward),
        "layer_key": LAYER_KEYS.get(row.layer, k("promotions.layer.item")),
        "starts": shop.local(row.starts_at) if row.starts_at else "",
        "ends": shop.local(row.ends_at) if row.ends_at else "",
        "state": state, "state_key": STATE_KEYS[state], "badge": STATE_BADGE[state],
        "budget_count": _budget_text(shop, row.used_count, row.budget_count, False),
        "budget_amount": _budget_text(shop, row.used_amount, row.budget_amount, True),
        "stock": (f"{format_count(row.stock_used)} / {format_count(row.stock_limit)}"
                  if row.stock_limit is not None else ""),
        "exclusive": bool(row.definition.get("exclusive")),
    }


# ---------------------------------------------------------------------------------------------
# Promotions: list, form, create
# ---------------------------------------------------------------------------------------------


@router.get("/promotions", response_class=HTMLResponse)
def promotions_page(request: Request, user: User, session: DbSession) -> HTMLResponse:
    """Every promotion, newest first, with its state, budget burn and flash-sale stock."""
    t, shop, now = _t(request), _shop(request), utcnow()
    rows = [_promotion_row(t, shop, p, now) for p in repository.all_promotions(session)]
    return render(request, "promotions.html.j2", {"promotions": rows, "can_edit": _can_edit(user)}, user=user)


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


def _promotion_form_page(request: Request, user: Principal, session: Session, form: Mapping[str, Any],
                         errors: Mapping[str, str]) -> HTMLResponse:
    context = {
        "form": form, "errors": errors, "can_edit": _can_edit(user), "types": PROMOTION_TYPES,
        "choices": _stack_choices(session), "currency": _shop(request).currency,
    }
    return render(request, "promotions_new.html.j2", context, user=user)


@router.get("/promotions/new", response_class=HTMLResponse)
def new_promotion_page(request: Request, user: User, session: DbSession) -> HTMLResponse:
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
async def create_promotion(request: Request, user: User, session: DbSession) -> Response:
    """Create the promotion and go to its page; a refused field comes back with its message."""
    await check_csrf(request)
    raw = await request.form()
    form: dict[str, Any] = {name: str(raw.get(name) or "") for name in PROMOTION_FIELDS}
    form.update(first_order=bool(raw.get("first_order")), exclusive=bool(raw.get("exclusive")),
                combines_with=[str(v) for v in raw.getlist("combines_with") if str(v).strip()][:100])
    if not _can_edit(user):
        return _forbidden(request, user, "/promotions")
    shop = _shop(request)
    errors: dict[str, str] = {}
    row: Promotion | None = None
    try:
        body = promotion_body(shop, form)
        row = await run_in_threadpool(lambda: service.create_promotion(session, principal=user, **body))
    except _FormError as exc:
        errors[exc.field] = exc.key
    except GrowthwheelError as exc:
        errors[_refused_field(exc.message, PROMOTION_FIELDS, reward_type=form["type"])] = exc.message
    if row is None:
        await run_in_threadpool(session.rollback)  # nothing of a refused form is kept
        return await run_in_threadpool(_promotion_form_page, request, user, session, form, errors)
    return RedirectResponse(f"/promotions/{row.id}", status_code=303)


# ---------------------------------------------------------------------------------------------
# One promotion: definition, schedule, status, tryout
# ---------------------------------------------------------------------------------------------


def _try_form(params: Mapping[str, str]) -> dict[str, Any]:
    lines = [{name: str(params.get(f"{name}_{i}") or "")[:128]
              for name in ("sku", "category", "price", "qty")} for i in range(TRY_LINES)]
    return {"lines": lines, "channel": str(params.get("channel") or "")[:64],
            "tier": str(params.get("tier") or "")[:32], "first_order": bool(params.get("first_order")),
            "shipping": str(params.get("shipping") or "")[:20], "others": bool(params.get("others"))}


def _tryout_cart(shop: _Shop, form: Mapping[str, Any], at: datetime) -> rules.Cart:
    lines = []
    for i, line in enumerate(form["lines"]):
        if not any(line.values()):
            continue
        sku = line["sku"].strip()
        if not sku:
            raise _FormError(f"sku_{i}", k("promotions.error.required"))
        price = parse_major(line["price"], shop.exponent)
        if price is None or not line["price"].strip():
            raise _FormError(f"price_{i}", k("promotions.error.money"))
        qty = line["qty"].strip() or "1"
        if not qty.isdigit() or not 0 < int(qty) <= 100_000:
            raise _FormError(f"qty_{i}", k("promotions.error.quantity"))
        lines.append(rules.Line(line_id=f"L{i + 1}", sku=sku, unit_price=price, quantity=int(qty),
                                category=line["category"].strip() or None))
    if not lines:
        raise _FormError("sku_0", k("promotions.error.no_lines"))
    shipping = parse_major(form["shipping"], shop.exponent)
    if shipping is None:
        raise _FormError("shipping", k("promotions.error.money"))
    customer = rules.Customer(now=at, customer_id="tryout", tier=form["tier"].strip() or None,
                              is_first_order=form["first_order"], channel=form["channel"].strip() or None)
    return rules.Cart(currency=shop.currency, customer=customer, lines=tuple(lines), shipping_fee=shipping)


def _priced_at(row: Promotion, now: datetime) -> datetime:
    """When the tryout prices: now, or inside the promotion's window if now is outside it."""
    starts, ends = _aware(row.starts_at), _aware(row.ends_at)
    if starts is not None and now < starts:
        return starts
    if ends is not None and now >= ends:
        return ends - timedelta(seconds=1)
    return now


def _nudge_text(t: Translator, shop: _Shop, nudge: rules.Nudge) -> str:
    if nudge.short_quantity:
        if nudge.would_save:
            return t(k("promotions.nudge.items_save"), n=nudge.short_quantity,
                     save=shop.money(nudge.would_save))
        return t(k("promotions.nudge.items"), n=nudge.short_quantity)
    if nudge.would_save:
        return t(k("promotions.nudge.spend_save"), short=shop.money(nudge.short_amount),
                 save=shop.money(nudge.would_save))
    return t(k("promotions.nudge.spend"), short=shop.money(nudge.short_amount))


def price_tryout(t: Translator, shop: _Shop, session: Session, row: Promotion, form: Mapping[str, Any],
                 now: datetime) -> dict[str, Any]:
    """Price the tryout cart with the pure core: this promotion (and, if asked, every other live one)."""
    at = _priced_at(row, now)
    promos = [service.rule_of(row)]
    if form["others"]:
        promos += [service.rule_of(p) for p in repository.live_promotions(session, at)
                   if p.id != row.id and p.layer != "coupon"]
    try:
        priced = rules.price_cart(_tryout_cart(shop, form, at), promos)
    except rules.PricingInputError as exc:
        raise _FormError("sku_0", exc.message) from None
    names = {p.id: p.name for p in promos}
    totals = priced.totals
    return {
        "at": shop.local(at), "shifted": at != now,
        "lines": [{"line_id": line.line_id, "sku": line.sku, "quantity": format_count(line.quantity),
                   "unit_price": shop.money(line.unit_price), "subtotal": shop.money(line.subtotal),
                   "discount": shop.money(line.subtotal - line.paid), "paid": shop.money(line.paid),
                   "paid_minor": line.paid, "gift": line.is_gift} for line in priced.lines],
        "totals": [
            {"name": "subtotal", "key": k("promotions.total.subtotal"), "value": shop.money(totals.subtotal)},
            {"name": "item_discount", "key": k("promotions.total.item_discount"),
             "value": shop.money(totals.item_discount)},
            {"name": "order_discount", "key": k("promotions.total.order_discount"),
             "value": shop.money(totals.order_discount)},
            {"name": "shipping", "key": k("promotions.total.shipping"), "value": shop.money(totals.shipping)},
            {"name": "total", "key": k("promotions.total.total"), "value": shop.money(totals.total)},
        ],
        "discount_minor": totals.subtotal - totals.goods_total,
        "total_minor": totals.total,
        "applied": [{"id": a.promotion_id, "name": names.get(a.promotion_id, a.name),
                     "layer_key": LAYER_KEYS[a.layer.value], "amount": shop.money(a.amount),
                     "amount_minor": a.amount,
                     "shipping": shop.money(a.shipping_discount) if a.shipping_discount else "",
                     "gift": f"{a.gift_quantity} × {a.gift_sku}" if a.gift_sku else ""}
                    for a in priced.applied],
        "not_applied": [{"id": n.promotion_id, "name": names.get(n.promotion_id, n.name), "code": n.code,
                         "reason_key": REASON_KEYS.get(n.code, k("promotions.reason.other"))}
                        for n in priced.not_applied],
        "nudges": [_nudge_text(t, shop, n) for n in priced.nudges],
    }


def _combines_names(session: Session, refs: list[str]) -> str:
    named = {c["value"]: c["label"] for c in _stack_choices(session)}
    return ", ".join(named.get(r, r) for r in refs)


def _promotion_page(request: Request, user: Principal, session: Session, row: Promotion, *,
                    schedule: Mapping[str, str] | None = None,
                    schedule_errors: Mapping[str, str] | None = None) -> HTMLResponse:
    t, shop, now = _t(request), _shop(request), utcnow()
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
    return render(request, "promotions_detail.html.j2", context, user=user)


@router.get("/promotions/{promotion_id}", response_class=HTMLResponse)
def promotion_page(request: Request, user: User, session: DbSession, promotion_id: Ref) -> HTMLResponse:
    """A promotion: definition, schedule, budget, status actions and the price-a-cart tryout."""
    row = repository.promotion(session, promotion_id)
    if row is None:
        return _not_found(request, user, "/promotions")
    return _promotion_page(request, user, session, row)


@router.post("/promotions/{promotion_id}/schedule", response_class=HTMLResponse)
async def reschedule_promotion(request: Request, user: User, session: DbSession,
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
        errors[_refused_field(exc.message, ("starts_at", "ends_at"), default="ends_at")] = exc.message
    if errors:
        await run_in_threadpool(session.rollback)  # the refused change is not committed with the request
        return await run_in_threadpool(lambda: _promotion_page(request, user, session, row, schedule=form,
                                                               schedule_errors=errors))
    return RedirectResponse(back, status_code=303)


@router.post("/promotions/{promotion_id}/status", response_class=HTMLResponse)
async def change_promotion_status(request: Request, user: User, session: DbSession,
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
def coupons_page(request: Request, user: User, session: DbSession) -> HTMLResponse:
    """Every coupon batch with its budget burn, newest first."""
    t, shop, now = _t(request), _shop(request), utcnow()
    counts = _code_counts(session)
    rows = [_batch_view(t, shop, b, counts.get(b.id, 0), now) for b in repository.all_batches(session)]
    return render(request, "coupons.html.j2", {"batches": rows, "can_edit": _can_edit(user)}, user=user)


def _coupon_form_page(request: Request, user: Principal, form: Mapping[str, Any],
                      errors: Mapping[str, str]) -> HTMLResponse:
    context = {"form": form, "errors": errors, "can_edit": _can_edit(user), "kinds": COUPON_KINDS,
               "modes": CODE_MODES, "releases": RELEASE_KEYS, "currency": _shop(request).currency}
    return render(request, "coupons_new.html.j2", context, user=user)


@router.get("/coupons/new", response_class=HTMLResponse)
def new_coupon_page(request: Request, user: User) -> HTMLResponse:
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
async def create_coupon_batch(request: Request, user: User, session: DbSession) -> Response:
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
        errors[{"percent": "percent", "amount": "amount"}.get(field, field)] = exc.message
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
                form: Mapping[str, str] | None = None) -> HTMLResponse:
    t, shop, now = _t(request), _shop(request), utcnow()
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
    }
    return render(request, "coupons_detail.html.j2", context, user=user)


@router.get("/coupons/{batch_id}", response_class=HTMLResponse)
def coupon_batch_page(request: Request, user: User, session: DbSession, batch_id: Ref,
                      page: Annotated[str | None, Query(max_length=8)] = None) -> HTMLResponse:
    """A batch: its rules, burn numbers and chart, its codes (paginated), generate and issue forms."""
    batch = repository.batch(session, batch_id)
    if batch is None:
        return _not_found(request, user, "/coupons")
    t = _t(request)
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
def coupon_codes_csv(request: Request, user: User, session: DbSession, batch_id: Ref) -> Response:
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
async def generate_coupon_codes(request: Request, user: User, session: DbSession, batch_id: Ref) -> Response:
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
            error = exc.message
    if error is not None:
        await run_in_threadpool(session.rollback)
        return await run_in_threadpool(lambda: _batch_page(request, user, session, batch, form=form,
                                                           errors={"count": error}))
    return RedirectResponse(f"{back}?generated={int(text)}", status_code=303)


def _issue(request: Request, session: Session, user: Principal, batch: CouponBatch, customers: list[str],
           segment_id: str) -> coupons.IssueResult:
    key = None
    if segment_id:
        seg = segments_service.get_segment(session, segment_id)
        with warehouse(request).read() as backend:
            customers = service.segment_member_ids(backend, seg.id)
        key = f"segment:{seg.id}"
    return coupons.issue(session, batch, customers, issue_key=key, principal=user)


@router.post("/coupons/{batch_id}/issue", response_class=HTMLResponse)
async def issue_coupon_codes(request: Request, user: User, session: DbSession, batch_id: Ref) -> Response:
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
            result = await run_in_threadpool(_issue, request, session, user, batch, customers, segment_id)
        except GrowthwheelError as exc:
            error = exc.message
    if error is not None:
        await run_in_threadpool(session.rollback)
        return await run_in_threadpool(lambda: _batch_page(request, user, session, batch, form=form,
                                                           errors={target: error}))
    query = urlencode({"issued": len(result.issued), "already": len(result.already)})
    return RedirectResponse(f"{back}?{query}", status_code=303)
