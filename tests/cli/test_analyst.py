"""``growthwheel.open(data_dir)``: the analysts' Python API returns the CLI's figures as DataFrames,
the same with ``growthwheel serve`` running beside it, and the example notebook runs on it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import growthwheel
from growthwheel.analyst import READS, Shop, UnknownReadError
from growthwheel.cli.main import app
from growthwheel.errors import GrowthwheelError, InvalidArgumentError

if TYPE_CHECKING:
    from conftest import Shop as DemoShop

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "notebooks" / "analyst.ipynb"
AS_OF = datetime.now(UTC) + timedelta(days=1)  # one window for every read of the running experiment


def _cli(data_dir: Path, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def _api(shop: Shop) -> dict[str, Any]:
    return {
        "kpis": shop.kpis(by="month"),
        "rfm_segments": shop.rfm_segments(),
        "rfm_scores": shop.rfm_scores(),
        "lifecycle": shop.lifecycle(),
        "cohorts": shop.cohorts(by="month"),
        "funnel": shop.funnel(),
        "clv_fit": shop.clv_fit(),
        "personas": shop.personas(k=4),
        "segments": shop.segments(),
        "members": shop.segment_members("Everyone"),
        "experiments": shop.experiments(),
        "results": shop.experiment_results("pdp-gallery-2026", as_of=AS_OF),
        "effects": shop.experiment_effects("pdp-gallery-2026", as_of=AS_OF),
    }


def _same(left: dict[str, Any], right: dict[str, Any]) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, right[key], obj=key)
            assert value.attrs == right[key].attrs, key
        else:
            assert value == right[key], key


def _run_notebook(env: dict[str, str]) -> dict[str, Any]:
    """Run the notebook's code cells in order in one namespace (what a kernel does), with ``env``."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert len(code) >= 10
    namespace: dict[str, Any] = {"__name__": "__main__"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for number, cell in enumerate(code):
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}[{number}]", "exec"), namespace)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return namespace


def test_the_python_api_returns_the_cli_figures_alone_and_beside_the_server(
    demo_shop: DemoShop, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = demo_shop.data_dir
    everyone = tmp_path / "everyone.json"
    everyone.write_text('{"all": []}', encoding="utf-8")
    _cli(data, "segments", "create", "Everyone", "--file", str(everyone))
    _cli(data, "segments", "refresh", "Everyone")
    _cli(data, "experiments", "create", "--file", str(ROOT / "examples/experiments/pdp_gallery.json"))
    _cli(data, "experiments", "start", "pdp-gallery-2026")

    shop = growthwheel.open(data)
    assert isinstance(shop, Shop)
    alone = _api(shop)

    # The same figures as the CLI's --json.
    pd.testing.assert_frame_equal(alone["kpis"], pd.DataFrame(_cli(data, "kpi", "--json")))
    rfm = _cli(data, "rfm", "--json")
    pd.testing.assert_frame_equal(alone["rfm_segments"], pd.DataFrame(rfm["segments"]))
    assert len(alone["rfm_scores"]) == rfm["customers"]
    assert alone["rfm_scores"]["monetary"].sum() == pytest.approx(sum(s["monetary"] for s in rfm["segments"]))
    lifecycle = _cli(data, "lifecycle", "--json")
    assert alone["lifecycle"]["customers"].tolist() == [s["customers"] for s in lifecycle["stages"]]
    assert alone["lifecycle"].attrs["thresholds"] == lifecycle["thresholds"]
    cohorts = _cli(data, "cohorts", "--json")
    pd.testing.assert_frame_equal(alone["cohorts"], pd.DataFrame(cohorts["cells"]))
    funnel = _cli(data, "funnel", "--json")
    assert alone["funnel"]["entrants"].tolist() == [r["entrants"] for r in funnel["rows"]]
    fit = _cli(data, "clv", "fit", "--json")
    assert alone["clv_fit"].attrs == fit
    assert set(alone["clv_fit"]["parameter"]) == {"r", "alpha", "a", "b", "p", "q", "v"}
    personas = _cli(data, "personas", "--k", "4", "--json")
    assert alone["personas"]["label_zh"].tolist() == [p["label_zh"] for p in personas["personas"]]
    listed = _cli(data, "segments", "list", "--json")
    everyone_row = alone["segments"].set_index("name").loc["Everyone"]
    assert everyone_row["members"] == next(s["members"] for s in listed if s["name"] == "Everyone")
    assert len(alone["members"]) == everyone_row["members"] > 0
    assert alone["experiments"]["key"].tolist() == ["pdp-gallery-2026"]
    assert alone["results"]["experiment"]["status"] == "running"
    assert [m["label"] for m in alone["results"]["metrics"]] == [
        m["label"] for m in _cli(data, "experiments", "results", "pdp-gallery-2026", "--json")["metrics"]]

    # Beside a running server (which holds the DuckDB file), every answer is the same.
    server = request.getfixturevalue("running_server")
    beside = _api(growthwheel.open(data))
    assert server.process.poll() is None
    _same(alone, beside)
    with pytest.raises(GrowthwheelError, match="fortnight") as refused:  # the server's own 422, kept
        growthwheel.open(data).kpis(by="fortnight")
    assert refused.value.code == "invalid_argument"
    assert refused.value.status == 422

    # The example notebook runs, top to bottom, against the served shop.
    namespace = _run_notebook({"GROWTHWHEEL_DATA_DIR": str(data)})
    pd.testing.assert_frame_equal(namespace["kpis"], alone["kpis"])
    assert namespace["segments"].equals(alone["rfm_segments"])
    assert "Everyone" in namespace["saved"]["name"].tolist()
    assert isinstance(namespace["effects"], pd.DataFrame)


def test_bad_arguments_and_unknown_reads_are_clear_errors(demo_shop: DemoShop, tmp_path: Path) -> None:
    shop = growthwheel.open(demo_shop.data_dir)
    with pytest.raises(InvalidArgumentError, match="as_of"):
        shop.rfm(as_of="yesterday")
    with pytest.raises(InvalidArgumentError, match="by"):
        shop.kpis(by="fortnight")
    with pytest.raises(UnknownReadError):
        shop.read("everything")
    with pytest.raises(InvalidArgumentError, match="data_dir"):
        growthwheel.open(tmp_path / "missing")
    assert {"kpis", "rfm", "cohorts", "funnel", "clv_fit", "segments", "experiment_results"} <= set(READS)
