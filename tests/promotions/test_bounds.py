"""Amounts past what the store can hold are refused up front, by name (issue 10, item 3).

Every line of a cart may be within its own bounds (a unit price up to 10^13, 100,000 units) while
the cart's total is past 2^63: that was a 500 (``OverflowError`` in SQLite) at commit and a 200 at
``/carts/price``. The same for the running sums of one customer — the points balance and the growth
value — which grew without a bound across orders. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from promo_store import points_state

from growthwheel.accounts.models import utcnow
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.loyalty import service as loyalty
from growthwheel.promotions.schemas import MAX_AMOUNT
from growthwheel.store.db import session_scope

HUGE = {"customer_id": "whale",
        "lines": [{"line_id": f"L{n}", "sku": f"S{n}", "unit_price": 10**13, "quantity": 100_000}
                  for n in range(10)]}


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Callable[..., str]) -> Iterator[TestClient]:
    key = make_api_key("read", "write")
    with TestClient(create_app(store_cfg), headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client


def refused(response: Any, field: str) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = str(response.json()["detail"])
    assert field in detail, detail
    return detail


def test_a_cart_past_the_largest_amount_is_a_422_naming_lines(client: TestClient) -> None:
    refused(client.post("/api/v1/carts/price", json=HUGE), "lines")
    refused(client.post("/api/v1/orders", json={**HUGE, "order_id": "o-huge"}), "lines")
    assert client.get("/api/v1/orders/o-huge").status_code == 404
    # One minor unit past the largest total, spread over two lines, is refused too ...
    two = {"customer_id": "whale", "lines": [
        {"line_id": "a", "sku": "A", "unit_price": MAX_AMOUNT // 2, "quantity": 1},
        {"line_id": "b", "sku": "B", "unit_price": MAX_AMOUNT // 2 + 1, "quantity": 1}]}
    refused(client.post("/api/v1/carts/price", json=two), "lines")
    # ... and the largest total itself is an order like any other.
    two["lines"][1]["unit_price"] = MAX_AMOUNT // 2
    order = client.post("/api/v1/orders", json={**two, "order_id": "o-max"})
    assert order.status_code == 201, order.text
    assert order.json()["total"] == MAX_AMOUNT


def test_a_points_balance_past_its_maximum_is_refused_by_name(store_cfg: Settings) -> None:
    now = utcnow()
    with session_scope(store_cfg) as s:
        loyalty.earn_points(s, "whale", loyalty.MAX_POINTS_BALANCE - 10, now, order_id="o-1")
    with session_scope(store_cfg) as s, pytest.raises(InvalidArgumentError, match=r"^points: "):
        loyalty.earn_points(s, "whale", 11, now, order_id="o-2")
    with session_scope(store_cfg) as s, pytest.raises(InvalidArgumentError, match=r"^delta: "):
        loyalty.adjust_points(s, "whale", 2**62, now, note="typo")
    with session_scope(store_cfg) as s:  # up to the maximum itself is fine
        loyalty.adjust_points(s, "whale", 10, now, note="goodwill")
    state = points_state(store_cfg, "whale")
    assert state["balance"] == state["ledger_sum"] == loyalty.MAX_POINTS_BALANCE


def test_an_order_taking_points_or_growth_past_the_maximum_is_a_422_and_takes_nothing(
        client: TestClient, store_cfg: Settings) -> None:
    cart = {"customer_id": "whale", "order_id": "o-next",
            "lines": [{"line_id": "a", "sku": "A", "unit_price": 10**12, "quantity": 1}]}
    # The order earns 10^10 points (1 per 100 minor units): one too many for this balance.
    with session_scope(store_cfg) as s:
        loyalty.earn_points(s, "whale", loyalty.MAX_POINTS_BALANCE - 10**10 + 1, utcnow())
    before = points_state(store_cfg, "whale")
    refused(client.post("/api/v1/orders", json=cart), "lines")
    assert client.get("/api/v1/orders/o-next").status_code == 404
    assert points_state(store_cfg, "whale") == before
    # Growth value: the same order would take the customer's growth past its maximum.
    with session_scope(store_cfg) as s:
        loyalty.claw_back(s, "whale", 10**10, utcnow(), order_id="none")  # room for the points
        loyalty.add_growth(s, "whale", loyalty.MAX_GROWTH - 10**10 + 1, effective_at=utcnow(),
                           kind="adjust")
    detail = refused(client.post("/api/v1/orders", json=cart), "lines")
    assert "growth" in detail
    assert client.get("/api/v1/orders/o-next").status_code == 404
    # A smaller order fits.
    small = {**cart, "lines": [{"line_id": "a", "sku": "A", "unit_price": 10_000, "quantity": 1}]}
    assert client.post("/api/v1/orders", json=small).status_code == 201
