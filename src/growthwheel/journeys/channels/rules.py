"""Rules that hold: frequency caps, quiet hours and daily caps, as pure decisions.

Nothing here reads a clock or a database: :func:`decide` takes the instant (UTC), the customer's
recent sends on every channel (from every journey: the send log of ``store.py``), the channel's
count for the shop's local day and the :class:`Rules`, and answers :class:`Decision`
``send`` / ``defer`` (with the UTC instant to try again) / ``drop`` (with the reason).
``store.reserve`` applies it inside a database lock, so concurrent senders cannot both pass a cap.

Time zones: quiet hours and daily caps are in the shop's time zone (IANA name). Local wall times
are turned into instants by :func:`local_instant`, which is DST-safe: a wall time skipped by a
spring-forward change resolves to the first instant after the gap (quiet hours ending at 02:30 on
that night end at 03:00 new time), and a wall time that occurs twice at the autumn change resolves
to its first occurrence. Whether "now" is inside quiet hours is decided on the local wall clock,
so the repeated hour is quiet both times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALL_CHANNELS = "*"
Mode = Literal["defer", "drop"]


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``limit`` messages per customer within any rolling ``window`` on ``channel``
    (``"*"``: all channels together)."""

    channel: str
    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a frequency cap's limit must be at least 1")
        if self.window <= timedelta(0):
            raise ValueError("a frequency cap's window must be positive")

    def applies_to(self, channel: str) -> bool:
        """Whether sends on ``channel`` count against this cap."""
        return self.channel in (ALL_CHANNELS, channel)


@dataclass(frozen=True)
class QuietHours:
    """No sends from ``start`` to ``end`` local time (``start > end`` wraps midnight, e.g.
    21:00–09:00); a message that falls inside is deferred to the end, or dropped if ``mode`` says."""

    start: time
    end: time
    mode: Mode = "defer"

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours need different start and end times")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall times: give them without a time zone")

    def contains(self, wall: time) -> bool:
        """Whether the local wall-clock time ``wall`` is quiet."""
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@dataclass(frozen=True)
class Rules:
    """Everything that limits sends: the shop's time zone, caps, quiet hours, daily caps.

    ``quiet_hours`` maps a channel (or ``"*"``) to its quiet hours; ``daily_caps`` a channel to
    the most messages it may send per local day over all customers. ``cap_mode``: what happens to
    a message over a frequency cap (``drop`` by default: a cap is a promise not to pester; or
    ``defer`` until the window frees up). ``daily_cap_mode``: ``defer`` to the next local day.
    """

    timezone: str = "Asia/Shanghai"
    caps: tuple[FrequencyCap, ...] = ()
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)
    daily_caps: Mapping[str, int] = field(default_factory=dict)
    cap_mode: Mode = "drop"
    daily_cap_mode: Mode = "defer"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r} (use an IANA name)") from exc
        for channel, limit in self.daily_caps.items():
            if limit < 0:
                raise ValueError(f"daily cap of {channel} must not be negative")

    @property
    def zone(self) -> ZoneInfo:
        """The shop's time zone."""
        return ZoneInfo(self.timezone)

    def quiet_for(self, channel: str) -> QuietHours | None:
        """The quiet hours that apply to ``channel`` (its own, else those of ``"*"``)."""
        return self.quiet_hours.get(channel) or self.quiet_hours.get(ALL_CHANNELS)

    @property
    def longest_window(self) -> timedelta:
        """How far back the send history must reach."""
        return max((cap.window for cap in self.caps), default=timedelta(0))


@dataclass(frozen=True)
class Decision:
    """``send``; ``defer`` until ``not_before`` (UTC); or ``drop``. ``reason`` says which rule."""

    action: Literal["send", "defer", "drop"]
    reason: str | None = None
    not_before: datetime | None = None

    @property
    def allowed(self) -> bool:
        """Whether the message may go now."""
        return self.action == "send"


SEND = Decision("send")


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("give times as timezone-aware UTC")
    return now.astimezone(UTC)


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the clocks of ``zone`` show ``wall`` on ``day`` (DST-safe, see
    the module docstring: the first instant after a gap, the first of two occurrences)."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return first.astimezone(UTC)
    # ``naive`` falls in a gap: find the first instant whose wall time is at or after it.
    # Bisect over whole seconds (zone transitions fall on whole seconds) between the two readings.
    ends = sorted(int(naive.replace(tzinfo=zone, fold=f).timestamp()) for f in (0, 1))
    low, high = ends[0] - 1, ends[1] + 1

    def clock_at(second: int) -> datetime:
        return datetime.fromtimestamp(second, UTC).astimezone(zone).replace(tzinfo=None)

    while high - low > 1:
        middle = (low + high) // 2
        if clock_at(middle) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The shop's calendar day at ``now``."""
    return _aware(now).astimezone(zone).date()


def next_local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant the shop's next local day starts."""
    return local_instant(local_day(now, zone) + timedelta(days=1), time(0, 0), zone)


def quiet_until(now: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around ``now`` end (UTC), or ``None`` if ``now`` is not quiet."""
    local = _aware(now).astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not quiet.contains(wall):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and wall >= quiet.start:
        end_day += timedelta(days=1)
    end = local_instant(end_day, quiet.end, zone)
    if end <= _aware(now):  # cannot happen for a valid window; guard against a zone quirk
        end = local_instant(end_day + timedelta(days=1), quiet.end, zone)
    return end


def cap_free_at(now: datetime, channel: str, history: Sequence[tuple[str, datetime]],
                caps: Sequence[FrequencyCap]) -> tuple[FrequencyCap, datetime] | None:
    """The first cap that a send on ``channel`` at ``now`` would break, with the instant it frees
    up; ``None`` if none would. ``history``: ``(channel, sent_at)`` of the customer's sends."""
    now = _aware(now)
    worst: tuple[FrequencyCap, datetime] | None = None
    for cap in caps:
        if not cap.applies_to(channel):
            continue
        since = now - cap.window
        inside = sorted(at for ch, at in history if cap.applies_to(ch) and since < at <= now)
        if len(inside) >= cap.limit:
            free = inside[len(inside) - cap.limit] + cap.window
            if worst is None or free > worst[1]:
                worst = (cap, free)
    return worst


def decide(now: datetime, channel: str, rules: Rules, history: Sequence[tuple[str, datetime]] = (),
           sent_today: int = 0) -> Decision:
    """Whether a message on ``channel`` may go at ``now`` (UTC).

    Order: quiet hours, then the customer's frequency caps, then the channel's daily cap. A
    deferral's ``not_before`` is itself moved out of quiet hours, so the retry is not refused
    again for the same reason.
    """
    now = _aware(now)
    zone = rules.zone
    quiet = rules.quiet_for(channel)

    def defer(reason: str, until: datetime) -> Decision:
        if quiet is not None:
            until = quiet_until(until, quiet, zone) or until
        return Decision("defer", reason, until)

    if quiet is not None:
        end = quiet_until(now, quiet, zone)
        if end is not None:
            if quiet.mode == "drop":
                return Decision("drop", "quiet_hours")
            return Decision("defer", "quiet_hours", end)
    broken = cap_free_at(now, channel, history, rules.caps)
    if broken is not None:
        if rules.cap_mode == "drop":
            return Decision("drop", "frequency_cap")
        return defer("frequency_cap", broken[1])
    limit = rules.daily_caps.get(channel)
    if limit is not None and sent_today >= limit:
        if rules.daily_cap_mode == "drop":
            return Decision("drop", "daily_cap")
        return defer("daily_cap", next_local_midnight(now, zone))
    return SEND
