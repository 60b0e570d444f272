"""The promotions, coupons and membership pages in a real browser over the demo shop.

An operator creates a 满减 promotion with two tiers (a mistyped ladder is refused next to its
field), schedules it and prices a cart on its page: the discount, its split over the lines and the
"spend X more" nudge are worked out by hand below. A coupon batch is generated, issued to a saved
segment, one code is redeemed through the real checkout API (``POST /api/v1/orders``) and the burn
numbers and chart follow. Points are adjusted by hand and the ledger and balance follow; analysts
see every page without a form and are refused (403) when they post anyway.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from growthwheel.accounts import service as accounts
from growthwheel.loyalty import api as loyalty_api
from growthwheel.loyalty import pages as loyalty_pages
from growthwheel.promotions import api as promotions_api
from growthwheel.promotions import coupons
from growthwheel.promotions import pages as promotion_pages
from growthwheel.promotions import service as promotions_service
from growthwheel.segments import service as segments_service
from growthwheel.store.db import session_scope

Console = Any  # conftest.Console: url, app, data_dir, admin, analyst, orders, events, customers


class _Account:
    def __init__(self, email: str, password: str) -> None:
        self.email = email
        self.password = password


@pytest.fixture(scope="module")
def shop(console: Console) -> Console:
    """The running console with the promotion pages and the promotions API mounted."""
    paths = {getattr(r, "path", "") for r in console.app.routes}
    if "/promotions" not in paths:
        console.app.include_router(promotion_pages.router)
    if "/loyalty" not in paths:
        console.app.include_router(loyalty_pages.router)
    if "/api/v1/orders" not in paths:
        console.app.include_router(promotions_api.router)
    if "/api/v1/tiers" not in paths:
        console.app.include_router(loyalty_api.router)
    return console


@pytest.fixture(scope="module")
def operator(shop: Console) -> _Account:
    """An operator of the shop (the console fixture has an admin and an analyst)."""
    account = _Account(f"operator-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12))
    with session_scope(shop.app.state.cfg) as session:
        accounts.create_user(session, account.email, "operator", account.password)
    return account


@pytest.fixture(scope="module")
def api_key(shop: Console) -> str:
    """A key for the shop's checkout (read and write)."""
    with session_scope(shop.app.state.cfg) as session:
        key, _row = accounts.create_api_key(session, "checkout e2e", ("read", "write"), created_by="tests")
    return key


def _log_in(page: Any, console: Console, path: str, account: Any) -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", account.email)
    page.fill("input[name=password]", account.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.url + path)))


def _local_field(console: Console, when: datetime) -> str:
    zone = ZoneInfo(console.app.state.cfg.shop().timezone)
    return when.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _commit_order(page: Any, console: Console, key: str, body: dict[str, Any]) -> dict[str, Any]:
    response = page.request.post(console.url + "/api/v1/orders", data=body,
                                 headers={"Authorization": f"Bearer {key}"})
    assert response.status == 201, response.text()
    found: dict[str, Any] = response.json()
    return found


# ---------------------------------------------------------------------------------------------
# Promotions
# ---------------------------------------------------------------------------------------------


