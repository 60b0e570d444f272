"""The customer-insight REST routes answer what the CLI's ``--json`` prints for the same arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service
from growthwheel.accounts.schemas import ROLE_SCOPES, Principal
from growthwheel.api.app import create_app, default_routers
from growthwheel.api.deps import current_principal
from growthwheel.config import Settings
from growthwheel.insight.reports_api import router as reports_router
from growthwheel.sim.demo import build_demo
from growthwheel.store import db

# (endpoint, query parameters, CLI arguments) -- each pair asks the same question.
QUERIES: list[tuple[str, dict[str, str], list[str]]] = [
    ("rfm", {}, ["rfm"]),
    ("rfm", {"as_of": "2025-05-31", "cut": "median"}, ["rfm", "--as-of", "2025-05-31", "--cut", "median"]),
    ("lifecycle", {}, ["lifecycle"]),
    ("lifecycle", {"as_of": "2025-06-30", "start": "2025-04-01"},
     ["lifecycle", "--as-of", "2025-06-30", "--from", "2025-04-01"]),
    ("cohorts", {}, ["cohorts"]),
    ("cohorts", {"by": "week", "mode": "rolling", "from": "2025-02-01", "to": "2025-05-31",
                 "by_channel": "true"},
     ["cohorts", "--by", "week", "--rolling", "--from", "2025-02-01", "--to", "2025-05-31",
      "--by-channel"]),
    ("funnel", {}, ["funnel"]),
    ("funnel", {"steps": "view,purchase", "window_days": "3", "from": "2025-03-01", "to": "2025-04-30",
                "breakdown": "utm_source"},
     ["funnel", "--steps", "view,purchase", "--window-days", "3", "--from", "2025-03-01",
      "--to", "2025-04-30", "--by", "utm_source"]),
]

# Runs ``growthwheel --data-dir D <args> --json`` for each argument list in one child process,
# then ``clv score`` (which writes customer_scores) and prints the outputs and the stored scores.
_RUN_CLI = """
import json, sys
import duckdb
from typer.testing import CliRunner
from growthwheel.cli.main import app
data_dir, queries = sys.argv[1], json.loads(sys.argv[2])
outputs = []
for args in queries + [["clv", "score"]]:
    result = CliRunner().invoke(app, ["--data-dir", data_dir, *args, "--json"])
    assert result.exit_code == 0, (args, result.output)
    outputs.append(json.loads(result.stdout))
con = duckdb.connect(data_dir + "/warehouse.duckdb", read_only=True)
rows = con.execute("SELECT customer_id, clv, p_alive FROM customer_scores").fetchall()
print(json.dumps({"outputs": outputs, "scores": rows}))
"""


def run_cli(data_dir: Path, queries: list[list[str]]) -> dict[str, Any]:
    """What the CLI printed for each query, then ``clv score --json``, and the stored scores."""
    done = subprocess.run([sys.executable, "-c", _RUN_CLI, str(data_dir), json.dumps(queries)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    printed: dict[str, Any] = json.loads(done.stdout)
    return printed


Setup = tuple[TestClient, str, dict[str, Any]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The API over the demo shop with a read key, and what the CLI printed (run first: once the
    server runs it owns the warehouse)."""
    cfg = Settings(data_dir=tmp_path_factory.mktemp("insight") / "data", database_url=None)
    build_demo(cfg, customers=400, days=200, seed=5, start=date(2025, 1, 1))
    printed = run_cli(cfg.data_dir, [args for _e, _p, args in QUERIES])
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _row = service.create_api_key(session, "reports", ("read",), created_by="tests")
    routers = default_routers()  # every router of the product, plus this one until it is listed
    app = create_app(cfg, routers=routers if reports_router in routers else [*routers, reports_router])
    assert "/api/v1/clv/scores" in app.openapi()["paths"]
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        yield client, key, printed
    db.engine(cfg).dispose()


def test_reports_equal_the_cli_json(setup: Setup) -> None:
    client, _key, printed = setup
    for (endpoint, params, args), expected in zip(QUERIES, printed["outputs"], strict=False):
        response = client.get(f"/api/v1/{endpoint}", params=params)
        assert response.status_code == 200, (endpoint, response.text)
        assert response.json() == expected, args
    rfm, rfm_may, life, life_moves, cohorts, weekly, funnel, by_source = printed["outputs"][:8]
    # The comparisons are not vacuous: every report holds data, and the arguments changed it.
    assert rfm["customers"] > 100
    assert rfm["currency"] == "CNY"
    assert rfm_may["as_of"] == "2025-05-31"
    assert rfm_may["customers"] < rfm["customers"]
    assert life["customers"] == rfm["customers"]
    assert life_moves["transitions"]["moves"]
    assert cohorts["cells"]
    assert {c["channel"] for c in weekly["cells"]} - {None}
    assert funnel["rows"][0]["entrants"] > 0
    assert len({r["utm_source"] for r in by_source["rows"]}) > 1


