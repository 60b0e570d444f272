"""``growthwheel marketing mmm fit|plan`` on a real warehouse (the 84-day simulated shop)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings

from . import mix_data

runner = CliRunner()
SPAN = ["--from", mix_data.START.isoformat(), "--to", mix_data.END.isoformat()]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("mixcli")
    spend = mix_data.build(folder, Settings(data_dir=folder / "data"))
    return folder / "data", spend


def test_fit_table_and_json(data_dir: tuple[Path, dict[str, int]]) -> None:
    data, spend = data_dir
    result = runner.invoke(app, ["--data-dir", str(data), "marketing", "mmm", "fit", *SPAN, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert {c["channel"]: c["spend"] for c in body["channels"]} == spend
    table = runner.invoke(app, ["--data-dir", str(data), "marketing", "mmm", "fit", *SPAN])
    assert table.exit_code == 0, table.output
    assert "抖音" in table.stdout
    assert "elasticity" in table.stdout


def test_plan_with_reserve_and_bounds(data_dir: tuple[Path, dict[str, int]]) -> None:
    data, _spend = data_dir
    result = runner.invoke(app, ["--data-dir", str(data), "marketing", "mmm", "plan", *SPAN,
                                 "--total", "60000", "--reserve-share", "0.1", "--min", "百度=8000",
                                 "--max", "抖音=30000", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["total"] == 6_000_000
    assert body["reserve"] == 600_000
    lines = {line["channel"]: line["spend"] for line in body["lines"]}
    assert sum(lines.values()) == 5_400_000
    assert lines["百度"] >= 800_000
    assert lines["抖音"] <= 3_000_000
    table = runner.invoke(app, ["--data-dir", str(data), "marketing", "mmm", "plan", *SPAN,
                                "--total", "60000"])
    assert table.exit_code == 0, table.output
    assert "reserve" in table.stdout


def test_fit_leaves_excluded_days_out(data_dir: tuple[Path, dict[str, int]]) -> None:
    data, spend = data_dir
    result = runner.invoke(app, ["--data-dir", str(data), "marketing", "mmm", "fit", *SPAN, "--json",
                                 "--exclude", "抖音:2025-03-10..2025-03-16"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["excluded"] == [{"channel": "抖音", "from": "2025-03-10", "to": "2025-03-16"}]
    by = {c["channel"]: c["spend"] for c in body["channels"]}
    assert by["抖音"] < spend["抖音"]
    assert by["百度"] == spend["百度"]


@pytest.mark.parametrize(("args", "field"), [
    (["fit", *SPAN, "--exclude", "2025-03-10..2025-03-99"], "--exclude"),
    (["plan", *SPAN, "--total", "abc"], "--total"),
    (["plan", *SPAN, "--total", "100", "--min", "nochannel"], "--min"),
    (["plan", *SPAN, "--total", "100", "--reserve-share", "2"], "--reserve-share"),
    (["fit", "--from", "2025-03-03", "--to", "2025-03-10"], "from"),
])
def test_bad_input_names_the_option(data_dir: tuple[Path, dict[str, int]], args: list[str],
                                    field: str) -> None:
    data, _ = data_dir
    result = runner.invoke(app, ["--data-dir", str(data), "marketing", "mmm", *args])
    assert result.exit_code == 1, result.output
    assert field in result.output
