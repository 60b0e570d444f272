"""Queries over the warehouse for customers: Ibis expressions, so they run on DuckDB and Spark.

Every value a user types (a search string, a customer id, a cursor key) enters the query as an
Ibis literal, typed and escaped by the Ibis compiler: nothing here builds SQL text. Searching uses
``contains`` (SQL ``CONTAINS``/``INSTR``), never ``LIKE``, so ``%`` and ``_`` are plain characters.

Functions return plain rows (``dict`` per row, integers for money in minor units, ``datetime``
without time zone for UTC timestamps, ``date`` for shop-local dates).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import ibis

from growthwheel.events import service as events_service
from growthwheel.warehouse.schema import CUSTOMERS, PAID_STATUSES

Row = dict[str, Any]

#: The stored attributes of a customer, in order.
ATTRIBUTES: tuple[str, ...] = CUSTOMERS.stored_names
#: Searching the phone number by its digits needs at least this many digits in the query.
MIN_PHONE_DIGITS = 3


def text_literal(text: str) -> str:
    """``text`` as it can enter a query: without NUL characters and lone surrogates (which no stored
    value holds and which the SQL compilers cannot carry)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def rows(expr: Any) -> list[Row]:
    """Execute an Ibis table expression into a list of dicts (nulls as ``None``, ints kept exact)."""
    result: list[Row] = expr.to_pyarrow().to_pylist()
    return result


def people(con: Any) -> Any:
    """Every customer: the rows of ``customers`` plus buyers known only from ``orders``.

    A shop that imports orders without a customer file still sees its buyers; their attributes are
    null.
    """
    customers = con.table("customers").select(*ATTRIBUTES)
    orders = con.table("orders")
    ids = orders.filter(orders.customer_id.notnull()).select("customer_id").distinct()
    orphans = ids.anti_join(customers, ids.customer_id == customers.customer_id)
    schema = customers.schema()
    orphans = orphans.select(
        **{
            name: orphans.customer_id if name == "customer_id" else ibis.null().cast(schema[name])
            for name in ATTRIBUTES
        }
    )
    return customers.union(orphans)


def search(con: Any, query: str, *, match_contact: bool, after: str | None, limit: int) -> list[Row]:
    """Customers whose id or name (and, if ``match_contact``, email or phone) contains ``query``.

    Case-insensitive substring match; a query with at least :data:`MIN_PHONE_DIGITS` digits also
    matches phone numbers by their digits alone (``13800138000`` finds ``+86 138-0013-8000``).
    Sorted by ``customer_id``; only ids after ``after`` (the cursor); at most ``limit`` rows.
    """
    table = people(con)
    needle = text_literal(query).strip().lower()
    if needle:
        table = table.filter(search_condition(table, needle, match_contact=match_contact))
    if after is not None:
        table = table.filter(table.customer_id > text_literal(after))
    return rows(table.order_by("customer_id").limit(limit))


def search_condition(table: Any, needle: str, *, match_contact: bool) -> Any:
    """The search's boolean column over ``table`` (profile columns) for a lower-cased, non-empty
    ``needle`` (see :func:`search`); null is false."""
    cond = table.customer_id.lower().contains(needle) | table.name.lower().contains(needle)
    if match_contact:
        cond = cond | table.email.lower().contains(needle) | table.phone.lower().contains(needle)
        digits = re.sub(r"\D", "", needle)
        if len(digits) >= MIN_PHONE_DIGITS:
            cond = cond | table.phone.re_replace(r"[^0-9]", "").contains(digits)
    return cond.fill_null(False)


def customer(con: Any, customer_id: str) -> Row | None:
    """The attributes of one customer (also one known only from orders), or ``None``."""
    if text_literal(customer_id) != customer_id:
        return None
    table = people(con)
    found = rows(table.filter(table.customer_id == customer_id).limit(1))
    return found[0] if found else None


