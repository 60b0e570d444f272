"""``growthwheel demo --no-serve`` end to end, as a user runs it, plus the commands that follow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "growthwheel.cli", *args], capture_output=True,
                          text=True, check=check, timeout=600)


def test_demo_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "shop"
    done = run("--data-dir", str(data), "demo", "--customers", "1500", "--days", "365",
               "--start", "2025-01-01", "--no-serve")
    assert "order_lines" in done.stdout
    assert "quarantined" in done.stdout

    truth = json.loads((data / "ground_truth.json").read_text(encoding="utf-8"))
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        customers, orders, events, spend_days, reviews = con.execute(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), "
            "(SELECT count(*) FROM events), (SELECT count(DISTINCT date) FROM ad_spend), "
            "(SELECT count(*) FROM reviews)").fetchone() or ()
        quarantined = con.execute("SELECT count(*) FROM _quarantine").fetchone()
    finally:
        con.close()
    assert customers == 1500
    assert orders > 1500
    assert events > orders
    assert reviews > 0
    assert spend_days == 365
    assert quarantined == (0,)
    assert json.dumps(truth)  # the true parameters are there for later models to be checked against

    # The demo's review reports are written and self-contained.
    for period in ("week", "month"):
        html = (data / "reports" / f"review-{period}.html").read_text(encoding="utf-8")
        assert "<script" in html
        assert "src=\"http" not in html

    # Running it again changes nothing: every import reports its rows unchanged.
    again = run("--data-dir", str(data), "demo", "--customers", "1500", "--days", "365",
               "--start", "2025-01-01", "--no-serve")
    assert " 0 new" in again.stdout
    assert "· 0 updated" in again.stdout

    kpis = json.loads(run("--data-dir", str(data), "kpi", "--by", "quarter", "--json").stdout)
    assert [k["period"] for k in kpis] == ["2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"]
    assert sum(k["orders"] for k in kpis) == orders
    q4 = kpis[-1]
    assert q4["gmv"] > kpis[0]["gmv"]  # Double 11 lifts the fourth quarter


def test_demo_start_and_end_are_exclusive(tmp_path: Path) -> None:
    refused = run("--data-dir", str(tmp_path / "d"), "demo", "--start", "2025-01-01", "--end", "2026-01-01",
                  "--no-serve", check=False)
    assert refused.returncode != 0
    assert "--start and --end" in refused.stderr


def test_demo_refuses_a_directory_with_real_data(tmp_path: Path) -> None:
    data = tmp_path / "real"
    lines = tmp_path / "lines.csv"
    lines.write_text("order_id,customer_id,ordered_at,sku,quantity,line_total\nR1,c1,2024-01-01,S,1,9.90\n",
                     encoding="utf-8")
    run("--data-dir", str(data), "import", "order_lines", str(lines))
    refused = run("--data-dir", str(data), "demo", "--customers", "200", "--no-serve", check=False)
    assert refused.returncode == 1
    assert "already holds a shop's data" in refused.stderr
