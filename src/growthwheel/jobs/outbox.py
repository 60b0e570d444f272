"""The outbox: every outgoing effect is decided and written in one transaction, then delivered by
the worker — once.

**Writing.** The decider (a journey step, a job) calls :func:`enqueue` inside its *own*
transaction, with a unique ``key`` — for journeys :func:`outbox_key` ``(journey, step, customer,
occurrence)``. Writing the same key twice is a no-op (the unique key, ``INSERT … ON CONFLICT DO
NOTHING``), so a decider that runs again after a crash cannot queue a second message, and a
message exists if and only if the decision committed.

**Delivering.** :func:`deliver_due` claims a batch of due rows under a lease (``claimed``;
PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` then one UPDATE, so several workers take disjoint
batches; SQLite: the same inside ``BEGIN IMMEDIATE``) and commits the claim. A channel with a
``prepare(messages)`` method sees the batch first (the guard checks consent and caps for all of it
in one transaction). Then, one message at a time, it marks the row ``sending`` (committed
*before* the channel is called), hands it to its channel, and records the outcome right after
the channel answers, in the same short transaction that marks the next row ``sending`` (one
transaction per message, two statements built once, on one connection the worker holds for the
batch: about 0.4 ms on SQLite; the ``sending`` mark is what bounds a crash's doubt to one message,
so it is not batched away):

* ``sent`` → ``sent`` (with the provider's id);
* ``skipped`` → ``skipped`` (the channel decided not to send: no consent, suppressed, capped);
* ``deferred`` → back to ``pending`` until ``retry_at`` (quiet hours), not counted as an attempt;
* ``retry`` or an exception → back to ``pending`` with exponential backoff (``backoff_seconds``),
  or ``dead`` (``max_attempts``) after the last attempt;
* ``failed`` → ``dead`` (``refused``): a permanent refusal (bad address, 4xx from a provider).

**In doubt.** A row still ``claimed`` when its lease ran out was never handed to a channel: it is
simply delivered. A row still ``sending`` when its lease ran out belonged to a worker that died
between handing it over and recording the outcome: the channel may or may not have accepted it. If the
channel is ``idempotent`` (the provider de-duplicates on :attr:`OutboxMessage.key`, sent as its
idempotency key) it is simply delivered again. Otherwise it goes to the dead letters with reason
``in_doubt`` instead of being sent a second time: an operator checks and replays it. A crash
can therefore never make a non-idempotent channel send twice; at most the message a worker was
handling at the instant it died waits for a person (at most one per killed worker, since a
worker hands one message at a time to its channel).

**Replay.** :func:`replay` puts dead letters back to ``pending`` with a fresh attempt budget.

The channel protocol (:class:`Channel`) is what ``growthwheel.journeys.channels`` implements; the
worker finds the configured channels through ``growthwheel.journeys.channels.build_channels(cfg)``
when that function exists (see :func:`configured_channels`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, cast, runtime_checkable

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.jobs.models import OutboxRow
from growthwheel.store.db import engine, insert_for, session_scope

log = logging.getLogger(__name__)

DeliveryStatus = Literal["sent", "skipped", "deferred", "retry", "failed"]

MAX_BACKOFF_SECONDS = 6 * 3600
DEFAULT_LEASE_SECONDS = 300
DEFAULT_BATCH = 50


# ---------------------------------------------------------------------------------------------
# The protocol between the outbox and the channels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxMessage:
    """One message as the channel receives it."""

    key: str
    """Unique per outgoing effect; channels send it as the provider's idempotency key (and may
    derive an email ``Message-ID`` from it)."""
    channel: str
    """``email``, ``webhook``, ``wecom``, ``sms``, … (the name the channel is registered under)."""
    recipient: str
    """Address in the channel's terms: an email address, a phone number, a URL, a WeCom user id."""
    payload: Mapping[str, Any]
    """Channel-specific content (subject, template, variables, body, …)."""
    customer_id: str | None = None
    journey_id: str | None = None
    step_id: str | None = None
    occurrence: str | None = None
    attempt: int = 1
    """1 for the first attempt."""
    created_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """What a channel did with a message."""

    status: DeliveryStatus
    provider_id: str | None = None
    """The provider's id for the message (SMTP queue id, provider message id)."""
    detail: str = ""
    """Why (for ``skipped`` / ``retry`` / ``failed``), shown in the console."""
    retry_at: datetime | None = None
    """``deferred``: when to try again (aware). ``retry``: an earliest retry time, if the provider
    said one (``Retry-After``); otherwise the outbox's backoff decides."""


