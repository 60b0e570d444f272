"""The worker's ``inventory.refresh`` job stores the plan (SQLite), and the migration creates
exactly the model's table (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from growthwheel.config import Settings
from growthwheel.inventory import service
from growthwheel.jobs import scheduler
from growthwheel.jobs import tasks as _tasks  # registers the jobs
from growthwheel.store import db
from growthwheel.warehouse import ingest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "generic"
NOW = datetime(2024, 7, 5, 3, 30, tzinfo=UTC)


def test_the_daily_job_is_scheduled_and_stores_the_plan(tmp_path: Path) -> None:
    assert any(s.name == "inventory.refresh" and s.daily_at == "03:30" for s in _tasks.DEFAULT_SCHEDULES)
    cfg = Settings(data_dir=tmp_path, database_url=None)
    for table, name in (("products", "products.csv"), ("order_lines", "order_lines.csv"),
                        ("inventory", "inventory.csv")):
        ingest.import_files(table, [EXAMPLES / name], cfg=cfg)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        assert service.latest(session) is None
        spec = scheduler.ScheduleSpec("inventory.refresh", "inventory.refresh", every_seconds=86_400)
        scheduler.put_schedule(session, spec, now=NOW, timezone="UTC")
    outcomes = scheduler.run_due(cfg, worker="w", clock=lambda: NOW, timezone="UTC")
    assert [o.status for o in outcomes] == ["succeeded"], outcomes
    with db.session_scope(cfg) as session:
        row = service.latest(session)
        assert row is not None
        assert row.as_of == "2024-07-04"
        assert row.skus == len(row.report["items"]) >= 6
        assert row.report["backtest"]["mase"]["baseline_holdout"] is not None
    db.engine(cfg).dispose()
