"""Fixtures of the browser tests: a real server over a small demo shop, and headless Chromium.

* ``console`` (session): simulates the demo shop (300 customers, 120 days) into a temporary data
  directory, reads its orders and events into pandas *before* the server takes the warehouse
  (the tests' independent answers are computed from these frames), creates an admin and an
  analyst, and runs the real app under uvicorn on a free loopback port in a background thread.
* ``browser`` (session): Debian's Chromium (``/usr/bin/chromium``) driven by Playwright; the
  tests fail with the command to install it when it is missing (no browser is ever downloaded).
* ``page``: a fresh browser context (English unless a test asks otherwise) per test.

Screenshots go to ``test-artifacts/screenshots/`` at the repository root (git-ignored).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PAID = ("paid", "shipped", "completed", "partially_refunded", "refunded")


@dataclass
class Account:
    """A console user the tests sign in as."""

    email: str
    password: str


@dataclass
class Console:
    """The running server and what the tests know about its data."""

    url: str
    app: Any
    data_dir: Path
    admin: Account
    analyst: Account
    orders: pd.DataFrame
    events: pd.DataFrame
    customers: pd.DataFrame


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The real app over the demo shop, served by uvicorn on 127.0.0.1:<free port>."""
    import uvicorn

    from growthwheel.accounts import service as accounts
    from growthwheel.accounts.api import router as accounts_router
    from growthwheel.api import deps
    from growthwheel.api import warehouse as warehouse_api
    from growthwheel.api.app import create_app
    from growthwheel.api.imports_pages import router as imports_pages
    from growthwheel.config import Settings
    from growthwheel.customers.pages import router as customer_pages
    from growthwheel.insight.pages.overview import router as overview_page
    from growthwheel.sim.demo import build_demo
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.web.pages import router as pages_router

    data_dir = tmp_path_factory.mktemp("console-data")
    cfg = Settings(data_dir=data_dir)
    build_demo(cfg, customers=300, days=120, seed=3, start=date(2025, 1, 1))
    raw = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        orders = raw.execute("SELECT * FROM orders").df()
        events = raw.execute("SELECT * FROM events").df()
        customers = raw.execute("SELECT * FROM customers").df()
    finally:
        raw.close()

    migrate(cfg)
    admin = Account("admin@example.com", secrets.token_urlsafe(12))
    analyst = Account("analyst@example.com", secrets.token_urlsafe(12))
    with session_scope(cfg) as session:
        accounts.create_user(session, admin.email, "admin", admin.password)
        accounts.create_user(session, analyst.email, "analyst", analyst.password)

    app = create_app(cfg, routers=[accounts_router, pages_router, overview_page,
                                         customer_pages, imports_pages])
    deps.install(app)
    warehouse_api.install(app)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    try:
        _wait_until(lambda: server.started or not thread.is_alive(), 30, "the server to start")
        if not server.started:
            raise RuntimeError("the server did not start (see the log above)")
        yield Console(f"http://127.0.0.1:{port}", app, data_dir, admin, analyst, orders, events,
                      customers)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright (sync API)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`sudo apt-get update && sudo apt-get install -y chromium` (Playwright must not "
            "download a browser)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open pages in fresh browser contexts: ``new_page(locale="zh-CN")``; closed after the test.

    Fails the test if a page logs a JavaScript error or a console error (a script refused by the
    Content-Security-Policy, a failed chart, a missing file).
    """
    contexts: list[Any] = []
    errors: list[str] = []

    def make(locale: str = "en-US") -> Any:
        context = browser.new_context(
            locale=locale, viewport={"width": 1400, "height": 1000}, device_scale_factor=1,
            reduced_motion="reduce",  # charts drawn at once (app.js turns animation off)
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == [], "the browser reported errors"


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    """A page in a fresh English browser context."""
    return new_page()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where screenshots are kept (created)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
