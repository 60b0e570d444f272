"""``growthwheel marketing campaigns|influencers …`` on a real store and warehouse (the tiny shop
of ``campaign_data``; figures worked out there)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from growthwheel.cli.main import app
from growthwheel.config import Settings

from . import campaign_data as data

runner = CliRunner()


def run(data_dir: Path, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(data_dir), "marketing", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_influencers_campaign_pacing_review(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    data.load(Settings(data_dir=folder), tmp_path)
    added = run(folder, "influencers", "add", "--code", "KOL_A", "--name", "Ms A", "--platform", "douyin",
                "--followers", "1500000", "--cost-per-deal", "200", "--landing-url", "https://shop.example.com/")
    assert "KOL_A (head)" in added
    assert "utm_medium=influencer&utm_campaign=KOL_A" in added
    run(folder, "influencers", "add", "--code", "KOC_B", "--name", "B", "--platform", "xiaohongshu",
        "--followers", "5000", "--cost-per-deal", "10", "--deals", "2")
    infs = json.loads(run(folder, "influencers", "list", "--json"))
    assert [(i["code"], i["tier"], i["cost"]) for i in infs] == [("KOL_A", "head", 20_000),
                                                                 ("KOC_B", "koc", 2_000)]
    body = data.campaign_body([i["id"] for i in infs])
    (tmp_path / "c.json").write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    assert "3 phases" in run(folder, "campaigns", "create", str(tmp_path / "c.json"))

    pace = json.loads(run(folder, "campaigns", "pacing", "Double 11 2024", "--as-of", "2024-11-04", "--json"))
    assert pace["phases"][1]["gmv"]["status"] == "behind"
    assert pace["gmv"]["actual"] == 60_000
    table = run(folder, "campaigns", "pacing", "Double 11 2024", "--as-of", "2024-11-04")
    assert "behind" in table
    assert "400.00" in table  # the peak's ¥400 so far, in yuan

    review = json.loads(run(folder, "campaigns", "review", "Double 11 2024", "--json"))
    assert review["operations"]["cost"] == 52_000
    assert review["customers"]["new_buyers"] == 4
    out = tmp_path / "review.html"
    run(folder, "campaigns", "review", "Double 11 2024", "--out", str(out))
    assert "活动复盘" in out.read_text(encoding="utf-8")

    rep = run(folder, "influencers", "report", "--from", "2024-11-01", "--to", "2024-11-07")
    assert rep.index("KOC_B") < rep.index("KOL_A")  # ROI 30 before 0.5
    assert "pyramid" in rep

    # Attached to Double 11 2024: removing it is refused with the campaign named, nothing removed.
    refused = runner.invoke(app, ["--data-dir", str(folder), "marketing", "influencers", "remove", "KOC_B"])
    assert refused.exit_code == 1
    assert "Double 11 2024" in refused.output
    assert len(json.loads(run(folder, "influencers", "list", "--json"))) == 2


def test_bad_input_is_one_line_naming_the_option(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    bad = runner.invoke(app, ["--data-dir", str(folder), "marketing", "influencers", "add", "--code", "x y",
                              "--name", "n", "--platform", "p", "--followers", "1", "--cost-per-deal", "1"])
    assert bad.exit_code == 1
    assert "--code" in bad.output
    bad = runner.invoke(app, ["--data-dir", str(folder), "marketing", "influencers", "add", "--code", "x",
                              "--name", "n", "--platform", "p", "--followers", "1",
                              "--cost-per-deal", "1.001"])
    assert bad.exit_code == 1
    assert "--cost-per-deal" in bad.output
    (tmp_path / "c.json").write_text(json.dumps({"name": "x", "phases": []}), encoding="utf-8")
    bad = runner.invoke(app, ["--data-dir", str(folder), "marketing", "campaigns", "create",
                              str(tmp_path / "c.json")])
    assert bad.exit_code == 1
    assert "phases" in bad.output
    missing = runner.invoke(app, ["--data-dir", str(folder), "marketing", "campaigns", "pacing", "nope"])
    assert missing.exit_code == 1
    assert "not found" in missing.output
