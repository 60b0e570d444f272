"""The console page of product roles on the hand-made shop of ``test_roles``: zh and en, the chart's
data, the role table with its reasons, a role's buyers saved as a segment through the segments
page's own form (operators; analysts get no button), and a bad period shown next to the field."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.products.test_roles import _shop

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.segments import service as segments
from growthwheel.store import db


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    _shop(tmp_path)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        accounts.create_user(session, "op@example.com", "operator", "pw-operator-0123456789")
        accounts.create_user(session, "an@example.com", "analyst", "pw-analyst-0123456789")
    with TestClient(create_app(cfg)) as test_client:
        yield test_client
    db.engine(cfg).dispose()


def test_roles_page_in_both_languages_and_a_segment_from_a_role(
        client: TestClient, log_in: Callable[..., Any]) -> None:
    log_in(client, "op@example.com", "pw-operator-0123456789")
    zh = client.get("/products/roles", params={"period": "2025-03"}, headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200, zh.text
    assert "商品角色" in zh.text
    assert 'href="/products/roles"' in zh.text  # the navigation link
    row = re.search(r'<tr data-role="profit_maker">(.*?)</tr>', zh.text, re.S)
    assert row is not None
    assert "利润款" in row.group(1)
    assert "毛利率 80.0%" in row.group(1)
    chart = json.loads(re.search(r'id="roles-data">(.*?)</script>', zh.text, re.S).group(1))  # type: ignore[union-attr]
    assert {s["role"] for s in chart["series"]} >= {"profit_maker", "potential"}
    assert chart["y"] == "毛利率（%）"
    en = client.get("/products/roles", params={"period": "2025-03"}, headers={"Accept-Language": "en"})
    assert "Product roles" in en.text
    assert "Slow mover" in en.text
    form = re.search(r'action="/segments" data-testid="segment-profit_maker">(.*?)</form>', en.text, re.S)
    assert form is not None
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', form.group(1)))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    saved = client.post("/segments", data=fields, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    with db.session_scope(cfg) as session:
        seg = segments.get_segment(session, "Profit-maker buyers 2025-03")
        assert seg.definition["sku"] == ["P"]
        assert seg.definition["window"]["from"] == "2025-03-01"
        assert seg.definition["window"]["to"] == "2025-03-31"


def test_analyst_gets_no_save_button_and_a_bad_period_is_named(
        client: TestClient, log_in: Callable[..., Any]) -> None:
    log_in(client, "an@example.com", "pw-analyst-0123456789")
    page = client.get("/products/roles", params={"period": "2025-03"}, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'action="/segments"' not in page.text
    assert "SKUs, for a promotion" in page.text
    bad = client.get("/products/roles", params={"period": "soon"}, headers={"Accept-Language": "zh-CN"})
    assert bad.status_code == 422
    assert 'data-field="period"' in bad.text
    assert "无法识别该周期" in bad.text
