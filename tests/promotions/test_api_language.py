"""The API's human-readable texts follow ``Accept-Language`` (issue 13 item 5): the pricing API's
nudges and not-applied reasons, and request validation messages, come from the catalogues in
Chinese for ``zh-CN``; English (the default) keeps the pricing core's and pydantic's own words.
Real store (SQLite and PostgreSQL), the real app over HTTP (TestClient), an API key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.web.i18n import catalogue

SPEND_TIERS = {"reward": {"type": "spend_tiers", "tiers": [[20000, 2000], [30000, 5000]]}}
ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}
#: 150.00 in the cart: 50.00 short of 满200减20; a channel promotion that does not apply.
CART = {"customer_id": "alice", "channel": "douyin",
        "lines": [{"line_id": "A", "sku": "TEA-A", "unit_price": 15000, "quantity": 1}]}


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Callable[..., str]) -> Iterator[TestClient]:
    key = make_api_key("read", "write")
    with TestClient(create_app(store_cfg), headers={"Authorization": f"Bearer {key}"}) as test_client:
        for name, definition in (
            ("满200减20", SPEND_TIERS),
            ("小程序专享 9 折", {"reward": {"type": "percent_off", "rate_bp": 1000},
                            "conditions": {"channels": ["mini_program"]}}),
        ):
            created = test_client.post("/api/v1/promotions",
                                       json={"name": name, "definition": definition, "status": "active"})
            assert created.status_code == 201, created.text
        yield test_client


def _price(client: TestClient, headers: dict[str, str]) -> Any:
    response = client.post("/api/v1/carts/price", json=CART, headers=headers)
    assert response.status_code == 200, response.text
    assert "Accept-Language" in response.headers["vary"]
    return response.json()


def test_price_nudges_and_reasons_follow_accept_language(client: TestClient) -> None:
    zh_texts = catalogue("zh")
    zh = _price(client, ZH)
    en = _price(client, EN)
    assert zh["totals"] == en["totals"]  # only the words change
    [zh_nudge], [en_nudge] = zh["nudges"], en["nudges"]
    assert zh_nudge["message"] == zh_texts["promotions.nudge.spend_save"].format(short="¥50.00",
                                                                                save="¥20.00")
    assert en_nudge["message"].startswith("spend")
    assert "50.00" in en_nudge["message"]
    zh_missed = {m["code"]: m["reason"] for m in zh["not_applied"]}
    en_missed = {m["code"]: m["reason"] for m in en["not_applied"]}
    assert zh_missed.keys() == en_missed.keys()
    assert "wrong_channel" in zh_missed
    assert zh_missed["wrong_channel"] == zh_texts["promotions.reason.wrong_channel"]
    assert en_missed["wrong_channel"] != zh_missed["wrong_channel"]
    assert not any(c.isascii() and c.isalpha() for c in zh_missed["wrong_channel"])


def test_validation_messages_follow_accept_language(client: TestClient) -> None:
    bad = {**CART, "lines": [{"line_id": "A", "sku": "TEA-A", "unit_price": "abc", "quantity": 1}]}
    zh = client.post("/api/v1/carts/price", json=bad, headers=ZH)
    en = client.post("/api/v1/carts/price", json=bad, headers=EN)
    assert zh.status_code == en.status_code == 422
    assert zh.headers["content-type"].startswith("application/problem+json")
    [zh_error], [en_error] = zh.json()["errors"], en.json()["errors"]
    assert zh_error["location"] == en_error["location"] == "body.lines.0.unit_price"
    assert zh_error["message"] == "应为整数"
    assert en_error["message"].startswith("Input should be a valid integer")
    assert zh.json()["detail"] == "body.lines.0.unit_price: 应为整数"
    none = {**CART, "lines": [{"line_id": "A", "sku": "TEA-A", "unit_price": 15000, "quantity": 0}]}
    [error] = client.post("/api/v1/carts/price", json=none, headers=ZH).json()["errors"]
    assert (error["location"], error["message"]) == ("body.lines.0.quantity", "应不小于 1")
