"""The Spark warehouse's storage (``warehouse/lake.py``): partitioned appends, rewrites of only the
partitions an import touches, the event flush's keyed appends, leases, vacuum and compaction.

Files and snapshots are checked directly (DuckDB reads the Parquet files a snapshot lists); the
last test runs ``run_write`` (segment tags) through the server's owner on Spark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from growthwheel.config import Settings
from growthwheel.segments import repository
from growthwheel.warehouse import db as wh
from growthwheel.warehouse import ingest, lake
from growthwheel.warehouse.owner import WarehouseOwner

HEADER = "order_id,customer_id,ordered_at,sku,quantity,line_total,status\n"


def _orders(tmp: Path, name: str, rows: list[tuple[str, str, str]]) -> Path:
    """One line per order: (order id, shop-local date, status)."""
    path = tmp / name
    path.write_text(HEADER + "".join(f"{o},C1,{d}T10:00:00+08:00,S1,1,9.90,{s}\n" for o, d, s in rows),
                    encoding="utf-8")
    return path


def _read(cfg: Settings, table: str, sql: str = "SELECT count(*) FROM t") -> list[tuple[Any, ...]]:
    files = lake.read_pointer(cfg).files(table)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    paths = ", ".join(f"'{cfg.spark_dir / f}'" for f in files)
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet([{paths}], union_by_name = true)")
    return con.execute(sql).fetchall()


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", warehouse="spark")


def test_an_import_rewrites_only_the_partitions_it_touches(cfg: Settings, tmp_path: Path) -> None:
    # The DuckDB-side publish (other formats, in-memory rows); CSV on Spark: test_spark_ingest.py.
    ingest.import_files("order_lines", [_orders(tmp_path, "a.csv", [
        ("A1", "2024-01-05", "paid"), ("A2", "2024-02-05", "paid"), ("A3", "2024-03-05", "paid")])],
        cfg=cfg, engine="duckdb")
    first = lake.read_pointer(cfg)
    assert sorted(first.tables["orders"]) == ["2024-01", "2024-02", "2024-03"]

    # A2 refunded, A4 new in April: February is rewritten, April added, January and March untouched.
    result = ingest.import_files("order_lines", [_orders(tmp_path, "b.csv", [
        ("A2", "2024-02-05", "refunded"), ("A4", "2024-04-05", "paid")])],
        cfg=cfg, engine="duckdb")
    assert (result.tables["orders"].updated, result.tables["orders"].inserted) == (1, 1)
    second = lake.read_pointer(cfg)
    orders = second.tables["orders"]
    assert orders["2024-01"] == first.tables["orders"]["2024-01"]
    assert orders["2024-03"] == first.tables["orders"]["2024-03"]
    assert orders["2024-02"] != first.tables["orders"]["2024-02"]
    assert len(orders["2024-02"]) == 1
    assert "2024-04" in orders
    # order_lines: only the hash buckets of A2 and A4 changed.
    changed = {p for p, f in second.tables["order_lines"].items() if first.tables["order_lines"].get(p) != f}
    assert 1 <= len(changed) <= 2
    assert _read(cfg, "orders", "SELECT order_id, status FROM t ORDER BY 1") == [
        ("A1", "paid"), ("A2", "refunded"), ("A3", "paid"), ("A4", "paid")]
    assert _read(cfg, "order_lines") == [(4,)]

    # The same file again changes no fact table: the import log gains one appended file.
    ingest.import_files("order_lines", [tmp_path / "b.csv"], cfg=cfg, engine="duckdb")
    third = lake.read_pointer(cfg)
    assert third.tables["orders"] == orders
    assert third.tables["order_lines"] == second.tables["order_lines"]
    assert _read(cfg, "_imports") == [(3,)]


def _events(ids: list[str], kind: str = "view", day: str = "2024-05-10") -> pa.Table:
    n = len(ids)
    return pa.table({"event_id": ids, "type": [kind] * n, "occurred_at": [f"{day}T12:00:00+08:00"] * n,
                     "anonymous_id": ["d1"] * n})


def _flush(cfg: Settings, rows: pa.Table) -> None:
    with lake.scoped({"events", wh.QUARANTINE_TABLE, wh.IMPORTS_TABLE}):
        ingest.import_rows("events", rows, "spool", cfg=cfg)


def test_event_flushes_append_keyed_on_event_id(cfg: Settings) -> None:
    _flush(cfg, _events([f"e{i}" for i in range(10)]))
    _flush(cfg, _events([f"e{i}" for i in range(10, 15)]))
    may = lake.read_pointer(cfg).tables["events"]["2024-05"]
    assert len(may) == 2  # two appends, nothing rewritten
    # A replay of stored events (a spool segment imported twice) stores nothing again.
    _flush(cfg, _events([f"e{i}" for i in range(5)]))
    assert lake.read_pointer(cfg).tables["events"]["2024-05"] == may
    # One event re-sent with a different content replaces the stored one (May rewritten alone).
    _flush(cfg, _events(["e3"], kind="purchase") )
    _flush(cfg, _events(["j1"], day="2024-06-02"))
    snapshot = lake.read_pointer(cfg)
    assert len(snapshot.tables["events"]["2024-05"]) == 1
    assert _read(cfg, "events", "SELECT count(*), count(DISTINCT event_id) FROM t") == [(16, 16)]
    assert _read(cfg, "events", "SELECT type FROM t WHERE event_id = 'e3'") == [("purchase",)]
    # Compaction merges the small files; the rows stay the same.
    for k in range(4):
        _flush(cfg, _events([f"k{k}"]))
    assert len(lake.read_pointer(cfg).tables["events"]["2024-05"]) == 5
    done = lake.compact(cfg, min_files=3)
    assert done.partitions >= 1
    assert len(lake.read_pointer(cfg).tables["events"]["2024-05"]) == 1
    assert _read(cfg, "events", "SELECT count(*), count(DISTINCT event_id) FROM t") == [(20, 20)]


def test_vacuum_keeps_leased_and_recent_snapshots(cfg: Settings) -> None:
    _flush(cfg, _events(["a"]))
    old = lake.read_pointer(cfg)
    old_files = [cfg.spark_dir / f for n in old.tables for f in old.files(n)]
    held = lake.take_lease(cfg, str(old.id))
    _flush(cfg, _events(["a"], kind="purchase"))  # rewrites May: the old file is only in `old`
    lake.compact(cfg, min_files=1)
    # Within the retention window nothing goes.
    assert lake.vacuum(cfg, keep_seconds=3600).files_removed == 0
    # Past it, the leased snapshot's files stay; the unleased middle one's go.
    result = lake.vacuum(cfg, keep_seconds=0)
    assert result.snapshots_removed >= 1
    assert all(p.exists() for p in old_files)
    # A lease left by a process that died does not keep anything.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = cfg.spark_dir / lake.LEASES_DIR / f"{old.id}.{int(dead.stdout)}.feed"
    stale.touch()
    held.unlink()
    lake.vacuum(cfg, keep_seconds=0)
    assert not any(p.exists() for p in old_files if str(p.relative_to(cfg.spark_dir).as_posix())
                   not in {f for n in lake.read_pointer(cfg).tables for f in lake.read_pointer(cfg).files(n)})
    assert not stale.exists()
    current = lake.read_pointer(cfg)
    on_disk = {p.relative_to(cfg.spark_dir).as_posix() for p in cfg.spark_dir.rglob("*.parquet")}
    assert on_disk == {f for n in current.tables for f in current.files(n)}
    assert _read(cfg, "events", "SELECT type FROM t") == [("purchase",)]
    assert os.listdir(cfg.spark_dir / lake.SNAPSHOTS_DIR) == [f"{current.id}.json"]


@pytest.mark.spark
def test_run_write_saves_tags_on_spark_and_the_next_read_sees_them(
    spark_session: Any, cfg: Settings, tmp_path: Path
) -> None:
    ingest.import_files("order_lines", [_orders(tmp_path, "a.csv", [("A1", "2024-01-05", "paid")])], cfg=cfg)
    owner = WarehouseOwner(cfg, flush_seconds=3600)
    owner.start()
    try:
        at = datetime(2024, 6, 1, tzinfo=UTC)
        assert owner.run_write(lambda con: repository.unknown_customers(con, ["C1", "C9"])) == ["C9"]
        assert owner.run_write(lambda con: repository.change_manual_tag(con, "vip", ["C1"], [], at)) == (1, 0)
        with owner.read() as backend:
            tags = backend.table(repository.TAGS_TABLE).execute()
            found = list(zip(tags.customer_id, tags.tag, tags.source, strict=True))
            assert found == [("C1", "vip", "manual")]
        assert owner.run_write(lambda con: repository.change_manual_tag(con, "vip", [], ["C1"], at)) == (0, 1)
        with owner.read() as backend:
            assert backend.table(repository.TAGS_TABLE).count().execute() == 0
            assert backend.table("orders").count().execute() == 1
    finally:
        owner.stop()


@pytest.mark.spark
def test_a_read_never_gets_a_snapshot_vacuumed_before_its_lease(
    spark_session: Any, cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server on Spark read the pointer, then leased that snapshot: an import and a vacuum
    with no retention window that ran in between (on the owner's writer thread, while the reader
    waited for another reader's backend) removed its files, and Spark failed with PATH_NOT_FOUND
    (``tests/warehouse/test_spark_server.py`` failed once so). Here the import and the vacuum run
    exactly there, from the reader's lease call: the read must get the newest snapshot."""
    def lines(name: str, rows: list[tuple[str, str, str]]) -> None:
        ingest.import_files("order_lines", [_orders(tmp_path, name, rows)], cfg=cfg, engine="duckdb")

    lines("a.csv", [("A1", "2024-01-05", "paid")])
    owner = WarehouseOwner(cfg, flush_seconds=3600, keep_seconds=0.0, maintain_seconds=3600)
    owner.start()  # its first read leases the snapshot holding A1 (kept while the owner runs)
    lines("b.csv", [("A2", "2024-01-06", "paid")])  # January: A1's file, A2's appended file
    read_first = lake.read_pointer(cfg).id
    real_lease = lake.take_lease
    ran: list[str] = []

    def lease_after_a_publish_and_a_vacuum(cfg_: Settings, snapshot_id: str) -> Path:
        if snapshot_id == read_first and not ran:
            ran.append(snapshot_id)
            lines("c.csv", [("A2", "2024-01-06", "refunded")])  # January rewritten
            assert lake.vacuum(cfg, keep_seconds=0).files_removed >= 1  # A2's appended file
        return real_lease(cfg_, snapshot_id)

    try:
        monkeypatch.setattr(lake, "take_lease", lease_after_a_publish_and_a_vacuum)
        with owner.read() as backend:
            orders = backend.table("orders").order_by("order_id").execute()
            assert list(zip(orders.order_id, orders.status, strict=True)) == [
                ("A1", "paid"), ("A2", "refunded")]
        assert ran == [read_first]
        newest = lake.read_pointer(cfg).id
        assert newest != read_first
        assert newest in owner.snapshots_in_use()
    finally:
        owner.stop()
    assert not any((cfg.spark_dir / lake.LEASES_DIR).iterdir())

