"""``growthwheel stats compare`` and ``growthwheel stats sample-size`` through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from growthwheel.cli.main import app

GB = [  # GrowthBook's Welch case, control first
    {"name": "A", "n": 3407, "sum": 1396.87, "sum_squares": 52377.9767},
    {"name": "B", "n": 3461, "sum": 2422.7, "sum_squares": 134698.29},
]


def run(args: list[str], stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, ["stats", *args], input=stdin)


def test_compare_file_json_has_every_read_out(tmp_path: Path) -> None:
    path = tmp_path / "variants.json"
    path.write_text(json.dumps(GB), encoding="utf-8")
    result = run(["compare", "--input", str(path), "--json", "--weights", "0.5,0.5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    keys = {"alpha", "method", "correction", "variants", "comparisons", "srm", "summary", "warnings"}
    assert keys <= set(data)
    comp = data["comparisons"][0]
    assert round(comp["absolute"]["estimate"], 5) == 0.29
    absolute = comp["absolute"]
    assert (round(absolute["ci_lower"], 5), round(absolute["ci_upper"], 5)) == (0.04538, 0.53462)
    assert round(comp["relative"]["p_value"], 5) == 0.06191
    assert 0.96 < comp["bayes"]["chance_to_win"] < 0.97
    assert comp["sequential_relative"] is None
    assert data["srm"]["mismatch"] is False
    assert data["summary"][0] == "B is 0.29 higher than A (0.70 vs 0.41; 95% CI 0.05 to 0.53, p = 0.020)."
    assert any("Fixed-horizon" in w for w in data["warnings"])


def test_compare_stdin_conversions_sequential_and_srm() -> None:
    variants = [{"name": "control", "n": 10_000, "conversions": 1000},
                {"name": "coupon", "n": 10_400, "conversions": 1150},
                {"name": "banner", "n": 9_600, "conversions": 980}]
    result = run(["compare", "--input", "-", "--sequential", "--tuning", "30000", "--weights", "1,1,1",
                  "--correction", "bh", "--json"], stdin=json.dumps(variants))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["method"] == "sequential"
    assert data["correction"] == "bh"
    coupon = data["comparisons"][0]
    assert coupon["sequential_absolute"]["ci_lower"] < coupon["absolute"]["ci_lower"]  # always-valid is wider
    assert coupon["absolute"]["estimate"] == pytest.approx(1150 / 10_400 - 0.1)
    # 10,400 / 9,600 against a 1:1:1 plan: chi-square = 32, p ≈ 1e-7 → mismatch.
    assert data["srm"]["chi_square"] == pytest.approx(32.0)
    assert data["srm"]["mismatch"] is True
    assert any(w.startswith("Sample ratio mismatch") for w in data["warnings"])


def test_compare_human_output_reads_as_sentences() -> None:
    result = run(["compare", "--input", "-"], stdin=json.dumps(GB))
    assert result.exit_code == 0, result.output
    assert "B vs A" in result.stdout
    assert "B is 0.29 higher than A (0.70 vs 0.41; 95% CI 0.05 to 0.53, p = 0.020)." in result.stdout
    assert "Significant at alpha 0.05: B beats A." in result.stdout
    assert "Chance B beats A: 96.9%" in result.stdout


@pytest.mark.parametrize(("payload", "message"), [
    ('[{"name": "A", "n": 100, "conversions": 10}, {"name": "B", "n": 100, "conversions": 101}]',
     "variant 2 (B): conversions must be between 0 and n = 100 (got 101)"),
    ('[{"name": "A", "n": 100, "sum": 10}, {"name": "B", "n": 100, "sum": 1, "sum_squares": 1}]',
     "variant 1 (A): missing field 'sum_squares'"),
    ('[{"name": "A", "n": 100, "conversions": 10}, {"name": "B", "n": 100, "sum": 1, "sum_squares": 1}]',
     "variant 2 (B): is a mean metric but the control is a proportion metric"),
    ('[{"name": "A", "n": 1, "sum": 1, "sum_squares": 1}, {"name": "B", "n": 9, "sum": 1, "sum_squares": 1}]',
     "variant 1 (A): n must be at least 2 (got 1)"),
    ('[{"name": "A", "n": 10, "sum": 100, "sum_squares": 5}, {"name": "B", "n": 9, "sum": 1, '
     '"sum_squares": 1}]',
     "variant 1 (A): sum_squares = 5.0 is smaller than sum²/n"),
    ('[{"name": "A", "n": "ten", "conversions": 1}, {"name": "B", "n": 9, "conversions": 1}]',
     'variant 1 (A): n must be a number (got "ten")'),
    ('{"name": "A"}', "--input: expected a JSON list of variants"),
    ("[1, 2,", "--input: stdin is not valid JSON (line 1, column 7"),
])
def test_compare_bad_input_is_one_line_naming_variant_and_field(payload: str, message: str) -> None:
    result = run(["compare", "--input", "-"], stdin=payload)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_compare_bad_weights_and_missing_file(tmp_path: Path) -> None:
    result = run(["compare", "--input", "-", "--weights", "1,1,1"], stdin=json.dumps(GB))
    assert result.exit_code == 1
    assert "--weights: 3 weight(s) for 2 variants" in result.stderr
    result = run(["compare", "--input", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert "--input: no such file" in result.stderr


def test_sample_size_json_and_sentence() -> None:
    result = run(["sample-size", "--baseline", "0.1", "--mde", "0.02", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["per_variant"] == 3841
    assert data["total"] == 7682
    result = run(["sample-size", "--baseline", "0.1", "--mde", "0.2", "--relative", "--variants", "3"])
    assert result.exit_code == 0, result.output
    assert "units per variant" in result.stdout
    assert "10.00% → 12.00%" in result.stdout
    assert "0.025 per comparison, Bonferroni" in result.stdout


def test_sample_size_for_a_mean_and_mde_for_traffic() -> None:
    result = run(["sample-size", "--sd", "1", "--mde", "0.5", "--json"])
    assert json.loads(result.stdout)["per_variant"] == 63
    result = run(["sample-size", "--baseline", "0.1", "--traffic", "3841", "--json"])
    data = json.loads(result.stdout)
    assert data["mde_absolute"] == pytest.approx(0.02, abs=2e-5)
    result = run(["sample-size", "--baseline", "0.1", "--traffic", "5000"])
    assert "can detect 10.00% → 11.74%" in result.stdout


def test_sample_size_bad_input() -> None:
    result = run(["sample-size", "--mde", "0.02"])
    assert result.exit_code == 1
    assert "--baseline: give the control's conversion rate" in result.stderr
    result = run(["sample-size", "--baseline", "0.95", "--mde", "0.1"])
    assert result.exit_code == 1
    assert "mde: baseline 0.95 + effect 0.1 = 1.05 is not a rate between 0 and 1" in result.stderr
