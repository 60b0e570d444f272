"""The bridge between the outbox (``jobs/outbox.py``) and a provider adapter.

:class:`GuardedChannel` implements the outbox's ``Channel`` protocol (``deliver(OutboxMessage) ->
DeliveryResult``). For every message, at the moment it would go out:

1. in one transaction: lock the customer (``store.lock_customer``), refuse (``skipped``) when
   consent is revoked, opt-in is required and missing, or the address is suppressed; then
   :func:`store.reserve` applies quiet hours (``deferred`` to their end, or ``skipped`` when the
   message says ``"on_quiet_hours": "drop"``), the frequency caps across all journeys and the
   channel's daily cap, and counts the send; commit;
2. hand the message to the adapter with the outbox key as idempotency key:
   ``sent``; a :class:`RetryableChannelError` → ``retry`` (after the provider's ``Retry-After``
   if it gave one); a :class:`PermanentChannelError` → ``failed`` (dead letter) and the cap slot
   is given back; a hard email bounce (SMTP 550/551/553) or an illegal phone number also puts the
   address on the suppression list; any SMTP 5xx (and those codes) is recorded as the message's
   ``bounced`` status (:func:`store.record_message_event`).

**Batches.** The outbox calls :meth:`GuardedChannel.prepare` with the messages of a claimed
batch before handing them over: step 1 runs once for the whole batch (customers locked in id
order, consents, suppressions and send histories read with one query each, the reservations made
in order so a second message to the same customer in the batch sees the first;
:func:`store.reserve_many`), and each message's decision is used when it is delivered (within
:data:`PREPARED_FOR`; a message not prepared is admitted alone). One transaction per batch instead
of one per message; the caps hold exactly as before (``tests/journeys/test_guard_batches.py``). A
message reserved in a batch that its worker then did not send (it stopped, or died) stays counted
until it is sent — a retry finds its reservation and is not counted twice — so a crash can only
make the caps stricter for a moment, never looser.

The outbox message's ``payload`` is what :func:`payload_of` makes of a rendered
:class:`~growthwheel.journeys.channels.base.Message` (subject, text, html, lang, headers, data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from growthwheel.config import Settings
from growthwheel.jobs.outbox import DeliveryResult, OutboxMessage
from growthwheel.journeys.channels import rules as rules_mod
from growthwheel.journeys.channels import store
from growthwheel.journeys.channels.base import (
    Channel,
    Message,
    PermanentChannelError,
    RetryableChannelError,
)
from growthwheel.journeys.channels.rules import QuietHours, Rules
from growthwheel.store.db import session_scope

#: How long a decision made for a batch (:meth:`GuardedChannel.prepare`) stands; older, the
#: message is admitted again on its own.
PREPARED_FOR = timedelta(seconds=60)
HARD_BOUNCES = frozenset({"550", "551", "553", "isv.MOBILE_NUMBER_ILLEGAL"})


def bounced(kind: str, provider_code: str | None) -> bool:
    """Whether a permanent refusal is a bounce (the message fact ``message_bounced``): an SMTP 5xx
    reply, or a provider's code for an address that cannot receive (:data:`HARD_BOUNCES`)."""
    code = provider_code or ""
    return code in HARD_BOUNCES or (kind == "email" and len(code) == 3 and code.startswith("5"))


def payload_of(message: Message) -> dict[str, Any]:
    """The outbox payload of a rendered message (JSON-ready)."""
    return {"subject": message.subject, "text": message.text, "html": message.html, "lang": message.lang,
            "headers": dict(message.headers), "data": dict(message.data)}


def message_of(outbox: OutboxMessage, kind: str) -> Message:
    """The :class:`Message` an outbox row carries."""
    payload = outbox.payload
    headers = payload.get("headers") or {}
    headers = {str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}
    data = payload.get("data") or {}
    return Message(channel=kind, customer_id=outbox.customer_id or "", to=outbox.recipient,
                   subject=str(payload.get("subject") or ""), text=str(payload.get("text") or ""),
                   html=payload.get("html") if isinstance(payload.get("html"), str) else None,
                   lang=str(payload.get("lang") or "zh"),
                   headers=headers,
                   data=dict(data) if isinstance(data, Mapping) else {})


def _rules_for(rules: Rules, kind: str, payload: Mapping[str, Any]) -> Rules:
    """``rules`` with the message's own quiet-hours wish (``on_quiet_hours``: defer / drop)."""
    wish = payload.get("on_quiet_hours")
    quiet = rules.quiet_for(kind)
    if wish not in ("defer", "drop") or quiet is None or quiet.mode == wish:
        return rules
    return dataclasses.replace(rules, quiet_hours={**rules.quiet_hours,
                                                   kind: QuietHours(quiet.start, quiet.end, wish)})


