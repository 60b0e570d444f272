"""Consent, suppression, the capped send log and clicks: every query of the channels.

Concurrency: :func:`reserve` is the only way a message gets counted. In the caller's transaction
it takes the customer's lock row (PostgreSQL: ``INSERT … ON CONFLICT DO NOTHING`` then ``SELECT …
FOR UPDATE``; SQLite: ``BEGIN IMMEDIATE`` first, so the whole check-and-log runs alone), reads the
customer's sends over the longest cap window — on every channel, from every journey — asks
:func:`rules.decide`, and only then logs the send and raises the channel's day counter with one
conditional ``UPDATE … WHERE sent < cap``. Two senders for one customer therefore go one after
the other and the second sees the first's row; two senders for different customers race only on
the day counter, which the database evaluates against the committed value. Callers commit.

Reservations are idempotent on the message key: a retry of the same message finds its row and is
let through without counting again. :func:`release` gives a slot back when a send failed for good.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, select, update
from sqlalchemy.orm import Session

from growthwheel.journeys.channels import rules as rules_mod
from growthwheel.journeys.channels.links import ClickToken
from growthwheel.journeys.channels.models import (
    MESSAGE_EVENT_KINDS,
    ChannelClick,
    ChannelConsent,
    ChannelCustomerLock,
    ChannelDailyCount,
    ChannelMessageEvent,
    ChannelSend,
    ChannelSuppression,
)
from growthwheel.journeys.channels.rules import Decision, Rules
from growthwheel.store.db import insert_for

ANY_CHANNEL = "*"
_CHUNK = 500
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "manual", "imported")



def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def begin_write(session: Session) -> None:
    """SQLite: open the transaction with ``BEGIN IMMEDIATE`` (unless it is already writing) so that
    what is read next cannot change before commit. PostgreSQL: nothing (row locks do that)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    raw: Any = connection.connection.driver_connection
    if not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def normalize_address(channel: str, address: str) -> str:
    """The form addresses are compared in: emails lower-cased, phones digits (with a leading +)."""
    address = address.strip()
    if channel == "email":
        return address.lower()
    if channel == "sms":
        digits = re.sub(r"[^\d+]", "", address)
        return digits[:1] + digits[1:].replace("+", "")
    return address


# ---------------------------------------------------------------------------------------------
# Consent and suppression
# ---------------------------------------------------------------------------------------------


def set_consent(session: Session, customer_id: str, channel: str, granted: bool, *, source: str,
                now: datetime, message_key: str | None = None) -> None:
    """Record that the customer granted (or revoked) messages on ``channel``."""
    table = ChannelConsent.__table__
    values = {"customer_id": customer_id, "channel": channel, "status": "granted" if granted else "revoked",
              "source": source[:32], "message_key": message_key, "updated_at": now}
    statement = insert_for(session)(table).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.customer_id, table.c.channel],
        set_={k: statement.excluded[k] for k in ("status", "source", "message_key", "updated_at")})
    session.execute(statement)


def consent(session: Session, customer_id: str, channel: str) -> ChannelConsent | None:
    """The customer's consent row for ``channel`` (``None``: never asked)."""
    return session.get(ChannelConsent, (customer_id, channel))


def suppress(session: Session, channel: str, address: str, reason: str, *, now: datetime,
             note: str | None = None) -> bool:
    """Put ``address`` on ``channel``'s suppression list (``*``: all); False if it was there."""
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"reason must be one of {', '.join(SUPPRESSION_REASONS)}")
    table = ChannelSuppression.__table__
    from growthwheel.accounts.models import new_id

    statement = insert_for(session)(table).values(
        id=new_id(), channel=channel, address=normalize_address(channel, address), reason=reason,
        note=note, created_at=now).on_conflict_do_nothing(index_elements=[table.c.channel, table.c.address])
    return _rowcount(session.execute(statement)) == 1


def unsuppress(session: Session, channel: str, address: str) -> bool:
    """Take ``address`` off ``channel``'s list; False if it was not on it."""
    row = session.scalars(select(ChannelSuppression).where(
        ChannelSuppression.channel == channel,
        ChannelSuppression.address == normalize_address(channel, address))).first()
    if row is None:
        return False
    session.delete(row)
    return True


