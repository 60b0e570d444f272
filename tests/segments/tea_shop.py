"""The tea shop of the segment tests (and of the examples in docs/segments.md), and helpers.

Built through the normal import path from the files below; every expected answer in the tests is
worked out by hand from them. Shop time zone Asia/Shanghai; ``AS_OF`` = 2025-03-31.

* c1 Alice, 上海, tags "vip; tea", signed up 2025-03-20: O1 03-25 (TEA1 ×2 40.00 + CUP 120.00),
  O2 01-10 (TEA2 30.00); events: view TEA1 + purchase on 03-25.
* c2 Bob, 北京: O4 2024-12-05 (CUP 120.00), O3 03-10 cancelled (TEA1 50.00);
  views TEA1 03-20, CUP 03-21.
* c3 Carol, 上海, tag "tea", signed up 2025-03-02 01:30 shop time (03-01 17:30 UTC):
  O8 02-20 (TEA1 20.00), O5 03-30 (TEA2 ×3 90.00); view TEA2 + purchase 03-30.
* c4 Dave, 杭州: views and carts TEA2 on 03-28; O7 on 04-02 (after AS_OF) with its purchase event.
* c5 (hostile text: name is a spreadsheet formula, city "50%_off"): one view on 01-05.
* c6: no customer row; O6 03-15 refunded (GIFT 10.00).
* an anonymous view on 03-29.
"""

from __future__ import annotations

import json
import re
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from growthwheel.config import Settings
from growthwheel.warehouse.ingest import import_files

AS_OF = date(2025, 3, 31)
EVERYONE = {"c1", "c2", "c3", "c4", "c5", "c6"}

PRODUCTS = """\
    sku,name,category,price
    TEA1,Green tea,Tea/Green,20.00
    TEA2,Oolong,Tea/Oolong,30.00
    CUP,Teacup,Teaware,120.00
    GIFT,Gift card,,10.00
    """
CUSTOMERS = """\
    customer_id,email,phone,name,city,channel,signed_up_at,birthday,accepts_marketing,tags
    c1,alice@example.com,13800138000,Alice,上海,douyin,2025-03-20 10:00:00 +0800,1990-05-01,true,vip; tea
    c2,bob@shop.cn,,Bob,北京,baidu,2024-12-01 09:00:00 +0800,,false,
    c3,,+86 139-0000-1111,Carol,上海,wechat,2025-03-02 01:30:00 +0800,,true,tea
    c4,dave@mail.com,,Dave,杭州,direct,2024-06-01 12:00:00 +0800,,,
    c5,,,"=HYPERLINK(""http://evil.example"")",50%_off,direct,,,,
    """
LINES = """\
    order_id,customer_id,ordered_at,sku,quantity,line_total,unit_price,status,category
    O1,c1,2025-03-25 14:00:00 +0800,TEA1,2,40.00,20.00,paid,
    O1,c1,2025-03-25 14:00:00 +0800,CUP,1,120.00,120.00,paid,
    O2,c1,2025-01-10 09:00:00 +0800,TEA2,1,30.00,30.00,completed,
    O3,c2,2025-03-10 12:00:00 +0800,TEA1,1,50.00,50.00,cancelled,
    O4,c2,2024-12-05 12:00:00 +0800,CUP,1,120.00,120.00,paid,
    O5,c3,2025-03-30 23:30:00 +0800,TEA2,3,90.00,30.00,paid,Tea/Oolong
    O6,c6,2025-03-15 12:00:00 +0800,GIFT,1,10.00,10.00,refunded,
    O7,c4,2025-04-02 10:00:00 +0800,TEA1,1,20.00,20.00,paid,
    O8,c3,2025-02-20 10:00:00 +0800,TEA1,1,20.00,20.00,shipped,
    """
EVENTS = """\
    event_id,type,occurred_at,customer_id,anonymous_id,sku,order_id
    e1,view,2025-03-25 13:00:00 +0800,c1,,TEA1,
    e2,purchase,2025-03-25 14:00:00 +0800,c1,,,O1
    e3,view,2025-03-20 20:00:00 +0800,c2,,TEA1,
    e4,view,2025-03-21 20:00:00 +0800,c2,,CUP,
    e5,view,2025-03-30 23:00:00 +0800,c3,,TEA2,
    e6,purchase,2025-03-30 23:30:00 +0800,c3,,,O5
    e7,view,2025-03-28 10:00:00 +0800,c4,,TEA2,
    e8,add_to_cart,2025-03-28 10:05:00 +0800,c4,,TEA2,
    e9,purchase,2025-04-02 10:00:00 +0800,c4,,,O7
    e10,view,2025-01-05 10:00:00 +0800,c5,,CUP,
    e11,view,2025-03-29 10:00:00 +0800,,anon-9,TEA1,
    """
#: customer_id, rfm_segment, rfm_score, lifecycle_stage, clv (minor units): a hand-made score table.
SCORES = [
    ("c1", "Champions", 555, "loyal", 50_000.0),
    ("c2", "At Risk", 214, "at_risk", 1_200.0),
    ("c3", "Loyal Customers", 455, "repeat", 30_000.0),
    ("c6", "Lost", 111, "churned", 0.0),
]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def add_scores(cfg: Settings) -> None:
    """Write :data:`SCORES` as the warehouse table ``customer_scores``."""
    con = duckdb.connect(str(cfg.warehouse_path))
    try:
        con.execute("CREATE OR REPLACE TABLE customer_scores (customer_id VARCHAR, rfm_segment VARCHAR, "
                    "rfm_score BIGINT, lifecycle_stage VARCHAR, clv DOUBLE)")
        con.executemany("INSERT INTO customer_scores VALUES (?, ?, ?, ?, ?)", SCORES)
    finally:
        con.close()


DOCS = Path(__file__).resolve().parents[2] / "docs" / "segments.md"
_EXAMPLE = re.compile(r"<!-- example: (\S+) -->\s*```json\n(.*?)```", re.S)


def doc_examples() -> dict[str, Any]:
    """The examples of docs/segments.md, by name."""
    return {name: json.loads(body) for name, body in _EXAMPLE.findall(DOCS.read_text(encoding="utf-8"))}


def build(data: Path, scratch: Path) -> Settings:
    """Import the tea shop into the data directory ``data`` (files written to ``scratch``)."""
    cfg = Settings(data_dir=data, database_url=None)
    files = (("products", "products.csv", PRODUCTS), ("customers", "customers.csv", CUSTOMERS),
             ("order_lines", "lines.csv", LINES), ("events", "events.csv", EVENTS))
    for table, name, text in files:
        result = import_files(table, [_write(scratch, name, text)], cfg=cfg)
        assert result.rows_quarantined == 0, (table, result)
    add_scores(cfg)
    return cfg
