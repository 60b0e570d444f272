"""Import assembly and merge: typed rows become the stored tables' rows, deduplicated by key, are
classified new / updated / unchanged against the stored rows, and written.

Step 4 of the pipeline in :mod:`growthwheel.warehouse.ingest`; the caller holds the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from growthwheel.config import ShopSettings
from growthwheel.warehouse.schema import (
    CHECKOUT_SOURCE,
    DEFAULT_LOCATION,
    IMPORT_SOURCE,
    ORDER_LINES,
    ORDERS,
    TABLES,
    Table,
)
from growthwheel.warehouse.sqltext import count as _count
from growthwheel.warehouse.sqltext import lit as _lit
from growthwheel.warehouse.sqltext import q as _q

#: ``inventory``'s derived columns: the kind of row and the location (never NULL: both are keys).
INVENTORY_KIND = "CASE WHEN received IS NULL THEN 'snapshot' ELSE 'receipt' END"
INVENTORY_LOCATION = f"coalesce(location, '{DEFAULT_LOCATION}')"


#: Tables whose new rows are appended in time order. Events and orders arrive roughly in time
#: order (exports are chronological, the server flushes what it captured), so sorting each batch
#: keeps the stored table clustered by time: DuckDB's min/max per row group then lets a "last 30
#: days" filter skip the older row groups instead of reading 100M events or 30M orders
#: (``bench/segment_bench.py``).
TIME_ORDER = {"events": "occurred_at", "orders": "ordered_at"}


@dataclass
class TableCounts:
    """What a merge did to one table."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


# ---------------------------------------------------------------------------------------------
# Assembly: typed rows → the stored tables' rows (``gw_new_<table>``), deduplicated by key.
# ---------------------------------------------------------------------------------------------


def _latest_by_key(con: duckdb.DuckDBPyConnection, table: Table, select: str) -> str:
    """``select`` with one row per key: the last one written (files in order, then rows)."""
    keys = ", ".join(_q(k) for k in table.key)
    # keys as stored (derived ones included: ``inventory``'s kind, ``ad_spend``'s lower-cased channel)
    twice = f"SELECT count(*) FROM (SELECT 1 FROM ({select}) GROUP BY {keys} HAVING count(*) > 1)"
    if not _count(con, twice):
        return select  # the usual case: no key twice, no sort needed
    return (
        f"SELECT * EXCLUDE (_rn) FROM (SELECT *, row_number() OVER (PARTITION BY {keys} "
        f"ORDER BY _file_idx DESC, _row DESC) AS _rn FROM ({select})) WHERE _rn = 1"
    )


def _with_hash(table: Table, relation: str, extra_hash: str | None = None) -> str:
    cols = ", ".join(_q(c) for c in table.stored_names)
    hashed = f"hash({cols}{', ' + extra_hash if extra_hash else ''})"
    return f"SELECT {cols}, {hashed} AS _row_hash FROM {relation}"


def _utm_from(column: str, url: str) -> str:
    return (
        f"coalesce({column}, NULLIF(url_decode(regexp_extract({url}, "
        f"'[?&]{column}=([^&#]*)', 1)), ''))"
    )


