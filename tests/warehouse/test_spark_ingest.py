"""Imports on Spark (``warehouse/spark_ingest.py``) against the same imports on DuckDB.

The same files are imported into a DuckDB warehouse (rules in DuckDB SQL) and a Spark warehouse
(the Ibis rules of ``warehouse/rules.py`` run by Spark, merged and published per partition by
Spark): facts, quarantine entries (file, row, column, value, reason) and the import's counts must
be identical, for every table. The rules are also run by Ibis on DuckDB against the DuckDB
import's own SQL, for every table.

Kept small (the Spark cases cost a few seconds per import on a quiet machine): one Spark per
test session, a handful of imports per case, the example files and a few edge rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest
from tests.tiny_warehouse import plain_value

from growthwheel.config import Settings
from growthwheel.warehouse import db, ingest, ingest_validate, lake, rules, spark_ingest
from growthwheel.warehouse.formats import generic
from growthwheel.warehouse.schema import TABLES, resolve_table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "generic"
UNSTABLE = {"_import_id", "_row_hash", "import_id", "quarantined_at", "finished_at"}

# Edge values for every rule: blanks, signs, decimals, dates with and without offsets, ids with
# blanks and invisible characters, cross-column checks, orders with conflicting lines.
EDGES = (
    "order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,discount,currency,status,"
    "paid_at,refunded_amount,shipping,points_used\n"
    "X1,C1,2024-03-05 14:07:11 +0800,S1,1,+12.30, 12.3 ,0,cny,PAID,2024/3/5 14:07,,0,\n"
    "X1,C1,2024-03-05 14:07:11 +0800,S2,2,.50,0.25,,CNY,paid,2024-03-05T06:07:11Z,0.10,,3\n"
    "X2, C2 ,2024-03-05,S1,1,12.301,,,,paid,,,,\n"
    "X3,C3,1969-12-31 23:00:00+00:00,S1,1,1,,,,paid,,,,\n"
    "X4,C4,2024-13-01,S1,1,1,,,,paid,,,,\n"
    "X5,C\u200b5,2024-03-05,S1,1,1,,,,paid,,,,\n"
    "X6,C6,2024-03-05 01:02,S1,0,1,,,,paid,,,,\n"
    "X7,C7,2024-03-05 01:02,S1,1.0,-1,,,,paid,,,,\n"
    "X8,C8,2024-03-05 01:02,S1,99999999999999999999,1,,,,paid,,,,\n"
    "X9,C9,2024-03-05 01:02,S1,1,12345678901234.5,,,USD,sold,,2,,-1\n"
    "X10,C10,2024-03-05 01:02,S1,1,5,,,,,,6,,\n"
    "X11,C11,2024-03-05 01:02,S1,1,5,,,,,,,,\n"
    "X11,C12,2024-03-05 01:02,S2,1,5,,,,,,,,\n"
    "X12,C12,2024-03-05 01:02:03.1234567-05:30,S1,1,5,,,,refunded,,5,,\n"
    "X12,C12,2024-03-05 01:02:03.1234567-05:30,S2,1,5,,,,refunded,,5,,\n"
    "X13,C13,not a date,S1,x,5,,,,,,,,\n"
    ",C14,2024-03-05,S1,1,5,,,,,,,,\n"
    "\uff3814,C14,2024-03-05,S1,1,5,,,,,,,,\n"
    "X15,C15,2024-03-05,S1,1,5,,,,,,,,,,,\n"
)

# Every other table: its example file (if any) and edge rows (refused values, a key written
# twice — the last wins —, an unreadable row with too many fields, blanks to trim).
TABLE_EDGES: dict[str, str] = {
    "customers": (
        "customer_id,email,name,birthday,signed_up_at,channel,utm_source,accepts_marketing,tags\n"
        "C90001,a@example.cn,甲,1990-02-30,2024-01-04T21:57:00+08:00,,Douyin,yes,vip\n"
        "C90002,,乙,1990/2/3,2024-01-04,,,maybe,\n"
        "C90003,,丙,,2024-01-04 25:00,WeChat,,N,\n"
        "C90002,,乙 again,1991-01-01,2024-02-01,,,0,\n"
        "\u00a0C90004\u00a0,,丁,,,,,,\n"
        ",,nobody,,,,,,\n"
        "C90005,,戊,,,,,1,x,too,many\n"
    ),
    "products": (
        "sku,name,category,price,cost,currency,consumption_cycle_days,launched_at\n"
        "SKU-E1,Edge one,A/B,12.5,,,30,2024-01-01\n"
        "SKU-E2,,A,1,,,,\n"
        "SKU-E3,Edge three,,1.234,-1,USD,0,2024-02-30\n"
        "SKU-E1,Edge one v2,A/B,13,,cny,45,\n"
    ),
    "orders": (
        "order_id,customer_id,ordered_at,total,discount,shipping,refunded_amount,paid_at,status,"
        "currency,channel,utm_source,coupon_code,item_count,points_used\n"
        "O1,C1,2024-03-05 14:07:11+08:00,100.00,5,10,,2024-03-05T06:08:00Z,,,,Baidu,,2,\n"
        "O2,C2,2024-03-31 23:30,50,,,50,,,CNY,Direct,,SAVE,1,10\n"
        "O3,C3,2024-04-01,50,,5,56,,,,,,,1,\n"
        "O4,C4,2024-04-01,50,,,20,,shipped,EUR,,,,-1,\n"
        "O5,,2024-04-01,x,,,,,,,,,,,\n"
        "O2,C2,2024-03-31 23:30,50,,,25,,,CNY,Direct,,SAVE,1,10\n"
    ),
    "events": (
        "event_id,type,occurred_at,customer_id,anonymous_id,url,utm_source,device,properties\n"
        "E1,view,2024-03-05T10:00:00+08:00,C1,,https://x.example/p?utm_source=a%20b+c&utm_medium=%E4%B8%AD,,mobile,\n"
        "E2,search,2024-03-31 23:59:59,,A2,https://x.example/s?utm_campaign=%zz,given,,\"{\"\"q\"\": 1}\"\n"
        "E3,view,2024-04-01,,,,,,\n"
        "E4,view,2024-04-01,C4,,,,,[1]\n"
        "E5,view,2024-04-01,C5,,,,,{bad\n"
        "E6,custom,2024-04-01,C6,,,,,\"{\"\"a\"\": {\"\"b\"\": [1, 2]}}\"\n"
        "E1,view,2024-03-05T10:00:00+08:00,C1,,,,desktop,\n"
        "E8,view,2024-04-02,C8,,https://x.example/?utm_source=a%20b+c&utm_medium=%E4%B8%AD#utm_campaign=x,,,\n"
    ),
    "ad_spend": (
        "date,channel,spend,utm_source,utm_campaign,impressions,clicks,currency\n"
        "2024-03-01,Douyin,100.5,douyin,,1000,10,\n"
        "2024-03-01,douyin,99,douyin,spring,1000,10,CNY\n"
        "2024-03-02,baidu,-1,,,5,-5,\n"
        "2024-03-02,baidu,1,,,5,5,\n"
        "2024-03-01,douyin,101,douyin,,1000,11,\n"
        "2024-02-30,,1,,,,,USD\n"
    ),
    "reviews": (
        "review_id,sku,rating,created_at,order_id,customer_id,title,body,language\n"
        "RV1,S1,5,2024-03-05 10:00+08:00,O1,C1,好,很好,zh\n"
        "RV2,S1,6,2024-03-05,,,,,en\n"
        "RV3,S1,4.0,2024-03-05,,,,,en\n"
        "RV4,,3,2024-03-05,,,,,en\n"
        "RV5,S1,0,2024-02-30T10:00,,,,,en\n"
    ),
    "inventory": (
        "sku,date,on_hand,received,lead_time_days,unit_cost,location\n"
        "S1,2024-03-05,10,,,,\n"
        "S1,2024-03-06,,20,9,12.50,北仓\n"
        "S1,2024-03-07,5,5,,,\n"
        "S2,2024-03-07,,,,,\n"
        "S3,2024-03-07,-1,,,,\n"
        "S4,2024-02-30,3,,,,\n"
        "S5,2024-03-07,,4,2.5,1.234,\n"
    ),
}

# A second version of some of them: one row as stored, one changed, one new.
SECOND = {
    "customers": ("customer_id,email,name,birthday,signed_up_at,channel,utm_source,accepts_marketing,tags\n"
                  "C90002,,乙 again,1991-01-01,2024-02-01,,,0,\n"
                  "C90004,,丁二,,,,,,\n"
                  "C90006,,新,,,,,,\n"),
    "events": ("event_id,type,occurred_at,customer_id,anonymous_id,url,utm_source,device,properties\n"
               "E1,view,2024-03-05T10:00:00+08:00,C1,,,,desktop,\n"
               "E2,search,2024-03-31 23:59:59,,A2,https://x.example/s?utm_campaign=%zz,given,tablet,\n"
               "E7,view,2024-05-01,C7,,,,,\n"),
}


def _table(con: Any, name: str) -> list[tuple[Any, ...]]:
    df = con.table(name).execute()
    cols = sorted(c for c in df.columns if c not in UNSTABLE)
    return sorted((tuple(plain_value(v) for v in row) for row in df[cols].itertuples(index=False)), key=repr)


def _counts(result: ingest.ImportResult) -> tuple[Any, ...]:
    return (result.rows_read, result.rows_quarantined, result.superseded,
            {k: (v.inserted, v.updated, v.unchanged) for k, v in result.tables.items()},
            result.ignored_columns)


def _both(tmp_path: Path, remote: str | None = None) -> tuple[Settings, Settings]:
    return (Settings(data_dir=tmp_path / "duck", warehouse="duckdb"),
            Settings(data_dir=tmp_path / "spark", warehouse="spark", spark_remote=remote,
                     spark={"imports": "spark"}))


def _same_warehouses(d_cfg: Settings, s_cfg: Settings, names: tuple[str, ...]) -> None:
    dk, sp = db.connect(d_cfg), db.connect(s_cfg)
    for name in (*names, "_quarantine", "_imports"):
        assert _table(sp, name) == _table(dk, name), name


def _files_for(name: str, tmp_path: Path) -> list[Path]:
    """The example file of table ``name`` (when there is one) and its edge rows, as CSV files."""
    edges = tmp_path / f"{name}_edges.csv"
    edges.write_text(TABLE_EDGES[name], encoding="utf-8")
    example = EXAMPLES / f"{name}.csv"
    return [example, edges] if example.exists() else [edges]


def _rules_on_duckdb(table_name: str, paths: list[Path], tmp_path: Path) -> tuple[list[Any], list[Any]]:
    """(quarantine entries of the DuckDB import's SQL, those of the Ibis rules run by DuckDB)."""
    table = resolve_table(table_name)
    shop = Settings(data_dir=tmp_path).shop()
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{shop.timezone}'")
    staged = generic.stage(con, table, paths, "gw_raw")
    con.execute("CREATE TEMP TABLE raw_0 AS SELECT * FROM gw_raw")
    ingest_validate.validate(con, table, shop, len(paths) > 1, staged)
    expected = sorted(con.execute("SELECT _file, _row, column_name, value, reason FROM gw_bad "
                                  "WHERE column_name <> '(row)'").fetchall(), key=repr)
    for sql in rules.DUCKDB_MACROS:
        con.execute(sql)
    # The rows as the DuckDB import numbered them (after the reader's refused rows).
    con.execute("CREATE TEMP TABLE raw_n AS SELECT * FROM gw_typed_0")
    con.execute("CREATE TEMP TABLE raw_t AS SELECT r.* EXCLUDE (_row), n._row FROM "
                "(SELECT *, row_number() OVER (PARTITION BY _file_idx ORDER BY rowid) AS _k FROM raw_0) r "
                "JOIN (SELECT _file_idx, _row, row_number() OVER (PARTITION BY _file_idx ORDER BY _row) "
                "AS _k FROM raw_n) n USING (_file_idx, _k)")
    backend = ibis.duckdb.from_connection(con)
    typed = rules.validate(backend.table("raw_t"), table, shop, rules.DUCKDB)
    bad = rules.refusals(typed, table)
    if table.name == "order_lines":
        bad = ibis.union(bad, rules.hold_back_whole_orders(typed, bad, len(paths) > 1), distinct=False)
    got = sorted((tuple(plain_value(v) for v in r) for r in backend.execute(bad).itertuples(index=False)),
                 key=repr)
    return expected, got


@pytest.mark.parametrize("files", [
    ["order_lines_with_errors.csv"],
    ["order_lines.csv", "order_lines_with_errors.csv"],
])
def test_rules_in_ibis_on_duckdb_match_the_duckdb_import(files: list[str], tmp_path: Path) -> None:
    """The Ibis rules, run by DuckDB, refuse exactly what the DuckDB import's SQL refuses."""
    edges = tmp_path / "edges.csv"
    edges.write_text(EDGES, encoding="utf-8")
    expected, got = _rules_on_duckdb("order_lines", [EXAMPLES / f for f in files] + [edges], tmp_path)
    assert got == expected
    assert len(expected) > 20


@pytest.mark.parametrize("name", sorted(TABLE_EDGES))
def test_rules_in_ibis_match_the_duckdb_import_for_every_table(name: str, tmp_path: Path) -> None:
    """Every table's edge rows: the Ibis rules (JSON objects included) refuse what DuckDB's SQL
    refuses, with the same reasons."""
    expected, got = _rules_on_duckdb(name, _files_for(name, tmp_path), tmp_path)
    assert got == expected
    assert len(expected) >= 3


def test_spark_is_the_import_engine_of_a_spark_warehouse(tmp_path: Path) -> None:
    """Which imports run on Spark: generic CSV of any table on a Spark warehouse; never on DuckDB's."""
    csv, jsonl = EXAMPLES / "customers.csv", EXAMPLES / "order_lines.jsonl"
    spark_cfg = Settings(data_dir=tmp_path, warehouse="spark")
    for table in TABLES.values():
        assert spark_ingest.supported(spark_cfg, table, "generic", [csv])
    assert not spark_ingest.supported(Settings(data_dir=tmp_path), TABLES["customers"], "generic", [csv])
    assert not spark_ingest.supported(spark_cfg, TABLES["order_lines"], "generic", [jsonl])
    assert not spark_ingest.supported(spark_cfg, TABLES["order_lines"], "shopify", [csv])
    with pytest.raises(ingest.InvalidArgumentError, match="engine"):
        ingest.import_files("customers", [csv], cfg=spark_cfg, engine="pandas")


@pytest.mark.spark
def test_order_lines_import_on_spark_is_the_duckdb_import(spark_session: Any, tmp_path: Path) -> None:
    """Examples with errors, edge values, a re-import (unchanged), a newer version (updated) and
    several files at once: identical facts, quarantine and counts on both engines; the last
    import rewrote only the partitions it touched."""
    d_cfg, s_cfg = _both(tmp_path)
    edges = tmp_path / "edges.csv"
    edges.write_text(EDGES, encoding="utf-8")
    good = tmp_path / "order_lines.csv"
    shutil.copy(EXAMPLES / "order_lines.csv", good)
    newer = tmp_path / "newer.csv"
    newer.write_text(good.read_text(encoding="utf-8").replace(",shipped,", ",refunded,", 3),
                     encoding="utf-8")
    runs = [[EXAMPLES / "order_lines_with_errors.csv", edges], [good], [good], [newer]]
    before: lake.Snapshot | None = None
    for files in runs:
        before = lake.read_pointer(s_cfg)
        on_duckdb = ingest.import_files("order_lines", files, cfg=d_cfg)
        on_spark = ingest.import_files("order_lines", files, cfg=s_cfg)  # Spark: the default here
        assert _counts(on_spark) == _counts(on_duckdb), files
    _same_warehouses(d_cfg, s_cfg, ("orders", "order_lines"))
    assert on_spark.tables["orders"].updated == 2  # the 3 lines changed belong to 2 orders
    # Per partition: the months of the 3 updated orders were rewritten, the others kept their files.
    after = lake.read_pointer(s_cfg)
    assert before is not None
    kept = [p for p, fs in before.tables["orders"].items() if after.tables["orders"].get(p) == fs]
    assert kept
    assert len(kept) < len(after.tables["orders"])
    assert not list(s_cfg.spark_dir.rglob("_SUCCESS"))


@pytest.mark.spark
def test_every_table_imports_on_spark_as_on_duckdb(spark_session: Any, tmp_path: Path) -> None:
    """Customers, products, orders, events, ad spend and reviews: the example and edge files,
    then a second version (a changed row, an unchanged row, a new one): identical counts,
    facts and quarantine entries."""
    d_cfg, s_cfg = _both(tmp_path)
    for name in sorted(TABLE_EDGES):
        files = _files_for(name, tmp_path)
        on_duckdb = ingest.import_files(name, files, cfg=d_cfg)
        on_spark = ingest.import_files(name, files, cfg=s_cfg)
        assert _counts(on_spark) == _counts(on_duckdb), name
        assert on_spark.rows_quarantined > 0, name
        assert on_spark.tables[name].inserted > 0, name
    for name, text in SECOND.items():
        second = tmp_path / f"{name}_second.csv"
        second.write_text(text, encoding="utf-8")
        on_duckdb = ingest.import_files(name, [second], cfg=d_cfg)
        on_spark = ingest.import_files(name, [second], cfg=s_cfg)
        assert _counts(on_spark) == _counts(on_duckdb), name
        assert (on_spark.tables[name].updated, on_spark.tables[name].unchanged) == (1, 1), name
    _same_warehouses(d_cfg, s_cfg, tuple(sorted(TABLE_EDGES)))


@pytest.mark.spark
@pytest.mark.spark_connect
def test_imports_on_spark_through_spark_connect(spark_connect: str, tmp_path: Path) -> None:
    """Through a Spark Connect server too (the Python functions run in its workers): order lines
    with edge values and events with JSON properties and URL-encoded UTM parameters."""
    d_cfg, s_cfg = _both(tmp_path, spark_connect)
    edges = tmp_path / "edges.csv"
    edges.write_text(EDGES, encoding="utf-8")
    for name, files in (("order_lines", [edges]), ("events", _files_for("events", tmp_path))):
        on_duckdb = ingest.import_files(name, files, cfg=d_cfg)
        on_spark = ingest.import_files(name, files, cfg=s_cfg)
        assert _counts(on_spark) == _counts(on_duckdb), name
    _same_warehouses(d_cfg, s_cfg, ("orders", "order_lines", "events"))
