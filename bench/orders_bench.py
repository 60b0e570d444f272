"""Checkout over HTTP on loopback: cart pricing requests/s and committed orders/s.

A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``, fsync off like the test suite) holds the
operational store (``--store sqlite``: the default SQLite file instead); the real server
(``growthwheel serve [--workers N]``, the production set-up of the README) runs in a subprocess
on 127.0.0.1. The shop has 200 active promotions (item discounts, 满减 tiers, 每满减,
满件折, gifts, member prices, most on a few skus of a 2,400-sku catalogue, some only for a channel
or a tier — a 10-line cart meets a handful of them, as in a real shop) and a shared coupon.
``--clients`` threads (default 50), each with its own keep-alive connection and the API key, send:

1. ``GET /api/v1/health`` — **baseline**: the server's HTTP + auth-free floor in this run;
2. ``POST /api/v1/carts/price`` — a 10-line cart (different customers, lines and quantities);
3. ``POST /api/v1/orders`` — one order per request (re-priced, coupon redeemed on the one shared
   batch row, points earned, growth value, tier evaluation), every 20th a retry of an earlier one
   (same id, same payload: answered from the stored order; the retries sent a different cart under
   the same id before issue 10's fourth pass, a 409 ``order_conflict`` by design, unseen while no
   client reached its 20th order); refusals are printed by status and code;
4. **baseline** for 3: the same order and line rows written by 50 threads straight into
   PostgreSQL with plain ``INSERT`` statements (no pricing, no limits, no HTTP); on SQLite by one
   writer, its single-writer ceiling. One transaction per order (its row and its 10 line rows,
   as the checkout commits them), on the same store with the same durability: the same
   PostgreSQL cluster; on SQLite the server's own settings (WAL, ``synchronous=NORMAL``; before
   issue 10's fourth pass the baseline ran with SQLite's default ``synchronous=FULL``, a sync per
   commit the server does not pay: 275–398 orders/s against 1,800–1,950 with the server's
   settings on the shared machine, which flattered the ratio about 5x).

The baseline is measured twice, before the checkout phases and after them, each once the server
is idle, and the ``RATIO`` is taken against their mean: on the shared machine one baseline moved
by a third from one run to the next (929–2,900 orders/s in four consecutive runs), the slower one
usually after the checkout's writes.

Printed: requests/s of each and the ratios (``RATIO`` line: committed orders/s against the plain
INSERT), the server process's CPU time per request (robust on a shared machine, where wall-clock
rates move with the load), the load average before and after; then a check that the store holds
exactly one order per id and that the coupon batch counted exactly one redemption per order.

``--before`` first runs the same measurements against a server with the settings it had before
issue 10's third pass (no collector freeze): a baseline in the same run. ``--before-src DIR``
first runs them against a server running the code of another source tree (``DIR`` holds the
``growthwheel`` package, e.g. ``git archive <commit> src | tar -x -C /tmp/old`` then
``/tmp/old/src``): the checkout before a change, in the same run.

Usage: ``python bench/orders_bench.py [--clients 50] [--seconds 8] [--workers N] [--store sqlite]
[--before] [--before-src DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CATEGORIES = ("tea", "teaware", "snacks", "gifts", "skincare", "books", "kitchen", "toys")
SKUS = 300
"""Skus per category: most promotions target a few products, so a cart meets a handful of them."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields the SQLAlchemy URL of a fresh database."""
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    candidates = [shutil.which("initdb"), *found]
    initdb = next((c for c in candidates if c), None)
    if initdb is None:
        raise SystemExit("PostgreSQL binaries (initdb, pg_ctl) not found")
    bindir = Path(os.path.realpath(initdb)).parent
    root = Path(tempfile.mkdtemp(prefix="gw-bench-pg-"))
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(root, user="postgres")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    port = free_port()
    data = root / "data"
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--no-sync"], check=True, capture_output=True, env=env)
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off"
               " -c full_page_writes=off -c max_connections=300")
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    options, "start"], check=True, capture_output=True, env=env)
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, env=env, check=False)
        shutil.rmtree(root, ignore_errors=True)


