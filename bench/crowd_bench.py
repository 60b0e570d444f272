"""A crowd at the checkout: 200 simultaneous clients over HTTP on loopback, on SQLite and PostgreSQL.

The real server (``growthwheel serve``, a subprocess on 127.0.0.1) runs on a fresh data directory.
Each wave releases its clients together (a barrier); each client is a thread with its own
keep-alive connection and sends one ``POST /api/v1/orders``. A client that gets 503 waits what
``Retry-After`` says and sends the same order again (as a shop's checkout would), so limits can be
checked exactly. Meanwhile one client polls ``GET /api/v1/health`` every 20 ms.

Waves (the shop: a flash sale of 10 units at 1.00, a shared coupon with 50 uses, a 满减 promotion):

1. **flash + plain**: 60 buyers of the flash sale (each confirms the flash price with
   ``expected_total``) and 140 plain orders for distinct customers — 200 clients;
2. **coupon**: 200 orders on the one shared coupon with 50 uses.

Printed per store: answers by status, 503 retries, elapsed, orders/s, and the ``/health`` p50/p99
during the crowd **against the baseline** ``/health`` p50/p99 measured on the idle server in the
same run; then the checks (zero 5xx after retries, nothing unanswered, exactly 10 flash orders,
exactly 50 coupon redemptions, all 140 plain orders). Exit status 1 when a check fails.

The crowd driver (``setup_shop``, ``start_server``, ``run_wave``) is shared with
``tests/platform/test_crowd.py``.

Usage: ``python bench/crowd_bench.py [--clients 200] [--store sqlite|postgresql|both] [--workers N]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

FLASH_SKU = "FLASH-1"
FLASH_PRICE = 100
COUPON = "CROWD50"
COUPON_USES = 50
FLASH_STOCK = 10


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup_shop(data_dir: Path, database_url: str | None) -> str:
    """Migrate the store and create the API key, the flash sale, a 满减 promotion and the shared
    coupon; returns the key."""
    from growthwheel.accounts import service as accounts
    from growthwheel.config import Settings
    from growthwheel.promotions import coupons, service
    from growthwheel.store import db

    cfg = Settings(data_dir=data_dir, database_url=database_url)
    db.migrate(cfg)
    with db.session_scope(cfg) as session:
        key, _ = accounts.create_api_key(session, "crowd", ["read", "write"], created_by="crowd")
        service.create_promotion(
            session, name="秒杀", status="active", stock=FLASH_STOCK,
            definition={"reward": {"type": "flash_sale", "price": FLASH_PRICE},
                        "conditions": {"skus": [FLASH_SKU]}})
        service.create_promotion(
            session, name="满200减20", status="active",
            definition={"reward": {"type": "spend_tiers", "tiers": [[20000, 2000]]}})
        coupons.create_batch(
            session, name="满100减10", code_mode="shared", shared_code=COUPON, budget_count=COUPON_USES,
            definition={"reward": {"type": "order_amount_off", "amount": 1000},
                        "conditions": {"min_amount": 10000}},
            valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_until=datetime(2099, 1, 1, tzinfo=UTC),
            per_customer_limit=1000)
    db.engine(cfg).dispose()
    return key


def start_server(
    data_dir: Path, database_url: str | None, *, workers: int = 1, env: dict[str, str] | None = None,
    timeout: float = 90.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``growthwheel serve`` on a free loopback port; returns the process and its base URL."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GROWTHWHEEL_")}
    if database_url:
        clean["GROWTHWHEEL_DATABASE_URL"] = database_url
    clean.update(env or {})
    args = [sys.executable, "-c", "from growthwheel.cli.main import main; main()",
            "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers != 1:
        args += ["--workers", str(workers)]
    process = subprocess.Popen(args, env=clean, stdout=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:  # with several processes, also wait for the one owning the warehouse to announce itself
            if (httpx.get(base + "/api/v1/health", timeout=1).status_code == 200
                    and (workers == 1 or (data_dir / "server.json").exists())):
                return process, base
            time.sleep(0.2)
        except httpx.TransportError:
            time.sleep(0.2)
    stop_server(process)
    raise RuntimeError("the server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop the server (and its worker processes) started by :func:`start_server`."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def line(line_id: str, sku: str, unit_price: int, quantity: int = 1) -> dict[str, Any]:
    """A cart line."""
    return {"line_id": line_id, "sku": sku, "unit_price": unit_price, "quantity": quantity}


def flash_order(n: int) -> dict[str, Any]:
    """One unit of the flash sale at the confirmed flash price."""
    return {"order_id": f"flash-{n}", "customer_id": f"fc{n}", "lines": [line("A", FLASH_SKU, 19900)],
            "expected_total": FLASH_PRICE}


def plain_order(n: int) -> dict[str, Any]:
    """Two lines, over the 满减 threshold, for a customer of its own."""
    return {"order_id": f"plain-{n}", "customer_id": f"pc{n}",
            "lines": [line("A", f"TEA-{n % 7}", 15000), line("B", f"CUP-{n % 5}", 8000, 2)]}


def coupon_order(n: int) -> dict[str, Any]:
    """An order on the shared coupon."""
    return {"order_id": f"coupon-{n}", "customer_id": f"cc{n}", "lines": [line("A", "TEA-1", 12000)],
            "coupon_codes": [COUPON]}


@dataclass
class Answer:
    """What one client finally got: status and problem code; the 503s it was told to retry after."""

    status: int  # 0: no answer (connection error or timeout)
    code: str | None
    retried: int = 0
    error: str | None = None


@dataclass
class Wave:
    """The outcome of one wave."""

    answers: list[Answer]
    elapsed: float
    health_ms: list[float] = field(default_factory=list)
    health_failed: int = 0

    def by_outcome(self) -> Counter[str]:
        """``"201"`` or ``"409 coupon_used_up"``-style keys counted."""
        return Counter(f"{a.status}" + (f" {a.code}" if a.code and a.status >= 400 else "")
                       for a in self.answers)

    def server_errors(self) -> list[Answer]:
        """Final answers that are 5xx, or none at all."""
        return [a for a in self.answers if a.status == 0 or a.status >= 500]

    @property
    def retries(self) -> int:
        """503 answers that clients retried."""
        return sum(a.retried for a in self.answers)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def poll_health(base: str, stop: Any, every: float = 0.02) -> tuple[list[float], int]:
    """``GET /api/v1/health`` every ``every`` seconds until ``stop``; latencies (ms) and failures."""
    latencies: list[float] = []
    failed = 0
    with httpx.Client(base_url=base, timeout=10) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = client.get("/api/v1/health").status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                failed += 1
            stop.wait(every)
    return latencies, failed


def _poll_into(base: str, stop: Any, pipe: Any) -> None:
    """:func:`poll_health` in a child process; sends (latencies, failures) back through ``pipe``."""
    pipe.send(poll_health(base, stop))
    pipe.close()


def run_wave(base: str, key: str, bodies: list[dict[str, Any]], *, deadline: float = 120.0,
             request_timeout: float = 60.0) -> Wave:
    """Send every body at once (a thread and connection each) while polling ``/health``.

    A 503 is retried after its ``Retry-After`` (a 503 without it counts as final); nothing is
    sent after ``deadline`` seconds, and a request unanswered within ``request_timeout`` counts
    as no answer (status 0).
    """
    headers = {"Authorization": f"Bearer {key}"}
    answers: list[Answer] = [Answer(0, None) for _ in bodies]
    barrier = threading.Barrier(len(bodies) + 1)
    ends = time.monotonic() + deadline

    def client(index: int, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=request_timeout) as http:
            barrier.wait()
            retried = 0
            while True:
                try:
                    response = http.post("/api/v1/orders", json=body)
                except httpx.HTTPError as exc:
                    answers[index] = Answer(0, None, retried, f"{type(exc).__name__}: {exc}")
                    return
                code = None
                if response.headers.get("content-type", "").startswith("application/problem+json"):
                    code = response.json().get("code")
                after = response.headers.get("retry-after")
                if response.status_code == 503 and after is not None and time.monotonic() < ends:
                    retried += 1
                    time.sleep(min(float(after), 5.0))
                    continue
                answers[index] = Answer(response.status_code, code, retried)
                return

    # /health is polled from a process of its own: the 200 client threads of this one would
    # otherwise delay the poller's own reading of the answers (the GIL) and inflate its latencies.
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    parent, child = context.Pipe(duplex=False)
    watcher = context.Process(target=_poll_into, args=(base, stop, child), daemon=True)
    watcher.start()
    threads = [threading.Thread(target=client, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=max(0.0, ends - time.monotonic()) + request_timeout)
    elapsed = time.perf_counter() - started
    stop.set()
    health: dict[str, Any] = {}
    if parent.poll(30):
        health["ms"], health["failed"] = parent.recv()
    watcher.join(timeout=10)
    return Wave(answers, elapsed, health.get("ms", []), health.get("failed", 0))


def baseline_health(base: str, seconds: float = 2.0) -> list[float]:
    """``/health`` latencies (ms) on the idle server: the baseline of the crowd's p99."""
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    latencies, _failed = poll_health(base, stop)
    return latencies


