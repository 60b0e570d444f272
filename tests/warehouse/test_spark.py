"""The Spark warehouse: imports publish Parquet snapshots atomically; Spark reads exactly the rows.

Every result read through Spark is compared with the same import on a DuckDB warehouse and, for a
few values, with numbers worked out by hand.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.tiny_warehouse import plain_value

from growthwheel.config import Settings
from growthwheel.warehouse import db, ingest, lake, spark

pytestmark = pytest.mark.spark

# Three orders; times without offset are shop time (Asia/Shanghai, UTC+8). A3's second line has a
# bad amount, so the whole order is quarantined. A4 holds the largest amount an import takes.
LINES_V1 = """\
order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,status,channel,category
A1,C1,2024-03-10T23:30:00+08:00,S1,2,25.80,12.90,paid,douyin,Beauty
A1,C1,2024-03-10T23:30:00+08:00,S2,1,9.99,,paid,douyin,Food
A2,C2,2024-03-11 00:15:00,S1,1,12.90,12.90,paid,,Beauty
A3,C1,2024-03-12,S3,1,5.00,,paid,,
A3,C1,2024-03-12,S4,1,x,,paid,,
A4,C3,2024-03-31T16:00:00.123456Z,S9,1,9999999999999.99,,completed,baidu,Luxury
"""
# A newer version of A2: now partially refunded.
LINES_V2 = """\
order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,status,channel,category,refunded_amount
A2,C2,2024-03-11 00:15:00,S1,1,12.90,12.90,partially_refunded,,Beauty,4.30
"""

UNSTABLE = {"_import_id", "_row_hash"}  # differ between two warehouses by construction


def _utc(y: int, mo: int, d: int, h: int, mi: int, s: int = 0, us: int = 0) -> datetime:
    """A UTC wall-clock time as the warehouse stores it (naive, meaning UTC)."""
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC).replace(tzinfo=None)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _rows(con: Any, table: str, key: list[str]) -> list[dict[str, Any]]:
    """The table's rows as plain values (dates as ``date``), sorted, without bookkeeping."""
    t = con.table(table)
    df = t.execute()
    df = df[[c for c in df.columns if c not in UNSTABLE]].sort_values(key)
    dates = {name for name, typ in t.schema().items() if typ.is_date()}
    return [
        {k: (plain_value(v).date() if k in dates and plain_value(v) is not None else plain_value(v))
         for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]


def _pointer(cfg: Settings) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((cfg.spark_dir / spark.POINTER).read_text())
    return data


@pytest.fixture
def cfgs(tmp_path: Path) -> tuple[Settings, Settings]:
    """A Spark warehouse and a DuckDB warehouse, each in its own data directory."""
    return (
        Settings(data_dir=tmp_path / "spark-data", warehouse="spark"),
        Settings(data_dir=tmp_path / "duck-data", warehouse="duckdb"),
    )


def test_imports_read_back_through_spark_exactly_as_on_duckdb(
    spark_session: Any, cfgs: tuple[Settings, Settings], tmp_path: Path
) -> None:
    s_cfg, d_cfg = cfgs
    v1 = _write(tmp_path / "lines_v1.csv", LINES_V1)
    v2 = _write(tmp_path / "lines_v2.csv", LINES_V2)

    # Never imported: every table is there, empty, with the schema it has once written.
    empty = spark.connect(s_cfg)
    empty_schemas = {name: empty.table(name).schema() for name in spark.all_tables()}
    assert empty.table("orders").count().execute() == 0

    first = ingest.import_files("order_lines", [v1], cfg=s_cfg)
    assert (first.tables["orders"].inserted, first.rows_quarantined) == (3, 2)
    versions = _pointer(s_cfg)["tables"]

    again = ingest.import_files("order_lines", [v1], cfg=s_cfg)
    counts = again.tables["orders"]
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 3)
    after = _pointer(s_cfg)["tables"]
    # Nothing changed, so the fact tables were not even rewritten (only the import log was).
    assert after["orders"] == versions["orders"]
    assert after["order_lines"] == versions["order_lines"]
    assert after["_imports"] != versions["_imports"]

    newer = ingest.import_files("order_lines", [v2], cfg=s_cfg)
    assert (newer.tables["orders"].updated, newer.tables["orders"].inserted) == (1, 0)

    for path in (v1, v1, v2):
        ingest.import_files("order_lines", [path], cfg=d_cfg)

    sp = db.connect(s_cfg)  # what analytics call: dispatches to spark.connect
    dk = db.connect(d_cfg)
    for name in ("orders", "order_lines", "_quarantine", "_imports"):
        assert sp.table(name).schema() == empty_schemas[name]
    assert empty_schemas["orders"]["ordered_at"].is_timestamp()
    assert empty_schemas["orders"]["order_date"].is_date()
    assert empty_schemas["orders"]["total_amount"].is_int64()
    orders = _rows(sp, "orders", ["order_id"])
    assert orders == _rows(dk, "orders", ["order_id"])
    assert _rows(sp, "order_lines", ["order_id", "line_no"]) == _rows(
        dk, "order_lines", ["order_id", "line_no"]
    )

    # Worked out by hand: money in fen, UTC wall time, shop-local dates.
    by_id = {o["order_id"]: o for o in orders}
    assert set(by_id) == {"A1", "A2", "A4"}
    assert by_id["A1"]["total_amount"] == 2580 + 999
    assert by_id["A1"]["ordered_at"] == _utc(2024, 3, 10, 15, 30)
    assert by_id["A1"]["order_date"] == date(2024, 3, 10)
    assert by_id["A2"]["ordered_at"] == _utc(2024, 3, 10, 16, 15)
    assert by_id["A2"]["order_date"] == date(2024, 3, 11)
    assert (by_id["A2"]["status"], by_id["A2"]["refunded_amount"]) == ("partially_refunded", 430)
    assert by_id["A4"]["total_amount"] == 999_999_999_999_999
    assert by_id["A4"]["ordered_at"] == _utc(2024, 3, 31, 16, 0, 0, 123456)
    assert by_id["A4"]["order_date"] == date(2024, 4, 1)

    # Filtering on a timestamp means the same wall time on both engines.
    for con in (sp, dk):
        o = con.table("orders")
        assert o.filter(o.ordered_at >= _utc(2024, 3, 10, 16, 0)).count().execute() == 2
        assert o.filter(o.order_date == date(2024, 3, 11)).order_id.execute().tolist() == ["A2"]

    quarantined = sp.table("_quarantine").execute()
    assert sorted(zip(quarantined.row_number, quarantined.column_name, strict=True)) == [
        (4, "order_id"),
        (5, "line_total"),
    ]
    assert sp.table("_imports").count().execute() == 3
    # `growthwheel quarantine list` reads the same rows on this warehouse.
    listed = ingest.quarantine_rows(s_cfg)
    assert sorted((r["row_number"], r["column_name"]) for r in listed) == [
        (4, "order_id"),
        (5, "line_total"),
    ]


