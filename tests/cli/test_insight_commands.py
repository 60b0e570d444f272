"""The insight commands: tables that fit 80 columns with one money format, ``--wide`` for every
column, and the same answers while ``growthwheel serve`` owns the warehouse as without it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from growthwheel.cli.main import app

if TYPE_CHECKING:
    from conftest import Server, Shop

JSON_COMMANDS: dict[str, list[str]] = {
    "kpi": ["kpi", "--json"],
    "kpi by channel": ["kpi", "--json", "--dimension", "channel", "--by", "quarter"],
    "rfm": ["rfm", "--json"],
    "lifecycle": ["lifecycle", "--json", "--from", "2025-03-01"],
    "cohorts": ["cohorts", "--json"],
    "funnel": ["funnel", "--json", "--by", "device"],
    "personas": ["personas", "--json", "--k", "4"],
    "clv fit": ["clv", "fit", "--json"],
}
TABLE_COMMANDS: list[list[str]] = [
    ["kpi"], ["kpi", "--dimension", "category"], ["rfm"], ["lifecycle", "--from", "2025-03-01"],
    ["cohorts", "--by", "week"], ["cohorts", "--metric", "revenue"], ["funnel", "--by", "utm_source"],
    ["personas", "--k", "4"],
    ["clv", "validate", "--calibration-end", "2025-03-15", "--holdout-end", "2025-04-30"],
]
GROUPED_MONEY = re.compile(r"\b\d{1,3}(?:,\d{3})+\.\d{2}\b")


def _run(data_dir: Path, args: list[str]) -> str:
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout


def _answers(data_dir: Path) -> dict[str, Any]:
    return {name: json.loads(_run(data_dir, args)) for name, args in JSON_COMMANDS.items()}


@pytest.fixture
def columns80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


@pytest.mark.usefixtures("columns80")
@pytest.mark.parametrize("args", TABLE_COMMANDS, ids=" ".join)
def test_tables_fit_80_columns_and_cut_no_cell(demo_shop: Shop, args: list[str]) -> None:
    text = _run(demo_shop.data_dir, args)
    lines = text.splitlines()
    assert len(lines) >= 4
    assert max(cell_len(line) for line in lines) <= 80, text  # terminal cells: 新客 takes 4
    assert "…" not in text


@pytest.mark.usefixtures("columns80")
def test_kpi_money_keeps_its_decimals_and_wide_shows_every_column(demo_shop: Shop) -> None:
    narrow = _run(demo_shop.data_dir, ["kpi"])
    records = json.loads(_run(demo_shop.data_dir, ["kpi", "--json"]))
    big = [r["gmv"] for r in records if r["gmv"] >= 1000]
    assert big, "the demo has months with GMV above 1,000"
    for gmv in big:  # exactly the --json figure, grouped, with both decimals
        assert f"{gmv:,.2f}" in narrow
    assert GROUPED_MONEY.search(narrow)
    assert "--wide also shows:" in narrow
    wide = _run(demo_shop.data_dir, ["kpi", "--wide"])
    header = next(line for line in wide.splitlines() if line.startswith("period"))
    for label in ("GMV", "AOV", "net", "margin", "ROAS", "CAC", "ad spend"):
        assert re.search(rf"(^|\s){re.escape(label)}(\s|$)", header), label
    assert "--wide also shows" not in wide
    assert max(cell_len(line) for line in wide.splitlines()) > 80
    assert "…" not in wide


def test_insight_commands_answer_the_same_while_the_server_runs(
    demo_shop: Shop, request: pytest.FixtureRequest
) -> None:
    alone = _answers(demo_shop.data_dir)
    assert alone["rfm"]["customers"] > 0
    assert alone["funnel"]["rows"]
    server: Server = request.getfixturevalue("running_server")
    with pytest.raises(duckdb.IOException):  # the server holds the file: a local read is impossible
        duckdb.connect(str(demo_shop.data_dir / "warehouse.duckdb"), read_only=True)
    beside = _answers(demo_shop.data_dir)
    assert server.process.poll() is None
    assert beside == alone
    table = _run(demo_shop.data_dir, ["rfm"])
    assert "Champions" in table


def test_rfm_out_writes_every_customers_scores(demo_shop: Shop, tmp_path: Path) -> None:
    target = tmp_path / "scores.csv"
    _run(demo_shop.data_dir, ["rfm", "--out", str(target)])
    lines = target.read_text(encoding="utf-8").splitlines()
    report = json.loads(_run(demo_shop.data_dir, ["rfm", "--json"]))
    assert len(lines) == report["customers"] + 1
    assert lines[0].startswith("customer_id")


def test_a_bad_option_is_one_clear_error(demo_shop: Shop) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(demo_shop.data_dir), "rfm", "--as-of", "2025-13-01"])
    assert result.exit_code != 0
    assert "--as-of" in str(result.exception)
