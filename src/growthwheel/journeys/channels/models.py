"""Tables of the message channels in the operational store (migration 0008).

``channel_consents``       one row per (customer, channel): ``granted`` or ``revoked`` (an
                           unsubscribe link revokes), where it came from and when.
``channel_suppressions``   addresses never to send to on a channel (``*``: any channel): hard
                           bounces, complaints, imported lists, manual entries.
``channel_sends``          the send log the caps count: one row per message key (unique), with
                           the customer, channel, instant and the shop-local day; ``released``
                           rows (a send that permanently failed) no longer count.
``channel_customer_locks`` one row per customer, locked (``SELECT … FOR UPDATE``; on SQLite the
                           write lock) while a send is checked against the caps and logged, so
                           concurrent senders for one customer go one at a time.
``channel_daily_counts``   per (channel, local day): messages reserved, raised by one
                           conditional ``UPDATE … WHERE sent < cap`` (the global daily cap).
``channel_clicks``         one row per click on a tracked link.
``channel_message_events`` what became of a message after it went out (migration 0011): one row
                           per (message key, kind) — ``delivered`` (a provider's delivery
                           callback), ``opened`` (the first load of the email's open pixel),
                           ``bounced`` (an SMTP 5xx at send time, or a provider's bounce / DSN
                           callback), ``unsubscribed`` (the message's one-click link); the key
                           makes each happen once however often it is reported.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id
from growthwheel.store.db import Base

ID = 64


class ChannelConsent(Base):
    """Whether a customer agreed to messages on a channel."""

    __tablename__ = "channel_consents"
    __table_args__ = (CheckConstraint("status IN ('granted', 'revoked')", name="status"),)

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(32))
    message_key: Mapped[str | None] = mapped_column(String(400), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelSuppression(Base):
    """An address not to send to on ``channel`` (``*`` = every channel)."""

    __tablename__ = "channel_suppressions"
    __table_args__ = (
        UniqueConstraint("channel", "address", name="uq_channel_suppressions_address"),
        CheckConstraint("reason IN ('unsubscribed', 'bounced', 'complained', 'manual', 'imported')",
                        name="reason"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelSend(Base):
    """A message counted against the caps (one per outbox key)."""

    __tablename__ = "channel_sends"
    __table_args__ = (
        CheckConstraint("status IN ('reserved', 'released')", name="status"),
        Index("ix_channel_sends_customer_at", "customer_id", "sent_at"),
    )

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(ID))
    channel: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    local_day: Mapped[date] = mapped_column(Date)
    counted_daily: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(8), default="reserved")


class ChannelCustomerLock(Base):
    """The row a sender locks while it checks and logs a send to this customer."""

    __tablename__ = "channel_customer_locks"

    customer_id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelDailyCount(Base):
    """Messages reserved on a channel during one shop-local day."""

    __tablename__ = "channel_daily_counts"
    __table_args__ = (CheckConstraint("sent >= 0", name="sent"),)

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)


class ChannelClick(Base):
    """A click on a tracked link (before the redirect)."""

    __tablename__ = "channel_clicks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    message_key: Mapped[str] = mapped_column(String(400), index=True)
    customer_id: Mapped[str] = mapped_column(String(ID), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(300), default=None)


MESSAGE_EVENT_KINDS = ("delivered", "opened", "bounced", "unsubscribed")


class ChannelMessageEvent(Base):
    """One status of one message, reported after the send (once per message and kind)."""

    __tablename__ = "channel_message_events"
    __table_args__ = (
        CheckConstraint("kind IN ('delivered', 'opened', 'bounced', 'unsubscribed')", name="kind"),
        Index("ix_channel_message_events_at", "at"),
    )

    message_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(ID), default=None)
    channel: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))
    """``send`` (the provider's answer when sending), ``callback``, ``pixel`` or ``link``."""
    detail: Mapped[str | None] = mapped_column(String(500), default=None)
