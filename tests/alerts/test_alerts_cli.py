"""``growthwheel alerts …`` on a data directory with imported orders (no server running)."""

from __future__ import annotations

import json
from pathlib import Path

from test_alerts_api import SPIKE, _orders_csv
from typer.testing import CliRunner

from growthwheel.alerts import service
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
        service.create_rule(session, service.RuleSpec(name="orders up", metric="orders", kind="anomaly",
                                                       params={"direction": "up"}), actor="tests")
    base = ["--data-dir", str(data), "alerts"]
    rules = runner.invoke(app, [*base, "rules", "--json"])
    assert rules.exit_code == 0, rules.output
    assert {r["builtin"] for r in json.loads(rules.output)} >= {"cac_up", "negative_reviews_up"}
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
