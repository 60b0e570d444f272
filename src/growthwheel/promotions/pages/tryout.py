"""The price-a-cart tryout of a promotion's page: a few lines priced by the pure core
(:func:`growthwheel.promotions.rules.price_cart`) with the promotion (and optionally every other
live one), what applied, what did not and why, and the "spend X more" nudges."""


from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session

from growthwheel.kit.money import parse_major
from growthwheel.promotions import repository, rules, service
from growthwheel.promotions.models import (
    Promotion,
)
from growthwheel.promotions.pages.common import (
    LAYER_KEYS,
    TRY_LINES,
    _aware,
    _FormError,
    _Shop,
)
from growthwheel.promotions.texts import REASON_KEYS, nudge_text
from growthwheel.web.i18n import (
    Translator,
    format_count,
    k,
)

router = APIRouter(include_in_schema=False)

Ref = Annotated[str, Path(min_length=1, max_length=64)]

#: Codes per page of a batch.

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
    return nudge_text(t, nudge, shop.currency)


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
