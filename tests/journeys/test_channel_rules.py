"""Quiet hours across DST changes, rolling frequency caps, daily caps in the shop's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from growthwheel.journeys.channels.rules import (
    FrequencyCap,
    QuietHours,
    Rules,
    decide,
    local_instant,
    next_local_midnight,
    quiet_until,
)

NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_wall_time_skipped_by_spring_forward_resolves_to_the_end_of_the_gap() -> None:
    # 2025-03-09: New York clocks jump from 02:00 EST to 03:00 EDT (07:00 UTC).
    assert local_instant(date(2025, 3, 9), time(2, 30), NY) == utc(2025, 3, 9, 7, 0)
    assert local_instant(date(2025, 3, 9), time(3, 0), NY) == utc(2025, 3, 9, 7, 0)
    assert local_instant(date(2025, 3, 9), time(1, 59), NY) == utc(2025, 3, 9, 6, 59)
    # 2025-11-02: 01:30 happens twice (EDT, then EST): the first one.
    assert local_instant(date(2025, 11, 2), time(1, 30), NY) == utc(2025, 11, 2, 5, 30)


def test_quiet_hours_defer_to_their_local_end_across_both_dst_changes() -> None:
    quiet = QuietHours(time(21, 0), time(9, 0))
    rules = Rules(timezone="America/New_York", quiet_hours={"*": quiet})
    # Saturday 2025-03-08 22:00 EST = 03:08... → quiet until Sunday 09:00 EDT = 13:00 UTC (not 14:00).
    decision = decide(utc(2025, 3, 9, 3, 0), "email", rules)
    assert decision.action == "defer"
    assert decision.reason == "quiet_hours"
    assert decision.not_before == utc(2025, 3, 9, 13, 0)
    assert decision.not_before.astimezone(NY).hour == 9
    # Saturday 2025-11-01 23:30 EDT → Sunday 09:00 EST = 14:00 UTC; 25 h day in between.
    decision = decide(utc(2025, 11, 2, 3, 30), "sms", rules)
    assert decision.not_before == utc(2025, 11, 2, 14, 0)
    # The repeated hour (01:30 EDT and 01:30 EST) is quiet both times.
    assert quiet_until(utc(2025, 11, 2, 5, 30), quiet, NY) == utc(2025, 11, 2, 14, 0)
    assert quiet_until(utc(2025, 11, 2, 6, 30), quiet, NY) == utc(2025, 11, 2, 14, 0)
    # Just after the end it sends.
    assert decide(utc(2025, 3, 9, 13, 0), "email", rules).allowed
    assert decide(utc(2025, 3, 9, 12, 59), "email", rules).action == "defer"


def test_quiet_hours_ending_inside_the_spring_gap_end_when_the_clocks_jump() -> None:
    rules = Rules(timezone="America/New_York", quiet_hours={"*": QuietHours(time(0, 0), time(2, 30))})
    decision = decide(utc(2025, 3, 9, 5, 30), "email", rules)  # 00:30 EST
    assert decision.not_before == utc(2025, 3, 9, 7, 0)  # 03:00 EDT, the first instant after 02:30


def test_quiet_hours_in_shanghai_and_drop_mode() -> None:
    rules = Rules(timezone="Asia/Shanghai", quiet_hours={"sms": QuietHours(time(21, 0), time(8, 0))})
    # 22:15 Beijing time = 14:15 UTC → 08:00 next morning = 00:00 UTC.
    decision = decide(utc(2025, 6, 1, 14, 15), "sms", rules)
    assert decision.not_before == utc(2025, 6, 2, 0, 0)
    assert decide(utc(2025, 6, 1, 14, 15), "email", rules).allowed  # only SMS has quiet hours
    assert decide(utc(2025, 6, 1, 12, 59), "sms", rules).allowed  # 20:59
    dropping = Rules(timezone="Asia/Shanghai", quiet_hours={"*": QuietHours(time(21, 0), time(8, 0), "drop")})
    assert decide(utc(2025, 6, 1, 14, 15), "sms", dropping).action == "drop"
    same_day = QuietHours(time(12, 0), time(14, 0))
    assert quiet_until(utc(2025, 6, 1, 4, 30), same_day, SH) == utc(2025, 6, 1, 6, 0)
    assert quiet_until(utc(2025, 6, 1, 6, 0), same_day, SH) is None


def test_frequency_caps_count_rolling_windows_over_all_journeys_and_channels() -> None:
    now = utc(2025, 5, 10, 12, 0)
    rules = Rules(caps=(FrequencyCap("email", 1, timedelta(hours=24)),
                        FrequencyCap("*", 3, timedelta(days=7))))
    # one email 23 h ago (from another journey): capped for another hour
    history = [("email", now - timedelta(hours=23))]
    assert decide(now, "email", rules, history) == decide(now, "email", rules, history)
    assert decide(now, "email", rules, history).action == "drop"
    assert decide(now, "sms", rules, history).allowed  # the email cap is per channel
    deferring = Rules(caps=rules.caps, cap_mode="defer")
    assert decide(now, "email", deferring, history).not_before == now + timedelta(hours=1)
    # 24 h 1 s ago: outside the window
    assert decide(now, "email", rules, [("email", now - timedelta(hours=24, seconds=1))]).allowed
    # three messages this week on any channel: the all-channel cap frees up when the oldest ages out
    week = [("sms", now - timedelta(days=6)), ("wecom", now - timedelta(days=2)),
            ("email", now - timedelta(days=3))]
    decision = decide(now, "webhook", deferring, week)
    assert decision.action == "defer"
    assert decision.reason == "frequency_cap"
    assert decision.not_before == now + timedelta(days=1)


def test_daily_caps_defer_to_the_next_local_midnight_outside_quiet_hours() -> None:
    rules = Rules(timezone="America/New_York", daily_caps={"sms": 100},
                  quiet_hours={"*": QuietHours(time(21, 0), time(9, 0))})
    now = utc(2025, 3, 8, 20, 0)  # 15:00 EST Saturday
    assert decide(now, "sms", rules, sent_today=99).allowed
    decision = decide(now, "sms", rules, sent_today=100)
    # next local day starts at 00:00 EST (05:00 UTC) but that is quiet: 09:00 EDT (13:00 UTC)
    assert decision.reason == "daily_cap"
    assert decision.not_before == utc(2025, 3, 9, 13, 0)
    assert next_local_midnight(now, NY) == utc(2025, 3, 9, 5, 0)
    assert next_local_midnight(utc(2025, 11, 2, 12, 0), NY) == utc(2025, 11, 3, 5, 0)  # after a 25 h day
    no_quiet = Rules(timezone="America/New_York", daily_caps={"sms": 0}, daily_cap_mode="drop")
    assert decide(now, "sms", no_quiet).action == "drop"


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="limit"):
        FrequencyCap("email", 0, timedelta(days=1))
    with pytest.raises(ValueError, match="different"):
        QuietHours(time(9, 0), time(9, 0))
    with pytest.raises(ValueError, match="unknown time zone"):
        Rules(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(datetime(2025, 1, 1, 12, 0), "email", Rules())  # noqa: DTZ001
