"""Customer list and customer 360 against the plain profile, on a simulated shop.

Prints, for the same warehouse in the same run: the existing profile query
(``customers.service.customer_profile``, the baseline), the 360's warehouse facts
(``customers.view360.warehouse_facts``: RFM, lifecycle history, CLV, tags, segments) cold and
warm (shop-wide scores remembered per warehouse version), and one page of the customer list
(``customers.listing.list_page``) unfiltered, sorted by net revenue, and drilled to an RFM
segment. Each time is the median of ``--repeat`` runs; ratios are against the baseline.

    nice -n 5 .venv/bin/python bench/customer360_bench.py [--customers 3000] [--days 365]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any


def _median(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import ibis

    from growthwheel.config import Settings
    from growthwheel.customers import listing, view360
    from growthwheel.customers import service as customers
    from growthwheel.segments import service as segments
    from growthwheel.segments.definition import parse_definition
    from growthwheel.sim.demo import build_demo
    from growthwheel.warehouse import db as warehouse_db

    cfg = Settings(data_dir=Path(tempfile.mkdtemp(prefix="c360-bench-")))
    build_demo(cfg, customers=args.customers, days=args.days, seed=7, start=date(2025, 1, 1))
    con = ibis.duckdb.connect(str(cfg.warehouse_path), read_only=True)
    ctx = segments.context(cfg, con)
    orders = con.table("orders")
    top = orders.group_by("customer_id").aggregate(n=orders.count()).order_by(ibis.desc("n")).limit(1)
    cid = str(top.to_pyarrow().to_pylist()[0]["customer_id"])
    n_orders = int(orders.count().to_pyarrow().as_py())
    version = warehouse_db.warehouse_version(con)
    key = ("bench", version)

    rows = []
    base = _median(lambda: customers.customer_profile(con, cid, can_see_pii=True, currency="CNY"),
                   args.repeat)
    rows.append(("profile (baseline)", base))
    rows.append(("360 facts, cold", _median(lambda: view360.warehouse_facts(con, cid, ctx.as_of),
                                            args.repeat)))
    view360.warehouse_facts(con, cid, ctx.as_of, cache_key=key)
    rows.append(("360 facts, warm", _median(
        lambda: view360.warehouse_facts(con, cid, ctx.as_of, cache_key=key), args.repeat)))
    page = {"match_contact": True, "offset": 0, "limit": 25}
    rows.append(("list, by id", _median(lambda: listing.list_page(con, listing.ListQuery(), ctx, **page),
                                        args.repeat)))
    by_revenue = listing.ListQuery(sort="net_revenue", descending=True)
    rows.append(("list, by net revenue", _median(lambda: listing.list_page(con, by_revenue, ctx, **page),
                                                 args.repeat)))
    drilled = listing.ListQuery(definition=parse_definition(
        {"type": "score", "field": "rfm_segment", "op": "equals", "value": "Champions"}), as_of=ctx.as_of)
    rows.append(("list, RFM drill-down", _median(lambda: listing.list_page(con, drilled, ctx, **page),
                                                 args.repeat)))

    load = os.getloadavg()
    print(f"shop: {args.customers:,} customers, {n_orders:,} orders, {args.days} days; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'what':<26}{'median s':>10}{'× baseline':>12}")
    for name, seconds in rows:
        print(f"{name:<26}{seconds:>10.3f}{seconds / base:>12.2f}")


if __name__ == "__main__":
    main()
