"""The marketing-mix console page through the real app, signed in, in English and Chinese."""

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
from growthwheel.web.pages import router as pages_router

from . import mix_data

pytestmark = pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)


@pytest.fixture
def client(store_cfg: Settings, tmp_path: Path, make_user: Callable[..., Any],
           log_in: Callable[..., None]) -> Iterator[TestClient]:
    mix_data.build(tmp_path, store_cfg)
    app = create_app(store_cfg, routers=[accounts_router, pages_router, marketing_pages])
    with TestClient(app) as test_client:
        user = make_user("analyst")
        log_in(test_client, user.email, user.password)
        yield test_client


def _cell(html: str, attr: str, channel: str, col: str) -> str:
    row = re.search(rf'<tr {attr}="{re.escape(channel)}">(.*?)</tr>', html, flags=re.S)
    assert row is not None, channel
    cell = re.search(rf'data-col="{col}">(.*?)</td>', row.group(1), flags=re.S)
    assert cell is not None, col
    return re.sub(r"<[^>]+>", "", cell.group(1)).strip()


def test_curves_marginal_table_and_plan_in_both_languages(client: TestClient) -> None:
    # Default period: up to the last day with ad spend, 365 days back (the history is shorter).
    page = client.get("/marketing/mix", params={"from": mix_data.START.isoformat(), "reserve": "10"})
    assert page.status_code == 200
    html = page.text
    assert 'data-testid="mix-error"' not in html
    assert f'value="{mix_data.END.isoformat()}"' in html
    for channel in ("抖音", "百度", "小红书"):
        assert _cell(html, "data-channel", channel, "spend").startswith("¥")
        roas = _cell(html, "data-channel", channel, "roas")
        assert re.fullmatch(r"[\d.]+ \[[\d.]+–[\d.]+\]", roas), roas
        assert _cell(html, "data-plan-channel", channel, "plan").startswith("¥")
    assert _cell(html, "data-plan-channel", "(reserve)", "plan").startswith("¥")
    data = json.loads(re.search(r'id="mix-data">(.*?)</script>', html, flags=re.S).group(1))  # type: ignore[union-attr]
    assert len(data["series"]) == 3
    for series in data["series"]:
        assert len(series["points"]) == len(series["low"]) == len(series["high"])
        assert series["points"][0][1] == 0
    assert "marketing_mix.js" in html
    assert "Response curves" in html
    zh = client.get("/marketing/mix", params={"from": mix_data.START.isoformat(), "lang": "zh"}).text
    assert "响应曲线" in zh
    assert "机动预算" in zh
    assert "花费弹性" in zh


def test_bad_parameters_and_empty_period(client: TestClient) -> None:
    bad = client.get("/marketing/mix", params={"from": "2025-05-20", "to": "2025-05-25", "total": "abc",
                                               "reserve": "150", "outcome": "likes"})
    assert bad.status_code == 200
    assert 'data-testid="mix-error"' in bad.text
    empty = client.get("/marketing/mix", params={"from": "2020-01-01", "to": "2020-03-31"})
    assert empty.status_code == 200
    assert 'data-testid="mix-empty"' in empty.text
    attribution = client.get("/marketing/attribution").text
    assert 'href="/marketing/mix"' in attribution


def test_days_left_out_of_the_model(client: TestClient) -> None:
    """A known incident's days typed in the form leave the fit (the spend shown is the days kept);
    a malformed or impossible one is named and the model shown without it."""
    span = {"from": mix_data.START.isoformat(), "to": mix_data.END.isoformat()}
    full = client.get("/marketing/mix", params=span).text
    page = client.get("/marketing/mix", params={**span, "exclude": "抖音:2025-03-10..2025-03-16"})
    assert page.status_code == 200
    assert 'data-testid="mix-error"' not in page.text
    assert "抖音: 2025-03-10 – 2025-03-16" in page.text
    assert 'value="抖音:2025-03-10..2025-03-16"' in page.text
    assert _cell(page.text, "data-channel", "抖音", "spend") != _cell(full, "data-channel", "抖音", "spend")
    assert _cell(page.text, "data-channel", "百度", "spend") == _cell(full, "data-channel", "百度", "spend")
    for bad in ("抖音:2025-03-99", "微博:2025-03-10..2025-03-12", "2025-03-03..2025-05-25"):
        answer = client.get("/marketing/mix", params={**span, "exclude": bad, "lang": "zh"})
        assert answer.status_code == 200, bad
        assert "剔除日期的格式为" in answer.text, bad
        assert 'data-testid="mix-excluded"' not in answer.text
        spend = _cell(answer.text, "data-channel", "抖音", "spend")
        assert spend == _cell(full, "data-channel", "抖音", "spend")
