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
exactly as it was. Validation runs in DuckDB for every backend; on the Spark warehouse the merged
tables are then published as a new Parquet snapshot (``warehouse/spark.py``).
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

from growthwheel.config import Settings, ShopSettings, settings
from growthwheel.errors import ImportFileError, InvalidArgumentError
from growthwheel.kit.money import currency_exponent
from growthwheel.warehouse import db as wh
from growthwheel.warehouse.formats import generic
from growthwheel.warehouse.schema import (
    ORDER_LINES,
    ORDER_STATUSES,
    ORDERS,
    TABLES,
    Input,
    Table,
    resolve_table,
)

FORMATS = ("generic", "shopify", "taobao")
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


def _column_sql(column: Input, shop: ShopSettings) -> tuple[list[str], str]:
    """SQL for one input column: (typed select items, error expression)."""
    raw = f"NULLIF(trim({_q(column.name)}), '')"
    name = column.name
    checks: list[tuple[str, str]] = []  # (condition, reason) in order; first match wins
    items: list[str]
    if column.kind == "money":
        exp = currency_exponent(shop.currency)
        dec = f"TRY_CAST({raw} AS DECIMAL(38, 10))"
        checks = [
            (f"NOT regexp_full_match({raw}, '{_NUMBER}')",
             "not a plain decimal number in major units (e.g. 12.30)"),
            (f"length(regexp_extract({raw}, '^[^.]*', 0)) > 16", "amount too large"),
            (f"{dec} * {10**exp} <> floor({dec} * {10**exp})",
             f"more than {exp} decimal places for {shop.currency}"),
            (f"{dec} < 0", "must not be negative"),
        ]
        items = [f"CAST({dec} * {10**exp} AS BIGINT) AS {_q(name)}"]
    elif column.kind == "int":
        dec = f"TRY_CAST({raw} AS DECIMAL(38, 10))"
        checks = [
            (f"NOT regexp_full_match({raw}, '{_WHOLE}')", "not a whole number"),
            (f"length({raw}) > 15", "number too large"),
        ]
        if column.min_value is not None:
            checks.append((f"{dec} < {column.min_value}", f"must be at least {column.min_value}"))
        if column.max_value is not None:
            checks.append((f"{dec} > {column.max_value}", f"must be at most {column.max_value}"))
        items = [f"CAST({dec} AS BIGINT) AS {_q(name)}"]
    elif column.kind == "datetime":
        # "2024-03-05 14:07:11 +0800" (Shopify) → "2024-03-05 14:07:11+0800"; no offset = shop time.
        normal = f"regexp_replace({raw}, '\\s+([+-][0-9]{{2}}:?[0-9]{{2}}|Z|UTC)$', '\\1')"
        tstz = f"TRY_CAST({normal} AS TIMESTAMPTZ)"
        checks = [
            (f"{tstz} IS NULL", "not an ISO 8601 date or date-time (e.g. 2024-03-05 14:07:11+08:00)"),
            (f"year({tstz}) NOT BETWEEN 1970 AND 2100", "year out of range 1970–2100"),
        ]
        items = [
            f"timezone('UTC', {tstz}) AS {_q(name)}",
            f"CAST({tstz} AS DATE) AS {_q(name + '__local_date')}",
        ]
    elif column.kind == "date":
        checks = [(f"TRY_CAST({raw} AS DATE) IS NULL", "not an ISO date (YYYY-MM-DD)")]
        items = [f"TRY_CAST({raw} AS DATE) AS {_q(name)}"]
    elif column.kind == "bool":
        accepted = ", ".join(_lit(v) for v in _TRUE + _FALSE)
        checks = [(f"lower({raw}) NOT IN ({accepted})", "not true/false (or yes/no, 1/0)")]
        items = [f"(lower({raw}) IN ({', '.join(_lit(v) for v in _TRUE)})) AS {_q(name)}"]
    elif column.kind == "status":
        statuses = ", ".join(_lit(s) for s in ORDER_STATUSES)
        checks = [(f"lower({raw}) NOT IN ({statuses})", "not one of " + ", ".join(ORDER_STATUSES))]
        items = [f"lower({raw}) AS {_q(name)}"]
    elif column.kind == "json":
        checks = [
            (f"NOT json_valid({raw})", "not valid JSON"),
            (f"json_type({raw}::JSON) <> 'OBJECT'", "must be a JSON object"),
        ]
        items = [f"{raw} AS {_q(name)}"]
    else:  # id, text
        items = [f"{raw} AS {_q(name)}"]
        if name == "currency":
            checks = [(f"upper({raw}) <> {_lit(shop.currency)}",
                       f"currency differs from the shop currency {shop.currency}")]
            items = [f"upper({raw}) AS {_q(name)}"]
        elif name == "channel":
            items = [f"lower({raw}) AS {_q(name)}"]
    whens = []
    if column.required:
        whens.append(f"WHEN {raw} IS NULL THEN 'required value is missing'")
    else:
        whens.append(f"WHEN {raw} IS NULL THEN NULL")
    whens += [f"WHEN {cond} THEN {_lit(reason)}" for cond, reason in checks]
    error = f"CASE {' '.join(whens)} ELSE NULL END"
    return items, error


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
    return []