def test_rfm_segments_add_up(setup: Setup) -> None:
    client, _, _ = setup
    body = client.get("/api/v1/rfm").json()
    assert sum(s["customers"] for s in body["segments"]) == body["customers"]
    assert sum(c["customers"] for c in body["value_classes"]) == body["customers"]
    assert sum(c["customers"] for c in body["grid"]) == body["customers"]
    assert len(body["grid"]) == 25


def test_clv_scores_pages_walk_every_customer_by_clv(setup: Setup) -> None:
    client, _, printed = setup
    summary = printed["outputs"][-1]
    stored = pd.DataFrame(printed["scores"], columns=["customer_id", "clv", "p_alive"])
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 37}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/api/v1/clv/scores", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 37
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(items) == summary["customers"] == len(stored)
    assert pages == -(-len(stored) // 37)
    expected = stored.sort_values(["clv", "customer_id"], ascending=[False, True])
    assert [i["customer_id"] for i in items] == expected["customer_id"].tolist()
    # Money in major units (CNY: 2 decimals) of the stored minor units; totals match the CLI summary.
    assert [i["clv"] for i in items] == [round(v / 100, 2) for v in expected["clv"]]
    assert sum(i["clv"] for i in items) == pytest.approx(summary["total_clv"], abs=0.01)
    assert items[0]["clv"] > items[-1]["clv"]
    assert {i["currency"] for i in items} == {"CNY"}
    assert items[0]["params_id"] == summary["params_id"]


@pytest.mark.parametrize(("path", "params"), [
    ("rfm", {"cut": "mode"}),
    ("rfm", {"as_of": "2025-13-01"}),
    ("rfm", {"as_of": "3000-01-01"}),
    ("lifecycle", {"as_of": "1899-12-31"}),
    ("lifecycle", {"as_of": "2025-03-01", "start": "2025-04-01"}),
    ("cohorts", {"by": "year"}),
    ("cohorts", {"mode": "sliding"}),
    ("cohorts", {"window_days": "0"}),
    ("cohorts", {"by_channel": "maybe"}),
    ("cohorts", {"from": "0001-01-01"}),
    ("funnel", {"steps": "view"}),
    ("funnel", {"window_days": "0"}),
    ("funnel", {"window_days": "nan"}),
    ("funnel", {"window_days": "1e308"}),
    ("funnel", {"breakdown": "country"}),
    ("funnel", {"to": "9999-12-31"}),
    ("clv/scores", {"limit": "0"}),
    ("clv/scores", {"limit": "100000"}),
    ("clv/scores", {"cursor": "not-a-cursor"}),
    ("clv/scores", {"cursor": "WyJhIiwxXQ"}),  # ["a",1]: the parts in the wrong order
])
def test_bad_parameters_are_422_problems(setup: Setup, path: str, params: dict[str, str]) -> None:
    client, _, _ = setup
    response = client.get(f"/api/v1/{path}", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] in ("validation_error", "invalid_argument")


@pytest.mark.parametrize("path", ["rfm", "lifecycle", "cohorts", "funnel", "clv/scores"])
def test_every_route_needs_a_key(setup: Setup, path: str) -> None:
    client, _, _ = setup
    response = client.get(f"/api/v1/{path}", headers={"Authorization": "Bearer gw_wrong"})
    assert response.status_code == 401
    bare = TestClient(client.app).get(f"/api/v1/{path}")  # no lifespan needed to refuse
    assert bare.status_code == 401
    assert bare.json()["code"] == "unauthenticated"


def test_clv_scores_before_scoring_is_404_with_a_hint(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    app = create_app(cfg, routers=[reports_router])
    app.dependency_overrides[current_principal] = lambda: Principal(
        kind="user", id="u1", name="a@example.com", role="analyst", scopes=ROLE_SCOPES["analyst"])
    with TestClient(app) as client:
        response = client.get("/api/v1/clv/scores")
    db.engine(cfg).dispose()
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "no_scores"
    assert "growthwheel clv score" in body["hint"]
