"""Imports on Spark: the rules of ``warehouse/rules.py`` run where the warehouse is.

Used by ``ingest.import_files`` whenever the warehouse is Spark and the files are generic CSV, for
every table (customers, products, orders, order lines, events, ad spend, reviews): nothing of the
files or of the stored tables passes through this process's memory, so a history bigger than one
machine can be imported.

1. **Read.** Spark reads each CSV file with every column as text (header names matched
   case-insensitively, as on DuckDB). Rows are numbered within their file from Spark's
   partition ids (a count per partition, then offsets): no window over the whole file. A row the
   CSV reader cannot split into the header's fields is quarantined whole, as on DuckDB.
2. **Validate and quarantine** with the Ibis rules (``rules.validate``, ``rules.refusals`` and,
   for order lines, ``rules.hold_back_whole_orders``): the same checks and reasons as on DuckDB.
3. **Assemble** the stored rows (Spark SQL, as ``ingest_merge.assemble``): for order lines the lines
   and the orders they make; for the other tables one row per key, the last one written.
4. **Merge** by key: an incoming row equal to the stored one in every stored column (for an
   order, also in its set of lines) is unchanged; else updated (or new). Orders committed by the
   checkout stay as they are unless the checkout imports them. Content is compared, not
   ``_row_hash``: the two engines' hash functions differ, and a warehouse may hold rows written
   by either.
5. **Publish** per partition (``lake.commit_partitions``): partitions holding an updated row (or
   an updated order's lines, or the files' earlier quarantine entries) are rewritten without
   them; new rows go in one write, partitioned like the lake (orders and events by shop-local
   month, lines by a hash bucket of ``order_id`` — Spark's hash, so a line's bucket may differ
   from DuckDB's: readers read every bucket and a DuckDB-side publish rewrites whatever bucket a
   replaced line was in). Another writer that changed one of these partitions meanwhile makes
   the import fail with ``SnapshotConflictError`` (nothing published; run it again).

Limits (DuckDB validates these for a Spark warehouse, then the lake publishes per partition):
other formats (Parquet, JSON Lines, TSV, Shopify, Taobao), rows held in memory
(``ingest.import_rows``: the checkout's facts, ad-spend layouts), and a CSV field holding a
quoted line break (Spark reads a file in splits, line by line: such a row is quarantined as
unreadable here, where DuckDB reads it). ``_row_hash`` of rows written here is Spark's
``xxhash64`` of the stored columns: the first DuckDB-side import of an identical row after a
Spark one counts it updated (and stores it again, identically).
"""

from __future__ import annotations

import csv
import shutil
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from growthwheel.config import Settings
from growthwheel.errors import MissingColumnsError
from growthwheel.keys import k
from growthwheel.warehouse import lake, rules
from growthwheel.warehouse import spark as gw_spark
from growthwheel.warehouse.db import IMPORTS_TABLE, QUARANTINE_TABLE
from growthwheel.warehouse.file_checks import UnreadableFileError
from growthwheel.warehouse.schema import (
    CHECKOUT_SOURCE,
    DEFAULT_LOCATION,
    IMPORT_SOURCE,
    ORDER_LINES,
    ORDERS,
    Table,
)

#: Partition of a stored row, as Spark SQL (see ``lake.PARTITION_SQL``).
PARTITION_SPARK: dict[str, str] = {
    "events": "coalesce(date_format(event_date, 'yyyy-MM'), 'none')",
    "orders": "coalesce(date_format(order_date, 'yyyy-MM'), 'none')",
    "order_lines": "concat('b', lpad(CAST(pmod(hash(order_id), 16) AS STRING), 2, '0'))",
    QUARANTINE_TABLE: "coalesce(date_format(quarantined_at, 'yyyy-MM'), 'none')",
    IMPORTS_TABLE: "coalesce(date_format(finished_at, 'yyyy-MM'), 'none')",
}
_MASK = (1 << 33) - 1
#: File suffixes read here (TSV and the other formats: DuckDB).
SUFFIXES = (".csv", ".txt")


