"""Forms made for operators (issue 13 item 6), in a real browser on the demo shop: tier ladders as
rows, SKU and category pickers that search the catalogue, a tryout cart picked from the catalogue,
and a confirmation before a store-wide promotion with no budget goes live (en and zh)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from growthwheel.accounts import service as accounts
from growthwheel.promotions import pages as promotion_pages
from growthwheel.promotions import repository
from growthwheel.store.db import session_scope

Console = Any  # conftest.Console


@pytest.fixture(scope="module")
def shop(console: Console) -> Iterator[Console]:
    """The running console with the promotion pages mounted. The store-wide promotions these tests
    put live are ended afterwards: the console is shared with other browser tests, whose checkout
    totals they would otherwise change."""
    from growthwheel.promotions import service as promotion_service

    paths = {getattr(r, "path", "") for r in console.app.routes}
    if "/promotions" not in paths:
        console.app.include_router(promotion_pages.router)
    with session_scope(console.app.state.cfg) as session:
        before = {p.id for p in repository.all_promotions(session)}
    yield console
    with session_scope(console.app.state.cfg) as session:
        for row in repository.all_promotions(session):
            if row.id not in before and row.status != "ended":
                promotion_service.update_promotion(session, row, status="ended", actor_name="tests")


@pytest.fixture(scope="module")
def operator(shop: Console) -> tuple[str, str]:
    email, password = f"ops-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12)
    with session_scope(shop.app.state.cfg) as session:
        accounts.create_user(session, email, "operator", password)
    return email, password


@pytest.fixture(scope="module")
def products(shop: Console) -> list[dict[str, Any]]:
    with shop.app.state.warehouse.read() as con:
        rows = con.table("products").order_by("sku").to_pyarrow().to_pylist()
    return [dict(r) for r in rows]


def _log_in(page: Any, console: Console, path: str, account: tuple[str, str]) -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", account[0])
    page.fill("input[name=password]", account[1])
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.url + path)))


def _promotions_named(console: Console, name: str) -> int:
    with session_scope(console.app.state.cfg) as session:
        return sum(1 for p in repository.all_promotions(session) if p.name == name)


def _pick(page: Any, box: str, words: str, value: str) -> None:
    """Type ``words`` in the picker ``box``, wait for the catalogue's answer, choose ``value``."""
    picker = page.locator(f"[data-testid={box}]")
    picker.fill(words)
    list_id = picker.get_attribute("list")
    page.wait_for_function(
        "([id, v]) => [...document.getElementById(id).options].some(o => o.value === v)",
        arg=[list_id, value], timeout=10_000)
    picker.fill(value)
    picker.press("Enter")


def test_store_wide_ladder_asks_for_confirmation_then_goes_live(
    new_page: Any, shop: Console, operator: tuple[str, str], screenshots: Any
) -> None:
    page = new_page()
    _log_in(page, shop, "/promotions/new", operator)
    form = page.locator("[data-testid=promotion-form]")
    form.locator("input[name=name]").fill("全店满减 e2e")
    rows = form.locator("[data-testid=tier-rows] .tier-row")
    assert rows.count() == 4  # rows, not "200:20, 300:50"
    rows.nth(0).locator("input[name=tier_at]").fill("200")
    rows.nth(0).locator("input[name=tier_off]").fill("20")
    rows.nth(1).locator("input[name=tier_at]").fill("300")
    rows.nth(1).locator("input[name=tier_off]").fill("50")
    page.click("[data-testid=save-promotion]")
    # No product, category, channel or spend condition and no budget: asked first, nothing saved.
    warning = page.locator("[data-testid=wide-warning]")
    warning.wait_for()
    assert "whole store" in warning.inner_text()
    assert _promotions_named(shop, "全店满减 e2e") == 0
    rows = page.locator("[data-testid=tier-rows] .tier-row")
    assert [rows.nth(i).locator("input[name=tier_at]").input_value() for i in range(2)] == ["200", "300"]
    page.screenshot(path=str(screenshots / "promotion-wide-warning-en.png"), full_page=True)
    page.click("[data-testid=confirm-wide]")
    page.wait_for_url(re.compile(r"/promotions/[0-9a-f]{32}$"))
    assert _promotions_named(shop, "全店满减 e2e") == 1
    assert page.locator("[data-testid=promotion-state]").get_attribute("data-state") == "live"
    assert "spend ¥200.00 save ¥20.00 / spend ¥300.00 save ¥50.00" in page.locator(
        "[data-card=reward]").inner_text()


