"""Database round trips per committed checkout order (issue 10, throughput).

A throwaway PostgreSQL cluster (``--store sqlite``: a SQLite file) with the shop of
``orders_bench.py`` (200 promotions, the shared coupon ``BENCH20``); orders of 10 lines are
committed straight through ``promotions.orders.commit`` (no HTTP, no API-key lookup, no warehouse
segments or holdouts), one transaction each, and every statement sent to the store is counted with
a SQLAlchemy ``before_cursor_execute`` listener (an ``executemany`` counts once), plus the
``COMMIT``. Printed: round trips per order (mean, min, max) for first-time customers and for
returning ones, the statements of one order grouped by their first words, and Python + database
milliseconds per order.

Usage: ``python bench/order_queries.py [--orders 40] [--store sqlite] [--verbose]``
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


def main() -> None:
    """Set the shop up, commit ``--orders`` orders and print the round trips per order."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--verbose", action="store_true", help="print every statement of one order")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from orders_bench import cart, postgres, setup
    from sqlalchemy import event

    from growthwheel.config import Settings
    from growthwheel.promotions import orders
    from growthwheel.promotions.schemas import OrderIn
    from growthwheel.store import db

    data_dir = Path(tempfile.mkdtemp(prefix="gw-bench-queries-"))
    with postgres() if args.store == "postgresql" else contextlib.nullcontext(None) as url:
        store_url = url or f"sqlite:///{data_dir / 'growthwheel.sqlite'}"
        setup(data_dir, store_url)
        cfg = Settings(data_dir=data_dir, database_url=store_url)
        currency = cfg.shop().currency
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            statements.append(statement)

        engine = db.engine(cfg)
        event.listen(engine, "before_cursor_execute", count)
        event.listen(engine, "commit", lambda _conn: statements.append("COMMIT"))
        rng = random.Random(7)
        with db.session_scope(cfg) as warm:  # first use of each mapper and statement cache
            orders.commit(warm, OrderIn.model_validate(
                {**cart(rng, "warm"), "customer_id": "warm", "order_id": "warm-0"}), currency=currency)
        per_phase: dict[str, list[int]] = {}
        sample: list[str] = []
        took = 0.0
        for phase, customer_of in (("new customer", lambda n: f"new-{n}"),
                                   ("returning customer", lambda n: f"back-{n % 4}")):
            counts = per_phase.setdefault(phase, [])
            for n in range(args.orders):
                body = {**cart(rng, customer_of(n)), "customer_id": customer_of(n),
                        "order_id": f"{phase[:3]}-{n}"}
                request = OrderIn.model_validate(body)
                statements.clear()
                started = time.perf_counter()
                with db.session_scope(cfg) as session:
                    orders.commit(session, request, currency=currency)
                took += time.perf_counter() - started
                counts.append(len(statements))
                if phase == "returning customer" and n == args.orders - 1:
                    sample = list(statements)
        total = sum(len(c) for c in per_phase.values())
        store = "SQLite" if store_url.startswith("sqlite") else "PostgreSQL"
        print(f"{store}: round trips per committed order (10 lines, coupon BENCH20, 200 promotions)")
        for phase, counts in per_phase.items():
            print(f"  {phase:20s} mean {sum(counts) / len(counts):5.1f}   min {min(counts):3d}   "
                  f"max {max(counts):3d}   over {len(counts)} orders")
        print(f"  time per order (Python + store, one client): {1000 * took / total:.1f} ms")
        flat = [" ".join(s.split()) for s in sample]
        kinds = Counter(" ".join(s.split()[:3]) if not s.startswith("SELECT") else
                        "SELECT … FROM " + (s.split(" FROM ", 1)[1].split()[0] if " FROM " in s else "?")
                        for s in flat)
        print("  one returning customer's order:")
        for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {n:3d} × {kind}")
        if args.verbose:
            for statement in flat:
                print("   ", statement[:220])
        db.engine(cfg).dispose()
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
