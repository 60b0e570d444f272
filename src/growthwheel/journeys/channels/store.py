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
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects import postgresql, sqlite
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

ANY_CHANNEL = "*"
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "manual", "imported")


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


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
    statement = _insert(session)(table).values(**values)
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

    statement = _insert(session)(table).values(
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
    session.execute(_insert(session)(table).values(customer_id=customer_id, touched_at=now)
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


def _take_daily(session: Session, channel: str, day: date, limit: int) -> bool:
    table = ChannelDailyCount.__table__
    session.execute(_insert(session)(table).values(channel=channel, day=day, sent=0)
                    .on_conflict_do_nothing(index_elements=[table.c.channel, table.c.day]))
    done = session.execute(update(ChannelDailyCount)
                           .where(ChannelDailyCount.channel == channel, ChannelDailyCount.day == day,
                                  ChannelDailyCount.sent < limit)
                           .values(sent=ChannelDailyCount.sent + 1)
                           .execution_options(synchronize_session=False))
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
    statement = _insert(session)(table).values(
        message_key=message_key[:400], kind=kind, channel=channel[:16], customer_id=customer_id,
        at=now, source=source[:16], detail=(detail or None) and detail[:500],
    ).on_conflict_do_nothing(index_elements=[table.c.message_key, table.c.kind]).returning(table.c.kind)
    return session.execute(statement).scalar() is not None
