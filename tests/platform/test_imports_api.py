"""Uploads over ``/api/v1/imports``: a background job with progress, counts and its quarantine report.

Real authentication (API keys in the operational store, SQLite and PostgreSQL) and the real
warehouse owner running the import on its writer thread.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from growthwheel.accounts.models import AuditEntry
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.api.imports import router as imports_router
from growthwheel.config import Settings
from growthwheel.store import db

GOOD_AND_BAD = textwrap.dedent("""\
    customer_id,email,name,birthday
    k1,k1@example.com,One,1990-01-31
    k2,k2@example.com,Two,1990-13-45
    k3,k3@example.com,Three,
    """)


@pytest.fixture
def app_client(store_cfg: Settings) -> Iterator[TestClient]:
    app = warehouse_api.install(create_app(store_cfg, routers=[imports_router]))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def ingest_key(make_api_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_api_key('ingest', 'read')}"}


def upload(client: TestClient, headers: dict[str, str], table: str = "customers",
           files: list[tuple[str, bytes]] | None = None, fmt: str = "generic") -> Any:
    parts = [("files", (name, content, "text/csv")) for name, content in
             (files if files is not None else [("customers.csv", GOOD_AND_BAD.encode())])]
    return client.post("/api/v1/imports", headers=headers, data={"table": table, "format": fmt},
                       files=parts)


def wait_for(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(f"/api/v1/imports/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_upload_runs_a_job_with_counts_and_quarantine(
    app_client: TestClient, ingest_key: dict[str, str], store_cfg: Settings
) -> None:
    response = upload(app_client, ingest_key)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running", "done")
    assert {"id", "status", "phase", "fraction"} <= set(job)
    assert job["table"] == "customers"
    assert job["files"] == ["customers.csv"]  # as uploaded: no server path

    done = wait_for(app_client, ingest_key, job["id"])
    assert done["status"] == "done"
    assert done["fraction"] == 1.0
    result = done["result"]
    assert (result["rows_read"], result["rows_quarantined"]) == (3, 1)
    assert result["tables"]["customers"] == {"inserted": 2, "updated": 0, "unchanged": 0}
    assert done["quarantine_total"] == 1
    [bad] = done["quarantine"]
    assert (bad["file"], bad["row_number"], bad["column_name"], bad["value"]) == (
        "customers.csv", 2, "birthday", "1990-13-45")
    assert not any((store_cfg.data_dir / "uploads").iterdir())  # the upload went with its import
    assert bad["import_id"] == result["import_id"]
    assert bad["reason"]

    listing = app_client.get("/api/v1/imports", headers=ingest_key).json()
    assert [j["id"] for j in listing["items"]] == [job["id"]]
    quarantine = app_client.get("/api/v1/quarantine", params={"table": "customers"}, headers=ingest_key)
    assert [r["row_number"] for r in quarantine.json()["items"]] == [2]
    assert app_client.get("/api/v1/quarantine", params={"table": "orders"},
                          headers=ingest_key).json()["items"] == []

    # The rows are in the warehouse, read through the server's owner.
    warehouse = app_client.app.state.warehouse  # type: ignore[attr-defined]
    with warehouse.read() as con:
        t = con.table("customers")
        assert sorted(t.customer_id.to_pyarrow().to_pylist()) == ["k1", "k3"]
    # And the upload is in the audit log.
    with db.session_scope(store_cfg) as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "import.submit")).all()
        assert [(e.target, e.actor_kind) for e in entries] == [(f"import:{job['id']}", "api_key")]


def test_reimporting_the_same_content_changes_nothing(
    app_client: TestClient, ingest_key: dict[str, str]
) -> None:
    first = wait_for(app_client, ingest_key, upload(app_client, ingest_key).json()["id"])
    second = wait_for(app_client, ingest_key, upload(app_client, ingest_key).json()["id"])
    assert first["result"]["tables"]["customers"]["inserted"] == 2
    assert second["result"]["tables"]["customers"] == {"inserted": 0, "updated": 0, "unchanged": 2}
    # Each upload keeps its own quarantine report.
    assert first["quarantine_total"] == second["quarantine_total"] == 1
    recent = app_client.get("/api/v1/imports", headers=ingest_key).json()["items"]
    assert [j["id"] for j in recent] == [second["id"], first["id"]]


def test_quarantine_pages_walk_every_row_once(app_client: TestClient, ingest_key: dict[str, str]) -> None:
    bad_rows = "".join(f"q{i},,Name {i},not-a-date-{i}\n" for i in range(1, 8))
    content = ("customer_id,email,name,birthday\n" + bad_rows).encode()
    wait_for(app_client, ingest_key, upload(app_client, ingest_key, files=[("a.csv", content)]).json()["id"])
    wait_for(app_client, ingest_key, upload(app_client, ingest_key).json()["id"])
    everything = app_client.get("/api/v1/quarantine", params={"limit": 100}, headers=ingest_key).json()
    assert len(everything["items"]) == 8
    assert everything["next_cursor"] is None
    # Newest import first, then by row.
    assert [r["row_number"] for r in everything["items"]] == [2, 1, 2, 3, 4, 5, 6, 7]
    seen: list[tuple[str, int]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = app_client.get("/api/v1/quarantine", params=params, headers=ingest_key).json()
        seen += [(r["file"], r["row_number"]) for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [(r["file"], r["row_number"]) for r in everything["items"]]


def test_a_file_the_import_cannot_read_fails_the_job_with_its_reason(
    app_client: TestClient, ingest_key: dict[str, str]
) -> None:
    response = upload(app_client, ingest_key, files=[("x.csv", b"email,name\na@b.c,No id\n")])
    assert response.status_code == 202
    job = wait_for(app_client, ingest_key, response.json()["id"])
    assert job["status"] == "failed"
    assert "customer_id" in job["error"]
    assert job["result"] is None
    assert job["quarantine"] == []


def test_too_large_upload_is_refused_and_not_kept(
    app_client: TestClient, ingest_key: dict[str, str], store_cfg: Settings
) -> None:
    app_client.app.state.max_upload_bytes = 2000  # type: ignore[attr-defined]
    big = b"customer_id,name\n" + b"".join(b"c%05d,Someone\n" % i for i in range(300))
    response = upload(app_client, ingest_key, files=[("big.csv", big)])
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "too_large"
    # Streamed without a Content-Length: counted as it arrives, refused once over the limit.
    encoded = httpx.Request("POST", "http://x/", data={"table": "customers"},
                            files=[("files", ("big.csv", big, "text/csv"))])
    body = encoded.read()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start:start + 500]

    streamed = app_client.post("/api/v1/imports", content=chunks(),
                               headers={**ingest_key, "content-type": encoded.headers["content-type"]})
    assert streamed.status_code == 413
    assert streamed.json()["code"] == "too_large"
    # in the client's language
    zh = upload(app_client, {**ingest_key, "Accept-Language": "zh-CN"}, files=[("big.csv", big)])
    assert zh.status_code == 413
    assert zh.json()["detail"] == "上传的文件合计超过 2000 B：请少传几个文件，或拆成更小的文件"
    uploads = store_cfg.data_dir / "uploads"
    assert not uploads.exists()
    assert upload(app_client, ingest_key).status_code == 202  # a small one still goes through


def test_bad_requests_are_problems(
    app_client: TestClient, ingest_key: dict[str, str], make_api_key: Callable[..., str]
) -> None:
    cases = [
        upload(app_client, ingest_key, table="nonsense"),
        upload(app_client, ingest_key, fmt="excel"),
        upload(app_client, ingest_key, files=[("evil.exe", b"MZ")]),
        app_client.post("/api/v1/imports", headers=ingest_key, data={"table": "customers"}),
    ]
    for response in cases:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert app_client.get("/api/v1/imports/job_nope", headers=ingest_key).json()["code"] == "import_not_found"
    read_only = {"Authorization": f"Bearer {make_api_key('read')}"}
    assert upload(app_client, read_only).status_code == 403
    assert upload(app_client, {}).status_code == 401
    for path in ("/api/v1/imports", "/api/v1/quarantine", "/api/v1/imports/x"):
        assert app_client.get(path).status_code == 401
    assert not (app_client.app.state.cfg.data_dir / "uploads").exists()  # type: ignore[attr-defined]


def test_file_names_cannot_escape_the_upload_folder(
    app_client: TestClient, ingest_key: dict[str, str], store_cfg: Settings
) -> None:
    response = upload(app_client, ingest_key, files=[("../../../evil.csv", GOOD_AND_BAD.encode())])
    assert response.status_code == 202
    assert response.json()["files"] == ["evil.csv"]  # the name without its directories
    assert wait_for(app_client, ingest_key, response.json()["id"])["status"] == "done"
    assert not list(store_cfg.data_dir.parent.rglob("evil.csv"))  # never written outside its folder
    assert not any((store_cfg.data_dir / "uploads").iterdir())  # and that is gone with the import
