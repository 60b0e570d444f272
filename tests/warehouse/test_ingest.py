"""Imports in the generic format: typing, quarantine, idempotence, updates and atomicity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from growthwheel.config import Settings
from growthwheel.errors import ImportFileError, InvalidArgumentError
from growthwheel.warehouse.ingest import import_files, quarantine_rows

HEADER = (
    "order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,discount,status,"
    "refunded_amount,utm_source\n"
)


def write(path: Path, text: str) -> Path:
    """Write a CSV whose body is indented in the test source (the header line is not)."""
    head, _, body = text.partition("\n")
    path.write_text(head + "\n" + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def rows(cfg: Settings, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_values_are_typed_exactly(cfg: Settings, tmp_path: Path) -> None:
    f = write(tmp_path / "lines.csv", HEADER + """
        A1,c1,2024-03-05 14:07:11 +0800,S1,2,19.90,12.00,4.10,paid,,Douyin
        A1,c1,2024-03-05 14:07:11 +0800,S2,1,0.10,,,,,
        A2,c2,2024-03-06,S1,3,36.00,12.00,,refunded,36.00,
        """)
    result = import_files("order_lines", [f], cfg=cfg)
    assert result.rows_read == 3
    assert result.rows_quarantined == 0
    assert result.tables["orders"].inserted == 2
    assert result.tables["order_lines"].inserted == 3
    orders = rows(cfg, "SELECT order_id, customer_id, ordered_at::VARCHAR, order_date::VARCHAR, status, "
                       "channel, item_count, gross_amount, discount_amount, total_amount, refunded_amount "
                       "FROM orders ORDER BY order_id")
    assert orders == [
        # 14:07:11 at +08:00 is 06:07:11 UTC; 19.90 + 0.10 = 20.00 in cents, no float on the way.
        ("A1", "c1", "2024-03-05 06:07:11", "2024-03-05", "paid", "douyin", 3, 2410, 410, 2000, 0),
        # A date without a time is midnight in the shop's time zone (Asia/Shanghai): 16:00 UTC before.
        ("A2", "c2", "2024-03-05 16:00:00", "2024-03-06", "refunded", "direct", 3, 3600, 0, 3600, 3600),
    ]
    lines = rows(cfg, "SELECT order_id, line_no, sku, quantity, unit_price, discount_amount, line_total "
                      "FROM order_lines ORDER BY order_id, line_no")
    assert lines == [
        ("A1", 1, "S1", 2, 1200, 410, 1990),
        ("A1", 2, "S2", 1, None, 0, 10),
        ("A2", 1, "S1", 3, 1200, 0, 3600),  # discount derived from unit price × quantity − total
    ]


def test_reimport_changes_nothing_and_newer_version_updates(cfg: Settings, tmp_path: Path) -> None:
    first = write(tmp_path / "v1.csv", HEADER + """
        B1,c1,2024-05-01T10:00:00+08:00,S1,1,10.00,,,paid,,
        B1,c1,2024-05-01T10:00:00+08:00,S2,1,5.00,,,paid,,
        B2,c2,2024-05-02T10:00:00+08:00,S1,1,10.00,,,paid,,
        """)
    import_files("order_lines", [first], cfg=cfg)
    before = rows(cfg, "SELECT * EXCLUDE (_import_id) FROM orders ORDER BY order_id")

    again = import_files("order_lines", [first], cfg=cfg)
    assert again.tables["orders"].inserted == 0
    assert again.tables["orders"].updated == 0
    assert again.tables["orders"].unchanged == 2
    assert rows(cfg, "SELECT * EXCLUDE (_import_id) FROM orders ORDER BY order_id") == before
    assert rows(cfg, "SELECT count(*) FROM order_lines") == [(3,)]

    # B1 is now partially refunded and lost a line; B3 is new.
    second = write(tmp_path / "v2.csv", HEADER + """
        B1,c1,2024-05-01T10:00:00+08:00,S1,1,10.00,,,partially_refunded,4.00,
        B3,c3,2024-05-03T10:00:00+08:00,S9,2,8.00,,,paid,,
        """)
    result = import_files("order_lines", [second], cfg=cfg)
    assert (result.tables["orders"].inserted, result.tables["orders"].updated) == (1, 1)
    assert rows(cfg, "SELECT order_id, status, total_amount, refunded_amount FROM orders ORDER BY 1") == [
        ("B1", "partially_refunded", 1000, 400),
        ("B2", "paid", 1000, 0),
        ("B3", "paid", 800, 0),
    ]
    # The order's lines were replaced as a whole: B1 has one line now, not three.
    assert rows(cfg, "SELECT order_id, count(*) FROM order_lines GROUP BY 1 ORDER BY 1") == [
        ("B1", 1), ("B2", 1), ("B3", 1)]


def test_broken_rows_are_quarantined_with_reasons(cfg: Settings, tmp_path: Path) -> None:
    f = write(tmp_path / "broken.csv", HEADER + """
        C1,c1,2024-01-02,S1,1,10.00,,,,,
        C2,c2,2024-13-02,S1,1,10.00,,,,,
        C3,c3,2024-01-02,S1,0,10.00,,,,,
        C4,,2024-01-02,S1,1,10.00,,,,,
        C5,c5,2024-01-02,S1,1,12.345,,,,,
        C6,c6,2024-01-02,S1,1,abc,,,,,
        C7,c7,2024-01-02,S1,1,10.00,,,shipped-ish,,
        C8,c8,2024-01-02,S1,1,10.00,,,,11.00,
        C9,c9,2024-01-02,S1,1,10.00,too,many,fields,here,x,y
        C10,c10,2024-01-02,S1,1,10.00,,,,,
        C10,c10,2024-01-02,S2,1,-1.00,,,,,
        C11,c11,2024-01-02,S1,1,10.00,,,,,
        """)
    result = import_files("order_lines", [f], cfg=cfg)
    assert result.rows_read == 12
    assert result.tables["orders"].inserted == 2  # C1 and C11
    assert result.rows_quarantined == 10
    got = {(q["row_number"], q["column_name"], q["reason"]) for q in quarantine_rows(cfg)}
    assert got == {
        (2, "ordered_at", "not an ISO 8601 date or date-time (e.g. 2024-03-05 14:07:11+08:00)"),
        (3, "quantity", "must be at least 1"),
        (4, "customer_id", "required value is missing"),
        (5, "line_total", "more than 2 decimal places for CNY"),
        (6, "line_total", "not a plain decimal number in major units (e.g. 12.30)"),
        (7, "status",
         "not one of pending, paid, shipped, completed, partially_refunded, refunded, cancelled"),
        (8, "refunded_amount", "refunded_amount exceeds line_total"),
        (9, "(row)", "unreadable row: Expected Number of Columns: 11 Found: 12"),
        (11, "line_total", "must not be negative"),
        # A good line of an order with a bad line is held back, so no order is half-stored.
        (10, "order_id", "order C10 held back: its row 11 was refused"),
    }
    assert rows(cfg, "SELECT order_id FROM orders ORDER BY 1") == [("C1",), ("C11",)]
    # Re-importing the same file replaces its quarantine entries instead of doubling them.
    import_files("order_lines", [f], cfg=cfg)
    assert len(quarantine_rows(cfg)) == 10


def test_lines_of_one_order_must_agree(cfg: Settings, tmp_path: Path) -> None:
    f = write(tmp_path / "mixed.csv", HEADER + """
        D1,c1,2024-01-02,S1,1,10.00,,,,,
        D1,c2,2024-01-02,S2,1,10.00,,,,,
        """)
    result = import_files("order_lines", [f], cfg=cfg)
    assert result.rows_quarantined == 2
    reasons = {q["reason"] for q in quarantine_rows(cfg)}
    assert "lines of order D1 disagree on customer_id" in reasons


def test_whole_file_problems_are_clear_errors(cfg: Settings, tmp_path: Path) -> None:
    f = write(tmp_path / "nocust.csv", "order_id,ordered_at,sku,quantity,line_total\nX,2024-01-01,S,1,1\n")
    with pytest.raises(ImportFileError, match=r"nocust.csv: missing required column\(s\) customer_id"):
        import_files("order_lines", [f], cfg=cfg)
    with pytest.raises(ImportFileError, match="no such file"):
        import_files("order_lines", [tmp_path / "absent.csv"], cfg=cfg)
    with pytest.raises(InvalidArgumentError, match="unknown table"):
        import_files("invoices", [f], cfg=cfg)
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("customer_id,name\nc1,张三\n".encode("gbk"))
    with pytest.raises(ImportFileError, match=r"gbk\.csv: not UTF-8 text"):
        import_files("customers", [gbk], cfg=cfg)


def test_other_tables_and_formats(cfg: Settings, tmp_path: Path) -> None:
    customers = write(tmp_path / "customers.csv", """
        customer_id,email,birthday,accepts_marketing,utm_source,channel
        c1,a@example.com,1990-02-03,yes,Baidu,
        c2,b@example.com,,no,,WeChat
        c1,a2@example.com,1990-02-03,true,baidu,
        """)
    result = import_files("customers", [customers], cfg=cfg)
    assert result.tables["customers"].inserted == 2
    assert result.superseded == 1  # the later row for c1 wins within one import
    assert rows(cfg, "SELECT customer_id, email, accepts_marketing, channel FROM customers ORDER BY 1") == [
        ("c1", "a2@example.com", True, "baidu"), ("c2", "b@example.com", False, "wechat")]

    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in [
        {"event_id": "e1", "type": "view", "occurred_at": "2024-06-18T23:30:00+08:00",
         "anonymous_id": "a1", "url": "https://shop.example/p/1?utm_source=xiaohongshu&utm_medium=social&utm_campaign=618%20sale",
         "properties": {"price": 12.5, "tags": ["a"]}},
        {"event_id": "e2", "type": "purchase", "occurred_at": "2024-06-18T16:00:00Z", "customer_id": "c1"},
        {"event_id": "e3", "type": "view", "occurred_at": "2024-06-18T16:00:00Z"},
    ]) + "\n", encoding="utf-8")
    result = import_files("events", [events], cfg=cfg)
    assert result.tables["events"].inserted == 2
    assert [(q["row_number"], q["reason"]) for q in quarantine_rows(cfg, table="events")] == [
        (3, "either customer_id or anonymous_id is required")]
    assert rows(cfg, "SELECT event_id, event_date::VARCHAR, utm_source, utm_campaign, properties FROM events "
                     "ORDER BY 1") == [
        ("e1", "2024-06-18", "xiaohongshu", "618 sale", '{"price":12.5,"tags":["a"]}'),
        # 16:00 UTC is midnight in Shanghai: the next shop-local day.
        ("e2", "2024-06-19", None, None, None),
    ]

    import pyarrow as pa
    import pyarrow.parquet as pq

    spend = tmp_path / "spend.parquet"
    pq.write_table(pa.table({"date": ["2024-06-01", "2024-06-01"], "channel": ["Douyin", "baidu"],
                             "spend": ["1200.50", "99.99"], "clicks": [10, 3]}), spend)
    result = import_files("ad_spend", [spend], cfg=cfg)
    assert result.tables["ad_spend"].inserted == 2
    assert rows(cfg, "SELECT channel, spend, clicks FROM ad_spend ORDER BY 1") == [
        ("baidu", 9999, 3), ("douyin", 120050, 10)]


def test_killed_import_leaves_the_warehouse_as_it_was(cfg: Settings, tmp_path: Path) -> None:
    small = write(tmp_path / "small.csv", HEADER + "K0,c0,2024-01-01,S1,1,1.00,,,,,\n")
    import_files("order_lines", [small], cfg=cfg)
    before = rows(cfg, "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_lines), "
                       "(SELECT count(*) FROM _imports)")
    big = tmp_path / "big.csv"
    with big.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for i in range(200_000):
            fh.write(f"K{i + 1},c{i % 5000},2024-02-01,S{i % 50},1,{i % 900}.50,,,,,\n")
    # The child kills itself (SIGKILL, no clean-up) while the merge is writing rows.
    child = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from growthwheel.config import Settings
        from growthwheel.warehouse import ingest
        ingest.PROGRESS_BYTES = 0
        def progress(phase, fraction):
            if phase == "writing":
                os.kill(os.getpid(), signal.SIGKILL)
        ingest.import_files("order_lines", [{str(big)!r}], cfg=Settings(data_dir=Path({str(cfg.data_dir)!r})),
                            progress=progress)
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert rows(cfg, "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_lines), "
                     "(SELECT count(*) FROM _imports)") == before
    # And the warehouse still takes the import afterwards.
    result = import_files("order_lines", [big], cfg=cfg)
    assert result.tables["orders"].inserted == 200_000
    assert os.path.exists(cfg.warehouse_path)


def test_cli_import_and_quarantine(tmp_path: Path) -> None:
    f = write(tmp_path / "lines.csv", HEADER + "E1,c1,2024-01-01,S1,1,1.00,,,,,\nE2,c2,bad,S1,1,1.00,,,,,\n")
    exe = [sys.executable, "-m", "growthwheel.cli", "--data-dir", str(tmp_path / "d")]
    done = subprocess.run([*exe, "import", "order_lines", str(f), "--json"], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout)
    assert result["rows_quarantined"] == 1
    assert result["tables"]["orders"]["inserted"] == 1
    listed = subprocess.run([*exe, "quarantine", "list", "--json"], capture_output=True, text=True,
                            check=True)
    assert json.loads(listed.stdout)[0]["value"] == "bad"
    # the table shows the reason in the reader's language, as the console does (JSON keeps the words)
    wide = {**os.environ, "COLUMNS": "250"}
    zh = subprocess.run([*exe, "quarantine", "list"], capture_output=True, text=True, check=True,
                        env={**wide, "GROWTHWHEEL_LANG": "zh"})
    assert "不是有效的日期或日期时间" in zh.stdout
    en = subprocess.run([*exe, "quarantine", "list"], capture_output=True, text=True, check=True,
                        env={**wide, "GROWTHWHEEL_LANG": "en"})
    assert "not an ISO 8601 date or date-time" in en.stdout
    failed = subprocess.run([*exe, "import", "order_lines", str(tmp_path / "nope.csv")],
                            capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "nope.csv: no such file" in failed.stderr
