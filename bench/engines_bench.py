"""Benchmark: the same analytics on DuckDB and on Spark (local, and Spark Connect if given).

Generates the synthetic shop of ``kpi_bench.py`` (DuckDB SQL, deterministic) at the scale asked,
publishes it as a Spark warehouse snapshot (Parquet, partitioned as the Spark warehouse keeps it),
then times, each engine in its own subprocess (so peak memory is its own):

* the full KPI catalogue by month (``insight.kpis.kpi_frame``);
* RFM scores of every buyer, brought back to Python (``insight.rfm.rfm_scores``);
* the number of members of a three-condition segment (``segments.compile``).

The baseline is DuckDB in the same run; each Spark time is printed as a ratio to it. Peak memory:
the Python process's peak RSS (VmHWM), plus the Spark driver JVM's peak (``VmHWM``) for Spark local (for
Spark Connect the JVM is the server's, not measured here).

Also timed, each in its own subprocess, when ``--import-lines`` is not 0: an import of an
order-lines CSV written from the generated shop (``--import-lines`` lines, default all of them)
into an empty DuckDB warehouse and into an empty Spark warehouse (``engine="spark"``: validation,
quarantine and merge on Spark when ``warehouse.spark_ingest`` takes the file, else in DuckDB),
with the rows imported and quarantined compared. Spark local's driver gets
``--spark-driver-memory`` (through ``PYSPARK_SUBMIT_ARGS``; Growthwheel's own default is 1 GB,
too small for tens of millions of lines). ``--duckdb-memory 6GB`` caps every DuckDB connection
of the run (DuckDB's default is 80% of the machine; beyond its limit it spills). Each step's raw
figures are printed as it ends; the analytics run before the imports. Usage::

    python bench/engines_bench.py [--lines 1000000] [--remote sc://127.0.0.1:15002]
                                  [--import-lines N] [--spark-driver-memory 6g] [--skip-spark]
                                  [--duckdb-memory 6GB]

Orders are ``lines / 2.9``, customers ``lines / 10``, events ``lines / 2`` (the ratios of the
10M-line KPI benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
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


#: The ``--duckdb-memory`` of the run, handed to the step subprocesses.
MEMORY_ENV = "GW_BENCH_DUCKDB_MEMORY"


def limit_duckdb_memory(limit: str) -> None:
    """Give every DuckDB connection this process opens (the generator's, the lake's, Ibis's)
    ``memory_limit = limit`` unless it sets one, and pass it on to the step subprocesses."""
    import duckdb

    os.environ[MEMORY_ENV] = limit
    connect = duckdb.connect

    def limited(database: Any = ":memory:", read_only: bool = False,
                config: dict[str, Any] | None = None) -> Any:
        return connect(database=database, read_only=read_only,
                       config={"memory_limit": limit, **(config or {})})

    duckdb.connect = limited


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


#: The columns of the order-lines CSV the import step reads (the generic format's names).
CSV_SELECT = """
    SELECT l.order_id, o.customer_id,
           strftime(o.ordered_at, '%Y-%m-%d %H:%M:%S') || '+00:00' AS ordered_at,
           l.sku, l.quantity, (l.line_total / 100)::DECIMAL(18, 2) AS line_total,
           (l.unit_price / 100)::DECIMAL(18, 2) AS unit_price,
           (l.discount_amount / 100)::DECIMAL(18, 2) AS discount, 'CNY' AS currency, o.status,
           o.channel, l.product_name, l.category,
           strftime(o.paid_at, '%Y-%m-%d %H:%M:%S') || '+00:00' AS paid_at,
           (l.refunded_amount / 100)::DECIMAL(18, 2) AS refunded_amount, o.channel AS utm_source
    FROM src.order_lines l JOIN src.orders o USING (order_id)
"""


def write_csv(duck_path: Path, csv_path: Path, lines: int, total_lines: int, orders: int) -> int:
    """Write the first orders of the generated shop, about ``lines`` lines, as an order-lines CSV
    (whole orders only); return the number of lines written."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{duck_path}' AS src (READ_ONLY)")
    last_order = orders if lines >= total_lines else lines * orders // total_lines
    con.execute(f"COPY ({CSV_SELECT} WHERE CAST(substr(l.order_id, 2) AS BIGINT) < {last_order}) "
                f"TO '{csv_path}' (HEADER, DELIMITER ',')")
    row = con.execute(f"SELECT count(*) FROM read_csv('{csv_path}')").fetchone()
    con.close()
    return int(row[0]) if row else 0


