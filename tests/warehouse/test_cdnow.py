"""The real CDNOW transactions, imported as a shop would, give the same monthly figures as an
independent computation straight from the published file.

CDNOW_master.txt (Fader & Hardie) ships inside the ``lifetimes`` wheel; it is read from the installed
distribution's files without importing ``lifetimes``.
"""

from __future__ import annotations

import csv
import importlib.metadata
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from growthwheel.config import Settings, ShopSettings
from growthwheel.insight.kpis import kpi_frame, kpi_records
from growthwheel.warehouse import connect
from growthwheel.warehouse.ingest import import_files


def cdnow_master() -> Path:
    try:
        dist = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the lifetimes wheel (dev extra) carries CDNOW_master.txt")
    return Path(str(dist.locate_file("lifetimes/datasets/CDNOW_master.txt")))


def to_generic(source: Path, target: Path) -> int:
    """One generic order line per CDNOW transaction (customer, date, CDs, dollars)."""
    with source.open(encoding="ascii") as src, target.open("w", newline="", encoding="utf-8") as dst:
        writer = csv.writer(dst)
        writer.writerow(["order_id", "customer_id", "ordered_at", "sku", "quantity", "line_total"])
        rows = 0
        for i, line in enumerate(src):
            if i == 0:
                continue  # header
            customer, day, cds, dollars = line.split()
            writer.writerow([f"T{i:05d}", customer, f"{day[:4]}-{day[4:6]}-{day[6:]}", "CD", cds, dollars])
            rows += 1
    return rows


def test_cdnow_monthly_orders_buyers_and_gmv(tmp_path: Path) -> None:
    source = cdnow_master()
    cfg = Settings(data_dir=tmp_path / "data")
    cfg.save_shop(ShopSettings(name="CDNOW", currency="USD", timezone="America/New_York"))
    generic = tmp_path / "cdnow_lines.csv"
    n = to_generic(source, generic)
    assert n == 69_659

    result = import_files("order_lines", [generic], cfg=cfg)
    assert result.rows_quarantined == 0
    assert result.tables["orders"].inserted == n

    # Independent computation from the published file: pandas over the raw text, Decimal money.
    raw = pd.read_csv(source, sep=r"\s+", dtype=str)
    raw["month"] = raw["date"].str[:6]
    expected = {
        month: (len(g), g["customer_id"].nunique(), sum(Decimal(v) for v in g["dollar_value"]))
        for month, g in raw.groupby("month")
    }
    assert len(expected) == 18  # January 1997 to June 1998

    con = connect(cfg)
    records = kpi_records(kpi_frame(con, by="month"))
    got = {
        r["period"][:7].replace("-", ""): (r["orders"], r["buyers"], Decimal(str(r["gmv"])))
        for r in records
    }
    assert got == expected
    # New buyers: CDNOW's cohort was acquired in the first quarter of 1997 and never after.
    new_by_month = {r["period"][:7]: r["new_buyers"] for r in records}
    assert sum(new_by_month.values()) == raw["customer_id"].nunique() == 23_570
    assert all(v == 0 for m, v in new_by_month.items() if m >= "1997-04")
