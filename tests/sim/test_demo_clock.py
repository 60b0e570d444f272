"""The demo's clock: by default its history ends where the worker lives, today (issue 12)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

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


def test_a_demo_rebuilt_for_a_new_day_forgets_the_old_acting(tmp_path: Path) -> None:
    """Another day's demo replaces the warehouse; the store that recorded the old acting (whose
    facts were in that warehouse) goes with it, so the acting runs again on the new history."""
    import json

    from sqlalchemy import func, select

    from growthwheel.alerts.models import AlertRule
    from growthwheel.alerts.service import ensure_builtin_rules
    from growthwheel.config import Settings
    from growthwheel.sim import demo
    from growthwheel.store.db import migrate, session_scope

    cfg = Settings(data_dir=tmp_path, database_url=None)
    migrate(cfg)
    with session_scope(cfg) as session:
        ensure_builtin_rules(session, actor="demo")
    (tmp_path / demo.MARKER).write_text(json.dumps({"start": "2025-01-01"}), encoding="utf-8")
    (tmp_path / "warehouse.duckdb").write_bytes(b"old")
    assert demo._holds_other_data(cfg, {"start": "2025-12-05"}) is False
    assert not (tmp_path / "warehouse.duckdb").exists()
    migrate(cfg)
    with session_scope(cfg) as session:
        assert session.scalar(select(func.count()).select_from(AlertRule)) == 0
