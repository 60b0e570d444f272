"""``growthwheel journeys``: create from a file, list, show, preview against the tea shop's
warehouse, activate / pause / end, report; a bad definition fails naming the field, a status
change the journey does not allow fails with the state."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings, set_settings
from growthwheel.errors import GrowthwheelError
from growthwheel.store.db import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "segments"))
from tea_shop import build

FIRST_PURCHASE = {
    "trigger": {"kind": "purchase_count", "n": 1},
    "start": "tag",
    "steps": [{"id": "tag", "type": "tag", "tag": "welcomed", "next": "out"}, {"id": "out", "type": "exit"}],
    "holdout_share": 0.0,
}


def run(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(app, ["journeys", *args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def refused(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["journeys", *args])
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, GrowthwheelError), result.exception
    return str(result.exception)


def test_journeys_cli_life_cycle_preview_and_report(tmp_path: Path) -> None:
    cfg = build(tmp_path / "data", tmp_path)
    migrate(cfg)
    good = tmp_path / "welcome.json"
    good.write_text(json.dumps(FIRST_PURCHASE), encoding="utf-8")
    runner = CliRunner()
    set_settings(cfg)
    try:
        made = run(runner, "create", "--name", "welcome", "--file", str(good), "--json")
        assert (made["name"], made["status"], made["version"], made["trigger"]) == (
            "welcome", "draft", 1, "purchase_count")
        listed = run(runner, "list", "--json")
        assert [j["name"] for j in listed] == ["welcome"]
        shown = run(runner, "show", "welcome", "--json")
        assert shown["definition"]["trigger"] == {"kind": "purchase_count", "n": 1}

        # first paid orders between 2024-12-01 and 2025-03-31 (shop time): c2 12-05, c1 01-10, c3 02-20,
        # c6 03-15 (refunded later, but paid)
        preview = run(runner, "preview", "welcome", "--now", "2025-03-31T23:00:00+08:00", "--days", "120",
                      "--json")
        assert preview["customers"] == 4
        assert preview["sample"] == ["c1", "c2", "c3", "c6"]
        narrower = run(runner, "preview", "--file", str(good), "--now", "2025-03-31T23:00:00+08:00",
                       "--days", "45", "--json")
        assert narrower["sample"] == ["c3", "c6"]
        words = run(runner, "preview", "welcome", "--now", "2025-03-31T23:00:00+08:00", "--days", "120")
        assert "4 customers" in words

        assert run(runner, "activate", "welcome", "--json")["status"] == "active"
        assert run(runner, "pause", "welcome", "--json")["status"] == "paused"
        assert "cannot pause a journey that is paused" in refused(runner, "pause", "welcome")
        updated = run(runner, "update", "welcome", "--file", str(good), "--json")
        assert updated["version"] == 2
        assert run(runner, "end", "welcome", "--json")["status"] == "ended"
        assert "ended" in refused(runner, "activate", "welcome")

        report = run(runner, "report", "welcome", "--json")
        assert report["entered"] == 0
        assert report["uplift"] is None
        assert "hold-out" in run(runner, "report", "welcome")

        # bad input: one clear error naming the field
        broken = dict(FIRST_PURCHASE, start="nowhere")
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(broken), encoding="utf-8")
        assert refused(runner, "create", "--name", "bad", "--file", str(bad)).startswith("definition.start")
        bad.write_text("{not json", encoding="utf-8")
        assert "--file: not JSON" in refused(runner, "create", "--name", "bad", "--file", str(bad))
        assert "--file: cannot read" in refused(runner, "create", "--name", "x", "--file",
                                                str(tmp_path / "missing.json"))
        assert "no journey 'ghost'" in refused(runner, "show", "ghost")
        assert "exists" in refused(runner, "create", "--name", "welcome", "--file", str(good))
        assert "--status" in refused(runner, "list", "--status", "sleeping")
        assert "one of them" in refused(runner, "preview")
    finally:
        set_settings(Settings())