def test_warehouse_vacuum_and_compact_commands(cfg: Settings) -> None:
    for k in range(4):
        _flush(cfg, _events([f"c{k}"]))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GROWTHWHEEL_")},
           "GROWTHWHEEL_WAREHOUSE": "spark"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "growthwheel.cli", "--data-dir", str(cfg.data_dir), *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)

    compacted = run("warehouse", "compact", "--min-files", "2", "--json")
    assert compacted.returncode == 0, compacted.stderr
    assert '"partitions": 2' in compacted.stdout  # events/2024-05 and _imports of this month
    assert len(lake.read_pointer(cfg).tables["events"]["2024-05"]) == 1
    vacuumed = run("warehouse", "vacuum", "--keep-seconds", "0")
    assert vacuumed.returncode == 0, vacuumed.stderr
    assert "deleted" in vacuumed.stdout
    current = lake.read_pointer(cfg)
    on_disk = {p.relative_to(cfg.spark_dir).as_posix() for p in cfg.spark_dir.rglob("*.parquet")}
    assert on_disk == {f for n in current.tables for f in current.files(n)}
    assert _read(cfg, "events") == [(4,)]
    env["GROWTHWHEEL_WAREHOUSE"] = "duckdb"
    refused = run("warehouse", "vacuum")
    assert refused.returncode == 1
    assert "Spark warehouse" in refused.stderr