def supported(cfg: Settings, table: Table, fmt: str, files: Sequence[Path]) -> bool:
    """Whether this import runs on Spark (else DuckDB validates and the lake publishes): a Spark
    warehouse and generic CSV files, for any table."""
    return (cfg.warehouse == "spark" and fmt == "generic" and bool(files)
            and all(p.suffix.lower() in SUFFIXES for p in files))


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableFileError(f"{path}: cannot read as csv: {exc}", path,
                                  k("import_file.unreadable.csv")) from exc


def _read(spark: Any, table: Table, path: Path, file_idx: int,
          ignored: dict[str, list[str]]) -> tuple[Any, int]:
    """One CSV file as text columns named as ``table``'s inputs, with ``_file``, ``_file_idx``,
    ``_row`` and ``_corrupt`` (the raw line of a row the reader could not split); and the
    number of fields its header names."""
    from pyspark.sql import types as st

    header = _header(path)
    by_lower = {h.strip().lower(): f"c{i}" for i, h in reversed(list(enumerate(header)))}
    missing = [c for c in table.required if c not in by_lower]
    if missing:
        raise MissingColumnsError(
            f"{path}: missing required column(s) {', '.join(missing)} for table "
            f"{table.name}; found {', '.join(header) or 'no columns'}", str(path), missing, header)
    known = {c.name for c in table.inputs}
    extra = [h for h in header if h.strip().lower() not in known]
    if extra:
        ignored[str(path)] = extra
    fields = [st.StructField(f"c{i}", st.StringType(), True) for i in range(len(header))]
    schema = st.StructType([*fields, st.StructField("_corrupt", st.StringType(), True)])
    source = str(path.resolve())
    df = (spark.read.schema(schema).option("header", "true").option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", "_corrupt").option("encoding", "UTF-8")
          .option("escape", '"')  # RFC 4180, as DuckDB: "" inside quotes is one quote
          .option("multiLine", "false").csv(source))
    df = df.selectExpr("*", "spark_partition_id() AS _pid", "monotonically_increasing_id() AS _mid")
    counts = sorted((int(r[0]), int(r[1])) for r in df.groupBy("_pid").count().collect())
    offsets, total = [], 0
    for pid, n in counts:
        offsets.append(f"WHEN {pid} THEN {total}")
        total += n
    start = f"CASE _pid {' '.join(offsets)} END" if offsets else "0"
    cols = [f"{by_lower[c.name]} AS {_q(c.name)}" if c.name in by_lower
            else f"CAST(NULL AS STRING) AS {_q(c.name)}" for c in table.inputs]
    frame = df.selectExpr(
        *cols, f"{_lit(str(path))} AS _file", f"CAST({file_idx} AS INT) AS _file_idx",
        f"CAST({start} + (_mid & {_MASK}) + 1 AS BIGINT) AS _row", "_corrupt",
        f"CAST({len(header)} AS INT) AS _fields")
    return frame, len(header)


