"""Event capture: ``POST /api/v1/events`` end to end (API key, spool, flush into DuckDB), the UTM
rules by hand-worked examples, idempotence, identity stitching, refusal of bad batches, and the
replay of the spool after the server is killed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from growthwheel.accounts import service as accounts
from growthwheel.api import warehouse as warehouse_api
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.events import api as events_api
from growthwheel.events import core
from growthwheel.events.service import customer_events
from growthwheel.store import db
from growthwheel.warehouse import owner as wh_owner

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ev(event_id: str, **fields: Any) -> dict[str, Any]:
    """An event with defaults: a view by anonymous device ``d1`` at a fixed time."""
    base: dict[str, Any] = {"event_id": event_id, "type": "view", "timestamp": "2025-06-18T20:15:03+08:00",
                            "anonymous_id": "d1"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def rows(app: FastAPI, sql: str) -> list[tuple[Any, ...]]:
    with app.state.warehouse.read() as backend:
        result: list[tuple[Any, ...]] = backend.raw_sql(sql).fetchall()
        return result


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Callable[..., str]) -> Iterator[TestClient]:
    """A running app (events + warehouse routers, the warehouse owner) and an ``ingest`` key."""
    app = warehouse_api.install(create_app(store_cfg, routers=[events_api.router, warehouse_api.router]))
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {make_api_key('ingest')}"
        yield test_client


def flush(client: TestClient) -> None:
    client.app.state.warehouse.flush_events()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# UTM attribution, by hand
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "referrer", "given", "expected"),
    [
        # the page URL's parameters win over the referrer
        ("https://shop.example.cn/p/1?utm_source=douyin&utm_medium=social&utm_campaign=618_warmup",
         "https://www.baidu.com/", {}, ("douyin", "social", "618_warmup")),
        # no UTM anywhere: search engines are organic ...
        ("https://shop.example.cn/", "https://www.baidu.com/s?wd=%E9%9D%A2%E9%9C%9C", {},
         ("baidu", "organic", None)),
        ("https://shop.example.cn/", "https://www.google.com.hk/", {}, ("google", "organic", None)),
        ("https://shop.example.cn/", "https://m.sogou.com/web?q=x", {}, ("sogou", "organic", None)),
        # ... platforms and other sites are referrals (known platforms by name, others by host)
        ("https://shop.example.cn/", "https://mp.weixin.qq.com/s/abc", {}, ("wechat", "referral", None)),
        ("https://shop.example.cn/", "https://www.douyin.com/video/7", {}, ("douyin", "referral", None)),
        ("https://shop.example.cn/", "https://blog.example.org/post/1", {},
         ("blog.example.org", "referral", None)),
        # parameters in a single-page-app fragment, decoded; names case-insensitive
        ("https://shop.example.cn/#/p/2?utm_source=Newsletter&utm_campaign=spring%20sale", None, {},
         ("Newsletter", None, "spring sale")),
        ("https://shop.example.cn/?UTM_SOURCE=Baidu&utm_medium=cpc", None, {}, ("Baidu", "cpc", None)),
        # the URL has none: the referrer's parameters
        ("https://shop.example.cn/p/3", "https://landing.example.com/?utm_source=kol_lily&utm_medium=influencer",
         {}, ("kol_lily", "influencer", None)),
        # internal navigation and direct visits are not attributed
        ("https://www.shop.example.cn/p/3", "https://shop.example.cn/cart", {}, (None, None, None)),
        ("https://shop.example.cn/p/3", None, {}, (None, None, None)),
        # values given on the event win, and are never mixed with the URL's
        ("https://shop.example.cn/?utm_source=douyin&utm_medium=social", None, {"utm_source": "sms"},
         ("sms", None, None)),
    ],
)
def test_utm_rules(url: str | None, referrer: str | None, given: dict[str, str],
                   expected: tuple[str | None, str | None, str | None]) -> None:
    assert core.attribute(url, referrer, given.get("utm_source"), given.get("utm_medium"),
                          given.get("utm_campaign")) == expected


def test_first_link_wins_when_a_device_is_shared() -> None:
    t = datetime(2025, 6, 1, tzinfo=UTC)
    links = [
        core.Link("d1", "c2", t.replace(day=5), "e9"),  # a second person signs in on d1 later
        core.Link("d1", "c1", t.replace(day=2), "e5"),
        core.Link("d2", "c2", t.replace(day=3), "e7"),
        core.Link("d3", "c3", t.replace(day=4), "e2"),  # same moment: the smaller event id wins
        core.Link("d3", "c4", t.replace(day=4), "e1"),
    ]
    assert core.stitch(links) == {"d1": "c1", "d2": "c2", "d3": "c4"}


# ---------------------------------------------------------------------------------------------
# Capture over HTTP
# ---------------------------------------------------------------------------------------------


def test_batch_is_accepted_and_stored_as_sent(client: TestClient) -> None:
    batch = [
        ev("e1", url="https://shop.example.cn/p/sku-1?utm_source=douyin&utm_medium=social&utm_campaign=618",
           sku="sku-1", session_id="s1", device="mobile", properties={"price": "129.00", "tags": ["a", "b"]}),
        # Z time late in the UTC evening: already the next day in Shanghai
        ev("e2", type="search", timestamp="2025-06-18T23:30:00Z", referrer="https://www.baidu.com/s?wd=x",
           url="https://shop.example.cn/search?q=%E9%9D%A2%E9%9C%9C", properties={"query": "面霜"}),
        # no offset: shop time; a custom event type
        ev("e3", type="wishlist.add", timestamp="2025-06-18 08:00:00", customer_id="c9", anonymous_id=None),
    ]
    response = client.post("/api/v1/events", json={"events": batch})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 3, "duplicates": 0}
    flush(client)
    stored = rows(client.app,  # type: ignore[arg-type]
                  "SELECT event_id, type, occurred_at::VARCHAR, event_date::VARCHAR, customer_id, "
                  "anonymous_id, session_id, sku, device, utm_source, utm_medium, utm_campaign, "
                  "properties FROM events ORDER BY event_id")
    assert stored == [
        ("e1", "view", "2025-06-18 12:15:03", "2025-06-18", None, "d1", "s1", "sku-1", "mobile",
         "douyin", "social", "618", '{"price":"129.00","tags":["a","b"]}'),
        ("e2", "search", "2025-06-18 23:30:00", "2025-06-19", None, "d1", None, None, None,
         "baidu", "organic", None, '{"query":"面霜"}'),
        ("e3", "wishlist.add", "2025-06-18 00:00:00", "2025-06-18", "c9", None, None, None, None,
         None, None, None, None),
    ]
    assert rows(client.app, "SELECT count(*) FROM _quarantine") == [(0,)]  # type: ignore[arg-type]


def test_resent_events_are_stored_once(client: TestClient) -> None:
    batch = [ev("e1"), ev("e2", type="add_to_cart", sku="sku-1"), ev("e1")]
    first = client.post("/api/v1/events", json={"events": batch})
    assert first.status_code == 202
    assert first.json() == {"accepted": 2, "duplicates": 1}
    # the client did not get the answer and sends the batch again, before and after a flush
    assert client.post("/api/v1/events", json={"events": batch}).json() == {"accepted": 2, "duplicates": 1}
    flush(client)
    assert client.post("/api/v1/events", json={"events": batch[:2]}).status_code == 202
    flush(client)
    assert rows(client.app, "SELECT event_id, count(*) FROM events GROUP BY 1 ORDER BY 1") == [  # type: ignore[arg-type]
        ("e1", 1), ("e2", 1)
    ]
    counts = client.get("/api/v1/warehouse/counts")
    assert counts.status_code == 403  # the key has only the ingest scope


def test_anonymous_activity_joins_the_customer(client: TestClient) -> None:
    batch = [
        ev("a1", timestamp="2025-06-01T10:00:00+08:00", anonymous_id="d1", url="https://s.cn/p/1?utm_source=douyin"),
        ev("a2", type="add_to_cart", timestamp="2025-06-01T10:05:00+08:00", anonymous_id="d1", sku="sku-1"),
        # another device, never identified
        ev("a3", timestamp="2025-06-01T11:00:00+08:00", anonymous_id="d2"),
        ev("i1", type="login", timestamp="2025-06-01T10:06:00+08:00", anonymous_id="d1", customer_id="c1"),
        ev("p1", type="purchase", timestamp="2025-06-01T10:09:00+08:00", customer_id="c1", order_id="o1"),
        # later someone else signs in on the same device: its history stays with c1
        ev("i2", type="login", timestamp="2025-06-03T09:00:00+08:00", anonymous_id="d1", customer_id="c2"),
        ev("a4", timestamp="2025-06-03T09:30:00+08:00", anonymous_id="d1"),
    ]
    assert client.post("/api/v1/events", json={"events": batch}).status_code == 202
    flush(client)
    with client.app.state.warehouse.read() as backend:  # type: ignore[attr-defined]
        c1 = customer_events(backend, "c1").execute()
        c2 = customer_events(backend, "c2").execute()
    assert list(c1["event_id"]) == ["a1", "a2", "i1", "p1", "a4"]
    assert list(c1["stitched"]) == [True, True, False, False, True]
    assert set(c1["customer_id"]) == {"c1"}
    assert c1.loc[c1.event_id == "a1", "utm_source"].item() == "douyin"
    assert list(c2["event_id"]) == ["i2"]


def test_a_bad_event_refuses_the_whole_batch(client: TestClient) -> None:
    batch = [
        ev("ok1"),
        ev("bad1", timestamp="yesterday"),
        ev("bad2", anonymous_id=None),
        ev("bad3", type="Add To Cart"),
    ]
    response = client.post("/api/v1/events", json={"events": batch})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["detail"].startswith("body.events.1.timestamp: not an ISO 8601 date-time")
    assert [e["location"] for e in body["errors"]] == [
        "body.events.1.timestamp", "body.events.2.customer_id", "body.events.3.type",
    ]
    assert body["errors"][1]["message"] == "either customer_id or anonymous_id is required"
    # out of range time and unknown field (the latter refused by the request schema)
    far = client.post("/api/v1/events", json={"events": [ev("x", timestamp="1969-12-31T00:00:00Z")]})
    assert far.json()["errors"] == [
        {"location": "body.events.0.timestamp", "message": "year out of range 1970–2100"}
    ]
    unknown = client.post("/api/v1/events", json={"events": [ev("ok1"), ev("x", colour="red")]})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["location"] == "body.events.1.colour"
    flush(client)
    assert rows(client.app, "SELECT count(*) FROM events") == [(0,)]  # type: ignore[arg-type]
    assert client.app.state.warehouse.pending_events() == 0  # type: ignore[attr-defined]


def test_batch_size_is_1_to_1000(client: TestClient) -> None:
    too_many = client.post("/api/v1/events", json={"events": [ev(f"e{i}") for i in range(1001)]})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["location"] == "body.events"
    empty = client.post("/api/v1/events", json={"events": []})
    assert empty.status_code == 422
    full = client.post("/api/v1/events", json={"events": [ev(f"e{i}") for i in range(1000)]})
    assert full.json() == {"accepted": 1000, "duplicates": 0}
    flush(client)
    assert rows(client.app, "SELECT count(DISTINCT event_id), count(*) FROM events") == [(1000, 1000)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (b'{"events": [{"event_id": "a\\ud800", "type": "view", "timestamp": "2025-01-01", '
         b'"anonymous_id": "d"}]}', "body.events.0.event_id"),
        (b'{"events": [{"event_id": "a", "type": "view", "timestamp": "0001-01-01T00:00:00+14:00", '
         b'"anonymous_id": "d"}]}', "body.events.0.timestamp"),
        (b'{"events": [{"event_id": "a", "type": "view", "timestamp": "2025-01-01", "anonymous_id": "d", '
         b'"properties": {"x": 1e400}}]}', "body.events.0.properties"),
        (b'{"events": [{"event_id": "a", "type": "view", "timestamp": "2025-01-01", "anonymous_id": "d", '
         b'"properties": {"x": "' + b"y" * 17_000 + b'"}}]}', "body.events.0.properties"),
        (b'{"events": ["view"]}', "body.events.0"),
        (b'{"events": "view"}', "body.events"),
        (b'{"events": [{"event_id": 7, "type": "view", "timestamp": "2025-01-01", "anonymous_id": "d"}]}',
         "body.events.0.event_id"),
    ],
)
def test_odd_input_is_refused_cleanly(client: TestClient, body: bytes, location: str) -> None:
    response = client.post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["location"] == location
    assert client.app.state.warehouse.pending_events() == 0  # type: ignore[attr-defined]


def test_capture_needs_a_key_with_the_ingest_scope(client: TestClient,
                                                   make_api_key: Callable[..., str]) -> None:
    body = {"events": [ev("e1")]}
    anonymous = client.post("/api/v1/events", json=body, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    read_only = client.post("/api/v1/events", json=body,
                            headers={"Authorization": f"Bearer {make_api_key('read')}"})
    assert read_only.status_code == 403
    assert client.app.state.warehouse.pending_events() == 0  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Durability: the server is killed before it flushed
# ---------------------------------------------------------------------------------------------

SERVER = """
import sys
import uvicorn
from pathlib import Path
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.events import api as events_api
from growthwheel.api import warehouse as warehouse_api