def import_step(engine: str, data_dir: str, csv_path: str) -> dict[str, Any]:
    """Import the CSV into the empty warehouse of ``data_dir`` (DuckDB or Spark)."""
    import inspect

    from growthwheel.config import Settings
    from growthwheel.warehouse import ingest

    cfg = Settings(data_dir=Path(data_dir), warehouse="duckdb" if engine == "duckdb" else "spark",
                   database_url=None)
    kwargs: dict[str, Any] = {}
    on_spark = False
    if engine != "duckdb" and "engine" in inspect.signature(ingest.import_files).parameters:
        from growthwheel.warehouse import schema, spark_ingest

        kwargs["engine"] = "spark"
        on_spark = spark_ingest.supported(cfg, schema.TABLES["order_lines"], "generic",
                                          [Path(csv_path)])
    started, cpu = time.perf_counter(), _cpu()
    result = ingest.import_files("order_lines", [csv_path], cfg=cfg, **kwargs)
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    return {"seconds": seconds, "cpu": cpu, "rows_read": result.rows_read,
            "quarantined": result.rows_quarantined, "on_spark": on_spark,
            "tables": {k: v.inserted for k, v in result.tables.items()
                       if hasattr(v, "inserted")},
            "max_rss_mb": _peak_mb("self"), "jvm_peak_mb": _jvm_peak_mb() or None}


