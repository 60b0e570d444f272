"""Taobao / Tmall review exports (评价管理 → 导出评价) into the warehouse's ``reviews``.

The seller centre's review export is a CSV with one row per reviewed item. Columns are matched by
name (order does not matter; unknown columns are ignored); the file is read as UTF-8 with a BOM,
else UTF-8, else GB18030, and values wrapped as ``="…"`` are unwrapped, like the order reports
(``warehouse/formats/taobao.py``). The layout is documented with a realistic file in
``examples/taobao/ExportRateList.csv``. Exports differ between versions and between Taobao and
Tmall, hence the matching by name and the aliases (:data:`ALIASES`); the layout here was written
as a model of the seller centre's review export; it was not checked against a live shop's file.

How each value is translated (decisions, so users know what they get):

* ``review_id`` = ``tb-`` + 子订单编号 (one review per item), else ``tb-`` + 订单编号 + ``-`` +
  宝贝ID; ``order_id`` = 订单编号; ``customer_id`` = 买家昵称 as written (masked nicknames such
  as ``t**1`` stay as they are).
* ``sku`` = 外部系统编号 (the shop's SKU, as the order reports' lines take it), else 商家编码,
  else 宝贝ID.
* ``rating`` = 评分 (1–5, Tmall) when the column is there and filled, else from 评价结果:
  好评 → 5, 中评 → 3, 差评 → 1. Anything else is passed on, so validation quarantines the row.
* ``created_at`` = 评价时间, shop-local (Beijing) time written without an offset, as the order
  reports; ``2024/3/5 14:07`` is read too.
* ``body`` = 评价内容, followed by ``追评：`` + 追评内容 when the buyer added a follow-up;
  ``title`` = 宝贝标题; ``language`` = ``zh``.
* 商家回复 (the shop's answer): a review answered in the seller centre does not enter the
  service queue (its case, if negative, is recorded as replied with that text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from growthwheel.keys import k
from growthwheel.warehouse.file_checks import NotThisFormatError
from growthwheel.warehouse.formats.base import read_rows
from growthwheel.warehouse.formats.taobao import clean, iso_timestamp
from growthwheel.warehouse.schema import REVIEWS

REQUIRED = ("订单编号", "评价时间", "评价内容")
ALIASES = {"主订单编号": "订单编号", "商品ID": "宝贝ID", "商品编码": "商家编码", "商品标题": "宝贝标题",
           "评论时间": "评价时间", "评论内容": "评价内容", "初次评价": "评价内容", "卖家回复": "商家回复",
           "卖家解释": "商家回复", "会员名": "买家昵称", "评价等级": "评价结果"}
GRADES = {"好评": "5", "中评": "3", "差评": "1"}
FORMATS = ("generic", "taobao")


def _header(name: str) -> str:
    name = clean(name.replace("\ufeff", ""))
    return ALIASES.get(name, name)


def read_taobao(path: Path, name: str | None = None) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The review rows of one export in the generic ``reviews`` columns (``_file`` / ``_row``
    say where each came from), and the answered ones (``review_id``, ``reply``)."""
    shown = name or str(path)
    header, rows = read_rows(path, _header, clean)
    missing = [h for h in REQUIRED if h not in header]
    if not {"宝贝ID", "商家编码", "外部系统编号"} & set(header):
        missing.append("宝贝ID / 商家编码")
    if missing:
        raise NotThisFormatError(
            f"{shown}: not a Taobao review export (missing {', '.join(missing)})", shown,
            k("import_file.not_taobao_reviews"), missing=", ".join(missing), found=", ".join(header))
    out: dict[str, list[Any]] = {c.name: [] for c in REVIEWS.inputs}
    out["_file"], out["_row"] = [], []
    answered: list[dict[str, Any]] = []
    for number, v in rows:
        item = v.get("宝贝ID", "")
        sub = v.get("子订单编号", "")
        review_id = f"tb-{sub}" if sub else f"tb-{v.get('订单编号', '')}-{item}"
        rating = v.get("评分", "") or GRADES.get(v.get("评价结果", ""), v.get("评价结果", ""))
        body = v.get("评价内容", "")
        if v.get("追评内容"):
            body = f"{body} 追评：{v['追评内容']}".strip()
        sku = v.get("外部系统编号") or v.get("商家编码") or item
        row = {"review_id": review_id, "sku": sku, "rating": rating or None,
               "created_at": iso_timestamp(v.get("评价时间", "")) or None,
               "order_id": v.get("订单编号") or None, "customer_id": v.get("买家昵称") or None,
               "title": v.get("宝贝标题") or None, "body": body or None, "language": "zh"}
        for key, value in row.items():
            out[key].append(value)
        out["_file"].append(shown)
        out["_row"].append(number)
        if v.get("商家回复"):
            answered.append({"review_id": review_id, "reply": v["商家回复"]})
    table = pa.table({k: pa.array(vals, pa.int64() if k == "_row" else pa.string())
                      for k, vals in out.items()})
    return table, answered
