"""``growthwheel alerts …`` on a data directory with imported orders (no server running)."""

from __future__ import annotations

import json
from pathlib import Path

from test_alerts_api import SPIKE, _orders_csv
from typer.testing import CliRunner

from growthwheel.alerts import inbox, rules, service
from growthwheel.cli.main import app
from growthwheel.config import Settings
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse import ingest

runner = CliRunner()


def test_evaluate_list_ack_resolve(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(_orders_csv(), encoding="utf-8")
    data = tmp_path / "data"
    ingest.import_files("orders", [tmp_path / "orders.csv"], cfg=Settings(data_dir=data, database_url=None))
    cfg = Settings(data_dir=data, database_url=None)
    migrate(cfg)
    with session_scope(cfg) as session:
        service.create_rule(session, rules.RuleSpec(name="orders up", metric="orders", kind="anomaly",
                                                     params={"direction": "up"}), actor="tests")
    base = ["--data-dir", str(data), "alerts"]
    listed_rules = runner.invoke(app, [*base, "rules", "--json"])
    assert listed_rules.exit_code == 0, listed_rules.output
    assert {r["builtin"] for r in json.loads(listed_rules.output)} >= {"cac_up", "negative_reviews_up"}
    made = runner.invoke(app, [*base, "evaluate", "--since", "2025-04-01", "--today", "2025-05-10", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["today"] == "2025-05-10"
    bad = runner.invoke(app, [*base, "evaluate", "--since", "2025-02-30"])
    assert bad.exit_code == 1
    assert "--since" in bad.output
    listed = runner.invoke(app, [*base, "list", "--status", "all", "--json"])
    assert listed.exit_code == 0, listed.output
    table = runner.invoke(app, [*base, "list", "--status", "all"])
    assert table.exit_code == 0
    assert "Alerts (all)" in table.output
    found = [a for a in json.loads(listed.output) if a["rule"] == "orders up"]
    assert [a["period_start"] for a in found] == [SPIKE.isoformat()]
    alert_id = found[0]["id"]
    assert runner.invoke(app, [*base, "ack", alert_id]).exit_code == 0
    again = runner.invoke(app, [*base, "ack", alert_id])
    assert again.exit_code == 1
    assert "acknowledged" in again.output
    done = runner.invoke(app, [*base, "resolve", alert_id, "--note", "checked"])
    assert done.exit_code == 0
    assert "resolved" in done.output


def test_the_worker_job_judges_yesterday(tmp_path: Path) -> None:
    """``alerts.evaluate`` through the scheduler the day after the spike: one alert, for it."""
    from datetime import UTC, datetime

    from growthwheel.jobs import scheduler, tasks

    assert "alerts.evaluate" in {s.kind for s in tasks.DEFAULT_SCHEDULES}

    (tmp_path / "orders.csv").write_text(_orders_csv(), encoding="utf-8")
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    ingest.import_files("orders", [tmp_path / "orders.csv"], cfg=cfg)
    migrate(cfg)
    now = datetime(SPIKE.year, SPIKE.month, SPIKE.day + 1, 2, tzinfo=UTC)
    with session_scope(cfg) as session:
        service.create_rule(session, rules.RuleSpec(name="orders up", metric="orders", kind="anomaly",
                                                     params={"direction": "up"}), actor="tests")
        spec = scheduler.ScheduleSpec("alerts.evaluate", "alerts.evaluate", every_seconds=86_400)
        scheduler.put_schedule(session, spec, now=now, timezone="Asia/Shanghai")
    outcomes = scheduler.run_due(cfg, worker="w", clock=lambda: now, timezone="Asia/Shanghai")
    assert [o.status for o in outcomes] == ["succeeded"], outcomes
    with session_scope(cfg) as session:
        found = [(a.period_start, a.metric) for a in inbox.list_alerts(session)]
    assert found == [(SPIKE, "orders")]
