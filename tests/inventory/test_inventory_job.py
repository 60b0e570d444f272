"""The worker's ``inventory.refresh`` job stores the plan (SQLite), and the migration creates
exactly the model's table (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

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


def _table_of(diff: Any) -> str | None:
    op = diff[0] if isinstance(diff, list) else diff
    for item in op[1:]:
        if isinstance(item, sa.Table):
            return str(item.name)
        if isinstance(item, sa.Index | sa.Constraint) and item.table is not None:
            return str(item.table.name)
    if op[0] in ("add_column", "remove_column") or op[0].startswith("modify_"):
        return str(op[2])
    return None


def test_the_migration_creates_exactly_the_models_table(store_cfg: Settings) -> None:
    from growthwheel.store import models as _models  # noqa: F401
    from growthwheel.store.db import Base

    with db.engine(store_cfg).connect() as conn:
        assert "inventory_plans" in set(sa.inspect(conn).get_table_names())
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert [d for d in diffs if _table_of(d) == "inventory_plans"] == []
