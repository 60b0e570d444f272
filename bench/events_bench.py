"""Event capture over HTTP on loopback: events/s sustained, batch latency, and nothing lost or doubled.

The real server (uvicorn, one worker, ``create_app`` with the events and warehouse routers and the
warehouse owner) runs in a subprocess on 127.0.0.1; a client with a few concurrent connections
sends batches of 100 events with an API key (``ingest`` scope) — a realistic mix of views,
searches, carts, checkouts and purchases, anonymous and identified, with UTM-tagged URLs and
referrers. Every 50th batch is sent a second time, as a client retrying after a lost answer.

Measured: accepted events per second over the whole send, p50 / p99 / max latency per batch, and
how long after the last answer the warehouse holds every event. Then the server is stopped and
the warehouse file opened directly: each event id sent must be there exactly once.

Baseline, measured in the same run: the naive server-side design — each batch inserted straight
into the DuckDB ``events`` table in its own transaction (``executemany``), in process, without
HTTP, validation or durability spool.

Usage: ``python bench/events_bench.py [--events 200000] [--seconds 60] [--connections 4]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

BATCH = 100
TYPES = ("view",) * 12 + ("search",) * 3 + ("add_to_cart",) * 3 + ("checkout", "purchase", "wishlist.add")
SOURCES = (
    "?utm_source=douyin&utm_medium=social&utm_campaign=618_warmup", "?utm_source=baidu&utm_medium=cpc",
    "", "", "", "?utm_source=newsletter&utm_medium=email",
)
REFERRERS = ("https://www.baidu.com/s?wd=%E9%9D%A2%E9%9C%9C", "https://mp.weixin.qq.com/s/x", None, None,
             "https://www.douyin.com/video/1", "https://shop.example.cn/cart")

SERVER = """
import sys
import uvicorn
from pathlib import Path
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.events import api as events_api
from growthwheel.api import warehouse as warehouse_api

