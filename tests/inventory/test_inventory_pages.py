"""The console page of inventory over the example tea shop: zh and en, the navigation link, the
plan's table and backtest, a clearance draft from the slow movers (operators; analysts get no
button) that lands on the promotion's page, and a bad parameter shown as a 422 naming it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.promotions import repository
from growthwheel.store import db
from growthwheel.warehouse import ingest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "generic"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    for table, name in (("products", "products.csv"), ("order_lines", "order_lines.csv"),
                        ("inventory", "inventory.csv")):
        ingest.import_files(table, [EXAMPLES / name], cfg=cfg)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        accounts.create_user(session, "op@example.com", "operator", "pw-operator-0123456789")
        accounts.create_user(session, "an@example.com", "analyst", "pw-analyst-0123456789")
    with TestClient(create_app(cfg)) as test_client:
        yield test_client
    db.engine(cfg).dispose()


def test_page_in_both_languages_and_a_clearance_draft(client: TestClient, log_in: Callable[..., Any]) -> None:
    log_in(client, "op@example.com", "pw-operator-0123456789")
    zh = client.get("/inventory", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200, zh.text
    assert "库存与需求预测" in zh.text
    assert 'href="/inventory"' in zh.text  # the navigation link
    assert "安全库存" in zh.text
    assert "季节朴素法" in zh.text
    assert "TEA-LJ-250" in zh.text
    en = client.get("/inventory", params={"service_level": "0.9", "until": "2024-11-11", "uplift": "3"},
                    headers={"Accept-Language": "en"})
    assert en.status_code == 200, en.text
    assert "stock-out risk up to 2024-11-11" in en.text
    form = re.search(r'action="/inventory/clearance" data-testid="clearance-form">(.*?)</form>',
                     en.text, re.S)
    assert form is not None
    ticked = re.findall(r'name="sku" value="([^"]+)"', form.group(1))
    assert "POT-YX-200" in ticked
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.group(1))
    assert token is not None
    made = client.post("/inventory/clearance", data={"csrf_token": token.group(1), "sku": ticked,
                                                     "discount_percent": "25"}, follow_redirects=False)
    assert made.status_code == 303, made.text
    promotion_id = made.headers["location"].rsplit("/", 1)[1]
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    with db.session_scope(cfg) as session:
        stored = repository.promotion(session, promotion_id)
        assert stored is not None
        assert stored.status == "draft"
        assert stored.definition["reward"]["rate_bp"] == 2500
        assert sorted(stored.definition["conditions"]["skus"]) == sorted(set(ticked))
    nothing = client.post("/inventory/clearance", data={"csrf_token": token.group(1)}, follow_redirects=False)
    assert nothing.headers["location"] == "/inventory?notice=no_skus"


def test_analyst_gets_no_button_and_a_bad_parameter_is_named(
        client: TestClient, log_in: Callable[..., Any]) -> None:
    log_in(client, "an@example.com", "pw-analyst-0123456789")
    page = client.get("/inventory", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Draft a clearance promotion" not in page.text
    bad = client.get("/inventory", params={"service_level": "2"}, headers={"Accept-Language": "zh-CN"})
    assert bad.status_code == 422
    assert "service_level" in bad.text
    assert "参数无效" in bad.text
