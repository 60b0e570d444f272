"""The checkout API over HTTP (TestClient, real store on SQLite and PostgreSQL, API keys): price a cart,
commit, retry, refund in parts, tiers and points through orders, coupons for a saved segment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.warehouse.ingest import import_files

SPEND_TIERS = {"reward": {"type": "spend_tiers", "tiers": [[20000, 2000], [30000, 5000], [50000, 10000]]}}
COUPON_10 = {"reward": {"type": "order_amount_off", "amount": 1000}, "conditions": {"min_amount": 10000}}


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Callable[..., str]) -> Iterator[TestClient]:
    key = make_api_key("read", "write")
    with TestClient(create_app(store_cfg), headers={"Authorization": f"Bearer {key}"}) as test_client:
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    return str(response.json()["detail"])


def shop(client: TestClient) -> None:
    """满200减20 / 满300减50 / 满500减100, and the shared coupon SAVE10 (满100减10)."""
    promotion = {"name": "满减", "definition": SPEND_TIERS, "status": "active"}
    ok(client.post("/api/v1/promotions", json=promotion), 201)
    ok(client.post("/api/v1/coupon-batches", json={
        "name": "满100减10", "definition": COUPON_10, "code_mode": "shared", "shared_code": "SAVE10",
        "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z", "per_customer_limit": 5,
    }), 201)


CART = {
    "customer_id": "alice",
    "lines": [{"line_id": "A", "sku": "TEA-A", "unit_price": 15000, "quantity": 2},
              {"line_id": "B", "sku": "CUP-B", "unit_price": 8000, "quantity": 1}],
    "coupon_codes": ["SAVE10"],
}


def test_price_commit_retry_and_refund_in_parts_returns_exactly_what_was_paid(client: TestClient) -> None:
    shop(client)
    # By hand: subtotal 300.00 + 80.00 = 380.00 reaches 满300减50. 50.00 over the lines by their
    # amounts (300 : 80) by largest remainder: 39.47|37 and 10.52|63 → A 39.47, B 10.53 (B has the
    # larger remainder). Left: A 260.53, B 69.47 = 330.00 ≥ 100.00, so SAVE10 takes 10.00:
    # 7.89|48 and 2.10|52 → A 7.89, B 2.11. Paid: A 252.64, B 67.36, total 320.00.
    priced = ok(client.post("/api/v1/carts/price", json=CART))
    assert priced["totals"]["total"] == 32000
    assert priced["totals"]["order_discount"] == 5000
    assert priced["totals"]["coupon_discount"] == 1000
    assert {line["line_id"]: line["paid"] for line in priced["lines"]} == {"A": 25264, "B": 6736}
    nudge = next(n for n in priced["nudges"] if n["would_save"] == 10000)
    assert nudge["short_amount"] == 12000  # 500.00 - 380.00 to reach 满500减100
    assert priced["points_to_earn"] == 320
    assert priced["growth_to_earn"] == 320

    order = {**CART, "order_id": "ord-1", "expected_total": 32000}
    first = client.post("/api/v1/orders", json=order)
    body = ok(first, 201)
    assert body["coupons"] == ["SAVE10"]
    assert body["points_earned"] == 320
    retry = client.post("/api/v1/orders", json=order)
    assert ok(retry) == body
    assert retry.headers["Idempotent-Replayed"] == "true"
    changed = {**order, "lines": [{**CART["lines"][0], "quantity": 3}]}  # type: ignore[dict-item]
    assert "different payload" in problem(client.post("/api/v1/orders", json=changed), 409, "order_conflict")

    # Refund 1 of the 2 units of A: A's 252.64 spread over its 2 units is 126.32 each.
    part = ok(client.post("/api/v1/orders/ord-1/refunds",
                          json={"refund_id": "r1", "lines": [{"line_id": "A", "quantity": 1}]}), 201)
    assert part["amount"] == 12632
    assert part["order_status"] == "partially_refunded"
    assert part["coupons_released"] == []
    assert part["points_clawed_back"] == 126  # floor(320 × 126.32 / 320.00)
    too_much = client.post("/api/v1/orders/ord-1/refunds",
                           json={"refund_id": "r2", "lines": [{"line_id": "A", "quantity": 2}]})
    assert "lines[0].quantity: 2 asked, 1 left" in problem(too_much, 422, "invalid_refund")
    rest = ok(client.post("/api/v1/orders/ord-1/refunds", json={"refund_id": "r3"}), 201)
    assert rest["amount"] == 12632 + 6736
    assert part["amount"] + rest["amount"] == body["total"] == 32000
    assert rest["coupons_released"] == ["SAVE10"]
    assert rest["order_status"] == "refunded"
    assert rest["points_clawed_back"] == 194
    assert rest["growth_clawed_back"] == 194
    # the refund is idempotent too
    assert ok(client.post("/api/v1/orders/ord-1/refunds", json={"refund_id": "r3"}), 201) == rest
    member = ok(client.get("/api/v1/members/alice"))
    assert member["points_balance"] == 0
    assert member["growth"] == 0
    assert ok(client.get("/api/v1/orders/ord-1"))["refunded_amount"] == 32000
    batch = ok(client.get("/api/v1/coupon-batches"))[0]
    assert (batch["used_count"], batch["used_amount"]) == (0, 0)


def test_tiers_and_points_follow_orders_and_refunds(client: TestClient) -> None:
    ok(client.put("/api/v1/tiers", json=[
        {"code": "silver", "name": "白银会员", "min_growth": 300, "points_multiplier_bp": 15000,
         "free_shipping": True},
    ]))
    ok(client.post("/api/v1/members/bob/points-adjustments", json={"delta": 1000, "note": "welcome"}))
    one = {"customer_id": "bob", "shipping_fee": 1000,
           "lines": [{"line_id": "1", "sku": "TEA", "unit_price": 40000, "quantity": 1}]}
    # Not a member yet: pays shipping, earns 1 point per yuan.
    first = ok(client.post("/api/v1/orders", json={**one, "order_id": "b1"}), 201)
    assert (first["total"], first["points_earned"], first["tier_after"]) == (41000, 400, "silver")
    # Now silver: free shipping and ×1.5 points. 500 points (5.00) go towards a 100.00 item.
    second = {"customer_id": "bob", "shipping_fee": 1000, "points_to_use": 500,
              "lines": [{"line_id": "1", "sku": "TEA", "unit_price": 10000, "quantity": 1}]}
    priced = ok(client.post("/api/v1/carts/price", json=second))
    assert priced["tier"] == "silver"
    assert priced["totals"]["shipping"] == 0
    assert priced["totals"]["points_discount"] == 500
    assert priced["totals"]["total"] == 9500
    assert priced["points_to_earn"] == 142  # floor(95.00 × 1 × 1.5)
    ok(client.post("/api/v1/orders", json={**second, "order_id": "b2"}), 201)
    member = ok(client.get("/api/v1/members/bob"))
    assert member["points_balance"] == 1000 + 400 - 500 + 142
    assert member["growth"] == 400 + 95
    # Refunding the first order takes its growth back: 95 < 300, silver is lost at once; its
    # 400 points are clawed back (shipping 10.00 included in the money returned).
    refund = ok(client.post("/api/v1/orders/b1/refunds", json={"refund_id": "rb1"}), 201)
    assert (refund["amount"], refund["shipping"], refund["tier_after"]) == (41000, 1000, None)
    assert refund["points_clawed_back"] == 400
    # Refunding the second returns the 500 points it spent and claws back the 142 it earned.
    refund = ok(client.post("/api/v1/orders/b2/refunds", json={"refund_id": "rb2"}), 201)
    assert (refund["points_returned"], refund["points_clawed_back"]) == (500, 142)
    member = ok(client.get("/api/v1/members/bob"))
    assert member["points_balance"] == 1000
    assert member["growth"] == 0
    assert member["tier"] is None
    assert sum(e["points"] for e in member["ledger"]) == 1000


def test_checkout_errors_name_the_field(client: TestClient) -> None:
    shop(client)
    unknown = client.post("/api/v1/carts/price", json={**CART, "coupon_codes": ["NOPE"]})
    assert "coupon_codes[0]" in problem(unknown, 404, "coupon_not_found")
    bad_line = {**CART, "lines": [{"line_id": "A", "sku": "X", "unit_price": 100, "quantity": 0}]}
    assert "lines.0.quantity" in problem(client.post("/api/v1/carts/price", json=bad_line), 422,
                                         "validation_error")
    greedy = client.post("/api/v1/carts/price", json={**CART, "points_to_use": 5})
    assert "points_to_use" in problem(greedy, 409, "insufficient_points")
    moved = client.post("/api/v1/orders", json={**CART, "order_id": "o-x", "expected_total": 1})
    assert "expected_total" in problem(moved, 409, "price_changed")
    assert client.get("/api/v1/orders/o-x").status_code == 404  # nothing was committed
    bad = client.post("/api/v1/promotions", json={"name": "x", "definition": {
        "reward": {"type": "flash_sale", "price": 100}}, "status": "active"})
    assert "stock" in problem(bad, 422, "invalid_argument")


def test_a_coupon_is_issued_to_every_member_of_a_saved_segment(
    client: TestClient, store_cfg: Settings, tmp_path: Path,
) -> None:
    (tmp_path / "customers.csv").write_text(
        "customer_id,name,city\nc1,Ann,上海\nc2,Ben,北京\nc3,Cai,上海\n", encoding="utf-8")
    client.app.state.warehouse.stop()  # type: ignore[attr-defined]  # import directly, then reopen
    import_files("customers", [tmp_path / "customers.csv"], cfg=store_cfg)
    client.app.state.warehouse.start()  # type: ignore[attr-defined]
    segment = ok(client.post("/api/v1/segments", json={"name": "上海客户", "definition": {
        "all": [{"type": "attribute", "field": "city", "op": "in", "value": ["上海"]}]}}), 201)
    ok(client.post(f"/api/v1/segments/{segment['id']}/refresh"))
    batch = ok(client.post("/api/v1/coupon-batches", json={
        "name": "上海专享", "definition": COUPON_10,
        "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}), 201)
    to_segment = {"segment_id": segment["id"]}
    issued = ok(client.post(f"/api/v1/coupon-batches/{batch['id']}/issue", json=to_segment))
    assert sorted(issued["issued"]) == ["c1", "c3"]
    assert issued["already"] == []
    again = ok(client.post(f"/api/v1/coupon-batches/{batch['id']}/issue", json=to_segment))
    assert (again["issued"], again["already"], again["warnings"]) == ({}, ["c1", "c3"], [])
    code = ok(client.get(f"/api/v1/coupons/{issued['issued']['c1']}"))
    assert (code["customer_id"], code["issue_key"]) == ("c1", f"segment:{segment['id']}")


def test_issuing_warns_first_about_repeat_buyers_and_the_redemption_cap(
    client: TestClient, store_cfg: Settings, tmp_path: Path,
) -> None:
    (tmp_path / "lines.csv").write_text(
        "order_id,customer_id,ordered_at,sku,quantity,line_total\nR1,c1,2024-01-01,S,1,9.90\n",
        encoding="utf-8")
    client.app.state.warehouse.stop()  # type: ignore[attr-defined]  # import directly, then reopen
    import_files("order_lines", [tmp_path / "lines.csv"], cfg=store_cfg)
    client.app.state.warehouse.start()  # type: ignore[attr-defined]
    batch = ok(client.post("/api/v1/coupon-batches", json={
        "name": "新人券", "definition": {**COUPON_10, "conditions": {"first_order_only": True}},
        "budget_count": 1, "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z"}), 201)
    url = f"/api/v1/coupon-batches/{batch['id']}/issue"
    audience = {"customer_ids": ["c1", "c2", "c3"]}
    checked = ok(client.post(url, json={**audience, "dry_run": True}, headers={"Accept-Language": "zh-CN"}))
    assert (checked["issued"], checked["would_issue"]) == ({}, 3)
    warnings = {w["code"]: w for w in checked["warnings"]}
    assert (warnings["repeat_buyers"]["customers"], warnings["repeat_buyers"]["audience"]) == (1, 3)
    assert "仅限首单" in warnings["repeat_buyers"]["message"]
    cap = warnings["over_redemption_cap"]
    assert (cap["codes"], cap["cap"], cap["customers"]) == (3, 1, 2)
    assert ok(client.get(f"/api/v1/coupon-batches/{batch['id']}"))["issued_count"] == 0  # nothing issued
    issued = ok(client.post(url, json=audience))  # the operator goes ahead: issued, warned again
    assert sorted(issued["issued"]) == ["c1", "c2", "c3"]
    assert "first orders only" in {w["code"]: w for w in issued["warnings"]}["repeat_buyers"]["message"]


def test_the_answer_names_the_promotions_that_concern_the_cart_and_counts_the_rest_elsewhere(
        client: TestClient) -> None:
    shop(client)
    ok(client.post("/api/v1/promotions", json={"name": "鞋 9 折", "status": "active", "definition": {
        "reward": {"type": "percent_off", "rate_bp": 1000}, "conditions": {"skus": ["SHOE-1"]}}}), 201)
    small = {**CART, "coupon_codes": []}
    short = ok(client.post("/api/v1/carts/price", json=small))
    full = ok(client.post("/api/v1/carts/price", json={**small, "explain_all": True}))
    assert short["totals"] == full["totals"]
    assert short["not_applied_elsewhere"] == 1
    assert full["not_applied_elsewhere"] == 0
    assert {m["code"] for m in full["not_applied"]} - {m["code"] for m in short["not_applied"]} == {
        "no_eligible_lines"}
    order = ok(client.post("/api/v1/orders", json={**small, "order_id": "elsewhere-1"}), 201)
    assert ok(client.get("/api/v1/orders/elsewhere-1"))["priced"] == order["priced"]
    assert order["priced"]["not_applied_elsewhere"] == 1
    assert ok(client.post("/api/v1/orders", json={**small, "order_id": "elsewhere-1"}))["order_id"] == (
        "elsewhere-1")  # the retry (explain_all left out) is the same payload


def test_an_order_hash_is_the_one_stored_before_explain_all_existed() -> None:
    """A retry of an order committed before ``explain_all`` was added still matches its hash."""
    import hashlib
    import json

    from growthwheel.promotions.orders import payload_hash
    from growthwheel.promotions.schemas import OrderIn

    body = {**CART, "order_id": "old-1"}
    dumped = OrderIn.model_validate(body).model_dump(mode="json")
    dumped.pop("explain_all")
    before = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False).encode()).hexdigest()
    assert payload_hash(OrderIn.model_validate(body)) == before
    assert payload_hash(OrderIn.model_validate({**body, "explain_all": True})) != before
