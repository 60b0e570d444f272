"""Imported events and orders are stored in time order (so that a window filter can skip old row
groups)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from growthwheel.config import Settings
from growthwheel.warehouse.ingest import import_files


def _events(path: Path, numbers: list[int]) -> Path:
    """A JSONL file of view events ``e<n>``, event ``n`` at 2025-01-01 + n hours (UTC), in the
    order given."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    path.write_text("\n".join(json.dumps({
        "event_id": f"e{n:04d}", "type": "view", "customer_id": f"c{n % 7}",
        "occurred_at": (start + timedelta(hours=n)).isoformat(),
    }) for n in numbers) + "\n", encoding="utf-8")
    return path


def _stored(cfg: Settings) -> list[tuple[str, datetime]]:
    """(event_id, occurred_at) in the order the rows are stored (``rowid``)."""
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        return [(str(r[0]), r[1]) for r in con.execute(
            "SELECT event_id, occurred_at FROM events ORDER BY rowid").fetchall()]
    finally:
        con.close()


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_each_import_appends_its_events_in_time_order(cfg: Settings, tmp_path: Path) -> None:
    # An export written newest first, then one interleaving old and new: each batch is stored
    # sorted by occurred_at, after the rows already there.
    first = import_files("events", [_events(tmp_path / "a.jsonl", list(range(299, -1, -1)))], cfg=cfg)
    assert first.tables["events"].inserted == 300
    later = [n for pair in zip(range(400, 500), range(300, 400), strict=True) for n in pair]
    second = import_files("events", [_events(tmp_path / "b.jsonl", later)], cfg=cfg)
    assert second.tables["events"].inserted == 200
    stored = _stored(cfg)
    assert [e for e, _ in stored] == [f"e{n:04d}" for n in range(500)]
    times = [t for _, t in stored]
    assert times == sorted(times)


def test_resending_events_changes_nothing_and_keeps_the_order(cfg: Settings, tmp_path: Path) -> None:
    import_files("events", [_events(tmp_path / "a.jsonl", [5, 3, 9, 1])], cfg=cfg)
    again = import_files("events", [_events(tmp_path / "b.jsonl", [9, 1, 5, 3])], cfg=cfg)
    assert again.tables["events"].inserted == 0
    assert again.tables["events"].unchanged == 4
    assert [e for e, _ in _stored(cfg)] == ["e0001", "e0003", "e0005", "e0009"]


def test_orders_are_appended_in_time_order_too(cfg: Settings, tmp_path: Path) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    numbers = [n for pair in zip(range(59, 29, -1), range(29, -1, -1), strict=True) for n in pair]
    lines = tmp_path / "lines.csv"
    lines.write_text("order_id,customer_id,ordered_at,sku,quantity,line_total\n" + "".join(
        f"A{n:03d},c{n % 5},{(start + timedelta(hours=n)).isoformat()},S{n % 3},1,9.90\n"
        f"A{n:03d},c{n % 5},{(start + timedelta(hours=n)).isoformat()},S9,2,1.00\n"
        for n in numbers), encoding="utf-8")
    result = import_files("order_lines", [lines], cfg=cfg)
    assert result.tables["orders"].inserted == 60
    assert result.tables["order_lines"].inserted == 120
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        stored = [str(r[0]) for r in con.execute("SELECT order_id FROM orders ORDER BY rowid").fetchall()]
        lines_per_order = con.execute(
            "SELECT count(*), count(DISTINCT order_id) FROM order_lines").fetchone()
    finally:
        con.close()
    assert stored == [f"A{n:03d}" for n in range(60)]
    assert lines_per_order == (120, 60)
