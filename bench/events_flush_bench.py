"""Event flush cost on the Spark warehouse, per 10k events, with a small and a large events table.

What the server's owner does every second on Spark (``WarehouseOwner._flush``): the spooled
events go through the normal validation and merge (``ingest.import_rows``) with ``events``,
``_imports`` and ``_quarantine`` scoped (``lake.scoped``), so the flush reads none of the stored
rows but the keys of the partitions its events fall in, and publishes one new file per touched
partition. The cost must not grow with the table.

The events table is written straight as the warehouse's partitioned Parquet (24 shop-local
months, event ids random), then ``--batches`` flushes of ``--batch`` new events dated in the last
month are timed (median). Baseline, measured in the same run: the same flush on the small table.
Also timed once on the small table: an unscoped flush (the whole events table loaded into DuckDB
first, as before this work; the old flush then also wrote the whole table again, so it cost more).

Measured on the project's 2-core machine: 1M vs 100M events, 178 ms vs 176 ms per 10k-event
flush (ratio 0.99, load 2-8); under load from other work (load average 12-20) 1,230 ms vs
1,095 ms (0.89), and the unscoped flush at 1M 34.6 s.

    .venv/bin/python bench/events_flush_bench.py --small 1000000 --large 100000000

Prints the median seconds per flush for each size and the ratio large / small.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from growthwheel.config import Settings
from growthwheel.warehouse import db as wh
from growthwheel.warehouse import ingest, lake

MONTHS = [f"{2023 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]


def build(cfg: Settings, rows: int) -> None:
    """An events table of ``rows`` rows over 24 months, as one snapshot of partitioned Parquet."""
    root = cfg.spark_dir
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    per_month = rows // len(MONTHS)
    known = {
        "event_id": "'h' || {i} || '-' || n || '-' || md5(n::VARCHAR)[:12]",
        "type": "'view'",
        "occurred_at": "ts",
        "event_date": "CAST(ts + INTERVAL 8 HOUR AS DATE)",
        "customer_id": "'c' || (n % 50000)",
        "session_id": "'s' || (n // 7)",
        "_import_id": "'imp_bench'",
    }
    parts: dict[str, list[str]] = {}
    for i, month in enumerate(MONTHS):
        rel = f"events/{month}/bench-{i:02d}.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        select = ", ".join(
            f"{known[c].format(i=i)} AS {lake._q(c)}" if c in known else f"NULL::{t} AS {lake._q(c)}"
            for c, t in lake.table_columns("events") if c != "_row_hash"
        )
        con.execute(
            f"COPY (SELECT *, hash(event_id)::UBIGINT AS _row_hash FROM (SELECT {select} FROM "
            f"(SELECT range AS n, TIMESTAMP '{month}-01 00:00:00' + to_seconds(range % 2400000) AS ts "
            f"FROM range({per_month})))) TO '{root / rel}' (FORMAT parquet, COMPRESSION zstd)"
        )
        parts[month] = [rel]
    con.close()
    snapshot = lake.Snapshot(f"bench-{uuid.uuid4().hex[:8]}", {"events": parts}, time.time())
    lake._switch(root, snapshot)


def batch(n: int, seq: int) -> pa.Table:
    """``n`` new events in the last month, as the spool hands them to the flush."""
    ids = [f"live-{seq}-{i}-{uuid.uuid4().hex[:8]}" for i in range(n)]
    at = [f"2024-12-{1 + i % 28:02d}T{i % 24:02d}:15:00+08:00" for i in range(n)]
    return pa.table({"event_id": ids, "type": ["view"] * n, "occurred_at": at,
                     "customer_id": [f"c{i % 50000}" for i in range(n)]})


def flush(cfg: Settings, rows: pa.Table, *, scoped: bool = True) -> float:
    """Seconds for one flush of ``rows`` (as the owner runs it)."""
    began = time.perf_counter()
    if scoped:
        with lake.scoped({"events", wh.QUARANTINE_TABLE, wh.IMPORTS_TABLE}):
            ingest.import_rows("events", rows, "spool", cfg=cfg)
    else:
        ingest.import_rows("events", rows, "spool", cfg=cfg)
    return time.perf_counter() - began


def prepare(rows: int, n: int, folder: Path) -> Settings:
    """A warehouse with ``rows`` events, warmed up by one flush."""
    cfg = Settings(data_dir=folder / f"events-{rows}", warehouse="spark")
    began = time.perf_counter()
    build(cfg, rows)
    print(f"  built {rows:,} events in {time.perf_counter() - began:.1f} s", flush=True)
    flush(cfg, batch(n, 0))  # warm-up: imports, first files
    return cfg


def check(cfg: Settings, rows: int, n: int, flushes: int) -> None:
    """Every event flushed is stored, once."""
    files = ", ".join(f"'{cfg.spark_dir / f}'" for f in lake.read_pointer(cfg).files("events"))
    stored = duckdb.sql(f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet([{files}])").fetchone()
    expected = rows // len(MONTHS) * len(MONTHS) + n * flushes
    if stored is None or tuple(stored) != (expected, expected):
        raise SystemExit(f"events stored: {stored}, expected {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--full-rewrite", action="store_true",
                        help="also time the old full-table flush on the small table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-flush-bench-") as tmp:
        folder = Path(tmp)
        small_cfg = prepare(args.small, args.batch, folder)
        large_cfg = prepare(args.large, args.batch, folder)
        # Alternate the two, so that a busy machine slows both alike.
        small_t: list[float] = []
        large_t: list[float] = []
        for k in range(args.batches):
            small_t.append(flush(small_cfg, batch(args.batch, k + 1)))
            large_t.append(flush(large_cfg, batch(args.batch, k + 1)))
        check(small_cfg, args.small, args.batch, args.batches + 1)
        check(large_cfg, args.large, args.batch, args.batches + 1)
        small, large = statistics.median(small_t), statistics.median(large_t)
        print(f"flush of {args.batch:,} events (median of {args.batches}, alternating):")
        print(f"  {args.small:>13,} events in the table: {small * 1000:8.1f} ms per flush")
        print(f"  {args.large:>13,} events in the table: {large * 1000:8.1f} ms per flush")
        print(f"ratio large/small: {large / small:.2f} (table {args.large / args.small:.0f}x larger)")
        if args.full_rewrite:
            full = flush(small_cfg, batch(args.batch, 999), scoped=False)
            print(f"  unscoped (the whole events table loaded into DuckDB, as before this work, which "
                  f"also wrote it all again), {args.small:,} events: {full * 1000:8.1f} ms per flush "
                  f"({full / small:.1f}x the partitioned append)")


if __name__ == "__main__":
    main()
