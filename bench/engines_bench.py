"""Benchmark: the same analytics on DuckDB and on Spark (local, and Spark Connect if given).

Generates the synthetic shop of ``kpi_bench.py`` (DuckDB SQL, deterministic) at the scale asked,
publishes it as a Spark warehouse snapshot (Parquet, partitioned as the Spark warehouse keeps it),
then times, each engine in its own subprocess (so peak memory is its own):

* the full KPI catalogue by month (``insight.kpis.kpi_frame``);
* RFM scores of every buyer, brought back to Python (``insight.rfm.rfm_scores``);
* the number of members of a three-condition segment (``segments.compile``).

The baseline is DuckDB in the same run; each Spark time is printed as a ratio to it. Peak memory:
the Python process's peak RSS (VmHWM), plus the Spark driver JVM's peak (``VmHWM``) for Spark local (for
Spark Connect the JVM is the server's, not measured here). Usage::

    python bench/engines_bench.py [--lines 1000000] [--remote sc://127.0.0.1:15002]

Orders are ``lines / 2.9``, customers ``lines / 10``, events ``lines / 2`` (the ratios of the
10M-line KPI benchmark).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import kpi_bench  # the generator of the KPI benchmark

SEGMENT = {"all": [
    {"type": "orders", "measure": "count", "op": ">=", "value": 2},
    {"type": "orders", "measure": "amount", "op": ">=", "value": "100.00",
     "window": {"last": 365, "unit": "days"}},
    {"not": {"type": "events", "event": "view", "op": ">", "value": 0,
             "window": {"last": 30, "unit": "days"}}},
]}


def publish_as_spark(duck_path: Path, data_dir: Path) -> float:
    """Copy every fact table of the DuckDB file into a new Spark warehouse snapshot."""
    from growthwheel.config import Settings
    from growthwheel.warehouse import lake
    from growthwheel.warehouse.schema import TABLES

    started = time.perf_counter()
    cfg = Settings(data_dir=data_dir, warehouse="spark", database_url=None)
    con = lake.load_snapshot(cfg, list(TABLES))
    try:
        con.execute(f"ATTACH '{duck_path}' AS src (READ_ONLY)")
        for name in TABLES:
            con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM src."{name}"')
        con.execute("DETACH src")
        lake.publish_snapshot(cfg, con)
    finally:
        con.close()
    return time.perf_counter() - started


def _peak_mb(pid: str) -> float:
    """Peak resident memory (``VmHWM``) of a process, in MiB (``ru_maxrss`` would carry the
    parent's peak across ``exec``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _jvm_peak_mb() -> float:
    """Peak resident memory of this process's child processes (the Spark JVM), in MiB."""
    return sum(_peak_mb(pid) for task in Path("/proc/self/task").iterdir()
               for pid in (task / "children").read_text().split())


def step(engine: str, data_dir: str, remote: str | None) -> dict[str, Any]:
    """Run the three analytics on one engine; seconds of each (after a warm-up count)."""
    from growthwheel.config import Settings
    from growthwheel.insight import kpis, rfm
    from growthwheel.segments import compile as seg
    from growthwheel.segments.definition import parse_definition
    from growthwheel.warehouse import db

    cfg = Settings(data_dir=Path(data_dir), warehouse="duckdb" if engine == "duckdb" else "spark",
                   spark_remote=remote if engine == "spark-connect" else None, database_url=None)
    started = time.perf_counter()
    con = db.connect(cfg)
    orders = int(con.table("orders").count().execute())
    out: dict[str, Any] = {"start_seconds": time.perf_counter() - started, "orders": orders}

    t = time.perf_counter()
    frame = kpis.kpi_frame(con, by="month")
    out["kpi_seconds"] = time.perf_counter() - t
    out["gmv"] = str(sum(frame["gmv"]))

    as_of = date(2024, 12, 31)
    t = time.perf_counter()
    scores = rfm.rfm_scores(con.table("orders"), as_of).to_pyarrow()
    out["rfm_seconds"] = time.perf_counter() - t
    out["rfm_rows"] = scores.num_rows

    node = parse_definition(json.dumps(SEGMENT))
    ctx = seg.Context(as_of=as_of, timezone="Asia/Shanghai", currency_exponent=2)
    t = time.perf_counter()
    members = seg.member_ids(node, seg.load_sources(con, node, as_of), ctx).count().execute()
    out["segment_seconds"] = time.perf_counter() - t
    out["members"] = int(members)
    out["max_rss_mb"] = _peak_mb("self")
    out["jvm_peak_mb"] = _jvm_peak_mb() if engine == "spark-local" else None
    return out


def main() -> None:
    """Generate, publish, run each engine in a subprocess, print times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--remote", help="sc://host:port of a Spark Connect server to time as well")
    parser.add_argument("--step", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        engine, data_dir, remote = args.step
        print(json.dumps(step(engine, data_dir, remote or None)))
        return

    work = Path(tempfile.mkdtemp(prefix="gw-engines-bench-"))
    try:
        run(work, args.lines, args.remote)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, lines: int, remote: str | None) -> None:
    """Generate and publish the shop under ``work``, time every engine, print the report."""
    orders, customers, events = int(lines / 2.9), max(lines // 10, 1000), lines // 2
    duck_dir, spark_dir = work / "duckdb", work / "spark"
    duck_dir.mkdir()
    print(f"generating {customers:,} customers, {orders:,} orders, {lines:,} lines, {events:,} events",
          flush=True)
    gen = kpi_bench.generate(duck_dir / "warehouse.duckdb", customers, orders, lines, events)
    pub = publish_as_spark(duck_dir / "warehouse.duckdb", spark_dir)
    print(f"  generated in {gen:.1f} s; published as a Spark snapshot in {pub:.1f} s", flush=True)

    engines = ["duckdb", "spark-local"] + (["spark-connect"] if remote else [])
    results: dict[str, dict[str, Any]] = {}
    for engine in engines:
        data_dir = duck_dir if engine == "duckdb" else spark_dir
        done = subprocess.run(
            [sys.executable, __file__, "--step", engine, str(data_dir), remote or ""],
            capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{engine} failed:\n{done.stderr[-3000:]}")
            continue
        results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
    base = results.get("duckdb")
    print(f"\n{'engine':<15}{'start s':>9}{'KPIs s':>9}{'RFM s':>9}{'segment s':>11}"
          f"{'py RSS MiB':>12}{'JVM MiB':>9}")
    for engine, r in results.items():
        jvm = f"{r['jvm_peak_mb']:.0f}" if r["jvm_peak_mb"] else "-"
        print(f"{engine:<15}{r['start_seconds']:>9.1f}{r['kpi_seconds']:>9.2f}{r['rfm_seconds']:>9.2f}"
              f"{r['segment_seconds']:>11.2f}{r['max_rss_mb']:>12.0f}{jvm:>9}")
    if base:
        for engine, r in results.items():
            if engine == "duckdb":
                continue
            same = (r["gmv"], r["rfm_rows"], r["members"]) == (base["gmv"], base["rfm_rows"], base["members"])
            print(f"{engine} / duckdb: KPIs {r['kpi_seconds'] / base['kpi_seconds']:.1f}x, "
                  f"RFM {r['rfm_seconds'] / base['rfm_seconds']:.1f}x, "
                  f"segment {r['segment_seconds'] / base['segment_seconds']:.1f}x; "
                  f"same answers: {same}")


if __name__ == "__main__":
    main()