def order_summaries(con: Any, customer_ids: Sequence[str]) -> dict[str, Row]:
    """Per customer: paid ``orders``, ``gmv``, ``refunded`` (minor units), first/last order dates.

    Only orders with a paid status count, as in the KPI catalogue. Customers without paid orders
    are absent from the answer.
    """
    if not customer_ids:
        return {}
    o = con.table("orders")
    o = o.filter(o.status.isin(PAID_STATUSES) & o.customer_id.isin(list(customer_ids)))
    agg = o.group_by("customer_id").aggregate(
        orders=o.order_id.count(),
        gmv=o.total_amount.fill_null(0).sum(),
        refunded=o.refunded_amount.fill_null(0).sum(),
        first_order_date=o.order_date.min(),
        last_order_date=o.order_date.max(),
    )
    return {row["customer_id"]: row for row in rows(agg)}


def first_order_channel(con: Any, customer_id: str) -> str | None:
    """The channel of the customer's first paid order (earliest ``ordered_at``, ties by id)."""
    o = con.table("orders")
    o = o.filter((o.customer_id == customer_id) & o.status.isin(PAID_STATUSES))
    found = rows(o.order_by(["ordered_at", "order_id"]).select("channel").limit(1))
    return found[0]["channel"] if found else None


def favourite_category(con: Any, customer_id: str) -> str | None:
    """The category with the most GMV over the customer's paid order lines (ties: units, name).

    A line's category is its own, else the catalogue's; lines with neither are left out.
    """
    o = con.table("orders")
    paid = o.filter((o.customer_id == customer_id) & o.status.isin(PAID_STATUSES)).select(
        o_order_id="order_id"
    )
    lines = con.table("order_lines")
    products = con.table("products").select(p_sku="sku", p_category="category")
    joined = lines.join(paid, lines.order_id == paid.o_order_id).left_join(
        products, lines.sku == products.p_sku
    )
    joined = joined.mutate(cat=ibis.coalesce(joined.category, joined.p_category))
    joined = joined.filter(joined.cat.notnull())
    agg = joined.group_by(category=joined.cat).aggregate(
        gmv=joined.line_total.fill_null(0).sum(), units=joined.quantity.fill_null(0).sum()
    )
    top = rows(agg.order_by([ibis.desc("gmv"), ibis.desc("units"), "category"]).limit(1))
    return top[0]["category"] if top else None


def customer_orders(con: Any, customer_id: str, limit: int) -> list[Row]:
    """The customer's orders of every status, newest first (``ordered_at``, then id), at most ``limit``."""
    o = con.table("orders")
    o = o.filter(o.customer_id == customer_id)
    return rows(o.order_by([ibis.desc("ordered_at"), ibis.desc("order_id")]).limit(limit))


def lines_of(con: Any, order_ids: Sequence[str]) -> list[Row]:
    """The lines of ``order_ids`` with the catalogue's name and category where the line has none."""
    if not order_ids:
        return []
    lines = con.table("order_lines")
    lines = lines.filter(lines.order_id.isin(list(order_ids)))
    products = con.table("products").select(p_sku="sku", p_name="name", p_category="category")
    joined = lines.left_join(products, lines.sku == products.p_sku)
    out = joined.select(
        "order_id",
        "line_no",
        "sku",
        "quantity",
        "unit_price",
        "discount_amount",
        "line_total",
        "refunded_amount",
        product_name=ibis.coalesce(joined.product_name, joined.p_name),
        category=ibis.coalesce(joined.category, joined.p_category),
    )
    return rows(out.order_by(["order_id", "line_no"]))


def customer_events(con: Any, customer_id: str, limit: int) -> list[Row]:
    """The customer's latest events, newest first, at most ``limit``: their own and the anonymous
    events of devices that identified as them (``stitched`` True; see ``events.service``)."""
    events = events_service.customer_events(con, customer_id)
    return rows(events.order_by([ibis.desc("occurred_at"), ibis.desc("event_id")]).limit(limit))
