"""Benchmark: the funnel page's computation on a demo-size shop, against a plain scan.

Simulates the demo shop (``--customers``, default the demo's 50,000; its behaviour events only),
loads the events into a DuckDB file with the stored warehouse schema, then times, each the best
of ``--repeat`` runs on a fresh connection:

* the baseline: ``SELECT type, count(*) FROM events GROUP BY type`` (one scan of the events);
* what ``/insight/funnel`` computes for a range: :func:`growthwheel.insight.funnels.funnel_frame`
  (view → add to cart → checkout → purchase, 14-day window) over the page's default range (the
  last 30 days with events), 90 days, the whole year, and the year broken down by ``utm_source``;
* the same funnel through the Ibis expression (a range join per step), the path other engines
  run and the one the page used before (``--no-ibis`` skips it: it is slow).

Both funnels must give the same entrants per step (checked). Prints seconds and the ratio to the
baseline. The page adds the distinct event types, the last day and rendering (milliseconds), and
remembers the result until the warehouse changes (a second visit costs the version check only).
Usage::

    nice -n 5 python bench/funnel_bench.py [--customers 50000] [--repeat 3] [--no-ibis] [--db FILE]

``--db FILE`` keeps the loaded events in FILE and uses it again on the next run (same customers).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import ibis

from growthwheel.insight.funnels import DEFAULT_STEPS, funnel_entrants, funnel_frame, funnel_steps
from growthwheel.sim import build_demo_files
from growthwheel.warehouse import schema


def load(events_file: Path, db: Path) -> int:
    """The simulated events into a new DuckDB warehouse file; returns the number of rows."""
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    for table in schema.TABLES.values():
        con.execute(schema.ddl(table.name, table.stored))
    con.execute(f"""
        INSERT INTO events BY NAME
        SELECT event_id, type, CAST(occurred_at AS TIMESTAMPTZ)::TIMESTAMP AS occurred_at,
               CAST(substr(occurred_at, 1, 10) AS DATE) AS event_date, customer_id, anonymous_id,
               session_id, sku, order_id, url, referrer, utm_source, utm_medium, utm_campaign, device
        FROM read_parquet('{events_file}')
    """)
    n = int(con.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
    con.close()
    return n


def best(db: Path, repeat: int, work: Callable[[Any], Any]) -> tuple[float, Any]:
    """Best wall time of ``work(events)`` over ``repeat`` fresh read-only connections."""
    times, result = [], None
    for _ in range(repeat):
        con = ibis.duckdb.connect(str(db), read_only=True)
        started = time.perf_counter()
        result = work(con.table("events"))
        times.append(time.perf_counter() - started)
        con.disconnect()
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-ibis", action="store_true")
    parser.add_argument("--db", type=Path, help="events warehouse to keep and reuse")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="funnel-bench-"))
    try:
        started = time.perf_counter()
        db = args.db or tmp / "warehouse.duckdb"
        if not db.exists():
            files = build_demo_files(tmp / "files", customers=args.customers, seed=7)
            load(files.paths["events"], db)
        raw = duckdb.connect(str(db), read_only=True)
        n = int(raw.execute("SELECT count(*) FROM events").fetchone()[0])  # type: ignore[index]
        raw.close()
        print(f"shop: {args.customers:,} customers, {n:,} events "
              f"(ready in {time.perf_counter() - started:.1f} s)")
        raw = duckdb.connect(str(db), read_only=True)
        last = raw.execute("SELECT max(event_date) FROM events").fetchone()[0]  # type: ignore[index]
        raw.close()
        window = timedelta(days=14)
        base, _ = best(db, args.repeat, lambda e: e.group_by("type").aggregate(n=e.count()).execute())
        print(f"baseline  count by type (one scan)        {base:8.3f} s")
        cases = [("last 30 days (page default)", 30, None), ("last 90 days", 90, None),
                 ("whole year", 365, None), ("whole year by utm_source", 365, "utm_source")]
        for name, days, by in cases:
            start = last - timedelta(days=days - 1)
            t, frame = best(db, args.repeat, lambda e, s=start, b=by: funnel_frame(
                e, DEFAULT_STEPS, window=window, start=s, end=last, breakdown=b))
            line = f"funnel    {name:32s} {t:8.3f} s  {t / base:6.1f}x baseline"
            if not args.no_ibis and by is None:
                t_ibis, steps = best(db, 1, lambda e, s=start: funnel_steps(funnel_entrants(
                    e, DEFAULT_STEPS, window=window, start=s, end=last), 4).execute())
                same = sorted(int(x) for x in steps.entrants) == sorted(
                    int(x) for x in frame.entrants)
                assert same, (list(steps.entrants), list(frame.entrants))
                line += f"   Ibis range join {t_ibis:7.3f} s ({t_ibis / t:4.1f}x slower, same counts)"
            print(line)
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
