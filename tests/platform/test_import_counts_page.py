"""The console's import page names what it counts: an order-lines upload of the examples' file
with errors reads 14 lines, imports 8 and quarantines 6 (as ``examples/README.md`` says), and those
8 lines make 6 new orders (real SQLite store, real DuckDB warehouse, the whole app)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings

ERRORS_FILE = Path(__file__).resolve().parents[2] / "examples" / "generic" / "order_lines_with_errors.csv"


@pytest.fixture
def client(store_cfg: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(store_cfg)) as test_client:
        yield test_client


def counts_of(html: str) -> dict[str, tuple[str, str]]:
    found = re.findall(r'data-count="([a-z_]+)"><dt>([^<]*)</dt><dd>([^<]*)</dd>', html)
    return {name: (label, value) for name, label, value in found}


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_an_order_lines_upload_counts_lines_and_orders_apart(
    client: TestClient, make_user: Callable[..., Any], log_in: Callable[..., None],
) -> None:
    admin = make_user("admin")
    log_in(client, admin.email, admin.password)
    cfg: Settings = client.app.state.cfg  # type: ignore[attr-defined]
    token = accounts.session_csrf_token(accounts.server_secret(cfg.data_dir), client.cookies["gw_session"])
    sent = client.post("/imports", data={"table": "order_lines", "format": "generic", "csrf_token": token},
                       files={"files": (ERRORS_FILE.name, ERRORS_FILE.read_bytes(), "text/csv")},
                       follow_redirects=False)
    assert sent.status_code == 303, sent.text
    job_page = sent.headers["location"]
    deadline = time.monotonic() + 60
    page = client.get(job_page).text
    while 'data-state="done"' not in page and time.monotonic() < deadline:
        time.sleep(0.2)
        page = client.get(job_page).text
    counts = counts_of(page)
    assert counts["rows_read"] == ("Lines read", "14")
    assert counts["lines_imported"] == ("Lines imported", "8")
    assert counts["rows_quarantined"] == ("Lines quarantined", "6")
    assert counts["inserted"] == ("New orders", "6")
    # the recent imports say which number is lines and which orders, in Chinese too
    client.cookies.set("gw_lang", "zh")
    recent = client.get("/imports").text
    row = re.search(r'data-testid="recent-imports">.*?<tbody>\s*<tr>(.*?)</tr>', recent, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))
    assert "14 行明细" in cells
    assert "6 个订单" in cells
