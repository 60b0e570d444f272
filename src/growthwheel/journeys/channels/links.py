"""Signed links in messages: one-click unsubscribe (RFC 8058) and click-tracking redirects.

A token is ``<payload>.<mac>``: the payload is compact JSON in unpadded base64url, the MAC the
first 16 bytes of HMAC-SHA256 under a key derived from the server secret *and the purpose*
(``unsubscribe`` / ``click``), so a click token cannot be used to unsubscribe and no token can be
altered (e.g. another customer id, another target URL: no open redirect) without the secret.
Tokens carry no email address or phone number, only the customer id, the channel and the message
key. They do not expire: an unsubscribe link must keep working for as long as the mail is kept.

An email's HTML carries an open pixel (``/m/o/<token>``, purpose ``open``): the first time a mail
client loads it, the message counts as opened.

UTM tags (``utm_source``, ``utm_medium``, ``utm_campaign``, ``utm_content``) are set on the target
before it is signed; the redirect (``/m/c/<token>``) records the click and answers 302.

A survey link (``/s/<token>``, purpose ``survey``) opens the public answer page of an NPS survey
(``surveys/public.py``) for the customer, channel and message it names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from growthwheel.errors import GrowthwheelError

UNSUBSCRIBE = "unsubscribe"
CLICK = "click"
OPEN = "open"
SURVEY = "survey"
#: Path prefixes of the public routes (``journeys/api.py``).
UNSUBSCRIBE_PATH = "/m/u/"
CLICK_PATH = "/m/c/"
OPEN_PATH = "/m/o/"
SURVEY_PATH = "/s/"
_MAC_BYTES = 16
MAX_TOKEN = 4096


class InvalidLinkError(GrowthwheelError):
    """A link token that was not made by this server (altered, truncated or for another purpose)."""

    code = "invalid_link"
    status = 400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, b"growthwheel-link:" + purpose.encode("ascii"), hashlib.sha256).digest()


def make_token(secret: bytes, purpose: str, payload: dict[str, Any]) -> str:
    """Sign ``payload`` for ``purpose``."""
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    body = _b64(raw.encode("utf-8"))
    mac = hmac.new(_key(secret, purpose), body.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{body}.{_b64(mac)}"


def read_token(secret: bytes, purpose: str, token: str) -> dict[str, Any]:
    """The payload of a token made by :func:`make_token` for ``purpose``; else :class:`InvalidLinkError`."""
    if len(token) > MAX_TOKEN or token.count(".") != 1:
        raise InvalidLinkError("this link is not valid (它不是有效的链接)")
    body, mac = token.split(".")
    expected = hmac.new(_key(secret, purpose), body.encode("ascii", "replace"), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
        valid = hmac.compare_digest(expected[:_MAC_BYTES], given)
        payload = json.loads(_unb64(body)) if valid else None
    except (binascii.Error, ValueError, UnicodeDecodeError):
        valid, payload = False, None
    if not valid or not isinstance(payload, dict):
        raise InvalidLinkError("this link is not valid or was altered (链接无效或已被篡改)")
    return payload


def check_target(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host (what a message may link to)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in url for c in "\r\n\t "):
        raise ValueError(f"link target must be an absolute http(s) URL: {url!r}")
    return url


@dataclass(frozen=True)
class Utm:
    """The UTM tags of a message's links."""

    source: str
    medium: str
    campaign: str
    content: str | None = None

    def with_content(self, content: str | None) -> Utm:
        """The same tags for another link (``utm_content`` tells links of one message apart)."""
        return Utm(self.source, self.medium, self.campaign, content)


def add_utm(url: str, utm: Utm) -> str:
    """``url`` with its ``utm_*`` parameters set to ``utm`` (other query parameters kept)."""
    parts = urlsplit(check_target(url))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("utm_")]
    query += [("utm_source", utm.source), ("utm_medium", utm.medium), ("utm_campaign", utm.campaign)]
    if utm.content:
        query.append(("utm_content", utm.content))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@dataclass(frozen=True)
