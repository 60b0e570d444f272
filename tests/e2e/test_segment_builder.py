"""The segment builder in a real browser (headless Chromium) over the demo shop.

A nested definition is built by clicking through the builder; the live count must equal what the
segments service counts for the same definition, the saved segment must appear in the list, and a
refresh must record every member as having entered. Errors show next to the field at fault and
analysts see a masked sample and cannot save.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from growthwheel.segments import api as segments_api
from growthwheel.segments import pages as segment_pages
from growthwheel.segments import service

Console = Any  # conftest.Console


@pytest.fixture
def shop(console: Console) -> Console:
    """The running console with the segment pages and the segments API mounted."""
    paths = {getattr(r, "path", "") for r in console.app.routes}
    if "/segments/new" not in paths:
        console.app.include_router(segment_pages.router)
    if "/api/v1/segments/{segment_id}/members.csv" not in paths:
        console.app.include_router(segments_api.router)
    return console


def _log_in(page: Any, console: Console, path: str, account: Any) -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", account.email)
    page.fill("input[name=password]", account.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.url + path)))


def _service_count(console: Console, definition: dict[str, Any]) -> int:
    with console.app.state.warehouse.read() as backend:
        ctx = service.context(console.app.state.cfg, backend)
        return service.preview(backend, definition, ctx, sample=0).count


def _count(page: Any) -> int:
    count = page.locator("[data-testid=live-count]")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=live-count]').getAttribute('data-state') === 'ok'"
    )
    return int(str(count.get_attribute("data-count")))


def _wait_for_count_change(page: Any, before: int) -> int:
    page.wait_for_function(
        "(n) => { const c = document.querySelector('[data-testid=live-count]');"
        " return c.getAttribute('data-state') === 'ok' && c.getAttribute('data-count') !== String(n); }",
        arg=before,
    )
    return _count(page)


def _definition(page: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(page.locator("#segment-definition").input_value())
    return found


def test_build_a_nested_segment_with_a_live_count_then_save_refresh_and_see_history(
    new_page: Any, shop: Console, screenshots: Any
) -> None:
    page = new_page()
    _log_in(page, shop, "/segments/new", shop.admin)
    everyone = _count(page)
    assert everyone == _service_count(shop, {"all": []})
    root = page.locator("#segment-builder > .sb-root")

    # all[ orders count >= 2 in the last 365 days, ... ]
    root.locator(":scope > .sb-head [data-action=add-condition]").click()
    orders = root.locator(":scope > .sb-children > .sb-cond").nth(0)
    orders.locator("[data-field=value]").fill("2")
    orders.locator(".sb-fields > [data-field=window]").select_option("last")
    orders.locator("[data-field='window.last']").fill("365")
    repeat = _wait_for_count_change(page, everyone)
    assert repeat == _service_count(shop, {"type": "orders", "measure": "count", "op": ">=", "value": 2,
                                           "window": {"last": 365, "unit": "days"}})

    # ..., any[ channel = 抖音, none-of[ tag wechat_group ] ] ]
    root.locator(":scope > .sb-head [data-action=add-group]").click()
    group = root.locator(":scope > .sb-children > .sb-group").nth(0)
    group.locator(":scope > .sb-head [data-action=add-condition]").click()
    channel = group.locator(":scope > .sb-children > .sb-cond").nth(0)
    channel.locator(":scope > .sb-head [data-field=type]").select_option("attribute")
    channel.locator("[data-field=field]").select_option("channel")
    channel.locator("[data-field=op]").select_option("equals")
    channel.locator("[data-field=value]").fill("抖音")
    group.locator(":scope > .sb-head [data-action=add-group]").click()
    inner = group.locator(":scope > .sb-children > .sb-group").nth(0)
    inner.locator(":scope > .sb-head [data-field=group]").select_option("none")
    inner.locator(":scope > .sb-head [data-action=add-condition]").click()
    tag = inner.locator(":scope > .sb-children > .sb-cond").nth(0)
    tag.locator(":scope > .sb-head [data-field=type]").select_option("tag")
    tag.locator("[data-field=tags]").fill("wechat_group")
    tag.locator("[data-field=tags]").dispatch_event("change")

    expected = {"all": [
        {"type": "orders", "measure": "count", "op": ">=", "value": 2,
         "window": {"last": 365, "unit": "days"}},
        {"any": [
            {"type": "attribute", "field": "channel", "op": "equals", "value": "抖音"},
            {"not": {"type": "tag", "tags": ["wechat_group"], "match": "any"}},
        ]},
    ]}
    page.wait_for_function(
        "() => document.getElementById('segment-definition').value.includes('wechat_group')")
    assert _definition(page) == expected
    want = _service_count(shop, expected)
    assert 0 < want <= repeat  # the any-group keeps part of the repeat buyers
    page.wait_for_function(
        "(n) => { const c = document.querySelector('[data-testid=live-count]');"
        " return c.getAttribute('data-state') === 'ok' && c.getAttribute('data-count') === String(n); }",
        arg=want,
    )
    assert f"{want:,} customers match" in page.locator("[data-testid=live-count]").inner_text()
    sample = page.locator("#preview-sample tbody tr")
    assert sample.count() == min(want, segment_pages.PREVIEW_SAMPLE)
    page.screenshot(path=str(screenshots / "segment-builder-en.png"), full_page=True)

    # Save, find it in the list, refresh: every member entered.
    page.fill("input[name=name]", "Repeat buyers from douyin or not in groups")
    page.click("#segment-form button[type=submit]")
    page.wait_for_url(re.compile(r"/segments/[0-9a-f]+$"))
    assert page.locator("[data-testid=history-empty]").is_visible()
    page.goto(shop.url + "/segments")
    row = page.locator("#segment-list tr[data-segment='Repeat buyers from douyin or not in groups']")
    assert row.locator("[data-col=refreshed]").inner_text() == "Never refreshed"
    row.locator("a").click()
    page.wait_for_url(re.compile(r"/segments/[0-9a-f]+$"))
    page.click("[data-testid=refresh-form] button")
    page.wait_for_url(re.compile(r"/segments/[0-9a-f]+$"))
    history = page.locator("#segment-history tbody tr")
    assert history.count() == 1
    assert history.locator("[data-col=entered]").inner_text() == f"{want:,}"
    assert history.locator("[data-col=left]").inner_text() == "0"
    assert page.locator("[data-card=members] .card-value").inner_text() == f"{want:,}"
    # The saved definition is drawn read-only, as built.
    assert page.locator("#segment-builder select:not([disabled])").count() == 0
    assert page.locator("#segment-builder .sb-cond").count() == 3
    page.screenshot(path=str(screenshots / "segment-detail-en.png"), full_page=True)
    csv = page.request.get(shop.url + str(page.locator("[data-testid=export-csv]").get_attribute("href")))
    assert csv.status == 200
    assert len(csv.text().strip().splitlines()) == want + 1  # header + one line per member
    page.goto(shop.url + "/segments")
    assert page.locator("#segment-list tr[data-segment='Repeat buyers from douyin or not in groups'] "
                        "[data-col=members]").inner_text() == f"{want:,}"


def test_an_invalid_value_is_shown_next_to_its_field(page: Any, shop: Console) -> None:
    _log_in(page, shop, "/segments/new", shop.admin)
    everyone = _count(page)
    root = page.locator("#segment-builder > .sb-root")
    root.locator(":scope > .sb-head [data-action=add-condition]").click()
    cond = root.locator(":scope > .sb-children > .sb-cond").nth(0)
    cond.locator("[data-field=value]").fill("two")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=live-count]').getAttribute('data-state') === 'invalid'")
    error = cond.locator("[data-field=value] + .field-error")
    assert error.is_visible()
    assert "decimal" in error.inner_text()
    # A window of 0 days: the error sits next to the window.
    cond.locator("[data-field=value]").fill("1")
    cond.locator(".sb-fields > [data-field=window]").select_option("last")
    cond.locator("[data-field='window.last']").fill("0")
    page.wait_for_function(
        "() => document.querySelector('[data-error-for=window]') !== null")
    assert "greater than or equal to 1" in cond.locator("[data-error-for=window]").inner_text()
    cond.locator("[data-field='window.last']").fill("30")
    count = _count(page)
    assert count == _service_count(shop, {"type": "orders", "measure": "count", "op": ">=", "value": 1,
                                          "window": {"last": 30, "unit": "days"}})
    assert count < everyone
    assert page.locator(".sb-error").count() == 0


def test_analyst_sees_a_masked_sample_and_cannot_save(
    new_page: Any, shop: Console, screenshots: Any
) -> None:
    page = new_page(locale="zh-CN")
    _log_in(page, shop, "/segments/new", shop.analyst)
    assert page.locator("h1").inner_text() == "人群圈选"
    assert page.locator(".sb-root > .sb-head [data-field=group] option:checked").inner_text() == "满足全部"
    assert page.locator("[data-testid=save-not-allowed]").is_visible()
    assert page.locator("input[name=name]").count() == 0
    _count(page)
    emails = page.locator("#preview-sample [data-col=email]").all_inner_texts()
    phones = page.locator("#preview-sample [data-col=phone]").all_inner_texts()
    assert emails
    assert phones
    real_emails = set(shop.customers.email.dropna())
    real_phones = set(shop.customers.phone.dropna())
    assert not set(emails) & real_emails
    assert not set(phones) & real_phones
    assert all("***" in e for e in emails if e)
    assert page.locator(".sb-masked").is_visible()
    assert "符合条件的客户" in page.locator("[data-testid=live-count]").inner_text()
    page.screenshot(path=str(screenshots / "segment-builder-analyst-zh.png"), full_page=True)
    # A direct post is refused too.
    token = page.locator("#segment-form input[name=csrf_token]").input_value()
    answer = page.request.post(shop.url + "/segments", form={
        "csrf_token": token, "name": "analyst segment", "definition": '{"all": []}'})
    assert answer.status == 403