def assemble(con: duckdb.DuckDBPyConnection, table: Table, shop: ShopSettings,
              several_files: bool, origin: str = IMPORT_SOURCE) -> list[str]:
    """Build ``gw_new_<name>`` for every stored table the import writes; return their names.
    ``origin`` is what orders record as their ``source``."""
    cur = _lit(shop.currency)
    channel = "coalesce(channel, lower(utm_source), 'direct')"
    if table.name == "order_lines":
        _assemble_lines(con, shop, several_files, origin)
        return ["orders", "order_lines"]
    if table.name == "customers":
        select = f"SELECT * REPLACE ({channel} AS channel) FROM gw_typed"
    elif table.name == "products":
        select = f"SELECT * REPLACE (coalesce(currency, {cur}) AS currency) FROM gw_typed"
    elif table.name == "orders":
        refunded = "coalesce(refunded_amount, 0)"
        select = (
            "SELECT *, ordered_at__local_date AS order_date, "
            f"coalesce(currency, {cur}) AS currency_, {channel} AS channel_, "
            "total + coalesce(discount, 0) AS gross_amount, coalesce(discount, 0) AS discount_amount, "
            "total AS total_amount, coalesce(shipping, 0) AS shipping_amount, "
            f"{refunded} AS refunded_amount_, coalesce(status, CASE "
            f"WHEN {refunded} > 0 AND {refunded} >= total THEN 'refunded' "
            f"WHEN {refunded} > 0 THEN 'partially_refunded' ELSE 'paid' END) AS status_, "
            f"{_lit(origin)} AS source FROM gw_typed"
        )
        select = (
            "SELECT * EXCLUDE (currency, channel, refunded_amount, status, currency_, channel_, "
            "refunded_amount_, status_), currency_ AS currency, channel_ AS channel, "
            "refunded_amount_ AS refunded_amount, status_ AS status FROM (" + select + ")"
        )
    elif table.name == "events":
        select = (
            "SELECT * REPLACE ("
            + ", ".join(f"{_utm_from(c, 'url')} AS {c}" for c in ("utm_source", "utm_medium", "utm_campaign"))
            + "), occurred_at__local_date AS event_date FROM gw_typed"
        )
    elif table.name == "ad_spend":
        select = "SELECT * REPLACE (lower(channel) AS channel) FROM gw_typed"
    elif table.name == "reviews":
        select = "SELECT *, created_at__local_date AS review_date FROM gw_typed"
    elif table.name == "inventory":
        select = (f"SELECT * REPLACE ({INVENTORY_LOCATION} AS location), {INVENTORY_KIND} AS kind "
                  "FROM gw_typed")
    else:  # pragma: no cover - every table is handled above
        raise AssertionError(table.name)
    latest = _latest_by_key(con, table, select)
    con.execute(f"CREATE OR REPLACE TEMP VIEW gw_new_{table.name} AS {_with_hash(table, f'({latest})')}")
    return [table.name]


def _assemble_lines(con: duckdb.DuckDBPyConnection, shop: ShopSettings, several_files: bool,
                    origin: str = IMPORT_SOURCE) -> None:
    """Order lines → ``gw_new_order_lines`` and the orders they make → ``gw_new_orders``."""
    source = "gw_typed"
    if several_files:  # the latest file mentioning an order carries the whole order
        source = (
            "(SELECT * EXCLUDE (_f) FROM (SELECT *, max(_file_idx) OVER (PARTITION BY order_id) "
            "AS _f FROM gw_typed) WHERE _file_idx = _f)"
        )
    discount = (
        "coalesce(discount, CASE WHEN unit_price IS NOT NULL "
        "THEN greatest(unit_price * quantity - line_total, 0) ELSE 0 END)"
    )
    line_cols = ", ".join(_q(c) for c in ORDER_LINES.stored_names)
    wanted = ", ".join(
        ["_file_idx", "_row", "ordered_at__local_date"]
        + [_q(c.name) for c in ORDER_LINES.inputs if c.name not in ("refunded_amount", "discount")]
    )
    numbered = (
        f"SELECT {wanted}, {discount} AS discount_amount, "
        "coalesce(refunded_amount, 0) AS refunded_amount, "
        f"row_number() OVER (PARTITION BY order_id ORDER BY _file_idx, _row) AS line_no FROM {source}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE gw_lines AS SELECT *, hash({line_cols}) AS _row_hash "
        f"FROM ({numbered})"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW gw_new_order_lines AS SELECT {line_cols}, _row_hash FROM gw_lines"
    )

    def first(column: str) -> str:
        return f"arg_min({column}, _row) FILTER (WHERE {column} IS NOT NULL)"

    refunded, total = "sum(refunded_amount)", "sum(line_total)"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_order_rows AS SELECT order_id, "
        "any_value(customer_id) AS customer_id, any_value(ordered_at) AS ordered_at, "
        "any_value(ordered_at__local_date) AS order_date, max(paid_at) AS paid_at, "
        f"coalesce({first('status')}, CASE WHEN {refunded} > 0 AND {refunded} >= {total} "
        f"THEN 'refunded' WHEN {refunded} > 0 THEN 'partially_refunded' ELSE 'paid' END) AS status, "
        f"{_lit(shop.currency)} AS currency, "
        f"coalesce({first('channel')}, lower({first('utm_source')}), 'direct') AS channel, "
        f"{first('utm_source')} AS utm_source, {first('utm_medium')} AS utm_medium, "
        f"{first('utm_campaign')} AS utm_campaign, {first('coupon_code')} AS coupon_code, "
        f"sum(quantity) AS item_count, {total} + sum(discount_amount) AS gross_amount, "
        f"sum(discount_amount) AS discount_amount, {total} AS total_amount, "
        f"coalesce(max(shipping), 0) AS shipping_amount, {refunded} AS refunded_amount, "
        f"{first('points_used')} AS points_used, {first('points_earned')} AS points_earned, "
        f"{_lit(origin)} AS source, "
        # Line hashes include the line number, so XOR-ing them identifies the set of lines.
        "bit_xor(_row_hash) AS _lines_hash FROM gw_lines GROUP BY order_id"
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW gw_new_orders AS "
        + _with_hash(ORDERS, "gw_order_rows", extra_hash="_lines_hash")
    )


