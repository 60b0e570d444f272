"""Benchmark: refreshing a saved segment with three conditions over 1M customers.

Generates a synthetic shop with DuckDB SQL straight into a data directory with the stored warehouse
schema (deterministic: pseudo-random numbers come from ``hash``): customers, 200 products in 20
categories, orders with their lines over one year, behaviour events. Events and orders are stored
in time order, as a real shop's are: its exports are chronological, the server flushes what it
captured, and every import appends its new events and orders sorted by time
(``warehouse.ingest_merge.TIME_ORDER``), so DuckDB's min/max per row group lets the 30- and 90-day
windows skip the older rows (data generated before this, in random order, can be sorted once with
``--sort-by-time``). Then, through the real service
path (operational store in SQLite, warehouse in DuckDB):

* saves the segment "category 3 buyers (90 days) who viewed at least twice in the last 30 days and
  came from douyin, xiaohongshu or wechat";
* refreshes it as of 2025-06-23 (everyone enters) and again as of 2025-06-30 (a diff: some enter,
  some leave), each in one transaction, and times both;
* times a preview (count + sample of 20) of the same definition;
* baseline: the same membership in pandas over the needed columns loaded into memory (loading
  timed separately), checked to give exactly the same customers.

Prints the numbers and the ratio refresh / pandas. Usage::

    python bench/segment_bench.py [--customers 1000000] [--orders 3000000] [--events 10000000]
                                  [--keep DIR] [--generate-only] [--sort-by-time]
                                  [--skip-broad] [--skip-pandas] [--pandas-prefilter]

``--keep DIR`` reuses the data in DIR when it is there (generate once with ``--generate-only``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from growthwheel.config import Settings
from growthwheel.warehouse import schema

CHANNELS = ["douyin", "baidu", "wechat", "xiaohongshu", "newsletter", "direct", "kol", "search"]
CATEGORIES = 20
PRODUCTS = 200
LAST_DAY = date(2025, 6, 30)
DAYS = 365

CONDITIONS: list[dict[str, Any]] = [
    {"type": "orders", "measure": "count", "op": ">=", "value": 1, "category": ["Cat 3"],
     "window": {"last": 90, "unit": "days"}},
    {"type": "events", "event": "view", "op": ">=", "value": 2, "window": {"last": 30, "unit": "days"}},
    {"type": "attribute", "field": "channel", "op": "in", "value": ["douyin", "xiaohongshu", "wechat"]},
]
#: The segment of the benchmark (AND), and a broad one (OR of the same conditions) whose large
#: membership exercises the entered / left diff.
DEFINITION: dict[str, Any] = {"all": CONDITIONS}
BROAD: dict[str, Any] = {"any": CONDITIONS}


def generate(cfg: Settings, customers: int, orders: int, events: int) -> float:
    """Write the synthetic shop into the data directory's warehouse; return the seconds it took."""
    started = time.perf_counter()
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(cfg.warehouse_path))
    con.execute("SET TimeZone = 'UTC'")
    for table in schema.TABLES.values():
        con.execute(schema.ddl(table.name, table.stored))
    con.execute("CREATE MACRO u(i, salt) AS (hash(i, salt) % 1000003)::DOUBLE / 1000003")
    first = LAST_DAY - timedelta(days=DAYS - 1)
    channels = "[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"
    con.execute(f"""
        INSERT INTO customers BY NAME
        SELECT 'C' || i AS customer_id, 'Customer ' || i AS name,
               'c' || i || '@example.com' AS email,
               TIMESTAMP '{first}' + to_seconds((u(i, 's') * {DAYS} * 86400)::BIGINT) AS signed_up_at,
               {channels}[1 + (hash(i, 'ch') % 8)::INT] AS channel
        FROM range({customers}) t(i)
    """)
    con.execute(f"""
        INSERT INTO products BY NAME
        SELECT 'SKU' || i AS sku, 'Product ' || i AS name,
               'Cat ' || (i % {CATEGORIES}) || '/Sub ' || (i % 3) AS category, 1990 AS price
        FROM range({PRODUCTS}) t(i)
    """)
    con.execute(f"""
        CREATE TEMP TABLE o AS
        SELECT i AS o,
               'C' || (({customers} - 1) * pow(u(i, 'cust'), 1.5))::BIGINT AS customer_id,
               TIMESTAMP '{first}' + to_seconds((u(i, 't') * {DAYS} * 86400)::BIGINT) AS ordered_at,
               CASE WHEN u(i, 'st') < 0.05 THEN 'cancelled' ELSE 'paid' END AS status
        FROM range({orders}) t(i)
    """)
    con.execute(f"""
        INSERT INTO order_lines BY NAME
        SELECT 'O' || o AS order_id, n AS line_no, 'SKU' || (hash(o, n) % {PRODUCTS}) AS sku,
               1 AS quantity, 1990 AS unit_price, 0 AS discount_amount, 1990 AS line_total
        FROM o, range(1, 2 + (hash(o, 'lines') % 3)::BIGINT) r(n)
    """)
    con.execute("""
        INSERT INTO orders BY NAME
        SELECT 'O' || o.o AS order_id, customer_id, ordered_at,
               CAST(ordered_at + INTERVAL 8 HOUR AS DATE) AS order_date, status, 'CNY' AS currency,
               s.items AS item_count, s.total AS total_amount, 0 AS discount_amount,
               s.total AS gross_amount
        FROM o JOIN (SELECT order_id, count(*) AS items, sum(line_total) AS total
                     FROM order_lines GROUP BY order_id) s ON s.order_id = 'O' || o.o
        ORDER BY ordered_at
    """)
    con.execute(f"""
        INSERT INTO events BY NAME
        SELECT 'E' || i AS event_id,
               CASE WHEN u(i, 'ty') < 0.7 THEN 'view' WHEN u(i, 'ty') < 0.9 THEN 'add_to_cart'
                    ELSE 'purchase' END AS type,
               TIMESTAMP '{first}' + to_seconds((u(i, 'et') * {DAYS} * 86400)::BIGINT) AS occurred_at,
               CAST(occurred_at + INTERVAL 8 HOUR AS DATE) AS event_date,
               CASE WHEN u(i, 'known') < 0.8
                    THEN 'C' || (({customers} - 1) * pow(u(i, 'who'), 1.5))::BIGINT END AS customer_id,
               'SKU' || (hash(i, 'esku') % {PRODUCTS}) AS sku
        FROM range({events}) t(i)
        ORDER BY occurred_at
    """)
    con.execute("DROP TABLE o")
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


