"""Shopify's orders export (Admin → Orders → Export, "CSV for Excel, Numbers, or other programs").

The file has one row per line item. An order's own fields (email, statuses, totals, discount,
addresses) are filled only on its first row; later rows repeat ``Name`` and carry the
``Lineitem …`` columns. This adapter groups the rows of a file by ``Name`` and translates them into
the generic ``order_lines`` or ``customers`` columns.

How each value is translated (decisions, so that users know what they get):

* ``order_id`` = ``Name`` as written (``#1001``).
* ``customer_id`` = ``Email`` lower-cased, else ``Phone``, else ``Billing Phone``. Names are not
  used as ids: two buyers called "Wang Fang" are not one customer. An order with none of the three
  keeps an empty id, so validation quarantines it with a reason instead of guessing.
* ``ordered_at`` = ``Created at``, ``paid_at`` = ``Paid at``; ``2024-03-05 14:07:11 +0800`` is
  rewritten as ISO 8601 ``2024-03-05T14:07:11+08:00``; anything else is passed on as written.
* ``status`` from ``Financial Status``: pending and authorized → ``pending``; paid and
  partially_paid → ``paid``, or ``shipped`` once ``Fulfillment Status`` is fulfilled or partial
  (Shopify has no "delivered", so nothing becomes ``completed``); partially_refunded and refunded
  as they are; voided and expired → ``cancelled``. An order with ``Cancelled at`` that was never
  paid is ``cancelled``; a cancelled order that was paid keeps its payment status (its refund, if
  any, shows as refunded). An unknown value is passed on as written and quarantined.
* ``sku`` = ``Lineitem sku``, else ``Lineitem name`` (custom items have no SKU);
  ``product_name`` = ``Lineitem name``; ``quantity`` = ``Lineitem quantity``;
  ``unit_price`` = ``Lineitem price``. ``category`` stays empty: the export has no product type and
  ``Vendor`` is a brand, not a category (the catalogue import fills categories).
* Discounts: Shopify's ``Discount Amount`` is the order's total discount (like the API's
  ``total_discounts``), which already includes any ``Lineitem discount``. Each line keeps its own
  ``Lineitem discount`` and the rest of ``Discount Amount`` is spread over the lines by largest
  remainder in integer minor units, weighted by each line's amount after its own discount, so the
  line discounts add up to ``Discount Amount`` exactly. ``line_total`` = price × quantity − line
  discount.
* ``refunded_amount``: ``Refunded Amount`` spread the same way, weighted by line totals. Only the
  part up to the goods total is spread; a refund of shipping on top of that is not kept per line.
* ``shipping`` = ``Shipping`` on the order's first line only; ``coupon_code`` = ``Discount Code``;
  ``currency`` = ``Currency``. Taxes are not part of ``line_total``.
* ``channel`` and UTM stay empty: ``Source`` is the sales channel (web, pos, draft order, an app
  id), not the marketing channel that CAC and ROAS credit.

``customers``: one row per customer found, with ``email``, ``phone`` (``Phone``, else the billing
or shipping phone), ``name`` (``Billing Name``, else ``Shipping Name``), ``city``, ``province``,
``country`` (billing, else shipping address) and ``accepts_marketing``; each field takes the most
recent order's non-empty value.

Where an amount or number cannot be read, the value is passed on as written so that validation
quarantines the whole order with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from growthwheel.keys import k
from growthwheel.kit.money import allocate, currency_exponent, major_text, parse_major
from growthwheel.warehouse.file_checks import NotThisFormatError
from growthwheel.warehouse.formats.base import (
    Record,
    Row,
    parse_quantity,
    read_rows,
    require_columns,
    stage_records,
)
from growthwheel.warehouse.schema import Table

#: Headers an orders export must have to be read as order lines.
LINE_HEADERS = (
    "Name",
    "Email",
    "Financial Status",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
)
#: Headers an orders export must have to be read as customers.
CUSTOMER_HEADERS = ("Name", "Email", "Created at")

_FINANCIAL = {
    "pending": "pending",
    "authorized": "pending",
    "partially_paid": "paid",
    "paid": "paid",
    "partially_refunded": "partially_refunded",
    "refunded": "refunded",
    "voided": "cancelled",
    "expired": "cancelled",
}
_SHIPPED = ("fulfilled", "partial", "partially_fulfilled")
_TRUE = ("yes", "true", "1")
_FALSE = ("no", "false", "0")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Value translation (pure)
# ---------------------------------------------------------------------------------------------

_STAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?"
    r"\s*(?:([+-])(\d{2}):?(\d{2})|(Z|UTC))?$"
)


def iso_timestamp(text: str) -> str | None:
    """``2024-03-05 14:07:11 +0800`` → ``2024-03-05T14:07:11+08:00``; other text as written."""
    text = text.strip()
    if not text:
        return None
    m = _STAMP.match(text)
    if not m:
        return text
    y, mo, d, h, mi, s, sign, oh, om, utc = m.groups()
    offset = f"{sign}{oh}:{om}" if sign else ("+00:00" if utc else "")
    return f"{y}-{mo}-{d}T{h}:{mi}:{s or '00'}{offset}"


def _exponent(currency: str) -> int:
    try:
        return currency_exponent(currency.strip())
    except ValueError:
        return 2


def order_status(financial: str, fulfillment: str, cancelled_at: str) -> str | None:
    """Shopify's financial / fulfillment status and cancellation → one of ``ORDER_STATUSES``."""
    raw = financial.strip()
    if not raw:
        return "cancelled" if cancelled_at.strip() else None
    mapped = _FINANCIAL.get(raw.lower())
    if mapped is None:
        return raw
    if cancelled_at.strip() and mapped == "pending":
        return "cancelled"
    if mapped == "paid" and fulfillment.strip().lower() in _SHIPPED:
        return "shipped"
    return mapped