def _validate(con: duckdb.DuckDBPyConnection, table: Table, shop: ShopSettings) -> None:
    """``gw_raw`` → ``gw_typed``: typed values plus ``_error``/``_error_column``/``_error_value``."""
    items: list[str] = []
    errors: list[tuple[str, str]] = []
    for column in table.inputs:
        col_items, error = _column_sql(column, shop)
        items += col_items
        errors.append((column.name, error))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_typed_0 AS SELECT _file, _file_idx, _row, "
        + ", ".join(items)
        + ", "
        + ", ".join(f"{err} AS {_q('_e_' + name)}" for name, err in errors)
        + ", "
        + ", ".join(f"{_q(c.name)} AS {_q('_raw_' + c.name)}" for c in table.inputs)
        + " FROM gw_raw"
    )
    # One quarantine entry per refused value; cross-row checks only where every value is fine.
    valid = " AND ".join(f"{_q('_e_' + c.name)} IS NULL" for c in table.inputs)
    parts = [
        f"SELECT _file, _row, {_lit(c.name)} AS column_name, {_q('_raw_' + c.name)} AS value, "
        f"{_q('_e_' + c.name)} AS reason FROM gw_typed_0 WHERE {_q('_e_' + c.name)} IS NOT NULL"
        for c in table.inputs
    ]
    for column, cond, reason in _cross_checks(table):
        parts.append(
            f"SELECT _file, _row, {_lit(column)}, {_q('_raw_' + column)}, {_lit(reason)} "
            f"FROM gw_typed_0 WHERE {valid} AND ({cond})"
        )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_bad (_file VARCHAR, _row BIGINT, column_name VARCHAR, "
        "value VARCHAR, reason VARCHAR)"
    )
    con.execute("INSERT INTO gw_bad " + " UNION ALL ".join(parts))
    if table.name == "order_lines":
        _hold_back_whole_orders(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_typed AS SELECT * FROM gw_typed_0 t WHERE NOT EXISTS "
        "(SELECT 1 FROM gw_bad b WHERE b._file = t._file AND b._row = t._row)"
    )


def _hold_back_whole_orders(con: duckdb.DuckDBPyConnection) -> None:
    """Quarantine every line of an order whose latest version has a bad or inconsistent line."""
    # The latest file that mentions an order carries its version; older mentions are superseded.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_latest AS SELECT t.* FROM gw_typed_0 t "
        "JOIN (SELECT _raw_order_id, max(_file_idx) AS f FROM gw_typed_0 "
        "WHERE _raw_order_id IS NOT NULL GROUP BY 1) m "
        "ON t._raw_order_id = m._raw_order_id AND t._file_idx = m.f"
    )
    con.execute(
        "INSERT INTO gw_bad SELECT any_value(_file), min(_row), 'customer_id', "
        "string_agg(DISTINCT customer_id, ' | '), "
        "'lines of order ' || order_id || ' disagree on customer_id' "
        "FROM gw_latest WHERE order_id IS NOT NULL GROUP BY order_id "
        "HAVING count(DISTINCT customer_id) > 1"
    )
    con.execute(
        "INSERT INTO gw_bad SELECT any_value(_file), min(_row), 'ordered_at', "
        "string_agg(DISTINCT _raw_ordered_at, ' | '), "
        "'lines of order ' || order_id || ' disagree on ordered_at' "
        "FROM gw_latest WHERE order_id IS NOT NULL GROUP BY order_id "
        "HAVING count(DISTINCT ordered_at) > 1"
    )
    con.execute(
        "INSERT INTO gw_bad SELECT l._file, l._row, 'order_id', l._raw_order_id, "
        "'order ' || l._raw_order_id || ' held back: its row ' || b.first_bad || ' was refused' "
        "FROM gw_latest l JOIN (SELECT g._raw_order_id, min(x._row) AS first_bad "
        "  FROM gw_bad x JOIN gw_latest g ON g._file = x._file AND g._row = x._row "
        "  GROUP BY 1) b ON l._raw_order_id = b._raw_order_id "
        "WHERE NOT EXISTS (SELECT 1 FROM gw_bad y WHERE y._file = l._file AND y._row = l._row)"
    )