def sort_by_time(cfg: Settings) -> float:
    """Rewrite the ``events`` and ``orders`` tables of the data directory in time order (data
    generated in random order before the generator wrote them sorted); return the seconds."""
    started = time.perf_counter()
    con = duckdb.connect(str(cfg.warehouse_path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        for table, column in (("events", "occurred_at"), ("orders", "ordered_at")):
            con.execute("DROP TABLE IF EXISTS sorted_rows")
            con.execute(schema.ddl("sorted_rows", schema.TABLES[table].stored))
            con.execute(f"INSERT INTO sorted_rows SELECT * FROM {table} ORDER BY {column}")
            con.execute(f"DROP TABLE {table}")
            con.execute(f"ALTER TABLE sorted_rows RENAME TO {table}")
            con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (``VmHWM``, DuckDB's memory included), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def counts(cfg: Settings) -> dict[str, int]:
    """Rows per table."""
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
                for t in ("customers", "orders", "order_lines", "events")}
    finally:
        con.close()


def pandas_members(cfg: Settings, as_of: date, *, prefilter: bool = False
                   ) -> tuple[set[str], float, float]:
    """The same membership in pandas: (customer ids, seconds loading, seconds computing).

    With ``prefilter`` (for sizes whose full columns do not fit in memory as Python objects),
    DuckDB loads only the orders of the last 90 days, their lines and the view events of the
    last 30 days; pandas still applies every condition itself.
    """
    import pandas as pd

    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    started = time.perf_counter()
    o_where = e_where = l_where = ""
    if prefilter:
        o_where = f" WHERE order_date >= DATE '{as_of - timedelta(days=89)}'"
        e_where = f" WHERE type = 'view' AND event_date >= DATE '{as_of - timedelta(days=29)}'"
        l_where = f" WHERE order_id IN (SELECT order_id FROM orders{o_where})"
    customers = con.execute("SELECT customer_id, channel FROM customers").df()
    orders = con.execute(f"SELECT order_id, customer_id, order_date, status FROM orders{o_where}").df()
    lines = con.execute(f"SELECT order_id, sku FROM order_lines{l_where}").df()
    products = con.execute("SELECT sku, category FROM products").df()
    events = con.execute(f"SELECT customer_id, type, event_date FROM events{e_where}").df()
    con.close()
    loaded = time.perf_counter() - started

    started = time.perf_counter()
    as_of_ts = pd.Timestamp(as_of)
    o = orders[orders.status.isin(schema.PAID_STATUSES) & orders.customer_id.notna()]
    o = o[(pd.to_datetime(o.order_date) >= as_of_ts - pd.Timedelta(days=89))
          & (pd.to_datetime(o.order_date) <= as_of_ts)]
    cat = products[(products.category == "Cat 3") | products.category.str.startswith("Cat 3/")]
    hit = lines[lines.sku.isin(cat.sku)]
    buyers = set(o[o.order_id.isin(hit.order_id)].customer_id)
    e = events[(events.type == "view") & events.customer_id.notna()]
    day = pd.to_datetime(e.event_date)
    e = e[(day >= as_of_ts - pd.Timedelta(days=29)) & (day <= as_of_ts)]
    views = e.groupby("customer_id").size()
    viewers = set(views[views >= 2].index)
    channel = set(customers[customers.channel.isin(["douyin", "xiaohongshu", "wechat"])].customer_id)
    members = buyers & viewers & channel
    return members, loaded, time.perf_counter() - started


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=3_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path,
                        help="Keep the generated data directory here (and reuse it when it exists)")
    parser.add_argument("--generate-only", action="store_true",
                        help="with --keep: generate the data and stop (so that a later run's peak "
                             "memory is the refresh's, not the generator's)")
    parser.add_argument("--sort-by-time", action="store_true",
                        help="with --keep: rewrite the kept events and orders in time order (data "
                             "generated before the generator wrote them so), then stop")
    parser.add_argument("--skip-broad", action="store_true",
                        help="refresh only the benchmark segment (not the broad one)")
    parser.add_argument("--skip-pandas", action="store_true",
                        help="no pandas baseline (compare the printed digest of the members)")
    parser.add_argument("--pandas-prefilter", action="store_true",
                        help="the pandas baseline loads only the rows in the windows (large sizes)")
    args = parser.parse_args()

    import ibis

    from growthwheel.segments import service
    from growthwheel.store.db import migrate, session_scope
    from growthwheel.warehouse.db import open_duckdb

    root = args.keep or Path(tempfile.mkdtemp(prefix="gw-segment-bench-"))
    cfg = Settings(data_dir=root / "data", database_url=None)
    try:
        if cfg.warehouse_path.exists():
            print(f"reusing {cfg.warehouse_path}")
            (cfg.data_dir / "growthwheel.sqlite").unlink(missing_ok=True)
            con = duckdb.connect(str(cfg.warehouse_path))
            for table in ("segment_members", "segment_membership_events", "customer_tags"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            con.close()
            if args.sort_by_time:
                print(f"events and orders rewritten in time order in {sort_by_time(cfg):.1f} s")
                return
        else:
            seconds = generate(cfg, args.customers, args.orders, args.events)
            print(f"generated in {seconds:.1f} s")
            if args.generate_only:
                return
        print(", ".join(f"{k} {v:,}" for k, v in counts(cfg).items()))
        migrate(cfg)
        with session_scope(cfg) as session:
            service.create_segment(session, "bench", DEFINITION, principal=None, actor_name="bench")
            service.create_segment(session, "broad", BROAD, principal=None, actor_name="bench")
        results: dict[str, float] = {}
        cpu_results: dict[str, float] = {}
        for name in ("bench",) if args.skip_broad else ("bench", "broad"):
            for as_of in (LAST_DAY - timedelta(days=7), LAST_DAY):
                con = open_duckdb(cfg)
                try:
                    backend = ibis.duckdb.from_connection(con)
                    with session_scope(cfg) as session:
                        seg = service.get_segment(session, name)
                        ctx = service.context(cfg, backend, as_of)
                        started, cpu = time.perf_counter(), time.process_time()
                        out = service.refresh_segment(session, seg, ctx, service.direct_writer(con),
                                                      principal=None, actor_name="bench")
                        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                    results[name] = wall
                    cpu_results[name] = cpu
                    print(f"{name}: refresh as of {as_of}: {out.members:,} members, {out.entered:,} entered, "
                          f"{out.left:,} left in {wall:.2f} s (CPU {cpu:.2f} s, all threads; load "
                          f"average {os.getloadavg()[0]:.1f})", flush=True)
                finally:
                    con.close()
        with session_scope(cfg) as session:
            seg_id = service.get_segment(session, "bench").id
        con = open_duckdb(cfg)
        try:
            backend = ibis.duckdb.from_connection(con)
            ctx = service.context(cfg, backend, LAST_DAY)
            started = time.perf_counter()
            shown = service.preview(backend, DEFINITION, ctx, sample=20)
            preview_seconds = time.perf_counter() - started
            current = {r[0] for r in con.execute(
                "SELECT customer_id FROM segment_members WHERE segment_id = ?", [seg_id]).fetchall()}
            digest = con.execute("SELECT bit_xor(hash(customer_id)) FROM segment_members "
                                 "WHERE segment_id = ?", [seg_id]).fetchone()
        finally:
            con.close()
        print(f"preview (count {shown.count:,} + sample of 20): {preview_seconds:.2f} s")
        print(f"peak RSS of this process so far (refreshes and preview, DuckDB included): "
              f"{peak_rss_mb():,.0f} MiB", flush=True)
        print(f"members of the benchmark segment: {len(current):,}, digest (XOR of their ids' "
              f"hashes) {digest[0] if digest else None}")
        if args.skip_pandas:
            return
        cpu = time.process_time()
        members, loaded, computed = pandas_members(cfg, LAST_DAY, prefilter=args.pandas_prefilter)
        pandas_cpu = time.process_time() - cpu
        assert members == current, "pandas and the refresh disagree"
        assert shown.count == len(members)
        refresh_seconds = results["bench"]
        print(f"pandas baseline: {computed:.2f} s to compute the same {len(members):,} members "
              f"(+ {loaded:.2f} s to load the columns into memory"
              f"{', only the rows in the windows' if args.pandas_prefilter else ''}); "
              f"same customers: yes; peak RSS now {peak_rss_mb():,.0f} MiB")
        print(f"ratio refresh / pandas compute: {refresh_seconds / computed:.2f} "
              f"(refresh / pandas load + compute: {refresh_seconds / (loaded + computed):.2f})")
        print(f"CPU time: last refresh of the benchmark segment {cpu_results['bench']:.2f} s, pandas "
              f"load + compute {pandas_cpu:.2f} s (ratio {cpu_results['bench'] / pandas_cpu:.2f}); "
              f"load average now {os.getloadavg()[0]:.1f}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
