"""Taobao / Tmall seller-centre exports: the 订单报表 (orders) and its 宝贝报表 (items).

千牛卖家中心 → 已卖出的宝贝 → 批量导出 gives two CSV files: ``ExportOrderList….csv``
with one row per order and ``ExportOrderDetailList….csv`` with one row per item,
joined by 订单编号. Pass both in one command, in any order; which file is which is
told from its headers. Files are read as UTF-8 with a BOM, else UTF-8, else
GB18030 (a superset of GBK, the encoding of older exports). Values wrapped as
``="…"`` (so that spreadsheets keep long numbers as text) are unwrapped; ids stay
text, so order numbers and member names keep every digit and leading zero.

How each value is translated (decisions, so that users know what they get):

* ``order_id`` = 订单编号; ``customer_id`` = 买家会员名 as written; ``currency`` =
  ``CNY``.
* ``ordered_at`` = 订单创建时间 and ``paid_at`` = 订单付款时间, rewritten as ISO 8601
  without an offset (``2024-03-05T14:07:11``): Taobao writes shop-local (Beijing)
  time, which is what the generic format assumes for a time without offset. A
  spreadsheet's ``2024/3/5 14:07`` is read too.
* ``status`` from 订单状态: 等待买家付款 / 没有创建支付宝交易 / 付款确认中 →
  ``pending``; 买家已付款，等待卖家发货 (and cash-on-delivery's
  买家已确认，等待卖家发货) → ``paid``; 卖家已发货，等待买家确认 (and
  …确认收货并付款, 卖家部分发货) → ``shipped``; 交易成功 and 买家已签收 →
  ``completed``; 交易关闭 / 交易被淘宝关闭 → ``refunded`` when the order was paid
  (it has a 订单付款时间) and 退款金额 > 0, else ``cancelled``. A paid, shipped or
  completed order with 退款金额 > 0 is ``partially_refunded``, or ``refunded``
  once the refund reaches 买家实际支付金额. Any other status is passed on as
  written, so validation quarantines it.
* Lines come from the 宝贝报表: ``sku`` = 外部系统编号 (the shop's SKU), else
  商家编码, else the title; ``product_name`` = 标题; ``quantity`` = 购买数量;
  ``unit_price`` = 价格. What the buyer paid for goods, 买家实际支付金额 −
  买家应付邮费, is spread over the items by largest remainder in fen, weighted by
  价格 × 购买数量, so the line totals add up to it exactly; ``discount`` =
  价格 × 购买数量 − ``line_total`` (shop coupons, 满减, red packets and points
  together). An order with nothing paid (unpaid or closed) spreads 买家应付货款
  instead, else the items' list value.
* ``refunded_amount``: 退款金额 spread over the lines by their totals (up to the
  goods total). ``shipping`` = 买家应付邮费 on the order's first line only.
* With only the 订单报表 (no 宝贝报表 in the command), or for an order the
  宝贝报表 does not list, each order becomes **one line**: ``sku`` = 商家编码 when
  the report has it, else 宝贝标题; ``quantity`` = 宝贝总数量; ``line_total`` =
  the goods paid as above; no unit price.
* An item whose 订单编号 is in no 订单报表 of the command keeps an empty buyer and
  order time, so validation quarantines it rather than storing a line without an
  order.
* Orders listed twice (overlapping exports) are taken from the last file given;
  an order's items are taken from the last 宝贝报表 that lists it.

``customers``: one row per 买家会员名 with ``name`` = 收货人姓名, ``phone`` =
联系手机 (else 联系电话), ``province`` and ``city`` = the first two parts of
收货地址, ``country`` = ``CN``; each field takes the most recent order's non-empty
value. Item reports in the command are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from growthwheel.keys import k
from growthwheel.kit.money import allocate, major_text, parse_major
from growthwheel.warehouse.file_checks import NotThisFormatError
from growthwheel.warehouse.formats.base import (
    Record,
    parse_quantity,
    read_rows,
    require_columns,
    stage_records,
)
from growthwheel.warehouse.schema import Table

CURRENCY = "CNY"
_EXP = 2  # fen

#: Headers that make a file an 订单报表, and those it needs to be imported.
ORDER_HEADERS = ("订单编号", "买家会员名", "订单创建时间", "订单状态", "买家实际支付金额")
#: Extra headers an 订单报表 needs when no 宝贝报表 is given (one line per order).
ORDER_ONLY_HEADERS = ("宝贝标题", "宝贝总数量")
#: Headers that make a file a 宝贝报表.
ITEM_HEADERS = ("订单编号", "标题", "价格", "购买数量")
#: Newer exports' names for the same columns.
ALIASES = {
    "主订单编号": "订单编号",
    "商品标题": "标题",
    "商品价格": "价格",
    "宝贝数量": "宝贝总数量",
}

_PENDING = ("等待买家付款", "没有创建支付宝交易", "付款确认中", "等待买家确认货到付款订单信息")
_PAID = ("买家已付款，等待卖家发货", "买家已确认，等待卖家发货", "等待卖家发货")
_SHIPPED = (
    "卖家已发货，等待买家确认",
    "卖家已发货，等待买家确认收货",
    "卖家已发货，等待买家确认收货并付款",
    "卖家部分发货",
)
_COMPLETED = ("交易成功", "买家已签收", "买家已签收，回款至卖家")
_CLOSED = ("交易关闭", "交易被淘宝关闭")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def clean(value: str) -> str:
    """A cell as meant: ``="2024031512345"`` → ``2024031512345``; surrounding blanks dropped."""
    value = value.strip()
    if value.startswith('="') and value.endswith('"') and len(value) >= 3:
        value = value[2:-1].strip()
    return value


def _header_name(name: str) -> str:
    name = clean(name.replace("\ufeff", ""))
    return ALIASES.get(name, name)


def kind_of(header: Sequence[str]) -> str | None:
    """``"orders"`` for an 订单报表, ``"items"`` for a 宝贝报表, ``None`` for neither."""
    present = set(header)
    if "买家会员名" in present or "买家实际支付金额" in present:
        return "orders"
    if "购买数量" in present and "标题" in present:
        return "items"
    return None


# ---------------------------------------------------------------------------------------------
# Value translation (pure)
# ---------------------------------------------------------------------------------------------

_STAMP = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def iso_timestamp(text: str) -> str | None:
    """``2024-03-05 14:07:11`` or ``2024/3/5 14:07`` → ``2024-03-05T14:07:11``; else as written."""
    text = text.strip()
    if not text:
        return None
    m = _STAMP.match(text)
    if not m:
        return text
    y, mo, d, h, mi, s = m.groups()
    day = f"{y}-{int(mo):02d}-{int(d):02d}"
    if h is None:
        return day
    return f"{day}T{int(h):02d}:{mi}:{s or '00'}"


def parse_fen(text: str) -> int | None:
    """A non-negative yuan amount (``¥1,280.00`` allowed) as integer fen; ``None`` if not one."""
    return parse_major(text.strip().lstrip("¥￥").replace(",", ""), _EXP)


def order_status(status: str, paid_at: str, refund: int | None, paid: int | None) -> str | None:
    """订单状态 → one of ``ORDER_STATUSES``, given the payment time, 退款金额 and 实付 in fen."""
    status = status.strip()
    if not status:
        return None
    refunded = refund is not None and refund > 0
    if status in _PENDING:
        return "pending"
    if status in _CLOSED:
        return "refunded" if paid_at.strip() and refunded else "cancelled"
    if status in _PAID:
        mapped = "paid"
    elif status in _SHIPPED:
        mapped = "shipped"
    elif status in _COMPLETED:
        mapped = "completed"
    else:
        return status
    if refunded and refund is not None:
        return "refunded" if paid is not None and refund >= paid > 0 else "partially_refunded"
    return mapped


def split_address(address: str) -> tuple[str | None, str | None]:
    """(province, city) from 收货地址 such as ``浙江省 杭州市 西湖区 文三路 259 号(310012)``."""
    parts = address.split()
    province = parts[0] if parts else None
    city = parts[1] if len(parts) > 1 else None
    return province, city


def _phone(text: str) -> str | None:
    value = text.strip().lstrip("'").strip()
    return value or None


# ---------------------------------------------------------------------------------------------
# Orders and items → lines (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One row of one file of the command: the file's position and the row's number in it."""

    file_idx: int
    row: int
    values: dict[str, str]