# ---------------------------------------------------------------------------------------------
# Assembly: typed rows → the stored tables' rows (``gw_new_<table>``), deduplicated by key.
# ---------------------------------------------------------------------------------------------


def _latest_by_key(table: Table, select: str) -> str:
    keys = ", ".join(_q(k) for k in table.key)
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


def _assemble(con: duckdb.DuckDBPyConnection, table: Table, shop: ShopSettings) -> list[str]:
    """Build ``gw_new_<name>`` for every stored table the import writes; return their names."""
    cur = _lit(shop.currency)
    channel = "coalesce(channel, lower(utm_source), 'direct')"
    if table.name == "order_lines":
        _assemble_lines(con, shop)
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
            f"WHEN {refunded} > 0 THEN 'partially_refunded' ELSE 'paid' END) AS status_ FROM gw_typed"
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
    else:  # pragma: no cover - every table is handled above
        raise AssertionError(table.name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE gw_dedup AS {_latest_by_key(table, select)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE gw_new_{table.name} AS {_with_hash(table, 'gw_dedup')}")
    return [table.name]


def _assemble_lines(con: duckdb.DuckDBPyConnection, shop: ShopSettings) -> None:
    """Order lines → ``gw_new_order_lines`` and the orders they make → ``gw_new_orders``."""
    cur = _lit(shop.currency)
    # Latest file per order wins; lines numbered in file order.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_lines AS SELECT *, row_number() OVER "
        "(PARTITION BY order_id ORDER BY _row) AS line_no FROM gw_typed t WHERE _file_idx = "
        "(SELECT max(_file_idx) FROM gw_typed u WHERE u.order_id = t.order_id)"
    )
    discount = (
        "coalesce(discount, CASE WHEN unit_price IS NOT NULL "
        "THEN greatest(unit_price * quantity - line_total, 0) ELSE 0 END)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_line_rows AS SELECT order_id, line_no, sku, product_name, "
        f"category, quantity, unit_price, {discount} AS discount_amount, line_total, "
        "coalesce(refunded_amount, 0) AS refunded_amount, _row FROM gw_lines"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_new_order_lines AS "
        + _with_hash(ORDER_LINES, "gw_line_rows")
    )
    refunded = "sum(l.refunded_amount)"
    total = "sum(l.line_total)"
    first = "arg_min({c}, t._row)"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_order_rows AS SELECT t.order_id, "
        "any_value(t.customer_id) AS customer_id, any_value(t.ordered_at) AS ordered_at, "
        "any_value(t.ordered_at__local_date) AS order_date, max(t.paid_at) AS paid_at, "
        f"coalesce({first.format(c='t.status')}, CASE WHEN {refunded} > 0 AND {refunded} >= {total} "
        f"THEN 'refunded' WHEN {refunded} > 0 THEN 'partially_refunded' ELSE 'paid' END) AS status, "
        f"{cur} AS currency, "
        f"coalesce({first.format(c='t.channel')}, lower({first.format(c='t.utm_source')}), 'direct') "
        "AS channel, "
        f"{first.format(c='t.utm_source')} AS utm_source, "
        f"{first.format(c='t.utm_medium')} AS utm_medium, "
        f"{first.format(c='t.utm_campaign')} AS utm_campaign, "
        f"{first.format(c='t.coupon_code')} AS coupon_code, "
        "sum(l.quantity) AS item_count, "
        f"{total} + sum(l.discount_amount) AS gross_amount, "
        "sum(l.discount_amount) AS discount_amount, "
        f"{total} AS total_amount, coalesce(max(t.shipping), 0) AS shipping_amount, "
        f"{refunded} AS refunded_amount, "
        "hash(list(l._row_hash ORDER BY l.line_no)) AS _lines_hash "
        "FROM gw_lines t JOIN (SELECT n.*, r._row FROM gw_new_order_lines n JOIN gw_line_rows r "
        "USING (order_id, line_no)) l ON l.order_id = t.order_id AND l.line_no = t.line_no "
        "GROUP BY t.order_id"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE gw_new_orders AS "
        + _with_hash(ORDERS, "gw_order_rows", extra_hash="_lines_hash")
    )


