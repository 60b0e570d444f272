"""The journey pages in a real browser over the demo shop: the builder draws the flow and puts a
validation error in the box of the step it concerns, the audience preview counts what pandas
counts from the demo's customers, save / activate / pause, the report after a real tick (entered =
the customers the trigger hit), the zh page, and an analyst who can read but not change.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import func, select

from growthwheel.journeys import pages as journey_pages
from growthwheel.journeys import service
from growthwheel.journeys.models import Enrolment
from growthwheel.journeys.repository import WarehouseView
from growthwheel.store.db import session_scope

Console = Any  # conftest.Console
BIRTHDAYS = {
    "trigger": {"kind": "date", "attribute": "birthday"},
    "start": "tag",
    "steps": [{"id": "tag", "type": "tag", "tag": "birthday-e2e", "next": "out"},
              {"id": "out", "type": "exit"}],
    "holdout_share": 0.2,
    "backfill_days": 30,
}


@pytest.fixture
def journeys(console: Console) -> Console:
    """The running console with the journey pages mounted (the e2e app lists its routers)."""
    if not any(getattr(r, "path", "") == "/journeys" for r in console.app.routes):
        console.app.include_router(journey_pages.router)
    return console


def _log_in(page: Any, console: Console, email: str, password: str, path: str) -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.url + path)))


def _birthdays_in_last(customers: pd.DataFrame, days: int, now: datetime, tz: str) -> set[str]:
    """Customers whose birthday's anniversary fell on a shop-local day in (now - days, now]."""
    today = now.astimezone(ZoneInfo(tz)).date()
    since = (now - timedelta(days=days)).astimezone(ZoneInfo(tz)).date()
    hit = set()
    for cid, born in zip(customers.customer_id, customers.birthday, strict=True):
        if born is None or pd.isna(born):
            continue
        born = pd.Timestamp(born).date()
        for year in {since.year, today.year}:
            day = born.day if not (born.month == 2 and born.day == 29) or year % 4 == 0 else 28
            if since < date(year, born.month, day) <= today:
                hit.add(str(cid))
    return hit