def customer_id(head: Mapping[str, str]) -> str | None:
    """Email lower-cased, else phone, else billing phone; ``None`` when none is given."""
    email = head.get("Email", "").strip().lower()
    if email:
        return email
    for column in ("Phone", "Billing Phone"):
        value = head.get(column, "").strip()
        if value:
            return value
    return None


def _bool(text: str) -> str | None:
    value = text.strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return "true"
    if value in _FALSE:
        return "false"
    return text.strip()


def _get(row: Mapping[str, str], column: str) -> str:
    return row.get(column, "").strip()


def _first(row: Mapping[str, str], *columns: str) -> str | None:
    for column in columns:
        value = _get(row, column)
        if value:
            return value
    return None


# ---------------------------------------------------------------------------------------------
# Orders → lines (pure)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """The rows of one order in an export (``order_id`` is ``Name``, empty if the row has none)."""

    order_id: str
    rows: list[Row]

    @property
    def head(self) -> dict[str, str]:
        """The row with the order's own fields: the first one that has ``Created at``."""
        for _, values in self.rows:
            if _get(values, "Created at"):
                return values
        return self.rows[0][1]

    @property
    def head_row(self) -> int:
        """Row number of ``head``."""
        for number, values in self.rows:
            if _get(values, "Created at"):
                return number
        return self.rows[0][0]


def group_orders(rows: Sequence[Row]) -> list[Order]:
    """Rows grouped by ``Name`` in order of first appearance; a row without a name stands alone."""
    orders: list[Order] = []
    index: dict[str, int] = {}
    for row in rows:
        name = _get(row[1], "Name")
        if name in index:
            orders[index[name]].rows.append(row)
            continue
        if name:
            index[name] = len(orders)
        orders.append(Order(name, [row]))
    return orders


def _allocated_lines(order: Order, exponent: int) -> list[dict[str, str | None]] | None:
    """Amount columns of every line with discounts and refunds allocated; ``None`` if unreadable."""
    quantities: list[int] = []
    prices: list[int] = []
    own_disc: list[int] = []
    for _, row in order.rows:
        qty = parse_quantity(_get(row, "Lineitem quantity"))
        price = parse_major(_get(row, "Lineitem price"), exponent)
        own = parse_major(_get(row, "Lineitem discount"), exponent)
        if qty is None or price is None or own is None:
            return None
        quantities.append(qty)
        prices.append(price)
        own_disc.append(own)
    discount = parse_major(_get(order.head, "Discount Amount"), exponent)
    refund = parse_major(_get(order.head, "Refunded Amount"), exponent)
    if discount is None or refund is None:
        return None
    gross = [p * q for p, q in zip(prices, quantities, strict=True)]
    base = [max(g - d, 0) for g, d in zip(gross, own_disc, strict=True)]
    extra = allocate(max(discount - sum(own_disc), 0), base)
    discounts = [d + e for d, e in zip(own_disc, extra, strict=True)]
    totals = [g - d for g, d in zip(gross, discounts, strict=True)]
    weights = [max(t, 0) for t in totals]
    refunds = allocate(min(refund, sum(weights)), weights)
    return [
        {
            "quantity": str(q),
            "unit_price": major_text(p, exponent),
            "discount": major_text(d, exponent),
            "line_total": major_text(t, exponent),
            "refunded_amount": major_text(r, exponent),
        }
        for q, p, d, t, r in zip(quantities, prices, discounts, totals, refunds, strict=True)
    ]