def test_a_half_filled_row_is_refused_and_a_budget_needs_no_confirmation(
    new_page: Any, shop: Console, operator: tuple[str, str]
) -> None:
    page = new_page()
    _log_in(page, shop, "/promotions/new?lang=zh", operator)
    form = page.locator("[data-testid=promotion-form]")
    form.locator("input[name=name]").fill("限额满减 e2e")
    rows = form.locator("[data-testid=tier-rows] .tier-row")
    rows.nth(0).locator("input[name=tier_at]").fill("100")
    form.locator("input[name=budget_amount]").fill("5000")
    page.click("[data-testid=save-promotion]")
    # (is_visible does not wait: right after the click the answer's page may still be loading)
    page.locator("[data-field=tiers]").wait_for(state="visible")
    assert page.locator("[data-field=tiers]").is_visible()
    assert page.locator("[data-testid=wide-warning]").count() == 0
    page.locator("[data-testid=tier-rows] .tier-row").nth(0).locator("input[name=tier_off]").fill("10")
    page.click("[data-testid=save-promotion]")
    page.wait_for_url(re.compile(r"/promotions/[0-9a-f]{32}$"))  # a budget: no question asked
    assert _promotions_named(shop, "限额满减 e2e") == 1


def test_store_wide_warning_in_chinese(new_page: Any, shop: Console, operator: tuple[str, str]) -> None:
    page = new_page()
    _log_in(page, shop, "/promotions/new?lang=zh", operator)
    page.select_option("#promotion-type", "percent_off")
    page.fill("input[name=name]", "全店九折 e2e")
    page.fill("input[name=percent]", "10")
    page.click("[data-testid=save-promotion]")
    warning = page.locator("[data-testid=wide-warning]")
    warning.wait_for()
    assert warning.locator("h2").inner_text() == "该活动对全店生效，且不限预算"
    assert page.locator("[data-testid=confirm-wide]").inner_text() == "确认对全店上线"
    assert _promotions_named(shop, "全店九折 e2e") == 0


def test_sku_and_category_pickers_search_the_catalogue(
    new_page: Any, shop: Console, operator: tuple[str, str], products: list[dict[str, Any]]
) -> None:
    page = new_page()
    _log_in(page, shop, "/promotions/new", operator)
    first, second = products[0], products[1]
    _pick(page, "pick-sku", first["sku"][:4], first["sku"])
    _pick(page, "pick-sku", second["name"][:2], second["sku"])
    assert page.locator("input[name=skus]").input_value() == f"{first['sku']}, {second['sku']}"
    assert page.locator("[data-testid=pick-sku]").input_value() == ""
    category = first["category"]
    _pick(page, "pick-category", category[:1], category)
    assert page.locator("input[name=categories]").input_value() == category
    # The options say what each product is: name, category and list price.
    label = page.evaluate(
        "v => [...document.getElementById('pick-sku').options].find(o => o.value === v)?.textContent",
        second["sku"])
    if label is None:  # the last search was by name; ask again by SKU
        _pick(page, "pick-sku", second["sku"], second["sku"])
        label = page.evaluate(
            "v => [...document.getElementById('pick-sku').options].find(o => o.value === v).textContent",
            second["sku"])
    assert second["name"] in label
    assert "¥" in label


def test_tryout_cart_picked_from_the_catalogue(
    new_page: Any, shop: Console, operator: tuple[str, str], products: list[dict[str, Any]]
) -> None:
    page = new_page()
    _log_in(page, shop, "/promotions/new", operator)
    page.select_option("#promotion-type", "percent_off")
    page.fill("input[name=name]", "类目九折 e2e")
    page.fill("input[name=percent]", "10")
    product = next(p for p in products if p["price"])
    page.fill("input[name=categories]", product["category"])
    page.click("[data-testid=save-promotion]")
    page.wait_for_url(re.compile(r"/promotions/[0-9a-f]{32}$"))
    _pick(page, "pick-cart", product["sku"], product["sku"])
    cart = page.locator("[data-testid=tryout-form]")
    price = f"{product['price'] / 100:.2f}"
    assert cart.locator("input[name=sku_0]").input_value() == product["sku"]
    assert cart.locator("input[name=price_0]").input_value() == price
    assert cart.locator("input[name=category_0]").input_value() == product["category"]
    assert cart.locator("input[name=qty_0]").input_value() == "1"
    cart.locator("button[type=submit]").click()
    result = page.locator("[data-testid=tryout-result]")
    result.wait_for()
    assert int(result.get_attribute("data-discount") or "0") == round(product["price"] * 0.10)
