"""A crowd at the checkout over HTTP: the real ``growthwheel serve`` (a subprocess on 127.0.0.1, fresh
data directory) against 200 simultaneous clients, on SQLite and on PostgreSQL.

Wave 1: 60 buyers of a flash sale of 10 units and 140 plain orders for distinct customers; wave 2:
200 orders on one shared coupon with 50 uses; ``/api/v1/health`` polled throughout. Every request
must be answered (bounded in time), none with a 500; a 503 must be problem+json with
``Retry-After`` (the client retries it); the limits are exact. The driver is ``bench/crowd_bench.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from growthwheel.accounts import service as accounts
from growthwheel.api.admission import Admission
from growthwheel.api.app import create_app
from growthwheel.config import ServerSettings, Settings
from growthwheel.store import db

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import crowd_bench


@pytest.fixture
def server(store_cfg: Settings) -> Iterator[tuple[str, str]]:
    """(base URL, API key) of a running server over ``store_cfg``'s store with the crowd's shop."""
    key = crowd_bench.setup_shop(store_cfg.data_dir, store_cfg.database_url)
    db.engine(store_cfg).dispose()
    process, base = crowd_bench.start_server(store_cfg.data_dir, store_cfg.database_url)
    try:
        yield base, key
    finally:
        crowd_bench.stop_server(process)


def assert_answered_without_500(wave: crowd_bench.Wave) -> None:
    failures = [a for a in wave.answers if a.status == 0 or a.status >= 500]
    assert not failures, f"{len(failures)} of {len(wave.answers)} without a proper answer: {failures[:3]}"
    assert wave.health_failed == 0, f"/health failed {wave.health_failed} times during the crowd"
    assert wave.health_ms, "/health was never answered during the crowd"


@pytest.mark.slow
def test_200_simultaneous_clients_are_all_answered_and_limits_stay_exact(
    server: tuple[str, str], store_cfg: Settings,
) -> None:
    base, key = server
    first, second = crowd_bench.crowd_waves(base, key, clients=200)

    assert_answered_without_500(first)
    flash = first.answers[:60]
    assert sum(a.status == 201 for a in flash) == crowd_bench.FLASH_STOCK
    assert {a.code for a in flash if a.status != 201} <= {"flash_sale_sold_out", "price_changed"}
    assert all(a.status == 201 for a in first.answers[60:]), first.by_outcome()

    assert_answered_without_500(second)
    assert second.by_outcome() == {"201": 50, "409 coupon_used_up": 150}

    counts = crowd_bench.store_counts(store_cfg.data_dir, store_cfg.database_url)
    assert counts == {"flash_stock_used": 10, "flash_orders": 10, "coupon_used": 50, "redemptions": 50,
                      "coupon_orders": 50, "plain_orders": 140}


# ---------------------------------------------------------------------------------------------
# The parts, one by one
# ---------------------------------------------------------------------------------------------


def _slow_app(release: asyncio.Event) -> Starlette:
    async def slow(_request: Request) -> PlainTextResponse:
        await release.wait()
        return PlainTextResponse("done")

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/slow", slow), Route("/api/v1/health", health)])


def test_beyond_the_queue_a_request_gets_503_problem_json_with_retry_after_in_its_language() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        server = ServerSettings(concurrency=1, queue=1, queue_timeout=0.3, retry_after=7)
        app = Admission(_slow_app(release), server)  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            holder = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)
            queued = asyncio.create_task(client.get("/slow"))  # waits, then runs when released
            await asyncio.sleep(0.05)
            over = await client.get("/slow", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
            assert over.status_code == 503
            assert over.headers["retry-after"] == "7"
            assert over.headers["content-type"].startswith("application/problem+json")
            assert over.json()["code"] == "server_busy"
            assert "7 秒后重试" in over.json()["detail"]
            # /health is not admitted through the queue: it answers while the queue is full
            assert (await client.get("/api/v1/health")).status_code == 200
            release.set()
            assert (await holder).status_code == 200
            assert (await queued).status_code == 200
            # a request that waits longer than queue_timeout is refused, in English by default
            release.clear()
            holder = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.05)
            late = await client.get("/slow")
            assert late.status_code == 503
            assert late.json()["detail"] == "The server is busy with other requests: try again in 7 s."
            release.set()
            assert (await holder).status_code == 200
            assert (app.active, app.waiting, app.refused) == (0, 0, 2)

    # A fresh thread has no event loop, whatever an earlier test in this process left running.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, scenario()).result(timeout=120)


def test_a_sqlite_writer_waiting_past_write_timeout_is_a_503_store_busy_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None,
                   server=ServerSettings(write_timeout=0.5, retry_after=3))
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _row = accounts.create_api_key(session, "busy", ["read", "write"], created_by="tests")
    app = create_app(cfg)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        order = {"order_id": "o-1", "customer_id": "c1", "lines": [crowd_bench.line("A", "TEA-1", 1000)]}
        with db.engine(cfg).connect() as blocker:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")  # another unit of work holds the writer
            busy = client.post("/api/v1/orders", json=order)
            blocker.rollback()
        assert busy.status_code == 503, busy.text  # before: "database is locked" after 10 s, a 500
        assert busy.headers["retry-after"] == "3"
        assert busy.json()["code"] == "store_busy"
        assert client.get("/api/v1/orders/o-1").status_code == 404
        assert client.post("/api/v1/orders", json=order).status_code == 201  # the writer is free again


def test_a_revoked_api_key_stops_working_at_once_although_verified_keys_are_cached(
    store_cfg: Settings, make_api_key: Callable[..., str],
) -> None:
    key = make_api_key("read")
    with TestClient(create_app(store_cfg), headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.get("/api/v1/me").status_code == 200
        assert client.get("/api/v1/me").status_code == 200  # from the cache
        with db.session_scope(store_cfg) as session:
            accounts.revoke_api_key(session, key)
        refused = client.get("/api/v1/me")
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthenticated"


# ---------------------------------------------------------------------------------------------
# serve --workers
# ---------------------------------------------------------------------------------------------


def test_serve_refuses_several_workers_on_sqlite(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from growthwheel.cli.main import app as cli

    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "serve", "--workers", "2"],
                                env={"GROWTHWHEEL_DATABASE_URL": None})
    assert result.exit_code != 0
    assert "SQLite has one writer" in result.output


@pytest.mark.slow
def test_two_server_processes_share_the_checkout_and_forward_warehouse_requests_to_the_owner(
    pg_cluster: Any, tmp_path: Path,
) -> None:
    from growthwheel.warehouse.server import find_server

    name = pg_cluster.create_database()
    cfg = Settings(data_dir=tmp_path, database_url=pg_cluster.url(name))
    try:
        key = crowd_bench.setup_shop(cfg.data_dir, cfg.database_url)
        process, base = crowd_bench.start_server(cfg.data_dir, cfg.database_url, workers=2)
        try:
            owner = find_server(cfg)  # the owner answers on its private port, as CLI imports need
            assert owner is not None
            assert owner.port != int(base.rsplit(":", 1)[1])
            headers = {"Authorization": f"Bearer {key}"}
            # a new connection each time lands on either process: the one without the warehouse
            # forwards the request (without forwarding it would answer "the warehouse is not open")
            for _ in range(30):
                counts = httpx.get(base + "/api/v1/warehouse/counts", headers=headers, timeout=30)
                assert counts.status_code == 200, counts.text
                assert "events" in counts.json()["tables"]
            assert httpx.get(base + "/api/v1/warehouse/counts", timeout=30).status_code == 401
            wave = crowd_bench.run_wave(base, key, [crowd_bench.coupon_order(n) for n in range(100)])
        finally:
            crowd_bench.stop_server(process)
        assert_answered_without_500(wave)
        assert wave.by_outcome() == {"201": 50, "409 coupon_used_up": 50}
        counts = crowd_bench.store_counts(cfg.data_dir, cfg.database_url)
        assert (counts["coupon_used"], counts["redemptions"], counts["coupon_orders"]) == (50, 50, 50)
    finally:
        db.engine(cfg).dispose()
        pg_cluster.drop_database(name)
