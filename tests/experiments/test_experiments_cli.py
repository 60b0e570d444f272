"""``growthwheel experiments …`` end to end on a data directory: create from stdin, start, list,
results (with exposures and orders in the warehouse; numbers worked out by hand), stop, and one
clear error line naming the field for a bad file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from growthwheel.config import Settings, set_settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.experiments.cli import experiments_app
from growthwheel.warehouse.db import open_duckdb

SETUP = {"key": "cli-test", "name": "CLI test", "salt": "fixed",
         "variants": [{"name": "control", "weight": 0.5}, {"name": "b", "weight": 0.5}],
         "primary_metric": {"kind": "orders"}, "cuped_days": 0, "planned_units": 1000}


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Any]:
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    app = typer.Typer()
    app.add_typer(experiments_app, name="experiments")
    runner = CliRunner()
    set_settings(cfg)

    def run(*args: str, stdin: str | None = None) -> Any:
        result = runner.invoke(app, list(args), input=stdin, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    yield run, cfg
    set_settings(None)


def test_round_trip(cli: Any) -> None:
    run, cfg = cli
    created = json.loads(run("experiments", "create", "--file", "-", "--json",
                             stdin=json.dumps(SETUP)).stdout)
    assert (created["key"], created["status"]) == ("cli-test", "draft")
    started = json.loads(run("experiments", "start", "cli-test", "--json").stdout)
    at = datetime.fromisoformat(started["started_at"]).replace(tzinfo=None)  # naive UTC, as stored
    # Two customers per variant, exposed a millisecond after the start; control buys 1 + 0 orders, b 2 + 1.
    con = open_duckdb(cfg)
    try:
        for i, (cid, variant) in enumerate([("c1", "control"), ("c2", "control"), ("c3", "b"), ("c4", "b")]):
            con.execute("INSERT INTO events (event_id, type, occurred_at, customer_id, properties) VALUES "
                        "(?, 'experiment_exposure', ?, ?, ?)",
                        [f"x{i}", at + timedelta(milliseconds=1), cid,
                         json.dumps({"experiment": "cli-test", "variant": variant})])
        for i, cid in enumerate(["c1", "c3", "c3", "c4"]):
            con.execute("INSERT INTO orders (order_id, customer_id, ordered_at, status, total_amount) "
                        "VALUES (?, ?, ?, 'paid', 1000)", [f"o{i}", cid, at + timedelta(milliseconds=2)])
    finally:
        con.close()
    listed = json.loads(run("experiments", "list", "--json").stdout)
    assert [(e["key"], e["status"]) for e in listed] == [("cli-test", "running")]
    found = json.loads(run("experiments", "results", "cli-test", "--json").stdout)
    assert found["status"]["units"] == 4
    orders = found["metrics"][0]
    assert [(v["name"], v["n"], v["mean"]) for v in orders["variants"]] == [
        ("control", 2, 0.5), ("b", 2, 1.5)]
    assert orders["comparisons"][0]["absolute"]["estimate"] == pytest.approx(1.0)
    text = run("experiments", "results", "cli-test").stdout
    assert "4 units exposed" in text
    assert "warning" in text  # a running fixed-horizon test read before its planned size
    assert "cli-test: stopped" in run("experiments", "stop", "cli-test").stdout


def test_a_bad_file_is_one_error_naming_the_field(cli: Any, tmp_path: Path) -> None:
    run, _cfg = cli
    bad = tmp_path / "bad.json"
    variants = [{"name": "a", "weight": 0.7}, {"name": "b", "weight": 0.7}]
    bad.write_text(json.dumps({**SETUP, "variants": variants}), encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="variants: weights must sum to 1"):
        run("experiments", "create", "--file", str(bad))
    with pytest.raises(InvalidArgumentError, match="not JSON"):
        run("experiments", "create", "--file", "-", stdin="{")