def test_operator_creates_a_two_tier_manjian_and_prices_a_cart(
    new_page: Any, shop: Console, operator: _Account, screenshots: Any
) -> None:
    page = new_page()
    _log_in(page, shop, "/promotions/new", operator)
    form = page.locator("[data-testid=promotion-form]")
    # Only the chosen reward's fields show (static/promotions.js).
    assert form.locator("[data-reward=spend_tiers]").is_visible()
    assert form.locator("[data-reward=percent_off]").is_hidden()
    form.locator("input[name=name]").fill("E2E tea 满减")
    rows = form.locator("[data-testid=tier-rows] .tier-row")  # the ladder as rows
    for i, (at, off) in enumerate([("300", "50"), ("200", "20")]):  # thresholds must increase
        rows.nth(i).locator("input[name=tier_at]").fill(at)
        rows.nth(i).locator("input[name=tier_off]").fill(off)
    form.locator("input[name=categories]").fill("e2e-tea")
    form.locator("input[name=ends_at]").fill(_local_field(shop, datetime.now(UTC) + timedelta(days=7)))
    form.locator("button[type=submit]").click()
    error = page.locator("[data-field=tiers]")
    assert "thresholds must increase" in error.inner_text()
    # The form kept what was typed; fix the ladder and save.
    assert page.locator("input[name=categories]").input_value() == "e2e-tea"
    rows = page.locator("[data-testid=tier-rows] .tier-row")
    for i, (at, off) in enumerate([("200", "20"), ("300", "50")]):
        rows.nth(i).locator("input[name=tier_at]").fill(at)
        rows.nth(i).locator("input[name=tier_off]").fill(off)
    page.locator("[data-testid=promotion-form] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/promotions/[0-9a-f]{32}$"))
    assert page.locator("[data-testid=promotion-state]").get_attribute("data-state") == "live"
    assert "spend ¥200.00 save ¥20.00 / spend ¥300.00 save ¥50.00" in page.locator(
        "[data-card=reward]").inner_text()

    # A cart: 2 × 120.00 + 1 × 45.50 of tea (285.50 eligible) and 30.00 of something else.
    # By hand: 285.50 reaches the 200 tier, not the 300 one → 20.00 off, spread over the tea
    # lines by their amounts with largest remainder: 2000 × 24000 / 28550 = 1681.26…,
    # 2000 × 4550 / 28550 = 318.74… → floors 1681 + 318 = 1999, the extra cent to the larger
    # remainder (.74) → 1681 and 319. Paid: 24000 − 1681 = 22319, 4550 − 319 = 4231, 3000.
    # Total 31550 − 2000 = 29550; the nudge: 300.00 − 285.50 = 14.50 more saves 50.00.
    tryout = page.locator("[data-testid=tryout-form]")
    for i, (sku, category, price, qty) in enumerate([("T1", "e2e-tea", "120.00", "2"),
                                                      ("T2", "e2e-tea", "45.50", "1"),
                                                      ("X9", "e2e-other", "30.00", "1")]):
        tryout.locator(f"input[name=sku_{i}]").fill(sku)
        tryout.locator(f"input[name=category_{i}]").fill(category)
        tryout.locator(f"input[name=price_{i}]").fill(price)
        tryout.locator(f"input[name=qty_{i}]").fill(qty)
    tryout.locator("button[type=submit]").click()
    result = page.locator("[data-testid=tryout-result]")
    assert result.get_attribute("data-discount") == "2000"
    assert result.get_attribute("data-total") == "29550"
    paid = {row.get_attribute("data-line"): row.get_attribute("data-paid")
            for row in result.locator("tr[data-line]").all()}
    assert paid == {"L1": "22319", "L2": "4231", "L3": "3000"}
    assert result.locator("tr[data-total=total] td").inner_text() == "¥295.50"
    assert result.locator("[data-testid=applied] li").inner_text().startswith("E2E tea 满减")
    assert result.locator("[data-testid=nudges] li").inner_text() == "Spend ¥14.50 more to save ¥50.00"
    page.screenshot(path=str(screenshots / "promotion-tryout-en.png"), full_page=True)

    page.goto(shop.url + "/promotions")
    row = page.locator("#promotion-list tr[data-promotion='E2E tea 满减']")
    assert row.locator("[data-col=state] .badge").get_attribute("data-state") == "live"

    # Move it to start in two days: scheduled. An end before the start is refused at its field.
    row.locator("a").click()
    schedule = page.locator("[data-testid=schedule-form]")
    schedule.locator("input[name=starts_at]").fill(_local_field(shop, datetime.now(UTC) + timedelta(days=2)))
    with page.expect_navigation():
        schedule.locator("button[type=submit]").click()
    assert page.locator("[data-testid=promotion-state]").get_attribute("data-state") == "scheduled"
    schedule = page.locator("[data-testid=schedule-form]")
    schedule.locator("input[name=ends_at]").fill(_local_field(shop, datetime.now(UTC) + timedelta(days=1)))
    schedule.locator("button[type=submit]").click()
    assert "must be after starts_at" in page.locator("[data-field=ends_at]").inner_text()
    page.goto(shop.url + "/promotions")
    assert row.locator("[data-col=state] .badge").get_attribute("data-state") == "scheduled"