def _goods_paid(order: Mapping[str, str], item_value: int) -> tuple[int, str | None]:
    """Fen paid for goods, and the raw text of an amount that cannot be read (if any)."""
    paid_raw = order.get("买家实际支付金额", "")
    postage_raw = order.get("买家应付邮费", "")
    paid, postage = parse_fen(paid_raw), parse_fen(postage_raw)
    if paid is None:
        return 0, paid_raw
    if postage is None:
        return 0, postage_raw
    if paid > 0:
        return max(paid - postage, 0), None
    payable = parse_fen(order.get("买家应付货款", ""))
    if payable:
        return payable, None
    return item_value, None


def _order_values(order: Source | None) -> dict[str, str | None]:
    """The order-level generic columns of an order (all empty when the order is unknown)."""
    if order is None:
        return {"currency": CURRENCY}
    o = order.values
    refund = parse_fen(o.get("退款金额", ""))
    paid = parse_fen(o.get("买家实际支付金额", ""))
    return {
        "order_id": o.get("订单编号") or None,
        "customer_id": o.get("买家会员名") or None,
        "ordered_at": iso_timestamp(o.get("订单创建时间", "")),
        "paid_at": iso_timestamp(o.get("订单付款时间", "")),
        "status": order_status(o.get("订单状态", ""), o.get("订单付款时间", ""), refund, paid),
        "currency": CURRENCY,
    }


