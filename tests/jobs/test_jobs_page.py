"""The console's Jobs page: schedules, runs with failures and retries, the outbox, dead letters with
a replay button that operators may press and analysts may not; zh and en."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.accounts.api import router as accounts_router
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.jobs import outbox, scheduler
from growthwheel.jobs.outbox import DeliveryResult, OutboxMessage
from growthwheel.jobs.pages import router as jobs_pages
from growthwheel.store.db import session_scope
from growthwheel.web.pages import router as pages_router

T0 = datetime.now(UTC) - timedelta(minutes=5)


@scheduler.job("tests.flaky_page")
def _flaky(ctx: scheduler.JobContext) -> dict[str, Any]:
    """Always fails."""
    raise RuntimeError("warehouse on fire")


class Refuser:
    name = "email"
    idempotent = False

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        return DeliveryResult("failed", detail="550 mailbox unavailable")


@pytest.fixture
def client(store_cfg: Settings) -> Iterator[TestClient]:
    app = create_app(store_cfg, routers=[accounts_router, pages_router, jobs_pages])
    with TestClient(app) as test_client:
        yield test_client


def _seed(cfg: Settings) -> str:
    with session_scope(cfg) as session:
        spec = scheduler.ScheduleSpec("flaky", "tests.flaky_page", every_seconds=600)
        scheduler.put_schedule(session, spec, now=T0, timezone="UTC")
        outbox.enqueue(session, key="j|winback|s1|c1|1", channel="email", recipient="c1@example.com",
                       payload={}, now=T0)
    scheduler.run_due(cfg, worker="w1", clock=lambda: T0, timezone="UTC")
    outbox.deliver_due(cfg, {"email": Refuser()}, worker="w1", clock=lambda: T0)
    with session_scope(cfg) as session:
        return outbox.dead_letters(session)[0].id


def _csrf(client: TestClient) -> str:
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    return accounts.session_csrf_token(accounts.server_secret(cfg.data_dir), client.cookies["gw_session"])


def test_jobs_page_shows_failures_and_dead_letters_and_replays(
    client: TestClient, store_cfg: Settings, make_user: Callable[..., Any], log_in: Callable[..., None],
) -> None:
    dead_id = _seed(store_cfg)
    analyst = make_user("analyst")
    log_in(client, analyst.email, analyst.password)
    page = client.get("/jobs", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.text
    assert 'data-schedule="flaky"' in html
    assert 'data-run-status="failed"' in html
    assert "warehouse on fire" in html
    assert "will retry" in html
    assert f'data-dead="{dead_id}"' in html
    assert "550 mailbox unavailable" in html
    assert "Refused by the provider" in html
    assert 'data-testid="replay"' not in html  # analysts read only
    refused = client.post("/jobs/outbox/replay", data={"id": dead_id, "csrf_token": _csrf(client)},
                          follow_redirects=False)
    assert refused.status_code == 303
    with session_scope(store_cfg) as session:
        assert outbox.counts(session)["dead"] == 1

    client.post("/logout", data={"csrf_token": _csrf(client)})
    operator = make_user("operator")
    log_in(client, operator.email, operator.password)
    zh = client.get("/jobs?lang=zh").text
    assert "任务与发件箱" in zh
    assert "服务商拒收" in zh
    assert 'data-testid="replay"' in zh
    no_token = client.post("/jobs/outbox/replay", data={"id": dead_id}, follow_redirects=False)
    assert no_token.status_code in (400, 403)
    done = client.post("/jobs/outbox/replay", data={"id": dead_id, "csrf_token": _csrf(client)},
                       follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/jobs?replayed=1"
    with session_scope(store_cfg) as session:
        assert outbox.counts(session)["dead"] == 0
        assert outbox.counts(session)["pending"] == 1
    assert 'data-testid="no-dead-letters"' in client.get("/jobs?replayed=1").text
