"""The product matrix through its faces on the hand-made shop of ``test_roles``: the REST route
(JSON, CSV, Excel, auth, 4xx naming the field) and ``growthwheel products roles`` (table, JSON,
``--out``, ``--segment`` accepted by ``segments``, one-line errors)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from tests.products.test_roles import _shop
from typer.testing import CliRunner

from growthwheel.accounts.api import router as accounts_router
from growthwheel.api.app import create_app
from growthwheel.cli.main import app as cli_app
from growthwheel.config import Settings
from growthwheel.products.api import router as products_router
from growthwheel.segments.definition import parse_definition

runner = CliRunner()


@pytest.fixture
def client(store_cfg: Settings) -> Iterator[TestClient]:
    _shop(store_cfg.data_dir)
    app = create_app(store_cfg, routers=[accounts_router, products_router])
    with TestClient(app) as test_client:
        yield test_client


def test_api_json_csv_xlsx_and_problems(client: TestClient, make_api_key: Callable[..., str]) -> None:
    reader = {"Authorization": f"Bearer {make_api_key('read')}"}
    assert client.get("/api/v1/products/roles").status_code == 401
    got = client.get("/api/v1/products/roles", params={"period": "2025-03", "traffic_entry_lift": 2,
                                                        "traffic_min_first_orders": 2},
                     headers=reader)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["currency"] == "CNY"
    assert body["skus"]["traffic_driver"] == ["T"]
    assert body["skus"]["profit_maker"] == ["P"]
    parse_definition(body["segments"]["traffic_driver"])
    assert "long_tail" not in body["segments"]
    default = client.get("/api/v1/products/roles", params={"period": "2025-03"}, headers=reader).json()
    assert default["thresholds"]["traffic_entry_lift"] == 6.0
    assert default["skus"]["traffic_driver"] == []  # T's 60 % is under 6 × the average (140 %)
    text = client.get("/api/v1/products/roles", params={"period": "2025-03", "format": "csv"}, headers=reader)
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    serum = next(r for r in rows if r["sku"] == "P")
    assert (serum["role"], serum["revenue"], serum["gross_margin"]) == ("profit_maker", "900.0", "720.0")
    assert "利润" not in serum["why_en"]
    assert "毛利率" in serum["why_zh"]
    book = client.get("/api/v1/products/roles", params={"period": "2025-03", "format": "xlsx"},
                      headers=reader)
    sheet = openpyxl.load_workbook(io.BytesIO(book.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "sku"
    assert len(values) == 1 + 7
    for params, field in (({"period": "2025-13"}, "period"), ({"period": "x" * 30}, "period"),
                          ({"period": "2025-03", "profit_margin_share": 3}, "profit_margin_share"),
                          ({"format": "pdf"}, "format")):
        bad = client.get("/api/v1/products/roles", params=params, headers=reader)
        assert bad.status_code == 422, (params, bad.text)
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert field in bad.text


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("roles-cli")
    _shop(folder)
    return folder


def _run(data_dir: Path, *args: str) -> str:
    result = runner.invoke(cli_app, ["--data-dir", str(data_dir), "products", "roles", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_table_json_out_and_segment(data_dir: Path, tmp_path: Path) -> None:
    table = _run(data_dir, "--period", "2025-03")
    assert "Product roles 2025-03-01 to 2025-03-31" in table
    assert "slow_mover" in table
    answer = json.loads(_run(data_dir, "--period", "2025-03", "--json"))
    assert answer["skus"]["slow_mover"] == ["S"]
    segment = json.loads(_run(data_dir, "--period", "2025-03", "--segment", "profit_maker"))
    assert parse_definition(segment).sku == ["P"]  # type: ignore[union-attr]
    out = tmp_path / "roles.xlsx"
    assert "wrote 7 products" in _run(data_dir, "--period", "2025-03", "--out", str(out))
    assert out.stat().st_size > 0


def test_cli_bad_input_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    for args, word in ((["--period", "soon"], "period"), (["--role", "hero"], "--role"),
                       (["--out", str(tmp_path / "x.pdf")], "--out")):
        result = runner.invoke(cli_app, ["--data-dir", str(data_dir), "products", "roles", *args])
        assert result.exit_code == 1, result.output
        assert word in result.output


def test_notebook_frame_matches_the_cli(data_dir: Path) -> None:
    import growthwheel

    frame = growthwheel.open(data_dir).product_roles("2025-03", traffic_entry_lift=2.0,
                                                      traffic_min_first_orders=2)
    assert dict(zip(frame["sku"], frame["role"], strict=True))["T"] == "traffic_driver"
    answer = json.loads(_run(data_dir, "--period", "2025-03", "--json"))
    assert sorted(frame["sku"]) == sorted(i["sku"] for i in answer["items"])
    assert frame.set_index("sku").loc["P", "margin"] == 72_000