def register_functions(spark: Any) -> None:
    """Register the functions the rules and the assembly need that Spark SQL lacks, as plain
    Python functions pickled by value with nothing but the standard library (executors need
    Python, not Growthwheel): ``gw_nfc`` (Unicode NFC), ``gw_json_kind`` (``object``, ``other``
    or ``invalid``, as DuckDB's ``json_valid`` / ``json_type`` decide), ``gw_url_decode``
    (percent-decoding as DuckDB's ``url_decode``: ``+`` kept, a stray ``%`` kept) and
    ``gw_csv_refusal`` (why DuckDB's CSV reader refuses a row Spark's flagged, or NULL)."""
    import json
    import unicodedata
    from urllib.parse import unquote

    def nfc(value: str | None) -> str | None:
        return None if value is None else unicodedata.normalize("NFC", value)

    def json_kind(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = json.loads(value)
        except ValueError:
            return "invalid"
        return "object" if isinstance(parsed, dict) else "other"

    def url_decode(value: str | None) -> str | None:
        return None if value is None else unquote(value, errors="replace")

    def csv_refusal(line: str | None, expected: int) -> str | None:
        # Spark flags any row whose field count is not the header's; DuckDB reads a row whose
        # extra fields are all empty and words its refusals so (the first count it found).
        if line is None:
            return None
        import csv

        found = next(csv.reader([line]), [])
        if len(found) > expected and not any(found[expected:]):
            return None
        count = expected + 1 if len(found) > expected else len(found)
        return f"unreadable row: Expected Number of Columns: {expected} Found: {count}"

    from pyspark.sql.types import StringType

    # A type object, not "string": Spark Connect parses a DDL string through an active session.
    for name, function in (("gw_nfc", nfc), ("gw_json_kind", json_kind),
                           ("gw_url_decode", url_decode), ("gw_csv_refusal", csv_refusal)):
        spark.udf.register(name, function, StringType())


def _frame(backend: Any, expr: Any) -> Any:
    """The Spark DataFrame of an Ibis expression (its Python UDFs registered first)."""
    backend._register_udfs(expr)
    return backend._session.sql(backend.compile(expr))


def _checkpoint(spark: Any, cfg: Settings, frame: Any, scratch: str, name: str) -> Any:
    """``frame`` written to Parquet under ``spark_dir/.tmp`` and read back: later steps start
    from the files (a short plan, nothing held in memory)."""
    rel = f".tmp/{scratch}/{name}"
    frame.write.mode("overwrite").parquet(gw_spark.spark_path(cfg, rel))
    return spark.read.parquet(gw_spark.spark_path(cfg, rel))


def _typed_expr(column: str, sql_type: str) -> str:
    spark_type = gw_spark._spark_type(sql_type).simpleString()
    return f"CAST({_q(column)} AS {spark_type}) AS {_q(column)}"


def import_table(cfg: Settings, table: Table, files: list[Path], shown: list[str],
                 rename: dict[str, str] | None, import_id: str, result: Any,
                 origin: str = IMPORT_SOURCE) -> None:
    """Import generic CSV ``files`` into ``table`` on Spark, filling ``result`` (an
    ``ingest.ImportResult``); see the module docstring."""
    shop = cfg.shop()
    spark = gw_spark.new_session(cfg)
    backend = gw_spark.ibis_backend(spark)
    register_functions(spark)
    base = lake.read_pointer(cfg)
    several = len(files) > 1
    ignored: dict[str, list[str]] = {}
    read = [_read(spark, table, path, i, ignored) for i, path in enumerate(files)]
    raw = read[0][0]
    for frame, _ in read[1:]:
        raw = raw.unionByName(frame)
    raw = raw.persist()
    odd = raw
    scratch = uuid.uuid4().hex[:12]
    try:
        result.ignored_columns = {(rename or {}).get(k, k): v for k, v in ignored.items()}
        # Rows Spark's reader flagged (their field count is not the header's): DuckDB reads
        # those whose extra fields are all empty, the others are quarantined whole.
        odd = raw.filter("_corrupt IS NOT NULL").selectExpr(
            "*", "gw_csv_refusal(_corrupt, _fields) AS _why").persist()
        (raw.filter("_corrupt IS NULL").unionByName(odd.filter("_why IS NULL").drop("_why"))
         .drop("_corrupt", "_fields").createOrReplaceTempView("gw_raw"))
        odd.filter("_why IS NOT NULL").createOrReplaceTempView("gw_unreadable")

        typed = rules.validate(backend.table("gw_raw"), table, shop, rules.PYSPARK)
        typed_df = _checkpoint(spark, cfg, _frame(backend, typed), scratch, "typed")
        typed_df.createOrReplaceTempView("gw_typed_0")
        typed_t = backend.table("gw_typed_0")
        bad_df = _checkpoint(spark, cfg, _frame(backend, rules.refusals(typed_t, table)), scratch, "bad")
        bad_df.createOrReplaceTempView("gw_bad_0")
        unreadable = spark.sql(
            "SELECT _file, _row, '(row)' AS column_name, CASE WHEN length(_corrupt) > "
            f"{generic_max_raw()} THEN concat(substring(_corrupt, 1, {generic_max_raw() - 1}), '…') "
            "ELSE _corrupt END AS value, _why AS reason FROM gw_unreadable")
        every = bad_df.unionByName(unreadable)
        if table.name == ORDER_LINES.name:
            held = rules.hold_back_whole_orders(typed_t, backend.table("gw_bad_0"), several)
            every = every.unionByName(_frame(backend, held))
        all_bad = _checkpoint(spark, cfg, every, scratch, "all_bad")
        all_bad.createOrReplaceTempView("gw_bad")
        spark.sql("SELECT * FROM gw_typed_0 t WHERE NOT EXISTS (SELECT 1 FROM gw_bad b "
                  "WHERE b._file = t._file AND b._row = t._row)").createOrReplaceTempView("gw_typed")

        if table.name == ORDER_LINES.name:
            _assemble_lines(spark, several, shop.currency, origin)
            counts = _merge_orders(spark, cfg, base, origin)
        else:
            _assemble(spark, table, shop.currency, origin)
            counts = _merge(spark, cfg, base, table, origin)
        now = datetime.now(UTC).replace(tzinfo=None)
        result.rows_read = int(typed_df.count()) + int(unreadable.count())
        result.rows_quarantined = int(all_bad.select("_file", "_row").distinct().count())
        result.tables = counts
        if table.name != ORDER_LINES.name:
            main = counts[table.name]
            result.superseded = (result.rows_read - result.rows_quarantined
                                 - main.inserted - main.updated - main.unchanged)
        _publish(spark, cfg, base, table, result, import_id, shown, rename, now)
    finally:
        odd.unpersist()
        raw.unpersist()
        # Its own scratch only: ``.tmp`` stays, DuckDB connections spill beneath it (lake.py).
        shutil.rmtree(cfg.spark_dir / ".tmp" / scratch, ignore_errors=True)


def generic_max_raw() -> int:
    """Longest raw row kept in quarantine (``ingest_validate.MAX_RAW_CHARS``)."""
    from growthwheel.warehouse.ingest_validate import MAX_RAW_CHARS

    return MAX_RAW_CHARS


def _utm_from(column: str, url: str) -> str:
    """``ingest_merge._utm_from`` in Spark SQL: a UTM parameter read from the URL when not given."""
    return (f"coalesce({column}, NULLIF(gw_url_decode(regexp_extract({url}, "
            f"'[?&]{column}=([^&#]*)', 1)), ''))")


def _assemble(spark: Any, table: Table, currency: str, origin: str) -> None:
    """``gw_typed`` → ``gw_new`` (the stored columns, one row per key: the last written), as
    ``ingest_merge.assemble`` for every table but order lines."""
    cur = _lit(currency)
    channel = "coalesce(channel, lower(utm_source), 'direct')"
    derived: dict[str, str] = {}
    if table.name == "customers":
        derived = {"channel": channel}
    elif table.name == "products":
        derived = {"currency": f"coalesce(currency, {cur})"}
    elif table.name == "orders":
        refunded = "coalesce(refunded_amount, 0)"
        derived = {
            "order_date": "ordered_at__local_date", "currency": f"coalesce(currency, {cur})",
            "channel": channel, "gross_amount": "total + coalesce(discount, 0)",
            "discount_amount": "coalesce(discount, 0)", "total_amount": "total",
            "shipping_amount": "coalesce(shipping, 0)", "refunded_amount": refunded,
            "status": (f"coalesce(status, CASE WHEN {refunded} > 0 AND {refunded} >= total THEN "
                       f"'refunded' WHEN {refunded} > 0 THEN 'partially_refunded' ELSE 'paid' END)"),
            "source": _lit(origin),
        }
    elif table.name == "events":
        derived = {c: _utm_from(c, "url") for c in ("utm_source", "utm_medium", "utm_campaign")}
        derived["event_date"] = "occurred_at__local_date"
    elif table.name == "ad_spend":
        derived = {"channel": "lower(channel)"}
    elif table.name == "reviews":
        derived = {"review_date": "created_at__local_date"}
    elif table.name == "inventory":
        derived = {"kind": "CASE WHEN received IS NULL THEN 'snapshot' ELSE 'receipt' END",
                   "location": f"coalesce(location, {_lit(DEFAULT_LOCATION)})"}
    items = [f"CAST({derived.get(c.name, _q(c.name))} AS {gw_spark._spark_type(c.sql_type).simpleString()}) "
             f"AS {_q(c.name)}" for c in table.stored]
    keys = ", ".join(_q(k) for k in table.key)
    names = ", ".join(_q(c.name) for c in table.stored)
    # One row per key of the stored values (``ad_spend``'s channel is lower-cased first).
    spark.sql(
        f"SELECT {names} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _file_idx "
        f"DESC, _row DESC) AS _rn FROM (SELECT {', '.join(items)}, _file_idx, _row FROM gw_typed)) "
        "WHERE _rn = 1"
    ).createOrReplaceTempView("gw_new")


def _assemble_lines(spark: Any, several: bool, currency: str, origin: str) -> None:
    """``gw_typed`` → ``gw_lines`` (stored line columns) and ``gw_new_orders`` (stored order
    columns), as ``ingest_merge._assemble_lines``."""
    source = "gw_typed"
    if several:
        source = ("(SELECT * FROM (SELECT *, max(_file_idx) OVER (PARTITION BY order_id) AS _f "
                  "FROM gw_typed) WHERE _file_idx = _f)")
    discount = ("coalesce(discount, CASE WHEN unit_price IS NOT NULL "
                "THEN greatest(unit_price * quantity - line_total, 0) ELSE 0 END)")
    inputs = [c.name for c in ORDER_LINES.inputs if c.name not in ("refunded_amount", "discount")]
    spark.sql(
        f"SELECT _file_idx, _row, ordered_at__local_date, {', '.join(_q(c) for c in inputs)}, "
        f"{discount} AS discount_amount, coalesce(refunded_amount, 0) AS refunded_amount, "
        "row_number() OVER (PARTITION BY order_id ORDER BY _file_idx, _row) AS line_no "
        f"FROM {source}").persist().createOrReplaceTempView("gw_lines")

    def first(column: str) -> str:
        return (f"min(CASE WHEN {column} IS NOT NULL THEN named_struct('r', _row, 'v', {column}) "
                "END).v")

    refunded, total = "sum(refunded_amount)", "sum(line_total)"
    spark.sql(
        "SELECT order_id, any_value(customer_id) AS customer_id, any_value(ordered_at) AS ordered_at, "
        "any_value(ordered_at__local_date) AS order_date, max(paid_at) AS paid_at, "
        f"coalesce({first('status')}, CASE WHEN {refunded} > 0 AND {refunded} >= {total} "
        f"THEN 'refunded' WHEN {refunded} > 0 THEN 'partially_refunded' ELSE 'paid' END) AS status, "
        f"{_lit(currency)} AS currency, "
        f"coalesce({first('channel')}, lower({first('utm_source')}), 'direct') AS channel, "
        f"{first('utm_source')} AS utm_source, {first('utm_medium')} AS utm_medium, "
        f"{first('utm_campaign')} AS utm_campaign, {first('coupon_code')} AS coupon_code, "
        f"sum(quantity) AS item_count, {total} + sum(discount_amount) AS gross_amount, "
        f"sum(discount_amount) AS discount_amount, {total} AS total_amount, "
        f"coalesce(max(shipping), 0) AS shipping_amount, {refunded} AS refunded_amount, "
        f"{first('points_used')} AS points_used, {first('points_earned')} AS points_earned, "
        f"{_lit(origin)} AS source FROM gw_lines GROUP BY order_id"
    ).selectExpr(*(_typed_expr(c.name, c.sql_type) for c in ORDERS.stored)
                 ).persist().createOrReplaceTempView("gw_new_orders")
    spark.table("gw_lines").selectExpr(*(_typed_expr(c.name, c.sql_type) for c in ORDER_LINES.stored)
                                       ).createOrReplaceTempView("gw_new_lines")


def _stored(spark: Any, cfg: Settings, snapshot: lake.Snapshot, name: str) -> Any:
    """The stored table with each row's file (``_path``, relative to ``spark_dir``)."""
    files = snapshot.files(name)
    columns = lake.table_columns(name)
    if not files:
        from pyspark.sql import types as st

        schema = st.StructType([st.StructField(c, gw_spark._spark_type(t), True) for c, t in columns]
                               + [st.StructField("_path", st.StringType(), True)])
        return spark.createDataFrame([], schema)
    df = spark.read.option("mergeSchema", "true").parquet(*(gw_spark.spark_path(cfg, f) for f in files))
    present = set(df.columns)
    by_path = " ".join(f"WHEN {_lit(gw_spark.spark_path(cfg, f))} THEN {_lit(f)}" for f in files)
    return df.selectExpr(
        *(f"CAST({_q(c)} AS {gw_spark._spark_type(t).simpleString()}) AS {_q(c)}" if c in present
          else f"CAST(NULL AS {gw_spark._spark_type(t).simpleString()}) AS {_q(c)}" for c, t in columns),
        f"CASE regexp_replace(_metadata.file_path, '^file:(//)?', '') {by_path} END AS _path")


def _key_match(table: Table, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{_q(k)} <=> {right}.{_q(k)}" for k in table.key)


def _merge(spark: Any, cfg: Settings, base: lake.Snapshot, table: Table, origin: str) -> dict[str, Any]:
    """Classify the incoming rows of a keyed table (``gw_cls``: the key and ``_cls``) and count."""
    from growthwheel.warehouse.ingest_merge import TableCounts

    _stored(spark, cfg, base, table.name).createOrReplaceTempView("gw_stored")
    same = " AND ".join(f"s.{_q(c)} <=> n.{_q(c)}" for c in table.stored_names)
    kept = "false"
    if table.name == ORDERS.name and origin != CHECKOUT_SOURCE:
        kept = f"coalesce(s.source = {_lit(CHECKOUT_SOURCE)}, false)"
    keys = ", ".join(f"n.{_q(k)}" for k in table.key)
    spark.sql(
        f"SELECT {keys}, CASE WHEN s._hit IS NULL THEN 'new' WHEN {kept} OR ({same}) THEN 'unchanged' "
        "ELSE 'updated' END AS _cls FROM gw_new n LEFT JOIN (SELECT *, true AS _hit FROM gw_stored) s "
        f"ON {_key_match(table, 's', 'n')}"
    ).persist().createOrReplaceTempView("gw_cls")
    by = {str(r[0]): int(r[1]) for r in spark.sql("SELECT _cls, count(*) FROM gw_cls GROUP BY 1").collect()}
    return {table.name: TableCounts(inserted=by.get("new", 0), updated=by.get("updated", 0),
                                    unchanged=by.get("unchanged", 0))}


def _merge_orders(spark: Any, cfg: Settings, base: lake.Snapshot, origin: str) -> dict[str, Any]:
    """Classify the incoming orders of a lines import (``gw_cls``: order_id, _cls) and count."""
    from growthwheel.warehouse.ingest_merge import TableCounts

    _stored(spark, cfg, base, "orders").createOrReplaceTempView("gw_stored_orders")
    _stored(spark, cfg, base, "order_lines").createOrReplaceTempView("gw_stored_lines")
    same_order = " AND ".join(f"s.{_q(c)} <=> n.{_q(c)}" for c in ORDERS.stored_names)
    same_line = " AND ".join(f"s.{_q(c)} <=> n.{_q(c)}" for c in ORDER_LINES.stored_names)
    # Orders whose stored lines differ from the incoming ones (a line changed, added or gone).
    spark.sql(
        "SELECT DISTINCT coalesce(n.order_id, s.order_id) AS order_id FROM "
        "(SELECT * FROM gw_stored_lines WHERE order_id IN (SELECT order_id FROM gw_new_orders)) s "
        "FULL OUTER JOIN gw_new_lines n ON s.order_id = n.order_id AND s.line_no = n.line_no "
        f"WHERE NOT ({same_line}) OR s.order_id IS NULL OR n.order_id IS NULL"
    ).createOrReplaceTempView("gw_lines_moved")
    kept = "false" if origin == CHECKOUT_SOURCE else f"coalesce(s.source = {_lit(CHECKOUT_SOURCE)}, false)"
    spark.sql(
        "SELECT n.order_id, CASE WHEN s.order_id IS NULL THEN 'new' "
        f"WHEN {kept} OR (({same_order}) AND m.order_id IS NULL) THEN 'unchanged' "
        "ELSE 'updated' END AS _cls FROM gw_new_orders n "
        "LEFT JOIN gw_stored_orders s ON s.order_id = n.order_id "
        "LEFT JOIN gw_lines_moved m ON m.order_id = n.order_id"
    ).persist().createOrReplaceTempView("gw_cls")
    by = {str(r[0]): int(r[1]) for r in spark.sql("SELECT _cls, count(*) FROM gw_cls GROUP BY 1").collect()}
    lines = {bool(r[0]): int(r[1]) for r in spark.sql(
        "SELECT c._cls = 'unchanged', count(*) FROM gw_new_lines l JOIN gw_cls c USING (order_id) "
        "GROUP BY 1").collect()}
    return {
        "orders": TableCounts(inserted=by.get("new", 0), updated=by.get("updated", 0),
                              unchanged=by.get("unchanged", 0)),
        "order_lines": TableCounts(inserted=lines.get(False, 0), unchanged=lines.get(True, 0)),
    }


def _with_bookkeeping(spark: Any, view: str, table: Table, import_id: str) -> Any:
    """The rows of ``view`` whose key was classified new or updated, with ``_row_hash`` and
    ``_import_id``."""
    cols = ", ".join(_q(c) for c in table.stored_names)
    # Order lines follow their order: the key classified is order_id.
    key_table = ORDERS if table.name == ORDER_LINES.name else table
    return spark.sql(
        f"SELECT {cols}, CAST(CASE WHEN h < 0 THEN h + 18446744073709551616 ELSE h END AS DECIMAL(20, 0)) "
        f"AS _row_hash, {_lit(import_id)} AS _import_id FROM (SELECT *, CAST(xxhash64({cols}) AS "
        f"DECIMAL(20, 0)) AS h FROM {view} n WHERE EXISTS (SELECT 1 FROM gw_cls c WHERE "
        f"c._cls <> 'unchanged' AND {_key_match(key_table, 'c', 'n')}))")


def _rewrite(spark: Any, cfg: Settings, base: lake.Snapshot, name: str, drop: str | None,
             added: Any, version: str) -> dict[str, lake.PartitionChange]:
    """Write ``added`` (rows of table ``name``) and rewrite the partitions holding stored rows
    that match ``drop`` (a Spark SQL condition over the stored row ``s``, never NULL) without
    them; the changes to publish."""
    parts_of = {f: p for p, fs in base.tables.get(name, {}).items() for f in fs}
    stored = _stored(spark, cfg, base, name)
    stored.createOrReplaceTempView("gw_w_stored")
    rewrite: set[str] = set()
    if drop is not None and parts_of:
        hit = spark.sql(f"SELECT DISTINCT s._path FROM gw_w_stored s WHERE {drop}").collect()
        rewrite = {parts_of[str(r[0])] for r in hit if r[0] is not None}
    columns = [c for c, _ in lake.table_columns(name)]
    cols = ", ".join(_q(c) for c in columns)
    added.createOrReplaceTempView("gw_w_added")
    out = spark.sql(f"SELECT {cols}, {PARTITION_SPARK.get(name, _lit(lake.WHOLE))} AS _p FROM gw_w_added")
    if rewrite:
        files = ", ".join(_lit(f) for p in sorted(rewrite) for f in base.tables[name][p])
        cases = " ".join(f"WHEN {_lit(f)} THEN {_lit(parts_of[f])}" for f in parts_of)
        out = spark.sql(
            f"SELECT {cols}, CASE s._path {cases} END AS _p FROM gw_w_stored s WHERE s._path IN ({files}) "
            f"AND NOT ({drop})").unionByName(out)
    rel = f"{name}/_spark-{version}"
    target = cfg.spark_dir / rel
    (out.write.mode("error").option("compression", "zstd").partitionBy("_p")
     .parquet(gw_spark.spark_path(cfg, rel)))
    written: dict[str, list[str]] = {}
    if target.is_dir():
        for path in sorted(target.rglob("*")):
            if path.is_file() and path.suffix != ".parquet":
                path.unlink()  # _SUCCESS and checksum files: only Parquet stays
        for path in sorted(target.rglob("*.parquet")):
            part = path.parent.name.removeprefix("_p=")
            written.setdefault(part, []).append(path.relative_to(cfg.spark_dir).as_posix())
            lake._fsync_path(path)
    changes = {p: lake.PartitionChange(tuple(written.get(p, [])), True) for p in rewrite}
    for part, files_written in written.items():
        if part not in rewrite:
            changes[part] = lake.PartitionChange(tuple(files_written), False)
    return changes


def _publish(spark: Any, cfg: Settings, base: lake.Snapshot, table: Table, result: Any,
             import_id: str, files: Sequence[str], rename: dict[str, str] | None,
             now: datetime) -> None:
    """Write the facts, quarantine entries and the import's record; switch the snapshot."""
    version = f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    stamp = f"CAST({_lit(now.strftime('%Y-%m-%d %H:%M:%S.%f'))} AS TIMESTAMP_NTZ)"
    changes: dict[str, dict[str, lake.PartitionChange]] = {}
    if table.name == ORDER_LINES.name:
        updated = ("EXISTS (SELECT 1 FROM gw_cls c WHERE c._cls = 'updated' "
                   "AND c.order_id = s.order_id)")
        changes["orders"] = _rewrite(spark, cfg, base, "orders", updated,
                                     _with_bookkeeping(spark, "gw_new_orders", ORDERS, import_id), version)
        changes["order_lines"] = _rewrite(
            spark, cfg, base, "order_lines", updated,
            _with_bookkeeping(spark, "gw_new_lines", ORDER_LINES, import_id), version)
    else:
        updated = (f"EXISTS (SELECT 1 FROM gw_cls c WHERE c._cls = 'updated' AND "
                   f"{_key_match(table, 'c', 's')})")
        changes[table.name] = _rewrite(spark, cfg, base, table.name, updated,
                                       _with_bookkeeping(spark, "gw_new", table, import_id), version)
    file_expr = "_file"
    if rename:
        file_expr = "CASE _file " + " ".join(
            f"WHEN {_lit(path)} THEN {_lit(name)}" for path, name in rename.items()) + " ELSE _file END"
    entries = spark.sql(
        f"SELECT {_lit(import_id)} AS import_id, {_lit(result.table)} AS table_name, {file_expr} AS file, "
        f"CAST(_row AS BIGINT) AS row_number, column_name, value, reason, {stamp} AS quarantined_at "
        "FROM gw_bad")
    names = ", ".join(_lit(n) for n in files)
    changes[QUARANTINE_TABLE] = _rewrite(
        spark, cfg, base, QUARANTINE_TABLE,
        f"coalesce(s.table_name = {_lit(result.table)} AND s.file IN ({names}), false)", entries, version)
    main = result.tables["orders" if table.name == ORDER_LINES.name else table.name]
    record = spark.sql(
        f"SELECT {_lit(import_id)} AS import_id, {_lit(result.table)} AS table_name, "
        f"{_lit(result.format)} AS format, {_lit(';'.join(result.files))} AS files, "
        f"CAST({result.rows_read} AS BIGINT) AS rows_read, CAST({main.inserted} AS BIGINT) AS inserted, "
        f"CAST({main.updated} AS BIGINT) AS updated, CAST({main.unchanged} AS BIGINT) AS unchanged, "
        f"CAST({result.rows_quarantined} AS BIGINT) AS quarantined, {stamp} AS finished_at")
    changes[IMPORTS_TABLE] = _rewrite(spark, cfg, base, IMPORTS_TABLE, None, record, version)
    lake.commit_partitions(cfg, base, changes)


def run(cfg: Settings, table: Table, files: list[Path], shown: list[str],
        rename: dict[str, str] | None, result: Any, origin: str = IMPORT_SOURCE) -> Any:
    """Run the import on Spark, filling and returning ``result`` (an ``ingest.ImportResult``)."""
    started = time.perf_counter()
    import_table(cfg, table, files, shown, rename, result.import_id, result, origin)
    result.seconds = round(time.perf_counter() - started, 3)
    return result
