"""Public routes of message links: one-click unsubscribe (RFC 8058) and the click redirect.

- ``GET /m/u/{token}``: a confirmation page with one button (link scanners and previews that
  follow links do not unsubscribe anyone);
- ``POST /m/u/{token}``: unsubscribe — what the button sends, and what mail clients send for
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (no cookie, no CSRF token: the signed
  token is the authority, and all it can do is unsubscribe the customer it names). Revokes the
  customer's consent on the token's channel; repeating it changes nothing;
- ``GET /m/c/{token}``: records the click, then ``302`` to the signed target (with its UTM tags);
- ``GET /m/o/{token}``: an email's open pixel: records the message's first open (``opened``), answers
  a 1×1 GIF;
- ``POST /m/status``: a provider's delivery / bounce (DSN) callback, JSON ``{"message_key",
  "status": "delivered" | "bounced", "permanent", "detail"}`` signed like our own webhooks
  (``X-Growthwheel-Timestamp`` + ``X-Growthwheel-Signature: v1=<HMAC-SHA256>`` over
  ``"<timestamp>." + body``, within 5 minutes) with ``status_secret`` from ``channels.json``
  (no secret configured: 404). A permanent bounce also suppresses the address.

Each message status (``delivered``, ``opened``, ``bounced``, ``unsubscribed``) is kept once per
message (``channel_message_events``) and becomes a warehouse fact through the message sweep.

A token that was not signed by this server answers ``400`` (a page in the visitor's language);
nothing here needs a login.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from growthwheel.api.deps import DbSession, server_secret
from growthwheel.config import Settings, settings
from growthwheel.errors import GrowthwheelError
from growthwheel.jobs.models import OutboxRow
from growthwheel.journeys.channels import config as channels_config
from growthwheel.journeys.channels import store
from growthwheel.journeys.channels.links import (
    MAX_TOKEN,
    InvalidLinkError,
    read_click,
    read_open,
    read_unsubscribe,
)
from growthwheel.journeys.channels.webhook import verify
from growthwheel.journeys.pages import unsubscribe_page

router = APIRouter(include_in_schema=False, tags=["messages"])

Token = Annotated[str, Path(max_length=MAX_TOKEN)]


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/m/u/{token}", response_class=HTMLResponse)
def unsubscribe_confirm(request: Request, token: Token) -> HTMLResponse:
    """The confirmation page of an unsubscribe link."""
    try:
        link = read_unsubscribe(server_secret(request), token)
    except InvalidLinkError:
        return unsubscribe_page(request, "invalid", status=400)
    return unsubscribe_page(request, "confirm", link.channel)


@router.post("/m/u/{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, token: Token, session: DbSession) -> HTMLResponse:
    """Unsubscribe the token's customer from the token's channel (RFC 8058 one-click)."""
    try:
        link = read_unsubscribe(server_secret(request), token)
    except InvalidLinkError:
        return unsubscribe_page(request, "invalid", status=400)
    now = _now()
    store.set_consent(session, link.customer_id, link.channel, False, source="unsubscribe_link",
                      now=now, message_key=link.message_key)
    store.record_message_event(session, message_key=link.message_key, kind="unsubscribed",
                               channel=link.channel, customer_id=link.customer_id, now=now, source="link")
    return unsubscribe_page(request, "done", link.channel)


@router.get("/m/c/{token}", response_model=None)
def click(request: Request, token: Token, session: DbSession) -> Response:
    """Record the click and redirect to the link's target."""
    try:
        link = read_click(server_secret(request), token)
    except InvalidLinkError:
        return unsubscribe_page(request, "invalid", status=400)
    store.record_click(session, link, now=_now(), user_agent=request.headers.get("user-agent"))
    response = RedirectResponse(link.url, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


#: A transparent 1×1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@router.get("/m/o/{token}", response_model=None)
def opened(request: Request, token: Token, session: DbSession) -> Response:
    """An email's open pixel: the message's first load records ``opened``; always the same GIF."""
    try:
        link = read_open(server_secret(request), token)
    except InvalidLinkError:
        return unsubscribe_page(request, "invalid", status=400)
    store.record_message_event(session, message_key=link.message_key, kind="opened", channel=link.channel,
                               customer_id=link.customer_id, now=_now(), source="pixel",
                               detail=(request.headers.get("user-agent") or "")[:300] or None)
    return Response(PIXEL, media_type="image/gif",
                    headers={"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"})


class UnknownMessageError(GrowthwheelError):
    """A status callback about a message this shop never queued."""

    code = "message_not_found"
    status = 404


class CallbacksOffError(GrowthwheelError):
    """Status callbacks are not configured (no ``status_secret`` in ``channels.json``)."""

    code = "status_callbacks_off"
    status = 404


class StatusIn(BaseModel):
    """A provider's report on one message."""

    model_config = ConfigDict(extra="ignore")

    message_key: str = Field(min_length=1, max_length=400, description="The outbox key (Idempotency-Key / "
                             "X-Growthwheel-Key of the message)")
    status: Literal["delivered", "bounced"]
    permanent: bool = Field(default=True, description="bounced: a hard bounce (the address is suppressed)")
    detail: str | None = Field(default=None, max_length=500)


async def _body(request: Request) -> bytes:
    return await request.body()


def _cfg(request: Request) -> Settings:
    cfg = getattr(request.app.state, "cfg", None)
    return cfg if isinstance(cfg, Settings) else settings()


@router.post("/m/status")
def status_callback(request: Request, session: DbSession,
                    body: Annotated[bytes, Depends(_body)]) -> dict[str, Any]:
    """Record a provider's delivery or bounce report (see the module docstring)."""
    secret = channels_config.load(_cfg(request)).status_secret
    if not secret:
        raise CallbacksOffError("status callbacks are off: set status_secret in channels.json "
                                "(未配置状态回调密钥)")
    verify(secret.encode("utf-8"), body, dict(request.headers))
    try:
        report = StatusIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    row = session.scalars(select(OutboxRow).where(OutboxRow.key == report.message_key)).first()
    if row is None:
        raise UnknownMessageError("message_key: no message with this key (没有这个消息)")
    now = _now()
    recorded = store.record_message_event(
        session, message_key=row.key, kind=report.status, channel=row.channel, customer_id=row.customer_id,
        now=now, source="callback", detail=report.detail)
    if report.status == "bounced" and report.permanent and row.recipient:
        store.suppress(session, row.channel, row.recipient, "bounced", now=now, note=report.detail)
    return {"message_key": row.key, "status": report.status, "recorded": recorded}