def _item_lines(order: Source, items: Sequence[Source]) -> list[Record]:
    """One record per item, with the goods paid and the refund spread over the items."""
    common = _order_values(order)
    postage_raw = order.values.get("买家应付邮费", "")
    refund_raw = order.values.get("退款金额", "")
    refund = parse_fen(refund_raw)
    quantities: list[int] = []
    prices: list[int] = []
    for item in items:
        qty = parse_quantity(item.values.get("购买数量", ""))
        price = parse_fen(item.values.get("价格", ""))
        if qty is None or price is None:
            break
        quantities.append(qty)
        prices.append(price)
    gross = [p * q for p, q in zip(prices, quantities, strict=True)]
    goods, bad_amount = _goods_paid(order.values, sum(gross))
    out: list[Record] = []
    if len(gross) == len(items) and bad_amount is None and refund is not None:
        totals = allocate(goods, gross)
        refunds = allocate(min(refund, goods), totals)
        for i, item in enumerate(items):
            values = dict(common)
            values.update(_item_identity(item.values))
            values.update(
                quantity=str(quantities[i]),
                unit_price=major_text(prices[i], _EXP),
                line_total=major_text(totals[i], _EXP),
                discount=major_text(gross[i] - totals[i], _EXP),
                refunded_amount=major_text(refunds[i], _EXP),
                shipping=(postage_raw or None) if i == 0 else None,
            )
            out.append((item.row, values))
        return out
    # Something cannot be read: pass it on as written so that validation names it.
    for i, item in enumerate(items):
        values = dict(common)
        values.update(_item_identity(item.values))
        values.update(_raw_amounts(item.values), shipping=(postage_raw or None) if i == 0 else None)
        if i == 0 and bad_amount is not None:
            values["line_total"] = bad_amount
        if i == 0 and refund is None:
            values["refunded_amount"] = refund_raw
        out.append((item.row, values))
    return out


def _raw_amounts(item: Mapping[str, str]) -> dict[str, str | None]:
    """Quantity, price and line total of an item as written (the total computed when possible)."""
    qty_raw, price_raw = item.get("购买数量", ""), item.get("价格", "")
    qty, price = parse_quantity(qty_raw), parse_fen(price_raw)
    total = major_text(qty * price, _EXP) if qty is not None and price is not None else None
    if total is None:
        total = qty_raw if price is not None else price_raw
    return {"quantity": qty_raw, "unit_price": price_raw, "line_total": total}


def _item_identity(item: Mapping[str, str]) -> dict[str, str | None]:
    title = item.get("标题", "")
    sku = item.get("外部系统编号", "") or item.get("商家编码", "") or title
    return {"sku": sku or None, "product_name": title or None}


def _order_line(order: Source) -> Record:
    """The single line of an order without items: the order report's own summary."""
    o = order.values
    values = _order_values(order)
    title = o.get("宝贝标题", "")
    goods, bad_amount = _goods_paid(o, 0)
    refund_raw = o.get("退款金额", "")
    refund = parse_fen(refund_raw)
    values.update(
        sku=o.get("商家编码", "") or title or None,
        product_name=title or None,
        quantity=o.get("宝贝总数量", "") or None,
        line_total=bad_amount if bad_amount is not None else major_text(goods, _EXP),
        refunded_amount=refund_raw if refund is None else major_text(min(refund, goods), _EXP),
        shipping=o.get("买家应付邮费", "") or None,
    )
    return (order.row, values)