def _raw_lines(order: Order, exponent: int) -> list[dict[str, str | None]]:
    """Amount columns as written, for an order with a value that cannot be read.

    The unreadable value lands in a column that validation checks, so the order is quarantined
    with that value and a reason.
    """
    out: list[dict[str, str | None]] = []
    for i, (_, row) in enumerate(order.rows):
        qty_raw, price_raw = _get(row, "Lineitem quantity"), _get(row, "Lineitem price")
        qty, price = parse_quantity(qty_raw), parse_major(price_raw, exponent)
        disc_raw = _get(row, "Lineitem discount") or None
        total = major_text(price * qty, exponent) if qty is not None and price is not None else None
        values: dict[str, str | None] = {
            "quantity": qty_raw,
            "unit_price": price_raw,
            "discount": disc_raw,
            "line_total": total if total is not None else (price_raw if price is None else qty_raw),
            "refunded_amount": None,
        }
        if i == 0:
            order_disc = _get(order.head, "Discount Amount")
            if parse_major(order_disc, exponent) is None:
                values["discount"] = order_disc
            refund = _get(order.head, "Refunded Amount")
            if parse_major(refund, exponent) is None:
                values["refunded_amount"] = refund
        out.append(values)
    return out


def order_line_records(rows: Sequence[Row]) -> list[Record]:
    """Translate the rows of one export file into generic ``order_lines`` records."""
    records: list[Record] = []
    for order in group_orders(rows):
        head = order.head
        currency = _get(head, "Currency")
        exponent = _exponent(currency)
        amounts = _allocated_lines(order, exponent) or _raw_lines(order, exponent)
        common: dict[str, str | None] = {
            "order_id": order.order_id or None,
            "customer_id": customer_id(head),
            "ordered_at": iso_timestamp(_get(head, "Created at")),
            "paid_at": iso_timestamp(_get(head, "Paid at")),
            "status": order_status(
                _get(head, "Financial Status"),
                _get(head, "Fulfillment Status"),
                _get(head, "Cancelled at"),
            ),
            "currency": currency or None,
            "coupon_code": _get(head, "Discount Code") or None,
        }
        for i, ((number, row), line) in enumerate(zip(order.rows, amounts, strict=True)):
            name = _get(row, "Lineitem name")
            values = dict(common)
            values.update(line)
            values["sku"] = _get(row, "Lineitem sku") or name or None
            values["product_name"] = name or None
            values["shipping"] = (_get(head, "Shipping") or None) if i == 0 else None
            records.append((number, values))
    return records


# ---------------------------------------------------------------------------------------------
# Orders → customers (pure)
# ---------------------------------------------------------------------------------------------


def _sort_key(created: str) -> tuple[int, str]:
    """Orders sort oldest first; an unreadable time sorts before every readable one."""
    stamp = iso_timestamp(created) or ""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return (0, stamp)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (1, moment.isoformat())


def customer_records(rows: Sequence[Row]) -> list[Record]:
    """The buyers of one export file as generic ``customers`` records (latest values win)."""
    found: dict[str, tuple[int, dict[str, str | None]]] = {}
    first_seen: list[str] = []
    records: list[Record] = []
    orders = group_orders(rows)
    orders.sort(key=lambda o: _sort_key(_get(o.head, "Created at")))
    for order in orders:
        head = order.head
        ident = customer_id(head)
        values: dict[str, str | None] = {
            "customer_id": ident,
            "email": _get(head, "Email") or None,
            "phone": _first(head, "Phone", "Billing Phone", "Shipping Phone"),
            "name": _first(head, "Billing Name", "Shipping Name"),
            "city": _first(head, "Billing City", "Shipping City"),
            "province": _first(
                head, "Billing Province Name", "Billing Province",
                "Shipping Province Name", "Shipping Province",
            ),
            "country": _first(head, "Billing Country", "Shipping Country"),
            "accepts_marketing": _bool(_get(head, "Accepts Marketing")),
        }
        number = order.head_row
        if ident is None:
            records.append((number, values))  # quarantined: no way to tell who bought
            continue
        if ident not in found:
            found[ident] = (number, values)
            first_seen.append(ident)
            continue
        _, merged = found[ident]
        merged.update({k: v for k, v in values.items() if v is not None})
        found[ident] = (number, merged)
    records.extend(found[i] for i in first_seen)
    records.sort(key=lambda r: r[0])
    return records


# ---------------------------------------------------------------------------------------------
# Staging
# ---------------------------------------------------------------------------------------------


def stage(
    con: duckdb.DuckDBPyConnection, table: Table, paths: Sequence[Path], relation: str
) -> int:
    """Stage Shopify orders exports as generic ``order_lines`` or ``customers``; return the rows."""
    required: Sequence[str]
    if table.name == "order_lines":
        required, translate = LINE_HEADERS, order_line_records
    elif table.name == "customers":
        required, translate = CUSTOMER_HEADERS, customer_records
    else:
        raise NotThisFormatError(
            f"the Shopify orders export holds order lines and customers, not {table.name}", paths[0],
            k("import_file.shop_table"), format="Shopify", table=table.name)
    files: list[tuple[Path, list[Record]]] = []
    for path in paths:
        header, rows = read_rows(path)
        require_columns(path, header, required)
        files.append((path, translate(rows)))
    return stage_records(con, table, files, relation)
