"""Benchmark: RFM scores and both segment schemes for 1M customers / 3.5M orders, against pandas.

Generates the ``orders`` table with DuckDB SQL into a temporary DuckDB file with the stored
warehouse schema (deterministic: pseudo-random numbers come from ``hash``; every customer has a
paid first order, the other orders go to customers with a skew, 8 % of them unpaid, some
refunded), then times, each in its own subprocess so that peak memory is measured separately:

* ``rfm_scores`` (Ibis on DuckDB): every customer's R, F, M, quintile scores, classic segment and
  value class, executed into a pandas DataFrame;
* ``rfm_report``: the summary (11 segments, 8 classes, the R × F grid) in one grouped query;
* the baseline: the same per-customer computation in pandas, written from the definitions, over the
  orders loaded into memory (loading time reported separately).

Each computation runs three times in its process and the best time is reported (the machine may be
shared; the first, cold, run is printed too).

Checks that both give identical scores, segments and classes for every customer, and prints the
times and the ratio pandas / Ibis. Usage::

    python bench/rfm_bench.py [--customers 1000000] [--orders 3500000] [--keep DIR | --reuse FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from growthwheel.warehouse import schema

AS_OF = date(2024, 12, 31)
DAYS = 730
#: Each measured computation runs this many times in its process; the best time is reported.
RUNS = 3


def generate(path: Path, customers: int, orders: int) -> float:
    """Write the orders into a new DuckDB warehouse file; return the seconds it took."""
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    for table in schema.TABLES.values():
        con.execute(schema.ddl(table.name, table.stored))
    con.execute("CREATE MACRO u(i, salt) AS (hash(i, salt) % 1000003)::DOUBLE / 1000003")
    # Orders 0 .. customers-1 are each customer's first (paid); the rest are skewed repeat orders.
    con.execute(f"""
        INSERT INTO orders BY NAME
        WITH o AS (
            SELECT i,
                   CASE WHEN i < {customers} THEN i
                        ELSE (({customers} - 1) * pow(u(i, 'cust'), 2.5))::BIGINT END AS c,
                   TIMESTAMP '2023-01-01' + to_seconds((u(i, 't') * {DAYS} * 86400)::BIGINT)
                       AS ordered_at,
                   CASE WHEN i < {customers} THEN 'paid'
                        WHEN u(i, 'st') < 0.05 THEN 'cancelled' WHEN u(i, 'st') < 0.08 THEN 'pending'
                        WHEN u(i, 'st') < 0.10 THEN 'refunded'
                        WHEN u(i, 'st') < 0.13 THEN 'partially_refunded'
                        WHEN u(i, 'st') < 0.50 THEN 'completed' ELSE 'paid' END AS status,
                   -- prices on a grid of round amounts, so that equal monetary values (ties) occur
                   (990 + (hash(i, 'amt') % 60) * 500)::BIGINT AS total
            FROM range({orders}) t(i)
        )
        SELECT 'O' || i AS order_id, 'C' || c AS customer_id, ordered_at,
               CAST(ordered_at + INTERVAL 8 HOUR AS DATE) AS order_date, status, 'CNY' AS currency,
               total AS total_amount, total AS gross_amount, 0 AS discount_amount,
               800 AS shipping_amount,
               CASE WHEN status = 'refunded' THEN total
                    WHEN status = 'partially_refunded' THEN total // 2
                    WHEN u(i, 'nullref') < 0.5 THEN NULL ELSE 0 END AS refunded_amount
        FROM o
    """)
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


def _max_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ``VmHWM``), DuckDB's memory included."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


COMPARED = ["customer_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
            "segment", "value_class"]


def step_ibis(db: str, out: str | None) -> dict[str, Any]:
    """Every customer's scores and segments through Ibis on DuckDB: into Arrow (``out`` None) or
    into a pandas DataFrame saved to ``out`` for the comparison."""
    import ibis

    from growthwheel.insight.rfm import rfm_scores

    raw = duckdb.connect(db, read_only=True)
    raw.execute("SET TimeZone = 'UTC'")
    con = ibis.duckdb.from_connection(raw)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        expr = rfm_scores(con.table("orders"), AS_OF)
        result = expr.to_pyarrow() if out is None else expr.execute()
        times.append(time.perf_counter() - started)
    if out is not None:
        result[COMPARED].to_parquet(out)
    return {"seconds": min(times), "first": times[0], "customers": len(result),
            "max_rss_mb": _max_rss_mb()}


def step_report(db: str) -> dict[str, Any]:
    """The RFM summary (segments, classes, grid) in one grouped query."""
    import ibis

    from growthwheel.insight.rfm import rfm_report

    raw = duckdb.connect(db, read_only=True)
    raw.execute("SET TimeZone = 'UTC'")
    con = ibis.duckdb.from_connection(raw)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        report = rfm_report(con.table("orders"), AS_OF)
        times.append(time.perf_counter() - started)
    segments = {s["segment"]: s["customers"] for s in report["segments"]}
    return {"seconds": min(times), "first": times[0], "customers": report["customers"],
            "segments": segments, "max_rss_mb": _max_rss_mb()}


def pandas_rfm(orders: Any) -> Any:
    """RFM from the definitions in pandas: the baseline (and an independent check)."""
    import numpy as np
    import pandas as pd

    paid = orders[orders["status"].isin(schema.PAID_STATUSES)
                  & (orders["order_date"] <= pd.Timestamp(AS_OF))]
    net = paid["total_amount"] - paid["refunded_amount"].fillna(0).astype("int64")
    per = paid.assign(net=net).groupby("customer_id", sort=False).agg(
        last=("order_date", "max"), frequency=("order_id", "size"), monetary=("net", "sum"))
    per["recency_days"] = (pd.Timestamp(AS_OF) - per["last"]).dt.days
    n = len(per)

    def score(worse_first: pd.Series) -> pd.Series:
        below = worse_first.rank(method="min").to_numpy(dtype="int64") - 1
        return pd.Series(1 + (5 * below) // n, index=worse_first.index)

    per["r_score"] = score(-per["recency_days"])
    per["f_score"] = score(per["frequency"])
    per["m_score"] = score(per["monetary"])
    fm = (per["f_score"] + per["m_score"] + 1) // 2
    grid = {
        5: ["New Customers", "Potential Loyalist", "Loyal Customers", "Champions", "Champions"],
        4: ["Promising", "Potential Loyalist", "Loyal Customers", "Champions", "Champions"],
        3: ["Promising", "Need Attention", "Need Attention", "Loyal Customers", "Loyal Customers"],
        2: ["About To Sleep", "About To Sleep", "At Risk", "At Risk", "At Risk"],
        1: ["Lost", "Hibernating", "At Risk", "Can't Lose Them", "Can't Lose Them"],
    }
    table = np.array([grid[r] for r in range(1, 6)], dtype=object)
    per["segment"] = table[per["r_score"].to_numpy() - 1, fm.to_numpy() - 1]
    r_high = per["recency_days"] * n < per["recency_days"].sum()
    f_high = per["frequency"] * n > per["frequency"].sum()
    m_high = per["monetary"] * n > per["monetary"].sum()
    names = np.array(["一般挽留", "重要挽留", "一般保持", "重要保持",
                      "一般发展", "重要发展", "一般价值", "重要价值"], dtype=object)
    code = r_high.to_numpy().astype(int) * 4 + f_high.to_numpy().astype(int) * 2 \
        + m_high.to_numpy().astype(int)
    per["value_class"] = names[code]
    return per.reset_index()


def step_pandas(db: str, out: str) -> dict[str, Any]:
    """Baseline: the same per-customer computation in pandas over the orders in memory."""
    import pandas as pd

    raw = duckdb.connect(db, read_only=True)
    started = time.perf_counter()
    orders = raw.execute(
        "SELECT order_id, customer_id, order_date, status, total_amount, refunded_amount FROM orders"
    ).df()
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    loaded = time.perf_counter() - started
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        per = pandas_rfm(orders)
        times.append(time.perf_counter() - started)
    per[COMPARED].to_parquet(out)
    return {"seconds": min(times), "first": times[0], "load_seconds": loaded,
            "customers": len(per), "max_rss_mb": _max_rss_mb()}


def run_step(db: Path, *args: str) -> dict[str, Any]:
    """Run one step in a subprocess and return its JSON report."""
    done = subprocess.run(
        [sys.executable, __file__, "--step", *args, "--db", str(db)],
        check=True, capture_output=True, text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(ibis_file: Path, pandas_file: Path) -> int:
    """Number of customers whose results differ between the two (0 expected)."""
    import pandas as pd

    a = pd.read_parquet(ibis_file).sort_values("customer_id").reset_index(drop=True)
    b = pd.read_parquet(pandas_file).sort_values("customer_id").reset_index(drop=True)
    if len(a) != len(b) or not (a["customer_id"] == b["customer_id"]).all():
        return max(len(a), len(b))
    differ = pd.Series(False, index=a.index)
    for column in COMPARED[1:]:
        left, right = a[column], b[column]
        if column not in ("segment", "value_class"):
            left, right = left.astype("int64"), right.astype("int64")
        differ |= left != right
    return int(differ.sum())


def main() -> None:
    """Generate the data, run every step, check and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=3_500_000)
    parser.add_argument("--keep", type=Path, help="keep the generated DuckDB file in this directory")
    parser.add_argument("--reuse", type=Path, help="use an already generated DuckDB file")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step:
        kind = args.step[0]
        if kind == "ibis":
            result = step_ibis(args.db, args.step[1] if len(args.step) > 1 else None)
        elif kind == "report":
            result = step_report(args.db)
        else:
            result = step_pandas(args.db, args.step[1])
        print(json.dumps(result, ensure_ascii=False))
        return

    workdir = Path(tempfile.mkdtemp(prefix="gw-rfm-bench-"))
    try:
        if args.reuse:
            db = args.reuse
            print(f"using {db}")
        else:
            db = (args.keep or workdir) / "warehouse.duckdb"
            db.parent.mkdir(parents=True, exist_ok=True)
            db.unlink(missing_ok=True)
            print(f"generating {args.customers:,} customers, {args.orders:,} orders ...", flush=True)
            gen = generate(db, args.customers, args.orders)
            print(f"  generated in {gen:.1f} s ({db.stat().st_size / 2**20:.0f} MiB)")
        ibis_file, pandas_file = workdir / "ibis.parquet", workdir / "pandas.parquet"
        ours = run_step(db, "ibis")
        print(f"rfm_scores (Ibis on DuckDB) into Arrow, {ours['customers']:,} customers: "
              f"{ours['seconds']:.2f} s (first run {ours['first']:.2f} s), "
              f"peak RSS {ours['max_rss_mb']:.0f} MiB", flush=True)
        frame = run_step(db, "ibis", str(ibis_file))
        print(f"rfm_scores into a pandas DataFrame: {frame['seconds']:.2f} s (first run "
              f"{frame['first']:.2f} s), peak RSS {frame['max_rss_mb']:.0f} MiB", flush=True)
        report = run_step(db, "report")
        print(f"rfm_report (segments + classes + grid): {report['seconds']:.2f} s (first run "
              f"{report['first']:.2f} s), peak RSS {report['max_rss_mb']:.0f} MiB", flush=True)
        base = run_step(db, "pandas", str(pandas_file))
        print(f"pandas baseline: {base['seconds']:.2f} s (first run {base['first']:.2f} s; "
              f"+{base['load_seconds']:.2f} s to load the orders), "
              f"peak RSS {base['max_rss_mb']:.0f} MiB", flush=True)
        differ = compare(ibis_file, pandas_file)
        print(f"customers whose scores, segment or class differ: {differ}")
        print(f"segments: {json.dumps(report['segments'], ensure_ascii=False)}")
        with_load = base["seconds"] + base["load_seconds"]
        print(f"ratio pandas / rfm_scores (Arrow): {base['seconds'] / ours['seconds']:.2f}x, with "
              f"pandas' load {with_load / ours['seconds']:.2f}x; pandas / rfm_scores (DataFrame): "
              f"{base['seconds'] / frame['seconds']:.2f}x, with load {with_load / frame['seconds']:.2f}x; "
              f"pandas / rfm_report: {base['seconds'] / report['seconds']:.2f}x, with load "
              f"{with_load / report['seconds']:.2f}x")
        if differ:
            raise SystemExit("RFM results differ between Ibis and pandas")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
