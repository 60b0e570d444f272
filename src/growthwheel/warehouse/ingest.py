"""Imports: stage → validate → quarantine → merge, in one transaction.

The pipeline for every format and table:

1. **Stage.** The format adapter turns the files into one relation of text columns named as the
   generic format (``formats/``), with file and row number for every row.
2. **Validate.** One SQL pass types every column (money to integer minor units through
   ``DECIMAL``, never a float; times to UTC plus the shop-local date) and records the first
   reason each value is refused. Order lines are checked order by order: an order with one bad
   line is held back whole, so no order is ever stored with missing lines.
3. **Quarantine.** Every refused value becomes a row of ``_quarantine`` with file, row, column,
   value and reason. Re-importing a file replaces its earlier quarantine entries.
4. **Merge.** Rows are keyed (``schema.Table.key``); a row whose content hash equals the stored
   one is left alone (re-import changes nothing), a changed row replaces the stored one (an order
   now refunded), a new key is inserted. Within one import the last version of a key wins.

Everything happens inside one DuckDB transaction: a crash or a kill part-way leaves the warehouse
exactly as it was.

**Two engines, one set of rules (issue 11, item 3).** When the warehouse is Spark
(``GROWTHWHEEL_WAREHOUSE=spark``), a generic CSV import of any table runs on Spark itself
(``warehouse/spark_ingest.py``): Spark reads the files, the rules of ``warehouse/rules.py``
validate (every rule written once as an Ibis expression over an all-text table, which DuckDB and
Spark both compile), Spark merges by key and writes only the partitions it touches. Its facts,
quarantine entries and counts are those of this module's DuckDB import
(``tests/warehouse/test_spark_ingest.py``). SQL transpiled by sqlglot was the alternative,
refused because the engines' own casts differ at the edges (Spark reads ``2024`` as a date,
DuckDB reads zone names), so dates are matched against one pattern in the rules before any cast.
Still validated here, in DuckDB, on a Spark warehouse too (then published per partition,
``warehouse/lake.py``): the other formats (Parquet, JSON Lines, TSV, Shopify, Taobao) and
:func:`import_rows` (rows already in memory: the checkout's facts, ad-spend layouts). This
module's own SQL stays the DuckDB path, for speed, and is tested equal to the Ibis rules run by
DuckDB on the examples and on edge values. ``engine="duckdb"`` forces it on a Spark warehouse.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from growthwheel.config import Settings, ShopSettings, settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.kit import ids
from growthwheel.kit.money import currency_exponent
from growthwheel.warehouse import db as wh
from growthwheel.warehouse.file_checks import FileNotFoundProblem, check_text, renamed
from growthwheel.warehouse.file_checks import FileNotTextError as FileNotTextError
from growthwheel.warehouse.file_checks import FileNotUtf8Error as FileNotUtf8Error
from growthwheel.warehouse.formats import generic, shopify, taobao
from growthwheel.warehouse.schema import (
    CHECKOUT_SOURCE,
    DEFAULT_LOCATION,
    IMPORT_SOURCE,
    INVENTORY_ONE_OF,
    ORDER_LINES,
    ORDER_STATUSES,
    ORDERS,
    TABLES,
    Input,
    Table,
    resolve_table,
)
from growthwheel.web.i18n import k

FORMATS = ("generic", "shopify", "taobao")
#: ``inventory``'s derived columns: the kind of row and the location (never NULL: both are keys).
INVENTORY_KIND = "CASE WHEN received IS NULL THEN 'snapshot' ELSE 'receipt' END"
INVENTORY_LOCATION = f"coalesce(location, '{DEFAULT_LOCATION}')"
#: Files above this size get a progress bar.
PROGRESS_BYTES = 4 * 1024 * 1024

Progress = Callable[[str, float | None], None]
"""Called with a phase description and the fraction done (``None`` when unknown)."""


@dataclass
class TableCounts:
    """What a merge did to one table."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ImportResult:
    """The outcome of one import command."""

    import_id: str
    table: str
    format: str
    files: list[str]
    rows_read: int = 0
    rows_quarantined: int = 0
    superseded: int = 0
    tables: dict[str, TableCounts] = field(default_factory=dict)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    header_only: list[str] = field(default_factory=list)
    """Files (as named in ``files``) with a header row and no data row: nothing to import."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# Validation: one typed value and one "first reason refused" per input column.
# ---------------------------------------------------------------------------------------------

_NUMBER = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$"
_WHOLE = r"^[+-]?[0-9]+([.]0*)?$"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def _trimmed(column: str) -> str:
    """The value without surrounding blanks, empty text as NULL (trims only where needed: fast)."""
    return (
        f"CASE WHEN starts_with({column}, ' ') OR ends_with({column}, ' ') "
        f"THEN NULLIF(trim({column}), '') ELSE NULLIF({column}, '') END"
    )


def _column_sql(column: Input, shop: ShopSettings) -> tuple[list[str], list[str], str]:
    """SQL for one input column: (helper expressions, typed select items, error expression).

    The column arrives trimmed, with empty text as NULL. Helpers are computed once in an inner
    query (a parsed time is used by four expressions) and referred to by name.
    """
    name = column.name
    raw = _q(name)
    helper = _q("__" + name)
    helpers: list[str] = []
    checks: list[tuple[str, str]] = []  # (condition, reason) in order; first match wins
    items: list[str]
    if column.kind == "money":
        # DECIMAL(18, e) stays on 64-bit integers (fast) and is exact once the text has passed
        # the checks: at most 13 integer digits and no non-zero digit beyond the currency's e.
        exp = currency_exponent(shop.currency)
        helpers = [f"TRY_CAST({raw} AS DECIMAL(18, {exp})) AS {helper}"]
        checks = [
            (f"NOT regexp_full_match({raw}, '{_NUMBER}')",
             "not a plain decimal number in major units (e.g. 12.30)"),
            (f"length(regexp_extract({raw}, '^[+-]?0*([0-9]*)', 1)) > 13", "amount too large"),
            (f"NOT regexp_full_match({raw}, '^[^.]*([.][0-9]{{0,{exp}}}0*)?$')",
             f"more than {exp} decimal places for {shop.currency}"),
            (f"{helper} < 0", "must not be negative"),
        ]
        items = [f"CAST({helper} * {10**exp} AS BIGINT) AS {raw}"]
    elif column.kind == "int":
        helpers = [f"TRY_CAST(regexp_extract({raw}, '^[+-]?[0-9]+') AS BIGINT) AS {helper}"]
        checks = [
            (f"NOT regexp_full_match({raw}, '{_WHOLE}')", "not a whole number"),
            (f"{helper} IS NULL", "number too large"),
        ]
        if column.min_value is not None:
            checks.append((f"{helper} < {column.min_value}", f"must be at least {column.min_value}"))
        if column.max_value is not None:
            checks.append((f"{helper} > {column.max_value}", f"must be at most {column.max_value}"))
        items = [f"{helper} AS {raw}"]
    elif column.kind == "datetime":
        # "2024-03-05 14:07:11 +0800" (Shopify) → "2024-03-05 14:07:11+0800"; no offset = shop time
        # (the session time zone is the shop's while an import runs). "14:07+08:00" gets its
        # seconds, which DuckDB's cast wants before an offset (the Ibis rules accept it too).
        normal = f"regexp_replace({raw}, '\\s+([+-][0-9]{{2}}:?[0-9]{{2}}|Z|UTC)$', '\\1')"
        normal = (f"regexp_replace({normal}, '([T ][0-9]{{1,2}}:[0-9]{{1,2}})"
                  f"(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$', '\\1:00\\2')")
        helpers = [f"TRY_CAST({normal} AS TIMESTAMPTZ) AS {helper}"]
        checks = [
            (f"{helper} IS NULL", "not an ISO 8601 date or date-time (e.g. 2024-03-05 14:07:11+08:00)"),
            (f"{helper} NOT BETWEEN TIMESTAMPTZ '1970-01-01 00:00:00+00' "
             "AND TIMESTAMPTZ '2100-12-31 23:59:59+00'", "year out of range 1970–2100"),
        ]
        items = [
            f"timezone('UTC', {helper}) AS {raw}",
            f"CAST({helper} AS DATE) AS {_q(name + '__local_date')}",
        ]
    elif column.kind == "date":
        helpers = [f"TRY_CAST({raw} AS DATE) AS {helper}"]
        checks = [(f"{helper} IS NULL", "not an ISO date (YYYY-MM-DD)")]
        items = [f"{helper} AS {raw}"]
    elif column.kind == "bool":
        accepted = ", ".join(_lit(v) for v in _TRUE + _FALSE)
        checks = [(f"lower({raw}) NOT IN ({accepted})", "not true/false (or yes/no, 1/0)")]
        items = [f"(lower({raw}) IN ({', '.join(_lit(v) for v in _TRUE)})) AS {raw}"]
    elif column.kind == "status":
        statuses = ", ".join(_lit(s) for s in ORDER_STATUSES)
        checks = [(f"lower({raw}) NOT IN ({statuses})", "not one of " + ", ".join(ORDER_STATUSES))]
        items = [f"lower({raw}) AS {raw}"]
    elif column.kind == "json":
        checks = [
            (f"NOT json_valid({raw})", "not valid JSON"),
            (f"json_type({raw}::JSON) <> 'OBJECT'", "must be a JSON object"),
        ]
        items = [raw]
    elif name == "currency":
        checks = [(f"upper({raw}) <> {_lit(shop.currency)}",
                   f"currency differs from the shop currency {shop.currency}")]
        items = [f"upper({raw}) AS {raw}"]
    elif name == "channel":
        items = [f"lower({raw}) AS {raw}"]
    elif column.kind == "id":  # the shop's rule for ids (kit.ids): trimmed of any blank, NFC, exact case
        helpers = [f"{ids.canonical_id_sql(raw)} AS {helper}"]
        checks = [(f"{helper} IS NULL", "required value is missing")] if column.required else []
        checks.append((ids.unusable_sql(helper), "contains a control or invisible character"))
        items = [f"{helper} AS {raw}"]
    else:  # text
        items = [raw]
    whens = [f"WHEN {raw} IS NULL THEN {_lit('required value is missing') if column.required else 'NULL'}"]
    whens += [f"WHEN {cond} THEN {_lit(reason)}" for cond, reason in checks]
    error = f"CASE {' '.join(whens)} ELSE NULL END"
    return helpers, items, error


def _cross_checks(table: Table) -> list[tuple[str, str, str]]:
    """Checks across columns of one row: (column blamed, condition on typed values, reason)."""
    if table.name == "events":
        return [("customer_id", "customer_id IS NULL AND anonymous_id IS NULL",
                 "either customer_id or anonymous_id is required")]
    if table.name == "order_lines":
        return [("refunded_amount", "refunded_amount > line_total",
                 "refunded_amount exceeds line_total")]
    if table.name == "orders":
        return [("refunded_amount", "refunded_amount > total + coalesce(shipping, 0)",
                 "refunded_amount exceeds total + shipping")]
    if table.name == "inventory":
        return [("on_hand", "(on_hand IS NULL) = (received IS NULL)", INVENTORY_ONE_OF)]
    return []


def _validate(con: duckdb.DuckDBPyConnection, table: Table, shop: ShopSettings,
              several_files: bool, staged: generic.Staged) -> None:
    """``gw_raw`` → ``gw_typed`` (valid rows, typed) and ``gw_bad`` (one row per refusal).

    The staged rows are read once, into ``gw_typed_0``: typed values, the first reason each value
    is refused (``_e_<column>``) and, for refused values, the value as written (``_r_<column>``).
    """
    helpers: list[str] = []
    items: list[str] = []
    errors: list[tuple[str, str]] = []
    for column in table.inputs:
        col_helpers, col_items, error = _column_sql(column, shop)
        helpers += col_helpers
        items += col_items
        errors.append((column.name, error))
    cross = _cross_checks(table)
    blamed = {name for name, _, _ in cross}
    # Text that can be refused for more than being missing: keep it as written for the reason.
    kept = [c.name for c in table.inputs
            if c.kind not in ("id", "text") or c.name == "currency" or c.name in blamed]
    err_cols = [_q("_e_" + name) for name, _ in errors]
    written = [
        f"{_q('_t_' + n)} AS {_q('_r_' + n)}" if n in blamed
        else f"CASE WHEN {_q('_e_' + n)} IS NOT NULL THEN {_q('_t_' + n)} END AS {_q('_r_' + n)}"
        for n in kept
    ]
    trimmed = ", ".join(f"{_trimmed(_q(c.name))} AS {_q(c.name)}" for c in table.inputs)
    with_helpers = f"SELECT *, {', '.join(helpers)} FROM" if helpers else "SELECT * FROM"
    exclude = f" EXCLUDE ({', '.join(_q('_t_' + n) for n in kept)})" if kept else ""
    ok = "(" + " AND ".join(f"{c} IS NULL" for c in err_cols) + ") AS _ok"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE gw_typed_0 AS SELECT *{exclude}, "
        + ", ".join([*written, ok])
        + " FROM (SELECT _file, _file_idx, _row, "
        + ", ".join(items + [f"{_q(n)} AS {_q('_t_' + n)}" for n in kept])
        + ", "
        + ", ".join(f"{err} AS {_q('_e_' + name)}" for name, err in errors)
        + f" FROM ({with_helpers} (SELECT _file, _file_idx, _row, {trimmed} FROM gw_raw)))"
    )
    generic.after_scan(con, staged, "gw_typed_0")
    # One quarantine entry per refused value (with the value as written), then cross-column checks.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_bad (_file VARCHAR, _row BIGINT, column_name VARCHAR, "
        "value VARCHAR, reason VARCHAR)"
    )
    value = {c.name: (_q("_r_" + c.name) if c.name in kept else _q(c.name)) for c in table.inputs}
    parts = [
        f"SELECT _file, _row, {_lit(c.name)}, {value[c.name]}, {_q('_e_' + c.name)} FROM gw_typed_0 "
        f"WHERE {_q('_e_' + c.name)} IS NOT NULL"
        for c in table.inputs
    ]
    parts += [
        f"SELECT _file, _row, {_lit(name)}, {value[name]}, {_lit(reason)} FROM gw_typed_0 "
        f"WHERE _ok AND ({cond})"
        for name, cond, reason in cross
    ]
    con.execute("INSERT INTO gw_bad " + " UNION ALL ".join(parts))
    if staged.rejected:
        con.executemany(
            "INSERT INTO gw_bad VALUES (?, ?, '(row)', ?, ?)",
            [[f, r, clip_raw(line), reason] for f, r, line, reason in staged.rejected],
        )
    if table.name == "order_lines":
        _hold_back_whole_orders(con, several_files)
    if _count(con, "SELECT count(*) FROM gw_bad"):
        con.execute(
            "CREATE OR REPLACE TEMP VIEW gw_typed AS SELECT * FROM gw_typed_0 t WHERE NOT EXISTS "
            "(SELECT 1 FROM gw_bad b WHERE b._file = t._file AND b._row = t._row)"
        )
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW gw_typed AS SELECT * FROM gw_typed_0")


def _hold_back_whole_orders(con: duckdb.DuckDBPyConnection, several_files: bool) -> None:
    """Quarantine every line of an order whose latest version has a bad or inconsistent line."""
    latest = "gw_typed_0"
    if several_files:
        # The latest file that mentions an order carries its version; older mentions are superseded.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE gw_latest AS SELECT * EXCLUDE (_f) FROM (SELECT *, "
            "max(_file_idx) OVER (PARTITION BY order_id) AS _f FROM gw_typed_0) WHERE _file_idx = _f"
        )
        latest = "gw_latest"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_conflicts AS SELECT order_id, "
        "count(DISTINCT customer_id) > 1 AS customers, count(DISTINCT ordered_at) > 1 AS times "
        f"FROM {latest} WHERE _ok GROUP BY order_id "
        "HAVING count(DISTINCT customer_id) > 1 OR count(DISTINCT ordered_at) > 1"
    )
    if not _count(con, "SELECT count(*) FROM gw_conflicts"):
        flags: tuple[tuple[str, str], ...] = ()
    else:
        flags = (("customers", "customer_id"), ("times", "ordered_at"))
    for flag, column in flags:
        con.execute(
            "INSERT INTO gw_bad SELECT any_value(l._file), min(l._row), ?, "
            f"string_agg(DISTINCT l.{column}::VARCHAR, ' | '), "
            f"'lines of order ' || l.order_id || ' disagree on {column}' "
            f"FROM {latest} l JOIN gw_conflicts c ON c.order_id = l.order_id AND c.{flag} "
            "GROUP BY l.order_id",
            [column],
        )
    con.execute(
        "INSERT INTO gw_bad SELECT l._file, l._row, 'order_id', l.order_id, "
        "'order ' || l.order_id || ' held back: its row ' || b.first_bad || ' was refused' "
        f"FROM {latest} l JOIN (SELECT g.order_id, min(x._row) AS first_bad "
        f"  FROM gw_bad x JOIN {latest} g ON g._file = x._file AND g._row = x._row "
        "  WHERE g.order_id IS NOT NULL GROUP BY 1) b ON l.order_id = b.order_id "
        "WHERE NOT EXISTS (SELECT 1 FROM gw_bad y WHERE y._file = l._file AND y._row = l._row)"
    )


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


def _assemble(con: duckdb.DuckDBPyConnection, table: Table, shop: ShopSettings,
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


def _classify(con: duckdb.DuckDBPyConnection, names: list[str], origin: str = IMPORT_SOURCE) -> None:
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


def _write(con: duckdb.DuckDBPyConnection, import_id: str, names: list[str]) -> dict[str, TableCounts]:
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
        con.execute(
            f"INSERT INTO {_q(table.name)} ({cols}, _row_hash, _import_id) SELECT {cols}, _row_hash, "
            f"{_lit(import_id)} FROM gw_cls_{table.name} WHERE _cls <> 'unchanged'"
        )
    return TableCounts(
        inserted=by.get("new", 0), updated=by.get("updated", 0), unchanged=by.get("unchanged", 0)
    )


# ---------------------------------------------------------------------------------------------
# The command.
# ---------------------------------------------------------------------------------------------


def _run(con: duckdb.DuckDBPyConnection, work: Callable[[], None], phase: str,
         progress: Progress | None) -> None:
    """Run ``work`` and, if asked, report DuckDB's own query progress while it runs."""
    if progress is None:
        work()
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        try:
            done = float(con.query_progress())
        except duckdb.Error:
            done = -1.0
        progress(phase, done / 100.0 if done >= 0 else None)
    if failure:
        raise failure[0]
    progress(phase, 1.0)