def _result(decision: rules_mod.Decision) -> DeliveryResult | None:
    """The outbox's answer for the rules' decision (``None``: send)."""
    if decision.action == "send":
        return None
    if decision.action == "defer":
        return DeliveryResult("deferred", detail=decision.reason or "deferred", retry_at=decision.not_before)
    return DeliveryResult("skipped", detail=decision.reason or "dropped")


class GuardedChannel:
    """An adapter behind consent, suppression, quiet hours and caps (the outbox ``Channel``)."""

    def __init__(self, cfg: Settings, adapter: Channel, rules: Rules, *, require_opt_in: bool = False,
                 idempotent: bool = False, clock: Callable[[], datetime] | None = None) -> None:
        self.cfg = cfg
        self.adapter = adapter
        self.rules = rules
        self.kind = adapter.kind
        self.name = adapter.kind
        self.require_opt_in = require_opt_in
        self.idempotent = idempotent
        self._clock = clock or (lambda: datetime.now(UTC))
        self._prepared: dict[str, tuple[datetime, DeliveryResult | None]] = {}

    def admit(self, outbox: OutboxMessage, now: datetime) -> DeliveryResult | None:
        """Steps 1 of the module docstring: ``None`` when the message may go now (and is counted)."""
        customer = outbox.customer_id
        rules = _rules_for(self.rules, self.kind, outbox.payload)
        with session_scope(self.cfg) as session:
            if customer:
                store.lock_customer(session, customer, now)
                reason = store.blocked(session, customer, self.kind, outbox.recipient,
                                       require_opt_in=self.require_opt_in)
                if reason is not None:
                    return DeliveryResult("skipped", detail=reason)
                decision = store.reserve(session, key=outbox.key, customer_id=customer, channel=self.kind,
                                         now=now, rules=rules).decision
            else:  # a message to staff or a group: only quiet hours apply
                quiet_only = dataclasses.replace(rules, caps=(), daily_caps={})
                decision = rules_mod.decide(now, self.kind, quiet_only)
        return _result(decision)

    def prepare(self, messages: Sequence[OutboxMessage]) -> None:
        """Step 1 for a whole claimed batch in one transaction (the outbox calls this once per
        batch, before it hands the messages over one by one): lock the batch's customers in id
        order, read their consents, the suppressed addresses and their send histories once, and
        reserve (:func:`store.reserve_many`). :meth:`deliver` then uses each message's decision
        instead of opening a transaction of its own; a message not prepared (or prepared by
        another batch) is admitted alone, as before."""
        now = self._clock()
        decided: dict[str, DeliveryResult | None] = {}
        with session_scope(self.cfg) as session:
            personal = [m for m in messages if m.customer_id]
            store.lock_customers(session, [m.customer_id or "" for m in personal], now)
            refused = store.blocked_many(session, self.kind, [(m.customer_id or "", m.recipient)
                                                              for m in personal],
                                         require_opt_in=self.require_opt_in)
            wanted: list[tuple[str, str, Rules]] = []
            for m in personal:
                reason = refused.get((m.customer_id or "", m.recipient))
                if reason is not None:
                    decided[m.key] = DeliveryResult("skipped", detail=reason)
                else:
                    wanted.append((m.key, m.customer_id or "", _rules_for(self.rules, self.kind, m.payload)))
            for key, decision in store.reserve_many(session, wanted, channel=self.kind, now=now).items():
                decided[key] = _result(decision)
        for m in messages:
            if not m.customer_id:
                quiet_only = dataclasses.replace(_rules_for(self.rules, self.kind, m.payload), caps=(),
                                                 daily_caps={})
                decided[m.key] = _result(rules_mod.decide(now, self.kind, quiet_only))
        self._prepared = {key: (now, result) for key, result in decided.items()}

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        """Check, count, send; see the module docstring."""
        now = self._clock()
        prepared = self._prepared.pop(message.key, None)
        if prepared is not None and now - prepared[0] <= PREPARED_FOR:
            now, refused = prepared
        else:
            refused = self.admit(message, now)
        if refused is not None:
            return refused
        try:
            result = self.adapter.send(message_of(message, self.kind), message.key)
        except RetryableChannelError as exc:
            when = now + timedelta(seconds=exc.retry_after) if exc.retry_after else None
            return DeliveryResult("retry", detail=exc.message[:2000], retry_at=when)
        except PermanentChannelError as exc:
            with session_scope(self.cfg) as session:
                store.release(session, message.key)
                if exc.provider_code in HARD_BOUNCES and message.recipient:
                    store.suppress(session, self.kind, message.recipient, "bounced", now=now,
                                   note=exc.message[:500])
                if bounced(self.kind, exc.provider_code):
                    store.record_message_event(session, message_key=message.key, kind="bounced",
                                               channel=self.kind, customer_id=message.customer_id,
                                               now=now, source="send", detail=exc.message)
            return DeliveryResult("failed", detail=exc.message[:2000])
        return DeliveryResult("sent", provider_id=result.provider_id, detail=result.detail)