@runtime_checkable
class Channel(Protocol):
    """A way out: email over SMTP, a signed webhook, 企业微信, an SMS provider."""

    name: str
    idempotent: bool
    """True when the provider de-duplicates on the message key (so an in-doubt message can be sent
    again safely); False for e.g. SMTP."""

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        """Send ``message`` once; return the outcome. Raising counts as ``retry``."""
        ...


def configured_channels(cfg: Settings) -> dict[str, Channel]:
    """The channels configured for this data directory, from
    ``growthwheel.journeys.channels.build_channels(cfg)`` (an empty mapping if that is absent)."""
    try:
        from growthwheel.journeys import channels as package
    except ImportError:
        return {}
    build: Callable[[Settings], Mapping[str, Channel]] | None = getattr(package, "build_channels", None)
    return dict(build(cfg)) if build is not None else {}


# ---------------------------------------------------------------------------------------------
# Writing (in the decider's transaction)
# ---------------------------------------------------------------------------------------------


def outbox_key(journey: str, step: str, customer: str, occurrence: str) -> str:
    """The key of a journey's message: one per (journey, step, customer, occurrence)."""
    for name, value in (("journey", journey), ("step", step), ("customer", customer),
                        ("occurrence", occurrence)):
        if not value or "|" in value:
            raise InvalidArgumentError(f"{name}: must be non-empty and free of '|'")
    return f"j|{journey}|{step}|{customer}|{occurrence}"



def enqueue(
    session: Session, *, key: str, channel: str, recipient: str, payload: Mapping[str, Any],
    customer_id: str | None = None, journey_id: str | None = None, step_id: str | None = None,
    occurrence: str | None = None, not_before: datetime | None = None, max_attempts: int = 8,
    now: datetime | None = None,
) -> bool:
    """Queue one outgoing effect in the caller's transaction (never commits). Returns False when a
    row with that ``key`` exists already (then nothing changes)."""
    if not key or len(key) > 400:
        raise InvalidArgumentError("key: 1 to 400 characters")
    if not channel:
        raise InvalidArgumentError("channel: required")
    if max_attempts < 1:
        raise InvalidArgumentError("max_attempts: at least 1")
    when = now or datetime.now(UTC)
    due = not_before or when
    if due.tzinfo is None:
        raise InvalidArgumentError("not_before: give a time zone")
    from growthwheel.accounts.models import new_id

    statement = insert_for(session)(OutboxRow).values(
        id=new_id(), key=key, channel=channel, recipient=recipient, payload=dict(payload),
        customer_id=customer_id, journey_id=journey_id, step_id=step_id, occurrence=occurrence,
        status="pending", attempts=0, max_attempts=max_attempts, next_attempt_at=due, created_at=when,
        replays=0,
    ).on_conflict_do_nothing(index_elements=["key"]).returning(OutboxRow.id)
    return session.execute(statement).scalar() is not None


# ---------------------------------------------------------------------------------------------
# Delivering (the worker)
# ---------------------------------------------------------------------------------------------


def backoff_seconds(attempt: int, base: int, key: str = "") -> int:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``base × 2^(attempt-1)``
    capped at 6 hours, spread by up to ±10 % (deterministic per key and attempt) so that a batch
    that failed together does not retry in lockstep."""
    raw = min(base * 2 ** max(attempt - 1, 0), MAX_BACKOFF_SECONDS)
    digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
    spread = (digest[0] / 255.0 - 0.5) * 0.2
    return max(1, int(raw * (1 + spread)))


def begin_immediate(session: Session) -> None:
    """SQLite: take the write lock now (``BEGIN IMMEDIATE``) so a read-then-update is atomic
    against other processes. PostgreSQL: nothing (row locks do that)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw: Any = connection.connection.driver_connection
    if not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass(frozen=True)
class Claimed:
    """A row claimed for delivery, as it was when claimed."""

    message: OutboxMessage
    id: str
    in_doubt: bool
    max_attempts: int


_OUTBOX = cast(Table, OutboxRow.__table__)


def _claim_statement(in_doubt: bool) -> Any:
    """Take one row under a lease: ``claimed`` (in doubt: its state kept)."""
    table = _OUTBOX
    values: dict[str, Any] = {"lease_owner": bindparam("v_owner"), "lease_until": bindparam("v_until")}
    if not in_doubt:
        values["status"] = "claimed"
    return update(table).where(table.c.id == bindparam("row_id")).values(**values)


_CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}


def claim(session: Session, *, worker: str, now: datetime, limit: int = DEFAULT_BATCH,
          lease_seconds: int = DEFAULT_LEASE_SECONDS) -> list[Claimed]:
    """Claim up to ``limit`` due rows for ``worker`` (in the caller's transaction; commit it before
    delivering). Due: ``pending`` with ``next_attempt_at <= now``; ``claimed`` whose lease ran out
    (a worker took them and died before handing them to a channel: plain pending work); ``sending``
    whose lease ran out (in doubt: handed to a channel, outcome unknown)."""
    begin_immediate(session)
    table = _OUTBOX  # (Core rows, not ORM objects: a claim reads up to a batch of rows each time)
    expired = table.c.lease_until < now
    due = (
        select(table.c.id, table.c.key, table.c.channel, table.c.recipient, table.c.payload,
               table.c.customer_id, table.c.journey_id, table.c.step_id, table.c.occurrence,
               table.c.status, table.c.attempts, table.c.max_attempts, table.c.created_at)
        .where(table.c.next_attempt_at <= now,
               (table.c.status == "pending")
               | (table.c.status.in_(("claimed", "sending")) & expired))
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = list(session.execute(due))
    if not rows:
        return []
    claimed: list[Claimed] = []
    for row in rows:
        in_doubt = row.status == "sending"
        claimed.append(Claimed(
            message=OutboxMessage(
                key=row.key, channel=row.channel, recipient=row.recipient, payload=dict(row.payload),
                customer_id=row.customer_id, journey_id=row.journey_id, step_id=row.step_id,
                occurrence=row.occurrence, attempt=row.attempts + (0 if in_doubt else 1),
                created_at=row.created_at),
            id=row.id, in_doubt=in_doubt, max_attempts=row.max_attempts))
    until = now + timedelta(seconds=lease_seconds)
    for in_doubt in (False, True):  # (one statement, executed for each row: no IN list rendered per batch)
        rows_of = [{"row_id": c.id, "v_owner": worker, "v_until": until}
                   for c in claimed if c.in_doubt == in_doubt]
        if rows_of:
            session.connection().execute(_CLAIM[in_doubt], rows_of)
    return claimed


@dataclass
class DeliveryStats:
    """What one :func:`deliver_due` call did."""

    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    retried: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Counts (and up to 20 error texts) as a plain dict."""
        return {"claimed": self.claimed, "sent": self.sent, "skipped": self.skipped,
                "deferred": self.deferred, "retried": self.retried, "dead": self.dead,
                "errors": self.errors[:20]}


def _done_statement(names: tuple[str, ...]) -> Any:
    """``UPDATE outbox SET <names>, lease released WHERE id = :row_id AND status IN (claimed,
    sending) AND lease_owner = :worker`` with a bound value ``v_<name>`` per column, built once per
    set of column names (:data:`_DONE`)."""
    table = _OUTBOX
    return (update(table)
            .where(table.c.id == bindparam("row_id"), table.c.status.in_(("claimed", "sending")),
                   table.c.lease_owner == bindparam("worker"))
            .values(lease_owner=None, lease_until=None, **{name: bindparam(f"v_{name}") for name in names}))


_DONE: dict[tuple[str, ...], Any] = {}


def _mark_statement(in_doubt: bool) -> Any:
    """``claimed`` → ``sending`` (one attempt more) or, in doubt, ``sending`` kept; lease renewed;
    only while ``:worker`` holds the row."""
    table = _OUTBOX
    return (update(table)
            .where(table.c.id == bindparam("row_id"), table.c.lease_owner == bindparam("worker"),
                   table.c.status == ("sending" if in_doubt else "claimed"))
            .values(status="sending", lease_until=bindparam("v_lease_until"),
                    attempts=table.c.attempts + (0 if in_doubt else 1)))


_MARK = {False: _mark_statement(False), True: _mark_statement(True)}


class _Ledger:
    """The worker's record of a batch on one connection held for the batch, with statements built
    once: one short transaction per message (see :meth:`advance`). Holding the connection and
    reusing the statements is what makes the per-message transaction cheap (a pool checkout and
    two statements built and compiled per message cost about three times the transaction itself)."""

    def __init__(self, cfg: Settings, worker: str, lease_seconds: int) -> None:
        self.connection: Connection = engine(cfg).connect()
        self.worker = worker
        self.lease = timedelta(seconds=lease_seconds)

    def advance(self, done: tuple[str, Mapping[str, Any]] | None, following: Claimed | None, *,
                now: datetime) -> bool:
        """One short transaction: record the outcome of the row just handled (if ``worker`` still
        holds it — after our lease ran out another worker's record wins) and mark the next row as
        handed to its channel (``claimed`` → ``sending``, one attempt more, lease renewed). So at
        any instant at most one row of a worker's batch is ``sending``: the one its channel may be
        holding. Returns whether the next row is still ours (when its lease ran out another worker
        may have it)."""
        with self.connection.begin():
            if done is not None:
                row_id, values = done
                names = tuple(sorted(values))
                statement = _DONE.get(names)
                if statement is None:
                    statement = _DONE[names] = _done_statement(names)
                self.connection.execute(statement, {"row_id": row_id, "worker": self.worker,
                                                    **{f"v_{k}": v for k, v in values.items()}})
            if following is None:
                return False
            marked = self.connection.execute(
                _MARK[following.in_doubt],
                {"row_id": following.id, "worker": self.worker, "v_lease_until": now + self.lease})
            return int(getattr(marked, "rowcount", 0)) == 1

    def close(self) -> None:
        """Give the connection back to the pool."""
        self.connection.close()


def _advance(cfg: Settings, worker: str, done: tuple[str, Mapping[str, Any]] | None,
             following: Claimed | None, *, now: datetime, lease_seconds: int) -> bool:
    """:meth:`_Ledger.advance` on a connection of its own (one step, e.g. in a test)."""
    ledger = _Ledger(cfg, worker, lease_seconds)
    try:
        return ledger.advance(done, following, now=now)
    finally:
        ledger.close()


def _outcome(item: Claimed, result: DeliveryResult, now: datetime, backoff_base: int) -> dict[str, Any]:
    """The row's new values for a channel's answer."""
    attempt = item.message.attempt
    if result.status == "sent":
        return {"status": "sent", "sent_at": now, "provider_id": result.provider_id, "last_error": None}
    if result.status == "skipped":
        return {"status": "skipped", "last_error": result.detail or None}
    if result.status == "deferred":
        when = result.retry_at or now + timedelta(seconds=backoff_base)
        return {"status": "pending", "next_attempt_at": when, "attempts": max(attempt - 1, 0),
                "last_error": result.detail or "deferred"}
    if result.status == "failed":
        return {"status": "dead", "dead_reason": "refused", "dead_at": now, "last_error": result.detail}
    if attempt >= item.max_attempts:
        return {"status": "dead", "dead_reason": "max_attempts", "dead_at": now, "last_error": result.detail}
    wait = backoff_seconds(attempt, backoff_base, item.message.key)
    when = now + timedelta(seconds=wait)
    if result.retry_at is not None and result.retry_at > when:
        when = result.retry_at
    return {"status": "pending", "next_attempt_at": when, "last_error": result.detail}


def _handle(item: Claimed, channel: Channel | None, stats: DeliveryStats, clock: Callable[[], datetime],
            backoff_base: int) -> dict[str, Any]:
    """Hand one row to its channel (or dead-letter it) and count the outcome; returns the row's new
    values."""
    now = clock()
    values: dict[str, Any]
    if item.in_doubt and not (channel is not None and channel.idempotent):
        values = {"status": "dead", "dead_reason": "in_doubt", "dead_at": now,
                  "last_error": "its worker stopped before recording the outcome; check and replay"}
    elif channel is None:
        values = {"status": "dead", "dead_reason": "no_channel", "dead_at": now,
                  "last_error": f"no channel {item.message.channel!r} is configured"}
    else:
        try:
            result = channel.deliver(item.message)
        except Exception as exc:
            log.warning("outbox %s: %s raised %r", item.message.key, item.message.channel, exc)
            result = DeliveryResult("retry", detail=f"{type(exc).__name__}: {exc}"[:2000])
            stats.errors.append(result.detail)
        values = _outcome(item, result, clock(), backoff_base)
        if result.status == "deferred":
            stats.deferred += 1
        elif values["status"] == "pending":
            stats.retried += 1
    status = values["status"]
    if status == "sent":
        stats.sent += 1
    elif status == "skipped":
        stats.skipped += 1
    elif status == "dead":
        stats.dead += 1
    return values


def _prepare(channels: Mapping[str, Channel], batch: Sequence[Claimed]) -> None:
    """Let each channel that can check a whole batch at once (a ``prepare(messages)`` method: the
    guard's consent and caps in one transaction instead of one per message) see the messages it is
    about to be handed, in-doubt ones excepted (each of those is decided on its own)."""
    by_channel: dict[str, list[OutboxMessage]] = {}
    for item in batch:
        if not item.in_doubt:
            by_channel.setdefault(item.message.channel, []).append(item.message)
    for name, messages in by_channel.items():
        channel = channels.get(name)
        prepare: Callable[[Sequence[OutboxMessage]], None] | None = getattr(channel, "prepare", None)
        if prepare is not None:
            prepare(messages)


def _hand_back(cfg: Settings, worker: str, rest: Sequence[str], now: datetime) -> None:
    """A stopping worker hands back what it did not start: pending again, no attempt counted (an
    in-doubt row keeps its state, with an expired lease so that the next claim looks at it again)."""
    with session_scope(cfg) as session:
        mine = (OutboxRow.id.in_(list(rest)), OutboxRow.lease_owner == worker)
        session.execute(
            update(OutboxRow).where(*mine, OutboxRow.status == "claimed")
            .values(status="pending", lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False))
        session.execute(
            update(OutboxRow).where(*mine, OutboxRow.status == "sending")
            .values(lease_until=now - timedelta(seconds=1))
            .execution_options(synchronize_session=False))


def deliver_due(
    cfg: Settings, channels: Mapping[str, Channel], *, worker: str, clock: Callable[[], datetime],
    limit: int = DEFAULT_BATCH, lease_seconds: int = DEFAULT_LEASE_SECONDS, backoff_base: int = 30,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeliveryStats:
    """Claim one batch of due messages and deliver it (see the module docstring)."""
    stats = DeliveryStats()
    with session_scope(cfg) as session:
        batch = claim(session, worker=worker, now=clock(), limit=limit, lease_seconds=lease_seconds)
    stats.claimed = len(batch)
    if not batch:
        return stats
    _prepare(channels, batch)

    ledger = _Ledger(cfg, worker, lease_seconds)
    try:
        ours = ledger.advance(None, batch[0], now=clock())
        for index, item in enumerate(batch):
            following = batch[index + 1] if index + 1 < len(batch) else None
            done: tuple[str, Mapping[str, Any]] | None = None
            if ours:  # (else our lease on it ran out and another worker took it: leave it alone)
                channel = channels.get(item.message.channel)
                done = (item.id, _handle(item, channel, stats, clock, backoff_base))
            stopping = following is not None and should_stop()
            ours = ledger.advance(done, None if stopping else following, now=clock())
            if stopping:
                _hand_back(cfg, worker, [later.id for later in batch[index + 1:]], clock())
                break
    finally:
        ledger.close()
    return stats


# ---------------------------------------------------------------------------------------------
# Dead letters
# ---------------------------------------------------------------------------------------------


def replay(session: Session, ids: Sequence[str], *, now: datetime, principal: Principal | None = None,
           actor_name: str | None = None) -> int:
    """Put these dead letters back in the queue with a fresh attempt budget; returns how many (rows
    that are not dead are left alone). Audited."""
    done = session.execute(
        update(OutboxRow).where(OutboxRow.id.in_(list(ids)), OutboxRow.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=now, dead_reason=None, dead_at=None,
                lease_owner=None, lease_until=None, replays=OutboxRow.replays + 1)
        .execution_options(synchronize_session=False))
    count = int(getattr(done, "rowcount", 0))
    if count:
        audit(session, principal, "outbox.replay", "outbox", {"ids": list(ids)[:100], "replayed": count},
              actor_name=actor_name)
    return count


def counts(session: Session) -> dict[str, int]:
    """Rows per status."""
    found = dict.fromkeys(("pending", "claimed", "sending", "sent", "skipped", "dead"), 0)
    for status, number in session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)):
        found[str(status)] = int(number)
    return found


def dead_letters(session: Session, limit: int = 100) -> list[OutboxRow]:
    """The newest dead letters."""
    return list(session.scalars(select(OutboxRow).where(OutboxRow.status == "dead")
                                .order_by(OutboxRow.dead_at.desc(), OutboxRow.id).limit(limit)))


__all__ = [
    "Channel", "Claimed", "DeliveryResult", "DeliveryStats", "OutboxMessage", "backoff_seconds", "claim",
    "configured_channels", "counts", "dead_letters", "deliver_due", "enqueue", "outbox_key",
    "replay",
]