def _stage(con: duckdb.DuckDBPyConnection, table: Table, fmt: str, paths: Sequence[Path],
           result: ImportResult) -> generic.Staged:
    if fmt == "generic":
        staged = generic.stage(con, table, paths, "gw_raw")
        result.ignored_columns = staged.ignored_columns
        return staged
    adapters = {"shopify": shopify.stage, "taobao": taobao.stage}
    if fmt not in adapters:
        raise InvalidArgumentError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    adapters[fmt](con, table, paths, "gw_raw")
    return generic.Staged()


def check_request(table_name: str, paths: Sequence[Path | str], fmt: str,
                  names: Sequence[str] | None = None) -> tuple[Table, list[Path]]:
    """The target table and the files of an import request, or the error that refuses it (files
    named by ``names`` when given, as in :func:`import_files`).

    Shop exports (``shopify``, ``taobao``) hold order lines: ``orders`` is taken to mean
    ``order_lines`` for them.
    """
    try:
        return _check_request(table_name, paths, fmt)
    except GrowthwheelError as exc:
        if names is not None:
            rename = {str(p): str(n) for p, n in zip(paths, names, strict=False)}
            exc.message = _renamed(exc.message, rename)
            exc.args = (exc.message,)
            renamed(exc, rename)
        raise


def _check_request(table_name: str, paths: Sequence[Path | str], fmt: str) -> tuple[Table, list[Path]]:
    try:
        table = resolve_table(table_name)
    except KeyError as exc:
        raise InvalidArgumentError(str(exc.args[0])) from None
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt != "generic" and table.name == "orders":
        table = ORDER_LINES
    files = [Path(p) for p in paths]
    if not files:
        raise InvalidArgumentError("no files given")
    for path in files:
        if not path.is_file():
            raise FileNotFoundProblem(f"{path}: no such file", path, k("import_file.not_found"))
    return table, files


