"""The import rules as Ibis expressions: one definition that DuckDB and Spark both run.

Every input column of the generic format (``schema.Table.inputs``) arrives as text. For each,
:func:`column_rule` gives the typed value(s) and the *first reason* the value is refused (``NULL``
when it is accepted), with exactly the reasons and the order of checks of the DuckDB import
(``ingest_validate._column_sql``): required, then the kind's checks (money, whole numbers and their ranges,
dates and date-times with the shop's time zone, booleans, statuses, the shop currency, the id rule
of ``kit/ids.py``). :func:`validate` applies them to a raw table (``_file``, ``_file_idx``,
``_row`` and one string column per input) and adds the cross-column checks; :func:`refusals`
turns the result into quarantine entries (file, row, column, value, reason) and
:func:`hold_back_whole_orders` quarantines every line of an order with a refused line.

Only a few things differ between the engines, and they are :class:`Engine`'s: how a naive
wall-clock time in a named zone becomes UTC (and back), Unicode NFC (DuckDB's ``nfc_normalize``;
on Spark a Python function registered in the session, ``spark_ingest.register_functions``) and
whether a text is a JSON object (DuckDB's ``json_valid`` / ``json_type``; on Spark Python's
``json``: the two parsers agree on what JSON is except at its edges — DuckDB refuses a lone UTF-16
surrogate escape that Python reads). Everything else is plain Ibis, compiled by each backend.

Dates and date-times are matched against one pattern before they are cast (``YYYY-MM-DD`` or
``YYYY/MM/DD``, then optionally ``T`` or a blank, ``hh:mm[:ss[.fraction]]`` and an offset ``Z``,
``±hh``, ``±hhmm`` or ``±hh:mm``), rebuilt in canonical form and cast: the engines' own casts
accept different extras (Spark takes ``2024`` as a date, DuckDB takes zone names), the pattern
does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from growthwheel.config import ShopSettings
from growthwheel.kit import ids
from growthwheel.kit.money import currency_exponent
from growthwheel.warehouse.schema import INVENTORY_ONE_OF, ORDER_STATUSES, Input, Table

_NUMBER = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)\z"
_WHOLE = r"^[+-]?[0-9]+([.]0*)?\z"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_PLAIN = r"^[!-~]+\z"
_DATE = r"^([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})"
_TIME = r"(?:[T ]([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2})(?:[.]([0-9]+))?)?)?"
_OFFSET = r"(?:\s*(Z|[+-][0-9]{2}(?::?[0-9]{2})?))?\z"
_DATETIME = _DATE + _TIME + _OFFSET
_BLANKS = "".join(f"\\x{{{ord(c):04x}}}" for c in ids.WHITESPACE)
_STRIP = f"^[{_BLANKS}]+|[{_BLANKS}]+\\z"
_LOW = ibis.timestamp("1970-01-01 00:00:00")
_HIGH = ibis.timestamp("2100-12-31 23:59:59")

MISSING = "required value is missing"


@ibis.udf.scalar.builtin(name="convert_timezone")  # type: ignore[untyped-decorator]
def _convert_timezone(source: str, target: str, ts: dt.timestamp) -> dt.timestamp:
    """Spark's ``convert_timezone`` (a DuckDB macro of the same name is created for DuckDB)."""


@ibis.udf.scalar.builtin(name="nfc_normalize")  # type: ignore[untyped-decorator]
def _nfc_duckdb(value: str) -> str:  # type: ignore[empty-body]
    """DuckDB's NFC normalisation."""


DUCKDB_MACROS = (
    "CREATE OR REPLACE MACRO convert_timezone(s, d, t) AS timezone(d, timezone(s, t))",
)
"""SQL a DuckDB connection runs once before it evaluates the rules."""