def _children_cpu() -> float:
    """CPU seconds (user + system, all threads) used so far by this process's children (the Spark
    driver JVM in local mode)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _cpu() -> float:
    """CPU seconds of this process and its children so far (a busy machine inflates wall time,
    much less this)."""
    return time.process_time() + _children_cpu()


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

    t, c = time.perf_counter(), _cpu()
    frame = kpis.kpi_frame(con, by="month")
    out["kpi_seconds"], out["kpi_cpu"] = time.perf_counter() - t, _cpu() - c
    out["gmv"] = str(sum(frame["gmv"]))

    as_of = date(2024, 12, 31)
    t, c = time.perf_counter(), _cpu()
    scores = rfm.rfm_scores(con.table("orders"), as_of).to_pyarrow()
    out["rfm_seconds"], out["rfm_cpu"] = time.perf_counter() - t, _cpu() - c
    out["rfm_rows"] = scores.num_rows

    node = parse_definition(json.dumps(SEGMENT))
    ctx = seg.Context(as_of=as_of, timezone="Asia/Shanghai", currency_exponent=2)
    t, c = time.perf_counter(), _cpu()
    members = seg.member_ids(node, seg.load_sources(con, node, as_of), ctx).count().execute()
    out["segment_seconds"], out["segment_cpu"] = time.perf_counter() - t, _cpu() - c
    out["members"] = int(members)
    out["max_rss_mb"] = _peak_mb("self")
    out["jvm_peak_mb"] = _jvm_peak_mb() if engine == "spark-local" else None
    return out


def main() -> None:
    """Generate, publish, run each engine in a subprocess, print times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--remote", help="sc://host:port of a Spark Connect server to time as well")
    parser.add_argument("--import-lines", type=int, default=None,
                        help="lines of the CSV to import on each engine (default: --lines; 0: none)")
    parser.add_argument("--spark-driver-memory", default="6g",
                        help="Spark local's driver memory (Growthwheel's own default is 1g)")
    parser.add_argument("--skip-spark", action="store_true", help="time DuckDB only")
    parser.add_argument("--duckdb-memory", default=os.environ.get(MEMORY_ENV),
                        help="memory_limit of every DuckDB connection of the run (e.g. 6GB; "
                             "DuckDB's own default is 80%% of the machine's memory)")
    parser.add_argument("--step", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--import-step", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb_memory:
        limit_duckdb_memory(args.duckdb_memory)
    if args.step:
        engine, data_dir, remote = args.step
        print(json.dumps(step(engine, data_dir, remote or None)))
        return
    if args.import_step:
        print(json.dumps(import_step(*args.import_step)))
        return

    work = Path(tempfile.mkdtemp(prefix="gw-engines-bench-"))
    try:
        run(work, args.lines, args.remote,
            import_lines=args.lines if args.import_lines is None else args.import_lines,
            driver_memory=args.spark_driver_memory, skip_spark=args.skip_spark)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _subprocess(args: list[str], env: dict[str, str]) -> dict[str, Any] | None:
    """Run this script with ``args``; its JSON report, or None (printing why) when it failed."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False, env=env)
    if done.returncode != 0:
        print(f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}", flush=True)
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def run(work: Path, lines: int, remote: str | None, *, import_lines: int = 0,
        driver_memory: str = "6g", skip_spark: bool = False) -> None:
    """Generate and publish the shop under ``work``, time every engine, print the report."""
    orders, customers, events = int(lines / 2.9), max(lines // 10, 1000), lines // 2
    duck_dir, spark_dir = work / "duckdb", work / "spark"
    duck_dir.mkdir()
    env = dict(os.environ, PYSPARK_SUBMIT_ARGS=f"--driver-memory {driver_memory} pyspark-shell")
    print(f"generating {customers:,} customers, {orders:,} orders, {lines:,} lines, {events:,} events "
          f"({_load()})", flush=True)
    gen = kpi_bench.generate(duck_dir / "warehouse.duckdb", customers, orders, lines, events)
    print(f"  generated in {gen:.1f} s", flush=True)
    if not skip_spark:
        pub = publish_as_spark(duck_dir / "warehouse.duckdb", spark_dir)
        print(f"  published as a Spark snapshot in {pub:.1f} s", flush=True)
    print(f"  peak RSS of the generating process: {_peak_mb('self'):,.0f} MiB", flush=True)

    engines = ["duckdb"] + ([] if skip_spark else ["spark-local"]) + (["spark-connect"] if remote else [])
    results: dict[str, dict[str, Any]] = {}
    for engine in engines:
        data_dir = duck_dir if engine == "duckdb" else spark_dir
        print(f"  analytics on {engine} ({_load()}) ...", flush=True)
        result = _subprocess(["--step", engine, str(data_dir), remote or ""], env)
        if result is not None:
            results[engine] = result
            print(f"    {json.dumps(result)}", flush=True)
    imports: dict[str, dict[str, Any]] = {}
    if import_lines:
        csv_path = work / "order_lines.csv"
        written = write_csv(duck_dir / "warehouse.duckdb", csv_path, import_lines, lines, orders)
        print(f"  CSV of {written:,} order lines for the import: "
              f"{csv_path.stat().st_size / 2**20:,.0f} MiB", flush=True)
        for engine in ["duckdb"] + ([] if skip_spark else ["spark-local"]):
            target = work / f"import-{engine}"
            print(f"  importing on {engine} ({_load()}) ...", flush=True)
            result = _subprocess(["--import-step", engine, str(target), str(csv_path)], env)
            shutil.rmtree(target, ignore_errors=True)
            if result is not None:
                imports[engine] = result
                print(f"    {json.dumps(result)}", flush=True)
                print(f"    {result['seconds']:.1f} s, {result['rows_read']:,} rows read, "
                      f"{result['quarantined']:,} quarantined", flush=True)
        csv_path.unlink()

    print(f"finished ({_load()})")
    if imports:
        base_import = imports.get("duckdb")
        print(f"\n{'import':<15}{'seconds':>9}{'CPU s':>9}{'rows/s':>11}{'quarantined':>13}"
              f"{'py RSS MiB':>12}{'JVM MiB':>9}  runs on")
        for engine, r in imports.items():
            jvm = f"{r['jvm_peak_mb']:.0f}" if r["jvm_peak_mb"] else "-"
            where = "Spark" if r["on_spark"] else "DuckDB"
            print(f"{engine:<15}{r['seconds']:>9.1f}{r['cpu']:>9.1f}{r['rows_read'] / r['seconds']:>11,.0f}"
                  f"{r['quarantined']:>13,}{r['max_rss_mb']:>12.0f}{jvm:>9}  {where}")
        if base_import:
            for engine, r in imports.items():
                if engine != "duckdb":
                    same = (r["rows_read"], r["quarantined"]) == (
                        base_import["rows_read"], base_import["quarantined"])
                    print(f"{engine} / duckdb import: {r['seconds'] / base_import['seconds']:.1f}x "
                          f"(CPU {r['cpu'] / base_import['cpu']:.1f}x); "
                          f"same rows read and quarantined: {same}")
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
            print(f"  CPU seconds (Python + Spark local's JVM; Spark Connect's server not counted): "
                  f"KPIs {r['kpi_cpu']:.1f} vs {base['kpi_cpu']:.1f} "
                  f"({r['kpi_cpu'] / base['kpi_cpu']:.1f}x), RFM {r['rfm_cpu']:.1f} vs "
                  f"{base['rfm_cpu']:.1f} ({r['rfm_cpu'] / base['rfm_cpu']:.1f}x), segment "
                  f"{r['segment_cpu']:.1f} vs {base['segment_cpu']:.1f} "
                  f"({r['segment_cpu'] / base['segment_cpu']:.1f}x)")


if __name__ == "__main__":
    main()