# ---------------------------------------------------------------------------------------------
# Coupons
# ---------------------------------------------------------------------------------------------


def _saved_segment(console: Console, name: str, members: list[str]) -> str:
    """A saved segment of exactly ``members``, refreshed into the warehouse; its id."""
    owner, cfg = console.app.state.warehouse, console.app.state.cfg
    definition = {"type": "attribute", "field": "customer_id", "op": "in", "value": members}
    with owner.read() as backend:
        ctx = segments_service.context(cfg, backend)
    with session_scope(cfg) as session:
        seg = segments_service.create_segment(session, name, definition, principal=None, actor_name="tests")
        segments_service.refresh_segment(session, seg, ctx, owner.run_write, principal=None,
                                         actor_name="tests")
        assert seg.members == len(members)
        return seg.id


def test_generate_a_batch_issue_it_to_a_segment_redeem_and_watch_the_burn(
    new_page: Any, shop: Console, operator: _Account, api_key: str, screenshots: Any
) -> None:
    members = sorted(shop.customers.customer_id)[:3]
    segment_id = _saved_segment(shop, "E2E coupon audience", members)
    page = new_page()
    _log_in(page, shop, "/coupons/new", operator)
    form = page.locator("[data-testid=coupon-form]")
    form.locator("input[name=name]").fill("E2E 满100减15")
    form.locator("input[name=amount]").fill("15")
    form.locator("input[name=threshold]").fill("100")
    form.locator("input[name=count]").fill("5")
    form.locator("input[name=budget_count]").fill("3")
    form.locator("input[name=budget_amount]").fill("40")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/coupons/[0-9a-f]{32}$"))
    batch_url = page.url
    assert page.locator("#code-list tr[data-code]").count() == 5

    page.locator("[data-testid=issue-segment]").select_option(segment_id)
    page.locator("[data-testid=issue-form] button[type=submit]").click()
    page.wait_for_url(re.compile(r"\?issued=3&already=0$"))
    assert page.locator("[data-testid=notice]").inner_text() == "3 codes issued; 0 customers had one already."
    assert page.locator("[data-card=issued] .card-value").inner_text() == "3"
    holders = {row.get_attribute("data-customer"): row.get_attribute("data-code")
               for row in page.locator("#code-list tr[data-customer]").all()}
    assert set(holders) == set(members)
    # Issuing to the segment again serves nobody twice.
    page.locator("[data-testid=issue-segment]").select_option(segment_id)
    page.locator("[data-testid=issue-form] button[type=submit]").click()
    page.wait_for_url(re.compile(r"\?issued=0&already=3$"))
    assert page.locator("[data-testid=notice]").inner_text() == "0 codes issued; 3 customers had one already."

    # Redeem the first holder's code at checkout: 120.00 of goods reach the 100.00 minimum →
    # 15.00 off, 105.00 to pay (the tea 满减 of the other test is limited to its category).
    buyer = members[0]
    order = _commit_order(page, shop, api_key, {
        "order_id": f"e2e-coupon-{secrets.token_hex(4)}", "customer_id": buyer,
        "lines": [{"line_id": "1", "sku": "X1", "unit_price": 12000, "quantity": 1, "category": "e2e-other"}],
        "coupon_codes": [holders[buyer]],
    })
    assert order["coupons"] == [holders[buyer]]
    assert order["total"] == 10500

    page.goto(batch_url)
    assert page.locator("[data-card=redeemed] .card-value").inner_text() == "1"
    assert page.locator("[data-card=remaining] .card-value").inner_text() == "2"  # budget 3 − 1
    assert page.locator("[data-card=spent] .card-value").inner_text() == "¥15.00"
    assert "¥25.00" in page.locator("[data-card=spent] .card-foot").inner_text()  # 40.00 − 15.00
    chart = page.locator("#chart-burn")
    page.wait_for_function("() => document.getElementById('chart-burn').getAttribute('data-points') === '1'")
    assert chart.get_attribute("data-last") == "15"
    assert page.locator(f"#code-list tr[data-customer='{buyer}'] [data-col=uses]").inner_text() == "1 / 1"
    page.screenshot(path=str(screenshots / "coupon-burn-en.png"), full_page=True)

    page.goto(shop.url + "/coupons")
    row = page.locator("#batch-list tr[data-batch='E2E 满100减15']")
    assert row.locator("[data-col=redeemed]").inner_text() == "1 / 3"
    assert row.locator("[data-col=spent]").inner_text() == "¥15.00 / ¥40.00"
    assert row.locator("[data-col=burn]").inner_text().strip() == "38%"  # max(1/3, 15/40 = 37.5 %)


