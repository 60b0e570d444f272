"""Public routes of message links: one-click unsubscribe (RFC 8058) and the click redirect.

- ``GET /m/u/{token}``: a confirmation page with one button (link scanners and previews that
  follow links do not unsubscribe anyone);
- ``POST /m/u/{token}``: unsubscribe — what the button sends, and what mail clients send for
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (no cookie, no CSRF token: the signed
  token is the authority, and all it can do is unsubscribe the customer it names). Revokes the
  customer's consent on the token's channel; repeating it changes nothing;
- ``GET /m/c/{token}``: records the click, then ``302`` to the signed target (with its UTM tags).

A token that was not signed by this server answers ``400`` (a page in the visitor's language);
nothing here needs a login.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from growthwheel.api.deps import DbSession, server_secret
from growthwheel.journeys.channels import store
from growthwheel.journeys.channels.links import MAX_TOKEN, InvalidLinkError, read_click, read_unsubscribe
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
    store.set_consent(session, link.customer_id, link.channel, False, source="unsubscribe_link",
                      now=_now(), message_key=link.message_key)
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
