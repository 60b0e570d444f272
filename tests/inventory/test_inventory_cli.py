"""``growthwheel inventory …`` on the example tea shop imported through the real import path:
plan, at-risk, slow movers (table and JSON), a clearance draft stored in the operational store,
and a bad option as one line naming it with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings
from growthwheel.promotions import repository
from growthwheel.store import db
from growthwheel.warehouse import ingest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "generic"
runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inventory-cli") / "data"
    cfg = Settings(data_dir=folder, database_url=None)
    for table, name in (("products", "products.csv"), ("order_lines", "order_lines.csv"),
                        ("inventory", "inventory.csv")):
        assert ingest.import_files(table, [EXAMPLES / name], cfg=cfg).rows_quarantined == 0
    return folder


def _run(data_dir: Path, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(data_dir), "inventory", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_plan_risk_and_slow_movers(data_dir: Path) -> None:
    table = _run(data_dir, "plan")
    assert "Inventory plan" in table
    assert "TEA-LJ-250" in table
    assert "MASE" in table
    report = json.loads(_run(data_dir, "plan", "--json", "--service-level", "0.9"))
    assert report["service_level"] == 0.9
    assert report["backtest"]["mase"]["baseline_holdout"] is not None
    risky = json.loads(_run(data_dir, "at-risk", "--until", "2024-11-11", "--uplift", "3",
                            "--threshold", "0", "--json"))
    assert risky["until"] == "2024-11-11"
    assert all(it["stockout_risk"] is not None for it in risky["items"])
    slow = json.loads(_run(data_dir, "slow-movers", "--json"))
    assert "POT-YX-200" in {it["sku"] for it in slow["items"]}
    assert "Slow movers" in _run(data_dir, "slow-movers")


def test_clearance_draft_and_bad_input(data_dir: Path) -> None:
    said = _run(data_dir, "clearance", "POT-YX-200", "--discount", "30")
    assert "draft promotion" in said
    cfg = Settings(data_dir=data_dir, database_url=None)
    with db.session_scope(cfg) as session:
        drafts = [p for p in repository.all_promotions(session) if p.status == "draft"]
        assert [p.definition["conditions"]["skus"] for p in drafts] == [["POT-YX-200"]]
    bad = runner.invoke(app, ["--data-dir", str(data_dir), "inventory", "plan", "--service-level", "1.5"])
    assert bad.exit_code == 1
    assert "service_level" in bad.output
    bad = runner.invoke(app, ["--data-dir", str(data_dir), "inventory", "clearance", "X", "--discount", "95"])
    assert bad.exit_code == 1
    assert "discount_percent" in bad.output