def import_files(
    table_name: str,
    paths: Sequence[Path | str],
    fmt: str = "generic",
    *,
    cfg: Settings | None = None,
    progress: Progress | None = None,
    names: Sequence[str] | None = None,
    engine: str | None = None,
) -> ImportResult:
    """Import ``paths`` into ``table_name`` atomically; see the module docstring for the steps.

    On a Spark warehouse, generic CSV files are imported on Spark itself
    (``spark_ingest``; ``engine="duckdb"`` validates and merges in DuckDB instead, as every
    other format does); on the DuckDB warehouse DuckDB does everything.

    Shop exports (``shopify``, ``taobao``) hold order lines: importing them as ``orders`` is taken
    to mean ``order_lines``. ``names`` (one per path) is how the result, the quarantine entries and
    any error name each file — an upload's name as the client gave it, never the server's path;
    by default the path as given. A file that is not text (a spreadsheet, an archive, UTF-16) or,
    for the generic format, not UTF-8 is refused before it is read, naming the file.
    """
    cfg = cfg or settings()
    shown = [str(p) for p in paths] if names is None else [str(n) for n in names]
    if len(shown) != len(paths):
        raise InvalidArgumentError("names: give one name per file")
    rename = {str(p): n for p, n in zip(paths, shown, strict=True)}
    try:
        table, files = check_request(table_name, paths, fmt)
        header_only = [name for path, name in zip(files, shown, strict=True)
                       if "header_only" in check_text(path, name, fmt)]
        show = progress if sum(p.stat().st_size for p in files) > PROGRESS_BYTES else None
        if engine not in (None, "duckdb", "spark"):
            raise InvalidArgumentError(f"engine: {engine!r} is not duckdb or spark")
        on_spark = engine == "spark" or (engine is None and cfg.spark.imports == "spark")
        if on_spark and cfg.warehouse == "spark":
            from growthwheel.warehouse import spark_ingest

            if spark_ingest.supported(cfg, table, fmt, files):
                import_id = f"imp_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
                result = ImportResult(import_id, table.name, fmt, shown)
                if show is not None:
                    show(f"importing {', '.join(Path(n).name for n in shown)} on Spark", None)
                spark_ingest.run(cfg, table, files, shown, None if names is None else rename, result)
                result.header_only = header_only
                if show is not None:
                    show("done", 1.0)
                return result

        def stage(con: duckdb.DuckDBPyConnection, result: ImportResult) -> generic.Staged:
            staged = _stage(con, table, fmt, files, result)
            result.ignored_columns = {rename.get(k, k): v for k, v in result.ignored_columns.items()}
            return staged

        done = _import(
            cfg, table, fmt, shown, stage,
            f"reading and validating {', '.join(Path(n).name for n in shown)}", show,
            rename=None if names is None else rename,
        )
        done.header_only = header_only
        return done
    except GrowthwheelError as exc:
        if names is not None:  # name the files as the client did, wherever the message says
            exc.message = _renamed(exc.message, rename)
            exc.args = (exc.message,)
            renamed(exc, rename)
        raise