def test_build_preview_activate_and_report(journeys: Console, new_page: Any, screenshots: Path) -> None:
    console = journeys
    cfg = console.app.state.cfg
    page = new_page()
    _log_in(page, console, console.admin.email, console.admin.password, "/journeys")
    assert page.locator(".mainnav a.active").inner_text() == "Journeys"
    page.click("[data-testid=new-journey]")
    page.wait_for_url(re.compile(r"/journeys/new$"))

    # the example is drawn: trigger, then one row per step, the shared exit at the bottom
    rows = [[b.get_attribute("data-step") for b in row.locator(".jbox[data-step]").all()]
            for row in page.locator("[data-testid=flow] .jflow-row").all()]
    assert rows == [[], ["mail"], ["wait"], ["check"], ["tag"], ["done"]]
    check = page.locator(".jbox[data-step=check]")
    assert "Ordered since entering?" in check.inner_text()
    assert [li.get_attribute("data-next") for li in check.locator("li").all()] == ["done", "tag"]
    assert page.locator("[data-testid=definition-ok]").count() == 1

    # an error goes into the box of the step it names, and under the editor with its field
    text = page.locator("[data-testid=definition]").input_value().replace('"next": "check"', '"next": "chek"')
    page.fill("[data-testid=definition]", text)
    page.click("[data-testid=check]")
    error = page.locator(".jbox[data-step=wait] .field-error")
    assert "leads to unknown step 'chek'" in error.inner_text()
    assert page.locator("[data-testid=definition-error]").get_attribute("data-field") == "definition.steps[1]"
    assert page.locator(".jbox[data-step=wait] li.bad").get_attribute("data-next") == "chek"
    page.screenshot(path=str(screenshots / "journey-builder-error.png"), full_page=True)
    page.fill("[data-testid=definition]", "{not json")
    page.click("[data-testid=check]")
    assert "not JSON" in page.locator("[data-testid=definition-error]").inner_text()

    # the audience preview counts what pandas counts
    page.fill("[data-testid=definition]", json.dumps(BIRTHDAYS, indent=2))
    page.fill("[data-testid=name]", "Birthday e2e")
    page.select_option("select[name=days]", "30")
    page.click("[data-testid=preview]")
    now = datetime.now(UTC)
    expected = _birthdays_in_last(console.customers, 30, now, cfg.shop().timezone)
    assert expected, "the demo shop has birthdays every month"
    shown = int(page.locator("[data-testid=preview-result]").get_attribute("data-customers") or -1)
    assert shown == len(expected)
    page.screenshot(path=str(screenshots / "journey-builder.png"), full_page=True)

    page.click("[data-testid=save]")
    page.wait_for_url(re.compile(r"/journeys/[0-9a-f]+$"))
    journey_url = page.url
    assert page.locator("[data-testid=journey-status]").get_attribute("data-status") == "draft"
    page.click("[data-testid=action-activate]")
    page.wait_for_url(re.compile(r"done=activate"))
    assert page.locator("[data-testid=journey-status]").get_attribute("data-status") == "active"
    assert "active" in page.locator("[data-testid=notice]").inner_text()
    assert page.locator("[data-testid=action-activate]").count() == 0

    # a real tick over the server's warehouse enrols those the trigger hit
    with console.app.state.warehouse.read() as backend:
        stats = service.tick(cfg, WarehouseView(backend), now=datetime.now(UTC))
    assert stats.errors == []
    with session_scope(cfg) as session:
        entered = set(session.scalars(select(Enrolment.customer_id)))
        held = int(session.scalar(select(func.count()).where(Enrolment.held_out.is_(True))) or 0)
    assert entered == _birthdays_in_last(console.customers, 30, datetime.now(UTC), cfg.shop().timezone)
    page.goto(journey_url)
    assert page.locator("[data-testid=entered]").inner_text() == f"{len(entered):,}"
    groups = {r.get_attribute("data-group"): r.locator("td[data-col=entered]").inner_text()
              for r in page.locator("[data-testid=groups] tbody tr").all()}
    assert groups == {"treatment": f"{len(entered) - held:,}", "holdout": f"{held:,}"}
    tagged = page.locator(".jbox[data-step=tag] [data-count]").get_attribute("data-count")
    assert tagged == str(len(entered) - held)
    assert page.locator("[data-testid=steps] tr[data-step=tag][data-outcome=tagged]").count() == 1
    words = page.locator("[data-testid=uplift-words]").inner_text()
    assert ("Of " in words and "95% CI" in words) or "Too few" in words or "at least 2 entrants each" in words
    page.screenshot(path=str(screenshots / "journey-report.png"), full_page=True)

    # the preview on the journey page, and pause
    page.select_option("select[name=preview]", "7")
    page.click("[data-testid=preview-form] [data-testid=preview]")
    week = _birthdays_in_last(console.customers, 7, datetime.now(UTC), cfg.shop().timezone)
    assert page.locator("[data-testid=preview-result]").get_attribute("data-customers") == str(len(week))
    page.click("[data-testid=action-pause]")
    page.wait_for_url(re.compile(r"done=pause"))
    assert page.locator("[data-testid=journey-status]").get_attribute("data-status") == "paused"

    # the list shows it with its counts
    page.goto(console.url + "/journeys")
    row = page.locator("tr[data-journey='Birthday e2e']")
    assert row.locator("[data-status]").get_attribute("data-status") == "paused"
    assert row.locator("td[data-col=entered]").inner_text() == f"{len(entered):,}"

    # in Chinese
    zh = new_page(locale="zh-CN")
    _log_in(zh, console, console.admin.email, console.admin.password, "/journeys")
    zh.goto(journey_url)
    assert zh.locator("[data-testid=journey-status]").inner_text() == "已暂停"
    assert zh.locator("[data-testid=report] h2").inner_text() == "效果报告"
    assert "添加标签 birthday-e2e" in zh.locator(".jbox[data-step=tag]").inner_text()
    assert "旅程" in [a.inner_text() for a in zh.locator(".mainnav a").all()]

    # an analyst reads everything and changes nothing
    analyst = new_page()
    _log_in(analyst, console, console.analyst.email, console.analyst.password, "/journeys")
    assert analyst.locator("[data-testid=new-journey]").count() == 0
    analyst.goto(journey_url)
    assert analyst.locator("[data-testid=entered]").inner_text() == f"{len(entered):,}"
    assert analyst.locator("[data-testid=status-form]").count() == 0
    assert analyst.locator("[data-testid=definition-form]").count() == 0
    token = analyst.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = analyst.request.post(journey_url + "/status",
                                   form={"csrf_token": token or "", "action": "activate"})
    assert refused.status == 403
    analyst.goto(console.url + "/journeys/new")
    assert analyst.locator("[data-testid=not-allowed]").count() == 1
    assert analyst.locator("[data-testid=definition-form]").count() == 0
    with session_scope(cfg) as session:
        assert service.get_journey(session, "Birthday e2e").status == "paused"