def test_crash_before_pointer_switch_leaves_previous_snapshot(
    spark_session: Any, cfgs: tuple[Settings, Settings], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s_cfg, _ = cfgs
    ingest.import_files("order_lines", [_write(tmp_path / "v1.csv", LINES_V1)], cfg=s_cfg)
    before = _pointer(s_cfg)
    v2 = _write(tmp_path / "v2.csv", LINES_V2)

    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        raise OSError("simulated crash: power lost before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        ingest.import_files("order_lines", [v2], cfg=s_cfg)
    monkeypatch.setattr(os, "replace", real_replace)

    # The new Parquet files were fully written, but the pointer still names the old ones.
    referenced = {f for parts in before["tables"].values() for files in parts.values() for f in files}
    orphans = [p for p in s_cfg.spark_dir.rglob("*.parquet")
               if p.relative_to(s_cfg.spark_dir).as_posix() not in referenced]
    assert orphans
    assert _pointer(s_cfg) == before
    sp = spark.connect(s_cfg)
    o = sp.table("orders")
    a2 = o.filter(o.order_id == "A2").execute()
    assert (a2.status.tolist(), a2.refunded_amount.tolist()) == (["paid"], [0])
    assert sp.table("_imports").count().execute() == 1

    # The next import succeeds; a vacuum past the retention window removes the orphans and the
    # files only older snapshots used, and keeps what the current one reads.
    result = ingest.import_files("order_lines", [v2], cfg=s_cfg)
    assert result.tables["orders"].updated == 1
    lake.vacuum(s_cfg, keep_seconds=0)
    assert not any(p.exists() for p in orphans)
    assert not [p for p in s_cfg.spark_dir.glob("*.tmp") if p.is_file()]  # (``.tmp``: scratch, a folder)
    current = lake.read_pointer(s_cfg)
    kept = {p.relative_to(s_cfg.spark_dir).as_posix() for p in s_cfg.spark_dir.rglob("*.parquet")}
    assert kept == {f for name in current.tables for f in current.files(name)}
    o = spark.connect(s_cfg).table("orders")
    a2 = o.filter(o.order_id == "A2").execute()
    assert a2.status.tolist() == ["partially_refunded"]


def test_concurrent_import_is_refused_not_lost(cfgs: tuple[Settings, Settings]) -> None:
    s_cfg, _ = cfgs
    tables = ["orders", "order_lines", "_imports"]
    first = spark.load_snapshot(s_cfg, tables)
    second = spark.load_snapshot(s_cfg, tables)
    first.execute("INSERT INTO orders (order_id, total_amount) VALUES ('X1', 100)")
    second.execute("INSERT INTO orders (order_id, total_amount) VALUES ('X2', 200)")
    spark.publish_snapshot(s_cfg, first, tables)
    with pytest.raises(spark.SnapshotConflictError, match="orders"):
        spark.publish_snapshot(s_cfg, second, tables)
    check = spark.load_snapshot(s_cfg, ["orders"])
    assert check.execute("SELECT order_id FROM orders").fetchall() == [("X1",)]


# ---------------------------------------------------------------------------------------------
# The KPI catalogue gives identical tables on DuckDB and on Spark.
# ---------------------------------------------------------------------------------------------


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _shop_data(tmp: Path) -> tuple[dict[str, Path], int]:
    """A few hundred deterministic rows of products, order lines, events and ad spend.

    Returns the files and the GMV (fen) of the paid orders, computed here independently.
    """
    rng = random.Random(20240618)
    categories = ["Beauty", "Food", "Home", "Toys"]
    products: list[dict[str, Any]] = []
    for i in range(12):
        price = rng.randrange(990, 29900)
        products.append({
            "sku": f"P{i:02d}", "name": f"Product {i}", "category": categories[i % 4],
            "price": price, "cost": None if i == 11 else price * rng.randrange(30, 70) // 100,
        })
    channels = ["douyin", "baidu", "wechat", "", "newsletter"]
    statuses = ["paid"] * 6 + ["completed"] * 3 + ["pending", "cancelled", "refunded",
                                                    "partially_refunded"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    lines = ["order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,discount,"
             "status,channel,category,refunded_amount,utm_source"]
    events = ["event_id,type,occurred_at,customer_id,anonymous_id,session_id,sku,order_id"]
    paid_gmv = 0
    n_event = 0
    for n in range(110):
        order_id = f"O{n:04d}"
        customer = f"C{rng.randrange(40):03d}"
        # Minutes chosen to land often near shop-local midnight (16:00 UTC).
        at = start + timedelta(days=rng.randrange(150), hours=rng.choice([15, 16, 3, 9]),
                               minutes=rng.randrange(60), seconds=rng.randrange(60))
        status = rng.choice(statuses)
        channel = rng.choice(channels)
        for _ in range(rng.randrange(1, 4)):
            p = rng.choice(products)
            qty = rng.randrange(1, 4)
            discount = rng.choice([0, 0, 0, 100, 250])
            if rng.random() < 0.05:  # a free gift: fully discounted, line total zero
                discount = p["price"] * qty
            total = p["price"] * qty - discount
            refunded = {"refunded": total,
                        "partially_refunded": total // 3}.get(status, 0)
            category = "" if rng.random() < 0.3 else p["category"]
            lines.append(
                f"{order_id},{customer},{at:%Y-%m-%dT%H:%M:%S}Z,{p['sku']},{qty},{_money(total)},"
                f"{_money(p['price'])},{_money(discount)},{status},,{category},"
                f"{_money(refunded)},{channel}"
            )
            if status not in ("pending", "cancelled"):
                paid_gmv += total
        session = f"S{n:04d}"
        for kind in ["view", "add_to_cart", "checkout", "purchase"][: rng.randrange(1, 5)]:
            n_event += 1
            events.append(
                f"E{n_event:05d},{kind},{at - timedelta(minutes=5):%Y-%m-%dT%H:%M:%S}Z,"
                f"{customer},,{session},,{order_id if kind == 'purchase' else ''}"
            )
    for n in range(120):  # anonymous browsing without a session id
        n_event += 1
        at = start + timedelta(days=rng.randrange(150), hours=rng.randrange(24))
        events.append(f"E{n_event:05d},view,{at:%Y-%m-%dT%H:%M:%S}Z,,anon{n % 30},,P01,")
    spend = ["date,channel,spend,utm_campaign"]
    day = date(2024, 1, 1)
    while day < date(2024, 6, 1):
        for channel in ("douyin", "baidu"):
            spend.append(f"{day},{channel},{_money(rng.randrange(5000, 90000))},spring")
        day += timedelta(days=3)
    product_rows = ["sku,name,category,price,cost"] + [
        f"{p['sku']},{p['name']},{p['category']},{_money(p['price'])},"
        f"{'' if p['cost'] is None else _money(p['cost'])}"
        for p in products
    ]
    files = {
        "products": _write(tmp / "products.csv", "\n".join(product_rows) + "\n"),
        "order_lines": _write(tmp / "lines.csv", "\n".join(lines) + "\n"),
        "events": _write(tmp / "events.csv", "\n".join(events) + "\n"),
        "ad_spend": _write(tmp / "ad_spend.csv", "\n".join(spend) + "\n"),
    }
    return files, paid_gmv


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): plain_value(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def test_kpi_tables_identical_on_duckdb_and_spark(
    spark_session: Any, cfgs: tuple[Settings, Settings], tmp_path: Path
) -> None:
    kpis = pytest.importorskip("growthwheel.insight.kpis")
    s_cfg, d_cfg = cfgs
    files, paid_gmv = _shop_data(tmp_path)
    for cfg in (s_cfg, d_cfg):
        for table, path in files.items():
            result = ingest.import_files(table, [path], cfg=cfg)
            assert result.rows_quarantined == 0, (table, result)
    sp, dk = spark.connect(s_cfg), db.connect(d_cfg)

    cases: list[dict[str, Any]] = [
        {"by": "month"},
        {"by": "week", "start": date(2024, 2, 7), "end": date(2024, 4, 20)},
        {"by": "month", "dimension": "channel"},
        {"by": "month", "dimension": "category"},
    ]
    frames = {}
    for n, case in enumerate(cases):
        on_duckdb, on_spark = kpis.kpi_frame(dk, **case), kpis.kpi_frame(sp, **case)
        frames[n] = on_spark
        assert len(on_duckdb) >= 4, case
        # What `growthwheel kpi --json` prints is the same, to the last digit.
        assert kpis.kpi_records(on_spark) == kpis.kpi_records(on_duckdb), case
        # Every money value, count and ratio is exactly equal too.
        for d_row, s_row in zip(_records(on_duckdb), _records(on_spark), strict=True):
            assert s_row == d_row, case

    # Not vacuous: the monthly GMV adds up to the paid orders' GMV counted independently here.
    monthly = frames[0]
    assert sum(monthly["gmv"]) * 100 == paid_gmv
    assert (monthly["sessions"] > 0).all()
    assert monthly["ad_spend"].notna().all()


@pytest.mark.spark
def test_closing_one_connection_leaves_spark_running_for_the_others(spark_session: Any,
                                                                    tmp_path: Path) -> None:
    """ibis's own ``disconnect`` stops the session, which stops the process's one SparkContext: a
    server's other readers lost Spark (and tests after one that closed a connection failed)."""
    from growthwheel.warehouse import spark as gw

    cfg = Settings(data_dir=tmp_path, warehouse="spark")
    first, second = gw.ibis_backend(gw.new_session(cfg)), gw.ibis_backend(gw.new_session(cfg))
    second._session.createDataFrame([(1,), (2,)], ["x"]).createOrReplaceTempView("t")
    first.disconnect()
    assert second.table("t").x.sum().execute() == 3
    second.disconnect()
    assert "t" not in second.list_tables()  # its views are gone
    assert spark_session.range(3).count() == 3  # Spark still runs
