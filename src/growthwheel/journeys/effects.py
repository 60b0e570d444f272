"""The effects of journey steps, carried out in the enrolment's transaction: outbox messages
(send, webhook) keyed ``outbox_key(journey, step, customer, occurrence)``, coupon codes issued
under an issue key of the same four (the batch's budget holds), tags and attributes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError
from growthwheel.jobs import outbox
from growthwheel.journeys import definition as d
from growthwheel.journeys import engine, repository
from growthwheel.journeys.models import Enrolment


class BudgetSpentError(GrowthwheelError):
    """A journey's coupon step found the batch's budget spent (the step is skipped, not failed)."""

    code = "coupon_budget_spent"
    status = 409


@dataclass(frozen=True)
class Env:
    """What effects need besides the store: the shop and how links are signed."""

    timezone: str
    currency: str = "CNY"
    shop_name: str = ""
    secret: bytes = b""
    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def of(cls, cfg: Settings) -> Env:
        """The environment of ``cfg``'s data directory."""
        from growthwheel.accounts.service import server_secret
        from growthwheel.journeys.channels import config as channels_config

        shop = cfg.shop()
        try:
            public = channels_config.load(cfg).public_url
        except GrowthwheelError:
            public = "http://127.0.0.1:8000"
        return cls(
            timezone=shop.timezone,
            currency=shop.currency,
            shop_name=shop.name,
            secret=server_secret(cfg.data_dir),
            public_url=public,
        )


def message_template(step: d.SendStep) -> Any:
    """The channels' :class:`MessageTemplate` of a send step."""
    from growthwheel.journeys.channels.templates import MessageTemplate, TemplateText

    texts: dict[str, TemplateText] = {
        lang: TemplateText(subject=t.subject, text=t.text, html=t.html, sms_params=dict(t.sms_params))
        for lang, t in step.template.texts.items()
    }
    return MessageTemplate(
        name=step.id,
        channel=step.channel,
        texts=texts,
        sms_template_code=step.template.sms_template_code,
        wecom_msgtype=step.template.wecom_msgtype,
    )


#: Recommended products a message shows when its template names ``products`` / ``product_block``.
PRODUCTS_SHOWN = 4


def _mentions_products(step: d.SendStep) -> bool:
    return any("product" in f"{t.subject} {t.text} {t.html or ''}" for t in step.template.texts.values())


def recommended_products(session: Session, customer_id: str,
                         limit: int = PRODUCTS_SHOWN) -> list[dict[str, Any]]:
    """The customer's precomputed recommendations (``recs``; the popular list for a customer without
    history, excluded SKUs left out) as the templates' ``products``; empty before the first refresh."""
    from growthwheel.errors import GrowthwheelError
    from growthwheel.recs.service import for_customer

    try:
        found = for_customer(session, customer_id, limit=limit)
    except GrowthwheelError:  # nothing computed yet, or an id the recommendations cannot hold
        return []
    return [{"sku": i["sku"], "name": i["name"] or i["sku"]} for i in found["items"]]


def _issue_key(e: Enrolment, step_id: str) -> str:
    digest = hashlib.sha256(f"{e.journey_id}|{step_id}|{e.occurrence}".encode()).hexdigest()[:40]
    return f"journey:{digest}"


def carry_out(
    session: Session,
    effect: engine.Effect,
    e: Enrolment,
    journey_name: str,
    context: dict[str, Any],
    contact: dict[str, Any],
    now: datetime,
    env: Env,
) -> tuple[str, dict[str, Any]]:
    """One effect, in the enrolment's transaction; returns (outcome, detail) for the step log."""
    step = effect.step
    if effect.kind == "coupon":
        return _issue_coupon(session, step, e, context, now)
    if effect.kind == "tag":
        if step.action == "add":
            repository.set_trait(
                session, e.customer_id, "tag", step.tag, None, f"journey:{e.journey_id}", now
            )
            return "tagged", {"tag": step.tag}
        repository.remove_trait(session, e.customer_id, "tag", step.tag)
        return "untagged", {"tag": step.tag}
    if effect.kind == "attribute":
        if step.value is None:
            repository.remove_trait(session, e.customer_id, "attribute", step.name)
            return "cleared", {"name": step.name}
        repository.set_trait(
            session, e.customer_id, "attribute", step.name, step.value, f"journey:{e.journey_id}", now
        )
        return "set", {"name": step.name, "value": step.value}
    key = outbox.outbox_key(e.journey_id, step.id, e.customer_id, e.occurrence)
    if effect.kind == "webhook":
        data = {
            "event": step.event,
            "customer_id": e.customer_id,
            "journey": journey_name,
            "journey_id": e.journey_id,
            "step": step.id,
            **step.data,
            **context,
        }
        outbox.enqueue(
            session,
            key=key,
            channel="webhook",
            recipient="",
            customer_id=e.customer_id,
            journey_id=e.journey_id,
            step_id=step.id,
            occurrence=e.occurrence,
            now=now,
            payload={
                "subject": step.event,
                "text": "",
                "html": None,
                "lang": "zh",
                "headers": {},
                "data": data,
            },
        )
        return "queued", {"key": key}
    return _send(session, step, e, key, journey_name, context, contact, now, env)


