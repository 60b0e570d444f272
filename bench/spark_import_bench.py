"""Imports on Spark against the same import on DuckDB, in the same run (issue 11, item 3).

One order-lines CSV (``import_bench.make_csv``: 1–4 lines per order, Chinese names, refunds) is
imported three ways, each into an empty data directory, then imported again (the no-change path):

* **DuckDB warehouse** — the default: DuckDB validates, merges and stores (the baseline);
* **Spark warehouse, on Spark** — what ``GROWTHWHEEL_WAREHOUSE=spark`` does now: Spark reads the
  file, the Ibis rules validate, Spark merges and writes the partitions it touches
  (``warehouse/spark_ingest.py``);
* **Spark warehouse, validated in DuckDB** — the path before (``engine="duckdb"``): DuckDB in
  this process validates and merges, the lake publishes Parquet per partition.

The three must agree on every count. Spark's start-up (JVM, session) is timed apart and not
counted in its imports. Peak memory: this process's (``ru_maxrss``) and the Spark driver JVM's
(sampled every 0.2 s from ``/proc``; local mode, ``spark.driver.memory`` 1 GB by default).

Usage: ``nice -n 5 python bench/spark_import_bench.py [--rows 1000000] [--remote sc://host:port]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_bench import make_csv

from growthwheel.config import Settings
from growthwheel.warehouse import spark
from growthwheel.warehouse.ingest import ImportResult, import_files


class JvmPeak:
    """The largest resident set of this process's Java children, sampled in a thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == os.getpid() and "java" in (entry / "comm").read_text():
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for pid in self._children():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]) * 1024)
                except OSError:
                    continue

    def __enter__(self) -> JvmPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(label: str, fn: Any) -> tuple[float, Any]:
    """(seconds, result) of ``fn()``, printed."""
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:8.2f} s", flush=True)
    return seconds, out


def counts(result: ImportResult) -> tuple[Any, ...]:
    """What must agree between the engines."""
    return (result.rows_read, result.rows_quarantined,
            {k: (v.inserted, v.updated, v.unchanged) for k, v in result.tables.items()})


def main() -> None:
    """Generate the file, time the imports, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--remote", default=None, help="a Spark Connect URL instead of local Spark")
    parser.add_argument("--skip-duckdb-on-spark", action="store_true",
                        help="do not time the former path (DuckDB validating for a Spark warehouse)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gw-spark-import-bench-"))
    print(f"load average at start: {os.getloadavg()}")
    try:
        csv = work / "order_lines.csv"
        make_csv(csv, args.rows)
        print(f"file: {args.rows:,} order lines, {csv.stat().st_size / 1e6:.0f} MB")
        duck = Settings(data_dir=work / "duck")
        on_spark = Settings(data_dir=work / "spark", warehouse="spark", spark_remote=args.remote)
        via_duck = Settings(data_dir=work / "via-duck", warehouse="spark", spark_remote=args.remote)
        with JvmPeak() as jvm:
            t_duck, r_duck = timed("DuckDB warehouse: import", lambda: import_files(
                "order_lines", [csv], cfg=duck))
            t_duck2, r_duck2 = timed("DuckDB warehouse: same file again", lambda: import_files(
                "order_lines", [csv], cfg=duck))
            rss_duck = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            t_start, _ = timed("Spark start (not counted)", lambda: spark.session(on_spark).range(1).count())
            t_spark, r_spark = timed("Spark warehouse, on Spark: import", lambda: import_files(
                "order_lines", [csv], cfg=on_spark))
            t_spark2, r_spark2 = timed("Spark warehouse, on Spark: same file again", lambda: import_files(
                "order_lines", [csv], cfg=on_spark))
            rss_spark = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            assert counts(r_spark) == counts(r_duck), (counts(r_spark), counts(r_duck))
            assert counts(r_spark2) == counts(r_duck2), (counts(r_spark2), counts(r_duck2))
            t_via = None
            if not args.skip_duckdb_on_spark:
                t_via, r_via = timed("Spark warehouse, validated in DuckDB: import", lambda: import_files(
                    "order_lines", [csv], cfg=via_duck, engine="duckdb"))
                assert counts(r_via) == counts(r_duck)
        print()
        print(f"load average at end: {os.getloadavg()}")
        print(f"Spark on Spark / DuckDB: import {t_spark / t_duck:.1f}x, "
              f"re-import {t_spark2 / t_duck2:.1f}x")
        if t_via is not None:
            print(f"Spark warehouse validated in DuckDB / DuckDB: {t_via / t_duck:.1f}x")
        print(f"peak RSS of this process: after the DuckDB imports {rss_duck / 2**20:,.0f} MiB, "
              f"at the end {rss_spark / 2**20:,.0f} MiB; Spark driver JVM {jvm.peak / 2**20:,.0f} MiB "
              f"(Spark start {t_start:.1f} s)")
    finally:
        spark.stop_session()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
