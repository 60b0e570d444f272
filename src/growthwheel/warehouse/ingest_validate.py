"""Import validation: one SQL pass types every staged column and records the first reason each
value is refused (``gw_typed_0``, ``gw_bad``); order lines are held back order by order.

Step 2 of the pipeline in :mod:`growthwheel.warehouse.ingest`. Money becomes integer minor units
through ``DECIMAL`` (never a float), times UTC plus the shop-local date. The same rules, written
once as Ibis expressions for Spark, are in :mod:`growthwheel.warehouse.rules`.
"""

from __future__ import annotations

import duckdb

from growthwheel.config import ShopSettings
from growthwheel.kit import ids
from growthwheel.kit.money import currency_exponent
from growthwheel.warehouse.formats import generic
from growthwheel.warehouse.schema import INVENTORY_ONE_OF, ORDER_STATUSES, Input, Table
from growthwheel.warehouse.sqltext import count as _count
from growthwheel.warehouse.sqltext import lit as _lit
from growthwheel.warehouse.sqltext import q as _q

#: Raw rows (lines the CSV reader refused) are kept in quarantine up to this many characters.
MAX_RAW_CHARS = 1000


def clip_raw(line: str) -> str:
    """A raw row as kept in quarantine: at most :data:`MAX_RAW_CHARS` characters."""
    return line if len(line) <= MAX_RAW_CHARS else line[: MAX_RAW_CHARS - 1] + "…"


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


def validate(con: duckdb.DuckDBPyConnection, table: Table, shop: ShopSettings,
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
