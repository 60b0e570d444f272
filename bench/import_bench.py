"""Import throughput against DuckDB's own ``read_csv`` of the same file.

Baselines, measured in the same run on the same file:

* ``read_csv → table``: DuckDB loading the CSV into a table of a fresh database file with its own
  type detection and no checks — the ceiling for this stack;
* ``read_csv scan``: DuckDB only parsing the file (``count(*)``).

Growthwheel's import does more on top: every value validated with a reason kept for refusals,
money converted exactly, times converted to UTC plus the shop-local date, whole-order checks,
content hashes, and a keyed merge in one transaction. Re-import measures the no-change path.

Usage: ``python bench/import_bench.py [--rows 2000000]``
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from growthwheel.config import Settings
from growthwheel.warehouse.ingest import ImportResult, import_files

COLUMNS = (
    "order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,discount,currency,status,"
    "channel,product_name,category,paid_at,refunded_amount,utm_source,utm_medium,utm_campaign"
)


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A realistic order-lines export: 1–4 lines per order, Chinese product names, refunds."""
    rng = random.Random(seed)
    categories = ["美妆", "母婴", "食品", "服饰", "数码", "家居"]
    sources = [("douyin", "social"), ("baidu", "cpc"), ("", ""), ("wechat", "social")]
    with path.open("w", encoding="utf-8") as fh:
        fh.write(COLUMNS + "\n")
        written, order = 0, 0
        while written < rows:
            order += 1
            customer = rng.randrange(rows // 6 + 1)
            day = 1 + rng.randrange(28)
            month = 1 + rng.randrange(12)
            at = f"2025-{month:02d}-{day:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00+08:00"
            source, medium = rng.choice(sources)
            status = rng.choices(["paid", "completed", "refunded"], [30, 65, 5])[0]
            for _ in range(min(1 + int(rng.expovariate(1.2)), rows - written)):
                sku = rng.randrange(400)
                qty = 1 + int(rng.expovariate(2))
                price = 990 + 100 * (sku % 50)
                discount = min(rng.choice([0, 0, 0, 500, 1000]), price * qty // 2)
                total = price * qty - discount
                refunded = total if status == "refunded" else 0
                fh.write(
                    f"O{order:09d},C{customer:07d},{at},SKU{sku:04d},{qty},{total / 100:.2f},"
                    f"{price / 100:.2f},{discount / 100:.2f},CNY,{status},{source},商品{sku},"
                    f"{categories[sku % 6]},{at},{refunded / 100:.2f},{source},{medium},"
                    f"{'spring' if month < 6 else 'double11'}\n"
                )
                written += 1


def timed(label: str, fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"  {label:<34} {seconds:8.2f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gw-import-bench-"))
    try:
        csv = work / "order_lines.csv"
        make_csv(csv, args.rows)
        size = csv.stat().st_size / 1e6
        print(f"file: {args.rows:,} order lines, {size:.0f} MB")

        def scan() -> None:
            duckdb.connect().execute(f"SELECT count(*) FROM read_csv('{csv}')").fetchall()

        def load() -> None:
            con = duckdb.connect(str(work / "baseline.duckdb"))
            con.execute(f"CREATE TABLE lines AS SELECT * FROM read_csv('{csv}')")
            con.close()

        cfg = Settings(data_dir=work / "data")
        t_scan = timed("DuckDB read_csv scan", scan)
        t_load = timed("DuckDB read_csv → table (ceiling)", load)
        first: list[ImportResult] = []
        t_import = timed("growthwheel import (first)",
                         lambda: first.append(import_files("order_lines", [csv], cfg=cfg)))
        assert first[0].rows_quarantined == 0, "the benchmark file should import whole"
        t_again = timed("growthwheel import (same file again)",
                        lambda: import_files("order_lines", [csv], cfg=cfg))
        print()
        print(f"import throughput: {args.rows / t_import:,.0f} rows/s "
              f"(re-import {args.rows / t_again:,.0f} rows/s)")
        print(f"ratio to read_csv → table: {t_import / t_load:.1f}x   "
              f"ratio to read_csv scan: {t_import / t_scan:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