def blocked(session: Session, customer_id: str, channel: str, address: str, *,
            require_opt_in: bool) -> str | None:
    """Why a message may not go to this customer / address at all, or ``None``.

    ``unsubscribed`` (consent revoked), ``no_consent`` (opt-in required and never granted),
    ``suppressed`` (the address is on the channel's or the global list).
    """
    row = consent(session, customer_id, channel)
    if row is not None and row.status == "revoked":
        return "unsubscribed"
    if require_opt_in and (row is None or row.status != "granted"):
        return "no_consent"
    normal = normalize_address(channel, address)
    hit = session.scalars(select(ChannelSuppression.id).where(
        ChannelSuppression.channel.in_((channel, ANY_CHANNEL)), ChannelSuppression.address == normal)).first()
    return "suppressed" if hit is not None else None


# ---------------------------------------------------------------------------------------------
# Caps
# ---------------------------------------------------------------------------------------------


def lock_customer(session: Session, customer_id: str, now: datetime) -> None:
    """Hold the customer's lock row until the transaction ends (created if missing)."""
    begin_write(session)
    table = ChannelCustomerLock.__table__
    session.execute(insert_for(session)(table).values(customer_id=customer_id, touched_at=now)
                    .on_conflict_do_nothing(index_elements=[table.c.customer_id]))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(ChannelCustomerLock.customer_id)
                        .where(ChannelCustomerLock.customer_id == customer_id).with_for_update())


def history(session: Session, customer_id: str, since: datetime) -> list[tuple[str, datetime]]:
    """The customer's counted sends after ``since``: ``(channel, sent_at)``."""
    rows = session.execute(select(ChannelSend.channel, ChannelSend.sent_at).where(
        ChannelSend.customer_id == customer_id, ChannelSend.status == "reserved",
        ChannelSend.sent_at > since))
    return [(str(channel), at) for channel, at in rows]


def sent_on(session: Session, channel: str, day: date) -> int:
    """Messages counted on ``channel`` during the shop-local ``day``."""
    value = session.scalar(select(ChannelDailyCount.sent).where(
        ChannelDailyCount.channel == channel, ChannelDailyCount.day == day))
    return int(value or 0)


def _open_day(session: Session, channel: str, day: date) -> None:
    table = ChannelDailyCount.__table__
    session.execute(insert_for(session)(table).values(channel=channel, day=day, sent=0)
                    .on_conflict_do_nothing(index_elements=[table.c.channel, table.c.day]))


def _take_daily(session: Session, channel: str, day: date, limit: int, *, opened: bool = False,
                slots: int = 1) -> bool:
    """Take ``slots`` sends of the day's count on ``channel``, all or none (False when they no
    longer fit under ``limit``)."""
    if not opened:
        _open_day(session, channel, day)
    table = cast(Table, ChannelDailyCount.__table__)  # (Core: no ORM bookkeeping on this hot path)
    done = session.execute(update(table)
                           .where(table.c.channel == channel, table.c.day == day,
                                  table.c.sent + slots <= limit)
                           .values(sent=table.c.sent + slots))
    return _rowcount(done) == 1


@dataclass(frozen=True)
class Reservation:
    """The outcome of :func:`reserve`: the rules' decision and whether it was a repeat."""

    decision: Decision
    repeat: bool = False


def reserve(session: Session, *, key: str, customer_id: str, channel: str, now: datetime,
            rules: Rules) -> Reservation:
    """Check a send against the caps and count it (see the module docstring). Never commits."""
    lock_customer(session, customer_id, now)
    existing = session.get(ChannelSend, key, populate_existing=True)
    if existing is not None and existing.status == "reserved":
        return Reservation(rules_mod.SEND, repeat=True)
    zone = rules.zone
    day = rules_mod.local_day(now, zone)
    past = history(session, customer_id, now - rules.longest_window) if rules.caps else []
    limit = rules.daily_caps.get(channel)
    today = sent_on(session, channel, day) if limit is not None else 0
    decision = rules_mod.decide(now, channel, rules, past, today)
    if not decision.allowed:
        return Reservation(decision)
    counted = 0
    if limit is not None:
        if not _take_daily(session, channel, day, limit):  # another customer's sender took the last one
            return Reservation(rules_mod.decide(now, channel, rules, past, limit))
        counted = 1
    if existing is not None:  # released earlier, now sent again
        existing.status, existing.sent_at, existing.local_day, existing.counted_daily = (
            "reserved", now, day, counted)
    else:
        session.add(ChannelSend(key=key, customer_id=customer_id, channel=channel, sent_at=now,
                                local_day=day, counted_daily=counted, status="reserved"))
    session.flush()
    return Reservation(decision)