@dataclass(frozen=True)
class Engine:
    """What differs between the engines the rules run on: ``duckdb`` or ``pyspark``."""

    name: str

    def to_utc(self, local: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        """A naive wall-clock time in ``zone`` as naive UTC."""
        if zone == "UTC":
            return local
        result: ir.TimestampValue = _convert_timezone(zone, "UTC", local)
        return result

    def from_utc(self, utc: ir.TimestampValue, zone: str) -> ir.TimestampValue:
        """A naive UTC time as the naive wall-clock time in ``zone``."""
        if zone == "UTC":
            return utc
        result: ir.TimestampValue = _convert_timezone("UTC", zone, utc)
        return result

    def json_kind(self, value: ir.StringValue) -> ir.StringValue:
        """``'object'``, ``'other'`` (valid JSON, not an object) or ``'invalid'``."""
        if self.name == "duckdb":
            result: ir.StringValue = ibis.cases(
                (~_json_valid_duckdb(value), "invalid"),
                (_json_type_duckdb(value) == "OBJECT", "object"), else_="other")
            return result
        spark: ir.StringValue = _json_kind_spark(value)
        return spark

    def nfc(self, value: ir.StringValue) -> ir.StringValue:
        """``value`` in Unicode NFC."""
        if self.name == "duckdb":
            result: ir.StringValue = _nfc_duckdb(value)
            return result
        return _nfc_python(value)


@ibis.udf.scalar.builtin(name="gw_nfc")  # type: ignore[untyped-decorator,unused-ignore]
def _nfc_spark(value: str) -> str:  # type: ignore[empty-body]
    """NFC on Spark: a Python function the import registers in its session
    (``spark_ingest.register_functions``)."""


@ibis.udf.scalar.builtin(name="json_valid")  # type: ignore[untyped-decorator,unused-ignore]
def _json_valid_duckdb(value: str) -> bool:  # type: ignore[empty-body]
    """DuckDB's JSON check."""


@ibis.udf.scalar.builtin(name="json_type")  # type: ignore[untyped-decorator,unused-ignore]
def _json_type_duckdb(value: str) -> str:  # type: ignore[empty-body]
    """DuckDB's JSON value type (``OBJECT``, ``ARRAY``, ...)."""


@ibis.udf.scalar.builtin(name="gw_json_kind")  # type: ignore[untyped-decorator,unused-ignore]
def _json_kind_spark(value: str) -> str:  # type: ignore[empty-body]
    """On Spark: a Python function the import registers in its session
    (``spark_ingest.register_functions``)."""


def _nfc_python(value: ir.StringValue) -> ir.StringValue:
    result: ir.StringValue = _nfc_spark(value)
    return result


DUCKDB = Engine("duckdb")
PYSPARK = Engine("pyspark")


def engine_of(backend: Any) -> Engine:
    """The :class:`Engine` of an Ibis backend (``duckdb`` or ``pyspark``)."""
    name = str(getattr(backend, "name", ""))
    if name not in ("duckdb", "pyspark"):
        raise ValueError(f"the import rules run on DuckDB or Spark, not {name!r}")
    return Engine(name)


def trimmed(value: ir.StringValue) -> ir.StringValue:
    """The value without surrounding spaces, empty text as NULL (as the DuckDB import does)."""
    result: ir.StringValue = value.re_replace(r"^ +| +\z", "").nullif("")
    return result


def canonical_id(value: ir.StringValue, engine: Engine) -> ir.StringValue:
    """``kit.ids.canonical_id``'s normalisation (trim the id blanks, NFC; empty → NULL)."""
    plain = value.re_search(_PLAIN)
    stripped = engine.nfc(value.re_replace(_STRIP, "")).nullif("")
    result: ir.StringValue = ibis.cases((plain, value), else_=stripped)
    return result


def _cases(*pairs: tuple[ir.BooleanValue, str]) -> ir.StringValue:
    if not pairs:
        return ibis.null(dt.string)
    result: ir.StringValue = ibis.cases(*((cond, ibis.literal(reason)) for cond, reason in pairs),
                                        else_=ibis.null(dt.string))
    return result


def _pad(part: ir.StringValue, width: int) -> ir.StringValue:
    return part.lpad(width, "0")


def _datetime(raw: ir.StringValue, zone: str, engine: Engine) -> tuple[ir.TimestampValue, ir.DateValue]:
    """(UTC time, shop-local date) of a date or date-time text, NULL when it does not parse."""
    part = [raw.re_extract(_DATETIME, i).nullif("") for i in range(1, 9)]
    year, month, day, hour, minute, second, fraction, offset = part
    text = (year + "-" + _pad(month, 2) + "-" + _pad(day, 2) + " "
            + _pad(hour.fill_null("0"), 2) + ":" + _pad(minute.fill_null("0"), 2) + ":"
            + _pad(second.fill_null("0"), 2) + "."
            + fraction.fill_null("").rpad(6, "0").substr(0, 6))
    wall = ibis.cases((raw.re_search(_DATETIME), text), else_=ibis.null(dt.string)).try_cast(dt.Timestamp())
    sign = ibis.cases((offset.startswith("-"), -1), else_=1)
    digits = offset.re_replace("[^0-9]", "")
    minutes = ibis.cases(
        (offset == "Z", 0),
        else_=sign * (digits.substr(0, 2).cast("int64") * 60
                      + digits.substr(2, 2).nullif("").cast("int64").fill_null(0)),
    )
    utc = ibis.cases(
        (offset.isnull(), engine.to_utc(wall, zone)),
        else_=wall - minutes.as_interval("m"),
    )
    local = ibis.cases((offset.isnull(), wall), else_=engine.from_utc(utc, zone))
    return utc, local.date()


@dataclass(frozen=True)
class ColumnRule:
    """One input column's rule: typed output columns and the first reason it is refused."""

    typed: dict[str, ir.Value]
    reason: ir.StringValue


def helpers(raw: ir.StringValue, column: Input, shop: ShopSettings, engine: Engine) -> dict[str, ir.Value]:
    """Values a rule uses more than once, computed in a step of their own (``__<column>_<what>``)
    so that no engine's plan repeats them: a date-time's UTC time and local date, an id's
    canonical form."""
    if column.kind == "datetime":
        utc, local = _datetime(raw, shop.timezone, engine)
        return {f"__{column.name}_utc": utc, f"__{column.name}_local": local}
    if column.kind == "id":
        return {f"__{column.name}_id": canonical_id(raw, engine)}
    return {}


def column_rule(raw: ir.StringValue, column: Input, shop: ShopSettings, engine: Engine,
                parsed: ir.Table | None = None) -> ColumnRule:
    """The rule for ``column`` applied to ``raw`` (already :func:`trimmed`); ``parsed`` holds
    the column's :func:`helpers` when they were computed in a step before."""
    name = column.name
    checks: list[tuple[ir.BooleanValue, str]] = []
    typed: dict[str, ir.Value]
    if column.kind == "money":
        exp = currency_exponent(shop.currency)
        amount = raw.try_cast(dt.Decimal(18, exp))
        checks = [
            (~raw.re_search(_NUMBER), "not a plain decimal number in major units (e.g. 12.30)"),
            (raw.re_extract(r"^[+-]?0*([0-9]*)", 1).length() > 13, "amount too large"),
            (~raw.re_search(f"^[^.]*([.][0-9]{{0,{exp}}}0*)?\\z"),
             f"more than {exp} decimal places for {shop.currency}"),
            (amount < 0, "must not be negative"),
        ]
        typed = {name: (amount * 10**exp).cast("int64")}
    elif column.kind == "int":
        number = raw.re_extract(r"^([+-]?[0-9]+)", 1).try_cast("int64")
        checks = [(~raw.re_search(_WHOLE), "not a whole number"), (number.isnull(), "number too large")]
        if column.min_value is not None:
            checks.append((number < column.min_value, f"must be at least {column.min_value}"))
        if column.max_value is not None:
            checks.append((number > column.max_value, f"must be at most {column.max_value}"))
        typed = {name: number}
    elif column.kind == "datetime":
        if parsed is not None:
            utc, local = parsed[f"__{name}_utc"], parsed[f"__{name}_local"]
        else:
            utc, local = _datetime(raw, shop.timezone, engine)
        checks = [
            (utc.isnull(), "not an ISO 8601 date or date-time (e.g. 2024-03-05 14:07:11+08:00)"),
            (~utc.between(_LOW, _HIGH), "year out of range 1970–2100"),
        ]
        typed = {name: utc, name + "__local_date": local}
    elif column.kind == "date":
        parts = [raw.re_extract(_DATE + r"\z", i) for i in (1, 2, 3)]
        text = parts[0] + "-" + _pad(parts[1], 2) + "-" + _pad(parts[2], 2)
        value = ibis.cases((raw.re_search(_DATE + r"\z"), text), else_=ibis.null(dt.string)).try_cast(dt.date)
        checks = [(value.isnull(), "not an ISO date (YYYY-MM-DD)")]
        typed = {name: value}
    elif column.kind == "bool":
        checks = [(~raw.lower().isin(_TRUE + _FALSE), "not true/false (or yes/no, 1/0)")]
        typed = {name: raw.lower().isin(_TRUE)}
    elif column.kind == "status":
        checks = [(~raw.lower().isin(ORDER_STATUSES), "not one of " + ", ".join(ORDER_STATUSES))]
        typed = {name: raw.lower()}
    elif column.kind == "json":
        kind = engine.json_kind(raw)
        checks = [(kind == "invalid", "not valid JSON"), (kind != "object", "must be a JSON object")]
        typed = {name: raw}
    elif name == "currency":
        checks = [(raw.upper() != shop.currency,
                   f"currency differs from the shop currency {shop.currency}")]
        typed = {name: raw.upper()}
    elif name == "channel":
        typed = {name: raw.lower()}
    elif column.kind == "id":
        value = parsed[f"__{name}_id"] if parsed is not None else canonical_id(raw, engine)
        checks = [(value.isnull(), MISSING)] if column.required else []
        checks.append((~value.re_search(_PLAIN) & value.re_search(ids._UNUSABLE_RE),
                       "contains a control or invisible character"))
        typed = {name: value}
    else:  # text
        typed = {name: raw}
    reason = ibis.cases((raw.isnull(), ibis.literal(MISSING) if column.required else ibis.null(dt.string)),
                        *((c, ibis.literal(r)) for c, r in checks), else_=ibis.null(dt.string))
    return ColumnRule(typed, reason)


def cross_checks(table: Table) -> list[tuple[str, str, str]]:
    """Checks across columns of one row: (column blamed, SQL-free condition name, reason)."""
    if table.name == "events":
        return [("customer_id", "customer_or_anonymous", "either customer_id or anonymous_id is required")]
    if table.name == "order_lines":
        return [("refunded_amount", "refund_le_line", "refunded_amount exceeds line_total")]
    if table.name == "orders":
        return [("refunded_amount", "refund_le_total", "refunded_amount exceeds total + shipping")]
    if table.name == "inventory":
        return [("on_hand", "inventory_one_of", INVENTORY_ONE_OF)]
    return []


def _cross_condition(t: ir.Table, check: str) -> ir.BooleanValue:
    result: ir.BooleanValue
    if check == "customer_or_anonymous":
        result = t.customer_id.isnull() & t.anonymous_id.isnull()
    elif check == "refund_le_line":
        result = t.refunded_amount > t.line_total
    elif check == "inventory_one_of":
        result = t.on_hand.isnull() == t.received.isnull()
    else:
        result = t.refunded_amount > t.total + t.shipping.fill_null(0)
    return result


def kept_raw(table: Table) -> list[str]:
    """Columns whose text as written is kept for quarantine entries (``_r_<column>``)."""
    blamed = {name for name, _, _ in cross_checks(table)}
    return [c.name for c in table.inputs
            if c.kind not in ("id", "text") or c.name == "currency" or c.name in blamed]


def validate(raw: ir.Table, table: Table, shop: ShopSettings, engine: Engine) -> ir.Table:
    """Typed rows with the first reason for every value (``_e_<column>``), refused values as
    written (``_r_<column>``) and ``_ok`` (no value refused): ``ingest``'s ``gw_typed_0``."""
    clean = raw.select("_file", "_file_idx", "_row",
                       **{c.name: trimmed(raw[c.name].cast("string")) for c in table.inputs})
    extra: dict[str, ir.Value] = {}
    for column in table.inputs:
        extra.update(helpers(clean[column.name], column, shop, engine))
    clean = clean.mutate(**extra) if extra else clean
    items: dict[str, ir.Value] = {}
    errors: dict[str, ir.Value] = {}
    for column in table.inputs:
        rule = column_rule(clean[column.name], column, shop, engine, clean)
        items.update(rule.typed)
        errors["_e_" + column.name] = rule.reason
    blamed = {name for name, _, _ in cross_checks(table)}
    written: dict[str, ir.Value] = {}
    for name in kept_raw(table):
        written["_r_" + name] = (clean[name] if name in blamed
                                 else ibis.cases((errors["_e_" + name].notnull(), clean[name]),
                                                 else_=ibis.null(dt.string)))
    ok = ibis.and_(*(e.isnull() for e in errors.values()))
    return clean.select("_file", "_file_idx", "_row", **items, **errors, **written, _ok=ok)


def refusals(typed: ir.Table, table: Table) -> ir.Table:
    """Quarantine entries of :func:`validate`'s rows: one per refused value, then the cross-column
    checks of rows whose values were all accepted: (``_file``, ``_row``, ``column_name``,
    ``value``, ``reason``)."""
    kept = set(kept_raw(table))
    parts: list[ir.Table] = []
    for column in table.inputs:
        value = typed["_r_" + column.name] if column.name in kept else typed[column.name].cast("string")
        parts.append(typed.filter(typed["_e_" + column.name].notnull()).select(
            _file=typed._file, _row=typed._row, column_name=ibis.literal(column.name),
            value=value.cast("string"), reason=typed["_e_" + column.name]))
    for name, check, reason in cross_checks(table):
        rows = typed.filter(typed._ok & _cross_condition(typed, check))
        parts.append(rows.select(_file=rows._file, _row=rows._row, column_name=ibis.literal(name),
                                 value=rows["_r_" + name].cast("string"), reason=ibis.literal(reason)))
    return ibis.union(*parts, distinct=False)


def latest_file_rows(typed: ir.Table) -> ir.Table:
    """The rows of the latest file mentioning each order (older mentions are superseded)."""
    with_max = typed.mutate(_f=typed._file_idx.max().over(group_by="order_id"))
    return with_max.filter(with_max._file_idx == with_max._f).drop("_f")


def hold_back_whole_orders(typed: ir.Table, bad: ir.Table, several_files: bool) -> ir.Table:
    """More quarantine entries for order lines: orders whose lines disagree on the customer or
    the time, and every other line of an order with a refused line (``ingest``'s rules)."""
    latest = latest_file_rows(typed) if several_files else typed
    good = latest.filter(latest._ok)
    parts: list[ir.Table] = []
    for column in ("customer_id", "ordered_at"):
        per = good.group_by("order_id").aggregate(n=good[column].nunique())
        conflicted = per.filter(per.n > 1).select("order_id")
        lines = latest.semi_join(conflicted, "order_id")
        agg = lines.group_by("order_id").aggregate(
            _file=lines._file.arbitrary(), _row=lines._row.min(),
            value=lines[column].cast("string").collect(distinct=True))
        parts.append(agg.select(
            "_file", "_row", column_name=ibis.literal(column),
            value=agg.value.sort().join(" | "),
            reason=ibis.literal("lines of order ") + agg.order_id + f" disagree on {column}"))
    conflicts = ibis.union(*parts, distinct=False)
    bad_all = ibis.union(bad, conflicts, distinct=False)
    refused = bad_all.select("_file", "_row").distinct()
    firsts = (latest.filter(latest.order_id.notnull())
              .join(refused, ["_file", "_row"])
              .group_by("order_id").aggregate(first_bad=lambda t: t._row.min()))
    held = latest.join(firsts, "order_id").anti_join(refused, ["_file", "_row"])
    held_entries = held.select(
        "_file", "_row", column_name=ibis.literal("order_id"), value=held.order_id,
        reason=ibis.literal("order ") + held.order_id + " held back: its row "
        + held.first_bad.cast("string") + " was refused")
    return ibis.union(conflicts, held_entries, distinct=False)
