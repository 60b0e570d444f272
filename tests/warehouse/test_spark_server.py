"""The server on Spark (issue 11, must show): three imports and captured events while clients read.

A real server (uvicorn on 127.0.0.1, the app with its warehouse owner) on a Spark warehouse. While
reader threads call ``GET /api/v1/warehouse/counts`` over HTTP without pause, three order-line
imports run through the owner and batches of events are captured through ``POST /api/v1/events``
and flushed; the owner compacts and vacuums every second with no retention window, so only the
readers' leases keep the files they read. Checked:

* no read fails (before this work, reads failed with ``FileNotFoundException`` after the second
  import, and an owner opened on an empty warehouse counted 0 forever);
* every read sees one snapshot: each import adds 5 orders with 2 lines each, so within one
  response ``order_lines == 2 * orders``;
* reads never go back in time, and a request that starts after an import or a flush has
  committed sees it (the newest snapshot);
* the events appended by the flushes are all there exactly once, and vacuum removed old files.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from growthwheel.accounts import service as accounts
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.events import api as events_api
from growthwheel.store import db
from growthwheel.warehouse import lake

pytestmark = pytest.mark.spark

HEADER = "order_id,customer_id,ordered_at,sku,quantity,line_total,status\n"


def _lines(batch: int) -> str:
    """Five orders of two lines each, in two months (so two partitions)."""
    rows = []
    for i in range(5):
        oid, month = f"B{batch}-{i}", 3 + (i % 2)
        for sku in ("S1", "S2"):
            rows.append(f"{oid},C{i},2024-0{month}-1{batch}T10:00:00+08:00,{sku},1,12.50,paid\n")
    return HEADER + "".join(rows)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _key(cfg: Settings) -> str:
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _ = accounts.create_api_key(session, "tests", ("read", "ingest"), created_by="tests")
    return key


def test_server_on_spark_reads_newest_snapshot_through_imports_and_flushes(
    spark_session: Any, tmp_path: Path
) -> None:
    cfg = Settings(data_dir=tmp_path / "data", warehouse="spark", database_url=None)
    key = _key(cfg)
    app = create_app(cfg, routers=[warehouse_api.router, events_api.router])
    app.state.warehouse_options = {"flush_seconds": 0.2, "keep_seconds": 0.0, "maintain_seconds": 1.0,
                                   "compact_at": 3}
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)

    reads: list[tuple[float, float, dict[str, int]]] = []  # (started, ended, tables)
    failures: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            while not stop.is_set():
                began = time.monotonic()
                response = client.get("/api/v1/warehouse/counts")
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                reads.append((began, time.monotonic(), response.json()["tables"]))

    def counts(client: httpx.Client) -> dict[str, int]:
        response = client.get("/api/v1/warehouse/counts")
        assert response.status_code == 200, response.text
        tables: dict[str, int] = response.json()["tables"]
        return tables

    owner = app.state.warehouse
    committed: list[tuple[float, int, int]] = []  # (when, orders, events) known committed
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            assert counts(client)["orders"] == 0  # an empty warehouse, opened before any import
            readers = [threading.Thread(target=reader) for _ in range(2)]
            for r in readers:
                r.start()
            sent = 0
            for batch in range(1, 4):
                path = tmp_path / f"lines_{batch}.csv"
                path.write_text(_lines(batch), encoding="utf-8")
                job = owner.job(owner.submit_import("order_lines", [path]))
                for _ in range(3):  # events captured while the import runs
                    events = [{"event_id": f"e{sent + i}", "type": "view", "anonymous_id": "d1",
                               "timestamp": f"2024-0{3 + i % 2}-15T12:00:00+08:00"} for i in range(20)]
                    response = client.post("/api/v1/events", json={"events": events})
                    assert response.json() == {"accepted": 20, "duplicates": 0}
                    sent += 20
                    time.sleep(0.3)
                assert job.wait(300)
                assert job.status == "done", job.error
                owner.flush_events()
                committed.append((time.monotonic(), 5 * batch, sent))
                seen = counts(client)  # a request after the commit sees it
                assert (seen["orders"], seen["order_lines"], seen["events"]) == (5 * batch, 10 * batch, sent)
            # The same events sent again change nothing (keyed on event_id), through append files.
            again = [{"event_id": f"e{i}", "type": "view", "anonymous_id": "d1",
                      "timestamp": f"2024-0{3 + i % 2}-15T12:00:00+08:00"} for i in range(20)]
            assert client.post("/api/v1/events", json={"events": again}).status_code == 202
            owner.flush_events()
            time.sleep(1.5)  # let the readers run over a compaction and a vacuum too
            compacted, vacuumed = owner.maintain()
            final = counts(client)
    finally:
        stop.set()
        for r in readers:
            r.join(120)
        server.should_exit = True
        thread.join(60)

    assert failures == []
    assert len(reads) >= 10, f"only {len(reads)} reads"
    assert (final["orders"], final["order_lines"], final["events"]) == (15, 30, 180)
    for _began, _ended, tables in reads:
        assert tables["order_lines"] == 2 * tables["orders"], tables  # one snapshot per request
    # A read that began after a commit saw at least that commit.
    for began, _ended, tables in reads:
        for when, orders, events in committed:
            if began > when:
                assert (tables["orders"] >= orders, tables["events"] >= events) == (True, True)
    # Reads that did not overlap never go back in time.
    for _b1, e1, t1 in reads:
        for b2, _e2, t2 in reads:
            if b2 > e1:
                assert (t2["orders"] >= t1["orders"], t2["events"] >= t1["events"]) == (True, True)
    # Appends, compaction and vacuum did their work: few files per partition, old ones gone.
    snapshot = lake.read_pointer(cfg)
    assert all(len(files) <= 3 for parts in snapshot.tables.values() for files in parts.values())
    assert vacuumed.snapshots_kept >= 1
    assert compacted.partitions >= 0
    assert not any((cfg.spark_dir / lake.LEASES_DIR).iterdir())  # every lease was let go
