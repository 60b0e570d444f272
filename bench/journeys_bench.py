"""Trigger evaluation for a journey over N customers (default 1,000,000): the Ibis/DuckDB
``lifecycle: dormant`` trigger as a tick runs it, against a pandas version of the same trigger and
against the trigger as it was before (thresholds re-learned on every tick and the full
``insight.lifecycle.stages`` table), in the same run on the same data. The target is under 10 s
for 1M customers.

* ``before``: learn the thresholds (one window query over every order) + the full stages table;
* ``first tick of the day``: learn the thresholds (kept for the day, per warehouse) + the lean
  ``max(order_date)`` per customer the trigger needs;
* ``every other tick``: the thresholds from the day's cache + the lean query.

    .venv/bin/python bench/journeys_bench.py [customers]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import duckdb
import ibis
import pandas as pd

from growthwheel.insight.lifecycle import stages, thresholds_for
from growthwheel.journeys import definition as d
from growthwheel.journeys import triggers
from growthwheel.warehouse.schema import TABLES, ddl

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def main() -> None:
    con = duckdb.connect()
    for name, table in TABLES.items():
        con.execute(ddl(name, table.stored))
    # about 3 paid orders per customer over two years
    con.execute(
        "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) "
        "SELECT 'o' || i, 'c' || (hash(i) % ?), TIMESTAMP '2023-06-01' "
        "+ to_minutes(CAST(hash(i * 7) % 1051200 AS BIGINT)),"
        " NULL, 'paid', 1000 FROM range(?) t(i)",
        [N, 3 * N],
    )
    con.execute("UPDATE orders SET order_date = CAST(ordered_at AS DATE)")
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

    start = time.perf_counter()
    before_hits = before()
    before_s = time.perf_counter() - start
    key = f"bench-{time.time_ns()}"
    start = time.perf_counter()
    found = triggers.evaluate_warehouse(backend, trig, window, cache_key=key)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = triggers.evaluate_warehouse(backend, trig, window, cache_key=key)
    ibis_s = time.perf_counter() - start
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
    print(f"customers={N:,} orders={3 * N:,} dormant-entered-last-30d={len(found):,}")
    print(f"before (learn every tick + full stages): {before_s:.2f} s")
    print(f"first tick of the day (learn + lean):    {first_s:.2f} s   ({before_s / first_s:.2f}x faster)")
    print(f"every other tick (cached thresholds):    {ibis_s:.2f} s   ({before_s / ibis_s:.2f}x faster)")
    print(
        f"pandas baseline: {pandas_s:.2f} s   ratio (pandas/ibis steady) = {pandas_s / ibis_s:.2f}x   "
        f"target < 10 s: every tick {'met' if ibis_s < 10 else 'MISSED'}, "
        f"first of the day {'met' if first_s < 10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
