"""``GET /api/v1/kpis`` answers exactly what ``growthwheel kpi --json`` prints, with the currency."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.schemas import ROLE_SCOPES, Principal
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.api.deps import current_principal
from growthwheel.config import Settings
from growthwheel.insight.api import router as kpi_router
from growthwheel.warehouse.ingest import import_files

LINES = """\
    order_id,customer_id,ordered_at,sku,quantity,line_total,status,refunded_amount,utm_source,category
    O6,c9,2024-02-01 12:00:00 +0800,S1,5,100.00,paid,,weibo,Tea
    O1,c1,2024-03-05 14:00:00 +0800,S1,2,40.00,paid,,douyin,Tea
    O1,c1,2024-03-05 14:00:00 +0800,S2,1,120.00,paid,,douyin,Teaware
    O5,c2,2024-03-06 12:00:00 +0800,S2,1,120.00,paid,,baidu,Teaware
    O7,c2,2024-03-20 12:00:00 +0800,S4,1,0.01,paid,,baidu,
    O3,c1,2024-03-31 23:30:00 +0800,S3,3,90.00,cancelled,,,Tea
    O2,c1,2024-04-10 09:00:00 +0800,S1,1,20.00,partially_refunded,5.00,,Tea
    """
ANALYST = Principal(kind="user", id="u2", name="a@example.com", role="analyst", scopes=ROLE_SCOPES["analyst"])

QUERIES: list[tuple[dict[str, str], list[str]]] = [
    ({}, []),
    ({"by": "week", "from": "2024-03-01", "to": "2024-03-31"},
     ["--by", "week", "--from", "2024-03-01", "--to", "2024-03-31"]),
    ({"dimension": "channel"}, ["--dimension", "channel"]),
    ({"by": "quarter", "dimension": "category"}, ["--by", "quarter", "--dimension", "category"]),
    ({"by": "day", "from": "2024-04-10", "to": "2024-04-10"},
     ["--by", "day", "--from", "2024-04-10", "--to", "2024-04-10"]),
]


# Runs ``growthwheel --data-dir D kpi --json ARGS`` for each ARGS in one child process (the
# command's own code and output, without paying the start-up once per query).
_RUN_CLI = """
import json, sys
from typer.testing import CliRunner
from growthwheel.cli.main import app
data_dir, queries = sys.argv[1], json.loads(sys.argv[2])
outputs = []
for args in queries:
    result = CliRunner().invoke(app, ["--data-dir", data_dir, "kpi", "--json", *args])
    assert result.exit_code == 0, result.output
    outputs.append(json.loads(result.stdout))
print(json.dumps(outputs))
"""


def cli_json(data_dir: Path, queries: list[list[str]]) -> list[list[dict[str, Any]]]:
    """What ``growthwheel kpi --json`` prints for each argument list."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN_CLI, str(data_dir), json.dumps(queries)],
        capture_output=True, text=True, check=True, timeout=120,
    )
    printed: list[list[dict[str, Any]]] = json.loads(done.stdout)
    return printed


Setup = tuple[TestClient, list[list[dict[str, Any]]]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The app over a tiny warehouse, and what the CLI printed for each of QUERIES (run first:
    once the server runs it owns the warehouse file)."""
    root = tmp_path_factory.mktemp("kpis")
    cfg = Settings(data_dir=root / "data", database_url=None)
    lines = root / "lines.csv"
    lines.write_text(textwrap.dedent(LINES), encoding="utf-8")
    assert import_files("order_lines", [lines], cfg=cfg).rows_quarantined == 0
    printed = cli_json(cfg.data_dir, [args for _params, args in QUERIES])
    app = warehouse_api.install(create_app(cfg, routers=[kpi_router]))
    app.dependency_overrides[current_principal] = lambda: ANALYST
    with TestClient(app) as client:
        yield client, printed


def kpis(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/kpis", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_kpis_equal_the_cli_output(setup: Setup) -> None:
    client, printed = setup
    for (params, _args), expected in zip(QUERIES, printed, strict=True):
        body = kpis(client, **params)
        assert body["rows"] == expected, params
        assert body["currency"] == "CNY"
        assert body["by"] == params.get("by", "month")
        assert body["dimension"] == params.get("dimension")
        assert body["from"] == params.get("from")
    assert all(printed)  # every query had rows to compare


def test_monthly_numbers_worked_by_hand(setup: Setup) -> None:
    client, _ = setup
    rows = {row["period"]: row for row in kpis(client)["rows"]}
    assert list(rows) == ["2024-02-01", "2024-03-01", "2024-04-01"]
    march = rows["2024-03-01"]
    # Paid March orders: O1 160.00, O5 120.00, O7 0.01 (O3 is cancelled); buyers c1 and c2.
    assert (march["orders"], march["buyers"], march["gmv"]) == (3, 2, 280.01)
    assert march["aov"] == 93.34  # 280.01 / 3 = 93.336…, half-up
    assert march["repurchase_rate"] == 0.5  # c2 bought twice in March
    assert march["gmv_change"] == pytest.approx(1.8001)  # (280.01 − 100.00) / 100.00
    april = rows["2024-04-01"]
    assert (april["gmv"], april["net_revenue"], april["refund_rate"]) == (20.0, 15.0, 0.25)
    by_channel = kpis(client, dimension="channel")["rows"]
    assert {(r["period"], r["channel"]): r["gmv"] for r in by_channel} == {
        ("2024-02-01", "weibo"): 100.0, ("2024-03-01", "douyin"): 160.0,
        ("2024-03-01", "baidu"): 120.01, ("2024-04-01", "direct"): 20.0,
    }
    # Without a breakdown the rows carry no dimension key, exactly like the CLI's.
    assert "channel" not in rows["2024-03-01"]


def test_bad_parameters_are_problems(setup: Setup) -> None:
    client, _ = setup
    for params in ({"by": "year"}, {"dimension": "sku"}, {"from": "2024-13-01"},
                   {"from": "2024-04-01", "to": "2024-03-01"}, {"from": "0001-01-01"},
                   {"to": "9999-12-31"}):
        response = client.get("/api/v1/kpis", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] in ("validation_error", "invalid_argument")


def test_empty_range_has_no_rows(setup: Setup) -> None:
    client, _ = setup
    assert kpis(client, **{"from": "2030-01-01", "to": "2030-12-31"})["rows"] == []
