"""Domain errors speak the client's language (issue 13 item 5): the promotions, coupons and orders
services raise errors with a catalogue code; the API answers their text in Chinese for
``Accept-Language: zh-CN`` and in English otherwise, with the stable machine ``code`` and the
``field`` it is about. Real store (SQLite), the real app over HTTP (TestClient), an API key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.promotions.errors import CouponNotFoundError
from growthwheel.store import db
from growthwheel.web.i18n import translator

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}
EN = {"Accept-Language": "en-US,en;q=0.9"}
CART = {"customer_id": "alice", "lines": [{"line_id": "A", "sku": "TEA", "unit_price": 15000,
                                          "quantity": 1}]}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from growthwheel.accounts.service import create_api_key

    cfg = Settings(data_dir=tmp_path_factory.mktemp("errors-lang"), database_url=None)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _row = create_api_key(session, "t", ["read", "write"], created_by="tests")
    with TestClient(create_app(cfg), headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client


def test_an_unknown_coupon_in_chinese_and_english(client: TestClient) -> None:
    cart = {**CART, "coupon_codes": ["NOPE-NOPE"]}
    zh = client.post("/api/v1/carts/price", json=cart, headers=ZH)
    en = client.post("/api/v1/carts/price", json=cart, headers=EN)
    assert zh.status_code == en.status_code == 404
    assert zh.json()["code"] == en.json()["code"] == "coupon_not_found"
    assert zh.json()["field"] == en.json()["field"] == "coupon_codes[0]"
    assert zh.json()["detail"] == "coupon_codes[0]: 优惠券 'NOPE-NOPE' 不存在"
    assert en.json()["detail"] == "coupon_codes[0]: coupon 'NOPE-NOPE' does not exist"


def test_a_refused_promotion_and_a_missing_order_in_chinese(client: TestClient) -> None:
    bad = {"name": "x" * 201, "definition": {"reward": {"type": "percent_off", "rate_bp": 1000}}}
    zh = client.post("/api/v1/promotions", json=bad, headers=ZH)
    if zh.status_code == 422 and zh.json()["code"] == "validation_error":
        # The schema refuses the name first; the service's own check is tried with a blank one.
        bad["name"] = "   "
        zh = client.post("/api/v1/promotions", json=bad, headers=ZH)
    assert zh.status_code == 422, zh.text
    assert zh.json()["detail"] == "name: 1 到 200 个字符"
    missing = client.get("/api/v1/orders/O-404", headers=ZH)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "没有订单 'O-404'"
    assert client.get("/api/v1/orders/O-404", headers=EN).json()["detail"] == "no order 'O-404'"
    gone = client.get("/api/v1/promotions/P-404", headers=ZH)
    assert gone.json()["detail"] == "没有活动 'P-404'"


def test_coded_errors_keep_their_english_message_for_the_cli_and_logs() -> None:
    error = CouponNotFoundError.coded("err.coupon.unknown", field="coupon_codes[0]", text="AB")
    assert error.message == "coupon_codes[0]: coupon 'AB' does not exist"
    assert error.text(translator("zh")) == "coupon_codes[0]: 优惠券 'AB' 不存在"
    plain = InvalidArgumentError("older words")
    assert plain.key is None
    assert plain.text(translator("zh")) == "older words"