def promotions(rng: random.Random) -> list[dict[str, Any]]:
    """200 promotions of every kind, on a few skus each (every 40th on a whole category), some
    only for the app channel or the gold tier: a 10-line cart meets a handful of them."""
    made: list[dict[str, Any]] = []
    for n in range(200):
        category = CATEGORIES[n % len(CATEGORIES)]
        kind = n % 8
        conditions: dict[str, Any] = (
            {"categories": [category]} if n % 40 == 0  # a few category-wide ones
            else {"skus": sorted({f"{category}-{rng.randrange(SKUS)}" for _ in range(4)})})
        if n % 5 == 1:
            conditions["channels"] = ["app"]
        if n % 7 == 2:
            conditions["tiers"] = ["gold"]
        reward: dict[str, Any]
        if kind == 0:
            reward = {"type": "percent_off", "rate_bp": rng.choice([500, 1000, 1500])}
        elif kind == 1:
            reward = {"type": "amount_off", "amount": rng.choice([200, 500])}
        elif kind == 2:
            reward = {"type": "nth_item", "n": 2, "rate_bp": 5000}
        elif kind == 3:
            reward = {"type": "member_price"}
        elif kind == 4:
            reward = {"type": "spend_tiers", "tiers": [[20000 + 100 * n, 2000], [50000 + 100 * n, 6000]]}
        elif kind == 5:
            reward = {"type": "every_x_off_y", "every": 10000 + 100 * n, "off": 1000, "cap": 5000}
        elif kind == 6:
            reward = {"type": "quantity_tiers", "tiers": [[3, 500], [5, 1000]]}
        else:
            reward = {"type": "gift", "sku": f"gift-{n}", "value": 990}
        made.append({"name": f"promo {n}", "status": "active", "definition": {
            "reward": reward, "conditions": conditions, "exclusive": n % 11 == 0, "priority": n % 3}})
    return made


