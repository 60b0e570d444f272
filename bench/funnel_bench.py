"""Benchmark: the funnel page's computation on a demo-size shop, against a plain scan.

Simulates the demo shop (``--customers``, default the demo's 50,000; its behaviour events only),
loads the events into a DuckDB file with the stored warehouse schema, then times, each the best
of ``--repeat`` runs (on one read-only connection, as the server keeps its own open):

* the baseline: ``SELECT type, count(*) FROM events GROUP BY type`` (one scan of the events);
* what ``/insight/funnel`` computes for a range (view → add to cart → checkout → purchase,
  14-day window) over the page's default range (the last 30 days with events), 90 days and the
  whole year;
* for each range, three ways the page has computed it:

  - *previous*: the in-memory matching as it was before the identity links were remembered
    (:func:`previous_frame`, a copy of that code kept here as the baseline): every visit joins
    the events to their identity links in the warehouse (a scan of every event) and matches all
    attempts at every step;
  - *now, cold*: :func:`growthwheel.insight.funnels.funnel_with_stops` (the page's call: the
    funnel and its "stopped here" counts) finding the identity links itself, as on the first
    visit after the warehouse changed;
  - *now, warm*: the same with the links the page remembers per warehouse version (every
    other range, window or step choice until the next import or event flush);

* the same funnel through the Ibis expression (a range join per step), the path other engines
  run (``--no-ibis`` skips it: it is slow).

Every way must give the same funnel (checked: the frames are equal, and the Ibis path's entrants
per step). Prints wall seconds, CPU seconds of this process (steadier on a shared machine) and the
ratios. The page adds the distinct event types and the last day (remembered per version), the
version check and rendering (milliseconds), and remembers each result until the warehouse
changes (a second visit costs the version check only).
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
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from growthwheel.insight import funnels
from growthwheel.insight.funnels import (
    DEFAULT_STEPS,
    funnel_entrants,
    funnel_steps,
    funnel_with_stops,
    identity_links,
)
from growthwheel.sim import build_demo_files
from growthwheel.warehouse import schema


def previous_entrants(events: Any, steps: Any, *, window: timedelta, start: Any, end: Any) -> pd.DataFrame:
    """The baseline: ``funnel_entrants_local`` as it was before this change (no breakdown)."""
    steps = list(steps)
    ev = funnels._candidate_rows(events, steps, window, start, end)  # identities joined in SQL
    table = ev.select("actor", "type", "occurred_at", "event_date").to_pyarrow()
    n_steps = len(steps)
    actor_dict = pc.dictionary_encode(table.column("actor")).combine_chunks()
    code = np.asarray(actor_dict.indices, dtype=np.int64)
    t = np.asarray(table.column("occurred_at").cast(pa.timestamp("us")).cast(pa.int64()), dtype=np.int64)
    types = pc.dictionary_encode(table.column("type")).combine_chunks()
    type_names = types.dictionary.to_pylist()
    type_code = np.asarray(types.indices, dtype=np.int64)

    def of_type(name: str) -> Any:
        return type_code == type_names.index(name) if name in type_names else type_code < 0
    rank_of_time = np.unique(t, return_inverse=True)[1].astype(np.int64)
    span = int(rank_of_time.max()) + 2 if len(t) else 1
    key = code * span + rank_of_time
    anchor = of_type(steps[0])
    day = table.column("event_date")
    anchor &= np.asarray(pc.fill_null(pc.greater_equal(day, pa.scalar(start)), False))
    anchor &= np.asarray(pc.fill_null(pc.less_equal(day, pa.scalar(end)), False))
    idx = np.flatnonzero(anchor)
    a_code = code[idx]
    at = np.full((n_steps, len(idx)), -1, dtype=np.int64)
    at[0] = t[idx]
    prev_rank = rank_of_time[idx]
    alive = np.ones(len(idx), dtype=bool)
    limit = at[0] + min(int(window.total_seconds()) * 1_000_000, 2**62)
    for k in range(1, n_steps):
        m = np.flatnonzero(of_type(steps[k]))
        order = np.argsort(key[m], kind="stable")
        s_key, s_t = key[m][order], t[m][order]
        q = a_code * span + prev_rank
        pos = np.searchsorted(s_key, q, side="right" if steps[k] in steps[:k] else "left")
        ok = alive & (pos < len(s_key))
        pos = np.minimum(pos, max(len(s_key) - 1, 0))
        if len(s_key):
            ok &= (s_key[pos] < (a_code + 1) * span) & (s_t[pos] <= limit)
            at[k] = np.where(ok, s_t[pos], -1)
            prev_rank = np.where(ok, s_key[pos] - a_code * span, prev_rank)
        alive = ok
    reached = (at >= 0).sum(axis=0)
    best = np.lexsort((at[0], -reached, a_code))
    first = np.ones(len(best), dtype=bool)
    first[1:] = a_code[best][1:] != a_code[best][:-1]
    pick = best[first]
    out: dict[str, Any] = {"actor": actor_dict.dictionary.take(pa.array(a_code[pick])).to_pylist(),
                           "steps_reached": reached[pick].astype(np.int64)}
    for k in range(n_steps):
        col = at[k][pick]
        stamp = np.where(col >= 0, col, np.iinfo(np.int64).min).astype("datetime64[us]")
        out[f"at_{k + 1}"] = pd.array(stamp)
    return pd.DataFrame(out)


def previous_frame(events: Any, steps: Any, *, window: timedelta, start: Any, end: Any) -> pd.DataFrame:
    """The baseline's funnel frame (the page's table before this change)."""
    people = previous_entrants(events, steps, window=window, start=start, end=end)
    return funnels._dense(funnels._step_table_of(people, list(steps), None), list(steps), None)


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
    t, _cpu, result = best2(db, repeat, work)
    return t, result


def best2(db: Path, repeat: int, work: Callable[[Any], Any]) -> tuple[float, float, Any]:
    """Best wall and CPU (this process) times of ``work(events)`` over ``repeat`` runs on one
    read-only connection (as the server reads: its connection stays open)."""
    walls, cpus, result = [], [], None
    con = ibis.duckdb.connect(str(db), read_only=True)
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        result = work(con.table("events"))
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    con.disconnect()
    return min(walls), min(cpus), result


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
        con = ibis.duckdb.connect(str(db), read_only=True)
        links = identity_links(con.table("events"))
        con.disconnect()
        cases = [("last 30 days (page default)", 30), ("last 90 days", 90), ("whole year", 365)]
        print(f"{'':10s}{'range':30s} {'previous':>17s} {'now, cold':>17s} {'now, warm':>17s}"
              f"   warm vs previous (wall / CPU)")
        for name, days in cases:
            start = last - timedelta(days=days - 1)
            old_t, old_c, old = best2(db, args.repeat, lambda e, s=start: previous_frame(
                e, DEFAULT_STEPS, window=window, start=s, end=last))
            cold_t, cold_c, (cold, _) = best2(db, args.repeat, lambda e, s=start: funnel_with_stops(
                e, DEFAULT_STEPS, window=window, start=s, end=last))
            warm_t, warm_c, (warm, stops) = best2(db, args.repeat, lambda e, s=start: funnel_with_stops(
                e, DEFAULT_STEPS, window=window, start=s, end=last, links=links))
            assert old.equals(cold), (old, cold)
            assert old.equals(warm), (old, warm)
            print(f"funnel    {name:30s} {old_t:7.3f} s ({old_c:5.2f}) {cold_t:7.3f} s ({cold_c:5.2f}) "
                  f"{warm_t:7.3f} s ({warm_c:5.2f})   {old_t / warm_t:4.1f}x / {old_c / warm_c:4.1f}x faster"
                  f"   [{warm_t / base:5.1f}x the scan; same frame; customers who stopped: {stops}]")
            if not args.no_ibis:
                t_ibis, steps = best(db, 1, lambda e, s=start: funnel_steps(funnel_entrants(
                    e, DEFAULT_STEPS, window=window, start=s, end=last), 4).execute())
                same = sorted(int(x) for x in steps.entrants) == sorted(int(x) for x in warm.entrants)
                assert same, (list(steps.entrants), list(warm.entrants))
                print(f"          {'':30s} Ibis range join {t_ibis:7.3f} s ({t_ibis / warm_t:4.1f}x slower "
                      "than warm, same counts)")
        t_links, c_links, _ = best2(db, args.repeat, identity_links)
        print(f"identity links (once per warehouse version)  {t_links:7.3f} s ({c_links:5.2f})")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