data_dir, port, flush_seconds = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
app = create_app(Settings(data_dir=data_dir), routers=[warehouse_api.router, events_api.router])
app.state.server_address = ("127.0.0.1", port)
app.state.warehouse_options = {"flush_seconds": flush_seconds}
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, flush_seconds: float = 1.0) -> tuple[subprocess.Popen[bytes], str]:
    """The real server in a subprocess (uvicorn on a free port); returns it and its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROWTHWHEEL_")}
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(data_dir), str(port), str(flush_seconds)],
                               env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not start in 30 s")


def sqlite_key(data_dir: Path, *scopes: str) -> str:
    cfg = Settings(data_dir=data_dir, database_url=None)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _ = accounts.create_api_key(session, "tests", scopes, created_by="tests")
    db.engine(cfg).dispose()
    return key


def test_spool_left_by_a_killed_server_is_replayed_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = sqlite_key(data_dir, "ingest")
    process, url = start_server(data_dir, flush_seconds=3600)  # it will never flush by itself
    try:
        headers = {"Authorization": f"Bearer {key}"}
        for start in (0, 100):
            batch = [ev(f"e{i}", customer_id=f"c{i % 7}") for i in range(start, start + 100)]
            response = httpx.post(url + "/api/v1/events", json={"events": batch}, headers=headers, timeout=10)
            assert response.json() == {"accepted": 100, "duplicates": 0}
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    spool = data_dir / wh_owner.SPOOL_DIR
    segments = sorted(spool.glob("*.jsonl"))
    assert sum(s.read_text().count("\n") for s in segments) == 200
    assert (data_dir / wh_owner.SERVER_FILE).exists()  # a crash leaves it; nobody answers behind it
    assert wh_owner.find_server(Settings(data_dir=data_dir), wait=0.5) is None
    # a crash in the middle of an append (never acknowledged): a torn last line
    with open(segments[-1], "ab") as handle:
        handle.write(b'{"event_id":"torn","type":"vi')
    # a segment that was already merged before the crash is merged again: nothing doubles
    (spool / "00000000T000000000000-1-000001.jsonl").write_bytes(segments[0].read_bytes())

    owner = wh_owner.WarehouseOwner(Settings(data_dir=data_dir))
    owner.start()
    try:
        with owner.read() as backend:
            counted = backend.raw_sql("SELECT count(*), count(DISTINCT event_id), "
                                      "count(*) FILTER (WHERE event_id = 'torn') FROM events").fetchall()
        assert counted == [(200, 200, 0)]
        assert owner.pending_events() == 0
        assert list(spool.glob("*.jsonl")) == []
    finally:
        owner.stop()
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone() == (200,)
    finally:
        con.close()


def test_validate_batch_is_pure_and_reports_every_problem() -> None:
    batch = core.validate_batch([ev("a"), ev("a"), ev("b", timestamp="2025-01-01")], SHANGHAI)
    assert batch.accepted == 2
    assert batch.duplicates == 1
    assert batch.rows[1]["occurred_at"] == "2024-12-31 16:00:00+00:00"  # midnight in Shanghai
    with pytest.raises(core.InvalidEventsError) as caught:
        core.validate_batch([ev("a", properties=[1, 2]), ev("", customer_id="x" * 129)], SHANGHAI)
    assert [(p.index, p.field) for p in caught.value.problems] == [
        (0, "properties"), (1, "event_id"), (1, "customer_id"),
    ]
    assert json.loads(json.dumps(batch.rows))  # rows travel as JSON lines