def _renamed(message: str, rename: dict[str, str]) -> str:
    """``message`` with every server path of ``rename`` replaced by its file's name."""
    for path in sorted(rename, key=len, reverse=True):
        for form in {path, str(Path(path).resolve())}:
            message = message.replace(form, rename[path])
    return message


# ---------------------------------------------------------------------------------------------
# Files that are not text: refused up front, naming the file (``file_checks.py``).
# ---------------------------------------------------------------------------------------------

#: Raw rows (lines the CSV reader refused) are kept in quarantine up to this many characters.
MAX_RAW_CHARS = 1000


def clip_raw(line: str) -> str:
    """A raw row as kept in quarantine: at most :data:`MAX_RAW_CHARS` characters."""
    return line if len(line) <= MAX_RAW_CHARS else line[: MAX_RAW_CHARS - 1] + "…"


def import_rows(
    table_name: str,
    rows: pa.Table,
    source: str,
    *,
    cfg: Settings | None = None,
    origin: str = IMPORT_SOURCE,
) -> ImportResult:
    """Import rows held in memory, through the same validation, quarantine and merge as files.

    ``origin`` is recorded as the orders' ``source``: ``checkout`` for the facts of orders
    committed through the checkout API (``facts.service``), which a later import leaves alone.

    ``rows`` has text columns named as the generic import columns of ``table_name`` (missing ones
    are empty; unknown ones are ignored and reported). Optional ``_file`` / ``_file_idx`` /
    ``_row`` columns say where each row came from (quarantine entries name them); by default every
    row comes from ``source``, numbered from 1. Within one import the last row of a key wins.
    """
    cfg = cfg or settings()
    try:
        table = resolve_table(table_name)
    except KeyError as exc:
        raise InvalidArgumentError(str(exc.args[0])) from None
    n = rows.num_rows
    if "_file" not in rows.column_names:
        rows = rows.append_column("_file", pa.array([source] * n, pa.string()))
    if "_file_idx" not in rows.column_names:
        rows = rows.append_column("_file_idx", pa.array([0] * n, pa.int32()))
    if "_row" not in rows.column_names:
        rows = rows.append_column("_row", pa.array(range(1, n + 1), pa.int64()))
    present = set(rows.column_names)
    ignored = [c for c in rows.column_names
               if not c.startswith("_") and c not in {i.name for i in table.inputs}]
    sources = list(dict.fromkeys(str(f) for f in rows.column("_file").to_pylist())) or [source]

    def stage(con: duckdb.DuckDBPyConnection, result: ImportResult) -> generic.Staged:
        if ignored:
            result.ignored_columns = {source: ignored}
        cols = [f"CAST({_q(c.name)} AS VARCHAR) AS {_q(c.name)}" if c.name in present
                else f"NULL::VARCHAR AS {_q(c.name)}" for c in table.inputs]
        con.register("gw_rows", rows)
        try:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE gw_raw AS SELECT {', '.join(cols)}, "
                "CAST(_file AS VARCHAR) AS _file, CAST(_file_idx AS INTEGER) AS _file_idx, "
                "CAST(_row AS BIGINT) AS _row FROM gw_rows"
            )
        finally:
            con.unregister("gw_rows")
        return generic.Staged()

    return _import(cfg, table, "rows", sources, stage, f"validating {n:,} rows from {source}", None,
                   origin=origin)