def order_line_records(
    orders: Sequence[Source], items: Sequence[Source], n_files: int
) -> list[list[Record]]:
    """Join items to orders and translate; records grouped by the file each comes from.

    A line made from an item is numbered by its row in the 宝贝报表 (so the order's lines keep
    their order there); a line made from the order report alone by its row in the 订单报表.
    """
    by_id: dict[str, Source] = {}
    nameless: list[Source] = []
    for order in orders:  # the last listing of an order wins
        key = order.values.get("订单编号", "")
        if key:
            by_id[key] = order
        else:
            nameless.append(order)
    items_of: dict[str, list[Source]] = {}
    for item in items:
        key = item.values.get("订单编号", "")
        listed = items_of.setdefault(key, [])
        if listed and listed[0].file_idx != item.file_idx:
            listed.clear()  # a later 宝贝报表 lists this order again: it replaces the earlier one
        listed.append(item)
    out: list[list[Record]] = [[] for _ in range(n_files)]
    for order in nameless:  # quarantined: no order number
        out[order.file_idx].append(_order_line(order))
    for key, order in by_id.items():
        its = items_of.pop(key, None)
        if its:
            out[its[0].file_idx].extend(_item_lines(order, its))
        else:
            out[order.file_idx].append(_order_line(order))
    for orphans in items_of.values():  # items of orders in no 订单报表
        for item in orphans:
            values = _order_values(None)
            values.update(_item_identity(item.values))
            values.update(_raw_amounts(item.values), order_id=item.values.get("订单编号") or None)
            out[item.file_idx].append((item.row, values))
    for records in out:
        records.sort(key=lambda r: r[0])
    return out


# ---------------------------------------------------------------------------------------------
# Orders → customers (pure)
# ---------------------------------------------------------------------------------------------


def customer_records(orders: Sequence[Source], n_files: int) -> list[list[Record]]:
    """The buyers of the order reports, latest order's non-empty values winning."""
    ordered = sorted(
        orders, key=lambda o: (iso_timestamp(o.values.get("订单创建时间", "")) or "", o.file_idx)
    )
    found: dict[str, tuple[Source, dict[str, str | None]]] = {}
    anonymous: list[tuple[Source, dict[str, str | None]]] = []
    for order in ordered:
        o = order.values
        province, city = split_address(o.get("收货地址", ""))
        values: dict[str, str | None] = {
            "customer_id": o.get("买家会员名") or None,
            "name": o.get("收货人姓名") or None,
            "phone": _phone(o.get("联系手机", "")) or _phone(o.get("联系电话", "")),
            "province": province,
            "city": city,
            "country": "CN",
        }
        ident = values["customer_id"]
        if ident is None:
            anonymous.append((order, values))  # quarantined: no buyer
            continue
        if ident in found:
            merged = found[ident][1]
            merged.update({k: v for k, v in values.items() if v is not None})
            found[ident] = (order, merged)
        else:
            found[ident] = (order, values)
    out: list[list[Record]] = [[] for _ in range(n_files)]
    for source, values in [*found.values(), *anonymous]:
        out[source.file_idx].append((source.row, values))
    for records in out:
        records.sort(key=lambda r: r[0])
    return out


# ---------------------------------------------------------------------------------------------
# Staging
# ---------------------------------------------------------------------------------------------


def stage(
    con: duckdb.DuckDBPyConnection, table: Table, paths: Sequence[Path], relation: str
) -> int:
    """Stage 订单报表 (+ 宝贝报表) files as generic ``order_lines`` or ``customers``."""
    if table.name not in ("order_lines", "customers"):
        raise NotThisFormatError(
            f"the Taobao order report holds order lines and customers, not {table.name}", paths[0],
            k("import_file.shop_table"), format="Taobao", table=table.name)
    orders: list[Source] = []
    items: list[Source] = []
    order_files: list[tuple[Path, list[str]]] = []
    for idx, path in enumerate(paths):
        header, rows = read_rows(path, _header_name, clean)
        kind = kind_of(header)
        if kind is None:
            present = set(header)
            lacks = [h for h in ORDER_HEADERS if h not in present]
            raise NotThisFormatError(
                f"{path}: not a Taobao 订单报表 (missing required column(s) {', '.join(lacks)}) "
                f"nor a 宝贝报表 (it needs {', '.join(ITEM_HEADERS)}); found {', '.join(header)}",
                path, k("import_file.not_taobao"), missing=", ".join(lacks), found=", ".join(header))
        if kind == "orders":
            require_columns(path, header, ORDER_HEADERS)
            order_files.append((path, header))
            orders.extend(Source(idx, n, v) for n, v in rows)
        else:
            require_columns(path, header, ITEM_HEADERS)
            items.extend(Source(idx, n, v) for n, v in rows)
    if not order_files:
        raise NotThisFormatError(
            f"{', '.join(str(p) for p in paths)}: no 订单报表 (order report, with 买家会员名) "
            "among the files; a 宝贝报表 alone has no buyers or order times", paths[0],
            k("import_file.no_taobao_orders"))
    if table.name == "customers":
        grouped = customer_records(orders, len(paths))
    else:
        if not items:
            for path, header in order_files:
                require_columns(path, header, ORDER_ONLY_HEADERS)
        grouped = order_line_records(orders, items, len(paths))
    return stage_records(con, table, list(zip(paths, grouped, strict=True)), relation)
