"""Members from the shop's history (``loyalty.history.sync_from_warehouse``) at scale.

A warehouse (DuckDB) holding ``--customers`` customers (every third with a birthday) and about two
paid orders each over the last two years (half inside the 365-day window); a four-tier ladder; the
operational store on SQLite (the embedded default) or ``--database-url`` (PostgreSQL). Measured:

1. **sync** — the set-based sync: one read of the warehouse, then per batch of 5,000 customers one
   multi-row delete/insert of imported growth, one grouped sum, one multi-row member upsert;
2. **baseline** — the same result the obvious way, customer by customer through the loyalty
   service (``ensure_member``, ``add_growth`` per order, ``evaluate_member``), on a sample of
   ``--baseline`` customers, in batches of 5,000 per transaction; its rate is extrapolated.

Printed: customers/s of each, the ratio, the projected time for 1M customers, and a check that
both wrote the same growth and tier for the sample.

Usage: ``python bench/members_sync_bench.py [--customers 200000] [--baseline 5000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from growthwheel.config import Settings
from growthwheel.loyalty import history
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.models import GrowthEntry, Member
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse.db import connect, open_duckdb

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TIERS = [loyalty.TierSpec("t1", "Bronze", 100), loyalty.TierSpec("t2", "Silver", 1_000),
         loyalty.TierSpec("t3", "Gold", 5_000), loyalty.TierSpec("t4", "Black", 20_000)]


def build_warehouse(cfg: Settings, customers: int) -> None:
    con = open_duckdb(cfg)
    try:
        con.execute(f"""INSERT INTO customers (customer_id, name, birthday, signed_up_at)
            SELECT 'c' || i, 'n' || i, CASE WHEN i % 3 = 0 THEN DATE '1980-01-01' + (i % 9000)::INTEGER END,
                   TIMESTAMP '2023-01-01' + to_seconds(i % 30000000)
            FROM range({customers}) t(i)""")
        con.execute(f"""INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status,
                currency, total_amount, discount_amount, gross_amount, shipping_amount, refunded_amount,
                item_count, source)
            SELECT 'o' || i, 'c' || (i // 2), ts, ts::DATE,
                   CASE WHEN i % 17 = 0 THEN 'cancelled' ELSE 'paid' END,
                   'CNY', 1000 + (i * 7919) % 90000, 0, 1000 + (i * 7919) % 90000, 0,
                   CASE WHEN i % 11 = 0 THEN 500 ELSE 0 END, 1, 'import'
            FROM (SELECT i, TIMESTAMP '2026-06-01' - to_seconds((i * 104729) % (730 * 86400)) AS ts
                  FROM range({2 * customers}) t(i))""")
    finally:
        con.close()


def naive(cfg: Settings, sample: list[str], growth: history.Growth,
          people: dict[str, history.Person]) -> float:
    started = time.perf_counter()
    for start in range(0, len(sample), 5_000):
        with session_scope(cfg) as s:
            for cid in sample[start:start + 5_000]:
                row = loyalty.ensure_member(s, cid, now=NOW)
                row.birthday = people.get(cid, history.Person()).birthday
                for oid, at, amount in growth.get(cid, ()):
                    loyalty.add_growth(s, cid, amount, effective_at=at.replace(tzinfo=UTC),
                                       kind="naive", order_id=oid, now=NOW)
                loyalty.evaluate_member(s, cid, NOW)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--baseline", type=int, default=5_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Settings(data_dir=Path(tmp), database_url=args.database_url)
        migrate(cfg)
        t0 = time.perf_counter()
        build_warehouse(cfg, args.customers)
        print(f"warehouse: {args.customers:,} customers, {2 * args.customers:,} orders "
              f"({time.perf_counter() - t0:.1f} s to build)")
        with session_scope(cfg) as s:
            loyalty.set_tiers(s, TIERS, now=NOW)

        backend = connect(cfg)
        try:
            t0 = time.perf_counter()
            people, growth = history.read_history(backend, NOW)
            read = time.perf_counter() - t0
        finally:
            backend.disconnect()
        t0 = time.perf_counter()
        done = history.sync_members(lambda: session_scope(cfg), people, growth, NOW)
        write = time.perf_counter() - t0
        total = read + write
        rate = done.customers / total
        print(f"sync:     {done.customers:,} members, {done.growth_entries:,} imported orders in the window, "
              f"{done.with_tier:,} with a tier in {total:.1f} s (read {read:.1f} s, write {write:.1f} s): "
              f"{rate:,.0f} customers/s")

        sample = sorted(people)[: args.baseline]
        with session_scope(cfg) as s:
            synced = {m.customer_id: (m.tier_code, m.growth) for m in
                      s.scalars(sa.select(Member).where(Member.customer_id.in_(sample)))}
        # The baseline re-creates the sample's members from nothing.
        for start in range(0, len(sample), 500):
            part = sample[start:start + 500]
            with session_scope(cfg) as s:
                s.execute(sa.delete(Member).where(Member.customer_id.in_(part)))
                s.execute(sa.delete(GrowthEntry).where(GrowthEntry.customer_id.in_(part)))
        seconds = naive(cfg, sample, growth, people)
        base_rate = len(sample) / seconds
        print(f"baseline: {len(sample):,} customers one by one through the loyalty service in "
              f"{seconds:.1f} s: {base_rate:,.0f} customers/s")
        with session_scope(cfg) as s:
            naive_rows = {m.customer_id: (m.tier_code, m.growth) for m in
                          s.scalars(sa.select(Member).where(Member.customer_id.in_(sample)))}
        same = sum(naive_rows.get(c) == synced.get(c) for c in sample)
        print(f"ratio (sync / baseline): {rate / base_rate:.1f}x; projected for 1,000,000 customers: "
              f"sync {1_000_000 / rate / 60:.1f} min, baseline {1_000_000 / base_rate / 60:.1f} min")
        print(f"check: {same:,} of {len(sample):,} sampled members identical (tier and growth) both ways")


if __name__ == "__main__":
    main()