def lock_customers(session: Session, customer_ids: Sequence[str], now: datetime) -> None:
    """:func:`lock_customer` for several customers at once, taken in id order (so two batches
    that share customers never wait on each other in a cycle)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    begin_write(session)
    table = ChannelCustomerLock.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(ids), _CHUNK):
        part = ids[start:start + _CHUNK]
        rows = [{"customer_id": c, "touched_at": now} for c in part]
        session.execute(insert_for(session)(table).values(rows)
                        .on_conflict_do_nothing(index_elements=[table.c.customer_id]))
        if postgres:
            session.execute(select(table.c.customer_id).where(table.c.customer_id.in_(part))
                            .order_by(table.c.customer_id).with_for_update())


def blocked_many(session: Session, channel: str, targets: Sequence[tuple[str, str]], *,
                 require_opt_in: bool) -> dict[tuple[str, str], str]:
    """:func:`blocked` for many ``(customer id, address)`` pairs in two queries: the pairs that
    may not receive anything, with the reason (pairs that may are absent)."""
    consents: dict[str, str] = {}
    suppressed: set[str] = set()
    customers = sorted({c for c, _a in targets})
    addresses = sorted({normalize_address(channel, a) for _c, a in targets})
    for start in range(0, len(customers), _CHUNK):
        part = customers[start:start + _CHUNK]
        rows = session.execute(select(ChannelConsent.customer_id, ChannelConsent.status).where(
            ChannelConsent.channel == channel, ChannelConsent.customer_id.in_(part)))
        consents.update({str(c): str(status) for c, status in rows})
    for start in range(0, len(addresses), _CHUNK):
        suppressed.update(str(a) for a in session.scalars(select(ChannelSuppression.address).where(
            ChannelSuppression.channel.in_((channel, ANY_CHANNEL)),
            ChannelSuppression.address.in_(addresses[start:start + _CHUNK]))))
    found: dict[tuple[str, str], str] = {}
    for customer, address in targets:
        status = consents.get(customer)
        if status == "revoked":
            found[(customer, address)] = "unsubscribed"
        elif require_opt_in and status != "granted":
            found[(customer, address)] = "no_consent"
        elif normalize_address(channel, address) in suppressed:
            found[(customer, address)] = "suppressed"
    return found


def reserve_many(session: Session, requests: Sequence[tuple[str, str, Rules]], *, channel: str,
                 now: datetime) -> dict[str, Decision]:
    """:func:`reserve` for a batch of messages on one ``channel`` (``requests``: message key,
    customer id, the message's rules — they differ at most in the quiet-hours mode), in a handful
    of queries: the callers hold every customer's lock (:func:`lock_customers`), so reading each
    customer's history once and counting the batch's own reservations as they are made gives the
    decisions :func:`reserve` would give one after the other. The day counter (other customers'
    senders share it) is taken for the whole batch with one conditional ``UPDATE`` (``sent + n <=
    limit``); when that no longer fits because other senders took slots since it was read, the
    batch is decided again taking one slot per send, as before. Never commits."""
    if not requests:
        return {}
    keys = [key for key, _c, _r in requests]
    existing: dict[str, ChannelSend] = {}
    for start in range(0, len(keys), _CHUNK):
        existing.update({row.key: row for row in session.scalars(
            select(ChannelSend).where(ChannelSend.key.in_(keys[start:start + _CHUNK])))})
    first = requests[0][2]
    day = rules_mod.local_day(now, first.zone)
    past: dict[str, list[tuple[str, datetime]]] = {}
    windows = [r.longest_window for _k, _c, r in requests if r.caps]
    if windows:
        customers = sorted({c for _k, c, _r in requests})
        since = now - max(windows)
        for start in range(0, len(customers), _CHUNK):
            for customer, sent_channel, at in session.execute(
                    select(ChannelSend.customer_id, ChannelSend.channel, ChannelSend.sent_at).where(
                        ChannelSend.customer_id.in_(customers[start:start + _CHUNK]),
                        ChannelSend.status == "reserved", ChannelSend.sent_at > since)):
                past.setdefault(str(customer), []).append((str(sent_channel), at))
    limit = first.daily_caps.get(channel)
    today = sent_on(session, channel, day) if limit is not None else 0
    if limit is not None:
        _open_day(session, channel, day)

    def plan(take: Callable[[], bool] | None) -> tuple[dict[str, Decision], list[tuple[str, str, int]]]:
        """The decisions in order, and the sends to count: ``(key, customer, counted daily)``.
        ``take`` takes one slot of the day counter (``None``: counted here, taken in bulk after)."""
        decisions: dict[str, Decision] = {}
        counted_sends: list[tuple[str, str, int]] = []
        histories = {customer: list(sends) for customer, sends in past.items()}
        count = today
        for key, customer, rules in requests:
            row = existing.get(key)
            if key in decisions or (row is not None and row.status == "reserved"):
                decisions[key] = rules_mod.SEND  # a repeat: let through, not counted again
                continue
            history_of = histories.setdefault(customer, [])
            decision = rules_mod.decide(now, channel, rules, history_of, count)
            if not decision.allowed:
                decisions[key] = decision
                continue
            counted = 0
            if limit is not None:
                if take is not None and not take():  # another customer's sender took the last one
                    decisions[key] = rules_mod.decide(now, channel, rules, history_of, limit)
                    continue
                counted, count = 1, count + 1
            counted_sends.append((key, customer, counted))
            history_of.append((channel, now))
            decisions[key] = decision
        return decisions, counted_sends

    # Counted here and taken from the day counter with one conditional UPDATE; only when other
    # senders took slots meanwhile (PostgreSQL) so that the batch no longer fits is it decided
    # again, one conditional UPDATE per send, as each would have been alone.
    decisions, sends = plan(None)
    taken = sum(counted for _k, _c, counted in sends)
    if limit is not None and taken and not _take_daily(session, channel, day, limit, opened=True,
                                                       slots=taken):
        cap = limit
        decisions, sends = plan(lambda: _take_daily(session, channel, day, cap, opened=True))
    fresh: list[dict[str, Any]] = []
    for key, customer, counted in sends:
        row = existing.get(key)
        if row is not None:  # released earlier, now sent again
            row.status, row.sent_at, row.local_day, row.counted_daily = "reserved", now, day, counted
        else:
            fresh.append({"key": key, "customer_id": customer, "channel": channel, "sent_at": now,
                          "local_day": day, "counted_daily": counted, "status": "reserved"})
    if fresh:
        session.execute(insert(cast(Table, ChannelSend.__table__)), fresh)
    session.flush()
    return decisions


def release(session: Session, key: str) -> bool:
    """Stop counting the send ``key`` (it failed for good); False if it was not counted."""
    row = session.get(ChannelSend, key, with_for_update=True)
    if row is None or row.status != "reserved":
        return False
    row.status = "released"
    if row.counted_daily:
        session.execute(update(ChannelDailyCount)
                        .where(ChannelDailyCount.channel == row.channel,
                               ChannelDailyCount.day == row.local_day, ChannelDailyCount.sent > 0)
                        .values(sent=ChannelDailyCount.sent - 1).execution_options(synchronize_session=False))
        row.counted_daily = 0
    session.flush()
    return True


# ---------------------------------------------------------------------------------------------
# Links
# ---------------------------------------------------------------------------------------------


def record_click(session: Session, click: ClickToken, *, now: datetime, user_agent: str | None) -> None:
    """Log a click on a tracked link."""
    session.add(ChannelClick(message_key=click.message_key[:400], customer_id=click.customer_id,
                             channel=click.channel[:16], url=click.url, clicked_at=now,
                             user_agent=(user_agent or None) and user_agent[:300]))


def clicks(session: Session, message_key: str) -> list[ChannelClick]:
    """The clicks on one message's links, oldest first."""
    return list(session.scalars(select(ChannelClick).where(ChannelClick.message_key == message_key)
                                .order_by(ChannelClick.clicked_at, ChannelClick.id)))


# ---------------------------------------------------------------------------------------------
# What became of a message after it went out
# ---------------------------------------------------------------------------------------------


def record_message_event(session: Session, *, message_key: str, kind: str, channel: str,
                         customer_id: str | None, now: datetime, source: str,
                         detail: str | None = None) -> bool:
    """Record that message ``message_key`` was delivered / opened / bounced / unsubscribed
    (``kind``), once: False (and nothing changes) when that status was recorded already."""
    if kind not in MESSAGE_EVENT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(MESSAGE_EVENT_KINDS)}")
    table = ChannelMessageEvent.__table__
    statement = insert_for(session)(table).values(
        message_key=message_key[:400], kind=kind, channel=channel[:16], customer_id=customer_id,
        at=now, source=source[:16], detail=(detail or None) and detail[:500],
    ).on_conflict_do_nothing(index_elements=[table.c.message_key, table.c.kind]).returning(table.c.kind)
    return session.execute(statement).scalar() is not None