# ---------------------------------------------------------------------------------------------
# Merge: classify new / updated / unchanged against the stored rows, then write.
# ---------------------------------------------------------------------------------------------


def _key_match(table: Table, left: str, right: str) -> str:
    return " AND ".join(
        f"{left}.{_q(k)} IS NOT DISTINCT FROM {right}.{_q(k)}" for k in table.key
    )


def _merge(
    con: duckdb.DuckDBPyConnection, import_id: str, names: list[str]
) -> dict[str, TableCounts]:
    counts: dict[str, TableCounts] = {}
    if names == ["orders", "order_lines"]:
        counts["orders"] = _merge_table(con, import_id, ORDERS, "gw_new_orders")
        # An order's lines are replaced as a whole whenever the order is new or changed.
        con.execute(
            "DELETE FROM order_lines WHERE order_id IN "
            "(SELECT order_id FROM gw_cls_orders WHERE _cls = 'updated')"
        )
        cols = ", ".join(_q(c) for c in ORDER_LINES.stored_names)
        inserted = con.execute(
            f"INSERT INTO order_lines ({cols}, _row_hash, _import_id) SELECT {cols}, _row_hash, "
            f"{_lit(import_id)} FROM gw_new_order_lines WHERE order_id IN "
            "(SELECT order_id FROM gw_cls_orders WHERE _cls <> 'unchanged')"
        ).fetchone()
        n_lines = int(inserted[0]) if inserted else 0
        kept = con.execute(
            "SELECT count(*) FROM gw_new_order_lines WHERE order_id IN "
            "(SELECT order_id FROM gw_cls_orders WHERE _cls = 'unchanged')"
        ).fetchone()
        counts["order_lines"] = TableCounts(inserted=n_lines, unchanged=int(kept[0]) if kept else 0)
        return counts
    for name in names:
        counts[name] = _merge_table(con, import_id, TABLES[name], f"gw_new_{name}")
    return counts


def _merge_table(
    con: duckdb.DuckDBPyConnection, import_id: str, table: Table, new: str
) -> TableCounts:
    keys = ", ".join(f"s.{_q(k)}" for k in table.key)
    target_keys = ", ".join(_q(k) for k in table.key)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE gw_cls_{table.name} AS SELECT s.*, CASE "
        "WHEN t._hit IS NULL THEN 'new' WHEN t._row_hash = s._row_hash THEN 'unchanged' "
        f"ELSE 'updated' END AS _cls FROM {new} s LEFT JOIN "
        f"(SELECT {target_keys}, _row_hash, true AS _hit FROM {_q(table.name)}) t "
        f"ON {_key_match(table, 's', 't')}"
    )
    del keys
    con.execute(
        f"DELETE FROM {_q(table.name)} t USING gw_cls_{table.name} s "
        f"WHERE s._cls = 'updated' AND {_key_match(table, 't', 's')}"
    )
    cols = ", ".join(_q(c) for c in table.stored_names)
    con.execute(
        f"INSERT INTO {_q(table.name)} ({cols}, _row_hash, _import_id) SELECT {cols}, _row_hash, "
        f"{_lit(import_id)} FROM gw_cls_{table.name} WHERE _cls <> 'unchanged'"
    )
    rows = con.execute(
        f"SELECT _cls, count(*) FROM gw_cls_{table.name} GROUP BY 1"
    ).fetchall()
    by = {str(k): int(v) for k, v in rows}
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
           result: ImportResult) -> list[tuple[str, int, str, str]]:
    if fmt == "generic":
        staged = generic.stage(con, table, paths, "gw_raw")
        result.ignored_columns = staged.ignored_columns
        return staged.rejected
    if fmt == "shopify":
        from growthwheel.warehouse.formats import shopify as adapter
    elif fmt == "taobao":
        from growthwheel.warehouse.formats import taobao as adapter
    else:
        raise InvalidArgumentError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    adapter.stage(con, table, paths, "gw_raw")
    return []


