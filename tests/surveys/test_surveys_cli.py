"""``growthwheel surveys …`` on a data directory with imported orders (no server running)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import update
from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings
from growthwheel.store.db import session_scope
from growthwheel.surveys.models import SurveyAnswer
from growthwheel.warehouse import ingest

from .test_surveys_api import _orders_csv

runner = CliRunner()


def test_create_answer_nps_repurchase(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(_orders_csv(), encoding="utf-8")
    data = tmp_path / "data"
    ingest.import_files("orders", [tmp_path / "orders.csv"], cfg=Settings(data_dir=data, database_url=None))
    base = ["--data-dir", str(data), "surveys"]
    made = runner.invoke(app, [*base, "create", "售后回访", "--channel", "sms"])
    assert made.exit_code == 0, made.output
    assert "survey_url(" in made.output
    for i, score in enumerate([10, 9, 7, 3]):
        done = runner.invoke(app, [*base, "answer", "售后回访", "--customer", f"c{i}", "--score", str(score)])
        assert done.exit_code == 0, done.output
    again = runner.invoke(app, [*base, "answer", "售后回访", "--customer", "c0", "--score", "10"])
    assert "already recorded" in again.output
    clash = runner.invoke(app, [*base, "answer", "售后回访", "--customer", "c0", "--score", "1"])
    assert clash.exit_code == 1
    assert "response_key" in clash.output
    bad = runner.invoke(app, [*base, "answer", "售后回访", "--customer", "c9", "--score", "11"])
    assert bad.exit_code == 1
    assert "score" in bad.output
    report = runner.invoke(app, [*base, "nps", "售后回访", "--period", "month", "--json"])
    assert report.exit_code == 0, report.output
    overall = json.loads(report.output)["overall"]
    assert (overall["n"], overall["nps"]) == (4, 25.0)  # 2 promoters, 1 passive, 1 detractor
    table = runner.invoke(app, [*base, "nps", "售后回访"])
    assert table.exit_code == 0, table.output
    assert "+25.0" in table.output
    wrong = runner.invoke(app, [*base, "nps", "售后回访", "--period", "day"])
    assert wrong.exit_code == 1
    assert "period" in wrong.output
    again_buy = runner.invoke(app, [*base, "repurchase", "售后回访", "--days", "30", "--json"])
    assert again_buy.exit_code == 0, again_buy.output
    groups = {g["group"]: g for g in json.loads(again_buy.output)["groups"]}
    assert groups["promoter"]["answers"] == 2
    assert groups["promoter"]["eligible"] == 0  # answered today: after the warehouse's last order
    missing = runner.invoke(app, [*base, "segments", "nope"])
    assert missing.exit_code == 1
    assert "nope" in missing.output
    # comments recorded before sentiment ran (here: wiped) are scored by `surveys score`
    runner.invoke(app, [*base, "answer", "售后回访", "--customer", "c8", "--score", "2",
                        "--comment", "物流太慢"])
    with session_scope(Settings(data_dir=data, database_url=None)) as session:
        session.execute(update(SurveyAnswer).values(sentiment=None, aspects=None))
    scored = runner.invoke(app, [*base, "score"])
    assert scored.exit_code == 0, scored.output
    assert "scored 1 comments" in scored.output
    after = json.loads(runner.invoke(app, [*base, "nps", "售后回访", "--json"]).output)
    assert after["comments_scored"] == 1
    assert after["aspects"][0]["aspect"] == "logistics"
    listed = runner.invoke(app, [*base, "list", "--json"])
    assert [s["answers"] for s in json.loads(listed.output)] == [5]
