"""Product roles on a simulated shop: the Ibis/DuckDB matrix (``growthwheel.products.roles``)
against the same per-SKU figures computed in pandas from the same tables, in the same run, and
how the designed roles (``ground_truth.json`` → ``product_roles``) are recovered.

    nice -n 5 .venv/bin/python bench/product_roles_bench.py [--customers 20000] [--period last180]

Prints the time of each (the pandas side excludes reading the tables into memory), the ratio, and
checks that orders, first orders and pull-through agree exactly for every SKU.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from growthwheel.config import Settings
from growthwheel.insight.rfm import paid_orders
from growthwheel.products import roles as pr
from growthwheel.sim.shop import build_demo_files
from growthwheel.warehouse import connect, ingest


def pandas_figures(orders: pd.DataFrame, lines: pd.DataFrame, period: pr.Period) -> pd.DataFrame:
    """orders, first_orders, pull_other, pull_total per SKU, the textbook way in pandas."""
    o = orders.sort_values(["customer_id", "ordered_at", "order_id"])
    first = set(o.drop_duplicates("customer_id")["order_id"])
    j = lines.merge(o[["order_id", "customer_id", "ordered_at", "order_date"]], on="order_id")
    day = pd.to_datetime(j["order_date"]).dt.date
    w = j[(day >= period.start) & (day <= period.end)].copy()
    w["first"] = w["order_id"].isin(first)
    base = w.groupby("sku").agg(orders=("order_id", "nunique"))
    base["first_orders"] = w[w["first"]].groupby("sku")["order_id"].nunique()
    t0 = (w.groupby(["sku", "customer_id"], as_index=False)["ordered_at"].min()
          .rename(columns={"ordered_at": "t0"}))
    later = t0.merge(w[["customer_id", "ordered_at", "sku", "line_total"]].rename(columns={"sku": "c_sku"}),
                     on="customer_id")
    later = later[later["ordered_at"] >= later["t0"]]
    later["other"] = later["line_total"].where(later["c_sku"] != later["sku"], 0)
    pull = later.groupby("sku").agg(pull_total=("line_total", "sum"), pull_other=("other", "sum"))
    return base.join(pull).fillna(0).astype("int64")


def main() -> None:
    """Build, import, time both, compare, report."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--period", default="last180")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gw-roles-bench-"))
    files = build_demo_files(folder / "files", customers=args.customers, seed=7)
    cfg = Settings(data_dir=folder / "data", database_url=None)
    for table in ("products", "order_lines", "events"):
        ingest.import_files(table, [files.paths[table]], cfg=cfg)
    truth = json.loads(files.ground_truth.read_text("utf-8"))["product_roles"]
    con = connect(cfg)
    started = time.perf_counter()
    matrix = pr.roles(con, args.period)
    ibis_s = time.perf_counter() - started
    period = pr.parse_period(args.period, pr.last_order_date(con))
    orders = paid_orders(con.table("orders")).execute()
    lines = con.table("order_lines").select("order_id", "sku", "line_total").execute()
    started = time.perf_counter()
    expected = pandas_figures(orders, lines, period)
    pandas_s = time.perf_counter() - started
    figures = pr.sku_figures(con, period).execute().set_index("sku")
    same = (figures[["orders", "first_orders", "pull_other", "pull_total"]].astype("int64").sort_index()
            .equals(expected[["orders", "first_orders", "pull_other", "pull_total"]].sort_index()))
    print(f"customers {args.customers:,}, order lines {len(lines):,}, period {matrix['period']}")
    print(f"roles (Ibis on DuckDB, every figure and the classification): {ibis_s:.2f} s")
    print(f"pandas baseline (orders, first orders, pull-through only; tables in memory): {pandas_s:.2f} s")
    print(f"ratio pandas / roles: {pandas_s / ibis_s:.2f}; per-SKU figures identical: {same}")
    print(f"counts: {matrix['counts']}")
    for role in ("traffic_driver", "profit_maker", "potential"):
        found = set(matrix["skus"][role])
        designed = set(truth[role])
        print(f"{role}: designed {len(designed)}, recovered {len(found & designed)}, "
              f"found {len(found)} (precision {len(found & designed) / max(1, len(found)):.2f})")
    con.disconnect()


if __name__ == "__main__":
    main()