def _issue_coupon(
    session: Session, step: d.CouponStep, e: Enrolment, context: dict[str, Any], now: datetime
) -> tuple[str, dict[str, Any]]:
    from growthwheel.promotions import coupons
    from growthwheel.promotions.models import CouponCode

    key = _issue_key(e, step.id)
    try:
        with session.begin_nested():
            batch = coupons.get_batch(session, step.batch_id)
            result = coupons.issue(
                session, batch, [e.customer_id], issue_key=key, now=now, actor_name="journey"
            )
            code = (
                result.issued.get(e.customer_id)
                or session.scalars(
                    select(CouponCode.code).where(
                        CouponCode.batch_id == batch.id,
                        CouponCode.customer_id == e.customer_id,
                        CouponCode.issue_key == key,
                    )
                ).first()
            )
            valid_until = batch.valid_until.isoformat()
            if batch.budget_count is not None:
                # ``issue`` raised issued_count in SQL (locking the batch row until commit; SQLite:
                # the write lock), so this read sees every concurrent issue that committed first.
                session.refresh(batch, ["issued_count", "used_count"])
                if batch.issued_count > batch.budget_count or batch.used_count >= batch.budget_count:
                    raise BudgetSpentError(
                        f"the budget of {batch.budget_count} codes of {batch.name!r} is spent"
                    )
    except GrowthwheelError as exc:
        context["coupon"] = {}  # templates read {{ coupon.code }} as empty; a condition can branch on it
        return "coupon_unavailable", {"batch_id": step.batch_id, "reason": f"{exc.code}: {exc.message}"[:500]}
    context.setdefault("coupons", {})[step.id] = {"code": code, "valid_until": valid_until}
    context["coupon"] = {"code": code, "valid_until": valid_until}
    return "issued", {"batch_id": step.batch_id, "code": code}


_ADDRESS = {"email": "email", "sms": "phone"}


def _send(
    session: Session,
    step: d.SendStep,
    e: Enrolment,
    key: str,
    journey_name: str,
    context: dict[str, Any],
    contact: dict[str, Any],
    now: datetime,
    env: Env,
) -> tuple[str, dict[str, Any]]:
    from growthwheel.journeys.channels.guard import payload_of
    from growthwheel.journeys.channels.links import LinkMaker, Utm
    from growthwheel.journeys.channels.templates import Recipient, TemplateError, render

    field_name = _ADDRESS.get(step.channel)
    address = str(contact.get(field_name) or "") if field_name else e.customer_id
    if step.channel == "webhook":
        address = ""
    if field_name and not address:
        return "no_address", {"channel": step.channel}
    lang = str(context.get("lang") or contact.get("lang") or "zh")
    links = LinkMaker(
        secret=env.secret,
        base_url=env.public_url,
        customer_id=e.customer_id,
        channel=step.channel,
        message_key=key,
        utm=Utm("growthwheel", step.channel, journey_name[:100]),
    )
    extra = {**context, "journey": journey_name}
    if "products" not in extra and _mentions_products(step):
        extra["products"] = recommended_products(session, e.customer_id)
    if step.link:
        extra["shop_link"] = links.click(step.link, content=step.id)
    try:
        message = render(
            message_template(step),
            Recipient(e.customer_id, address, lang, {"name": contact.get("name"), "id": e.customer_id}),
            currency=env.currency,
            links=links,
            context=extra,
            shop={"name": env.shop_name},
        )
    except TemplateError as exc:
        return "template_error", {"error": exc.message[:500]}
    payload = {**payload_of(message), "on_quiet_hours": step.on_quiet_hours}
    outbox.enqueue(
        session,
        key=key,
        channel=step.channel,
        recipient=address,
        payload=payload,
        customer_id=e.customer_id,
        journey_id=e.journey_id,
        step_id=step.id,
        occurrence=e.occurrence,
        now=now,
    )
    return "queued", {"key": key, "channel": step.channel}
