"""Benchmark: analysing an A/B test over 10M exposure events, end to end, on DuckDB.

Generates with DuckDB SQL (deterministic: pseudo-random numbers come from ``hash``) into a fresh
warehouse with the stored schema:

* ``--events`` exposure events (``type = experiment_exposure``, ``properties`` JSON with the
  experiment key and the variant) for ``--units`` customers, each exposed several times over four
  weeks, split 50/50 by a hash of the customer id;
* ``--orders`` paid orders of those customers over the four weeks of the test and the two weeks
  before it (the CUPED pre-period), the treatment's orders about 3% larger.

Then times ``experiments.service.results`` for an experiment with five metrics — conversion,
revenue per customer (winsorised at the 99th percentile), orders per customer, AOV (ratio) and
refund rate (ratio guardrail), all with CUPED where it applies: first exposures, outcomes after
them and the pre-period aggregated in DuckDB into sufficient statistics, then the statistics
(``stats.ab.analyse``, Holm across metrics, SRM check).

Baseline (named, measured in the same run): **pandas** computing the sufficient statistics of one
metric (revenue per customer, no capping, no CUPED) from the same events and orders loaded into
memory (loading timed separately): parse the JSON properties, first exposure per customer, join
the orders after it, group by variant. Its sums are checked against ours.

Usage::

    python bench/experiment_bench.py [--events 10000000] [--units 2000000] [--orders 3000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pandas as pd

from growthwheel.config import Settings
from growthwheel.experiments import metrics, service
from growthwheel.experiments.models import Experiment
from growthwheel.experiments.schemas import MetricSpec
from growthwheel.warehouse import db as wh

KEY = "bench-checkout"
START = datetime(2025, 6, 1, tzinfo=UTC)
END = datetime(2025, 6, 29, tzinfo=UTC)
PAID = ("paid", "shipped", "completed", "partially_refunded", "refunded")


def generate(cfg: Settings, events: int, units: int, orders: int) -> float:
    """Write the exposures and orders; return the seconds it took."""
    started = time.perf_counter()
    con = wh.open_duckdb(cfg)
    try:
        con.execute(f"""
            INSERT INTO events (event_id, type, occurred_at, event_date, customer_id, properties)
            SELECT 'x' || i, 'experiment_exposure', ts, CAST(ts AS DATE), cid,
                   '{{"experiment": "{KEY}", "variant": "' ||
                   CASE WHEN hash('salt' || cid) % 2 = 0 THEN 'control' ELSE 'treatment' END || '"}}'
            FROM (SELECT i, 'u' || (hash(i, 1) % {units}) AS cid,
                         TIMESTAMP '2025-06-01'
                             + to_microseconds(CAST(hash(i, 2) % 2419200000000 AS BIGINT)) AS ts
                  FROM range({events}) r(i))
        """)
        con.execute(f"""
            INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount,
                                refunded_amount, currency)
            SELECT 'o' || i, cid, ts, CAST(ts AS DATE),
                   CASE WHEN hash(i, 5) % 50 = 0 THEN 'refunded' ELSE 'paid' END,
                   amount, CASE WHEN hash(i, 5) % 50 = 0 THEN amount ELSE 0 END, 'CNY'
            FROM (SELECT i, 'u' || (hash(i, 3) % {units}) AS cid,
                         TIMESTAMP '2025-05-18'
                             + to_microseconds(CAST(hash(i, 4) % 3628800000000 AS BIGINT)) AS ts,
                         CAST((2000 + hash(i, 6) % 30000)
                              * CASE WHEN hash('salt' || 'u' || (hash(i, 3) % {units})) % 2 = 0 THEN 1.0
                                     ELSE 1.03 END AS BIGINT) AS amount
                  FROM range({orders}) r(i))
        """)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - started


def experiment() -> Experiment:
    """The experiment analysed (not stored: ``results`` only reads its set-up)."""
    return Experiment(
        key=KEY, name="Checkout redesign", kind="experiment", status="stopped", unit="customer",
        variants=[{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        traffic=1.0, salt="salt", method="fixed", alpha=0.05, planned_units=None, cuped_days=14,
        primary_metric={"kind": "conversion"},
        secondary_metrics=[{"kind": "revenue", "cap": 0.99}, {"kind": "orders"}, {"kind": "aov"}],
        guardrail_metrics=[{"kind": "refund_rate"}],
        started_at=START, stopped_at=END, segment_id=None, layer=None, created_by="bench",
    )


def pandas_revenue(events: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Revenue-per-customer sufficient statistics with pandas (the baseline)."""
    ev = events[events["type"] == "experiment_exposure"]
    props = ev["properties"].str.extract(r'"experiment": "([^"]*)", "variant": "([^"]*)"')
    ev = ev.assign(experiment=props[0], variant=props[1])
    ev = ev[ev.experiment == KEY]
    first = ev.sort_values("occurred_at").groupby("customer_id").agg(
        first_at=("occurred_at", "first"), variant=("variant", "first"), variants=("variant", "nunique"))
    first = first[first.variants == 1]
    paid = orders[orders.status.isin(PAID)]
    paid = paid.assign(net=paid.total_amount - paid.refunded_amount.fillna(0))
    joined = paid.merge(first, left_on="customer_id", right_index=True)
    joined = joined[(joined.ordered_at >= joined.first_at) & (joined.ordered_at < END.replace(tzinfo=None))]
    per_unit = joined.groupby("customer_id").net.sum().astype("float64")
    value = per_unit.reindex(first.index, fill_value=0.0)
    frame = pd.DataFrame({"variant": first.variant, "y": value})
    return frame.assign(y2=frame.y ** 2).groupby("variant").agg(n=("y", "size"), s=("y", "sum"),
                                                                ss=("y2", "sum"))


