"""Swagger UI and ReDoc render the API's operations in a browser cut off from the internet:
every request to another host than the test server is aborted (and recorded, failing the test)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The whole app (create_app) over an empty data directory, on 127.0.0.1:<free port>."""
    import uvicorn

    from growthwheel.api.app import create_app
    from growthwheel.config import Settings

    cfg = Settings(data_dir=tmp_path_factory.mktemp("docs-data"), database_url=None)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="docs-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _offline_page(new_page: Any, outside: list[str]) -> Any:
    page = new_page()

    def route(request_route: Any) -> None:
        host = urlsplit(request_route.request.url).hostname
        if host in ("127.0.0.1", None) or request_route.request.url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            outside.append(request_route.request.url)
            request_route.abort()

    page.context.route("**/*", route)
    return page


def test_swagger_ui_renders_operations_offline(
    docs_server: str, new_page: Any, screenshots: Path
) -> None:
    outside: list[str] = []
    page = _offline_page(new_page, outside)
    page.goto(f"{docs_server}/api/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/v1/health").count() == 1
    # Swagger UI renders a long spec as it scrolls into view: scroll through it to the end and
    # collect the operations it drew.
    # A busy machine may not have scrolled within one wait: the end is the page's bottom, reached and
    # unmoved for a few waits (or no movement at all for 4 s).
    seen: set[str] = set()
    last, still = -1.0, 0
    for _ in range(1000):
        seen.update(page.locator(".opblock-summary-path").all_inner_texts())
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(50)
        position = float(page.evaluate("window.scrollY"))
        bottom = bool(page.evaluate(
            "window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2"))
        still = still + 1 if position == last else 0
        if (bottom and still >= 3) or still >= 80:
            break
        last = position
    seen.update(page.locator(".opblock-summary-path").all_inner_texts())
    paths = page.evaluate("fetch('/api/openapi.json').then(r => r.json()).then(s => Object.keys(s.paths))")
    assert len(paths) >= 100
    assert seen == set(paths)  # every path of the spec was drawn, from the vendored assets only
    page.screenshot(path=str(screenshots / "api-docs-swagger.png"))
    assert outside == []


def test_redoc_renders_operations_offline(docs_server: str, new_page: Any, screenshots: Path) -> None:
    outside: list[str] = []
    page = _offline_page(new_page, outside)
    page.goto(f"{docs_server}/api/redoc")
    page.wait_for_selector("[data-section-id^='operation/'], [data-section-id^='tag/']",
                           timeout=60_000)
    assert page.locator("[data-section-id^='operation/']").count() >= 20
    assert page.get_by_text("/api/v1/health").count() >= 1
    page.screenshot(path=str(screenshots / "api-docs-redoc.png"))
    assert outside == []
