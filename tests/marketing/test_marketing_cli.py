"""``growthwheel marketing …`` on real files and a real warehouse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings
from growthwheel.warehouse import ingest

from .test_marketing_api import EVENTS, ORDERS
from .test_spend import EXAMPLES

PATH_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "attribution" / "PathData.csv"
if not PATH_DATA.exists():
    PATH_DATA = Path("/work/shared/data/attribution/PathData.csv")

runner = CliRunner()


def test_paths_on_path_data(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "marketing", "paths", str(PATH_DATA),
                                 "--model", "last_touch", "--model", "markov", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["conversions"] == 19_785
    rows = {(r["model"], r["channel"]): r["conversions"] for r in body["rows"]}
    assert rows[("last_touch", "alpha")] == 8447
    assert sum(v for (m, _c), v in rows.items() if m == "markov") == pytest.approx(19_785)
    table = runner.invoke(app, ["--data-dir", str(tmp_path), "marketing", "paths", str(PATH_DATA), "--wide"])
    assert table.exit_code == 0
    assert "8,447.0" in table.stdout


def test_import_spend_then_attribution(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = Settings(data_dir=data)
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    ingest.import_files("events", [tmp_path / "events.csv"], cfg=cfg)
    ingest.import_files("orders", [tmp_path / "orders.csv"], cfg=cfg)
    done = runner.invoke(app, ["--data-dir", str(data), "marketing", "import-spend", "--platform",
                               "oceanengine", str(EXAMPLES / "oceanengine_daily_report.csv")])
    assert done.exit_code == 0, done.output
    assert "4 new" in done.stdout
    report = runner.invoke(app, ["--data-dir", str(data), "marketing", "attribution", "--from", "2024-12-01",
                                 "--to", "2024-12-31", "--json"])
    assert report.exit_code == 0, report.output
    rows = {(r["model"], r["channel"]): r for r in json.loads(report.stdout)["rows"]}
    assert rows[("first_touch", "douyin")]["conversions"] == 2
    assert rows[("first_touch", "douyin")]["spend"] == 1_288_885
    table = runner.invoke(app, ["--data-dir", str(data), "marketing", "attribution", "--from", "2024-12-01",
                                "--to", "2024-12-31", "--wide"])
    assert "12,888.85" in table.stdout  # spend in yuan


def test_allocate_the_example_and_bad_input(tmp_path: Path) -> None:
    example = runner.invoke(app, ["--data-dir", str(tmp_path), "marketing", "allocate",
                                  str(EXAMPLES / "budget_request.json"), "--json"])
    assert example.exit_code == 0, example.output
    plan = json.loads(example.stdout)
    assert plan["reserve"] == 5_000_000
    assert sum(line["spend"] for line in plan["lines"]) == 45_000_000
    assert plan["outcome"] > plan["current_outcome"]  # beats today's 25M / 15M / 5M split
    request = tmp_path / "plan.json"
    request.write_text(json.dumps({"total": 100_000, "reserve_share": 0.2, "curves": [
        {"channel": "douyin", "kind": "exponential", "beta": 90_000, "k": 30_000},
        {"channel": "baidu", "beta": 40_000, "k": 20_000}]}), encoding="utf-8")
    plan = runner.invoke(app, ["--data-dir", str(tmp_path), "marketing", "allocate", str(request), "--json"])
    assert plan.exit_code == 0, plan.output
    body = json.loads(plan.stdout)
    assert body["reserve"] == 20_000
    assert sum(line["spend"] for line in body["lines"]) == 80_000
    request.write_text(json.dumps({"total": 100, "curves": [{"channel": "a", "beta": 0, "k": 1}]}))
    bad = runner.invoke(app, ["--data-dir", str(tmp_path), "marketing", "allocate", str(request)])
    assert bad.exit_code == 1
    assert "curves.0.beta" in bad.output
    wrong = runner.invoke(app, ["--data-dir", str(tmp_path), "marketing", "attribution",
                                "--from", "2024-13-01", "--to", "2024-12-31"])
    assert wrong.exit_code == 1
    assert "--from" in wrong.output


def test_with_a_running_server_the_commands_go_through_it(tmp_path: Path) -> None:
    """While ``growthwheel serve`` owns the warehouse, import-spend hands it the translated rows and
    attribution asks it to compute: the same answers as without a server."""
    import os
    import socket
    import subprocess
    import sys
    import time

    from growthwheel.warehouse.server import find_server

    data = tmp_path / "data"
    cfg = Settings(data_dir=data)
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    ingest.import_files("events", [tmp_path / "events.csv"], cfg=cfg)
    ingest.import_files("orders", [tmp_path / "orders.csv"], cfg=cfg)
    args = ["--from", "2024-12-01", "--to", "2024-12-31", "--json"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "growthwheel.cli", "--data-dir", str(data), "serve", "--host", "127.0.0.1",
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 180
        while find_server(cfg, wait=1.0) is None:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        done = runner.invoke(app, ["--data-dir", str(data), "marketing", "import-spend", "--platform",
                                   "oceanengine", str(EXAMPLES / "oceanengine_daily_report.csv"), "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["tables"]["ad_spend"]["inserted"] == 4
        served = runner.invoke(app, ["--data-dir", str(data), "marketing", "attribution", *args])
        assert served.exit_code == 0, served.output
    finally:
        process.terminate()
        process.wait(timeout=60)
        if process.stderr:
            process.stderr.close()
    local = runner.invoke(app, ["--data-dir", str(data), "marketing", "attribution", *args])
    assert local.exit_code == 0, local.output
    assert json.loads(served.stdout) == json.loads(local.stdout)
    assert {r["spend"] for r in json.loads(local.stdout)["rows"] if r["channel"] == "douyin"} == {1_288_885}