def crowd_waves(base: str, key: str, clients: int = 200) -> tuple[Wave, Wave]:
    """Wave 1: 60 flash buyers + plain orders (``clients`` in all); wave 2: ``clients`` coupon orders."""
    first = run_wave(base, key, [flash_order(n) for n in range(60)]
                     + [plain_order(n) for n in range(clients - 60)])
    second = run_wave(base, key, [coupon_order(n) for n in range(clients)])
    return first, second


def store_counts(data_dir: Path, database_url: str | None) -> dict[str, int]:
    """Flash-sale stock used, coupon uses and redemptions, orders by kind, read from the store."""
    import sqlalchemy as sa

    from growthwheel.config import Settings
    from growthwheel.store import db

    engine = db.engine(Settings(data_dir=data_dir, database_url=database_url))
    with engine.connect() as conn:
        def one(sql: str) -> int:
            return int(conn.execute(sa.text(sql)).scalar_one())

        counts = {
            "flash_stock_used": one("SELECT stock_used FROM promotions WHERE stock_limit IS NOT NULL"),
            "coupon_used": one("SELECT used_count FROM coupon_batches"),
            "redemptions": one("SELECT count(*) FROM coupon_redemptions"),
            "flash_orders": one("SELECT count(*) FROM checkout_orders WHERE id LIKE 'flash-%'"),
            "plain_orders": one("SELECT count(*) FROM checkout_orders WHERE id LIKE 'plain-%'"),
            "coupon_orders": one("SELECT count(*) FROM checkout_orders WHERE id LIKE 'coupon-%'"),
        }
    engine.dispose()
    return counts


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def bench_store(store: str, url: str | None, clients: int, workers: int, env: dict[str, str]) -> bool:
    """Run both waves on one store; print the figures; ``True`` when every check holds."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"gw-crowd-{store}-"))
    try:
        key = setup_shop(data_dir, url)
        process, base = start_server(data_dir, url, workers=workers, env=env)
        try:
            idle = baseline_health(base)
            first, second = crowd_waves(base, key, clients)
        finally:
            stop_server(process)
        counts = store_counts(data_dir, url)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    base_p50, base_p99 = percentile(idle, 0.5), percentile(idle, 0.99)
    print(f"{store}: {clients} clients, serve --workers {workers} {env or ''}")
    print(f"  idle /health p50 {base_p50:.1f} ms, p99 {base_p99:.1f} ms (baseline)")
    good = True
    for name, wave in (("flash+plain", first), ("coupon", second)):
        p50, p99 = percentile(wave.health_ms, 0.5), percentile(wave.health_ms, 0.99)
        bad = wave.server_errors()
        good &= not bad and wave.health_failed == 0 and p99 < 200
        print(f"  {name:11s} {dict(sorted(wave.by_outcome().items()))}  503 retried: {wave.retries}"
              f"  {wave.elapsed:5.1f} s = {len(wave.answers) / wave.elapsed:5.1f} answers/s")
        print(f"  {'':11s} /health during the crowd: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
              f" = {p99 / base_p99:.1f}x idle p99 ({len(wave.health_ms)} polls, {wave.health_failed} failed)")
    expected = {"flash_stock_used": FLASH_STOCK, "flash_orders": FLASH_STOCK, "coupon_used": COUPON_USES,
                "redemptions": COUPON_USES, "coupon_orders": COUPON_USES, "plain_orders": clients - 60}
    exact = counts == expected
    good &= exact
    print(f"  store: {counts} → {'exact' if exact else 'MISMATCH, expected ' + str(expected)}")
    print(f"  → {'OK' if good else 'FAILED'} (zero 5xx, all answered, exact limits, /health p99 < 200 ms)")
    return good


#: The server's settings before issue 10's third pass, for ``--before``.
BEFORE = {"GROWTHWHEEL_SERVER__GC_TUNING": "false", "GROWTHWHEEL_SERVER__CONCURRENCY": "32"}


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers (PostgreSQL only)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="GROWTHWHEEL_SERVER__CONCURRENCY for the server (default: the setting's)")
    parser.add_argument("--before", action="store_true",
                        help="first run each store with the server settings before issue 10's third pass "
                             "(no collector freeze, concurrency 32): a baseline in the same run")
    args = parser.parse_args()
    env = {} if args.concurrency is None else {"GROWTHWHEEL_SERVER__CONCURRENCY": str(args.concurrency)}
    runs = [(BEFORE, True), (env, False)] if args.before else [(env, False)]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ok = True
    for settings, baseline in runs:
        if args.store in ("sqlite", "both"):
            good = bench_store("sqlite", None, args.clients, 1, settings)
            ok &= good or baseline
        if args.store in ("postgresql", "both"):
            sys.path.insert(0, str(Path(__file__).parent))
            from orders_bench import postgres

            with postgres() as url:
                good = bench_store("postgresql", url, args.clients, args.workers, settings)
                ok &= good or baseline
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