class LinkMaker:
    """Makes the signed links of one message (to one customer)."""

    secret: bytes
    base_url: str
    customer_id: str
    channel: str
    message_key: str
    utm: Utm | None = None

    def click(self, target: str, content: str | None = None) -> str:
        """A tracked link: ``<base>/m/c/<token>`` redirecting to ``target`` with UTM tags."""
        url = add_utm(target, self.utm.with_content(content)) if self.utm else check_target(target)
        token = make_token(self.secret, CLICK, {"c": self.customer_id, "ch": self.channel,
                                                "k": self.message_key, "u": url})
        return f"{self.base_url.rstrip('/')}{CLICK_PATH}{token}"

    def open_pixel(self) -> str:
        """The message's open pixel (an image URL; loading it records the open)."""
        token = make_token(self.secret, OPEN, {"c": self.customer_id, "ch": self.channel,
                                               "k": self.message_key})
        return f"{self.base_url.rstrip('/')}{OPEN_PATH}{token}"

    def unsubscribe(self) -> str:
        """The customer's one-click unsubscribe link for this channel."""
        token = make_token(self.secret, UNSUBSCRIBE, {"c": self.customer_id, "ch": self.channel,
                                                      "k": self.message_key})
        return f"{self.base_url.rstrip('/')}{UNSUBSCRIBE_PATH}{token}"

    def survey(self, survey: str) -> str:
        """The customer's answer page of the NPS survey ``survey`` (its id or name)."""
        token = make_token(self.secret, SURVEY, {"c": self.customer_id, "ch": self.channel,
                                                 "k": self.message_key, "s": str(survey)})
        return f"{self.base_url.rstrip('/')}{SURVEY_PATH}{token}"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 8058 email headers: ``List-Unsubscribe: <url>`` and the one-click POST marker."""
    if not url.startswith("https://") and not url.startswith("http://"):
        raise ValueError("List-Unsubscribe needs an http(s) URL")
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


@dataclass(frozen=True)
class ClickToken:
    """What a click token says."""

    customer_id: str
    channel: str
    message_key: str
    url: str


@dataclass(frozen=True)
class UnsubscribeToken:
    """What an unsubscribe token says."""

    customer_id: str
    channel: str
    message_key: str


def read_click(secret: bytes, token: str) -> ClickToken:
    """Check and decode a click token."""
    data = read_token(secret, CLICK, token)
    try:
        return ClickToken(str(data["c"]), str(data["ch"]), str(data["k"]), check_target(str(data["u"])))
    except (KeyError, ValueError) as exc:
        raise InvalidLinkError("this link is not valid (链接无效)") from exc


def read_open(secret: bytes, token: str) -> UnsubscribeToken:
    """Check and decode an open-pixel token (customer, channel and message key, as an
    unsubscribe token says them; the purpose differs, so neither passes for the other)."""
    data = read_token(secret, OPEN, token)
    try:
        return UnsubscribeToken(str(data["c"]), str(data["ch"]), str(data["k"]))
    except KeyError as exc:
        raise InvalidLinkError("this link is not valid (链接无效)") from exc


@dataclass(frozen=True)
class SurveyToken:
    """What a survey token says: the survey (id or name) and who answers through which message."""

    survey: str
    customer_id: str
    channel: str
    message_key: str


def read_survey(secret: bytes, token: str) -> SurveyToken:
    """Check and decode a survey token."""
    data = read_token(secret, SURVEY, token)
    try:
        return SurveyToken(str(data["s"]), str(data["c"]), str(data["ch"]), str(data["k"]))
    except KeyError as exc:
        raise InvalidLinkError("this link is not valid (链接无效)") from exc


def read_unsubscribe(secret: bytes, token: str) -> UnsubscribeToken:
    """Check and decode an unsubscribe token."""
    data = read_token(secret, UNSUBSCRIBE, token)
    try:
        return UnsubscribeToken(str(data["c"]), str(data["ch"]), str(data["k"]))
    except KeyError as exc:
        raise InvalidLinkError("this link is not valid (链接无效)") from exc