def _threads(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT current_setting('threads')").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    """Run the benchmark and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--units", type=int, default=2_000_000)
    parser.add_argument("--orders", type=int, default=3_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data directory here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="gw-exp-bench-"))
    cfg = Settings(data_dir=root, database_url=None)
    try:
        seconds = generate(cfg, args.events, args.units, args.orders)
        print(f"generated {args.events:,} exposure events for {args.units:,} customers and "
              f"{args.orders:,} orders in {seconds:.1f} s")
        con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        backend: Any = ibis.duckdb.from_connection(con)
        exp = experiment()

        started, cpu = time.perf_counter(), time.process_time()
        found = service.results(backend, exp)
        ours, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"growthwheel results (5 metrics, CUPED, capping, SRM, Holm): {ours:.2f} s wall, "
              f"{cpu:.2f} s CPU over {_threads(con)} "
              f"threads ({found['status']['units']:,} customers, target < 10 s)")
        for m in found["metrics"]:
            comp = m["comparisons"][0]
            rel = comp["relative"]
            print(f"  {m['label']:<12} {m['role']:<9} relative {rel['estimate']:+.2%} "
                  f"CI [{rel['ci_lower']:+.2%}, {rel['ci_upper']:+.2%}]  p_adj {comp['p_adjusted']:.3g}")
        window = service.window_of(exp)
        started = time.perf_counter()
        (revenue,) = metrics.metric_stats(backend, KEY, "customer", window, ["control", "treatment"],
                                          [MetricSpec(kind="revenue")], cuped_days=0)
        one_metric = time.perf_counter() - started
        print(f"growthwheel sufficient statistics of revenue alone: {one_metric:.2f} s")

        started = time.perf_counter()
        events = con.execute("SELECT type, occurred_at, customer_id, properties FROM events").df()
        orders = con.execute(
            "SELECT customer_id, ordered_at, status, total_amount, refunded_amount FROM orders").df()
        loading = time.perf_counter() - started
        started = time.perf_counter()
        baseline = pandas_revenue(events, orders)
        pandas_seconds = time.perf_counter() - started
        con.close()
        print(f"baseline pandas (revenue alone, data in memory): {pandas_seconds:.2f} s "
              f"(+ {loading:.2f} s loading)")
        for stats in revenue:
            row = baseline.loc[stats.name]
            assert int(row.n) == stats.n, (stats.name, row.n, stats.n)
            assert abs(float(row.s) - stats.sum) <= 1e-6 * max(1.0, abs(stats.sum)), (stats.name, row.s)
        print("pandas and growthwheel agree on n and Σ revenue per variant")
        print(f"ratio pandas / growthwheel, same metric: {pandas_seconds / one_metric:.1f}x; "
              f"pandas (one metric) / growthwheel (five metrics end to end): {pandas_seconds / ours:.1f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
