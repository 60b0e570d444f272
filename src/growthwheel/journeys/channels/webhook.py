"""Signed webhooks: the channel any provider without its own adapter plugs into.

Each message is POSTed as JSON with

- ``X-Growthwheel-Timestamp``: Unix seconds when it was signed;
- ``X-Growthwheel-Signature``: ``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` (several
  comma-separated ``v1=`` values are accepted by :func:`verify` so a secret can be rotated);
- ``Idempotency-Key``: the outbox key, the same on every retry of the message.

A receiver calls :func:`verify` (or re-implements it): signature compared in constant time and
the timestamp within ``tolerance`` seconds of its clock, so a captured request cannot be replayed
later; within the window, ``Idempotency-Key`` lets it drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from growthwheel.errors import GrowthwheelError
from growthwheel.journeys.channels import _http
from growthwheel.journeys.channels.base import Message, SendResult, require

TIMESTAMP_HEADER = "X-Growthwheel-Timestamp"
SIGNATURE_HEADER = "X-Growthwheel-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Seconds a signed request stays acceptable (both ways, for clock skew).
DEFAULT_TOLERANCE = 300


class WebhookSignatureError(GrowthwheelError):
    """A webhook request whose signature or timestamp does not check out."""

    code = "webhook_signature_invalid"
    status = 401


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    digest = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def sign_headers(secret: bytes, body: bytes, *, timestamp: int, idempotency_key: str) -> dict[str, str]:
    """The headers of a signed request carrying ``body``."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        IDEMPOTENCY_HEADER: idempotency_key,
        "User-Agent": "Growthwheel-Webhook/1",
    }


def verify(secret: bytes, body: bytes, headers: Mapping[str, str], *, now: float | None = None,
           tolerance: int = DEFAULT_TOLERANCE) -> int:
    """Check a received request; returns its timestamp or raises :class:`WebhookSignatureError`.

    ``headers`` is looked up case-insensitively.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ts = lowered.get(TIMESTAMP_HEADER.lower())
    raw_sig = lowered.get(SIGNATURE_HEADER.lower())
    if not raw_ts or not raw_sig:
        raise WebhookSignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    try:
        timestamp = int(raw_ts)
    except ValueError as exc:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is not a Unix time") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(f"{TIMESTAMP_HEADER} is outside the {tolerance} s window (replay?)")
    expected = signature(secret, timestamp, body)
    given = [part.strip() for part in raw_sig.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise WebhookSignatureError("signature does not match the body")
    return timestamp


def payload(message: Message, idempotency_key: str) -> dict[str, Any]:
    """The JSON document sent for ``message``."""
    return {
        "id": idempotency_key,
        "channel": message.channel,
        "customer_id": message.customer_id,
        "to": message.to,
        "lang": message.lang,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "data": dict(message.data),
    }


class WebhookChannel:
    """POST each message, signed, to one URL (an SMS, push or chat gateway of the shop's own).

    ``kind`` is the channel kind it serves (``webhook`` by default; ``sms`` or ``wecom`` when a
    gateway takes those). 2xx is success (a JSON ``{"id": ...}`` answer gives the provider id).
    """

    name = "webhook"

    def __init__(self, url: str, secret: bytes, *, kind: str = "webhook", timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        if len(secret) < 16:
            raise ValueError("webhook secret must be at least 16 bytes")
        self.url = url
        self.kind = kind
        self._secret = secret
        self._timeout = timeout
        self._clock = clock

    def send(self, message: Message, idempotency_key: str) -> SendResult:
        """POST the signed message; 2xx is sent, see :mod:`._http` for failures."""
        require(message, self.kind)
        body = json.dumps(payload(message, idempotency_key), ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
        headers = sign_headers(self._secret, body, timestamp=int(self._clock()),
                               idempotency_key=idempotency_key)
        answer = _http.call("POST", self.url, provider="webhook", body=body, headers=headers,
                            timeout=self._timeout)
        provider_id: str | None = None
        if answer.body.strip().startswith(b"{"):
            try:
                data = json.loads(answer.body)
                provider_id = str(data["id"]) if isinstance(data, dict) and "id" in data else None
            except (ValueError, UnicodeDecodeError):
                provider_id = None
        return SendResult(provider_id=provider_id, detail=f"HTTP {answer.status}")

    def close(self) -> None:
        """Nothing to release (one connection per request)."""