data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
app = create_app(Settings(data_dir=data_dir), routers=[warehouse_api.router, events_api.router])
app.state.server_address = ("127.0.0.1", port)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", workers=1, access_log=False)
"""


def make_batches(total: int, seed: int = 7) -> list[bytes]:
    """Request bodies of ``BATCH`` events each; event ids ``e0 … e<total-1>``."""
    rng = random.Random(seed)
    bodies = []
    for start in range(0, total, BATCH):
        events = []
        for i in range(start, min(start + BATCH, total)):
            device = f"dev-{rng.randrange(total // 20 + 1)}"
            kind = rng.choice(TYPES)
            event: dict[str, Any] = {
                "event_id": f"e{i}", "type": kind,
                "timestamp": f"2025-06-{1 + rng.randrange(28):02d}T{rng.randrange(24):02d}:"
                             f"{rng.randrange(60):02d}:{rng.randrange(60):02d}+08:00",
                "anonymous_id": device, "session_id": f"{device}-s{rng.randrange(5)}",
                "url": f"https://shop.example.cn/p/sku-{rng.randrange(500)}{rng.choice(SOURCES)}",
                "sku": f"sku-{rng.randrange(500)}",
            }
            referrer = rng.choice(REFERRERS)
            if referrer:
                event["referrer"] = referrer
            if kind in ("checkout", "purchase") or rng.random() < 0.2:
                event["customer_id"] = f"c{rng.randrange(total // 50 + 1)}"
            if kind == "purchase":
                event["order_id"] = f"o{i}"
                event["properties"] = {"total": f"{rng.randrange(1000, 99999) / 100:.2f}", "items": 2}
            elif kind == "search":
                event["properties"] = {"query": rng.choice(["面霜", "防晒", "rice cooker"])}
            events.append(event)
        bodies.append(json.dumps({"events": events}, ensure_ascii=False).encode("utf-8"))
    return bodies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_key(data_dir: Path) -> str:
    from growthwheel.accounts import service
    from growthwheel.config import Settings
    from growthwheel.store import db

    cfg = Settings(data_dir=data_dir, database_url=None)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _ = service.create_api_key(session, "bench", ["ingest", "read"], created_by="bench")
    db.engine(cfg).dispose()
    return key


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROWTHWHEEL_")}
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(data_dir), str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


async def send(url: str, key: str, bodies: list[bytes], connections: int, seconds: float
               ) -> tuple[int, int, list[float], float]:
    """Send every body (every 50th twice) over ``connections`` connections, until done or
    ``seconds`` pass; returns (events accepted, batches sent, latencies, elapsed)."""
    order = list(range(len(bodies))) + list(range(0, len(bodies), 50))  # resends last
    next_index = 0
    accepted = 0
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index, accepted
        while next_index < len(order) and time.perf_counter() < deadline:
            index = order[next_index]
            next_index += 1
            began = time.perf_counter()
            response = await client.post("/api/v1/events", content=bodies[index])
            latencies.append(time.perf_counter() - began)
            if response.status_code != 202:
                raise SystemExit(f"batch {index}: {response.status_code} {response.text[:300]}")
            accepted += int(response.json()["accepted"])

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return accepted, next_index, latencies, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_warehouse(url: str, key: str, expected: int, timeout: float = 120) -> float:
    """Seconds until the warehouse holds ``expected`` events and nothing is pending."""
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        while time.perf_counter() - started < timeout:
            counts = client.get("/api/v1/warehouse/counts").json()
            if counts["events_pending"] == 0 and counts["tables"]["events"] >= expected:
                return time.perf_counter() - started
            time.sleep(0.05)
    raise SystemExit(f"the warehouse did not reach {expected} events in {timeout} s")


def naive_baseline(bodies: list[bytes], folder: Path, batches: int = 100) -> float:
    """Events/s of inserting each batch into DuckDB in its own transaction (in process)."""
    from growthwheel.warehouse.schema import EVENTS, ddl

    con = duckdb.connect(str(folder / "naive.duckdb"))
    con.execute(ddl("events", EVENTS.stored))
    names = [c.name for c in EVENTS.stored]
    marks = ", ".join("?" for _ in names)
    inserted = 0
    started = time.perf_counter()
    for body in bodies[:batches]:
        events = json.loads(body)["events"]
        values = [[e.get("event_id"), e.get("type"), e.get("timestamp")[:19].replace("T", " "),
                   e.get("timestamp")[:10], *(e.get(n) for n in names[4:-1]),
                   json.dumps(e["properties"]) if "properties" in e else None] for e in events]
        con.execute("BEGIN")
        con.executemany(f"INSERT INTO events ({', '.join(names)}) VALUES ({marks})", values)
        con.execute("COMMIT")
        inserted += len(values)
    elapsed = time.perf_counter() - started
    con.close()
    return inserted / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="stop sending after this long")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="gw-events-bench-"))
    data_dir = folder / "data"
    print(f"preparing {args.events:,} events in batches of {BATCH} …", flush=True)
    bodies = make_batches(args.events)
    key = api_key(data_dir)
    process, url = start_server(data_dir)
    try:
        server_cpu = cpu_seconds(process.pid)
        client_cpu = time.process_time()
        accepted, sent, latencies, elapsed = asyncio.run(
            send(url, key, bodies, args.connections, args.seconds)
        )
        server_cpu = cpu_seconds(process.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
        resent = max(0, sent - len(bodies))
        unique = min(sent, len(bodies)) * BATCH
        unique = min(unique, args.events)
        lag = wait_for_warehouse(url, key, unique)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)

    def one(sql: str) -> int:
        found = con.execute(sql).fetchone()
        return int(found[0]) if found else -1

    try:
        con.execute("CREATE TEMP TABLE sent_ids AS SELECT 'e' || range AS event_id FROM range(?)", [unique])
        total = one("SELECT count(*) FROM events")
        distinct = one("SELECT count(DISTINCT event_id) FROM events")
        missing = one("SELECT count(*) FROM sent_ids s ANTI JOIN events e USING (event_id)")
        extra = one("SELECT count(*) FROM events e ANTI JOIN sent_ids s USING (event_id)")
        flushes = one("SELECT count(*) FROM _imports WHERE table_name = 'events'")
        quarantined = one("SELECT count(*) FROM _quarantine")
    finally:
        con.close()
    baseline = naive_baseline(bodies, folder)

    rate = accepted / elapsed
    ms = sorted(x * 1000 for x in latencies)
    p50, p99 = statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    per_batch = server_cpu / max(sent, 1) * 1000
    print(f"\nserver: uvicorn, 1 worker, loopback; client: {args.connections} connections, "
          f"batches of {BATCH}; {os.cpu_count()} CPUs")
    print(f"sent        {sent:,} batches ({resent} re-sent) in {elapsed:.1f} s")
    print(f"accepted    {accepted:,} events → {rate:,.0f} events/s sustained")
    print(f"latency     p50 {p50:.1f} ms · p99 {p99:.1f} ms · max {ms[-1]:.1f} ms per batch")
    print(f"cpu         server {server_cpu:.1f} s ({server_cpu / elapsed:.0%} of a core, "
          f"{per_batch:.1f} ms per batch incl. flushes) · client {client_cpu:.1f} s")
    print(f"warehouse   all events in {lag:.2f} s after the last answer, through {flushes} flushes; "
          f"quarantined {quarantined}")
    print(f"check       {total:,} rows, {distinct:,} distinct ids for {unique:,} distinct sent: "
          f"missing {missing}, unexpected {extra}, doubled {total - distinct}")
    print(f"baseline    naive per-batch DuckDB INSERT in process: {baseline:,.0f} events/s "
          f"→ HTTP capture is {rate / baseline:.1f}x")
    ok = total == distinct == unique and missing == 0 and extra == 0
    print("result      " + ("OK: none lost, none doubled" if ok else "FAILED"))
    if args.keep:
        print(f"data kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