def _import(
    cfg: Settings,
    table: Table,
    fmt: str,
    files: list[str],
    stage: Callable[[duckdb.DuckDBPyConnection, ImportResult], generic.Staged],
    reading: str,
    show: Progress | None,
    rename: dict[str, str] | None = None,
    *,
    origin: str = IMPORT_SOURCE,
) -> ImportResult:
    """Stage (by ``stage``), validate, quarantine and merge in one transaction; see the module
    docstring. ``rename`` maps staged file paths to the names quarantine entries carry."""
    shop = cfg.shop()
    started = time.perf_counter()
    import_id = f"imp_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    result = ImportResult(import_id, table.name, fmt, files)

    written = ["orders", "order_lines"] if table.name == "order_lines" else [table.name]
    with _target(cfg, [*written, wh.QUARANTINE_TABLE, wh.IMPORTS_TABLE]) as con:
        con.execute(f"SET TimeZone = {_lit(shop.timezone)}")
        # Staging, validation and classification work in temporary tables, which are private to
        # this connection and never persisted; only the writes below touch the warehouse, in one
        # transaction. (Temporary tables created inside the transaction would be slower to scan.)
        staged: list[generic.Staged] = []
        _run(con, lambda: staged.append(stage(con, result)), "staging", show)
        several = len(files) > 1
        _run(con, lambda: _validate(con, table, shop, several, staged[0]), reading, show)
        names: list[str] = []

        def prepare() -> None:
            names.extend(_assemble(con, table, shop, several, origin))
            _classify(con, names, origin)

        _run(con, prepare, "preparing", show)
        con.execute("BEGIN TRANSACTION")
        try:
            counts: dict[str, TableCounts] = {}
            _run(con, lambda: counts.update(_write(con, import_id, names)), "writing", show)
            result.tables = counts
            _record(con, result, import_id, files, rename)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _record(con: duckdb.DuckDBPyConnection, result: ImportResult, import_id: str,
            files: Sequence[str | Path], rename: dict[str, str] | None = None) -> None:
    """Fill in the counts, replace the files' old quarantine entries and log the run (files
    named through ``rename`` when given)."""
    unreadable = _count(con, "SELECT count(*) FROM gw_bad WHERE column_name = '(row)'")
    result.rows_read = _count(con, "SELECT count(*) FROM gw_typed_0") + unreadable
    result.rows_quarantined = _count(con, "SELECT count(DISTINCT (_file, _row)) FROM gw_bad")
    # Rows that were valid but lost to a later row with the same key in this import.
    main = result.tables["orders" if result.table == "order_lines" else result.table]
    if result.table != "order_lines":
        kept = main.inserted + main.updated + main.unchanged
        result.superseded = result.rows_read - result.rows_quarantined - kept
    file_list = ", ".join(_lit(str(p)) for p in files)
    con.execute(
        f"DELETE FROM {wh.QUARANTINE_TABLE} WHERE table_name = ? AND file IN ({file_list})",
        [result.table],
    )
    file = "_file"
    if rename:
        file = "CASE _file " + " ".join(
            f"WHEN {_lit(path)} THEN {_lit(name)}" for path, name in rename.items()) + " ELSE _file END"
    con.execute(
        f"INSERT INTO {wh.QUARANTINE_TABLE} SELECT ?, ?, {file}, _row, column_name, value, reason, "
        "timezone('UTC', now()) FROM gw_bad ORDER BY _file, _row",
        [import_id, result.table],
    )
    con.execute(
        f"INSERT INTO {wh.IMPORTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, timezone('UTC', now()))",
        [import_id, result.table, result.format, ";".join(result.files), result.rows_read,
         main.inserted, main.updated, main.unchanged, result.rows_quarantined],
    )


