"""Issue 13: a bad upload is told in the reader's language through the API (problem+json in the
client's ``Accept-Language``) and on the console's import page (zh and en), naming the file as
uploaded and the row where there is one; nothing of it reaches the warehouse. A quarantined row
the CSV reader could not split is explained in both languages too, and a header-only file gets a
notice."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.store import db
from import_file_cases import BAD_FILES, BadFile
from served_app import log_client_in

ADMIN = ("admin@example.com", "pw-admin-0123456789")
#: What a Chinese error may hold in Latin letters: file and column names, encodings, formats,
#: product names and the conversion command.
ACCEPTED_IN_ZH = re.compile(
    r"“[^”]*”|CSV UTF-8|UTF-\d+|GBK/GB18030|iconv -f GB18030 -t UTF-8|utf8\.csv|JSON Lines|JSON|Excel|"
    r"Parquet|ZIP|PDF|Office|\.xlsx?|customer_id|name|order_id|total")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], Settings]]:
    """A client of the whole app over a fresh data directory (logged in to the console as an
    admin), and the headers of an ingest API key."""
    cfg = Settings(data_dir=tmp_path_factory.mktemp("upload_errors") / "data", database_url=None)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _row = accounts.create_api_key(session, "uploads", ("read", "ingest"), created_by="tests")
        accounts.create_user(session, ADMIN[0], "admin", ADMIN[1])
    try:
        with TestClient(create_app(cfg)) as client:
            log_client_in(client, *ADMIN)
            # The client also holds the console's session: its uploads carry the session's token.
            secret = accounts.server_secret(cfg.data_dir)
            token = accounts.session_csrf_token(secret, client.cookies["gw_session"])
            yield client, {"Authorization": f"Bearer {key}", "X-CSRF-Token": token}, cfg
    finally:
        db.engine(cfg).dispose()


def _upload(client: TestClient, headers: dict[str, str], name: str, content: bytes,
            table: str = "customers", fmt: str = "generic") -> str:
    response = client.post("/api/v1/imports", headers=headers, data={"table": table, "format": fmt},
                           files=[("files", (name, content, "application/octet-stream"))])
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _finished(client: TestClient, headers: dict[str, str], job_id: str, lang: str = "en") -> dict[str, Any]:
    deadline = time.monotonic() + 60  # generous: the machine is shared; the answer does not depend on it
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/imports/{job_id}",
                                         headers={**headers, "Accept-Language": lang}).json()
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def _alert(page: str) -> str:
    found = re.search(r'<p class="alert error" role="alert">(.*?)</p>', page, re.DOTALL)
    assert found is not None, page[-2000:]
    return unescape(found.group(1))


@pytest.mark.parametrize("bad", BAD_FILES, ids=[b.id for b in BAD_FILES])
def test_a_bad_upload_is_told_in_the_readers_language(
    served: tuple[TestClient, dict[str, str], Settings], bad: BadFile
) -> None:
    client, headers, cfg = served
    counts_before = client.get("/api/v1/warehouse/counts", headers=headers)
    job_id = _upload(client, headers, bad.name, bad.content, bad.table, bad.fmt)
    en = _finished(client, headers, job_id, "en")
    assert (en["status"], en["error_code"], en["error_file"], en["error_row"]) == (
        "failed", bad.code, bad.name, bad.row)
    assert en["error"].startswith(f"{bad.name}: ")  # the English line, as before
    client.cookies.delete("gw_lang")  # the console's choice (set by ?lang= below) would win
    zh = client.get(f"/api/v1/imports/{job_id}",
                    headers={**headers, "Accept-Language": "zh-CN,zh;q=0.9"}).json()
    problem = zh["problem"]
    assert (problem["code"], problem["status"]) == (bad.code, 422)
    assert (problem["file"], problem["row"]) == (bad.name, bad.row)
    assert problem["type"] == f"/problems/{bad.code}"
    assert problem["detail"] == zh["error"]
    assert f"“{bad.name}”" in zh["error"]
    assert bad.zh in zh["error"]
    assert str(cfg.data_dir) not in zh["error"] + en["error"]
    # The console's page of the job, in each language.
    page_zh = _alert(client.get(f"/imports/{job_id}", params={"lang": "zh"}).text)
    assert bad.zh in page_zh
    assert f"“{bad.name}”" in page_zh
    assert not re.search(r"[A-Za-z]{4,}", ACCEPTED_IN_ZH.sub("", page_zh)), page_zh
    page_en = _alert(client.get(f"/imports/{job_id}", params={"lang": "en"}).text)
    assert bad.en in page_en
    assert f'"{bad.name}"' in page_en
    # Nothing was written.
    assert client.get("/api/v1/warehouse/counts", headers=headers).json() == counts_before.json()


def test_a_workbook_refused_at_upload_is_a_problem_in_the_clients_language(
    served: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, headers, _cfg = served
    client.cookies.delete("gw_lang")
    for lang, words in (("zh-CN", "“客户.xlsx”是 .xlsx 文件"), ("en", '"客户.xlsx" is a .xlsx file')):
        response = client.post("/api/v1/imports", headers={**headers, "Accept-Language": lang},
                               data={"table": "customers", "format": "generic"},
                               files=[("files", ("客户.xlsx", b"PK\x03\x04", "application/octet-stream"))])
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "file_type"
        assert words in response.json()["detail"]


def test_unreadable_rows_and_header_only_files_are_explained_in_both_languages(
    served: tuple[TestClient, dict[str, str], Settings],
) -> None:
    client, headers, _cfg = served
    broken = b'customer_id,name\nq1,"Ann"x,y\nq2,Bob\n'  # row 1 has a stray quote and a field too many
    job = _finished(client, headers, _upload(client, headers, "名单.csv", broken))
    assert job["status"] == "done"
    assert (job["result"]["rows_read"], job["result"]["rows_quarantined"]) == (2, 1)
    assert job["quarantine"][0]["row_number"] == 1
    zh = client.get(f"/imports/{job['id']}", params={"lang": "zh"}).text
    assert "这一行有 3 个字段，表头有 2 个" in zh
    en = client.get(f"/imports/{job['id']}", params={"lang": "en"}).text
    assert "the row has 3 fields where the header has 2" in en
    header_only = _finished(client, headers, _upload(client, headers, "今日订单.csv", b"customer_id,name\n"))
    assert header_only["status"] == "done"
    assert header_only["result"]["header_only"] == ["今日订单.csv"]
    notice = client.get(f"/imports/{header_only['id']}", params={"lang": "zh"}).text
    assert "“今日订单.csv”只有表头行" in notice


@pytest.mark.parametrize(
    ("form", "field", "zh"),
    [
        ({"format": "generic"}, "table", "请指定要导入的表"),
        ({"table": "invoices"}, "table", "没有名为 'invoices' 的表"),
        ({"table": "customers", "format": "excel"}, "format", "请从以下格式中选择：generic"),
    ],
)
def test_a_bad_upload_form_names_the_field_in_the_clients_language(
    served: tuple[TestClient, dict[str, str], Settings], form: dict[str, str], field: str, zh: str
) -> None:
    client, headers, _cfg = served
    client.cookies.delete("gw_lang")
    files = [("files", ("a.csv", b"customer_id\nc1\n", "text/csv"))]
    answers = {lang: client.post("/api/v1/imports", headers={**headers, "Accept-Language": lang},
                                 data=form, files=files) for lang in ("zh-CN", "en")}
    for response in answers.values():
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == field
    assert response.json()["code"] == "invalid_argument"
    assert answers["zh-CN"].json()["detail"].startswith(f"{field}: ")
    assert zh in answers["zh-CN"].json()["detail"]
    assert answers["en"].json()["detail"].startswith(f"{field}: ")
    assert not re.search(r"[\u4e00-\u9fff]", answers["en"].json()["detail"])