# ---------------------------------------------------------------------------------------------
# Membership and points
# ---------------------------------------------------------------------------------------------


def test_tiers_and_a_points_adjustment_show_in_the_ledger_and_balance(
    new_page: Any, shop: Console, operator: _Account, api_key: str
) -> None:
    page = new_page()
    customer = f"e2e-member-{secrets.token_hex(3)}"
    # 250.00 paid earns 250 points (1 per yuan at ×1) and 250 growth value.
    _commit_order(page, shop, api_key, {
        "order_id": f"e2e-points-{secrets.token_hex(4)}", "customer_id": customer,
        "lines": [{"line_id": "1", "sku": "X2", "unit_price": 25000, "quantity": 1, "category": "e2e-other"}],
    })
    _log_in(page, shop, "/loyalty", operator)
    page.locator("[data-testid=edit-tiers]").click()
    tiers = page.locator("[data-testid=tier-form]")
    for i, (code, name, growth, multiplier) in enumerate([("silver", "Silver", "100", "1"),
                                                          ("gold", "Gold", "1000", "1.5")]):
        tiers.locator(f"input[name=code_{i}]").fill(code)
        tiers.locator(f"input[name=name_{i}]").fill(name)
        tiers.locator(f"input[name=min_growth_{i}]").fill(growth)
        tiers.locator(f"input[name=multiplier_{i}]").fill(multiplier)
    tiers.locator("input[name=free_shipping_1]").check()
    tiers.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/loyalty$"))
    assert page.locator("#tier-list tr[data-tier=gold] [data-col=min_growth]").inner_text() == "1,000"
    page.goto(shop.url + f"/loyalty?q={customer}")
    row = page.locator(f"#member-list tr[data-member='{customer}']")
    assert row.locator("[data-col=tier]").inner_text() == "Silver"  # 250 ≥ 100, < 1000
    assert row.locator("[data-col=growth]").inner_text() == "250"
    assert row.locator("[data-col=points]").inner_text() == "250"
    row.locator("a").click()
    page.wait_for_url(re.compile(re.escape(f"/loyalty/members/{customer}") + "$"))
    assert page.locator("[data-testid=points-balance]").inner_text() == "250"

    adjust = page.locator("[data-testid=adjust-form]")
    adjust.locator("input[name=delta]").fill("50")
    adjust.locator("input[name=note]").fill("goodwill: late delivery")
    adjust.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(re.escape(f"/loyalty/members/{customer}") + "$"))
    assert page.locator("[data-testid=points-balance]").inner_text() == "300"
    latest = page.locator("#ledger tbody tr").first
    assert latest.get_attribute("data-kind") == "adjust"
    assert latest.locator("[data-col=points]").inner_text() == "+50"
    assert latest.locator("[data-col=note]").inner_text() == "goodwill: late delivery"
    assert page.locator("#lot-list tr[data-lot]").count() == 2  # the order's lot and the adjustment's

    # Taking more than the balance is refused next to the field; nothing changes.
    adjust = page.locator("[data-testid=adjust-form]")
    adjust.locator("input[name=delta]").fill("-400")
    adjust.locator("input[name=note]").fill("mistake")
    adjust.locator("button[type=submit]").click()
    assert "has 300 points, 400 asked for" in page.locator("[data-field=delta]").inner_text()
    page.goto(shop.url + f"/loyalty/members/{customer}")
    assert page.locator("[data-testid=points-balance]").inner_text() == "300"
    assert page.locator("#ledger tbody tr").count() == 2  # earn, adjust


