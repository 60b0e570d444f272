"""The public pages of message links: the unsubscribe confirmation and its result (zh / en).

No login: the signed token in the URL is the only authority (see ``channels/links.py``).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from growthwheel.web.i18n import k
from growthwheel.web.pages import render

CHANNEL_KEYS = {
    "email": k("journeys.channel.email"),
    "sms": k("journeys.channel.sms"),
    "wecom": k("journeys.channel.wecom"),
    "webhook": k("journeys.channel.webhook"),
}
TITLES = {
    "confirm": k("journeys.unsubscribe.title"),
    "done": k("journeys.unsubscribe.done_title"),
    "invalid": k("journeys.link.invalid_title"),
}


def unsubscribe_page(request: Request, state: str, channel: str = "email", status: int = 200) -> HTMLResponse:
    """The page for ``state``: ``confirm`` (a one-button form), ``done`` or ``invalid``."""
    context = {"state": state, "title_key": TITLES[state], "body_class": "login-page",
               "channel_key": CHANNEL_KEYS.get(channel, CHANNEL_KEYS["webhook"]),
               "action": request.url.path}
    response = render(request, "journeys_unsubscribe.html.j2", context, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