class _target:
    """Context manager yielding the DuckDB connection an import writes through."""

    def __init__(self, cfg: Settings, tables: Sequence[str]) -> None:
        self.cfg = cfg
        self.tables = list(tables)
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        if self.cfg.warehouse == "spark":
            from growthwheel.warehouse import spark

            self.con = spark.load_snapshot(self.cfg, self.tables)
        else:
            self.con = wh.open_duckdb(self.cfg)
        return self.con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.con is not None
        try:
            if exc_type is None and self.cfg.warehouse == "spark":
                from growthwheel.warehouse import spark

                spark.publish_snapshot(self.cfg, self.con, self.tables)
        finally:
            self.con.close()


def quarantine_rows(cfg: Settings | None = None, *, table: str | None = None,
                    limit: int = 100) -> list[dict[str, object]]:
    """The quarantined rows, newest import first (optionally for one table)."""
    cfg = cfg or settings()
    with _reader(cfg, [wh.QUARANTINE_TABLE]) as con:
        where = "WHERE table_name = ?" if table else ""
        params: list[object] = [table] if table else []
        cur = con.execute(
            f"SELECT import_id, table_name, file, row_number, column_name, value, reason, "
            f"quarantined_at FROM {wh.QUARANTINE_TABLE} {where} "
            f"ORDER BY quarantined_at DESC, file, row_number LIMIT {int(limit)}",
            params,
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class _reader(_target):
    """Read-only access to the bookkeeping tables (no publish on exit)."""

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        if self.cfg.warehouse == "spark":
            from growthwheel.warehouse import spark

            self.con = spark.load_snapshot(self.cfg, self.tables)
        else:
            self.con = wh.open_duckdb(self.cfg, read_only=True)
        return self.con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.con is not None
        self.con.close()
