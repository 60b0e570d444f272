"""The one interface every message channel implements, the message it carries and its errors.

A channel adapter (Netflix/dispatch style: one class per provider) turns a rendered
:class:`Message` into the provider's request and answers with a :class:`SendResult`, or raises

- :class:`RetryableChannelError` when trying again later may succeed (connection refused or
  reset, timeout, SMTP 4xx, HTTP 408/425/429/5xx, a provider's rate limit), optionally with the
  provider's ``retry_after`` in seconds;
- :class:`PermanentChannelError` when it never will (bad address, SMTP 5xx, HTTP 4xx, a
  provider's "invalid number"): the outbox dead-letters the message instead of retrying.

``send(message, idempotency_key)``: the key is the outbox key of the message; adapters hand it to
providers that accept one (``Idempotency-Key`` header of webhooks, Aliyun's ``OutId``, WeCom's
duplicate check, the email's ``Message-ID``), so a retry after a lost answer can be recognised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from growthwheel.errors import GrowthwheelError

ChannelKind = Literal["email", "sms", "wecom", "webhook"]
#: The kinds of channel a customer can consent to (and be capped on) separately.
CHANNEL_KINDS: tuple[str, ...] = ("email", "sms", "wecom", "webhook")


@dataclass(frozen=True)
class Message:
    """One rendered message to one recipient.

    ``to`` is the address in the channel's terms (an email address, a phone number in E.164 or
    national form, a WeCom user id, ...). ``headers`` are extra email headers (e.g. the RFC 8058
    ``List-Unsubscribe`` pair); ``data`` holds what a provider needs beyond text (the SMS
    template code and its parameters, a WeCom message type, a webhook's JSON payload).
    """

    channel: str
    customer_id: str
    to: str
    subject: str = ""
    text: str = ""
    html: str | None = None
    lang: str = "zh"
    headers: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """What the provider answered: its id for the message (if it gives one) and a short note."""

    provider_id: str | None
    detail: str = ""


class ChannelError(GrowthwheelError):
    """A send failed; ``retryable`` says whether the outbox should try again."""

    code = "channel_error"
    status = 502
    retryable = False

    def __init__(self, message: str, *, provider_code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.provider_code = provider_code
        self.retry_after = retry_after


class RetryableChannelError(ChannelError):
    """A transient failure: try again later (after ``retry_after`` seconds when the provider says)."""

    code = "channel_retryable"
    retryable = True


class PermanentChannelError(ChannelError):
    """A failure that will not go away by retrying: dead-letter the message."""

    code = "channel_permanent"
    retryable = False


@runtime_checkable
class Channel(Protocol):
    """A provider adapter: ``name`` (e.g. ``smtp``), ``kind`` (e.g. ``email``) and ``send``."""

    name: str
    kind: str

    def send(self, message: Message, idempotency_key: str) -> SendResult:
        """Deliver ``message`` once; raise :class:`ChannelError` subclasses on failure."""
        ...

    def close(self) -> None:
        """Release connections (idempotent)."""
        ...


def key_digest(idempotency_key: str, length: int = 32) -> str:
    """A short, provider-safe form of an idempotency key (hex of its SHA-256)."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:length]


def require(message: Message, kind: str) -> None:
    """Refuse (permanently) a message meant for another kind of channel, or without an address."""
    if message.channel != kind:
        raise PermanentChannelError(f"a {message.channel} message cannot go through a {kind} channel")
    if not message.to.strip():
        raise PermanentChannelError(f"the {kind} message for customer {message.customer_id} has no address")