def cart(rng: random.Random, customer: str) -> dict[str, Any]:
    """A 10-line cart."""
    lines = []
    for i in range(10):
        category = rng.choice(CATEGORIES)
        price = rng.randrange(990, 39900, 10)
        lines.append({"line_id": f"l{i}", "sku": f"{category}-{rng.randrange(SKUS)}", "category": category,
                      "unit_price": price, "quantity": rng.randint(1, 3),
                      "member_prices": {"gold": price * 9 // 10}})
    return {"customer_id": customer, "lines": lines, "coupon_codes": ["BENCH20"], "shipping_fee": 800}


def setup(data_dir: Path, url: str | None) -> str:
    """Migrate, create the API key, the 200 promotions and the shared coupon; returns the key."""
    from growthwheel.accounts import service as accounts
    from growthwheel.config import Settings
    from growthwheel.promotions import coupons, service
    from growthwheel.store import db

    cfg = Settings(data_dir=data_dir, database_url=url)
    db.migrate(cfg)
    rng = random.Random(5)
    with db.session_scope(cfg) as session:
        key, _ = accounts.create_api_key(session, "bench", ["read", "write"], created_by="bench")
        for promo in promotions(rng):
            service.create_promotion(session, name=promo["name"], definition=promo["definition"],
                                     status="active")
        from datetime import UTC, datetime
        coupons.create_batch(
            session, name="bench 满100减20", code_mode="shared", shared_code="BENCH20",
            definition={"reward": {"type": "order_amount_off", "amount": 2000},
                        "conditions": {"min_amount": 10000}},
            valid_from=datetime(2020, 1, 1, tzinfo=UTC), valid_until=datetime(2099, 1, 1, tzinfo=UTC),
            per_customer_limit=1_000_000)  # one client alone may order more than 1,000 times
    db.engine(cfg).dispose()
    return key


def hammer(clients: int, seconds: float, work: Callable[[int, int], bool]) -> tuple[int, int, float]:
    """Run ``work(client, n)`` in ``clients`` threads for ``seconds``; returns (ok, failed, elapsed)."""
    counts = [[0, 0] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def loop(client: int) -> None:
        barrier.wait()
        n = 0
        while not stop.is_set():
            counts[client][0 if work(client, n) else 1] += 1
            n += 1

    threads = [threading.Thread(target=loop, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return sum(c[0] for c in counts), sum(c[1] for c in counts), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=1, help="growthwheel serve --workers N")
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql",
                        help="sqlite: one process; the baseline is one writer's plain INSERTs (its ceiling)")
    parser.add_argument("--before", action="store_true",
                        help="also run the server with its settings before issue 10's third pass (no "
                             "collector freeze), first: a baseline in the same run")
    parser.add_argument("--before-src", type=Path, default=None,
                        help="also run a server on the growthwheel package of this source tree first "
                             "(the code before a change): a baseline in the same run")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # still stop the server and the cluster
    sys.path.insert(0, str(Path(__file__).parent))
    from crowd_bench import BEFORE, start_server, stop_server

    before = {k: v for k, v in BEFORE.items() if not k.endswith("CONCURRENCY")}
    runs: list[dict[str, str]] = [{}]
    if args.before:
        runs.insert(0, before)
    if args.before_src is not None:
        if not (args.before_src / "growthwheel" / "__init__.py").exists():
            raise SystemExit(f"--before-src: no growthwheel package in {args.before_src}")
        runs.insert(0, {"PYTHONPATH": str(args.before_src.resolve())})
    for env in runs:
        print(f"== server {'with ' + str(env) if env else 'as it is now'}; load average {load()}")
        bench_once(args, env, start_server, stop_server)
        print(f"   load average after: {load()}")


def load() -> str:
    """The 1, 5 and 15 minute load averages (the machine may be shared)."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds of the server: its process and every process of its session (``--workers``)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) == pid:
                total += cpu_seconds(int(entry.name))
        except OSError:
            continue
    return total


def bench_once(args: argparse.Namespace, env: dict[str, str], start_server: Callable[..., Any],
               stop_server: Callable[..., Any]) -> None:
    """One fresh shop and server (with ``env`` settings) and the four measurements."""

    data_dir = Path(tempfile.mkdtemp(prefix="gw-bench-orders-"))
    with postgres() if args.store == "postgresql" else contextlib.nullcontext(None) as url:
        key = setup(data_dir, url)
        process, base = start_server(data_dir, url, workers=args.workers, env=env)
        store_url = url or f"sqlite:///{data_dir / 'growthwheel.sqlite'}"
        try:
            run(base, key, store_url, args.clients, args.seconds, args.workers, pid=process.pid)
        finally:
            stop_server(process)
    shutil.rmtree(data_dir, ignore_errors=True)


def run(base: str, key: str, url: str, clients: int, seconds: float, workers: int = 1,
        pid: int | None = None) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    sessions = [httpx.Client(base_url=base, headers=headers, timeout=60) for _ in range(clients)]
    rngs = [random.Random(c) for c in range(clients)]
    store = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"{clients} clients, {seconds:.0f} s per phase, {store}, growthwheel serve --workers {workers}"
          " on loopback")
    sqlite = url.startswith("sqlite")

    def baseline(when: str) -> float:
        """Plain INSERTs once the server is idle (after the checkout it still drains the orders'
        facts into the warehouse for a few seconds, which took CPU from a baseline run at once)."""
        idle = wait_idle(pid)
        rows, insert_cpu = plain_inserts(url, clients, seconds)
        threads = "one writer" if sqlite else f"{clients} threads"
        settings = "WAL, synchronous=NORMAL as the server" if sqlite else "the same cluster as the server"
        print(f"  baseline  plain INSERT {when}, one transaction per order (its row + 10 line rows;"
              f" {threads}; {settings}; server idle after {idle:.1f} s) {rows:8.0f} orders/s"
              f"   client CPU {insert_cpu * 1000:.2f} ms/order")
        return rows

    first = baseline("before the checkout")

    def cpu_per(requests: int, before: float) -> str:
        if pid is None or not requests:
            return ""
        return f"   server CPU {(server_cpu(pid) - before) / requests * 1000:.2f} ms/request"

    started = server_cpu(pid) if pid else 0.0
    ok, bad, took = hammer(clients, seconds,
                           lambda c, n: sessions[c].get("/api/v1/health").status_code == 200)
    health = ok / took
    print(f"  baseline  GET /health           {health:8.0f} req/s   ({ok} ok, {bad} failed)"
          + cpu_per(ok + bad, started))

    carts = [[cart(rngs[c], f"c{c}-{n}") for n in range(50)] for c in range(clients)]
    started = server_cpu(pid) if pid else 0.0
    ok, bad, took = hammer(clients, seconds, lambda c, n: sessions[c].post(
        "/api/v1/carts/price", json=carts[c][n % 50]).status_code == 200)
    price = ok / took
    print(f"  POST /carts/price (10 lines, 200 promotions) {price:8.0f} req/s   ({ok} ok, {bad} failed)"
          f"   = {price / health:.2f} × health" + cpu_per(ok + bad, started))

    sent: set[str] = set()
    refused: Counter[str] = Counter()
    lock = threading.Lock()

    def commit(c: int, n: int) -> bool:
        original = n // 20 * 20 if n % 20 == 19 else n  # every 20th is a retry of an earlier order:
        order_id = f"ord-{c}-{original}"  # the same id and the same payload (another payload is a 409)
        body = {**carts[c][original % 50], "customer_id": f"cust-{c}", "order_id": order_id}
        response = sessions[c].post("/api/v1/orders", json=body)
        with lock:
            sent.add(order_id)
            if response.status_code not in (200, 201):
                refused[f"{response.status_code} {response.json().get('code', '')}".strip()] += 1
        return response.status_code in (200, 201)

    started = server_cpu(pid) if pid else 0.0
    ok, bad, took = hammer(clients, seconds, commit)
    orders = ok / took
    print(f"  POST /orders (commit)          {orders:8.0f} orders/s ({ok} ok incl. retries, {bad} failed)"
          f"   = {orders / health:.2f} × health" + cpu_per(ok + bad, started))
    if refused:
        print(f"            refused: {dict(refused)}")

    after = baseline("after the checkout")
    rows = (first + after) / 2
    print(f"  RATIO     committed checkout orders/s ÷ plain INSERT orders/s = {orders / rows:.3f}"
          f" (aim 0.2; against the mean of the two baselines, {min(first, after):.0f}–"
          f"{max(first, after):.0f})")
    for client in sessions:
        client.close()
    check(url, sent)


def wait_idle(pid: int | None, limit: float = 30.0) -> float:
    """Seconds until the server's processes use under 10 % of a core over half a second (at most
    ``limit``)."""
    if pid is None:
        return 0.0
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        before = server_cpu(pid)
        time.sleep(0.5)
        if server_cpu(pid) - before < 0.05:
            break
    return time.perf_counter() - started


def plain_inserts(url: str, clients: int, seconds: float) -> tuple[float, float]:
    """Orders/s of plain INSERTs of an order row and 10 line rows per transaction (SQLite: one
    writer thread, the single-writer ceiling, with the server's WAL and ``synchronous=NORMAL``;
    PostgreSQL: ``clients`` threads), and this process's CPU seconds per order."""
    import sqlalchemy as sa

    sqlite = url.startswith("sqlite")
    engine = (sa.create_engine(url, connect_args={"timeout": 30}) if sqlite
              else sa.create_engine(url, pool_size=clients, max_overflow=0))
    if sqlite:  # the durability the server runs with (store/db.py), not SQLite's default FULL
        from growthwheel.store.db import _sqlite_pragmas

        sa.event.listen(engine, "connect", _sqlite_pragmas)
    with engine.begin() as conn:
        for plain, table in (("plain_orders", "checkout_orders"), ("plain_lines", "checkout_order_lines")):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {plain}"))  # (measured twice per run)
            conn.execute(sa.text(f"CREATE TABLE {plain} AS SELECT * FROM {table} WHERE 1 = 0" if sqlite
                                 else f"CREATE TABLE {plain} (LIKE {table} INCLUDING ALL)"))
    order_sql = sa.text(
        "INSERT INTO plain_orders (id, customer_id, currency, request_hash, status, subtotal, discount,"
        " shipping, total, points_used, points_earned, growth_earned, refunded_amount, points_returned,"
        " points_clawed, growth_clawed, priced, committed_at) VALUES (:id, 'c', 'CNY', 'h', 'paid', 1, 0,"
        " 0, 1, 0, 0, 0, 0, 0, 0, 0, '{}', CURRENT_TIMESTAMP)")
    line_sql = sa.text(
        "INSERT INTO plain_lines (order_id, line_id, sku, quantity, unit_price, subtotal, discount, paid,"
        " refunded_quantity, refunded_amount) VALUES (:o, :l, 'sku', 1, 1, 1, 0, 1, 0, 0)")
    if sqlite:
        clients = 1

    def insert(c: int, n: int) -> bool:
        with engine.begin() as conn:
            conn.execute(order_sql, {"id": f"p-{c}-{n}"})
            conn.execute(line_sql, [{"o": f"p-{c}-{n}", "l": f"l{i}"} for i in range(10)])
        return True

    cpu = time.process_time()
    ok, _bad, took = hammer(clients, seconds, insert)
    cpu = time.process_time() - cpu
    engine.dispose()
    return ok / took, cpu / max(ok, 1)


def check(url: str, sent: set[str]) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT count(*) FROM checkout_orders")).scalar_one()
        redeemed = conn.execute(sa.text("SELECT used_count FROM coupon_batches")).scalar_one()
        redemptions = conn.execute(sa.text("SELECT count(*) FROM coupon_redemptions")).scalar_one()
        # The coupon is used only by orders it applied to (a cart under its threshold after the
        # promotions, or one whose best combination holds an exclusive promotion, keeps it unused).
        priced = conn.execute(sa.text("SELECT priced FROM checkout_orders")).scalars().all()
    engine.dispose()
    answers = [json.loads(a) if isinstance(a, str) else a for a in priced]
    with_coupon = sum(1 for answer in answers if answer["coupons"])
    status = "OK" if stored == len(sent) and with_coupon == redeemed == redemptions else "MISMATCH"
    print(f"  check: {len(sent)} order ids sent, {stored} orders stored, {with_coupon} with the coupon "
          f"applied, {redemptions} redemptions, batch used_count {redeemed} → {status}")
    if status != "OK":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
