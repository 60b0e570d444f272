"""The ``inventory`` fact through the generic import path: the example file, re-import, and the
quarantine rules (one of on_hand / received, no negative units, dates that exist)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from growthwheel.config import Settings
from growthwheel.warehouse.ingest import import_files, quarantine_rows
from growthwheel.warehouse.schema import INVENTORY_ONE_OF

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "generic" / "inventory.csv"


def rows(cfg: Settings, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_example_file_imports_and_reimports_unchanged(cfg: Settings) -> None:
    first = import_files("inventory", [EXAMPLE], cfg=cfg)
    counts = first.tables["inventory"]
    assert (counts.inserted, first.rows_quarantined) == (100, 0)
    assert rows(cfg, "SELECT kind, count(*) FROM inventory GROUP BY 1 ORDER BY 1") == [
        ("receipt", 4), ("snapshot", 96)]
    assert rows(cfg, "SELECT location, received, lead_time_days, unit_cost FROM inventory "
                     "WHERE sku = 'CUP-CEL-01' AND kind = 'receipt'") == [("华东仓", 150, 30, 1850)]
    assert rows(cfg, "SELECT DISTINCT location FROM inventory WHERE sku = 'TEA-LJ-250'") == [("default",)]
    again = import_files("stock", [EXAMPLE], cfg=cfg)  # the alias
    assert (again.tables["inventory"].unchanged, again.tables["inventory"].inserted) == (100, 0)


def test_bad_rows_are_quarantined_with_reasons(cfg: Settings, tmp_path: Path) -> None:
    path = tmp_path / "stock.csv"
    path.write_text(
        "sku,date,on_hand,received,lead_time_days\n"
        "A,2024-06-01,10,,\n"        # good snapshot
        "A,2024-06-02,,20,9\n"       # good receipt
        "A,2024-06-01,,20,\n"        # a receipt on the day of a snapshot: a different key
        "B,2024-06-01,,,\n"          # neither
        "B,2024-06-02,5,5,\n"        # both
        "B,2024-02-30,5,,\n"         # no such day
        "C,2024-06-01,-3,,\n",       # negative stock
        encoding="utf-8")
    result = import_files("inventory", [path], cfg=cfg)
    assert result.tables["inventory"].inserted == 3
    assert result.rows_quarantined == 4
    found = sorted((q["row_number"], q["column_name"], q["reason"])
                   for q in quarantine_rows(cfg, table="inventory"))
    assert [f[:2] for f in found] == [(4, "on_hand"), (5, "on_hand"), (6, "date"), (7, "on_hand")]
    assert found[0][2] == INVENTORY_ONE_OF
    assert found[1][2] == INVENTORY_ONE_OF
