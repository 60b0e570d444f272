"""The experiment pages in a real browser over the demo shop: set an experiment up with the form,
start it, watch its live status and read its results page.

The demo's history is in the past, so after starting the experiment in the browser the test moves
its start to 2025-02-01 and records each demo customer's exposure on that day through the real
assignment and event path (``service.assign_and_expose`` → ``events.service.record_events`` → the
server's warehouse owner). The counts on the pages are checked against the tally of those
assignments, the figures against ``service.results`` for the same data.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from growthwheel.events import service as events_service
from growthwheel.experiments import api as experiments_api
from growthwheel.experiments import pages as experiments_pages
from growthwheel.experiments import service
from growthwheel.store.db import session_scope

Console = Any  # conftest.Console: url, app, data_dir, admin, analyst, orders, events, customers
START = datetime(2025, 2, 1, tzinfo=UTC)


@pytest.fixture
def experiments(console: Console) -> Console:
    """The running console with the experiment pages and API mounted (until the app lists them)."""
    if not any(getattr(r, "path", "") == "/experiments" for r in console.app.routes):
        console.app.include_router(experiments_pages.router)
        console.app.include_router(experiments_api.router)
    return console


def _log_in(page: Any, console: Console, path: str) -> None:
    page.goto(console.url + path)
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("input[name=email]", console.admin.email)
    page.fill("input[name=password]", console.admin.password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(re.escape(console.url + path)))


def _expose_demo_customers(console: Console, key: str) -> Counter[str]:
    """Move the experiment's start into the demo's history and expose every customer then."""
    owner = console.app.state.warehouse
    cfg = console.app.state.cfg
    tz = ZoneInfo(cfg.shop().timezone)
    pending: list[dict[str, Any]] = []
    tally: Counter[str] = Counter()
    with session_scope(cfg) as session:
        exp = service.get_experiment(session, key)
        exp.started_at = START
        for i, customer in enumerate(sorted(console.customers.customer_id)):
            found, _ = service.assign_and_expose(session, exp, customer_id=customer, record=pending.extend,
                                                 at=START + timedelta(minutes=i))
            tally[str(found.variant)] += 1
    events_service.record_events(owner, pending, tz)
    owner.flush_events()
    return tally


def test_create_start_and_read_the_results(experiments: Console, page: Any, screenshots: Path) -> None:
    console = experiments
    _log_in(page, console, "/experiments")
    page.click("[data-testid=new-experiment]")
    page.wait_for_url(re.compile(r"/experiments/new$"))
    form = page.locator("[data-testid=experiment-form]")
    form.locator("input[name=name]").fill("Bigger product gallery")
    form.locator("input[name=key]").fill("gallery-e2e")
    form.locator("textarea[name=hypothesis]").fill("A bigger gallery sells more")
    form.locator("input[name=planned_units]").fill("100000")  # a fixed-horizon test needs its size
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/experiments/gallery-e2e$"))
    assert page.locator("[data-testid=experiment-status]").inner_text() == "Draft"
    page.click("[data-testid=change-status]")
    page.wait_for_url(re.compile(r"/experiments/gallery-e2e$"))
    assert page.locator("[data-testid=experiment-status]").inner_text() == "Running"

    tally = _expose_demo_customers(console, "gallery-e2e")
    page.reload()
    shown = {r.get_attribute("data-variant"): r.locator("td[data-col=units]").inner_text()
             for r in page.locator("[data-testid=live-status] tbody tr").all()}
    assert shown == {"control": str(tally["control"]), "treatment": str(tally["treatment"])}
    assert page.locator("[data-testid=srm-warning]").count() == 0
    page.screenshot(path=str(screenshots / "experiment-status.png"), full_page=True)

    page.click("[data-testid=results-link]")
    page.wait_for_url(re.compile(r"/experiments/gallery-e2e/results$"))
    with session_scope(console.app.state.cfg) as session, console.app.state.warehouse.read() as backend:
        expected = service.results(backend, service.get_experiment(session, "gallery-e2e"))
    assert f"{sum(tally.values())} units" in page.locator("[data-testid=results-summary]").inner_text()
    # Still running, fixed horizon, far from its planned size: the p-values are not valid yet.
    assert [w.get_attribute("data-warning") for w in page.locator("[data-warning]").all()] == [
        w["code"] for w in expected["warnings"]]
    assert "peeking" in [w["code"] for w in expected["warnings"]]
    for metric in expected["metrics"]:
        section = page.locator(f"section[data-metric='{metric['label']}']")
        assert section.count() == 1
        if "error" in metric:
            continue
        row = section.locator("tr[data-variant=treatment]")
        significant = metric["comparisons"][0]["significant"]
        assert row.get_attribute("data-significant") == ("yes" if significant else "no")
        rel = metric["comparisons"][0]["relative"]["estimate"]
        assert f"{rel:+.1%}" in row.inner_text()
        verdict = section.locator("[data-testid=verdict]").inner_text()
        # Significant → "unlikely to be chance"; otherwise "no clear difference", or (interval clear of
        # zero but not after the multiple-testing adjustment) "not a clear difference".
        assert ("unlikely to be chance" in verdict) is significant
        assert significant or "clear difference" in verdict
    page.wait_for_function("() => document.getElementById('chart-effects').getAttribute('data-rows')")
    drawn = int(page.locator("#chart-effects").get_attribute("data-rows") or 0)
    assert drawn == sum(len(m.get("comparisons", [])) for m in expected["metrics"])
    page.screenshot(path=str(screenshots / "experiment-results.png"), full_page=True)
