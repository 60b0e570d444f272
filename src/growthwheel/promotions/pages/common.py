"""What the promotions and coupons pages share (and the loyalty pages borrow): the
shop's money and time, form parsing with field errors, refusals, and descriptions of rewards
and conditions in the reader's language."""


import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from growthwheel.api.deps import Principal, check_csrf
from growthwheel.kit.money import currency_exponent, major_text, parse_major
from growthwheel.promotions import rules
from growthwheel.promotions.models import (
    Promotion,
)
from growthwheel.web.i18n import (
    Translator,
    format_count,
    format_money,
    k,
)
from growthwheel.web.pages import render

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
        if conditions.get(name):  # SKUs, tiers and segments by their codes: identifiers
            rows.append({"label": t(key), "value": ", ".join(conditions[name]),
                         "code": "yes" if name in ("skus", "tiers", "segments") else ""})
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