# ---------------------------------------------------------------------------------------------
# Merge: classify new / updated / unchanged against the stored rows, then write.
# ---------------------------------------------------------------------------------------------


def _key_match(table: Table, left: str, right: str) -> str:
    return " AND ".join(
        f"{left}.{_q(k)} IS NOT DISTINCT FROM {right}.{_q(k)}" for k in table.key
    )


def classify(con: duckdb.DuckDBPyConnection, names: list[str], origin: str = IMPORT_SOURCE) -> None:
    """``gw_cls_<table>``: each incoming row with ``_cls`` new / updated / unchanged.

    For an order-lines import only the orders are classified: lines follow their order. An order
    committed through the checkout (``source = 'checkout'``) is the truth about that order: an
    import from anywhere else (the shop's export of the same ``order_id``) leaves it unchanged,
    so it is neither stored twice nor are its totals changed; only the checkout's own facts (a
    refund) update it.
    """
    table = TABLES[names[0]]
    keys = ", ".join(_q(k) for k in table.key)
    kept = "false"
    if table.name == "orders" and origin != CHECKOUT_SOURCE:
        kept = f"coalesce(t.source = {_lit(CHECKOUT_SOURCE)}, false)"
    source = ", source" if table.name == "orders" else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE gw_cls_{table.name} AS SELECT s.*, CASE "
        f"WHEN t._hit IS NULL THEN 'new' WHEN t._row_hash = s._row_hash OR {kept} THEN 'unchanged' "
        f"ELSE 'updated' END AS _cls FROM gw_new_{table.name} s LEFT JOIN "
        f"(SELECT {keys}{source}, _row_hash, true AS _hit FROM {_q(table.name)}) t "
        f"ON {_key_match(table, 's', 't')}"
    )


def write(con: duckdb.DuckDBPyConnection, import_id: str, names: list[str]) -> dict[str, TableCounts]:
    """Apply the classified rows (inside the import's transaction) and count what happened."""
    table = TABLES[names[0]]
    counts = {table.name: _write_table(con, import_id, table)}
    if names == ["orders", "order_lines"]:
        # An order's lines are replaced as a whole whenever the order is new or changed.
        con.execute(
            "DELETE FROM order_lines WHERE order_id IN "
            "(SELECT order_id FROM gw_cls_orders WHERE _cls = 'updated')"
        )
        cols = ", ".join(_q(c) for c in ORDER_LINES.stored_names)
        inserted = _count(
            con,
            f"INSERT INTO order_lines ({cols}, _row_hash, _import_id) SELECT {cols}, _row_hash, "
            f"{_lit(import_id)} FROM gw_new_order_lines WHERE order_id IN "
            "(SELECT order_id FROM gw_cls_orders WHERE _cls <> 'unchanged')",
        )
        kept = _count(
            con,
            "SELECT count(*) FROM gw_new_order_lines WHERE order_id IN "
            "(SELECT order_id FROM gw_cls_orders WHERE _cls = 'unchanged')",
        )
        counts["order_lines"] = TableCounts(inserted=inserted, unchanged=kept)
    return counts


def _write_table(con: duckdb.DuckDBPyConnection, import_id: str, table: Table) -> TableCounts:
    by = {str(k): int(v) for k, v in con.execute(
        f"SELECT _cls, count(*) FROM gw_cls_{table.name} GROUP BY 1"
    ).fetchall()}
    if by.get("updated"):
        con.execute(
            f"DELETE FROM {_q(table.name)} t USING gw_cls_{table.name} s "
            f"WHERE s._cls = 'updated' AND {_key_match(table, 't', 's')}"
        )
    if by.get("new") or by.get("updated"):
        cols = ", ".join(_q(c) for c in table.stored_names)
        order = TIME_ORDER.get(table.name)
        con.execute(
            f"INSERT INTO {_q(table.name)} ({cols}, _row_hash, _import_id) SELECT {cols}, _row_hash, "
            f"{_lit(import_id)} FROM gw_cls_{table.name} WHERE _cls <> 'unchanged'"
            + (f" ORDER BY {_q(order)}" if order else "")
        )
    return TableCounts(
        inserted=by.get("new", 0), updated=by.get("updated", 0), unchanged=by.get("unchanged", 0)
    )
