"""Funnel drill-down to action (issue 13, item 2) in a real browser, on a small demo shop served
whole: from a funnel step's "stopped here" count to the customer list (its total and ids are the
funnel's own customers who got exactly that far), saved as a segment (as many members), issued a
coupon batch in one step, and the saved segment's page shows the funnel condition it cannot edit
without a script error."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from served_demo_shop import Shop, log_in, served_demo_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The whole app over a small demo shop with one active coupon batch, on 127.0.0.1."""
    with served_demo_shop(tmp_path_factory.mktemp("funnel-drill"), batch_name="Come back to your cart",
                          amount_off=500) as served:
        yield served


def _funnel_customers(shop: Shop, cond: dict[str, Any]) -> set[str]:
    """The funnel's own answer (not the segment compiler's): entrants known as customers whose
    best attempt got exactly as far as ``reached``."""
    from growthwheel.insight.funnels import funnel_entrants

    with shop.app.state.warehouse.read() as backend:
        people = funnel_entrants(
            backend.table("events"), cond["steps"], window=timedelta(days=cond["window_days"]),
            start=date.fromisoformat(cond["from"]), end=date.fromisoformat(cond["to"])).execute()
    stopped = people[people.steps_reached == cond["reached"]]
    return {a for a in stopped.actor if not a.startswith("anon:")}


def test_from_a_funnel_step_to_its_customers_a_segment_and_a_coupon(new_page: Any, shop: Shop) -> None:
    from sqlalchemy import select

    from growthwheel.promotions.models import CouponCode
    from growthwheel.segments.models import Segment
    from growthwheel.store.db import session_scope

    page = new_page()
    log_in(page, shop, "/insight/funnel")
    cells = page.locator("#funnel-steps td[data-col=stopped]")
    assert cells.count() == 4
    counts = [int(cells.nth(i).inner_text().replace(",", "")) for i in range(4)]
    # who stopped at each step adds up to the customers among the entrants (the rest are anonymous)
    entrants = [int(t.replace(",", "")) for t in
                page.locator("#funnel-steps td[data-col=entrants]").all_inner_texts()]
    assert 0 < sum(counts) <= entrants[0]
    # the customers who added to cart but did not check out (else the furthest step with any)
    step = 2 if counts[1] else max(k for k in range(1, 4) if counts[k - 1])
    link = page.locator("#funnel-steps tbody tr").nth(step - 1).locator("td[data-col=stopped] a.drill")
    cond = json.loads(parse_qs(urlsplit(link.get_attribute("href") or "").query)["def"][0])
    assert cond["type"] == "funnel"
    assert cond["reached"] == step
    assert cond["exact"] is True
    expected = _funnel_customers(shop, cond)
    assert len(expected) == counts[step - 1]
    link.click()
    page.wait_for_url(re.compile(r"/customers\?"))
    total = page.locator("[data-testid=customer-total]")
    assert int(total.get_attribute("data-total") or "-1") == counts[step - 1]
    csv_href = page.locator("[data-testid=export-csv]").get_attribute("href") or ""
    exported = page.request.get(shop.url + csv_href).text()
    csv_ids = {r["customer_id"] for r in csv.DictReader(io.StringIO(exported))}
    assert csv_ids == expected

    page.fill("[data-testid=save-segment] input[name=name]", "Stopped at step " + str(step))
    page.click("[data-testid=save-segment] button[type=submit]")
    page.wait_for_url(re.compile(r"/customers\?segment="))
    segment_id = parse_qs(urlsplit(page.url).query)["segment"][0]
    with session_scope(shop.cfg) as session:
        seg = session.get(Segment, segment_id)
        assert seg is not None
        assert seg.members == counts[step - 1]
        assert json.dumps(seg.definition).count('"funnel"') == 1

    form = page.locator("[data-testid=act-coupons]")
    form.locator("select[name=batch]").select_option(shop.batch_id)
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(rf"/coupons/{shop.batch_id}\?issued="))
    assert int(parse_qs(urlsplit(page.url).query)["issued"][0]) == counts[step - 1]
    with session_scope(shop.cfg) as session:
        holders = session.scalars(
            select(CouponCode.customer_id).where(CouponCode.batch_id == shop.batch_id)).all()
    assert sorted(holders) == sorted(expected)

    # the saved segment's page shows the funnel condition (the builder cannot edit it, nor breaks)
    page.goto(shop.url + f"/segments/{segment_id}")
    fixed = page.locator(".sb-fixed[data-type=funnel]")
    fixed.wait_for()
    assert f"step: {step} of 4" in fixed.inner_text()


def test_the_stopped_column_in_chinese(new_page: Any, shop: Shop, screenshots: Path) -> None:
    page = new_page(locale="zh-CN")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, shop, "/insight/funnel")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(screenshots / "insight-funnel-stopped-zh.png"), full_page=True)
    headers = page.locator("#funnel-steps th").all_inner_texts()
    assert headers[-1] == "止步于此的客户"
    link = page.locator("#funnel-steps td[data-col=stopped] a.drill").first
    label = parse_qs(urlsplit(link.get_attribute("href") or "").query)["label"][0]
    assert label.startswith("漏斗 · ")