def import_files(
    table_name: str,
    paths: Sequence[Path | str],
    fmt: str = "generic",
    *,
    cfg: Settings | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Import ``paths`` into ``table_name`` atomically; see the module docstring for the steps.

    Shop exports (``shopify``, ``taobao``) hold order lines: importing them as ``orders`` is taken
    to mean ``order_lines``.
    """
    cfg = cfg or settings()
    shop = cfg.shop()
    try:
        table = resolve_table(table_name)
    except KeyError as exc:
        raise InvalidArgumentError(str(exc.args[0])) from None
    if fmt != "generic" and table.name == "orders":
        table = ORDER_LINES
    files = [Path(p) for p in paths]
    if not files:
        raise InvalidArgumentError("no files given")
    for path in files:
        if not path.is_file():
            raise ImportFileError(f"{path}: no such file")
    started = time.perf_counter()
    import_id = f"imp_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
    result = ImportResult(import_id, table.name, fmt, [str(p) for p in files])
    show = progress if sum(p.stat().st_size for p in files) > PROGRESS_BYTES else None

    with _target(cfg) as con:
        con.execute(f"SET TimeZone = {_lit(shop.timezone)}")
        con.execute("BEGIN TRANSACTION")
        try:
            rejected: list[tuple[str, int, str, str]] = []

            def stage() -> None:
                rejected.extend(_stage(con, table, fmt, files, result))

            _run(con, stage, f"reading {', '.join(p.name for p in files)}", show)
            _run(con, lambda: _validate(con, table, shop), "validating", show)
            if rejected:
                con.executemany(
                    "INSERT INTO gw_bad VALUES (?, ?, '(row)', ?, ?)",
                    [[f, r, line, reason] for f, r, line, reason in rejected],
                )
            names: list[str] = []
            _run(con, lambda: names.extend(_assemble(con, table, shop)), "preparing", show)
            counts: dict[str, TableCounts] = {}
            _run(con, lambda: counts.update(_merge(con, import_id, names)), "writing", show)
            result.tables = counts
            _record(con, result, import_id, files)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _record(con: duckdb.DuckDBPyConnection, result: ImportResult, import_id: str,
            files: list[Path]) -> None:
    """Fill in the counts, replace the files' old quarantine entries and log the run."""
    read = con.execute("SELECT count(*) FROM gw_raw").fetchone()
    bad = con.execute("SELECT count(DISTINCT (_file, _row)) FROM gw_bad").fetchone()
    result.rows_read = (int(read[0]) if read else 0) + int(
        con.execute("SELECT count(*) FROM gw_bad WHERE column_name = '(row)'").fetchone()[0]  # type: ignore[index]
    )
    result.rows_quarantined = int(bad[0]) if bad else 0
    written = sum(c.inserted + c.updated + c.unchanged for n, c in result.tables.items()
                  if n != "orders" or result.table == "orders")
    if result.table != "order_lines":
        result.superseded = result.rows_read - result.rows_quarantined - written
    file_list = ", ".join(_lit(str(p)) for p in files)
    con.execute(
        f"DELETE FROM {wh.QUARANTINE_TABLE} WHERE table_name = ? AND file IN ({file_list})",
        [result.table],
    )
    con.execute(
        f"INSERT INTO {wh.QUARANTINE_TABLE} SELECT ?, ?, _file, _row, column_name, value, reason, "
        "timezone('UTC', now()) FROM gw_bad ORDER BY _file, _row",
        [import_id, result.table],
    )
    main = result.tables.get(result.table, TableCounts())
    if result.table == "order_lines":
        main = result.tables.get("orders", TableCounts())
    con.execute(
        f"INSERT INTO {wh.IMPORTS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, timezone('UTC', now()))",
        [import_id, result.table, result.format, ";".join(result.files), result.rows_read,
         main.inserted, main.updated, main.unchanged, result.rows_quarantined],
    )


class _target:
    """Context manager yielding the DuckDB connection an import writes through."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        if self.cfg.warehouse == "spark":
            from growthwheel.warehouse import spark

            self.con = spark.load_snapshot(self.cfg)
        else:
            self.con = wh.open_duckdb(self.cfg)
        return self.con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.con is not None
        try:
            if exc_type is None and self.cfg.warehouse == "spark":
                from growthwheel.warehouse import spark

                spark.publish_snapshot(self.cfg, self.con)
        finally:
            self.con.close()


def quarantine_rows(cfg: Settings | None = None, *, table: str | None = None,
                    limit: int = 100) -> list[dict[str, object]]:
    """The quarantined rows, newest import first (optionally for one table)."""
    cfg = cfg or settings()
    with _reader(cfg) as con:
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

            self.con = spark.load_snapshot(self.cfg)
        else:
            self.con = wh.open_duckdb(self.cfg, read_only=True)
        return self.con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self.con is not None
        self.con.close()
