"""The demo shop end to end: simulate, import through the normal path, record ground truth."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from growthwheel.config import Settings, ShopSettings
from growthwheel.errors import ConfigError
from growthwheel.warehouse import db, ingest

#: Import order: the catalogue and customers first, so facts can refer to them.
IMPORT_ORDER = ("products", "customers", "order_lines", "events", "ad_spend", "reviews", "inventory")
MARKER = "demo.json"
DEMO_SHOP = ShopSettings(
    name="生长轮演示店", currency="CNY", timezone="Asia/Shanghai"
)


def shop_today(now: datetime | None = None) -> date:
    """Today in the demo shop's time zone (``now``: an aware instant, default the current one)."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(DEMO_SHOP.timezone)).date()


def history_start(days: int, end: date) -> date:
    """The first day of a ``days``-long demo history whose "now" is ``end``: the history's last
    day is the day before ``end``, so the worker, running in real time, finds the shop as it
    stands today (not a year in the past, where everyone would look dormant). Same seed and same
    ``end``: the same shop."""
    if days < 1:
        raise ValueError("days must be at least 1")
    return end - timedelta(days=days)


@dataclass(frozen=True)
class DemoRun:
    """What ``build_demo`` produced."""

    files_dir: Path
    ground_truth: Path
    results: list[ingest.ImportResult]
    seconds_simulating: float
    seconds_importing: float


def _holds_other_data(cfg: Settings, params: dict[str, object]) -> bool:
    """True when the data directory has a warehouse with data that is not this demo's."""
    marker = cfg.data_dir / MARKER
    if marker.exists():
        if json.loads(marker.read_text(encoding="utf-8")) != params:
            _wipe_demo(cfg)  # an earlier demo with other parameters: rebuild from scratch
        return False
    if not cfg.warehouse_path.exists():
        return False
    con = db.open_duckdb(cfg, read_only=True)
    try:
        row = con.execute(
            "SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM customers)"
        ).fetchone()
    finally:
        con.close()
    return bool(row and row[0])


def _wipe_demo(cfg: Settings) -> None:
    """Forget an earlier demo: its warehouse, files and, when it is this directory's own SQLite
    file, its operational store too — the acting (checkout orders, coupons, journeys) wrote facts
    into the warehouse being dropped, so it must run again on the new history (a new admin
    password is made on every run anyway)."""
    names = ["warehouse.duckdb", "warehouse.duckdb.wal", MARKER, "journeys-learned.json"]
    if not cfg.database_url:
        from growthwheel.store.db import engine

        engine(cfg).dispose()
        names += ["growthwheel.sqlite", "growthwheel.sqlite-wal", "growthwheel.sqlite-shm"]
    for name in names:
        (cfg.data_dir / name).unlink(missing_ok=True)
    shutil.rmtree(cfg.data_dir / "demo-files", ignore_errors=True)
    shutil.rmtree(cfg.data_dir / "demo-mailbox", ignore_errors=True)
    shutil.rmtree(cfg.spark_dir, ignore_errors=True)


def build_demo(
    cfg: Settings,
    *,
    customers: int,
    days: int,
    seed: int,
    start: date,
    say: ingest.Progress | None = None,
) -> DemoRun:
    """Simulate the demo shop into ``<data dir>/demo-files`` and import every table.

    Refuses a data directory that already holds another shop's data. Running it again with the
    same parameters changes nothing (the imports are idempotent).
    """
    from growthwheel.sim.shop import build_demo_files

    params: dict[str, object] = {
        "customers": customers, "days": days, "seed": seed, "start": start.isoformat()
    }
    if _holds_other_data(cfg, params):
        raise ConfigError(
            f"{cfg.data_dir} already holds a shop's data; build the demo elsewhere with --data-dir"
        )
    cfg.save_shop(DEMO_SHOP)
    files_dir = cfg.data_dir / "demo-files"
    started = time.perf_counter()
    if say:
        say(f"simulating {customers:,} customers over {days} days", None)
    files = build_demo_files(
        files_dir, customers=customers, days=days, seed=seed, start=start,
        progress=(lambda message: say(message, None)) if say else None,
    )
    simulated = time.perf_counter() - started
    results = []
    for table in IMPORT_ORDER:
        results.append(ingest.import_files(table, [files.paths[table]], cfg=cfg, progress=say))
    imported = time.perf_counter() - started - simulated
    shutil.copyfile(files.ground_truth, cfg.data_dir / "ground_truth.json")
    _add_marketing_paths(files_dir, cfg.data_dir / "ground_truth.json", customers=customers, seed=seed)
    shutil.copyfile(files.customer_truth, cfg.data_dir / files.customer_truth.name)
    (cfg.data_dir / MARKER).write_text(json.dumps(params), encoding="utf-8")
    return DemoRun(files_dir, cfg.data_dir / "ground_truth.json", results, simulated, imported)


def _add_marketing_paths(files_dir: Path, truth_path: Path, *, customers: int, seed: int) -> None:
    """Touchpoint paths with known channel effects (``sim/marketing.py``): ``marketing_paths.csv``
    beside the other demo files, their truth under ``marketing`` in ``ground_truth.json``."""
    from growthwheel.sim.marketing import write_paths

    _, truth = write_paths(files_dir, journeys=max(10_000, 20 * customers), seed=seed)
    whole = json.loads(truth_path.read_text(encoding="utf-8"))
    whole["marketing"] = truth
    truth_path.write_text(json.dumps(whole, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
