"""The attribution console page through the real app, signed in, in English and Chinese."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts.api import router as accounts_router
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.marketing.pages import router as marketing_pages
from growthwheel.warehouse import ingest
from growthwheel.web.pages import router as pages_router

from .test_marketing_api import EVENTS, ORDERS
from .test_spend import EXAMPLES

pytestmark = pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)


@pytest.fixture
def client(store_cfg: Settings, tmp_path: Path, make_user: Callable[..., Any],
           log_in: Callable[..., None]) -> Iterator[TestClient]:
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    ingest.import_files("events", [tmp_path / "events.csv"], cfg=store_cfg)
    ingest.import_files("orders", [tmp_path / "orders.csv"], cfg=store_cfg)
    from growthwheel.marketing import service

    service.import_spend("oceanengine", [EXAMPLES / "oceanengine_daily_report.csv"], cfg=store_cfg)
    app = create_app(store_cfg, routers=[accounts_router, pages_router, marketing_pages])
    with TestClient(app) as test_client:
        user = make_user("analyst")
        log_in(test_client, user.email, user.password)
        yield test_client


def _cell(html: str, channel: str, col: str) -> str:
    row = re.search(rf'<tr data-channel="{re.escape(channel)}">(.*?)</tr>', html, flags=re.S)
    assert row is not None, channel
    cell = re.search(rf'data-(?:col|model)="{col}">([^<]*)<', row.group(1))
    assert cell is not None, col
    return cell.group(1)


def test_side_by_side_defaults_to_the_last_30_days(client: TestClient) -> None:
    assert client.get("/marketing", follow_redirects=False).headers["location"] == "/marketing/attribution"
    page = client.get("/marketing/attribution")
    assert page.status_code == 200
    html = page.text
    assert 'value="2024-12-02"' in html  # the last paid order's day
    assert _cell(html, "douyin", "last_touch") == "1.0"
    assert _cell(html, "douyin", "first_touch") == "2.0"
    assert _cell(html, "douyin", "spend") == "¥12,888.85"
    assert _cell(html, "organic_search", "last_touch") == "1.0"
    assert _cell(html, "organic_search", "spend") == "–"
    data = json.loads(re.search(r'id="attribution-data">(.*?)</script>', html, flags=re.S).group(1))  # type: ignore[union-attr]
    assert len(data["series"]) == 7
    assert data["channels"][0] in ("douyin", "organic_search")
    assert "vendor/echarts.min.js" in html
    assert "marketing.js" in html


def test_chinese_and_bad_parameters(client: TestClient) -> None:
    zh = client.get("/marketing/attribution", params={"lang": "zh", "basis": "shapley"})
    assert "归因分析" in zh.text
    assert "马尔可夫" in zh.text
    bad = client.get("/marketing/attribution", params={"lookback_days": "0", "from": "2024-12-31",
                                                       "to": "2024-12-01", "level": "nope"})
    assert bad.status_code == 200
    assert 'data-testid="attribution-error"' in bad.text
    empty = client.get("/marketing/attribution", params={"from": "2020-01-01", "to": "2020-01-31"})
    assert 'data-testid="attribution-empty"' in empty.text


def test_campaign_level(client: TestClient) -> None:
    html = client.get("/marketing/attribution", params={"level": "campaign", "basis": "first_touch",
                                                        "from": "2024-12-01", "to": "2024-12-31"}).text
    assert _cell(html, "douyin / 双11返场-面霜", "first_touch") == "1.0"
    assert _cell(html, "douyin / 双11返场-面霜", "spend") == "¥8,694.25"


def test_growthwheels_own_channel_names_are_translated(client: TestClient) -> None:
    zh = client.get("/marketing/attribution", params={"lang": "zh"}).text
    assert _label_cell(zh, "organic_search") == "自然搜索"
    en = client.get("/marketing/attribution", params={"lang": "en"}).text
    assert _label_cell(en, "organic_search") == "Organic search"
    assert _label_cell(en, "douyin") == "douyin"  # the shop's own names as they are


def _label_cell(html: str, channel: str) -> str:
    row = re.search(rf'<tr data-channel="{re.escape(channel)}">\s*<td>([^<]*)</td>', html)
    assert row is not None, channel
    return row.group(1)
