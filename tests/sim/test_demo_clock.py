"""The demo's clock: by default its history ends where the worker lives, today (issue 12)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow.compute as pc

from growthwheel.sim.demo import history_start, shop_today
from growthwheel.sim.living import history_end
from growthwheel.sim.shop import simulate


def test_shop_today_is_the_shops_day() -> None:
    # 17:00 UTC is already the next day in Shanghai (UTC+8)
    assert shop_today(datetime(2026, 12, 5, 17, 0, tzinfo=UTC)) == date(2026, 12, 6)
    assert shop_today(datetime(2026, 12, 5, 15, 59, tzinfo=UTC)) == date(2026, 12, 5)


def test_history_ends_the_day_before_its_now() -> None:
    end = date(2026, 12, 5)
    start = history_start(365, end)
    assert start == date(2025, 12, 5)
    assert history_end(start, 365) == end  # the living demo acts on the day the history ends


def test_a_history_ending_today_is_deterministic_and_recent() -> None:
    end = date(2026, 12, 5)
    first = simulate(customers_count=300, days=60, seed=3, start=history_start(60, end))
    again = simulate(customers_count=300, days=60, seed=3, start=history_start(60, end))
    lines, same = first.tables["order_lines"], again.tables["order_lines"]
    assert lines.equals(same)  # same seed, same end: the same shop
    days = sorted({str(v)[:10] for v in pc.unique(lines.column("ordered_at")).to_pylist()})
    assert days[0] >= "2026-10-06"  # the 60 days before the end, in shop time
    assert days[-1] <= "2026-12-04"
    assert days[-1] >= "2026-11-28"  # orders up to the last days: a live tick finds active customers
