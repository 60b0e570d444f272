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
exactly as it was. The parts: whole-file checks in ``file_checks.py``, staging in ``formats/``,
validation in ``ingest_validate.py``, assembly and merge in ``ingest_merge.py``; this module runs
them (the command, rows held in memory, quarantine entries and the import log).

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

from growthwheel.config import Settings, settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.keys import k
from growthwheel.warehouse import db as wh
from growthwheel.warehouse.file_checks import FileNotFoundProblem, check_text, renamed
from growthwheel.warehouse.file_checks import FileNotTextError as FileNotTextError
from growthwheel.warehouse.file_checks import FileNotUtf8Error as FileNotUtf8Error
from growthwheel.warehouse.formats import generic, shopify, taobao
from growthwheel.warehouse.gate import gate_for
from growthwheel.warehouse.ingest_merge import TableCounts, assemble, classify, write
from growthwheel.warehouse.ingest_validate import validate
from growthwheel.warehouse.schema import (
    IMPORT_SOURCE,
    ORDER_LINES,
    Table,
    resolve_table,
)
from growthwheel.warehouse.sqltext import count as _count
from growthwheel.warehouse.sqltext import lit as _lit
from growthwheel.warehouse.sqltext import q as _q

FORMATS = ("generic", "shopify", "taobao")
#: Files above this size get a progress bar.
PROGRESS_BYTES = 4 * 1024 * 1024

Progress = Callable[[str, float | None], None]
"""Called with a phase description and the fraction done (``None`` when unknown)."""
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
# Rows held in memory, the shared run, the quarantine and the bookkeeping.
# ---------------------------------------------------------------------------------------------


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
        _run(con, lambda: validate(con, table, shop, several, staged[0]), reading, show)
        names: list[str] = []

        def prepare() -> None:
            names.extend(assemble(con, table, shop, several, origin))
            classify(con, names, origin)

        _run(con, prepare, "preparing", show)
        con.execute("BEGIN TRANSACTION")
        try:
            counts: dict[str, TableCounts] = {}
            _run(con, lambda: counts.update(write(con, import_id, names)), "writing", show)
            result.tables = counts
            _record(con, result, import_id, files, rename)
            # No DuckDB read of this process may run during the COMMIT (Spark's reads take no
            # share: their snapshots are files, so there the gate never waits).
            with gate_for(cfg.warehouse_path).committing():
                con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    result.seconds = round(time.perf_counter() - started, 3)
    return result


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
