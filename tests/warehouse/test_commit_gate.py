"""Reads never see part of a commit: the commit gate (``warehouse/gate.py``) and its use by the
warehouse owner and the import.

DuckDB 1.5.6 lets a query that runs during another connection's large ``COMMIT`` count part of
the committed rows. These tests commit 400,000 rows at a time while other threads count them;
without the gate they see counts between two commits' totals within a few rounds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from growthwheel.config import Settings
from growthwheel.warehouse import ingest
from growthwheel.warehouse.gate import CommitGate, ReadInCommitError, gate_for
from growthwheel.warehouse.owner import WarehouseOwner

ROWS = 400_000


def test_readers_share_and_a_commit_waits_for_them() -> None:
    gate = CommitGate(patience=0.05)
    inside = threading.Event()
    release = threading.Event()

    def read() -> None:
        with gate.reading():
            inside.set()
            release.wait(5)

    reader = threading.Thread(target=read)
    reader.start()
    assert inside.wait(5)
    with gate.reading():  # a second reader is let in beside the first
        assert gate.readers() == 2
    committed = threading.Event()

    def commit() -> None:
        with gate.committing():
            assert gate.readers() == 0
            committed.set()

    committer = threading.Thread(target=commit)
    committer.start()
    time.sleep(0.2)
    assert not committed.is_set()  # the read is still running
    release.set()
    reader.join(5)
    committer.join(5)
    assert committed.is_set()


def test_after_its_patience_a_waiting_commit_lets_no_new_read_start() -> None:
    gate = CommitGate(patience=0.1)
    release = threading.Event()
    started = threading.Event()
    order: list[str] = []

    def long_read() -> None:
        with gate.reading():
            started.set()
            release.wait(5)
            order.append("long read ends")

    def commit() -> None:
        with gate.committing():
            order.append("commit")

    def late_read() -> None:
        with gate.reading():
            order.append("late read")

    threading.Thread(target=long_read).start()
    assert started.wait(5)
    committer = threading.Thread(target=commit)
    committer.start()
    time.sleep(0.02)  # within the patience: a new read still starts at once
    with gate.reading():
        order.append("early read")
    time.sleep(0.2)  # past it: the next read waits for the commit
    late = threading.Thread(target=late_read)
    late.start()
    time.sleep(0.1)
    assert order == ["early read"]
    release.set()
    committer.join(5)
    late.join(5)
    assert order == ["early read", "long read ends", "commit", "late read"]


def test_reads_nest_and_a_commit_inside_a_read_is_refused() -> None:
    gate = CommitGate()
    with gate.reading():
        with gate.reading():
            assert gate.readers() == 1
            assert gate.held()
        assert gate.held()
        with pytest.raises(ReadInCommitError), gate.committing():
            pass
    assert not gate.held()
    assert gate.readers() == 0
    with gate.committing():  # the refused commit left nothing behind
        pass


def test_one_gate_per_warehouse_file(tmp_path: Path) -> None:
    assert gate_for(tmp_path / "w.duckdb") is gate_for(tmp_path / "." / "w.duckdb")
    assert gate_for(tmp_path / "w.duckdb") is not gate_for(tmp_path / "other.duckdb")


class Counter:
    """Threads counting ``table`` through ``owner.read()`` until stopped."""

    def __init__(self, owner: WarehouseOwner, table: str, threads: int = 2) -> None:
        self.owner, self.table, self.seen = owner, table, set[int]()
        self.reads = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.owner.read() as backend:
                (n,) = backend.raw_sql(f'SELECT count(*) FROM "{self.table}"').fetchone()
            self.seen.add(int(n))
            self.reads += 1

    def __enter__(self) -> Counter:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def count_scratch(owner: WarehouseOwner) -> int:
    with owner.read() as backend:
        (n,) = backend.raw_sql("SELECT count(*) FROM scratch").fetchone()
    return int(n)


def test_owner_reads_never_see_part_of_a_write(tmp_path: Path) -> None:
    owner = WarehouseOwner(Settings(data_dir=tmp_path, database_url=None), flush_seconds=3600)
    gate_for(owner.cfg.warehouse_path).patience = 0.2  # two readers in a tight loop leave no gap
    owner.start()
    try:
        owner.run_write(lambda con: con.execute("CREATE TABLE scratch (id VARCHAR, v DOUBLE)"))

        def append(con: duckdb.DuckDBPyConnection) -> None:
            # Sorted on insert, as the import's merge does: this is what DuckDB 1.5.6 shows in part.
            con.execute(f"CREATE TEMP TABLE src AS SELECT 'r' || i::VARCHAR AS id, random() AS v "
                        f"FROM range({ROWS}) t(i)")
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO scratch SELECT * FROM src ORDER BY v")
            con.execute("COMMIT")

        with Counter(owner, "scratch") as counter:
            for _ in range(6):
                owner.run_write(append)
                time.sleep(0.05)
        assert counter.reads > 20
        assert {n % ROWS for n in counter.seen} == {0}, sorted(counter.seen)
        with pytest.raises(ReadInCommitError), owner.read():
            owner.run_write(lambda con: None)

        # Only the COMMIT holds reads back, not the work before it.
        read_during: list[float] = []

        def slow(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO scratch VALUES ('slow', 1.0)")
            began = time.monotonic()
            reader = threading.Thread(target=lambda: read_during.append(count_scratch(owner)))
            reader.start()
            reader.join(5)
            read_during.append(time.monotonic() - began)
            con.execute("COMMIT")

        owner.run_write(slow)
        assert read_during[0] == 6 * ROWS  # the read did not wait for the commit
        assert read_during[1] < 2.0
        assert count_scratch(owner) == 6 * ROWS + 1
    finally:
        owner.stop()


def test_owner_reads_never_see_part_of_an_import(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    owner = WarehouseOwner(cfg, flush_seconds=3600)
    gate_for(cfg.warehouse_path).patience = 0.2
    owner.start()
    per = 150_000
    try:
        with Counter(owner, "events") as counter:
            for round_ in range(5):
                rows = pa.table({
                    "event_id": [f"e{round_}-{i}" for i in range(per)],
                    "customer_id": [f"c{i % 997}" for i in range(per)],
                    "type": ["view"] * per,
                    "occurred_at": [f"2025-03-{1 + i % 28:02d} 10:00:00" for i in range(per)],
                })
                result = owner.run_serial(
                    lambda rows=rows: ingest.import_rows("events", rows, "test", cfg=cfg))
                assert result.tables["events"].inserted == per
        assert counter.reads > 20
        assert {n % per for n in counter.seen} == {0}, sorted(counter.seen)
        assert max(counter.seen) == 5 * per
    finally:
        owner.stop()