def test_a_snapshot_connection_can_spill_on_a_fresh_spark_warehouse(cfg: Settings) -> None:
    """A connection over the lake spills to ``<spark dir>/.tmp/<id>`` once its work outgrows its
    memory; on a warehouse without ``.tmp`` (a fresh one, or after a Spark import removed it)
    DuckDB refused with "Failed to create directory" (found by ``bench/engines_bench.py`` at 50M
    lines). A vacuum meanwhile (another process's ``growthwheel warehouse vacuum``) leaves the
    connection's spill files (``*.tmp``) alone."""
    cfg.spark_dir.mkdir(parents=True, exist_ok=True)
    assert not (cfg.spark_dir / ".tmp").exists()
    con = lake.load_snapshot(cfg, [])
    try:
        con.execute("SET memory_limit = '32MB'")
        con.execute("SET threads = 1")
        con.execute("SET preserve_insertion_order = false")
        con.execute("CREATE TABLE big AS SELECT i, md5(i::VARCHAR) AS h FROM range(1000000) t(i)")
        spilled = [p for p in (cfg.spark_dir / ".tmp").rglob("*.tmp") if p.is_file()]
        assert spilled, "the table did not outgrow 32 MB: nothing was spilled"
        lake.vacuum(cfg, keep_seconds=0)
        assert all(p.exists() for p in spilled)
        done = con.execute("SELECT count(*), max(h) FROM (SELECT h FROM big ORDER BY h)").fetchone()
        assert done == (1000000, "fffffe98d0963d27015c198262d97221")
    finally:
        con.close()