# ---------------------------------------------------------------------------------------------
# Analysts read only
# ---------------------------------------------------------------------------------------------


def test_analyst_sees_every_page_without_forms_and_cannot_post(new_page: Any, shop: Console) -> None:
    cfg = shop.app.state.cfg
    now = datetime.now(UTC)
    with session_scope(cfg) as session:
        promo = promotions_service.create_promotion(
            session, name="E2E analyst view", definition={"reward": {"type": "free_shipping"},
                                                          "conditions": {"categories": ["e2e-none"]}},
            status="draft", actor_name="tests")
        batch = coupons.create_batch(session, name="E2E analyst batch", definition={
            "reward": {"type": "order_amount_off", "amount": 500}}, valid_from=now,
            valid_until=now + timedelta(days=3), actor_name="tests")
        codes = coupons.generate_codes(session, batch, 2, actor_name="tests")
        promo_id, batch_id = promo.id, batch.id
    page = new_page()
    _log_in(page, shop, "/promotions", shop.analyst)
    pages = ["/promotions", f"/promotions/{promo_id}", "/promotions/new", "/coupons", f"/coupons/{batch_id}",
             "/coupons/new", "/loyalty", "/loyalty/members/nobody"]
    for path in pages:
        response = page.goto(shop.url + path)
        assert response.status == 200, path
        assert page.locator("form[method=post]:not([action='/logout'])").count() == 0, path
    page.goto(shop.url + f"/coupons/{batch_id}")
    shown = page.locator("#code-list").inner_text()
    assert all(code not in shown for code in codes)  # bearer codes are masked
    assert page.locator("#code-list tr[data-code]").count() == 2
    # The tryout is a read: analysts may price a cart.
    page.goto(shop.url + f"/promotions/{promo_id}?try=1&sku_0=A&category_0=e2e-none&price_0=10&qty_0=1")
    assert page.locator("[data-testid=tryout-result]").get_attribute("data-total") == "1000"

    token = page.locator("form[action='/logout'] input[name=csrf_token]").input_value()
    posts = {
        "/promotions": {"name": "x", "type": "free_shipping", "status": "active"},
        f"/promotions/{promo_id}/status": {"action": "activate"},
        "/coupons": {"name": "x", "kind": "amount", "amount": "1"},
        f"/coupons/{batch_id}/generate": {"count": "1"},
        f"/coupons/{batch_id}/issue": {"customers": "c1"},
        "/loyalty/tiers": {"code_0": "x", "min_growth_0": "0"},
        "/loyalty/members/nobody/adjust": {"delta": "5", "note": "x"},
    }
    for path, form in posts.items():
        response = page.request.post(shop.url + path, form={"csrf_token": token, **form}, max_redirects=0)
        assert response.status == 403, path
    assert page.request.get(shop.url + f"/coupons/{batch_id}/codes.csv", max_redirects=0).status == 403
    with session_scope(cfg) as session:
        assert promotions_service.get_promotion(session, promo_id).status == "draft"
        assert coupons.get_batch(session, batch_id).issued_count == 0
