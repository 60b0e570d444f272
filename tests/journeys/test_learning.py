"""What the triggers learn (lifecycle thresholds, product cycles) is learned once a shop-local day
and kept in memory and in the data directory (issue 12: trigger evaluation over 1M customers):
the same candidates as learning in every tick; a second process finds the day's values in the
file; the next day learns again. Real DuckDB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import ibis

from growthwheel.journeys import definition as d
from growthwheel.journeys import learning, triggers
from growthwheel.warehouse.schema import TABLES, ddl

WINDOW = triggers.Window(datetime(2025, 2, 12, tzinfo=UTC), datetime(2025, 2, 15, tzinfo=UTC), "UTC")


ORDER = "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) VALUES "
LINE = "INSERT INTO order_lines (order_id, line_no, sku, quantity, line_total) VALUES "


def warehouse() -> tuple[duckdb.DuckDBPyConnection, object]:
    con = duckdb.connect()
    for name, table in TABLES.items():
        con.execute(ddl(name, table.stored))
    # product A: repeat intervals of 20 days (c2, c3, c4); product B: one interval of 7 days (c5)
    rows = [("o2", "c2", "2025-01-01", "A"), ("o3", "c2", "2025-01-21", "A"), ("o4", "c3", "2025-01-05", "A"),
            ("o5", "c3", "2025-01-25", "A"), ("o6", "c4", "2024-12-06", "A"), ("o7", "c4", "2024-12-26", "A"),
            ("o8", "c5", "2025-02-01", "B"), ("o9", "c5", "2025-02-08", "B")]
    for order_id, customer, day, sku in rows:
        con.execute(ORDER + "(?, ?, CAST(? AS TIMESTAMP), CAST(? AS DATE), 'paid', 100)",
                    [order_id, customer, day, day])
        con.execute(LINE + "(?, 1, ?, 1, 100)", [order_id, sku])
    return con, ibis.duckdb.from_connection(con)


def hits(backend: object, trig: object, key: str | None,
         window: triggers.Window = WINDOW) -> set[tuple[str, str]]:
    found = triggers.evaluate_warehouse(backend, trig, window, cache_key=key)
    return {(c.customer_id, c.occurrence) for c in found}


def test_learned_once_a_day_same_candidates_kept_in_the_data_directory(tmp_path: Path) -> None:
    con, backend = warehouse()
    key = str(tmp_path)
    learning.forget(key)
    trig = d.ReplenishmentTrigger(kind="replenishment", min_repeats=1)
    fresh = hits(backend, trig, None)  # learned inside the query, as every tick did
    assert fresh == {("c3", "replenish:A:2025-01-25"), ("c5", "replenish:B:2025-02-08")}
    assert hits(backend, trig, key) == fresh  # learned once for the day: the same customers
    only_a = d.ReplenishmentTrigger(kind="replenishment", min_repeats=1, skus=["A"])
    assert hits(backend, only_a, key) == hits(backend, only_a, None) == {("c3", "replenish:A:2025-01-25")}
    strict = d.ReplenishmentTrigger(kind="replenishment", min_repeats=2)  # B has one interval only
    assert hits(backend, strict, key) == hits(backend, strict, None) == {("c3", "replenish:A:2025-01-25")}

    kept = json.loads((tmp_path / learning.CACHE_FILE).read_text(encoding="utf-8"))
    assert kept["day"] == "2025-02-15"
    assert sorted(kept["values"]["cycles"]) == [["A", 20.0, 3], ["B", 7.0, 1]]

    # Another process (memory forgotten) uses the day's file: new orders change nothing until tomorrow.
    learning.forget(key)
    con.execute(ORDER + "('o10', 'c5', '2025-02-10', '2025-02-10', 'paid', 100)")
    con.execute(LINE + "('o10', 1, 'B', 1, 100)")
    assert ("c5", "replenish:B:2025-02-10") not in hits(backend, trig, key)  # cycle still 7 days: due 17 Feb
    assert ("c5", "replenish:B:2025-02-10") in hits(backend, trig, None)  # learned now: 2 and 7 → due sooner

    # The next day is learned again.
    tomorrow = triggers.Window(WINDOW.since + timedelta(days=1), WINDOW.now + timedelta(days=1), "UTC")
    assert hits(backend, trig, key, tomorrow) == hits(backend, trig, None, tomorrow)
    assert json.loads((tmp_path / learning.CACHE_FILE).read_text(encoding="utf-8"))["day"] == "2025-02-16"


def test_the_daily_job_learns_both_ahead_of_the_ticks(tmp_path: Path) -> None:
    _con, backend = warehouse()
    key = str(tmp_path)
    learning.forget(key)
    found = learning.learn_all(backend, WINDOW.today, key)
    assert found == {"learned": True, "day": "2025-02-15", "thresholds_source": "default",
                     "products_with_cycles": 2}
    kept = json.loads((tmp_path / learning.CACHE_FILE).read_text(encoding="utf-8"))
    assert set(kept["values"]) == {"thresholds", "cycles"}
    learning.forget(key)
    dormant = d.LifecycleTrigger(kind="lifecycle", stage="at_risk")
    assert hits(backend, dormant, key) == hits(backend, dormant, None)


def test_the_worker_runs_the_daily_learning_job_on_its_warehouse(tmp_path: Path) -> None:
    from growthwheel.config import Settings
    from growthwheel.jobs.scheduler import ScheduleSpec
    from growthwheel.jobs.worker import Worker
    from growthwheel.store.db import engine
    from growthwheel.warehouse.ingest import import_files

    cfg = Settings(data_dir=tmp_path, database_url=None)
    lines = tmp_path / "lines.csv"
    lines.write_text("order_id,customer_id,ordered_at,sku,quantity,line_total\n"
                     "o1,c1,2025-01-01,A,1,10.00\no2,c1,2025-01-21,A,1,10.00\n"
                     "o3,c2,2025-01-05,A,1,10.00\no4,c2,2025-01-25,A,1,10.00\n", encoding="utf-8")
    import_files("order_lines", [lines], cfg=cfg)
    now = datetime(2025, 2, 15, 1, 0, tzinfo=UTC)
    learning.forget(str(tmp_path))
    worker = Worker(cfg, name="w1", clock=lambda: now, poll_seconds=0.05,
                    defaults=[ScheduleSpec("journeys.learn", "journeys.learn", every_seconds=3600)])
    (run,) = worker.run_once().runs
    engine(cfg).dispose()
    assert run.status == "succeeded", run
    assert run.result["products_with_cycles"] == 1
    kept = json.loads((tmp_path / learning.CACHE_FILE).read_text(encoding="utf-8"))
    assert kept["day"] == run.result["day"]
    assert kept["values"]["cycles"] == [["A", 20.0, 2]]
