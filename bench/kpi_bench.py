"""Benchmark: the full KPI catalogue at 1M customers / 3.5M orders / 10M order lines.

Generates a synthetic shop with DuckDB SQL straight into a temporary DuckDB file with the stored
warehouse schema (deterministic: pseudo-random numbers come from ``hash``), then times, each in its
own subprocess so that peak memory (max RSS, which includes DuckDB's native memory) is measured
separately:

* ``kpi_frame`` by month, by day, by month × channel and by month × category (every metric);
* the baseline: monthly GMV / orders / buyers / AOV in pandas over the paid orders loaded into
  memory (loading time reported separately).

Prints the numbers and the ratio catalogue time / pandas time. Usage::

    python bench/kpi_bench.py [--customers 1000000] [--orders 3500000] [--lines 10000000]
                              [--events 5000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from growthwheel.warehouse import schema

CHANNELS = ["douyin", "baidu", "wechat", "xiaohongshu", "newsletter", "direct", "kol", "search"]
PAID_CHANNELS = ["douyin", "baidu", "wechat", "xiaohongshu", "kol", "search"]
CATEGORIES = 30
PRODUCTS = 2000
DAYS = 730


def generate(path: Path, customers: int, orders: int, lines: int, events: int) -> float:
    """Write the synthetic shop into a new DuckDB file; return the seconds it took."""
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    for table in schema.TABLES.values():
        con.execute(schema.ddl(table.name, table.stored))
    # u(i, salt): a deterministic uniform number in [0, 1).
    con.execute("CREATE MACRO u(i, salt) AS (hash(i, salt) % 1000003)::DOUBLE / 1000003")
    channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
    con.execute(f"""
        INSERT INTO customers BY NAME
        SELECT 'C' || i AS customer_id,
               TIMESTAMP '2022-06-01' + to_seconds((u(i, 's') * 900 * 86400)::BIGINT) AS signed_up_at,
               {channels}[1 + (hash(i, 'ch') % 8)::INT] AS channel
        FROM range({customers}) t(i)
    """)
    con.execute(f"""
        INSERT INTO products BY NAME
        SELECT 'SKU' || i AS sku, 'Product ' || i AS name, 'Category ' || (i % {CATEGORIES}) AS category,
               (990 + (hash(i, 'p') % 50000))::BIGINT AS price,
               CASE WHEN i % 50 = 0 THEN NULL
                    ELSE ((990 + (hash(i, 'p') % 50000)) * (0.3 + 0.4 * u(i, 'c')))::BIGINT END AS cost,
               'CNY' AS currency
        FROM range({PRODUCTS}) t(i)
    """)
    # Order attributes (a temp table), then lines, then orders as the sums of their lines.
    con.execute(f"""
        CREATE TEMP TABLE o AS
        SELECT i AS o,
               'C' || (({customers} - 1) * pow(u(i, 'cust'), 1.7))::BIGINT AS customer_id,
               TIMESTAMP '2023-01-01' + to_seconds((u(i, 't') * {DAYS} * 86400)::BIGINT) AS ordered_at,
               CASE WHEN u(i, 'st') < 0.03 THEN 'cancelled' WHEN u(i, 'st') < 0.05 THEN 'pending'
                    WHEN u(i, 'st') < 0.08 THEN 'refunded'
                    WHEN u(i, 'st') < 0.12 THEN 'partially_refunded'
                    WHEN u(i, 'st') < 0.50 THEN 'completed' ELSE 'paid' END AS status,
               {channels}[1 + (hash(i, 'och') % 8)::INT] AS channel
        FROM range({orders}) t(i)
    """)
    con.execute(f"""
        INSERT INTO order_lines BY NAME
        WITH l AS (
            SELECT i, (i * {orders} // {lines})::BIGINT AS o,
                   (hash(i, 'sku') % {PRODUCTS})::BIGINT AS p, 1 + (hash(i, 'q') % 3)::BIGINT AS qty
            FROM range({lines}) t(i)
        ), priced AS (
            SELECT l.*, p.price, p.category AS p_category, o.status,
                   CASE WHEN u(l.i, 'd') < 0.3 THEN (p.price * l.qty // 10) ELSE 0 END AS discount
            FROM l JOIN products p ON p.sku = 'SKU' || l.p JOIN o ON o.o = l.o
        )
        SELECT 'O' || o AS order_id,
               -- the lines of an order are consecutive: its first line is ceil(o * lines / orders)
               i - (o * {lines} + {orders} - 1) // {orders} + 1 AS line_no,
               'SKU' || p AS sku, 'Product ' || p AS product_name,
               CASE WHEN u(i, 'cat') < 0.2 THEN NULL ELSE p_category END AS category,
               qty AS quantity, price AS unit_price, discount AS discount_amount,
               price * qty - discount AS line_total,
               CASE WHEN status = 'refunded' THEN price * qty - discount
                    WHEN status = 'partially_refunded' AND u(i, 'r') < 0.5 THEN price * qty - discount
                    ELSE 0 END AS refunded_amount
        FROM priced
    """)
    con.execute("""
        INSERT INTO orders BY NAME
        SELECT 'O' || o.o AS order_id, o.customer_id, o.ordered_at,
               CAST(o.ordered_at + INTERVAL 8 HOUR AS DATE) AS order_date, o.ordered_at AS paid_at,
               o.status, 'CNY' AS currency, o.channel, o.channel AS utm_source,
               s.items AS item_count, s.gross AS gross_amount, s.discount AS discount_amount,
               s.total AS total_amount, 800 AS shipping_amount, s.refunded AS refunded_amount
        FROM o JOIN (
            SELECT order_id, sum(quantity) AS items, sum(unit_price * quantity) AS gross,
                   sum(discount_amount) AS discount, sum(line_total) AS total,
                   sum(refunded_amount) AS refunded
            FROM order_lines GROUP BY order_id
        ) s ON s.order_id = 'O' || o.o
    """)
    # Events: sessions of 3 events; about one session in eight ends with a purchase.
    con.execute(f"""
        INSERT INTO events BY NAME
        WITH e AS (
            SELECT i, i // 3 AS s, i % 3 AS step,
                   TIMESTAMP '2023-01-01' + to_seconds((u(i // 3, 'st') * {DAYS} * 86400)::BIGINT
                                                       + (i % 3) * 60) AS ts
            FROM range({events}) t(i)
        )
        SELECT 'E' || i AS event_id,
               CASE WHEN step = 0 THEN 'view' WHEN step = 1 THEN 'add_to_cart'
                    WHEN u(s, 'buy') < 0.125 THEN 'purchase' ELSE 'view' END AS type,
               ts AS occurred_at, CAST(ts + INTERVAL 8 HOUR AS DATE) AS event_date,
               CASE WHEN u(s, 'known') < 0.5 THEN 'C' || (hash(s, 'who') % {customers}) END
                   AS customer_id,
               'A' || (hash(s, 'anon') % {customers * 2}) AS anonymous_id,
               CASE WHEN u(s, 'sid') < 0.9 THEN 'S' || s END AS session_id
        FROM e
    """)
    paid = "[" + ", ".join(f"'{c}'" for c in PAID_CHANNELS) + "]"
    con.execute(f"""
        INSERT INTO ad_spend BY NAME
        SELECT DATE '2023-01-01' + d::INTEGER AS date, {paid}[1 + c] AS channel,
               'campaign-' || k AS utm_campaign,
               (20000 + hash(d, c, k) % 500000)::BIGINT AS spend
        FROM range({DAYS}) a(d), range({len(PAID_CHANNELS)}) b(c), range(4) k(k)
    """)
    con.execute("DROP TABLE o")
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Measured steps (each runs in a fresh subprocess)
# ---------------------------------------------------------------------------------------------


def _max_rss_mb() -> float:
    """Peak resident memory of this process in MiB, DuckDB's native memory included.

    Linux's ``VmHWM`` belongs to this process image; ``ru_maxrss`` is a fallback only, because it
    carries over the parent's peak across fork and exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def step_kpi(db: str, by: str, dimension: str | None) -> dict[str, Any]:
    """Time the full catalogue on a read-only connection."""
    import ibis

    from growthwheel.insight.kpis import kpi_frame

    raw = duckdb.connect(db, read_only=True)
    raw.execute("SET TimeZone = 'UTC'")
    con = ibis.duckdb.from_connection(raw)
    started, cpu = time.perf_counter(), time.process_time()
    df = kpi_frame(con, by=by, dimension=dimension)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    monthly_gmv = {}
    if by == "month" and dimension is None:
        monthly_gmv = {r["period"].isoformat(): str(r["gmv"]) for r in df.to_dict("records")}
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": len(df), "max_rss_mb": _max_rss_mb(),
            "monthly_gmv": monthly_gmv}


def step_pandas(db: str) -> dict[str, Any]:
    """Baseline: monthly GMV, orders, buyers and AOV in pandas over the paid orders in memory."""
    import pandas as pd

    raw = duckdb.connect(db, read_only=True)
    started = time.perf_counter()
    orders = raw.execute(
        "SELECT order_id, customer_id, order_date, status, total_amount FROM orders"
    ).df()
    loaded = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    paid = orders[orders["status"].isin(schema.PAID_STATUSES)]
    month = pd.to_datetime(paid["order_date"]).dt.to_period("M")
    grouped = paid.groupby(month).agg(
        gmv=("total_amount", "sum"), orders=("order_id", "count"),
        buyers=("customer_id", "nunique"),
    )
    grouped["aov"] = grouped["gmv"] / grouped["orders"]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    gmv = {str(p.start_time.date()): f"{v / 100:.2f}" for p, v in grouped["gmv"].items()}
    return {"seconds": seconds, "cpu_seconds": cpu, "load_seconds": loaded, "rows": len(grouped),
            "max_rss_mb": _max_rss_mb(), "monthly_gmv": gmv}


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_step(db: Path, *args: str) -> dict[str, Any]:
    """Run one step in a subprocess and return its JSON report."""
    out = subprocess.run(
        [sys.executable, __file__, "--step", *args, "--db", str(db)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Generate the data, run every step, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=3_500_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--keep", type=Path, help="keep the generated DuckDB file in this directory")
    parser.add_argument("--reuse", type=Path, help="use an already generated DuckDB file")
    parser.add_argument("--only-month", action="store_true",
                        help="time the catalogue by month and the baseline only (large sizes)")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step:
        kind = args.step[0]
        if kind == "pandas":
            result = step_pandas(args.db)
        else:
            dimension = args.step[2] if len(args.step) > 2 else None
            result = step_kpi(args.db, args.step[1], dimension)
        print(json.dumps(result))
        return

    workdir = Path(tempfile.mkdtemp(prefix="gw-kpi-bench-"))
    try:
        if args.reuse:
            db = args.reuse
            print(f"using {db}")
        else:
            db = (args.keep or workdir) / "warehouse.duckdb"
            db.parent.mkdir(parents=True, exist_ok=True)
            db.unlink(missing_ok=True)
            print(f"generating {args.customers:,} customers, {args.orders:,} orders, "
                  f"{args.lines:,} lines, {args.events:,} events ...", flush=True)
            gen = generate(db, args.customers, args.orders, args.lines, args.events)
            print(f"  generated in {gen:.1f} s ({db.stat().st_size / 2**20:.0f} MiB)")

        steps = [("kpi", "month"), ("kpi", "day"), ("kpi", "month", "channel"),
                 ("kpi", "month", "category"), ("pandas",)]
        if args.only_month:
            steps = [("kpi", "month"), ("pandas",)]
        results: dict[tuple[str, ...], dict[str, Any]] = {}
        print(f"\n{'step':<34}{'seconds':>9}{'CPU s':>9}{'rows':>8}{'peak RSS MiB':>14}"
              f"   load average", flush=True)
        for step in steps:
            results[step] = run_step(db, *step)
            r = results[step]
            label = "pandas monthly GMV/orders/buyers/AOV" if step[0] == "pandas" else (
                "kpi_frame by " + " x ".join(step[1:]))
            print(f"{label:<34}{r['seconds']:>9.2f}{r['cpu_seconds']:>9.2f}{r['rows']:>8}"
                  f"{r['max_rss_mb']:>14.0f}   {_load()}", flush=True)

        base = results[("pandas",)]
        month = results[("kpi", "month")]
        total = sum(r["seconds"] for k, r in results.items() if k[0] == "kpi")
        print(f"\npandas load of the orders into memory: {base['load_seconds']:.2f} s "
              f"(not counted in its time)")
        with_load = base["seconds"] + base["load_seconds"]
        print(f"full catalogue by month: {month['seconds']:.2f} s = "
              f"{month['seconds'] / base['seconds']:.2f}x pandas computing 4 of its 17 metrics "
              f"({base['seconds']:.2f} s), {month['seconds'] / with_load:.2f}x pandas including "
              f"its load")
        runs = sum(1 for k in results if k[0] == "kpi")
        print(f"all {runs} catalogue runs: {total:.2f} s (aim: one run under 30 s)")
        print(f"CPU time (all threads; what a busy machine does not inflate): catalogue by month "
              f"{month['cpu_seconds']:.2f} s = {month['cpu_seconds'] / base['cpu_seconds']:.2f}x "
              f"pandas ({base['cpu_seconds']:.2f} s); on an idle machine the wall time is at least "
              f"CPU / cores")
        agree = month["monthly_gmv"] == base["monthly_gmv"]
        print(f"monthly GMV identical to the pandas baseline: {agree}")
        if not agree:
            sys.exit("monthly GMV differs from the pandas baseline")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
