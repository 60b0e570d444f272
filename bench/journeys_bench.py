"""Trigger evaluation for a journey over N customers (default 1,000,000), in the same run on the
same data, against how it was before. The target is under 10 s per tick for 1M customers.

``lifecycle: dormant`` (what a win-back journey uses):

* ``before``: the thresholds learned in every tick (one window query over every order) + the full
  ``insight.lifecycle.stages`` table;
* ``first tick of the day, no learning job``: learn the thresholds (then kept for the day) + the
  lean ``max(order_date)`` per customer the trigger needs;
* ``every tick``: the day's learned thresholds (``journeys.learning``) + the lean query;
* a pandas version of the same trigger as a reference.

``replenishment`` with learned product cycles (a consumable's reminder):

* ``before``: each product's cycle learned inside every tick's query (a lag window over every
  customer's purchase days of every product);
* ``every tick``: the day's learned cycles (a table of one row per product) joined in.

``daily learning job`` (``journeys.learn``, 00:20 shop time, off the tick path): learns both once.

    nice -n 5 .venv/bin/python bench/journeys_bench.py [customers] [--ticks-only] [--repeat R]

``--ticks-only`` leaves out the "before" variants and the pandas reference (the costliest parts:
on a shared machine, the ticks alone), and times each tick ``R`` times (default 1; the best and
worst are printed). The load average is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import ibis
import pandas as pd

from growthwheel.insight.lifecycle import stages, thresholds_for
from growthwheel.journeys import definition as d
from growthwheel.journeys import learning, triggers
from growthwheel.warehouse.schema import TABLES, ddl

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def timed(run: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    found = run()
    return time.perf_counter() - start, found


def load(n: int) -> duckdb.DuckDBPyConnection:
    """A warehouse of ``n`` customers: about 3 paid orders each over two years, one line each over
    50 products."""
    con = duckdb.connect()
    for name, table in TABLES.items():
        con.execute(ddl(name, table.stored))
    # about 3 paid orders per customer over two years, one line each over 50 products
    con.execute(
        "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) "
        "SELECT 'o' || i, 'c' || (hash(i) % ?), TIMESTAMP '2023-06-01' "
        "+ to_minutes(CAST(hash(i * 7) % 1051200 AS BIGINT)),"
        " NULL, 'paid', 1000 FROM range(?) t(i)",
        [n, 3 * n],
    )
    con.execute("UPDATE orders SET order_date = CAST(ordered_at AS DATE)")
    con.execute("INSERT INTO order_lines (order_id, line_no, sku, quantity, line_total) "
                "SELECT 'o' || i, 1, 'S' || (hash(i * 13) % 50), 1, 1000 FROM range(?) t(i)", [3 * n])
    return con


def ticks_only(n: int, repeat: int) -> None:
    """The daily learning job once, then each tick ``repeat`` times."""
    started = time.perf_counter()
    con = load(n)
    load_s = time.perf_counter() - started
    backend = ibis.duckdb.from_connection(con)
    window = triggers.Window(NOW - timedelta(days=30), NOW, "UTC")
    key = f"bench-job-{time.time_ns()}"
    job_s, learned = timed(lambda: learning.learn_all(backend, window.today, key))
    which = {"lifecycle dormant": d.LifecycleTrigger(kind="lifecycle", stage="dormant"),
             "replenishment (learned cycles)": d.ReplenishmentTrigger(kind="replenishment", min_repeats=20,
                                                                      days_before=3)}
    print(f"customers={n:,} orders={3 * n:,} lines={3 * n:,} products=50 (loaded in {load_s:.1f} s)")
    print(f"daily learning job (thresholds + {learned.get('products_with_cycles', 0)} product cycles): "
          f"{job_s:.2f} s  [load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}]")
    worst = 0.0
    for name, trig in which.items():
        times: list[float] = []
        hits = 0
        for _ in range(repeat):
            seconds, found = timed(lambda trig=trig: triggers.evaluate_warehouse(backend, trig, window,
                                                                                  cache_key=key))
            times.append(seconds)
            hits = len(found)
        worst = max(worst, max(times))
        print(f"{name} tick: {min(times):.2f}–{max(times):.2f} s over {repeat} run(s), {hits:,} entered  "
              f"[load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}]")
    print(f"target < 10 s per tick at 1M: {'met' if worst < 10 else 'MISSED'} (slowest tick {worst:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("customers", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--ticks-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.ticks_only:
        ticks_only(args.customers, args.repeat)
        return
    N = args.customers
    con = load(N)
    backend = ibis.duckdb.from_connection(con)
    trig = d.LifecycleTrigger(kind="lifecycle", stage="dormant")
    window = triggers.Window(NOW - timedelta(days=30), NOW, "UTC")

    def before() -> int:  # the trigger as it was: thresholds learned every tick, the full stages table
        orders = backend.table("orders")
        th = thresholds_for(orders, end=window.today)
        s = stages(orders, window.today, th)
        s = s.filter(s.stage == "dormant")
        s = s.mutate(_reached=s.last_order_date + ibis.interval(days=th.dormant_days + 1))
        return int(s.filter(s._reached > window.since_day).count().execute())

    before_s, before_hits = timed(before)
    key = f"bench-{time.time_ns()}"  # (not a directory: kept in memory only)
    first_s, found = timed(lambda: triggers.evaluate_warehouse(backend, trig, window, cache_key=key))
    ibis_s, again = timed(lambda: triggers.evaluate_warehouse(backend, trig, window, cache_key=key))
    assert len(again) == len(found) == before_hits, (len(again), len(found), before_hits)
    th = thresholds_for(backend.table("orders"), end=window.today)
    frame = con.execute("SELECT customer_id, order_date FROM orders WHERE status = 'paid'").df()
    start = time.perf_counter()
    per = frame.groupby("customer_id")["order_date"].max()
    days = (pd.Timestamp(window.today) - pd.to_datetime(per)).dt.days
    dormant = days[(days > th.dormant_days) & (days <= th.churned_days)]
    reached = pd.to_datetime(per[dormant.index]) + pd.Timedelta(days=th.dormant_days + 1)
    pandas_hits = int((reached > pd.Timestamp(window.since_day)).sum())
    pandas_s = time.perf_counter() - start  # excludes loading into pandas and learning thresholds
    assert len(found) == pandas_hits, (len(found), pandas_hits)

    refill = d.ReplenishmentTrigger(kind="replenishment", min_repeats=20, days_before=3)
    refill_before_s, refill_before = timed(lambda: triggers.evaluate_warehouse(backend, refill, window))
    job_key = f"bench-job-{time.time_ns()}"
    job_s, learned = timed(lambda: learning.learn_all(backend, window.today, job_key))
    def tick(which: Any) -> Any:
        return triggers.evaluate_warehouse(backend, which, window, cache_key=job_key)

    refill_s, refill_hits = timed(lambda: tick(refill))
    dormant_s, dormant_hits = timed(lambda: tick(trig))
    same = {(c.customer_id, c.occurrence) for c in refill_hits} == {(c.customer_id, c.occurrence)
                                                                   for c in refill_before}
    assert len(dormant_hits) == len(found)

    print(f"customers={N:,} orders={3 * N:,} lines={3 * N:,} products=50")
    print(f"lifecycle dormant, entered in the last 30 days: {len(found):,}")
    print(f"  before (learn every tick + full stages):   {before_s:6.2f} s")
    print(f"  first tick of the day, no learning job:    {first_s:6.2f} s   "
          f"({before_s / first_s:.2f}x faster)")
    print(f"  every tick (the day's learned thresholds): {ibis_s:6.2f} s   ({before_s / ibis_s:.2f}x faster)")
    print(f"  pandas reference (same trigger, data in memory): {pandas_s:.2f} s")
    print(f"replenishment (learned cycles), due in the last 30 days: {len(refill_hits):,} "
          f"({'the same customers and occurrences' if same else 'DIFFERENT from before (approx. median)'})")
    print(f"  before (cycles learned in every tick):     {refill_before_s:6.2f} s")
    print(f"  every tick (the day's learned cycles):     {refill_s:6.2f} s   "
          f"({refill_before_s / refill_s:.2f}x faster)")
    print(f"daily learning job (thresholds + {learned.get('products_with_cycles', 0)} product cycles), "
          f"once a day off the tick path: {job_s:.2f} s; a lifecycle tick after it: {dormant_s:.2f} s")
    worst = max(ibis_s, refill_s, dormant_s)
    print(f"target < 10 s per tick at 1M: {'met' if worst < 10 else 'MISSED'} (slowest tick {worst:.2f} s); "
          f"a first tick without the job: {'met' if first_s < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
