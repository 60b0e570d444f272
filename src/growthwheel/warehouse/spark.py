"""The Spark warehouse (``GROWTHWHEEL_WAREHOUSE=spark``): Parquet snapshots read by PySpark.

Layout of ``cfg.spark_dir`` (``<data_dir>/spark-warehouse``)::

    CURRENT.json                  the snapshot in force: table -> version directory
    <table>/<version>/data_*.parquet
    .lock                         taken while a snapshot is published

Writing. Imports validate and merge in DuckDB for every backend (``warehouse/ingest.py``). On this
warehouse :func:`load_snapshot` gives the import an in-memory DuckDB connection holding the tables
it writes, read from the current snapshot; after the import's ``COMMIT``, :func:`publish_snapshot`
writes each of those tables whose content changed (a fingerprint of row hashes tells) as a new
version directory (DuckDB ``COPY ... (FORMAT parquet)``), so a re-import that changes nothing
rewrites no fact table; it flushes the files to disk (``fsync``, so a power cut is covered too)
and only then replaces ``CURRENT.json`` with ``os.replace`` (an atomic rename). A reader
therefore always sees one consistent snapshot, and a crash at any moment before the rename
leaves the previous snapshot in force (the half-written version directories are unreferenced and
removed by the next publish). Versions referenced by neither the current nor the previous
snapshot are deleted after each publish, so a reader that opened the previous snapshot a moment
ago can still finish.

Two imports running at once: the second to publish finds that a table it rewrote changed since it
loaded it and fails with :class:`SnapshotConflictError` (nothing is lost; run it again), instead of
silently dropping the first import's rows.

Reading. :func:`connect` returns ``ibis.pyspark.connect(session)`` where every fact table and the
bookkeeping tables ``_quarantine`` and ``_imports`` are temporary views over the current snapshot,
with exactly the stored schema (tables never written are empty with that schema). Each call uses
its own Spark session (sharing one JVM and ``SparkContext`` per process), so two connections to two
data directories never see each other's views.

Types. DuckDB writes ``TIMESTAMP`` (UTC wall time) as Parquet timestamps with
``isAdjustedToUTC=false``; Spark reads them as ``TIMESTAMP_NTZ``, which Ibis maps to a timestamp
without time zone, exactly as on DuckDB, so ``ordered_at`` comes back as the same wall-clock value
whatever the machine's time zone. ``DATE`` stays ``DATE``, ``BIGINT`` money stays ``BIGINT``; the
``_row_hash`` bookkeeping column (``UBIGINT``) reads as ``DECIMAL(20,0)``. Sessions run in UTC with
``spark.sql.timestampType=TIMESTAMP_NTZ`` (a timestamp literal means what it means on DuckDB) and
ANSI mode on (money sums that overflow raise instead of wrapping).

Limits: the Parquet files are on the local file system, so a Spark master other than ``local[...]``
needs ``spark_dir`` on a file system its executors share. An import holds the tables it writes in
DuckDB memory (spilling to ``spark_dir/.tmp`` when larger). A connection opened before two later
imports may find its files gone (only the previous snapshot is kept).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import ibis

from growthwheel.config import Settings
from growthwheel.errors import ConfigError, GrowthwheelError
from growthwheel.warehouse.db import IMPORTS_TABLE, QUARANTINE_TABLE
from growthwheel.warehouse.schema import IMPORTS_STORED, QUARANTINE_STORED, TABLES

if TYPE_CHECKING:
    from ibis.backends import BaseBackend
    from pyspark.sql import DataFrame, SparkSession

POINTER = "CURRENT.json"
LOCK_FILE = ".lock"
FORMAT = 1
#: Size at which DuckDB starts a new Parquet file inside a version directory.
PARQUET_FILE_SIZE = "256MB"
#: Spark SQL settings every warehouse session uses (also set on each per-connection session).
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    # DuckDB TIMESTAMP -> Parquet isAdjustedToUTC=false -> Spark TIMESTAMP_NTZ (wall time kept).
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    # A TIMESTAMP without zone means the same as in DuckDB (also for `CAST(... AS TIMESTAMP)`).
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.shuffle.partitions": "4",
    # Spark 4's default, pinned: overflow and bad casts raise (as in DuckDB) instead of wrapping.
    "spark.sql.ansi.enabled": "true",
}
_VERSION = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{8}$")
_BASE_VARIABLE = "gw_spark_base"


class SnapshotConflictError(GrowthwheelError):
    """Another import published a table this one rewrote since it was loaded; run it again."""

    code = "warehouse_conflict"
    status = 409


# ---------------------------------------------------------------------------------------------
# The snapshot pointer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One published state of the warehouse: table name -> version directory (relative)."""

    id: str | None = None
    tables: dict[str, str] = field(default_factory=dict)
    previous: dict[str, str] = field(default_factory=dict)


def read_pointer(cfg: Settings) -> Snapshot:
    """The snapshot in force (empty if nothing was ever published)."""
    path = cfg.spark_dir / POINTER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Snapshot()
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable snapshot pointer ({exc})") from exc
    if data.get("format") != FORMAT:
        raise ConfigError(f"{path}: unknown snapshot format {data.get('format')!r}")
    return Snapshot(data.get("snapshot"), dict(data["tables"]), dict(data.get("previous", {})))


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch_pointer(root: Path, snapshot: Snapshot) -> None:
    """Make ``snapshot`` the one in force: write a temporary file, flush it, rename over."""
    tmp = root / f"{POINTER}.{uuid.uuid4().hex[:8]}.tmp"
    body = {
        "format": FORMAT,
        "snapshot": snapshot.id,
        "published_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "tables": dict(sorted(snapshot.tables.items())),
        "previous": dict(sorted(snapshot.previous.items())),
    }
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(body, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / POINTER)
    _fsync_path(root, directory=True)


@contextlib.contextmanager
def _publish_lock(root: Path) -> Iterator[None]:
    """Exclusive lock held while one process reads, checks and replaces the pointer."""
    with (root / LOCK_FILE).open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _collect_garbage(root: Path, keep: set[str]) -> None:
    """Delete version directories not in ``keep`` (and leftover temporary pointers)."""
    for tmp in root.glob(f"{POINTER}.*.tmp"):
        tmp.unlink(missing_ok=True)
    for table_dir in root.iterdir():
        if not table_dir.is_dir() or table_dir.name.startswith("."):
            continue
        for version in table_dir.iterdir():
            rel = f"{table_dir.name}/{version.name}"
            if version.is_dir() and _VERSION.match(version.name) and rel not in keep:
                shutil.rmtree(version, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Table definitions
# ---------------------------------------------------------------------------------------------


def table_columns(name: str) -> tuple[tuple[str, str], ...]:
    """(column, DuckDB type) of a stored table as the warehouse keeps it, bookkeeping included."""
    if name in TABLES:
        stored = tuple((c.name, c.sql_type) for c in TABLES[name].stored)
        return (*stored, ("_row_hash", "UBIGINT"), ("_import_id", "VARCHAR"))
    if name == QUARANTINE_TABLE:
        return tuple((c.name, c.sql_type) for c in QUARANTINE_STORED)
    if name == IMPORTS_TABLE:
        return tuple((c.name, c.sql_type) for c in IMPORTS_STORED)
    raise KeyError(f"unknown warehouse table {name!r}")


def all_tables() -> tuple[str, ...]:
    """Every table of the warehouse: the fact tables, then ``_quarantine`` and ``_imports``."""
    return (*TABLES, QUARANTINE_TABLE, IMPORTS_TABLE)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# Imports: load into DuckDB, publish back as Parquet
# ---------------------------------------------------------------------------------------------


def _fingerprint(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """Row count and order-independent sum of row hashes: equal means the content did not change."""
    row = con.execute(
        f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM {_q(name)} t"
    ).fetchone()
    assert row is not None
    return f"{row[0]}:{row[1]}"


def load_snapshot(cfg: Settings, tables: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding ``tables`` from the current snapshot.

    Each table is created with its stored schema and filled from its Parquet version (empty if
    never published); columns the schema gained since are null, as in a migrated DuckDB file. The
    versions loaded and a fingerprint of their content are remembered in the connection, so
    :func:`publish_snapshot` rewrites only the tables that changed and refuses to overwrite a
    concurrent import's work.
    """
    snapshot = read_pointer(cfg)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        # Spill (if a table outgrows memory) next to the warehouse, never into the working dir.
        spill = cfg.spark_dir / ".tmp" / uuid.uuid4().hex[:12]
        con.execute(f"SET temp_directory = {_lit(str(spill))}")
        base: dict[str, list[str | None]] = {}  # table -> [version loaded, fingerprint]
        for name in dict.fromkeys(tables):
            columns = table_columns(name)
            cols = ", ".join(f"{_q(c)} {t}" for c, t in columns)
            con.execute(f"CREATE TABLE {_q(name)} ({cols})")
            rel = snapshot.tables.get(name)
            if rel is None:
                base[name] = [None, _fingerprint(con, name)]
                continue
            files = cfg.spark_dir / rel / "*.parquet"
            source = f"read_parquet({_lit(str(files))})"
            try:
                described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            except duckdb.Error as exc:
                raise ConfigError(
                    f"{cfg.spark_dir / rel}: snapshot {snapshot.id} of table {name} is unreadable "
                    f"({exc})"
                ) from exc
            present = {str(r[0]) for r in described}
            common = ", ".join(_q(c) for c, _ in columns if c in present)
            con.execute(f"INSERT INTO {_q(name)} ({common}) SELECT {common} FROM {source}")
            base[name] = [rel, _fingerprint(con, name)]
        con.execute(f"SET VARIABLE {_BASE_VARIABLE} = ?", [json.dumps(base)])
    except BaseException:
        con.close()
        raise
    return con


def _new_version() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def publish_snapshot(cfg: Settings, con: duckdb.DuckDBPyConnection, tables: Sequence[str]) -> None:
    """Write ``tables`` from ``con`` as new Parquet versions and switch to them atomically.

    ``con`` must come from :func:`load_snapshot` (with these tables). Tables whose content did not
    change keep their version (a re-import that changes nothing rewrites no fact table). All
    changed tables switch at once with one rename of ``CURRENT.json``, or none does. Raises
    :class:`SnapshotConflictError` if another import published one of these tables since ``con``
    was loaded.
    """
    row = con.execute(f"SELECT getvariable({_lit(_BASE_VARIABLE)})").fetchone()
    if row is None or row[0] is None:
        raise ValueError("publish_snapshot needs a connection made by load_snapshot")
    base: dict[str, list[str | None]] = json.loads(row[0])
    names = list(dict.fromkeys(tables))
    unknown = [n for n in names if n not in base]
    if unknown:
        raise ValueError(f"tables not loaded by load_snapshot: {', '.join(unknown)}")
    root = cfg.spark_dir
    root.mkdir(parents=True, exist_ok=True)
    with _publish_lock(root):
        current = read_pointer(cfg)
        moved = [n for n in names if current.tables.get(n) != base[n][0]]
        if moved:
            raise SnapshotConflictError(
                f"another import changed {', '.join(moved)} meanwhile; nothing was written by "
                "this one, run it again"
            )
        version = _new_version()
        written: dict[str, str] = {}
        for name in names:
            fingerprint = _fingerprint(con, name)
            if fingerprint == base[name][1]:
                continue  # unchanged: keep its version
            rel = f"{name}/{version}"
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"COPY {_q(name)} TO {_lit(str(target))} "
                f"(FORMAT parquet, COMPRESSION zstd, FILE_SIZE_BYTES {_lit(PARQUET_FILE_SIZE)})"
            )
            for part in target.iterdir():
                _fsync_path(part)
            _fsync_path(target, directory=True)
            _fsync_path(target.parent, directory=True)
            written[name] = rel
            base[name] = [rel, fingerprint]
        if not written:
            return
        new = Snapshot(version, {**current.tables, **written}, dict(current.tables))
        _switch_pointer(root, new)
        con.execute(f"SET VARIABLE {_BASE_VARIABLE} = ?", [json.dumps(base)])
        _collect_garbage(root, set(new.tables.values()) | set(new.previous.values()))


# ---------------------------------------------------------------------------------------------
# Spark: one session per process, one Ibis connection per call
# ---------------------------------------------------------------------------------------------

_session: SparkSession | None = None
_session_lock = threading.Lock()


def session(cfg: Settings) -> SparkSession:
    """The process's Spark session, started on first use (``cfg.spark.master``) and stopped at exit.

    Local mode gets a small driver (1 GB), no UI, 4 shuffle partitions and UTC everywhere. The first
    call's settings win for the life of the process.
    """
    global _session
    with _session_lock:
        if _session is not None and _session.sparkContext._jsc is not None:
            return _session  # still running (``backend.disconnect()`` would have stopped it)
        from pyspark.sql import SparkSession

        master = cfg.spark.master
        builder = SparkSession.builder.master(master).appName(cfg.spark.app_name)
        conf = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": "1g",
            "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
            "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
            # Keep Spark's own catalog out of the working directory (unused: only views here).
            "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / "growthwheel-spark"),
            **SESSION_CONF,
        }
        if master.startswith("local"):
            conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
        for key, value in conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        if _session is None:
            atexit.register(stop_session)
        _session = spark
        return spark


def stop_session() -> None:
    """Stop the process's Spark session if one was started (a later call starts a new one)."""
    global _session
    with _session_lock:
        if _session is not None:
            _session.stop()
            _session = None


def _spark_type(sql_type: str) -> Any:
    from pyspark.sql import types as st

    mapping: dict[str, Any] = {
        "VARCHAR": st.StringType(),
        "BIGINT": st.LongType(),
        "BOOLEAN": st.BooleanType(),
        "DATE": st.DateType(),
        "TIMESTAMP": st.TimestampNTZType(),
        "UBIGINT": st.DecimalType(20, 0),
    }
    try:
        return mapping[sql_type.upper()]
    except KeyError:
        raise ConfigError(f"no Spark type for warehouse type {sql_type}") from None


def _table_frame(spark: SparkSession, cfg: Settings, name: str, rel: str | None) -> DataFrame:
    """The table as a Spark DataFrame with exactly the stored columns, in order."""
    from pyspark.sql import functions as sf
    from pyspark.sql import types as st

    columns = table_columns(name)
    schema = st.StructType([st.StructField(c, _spark_type(t), True) for c, t in columns])
    if rel is None:
        return spark.createDataFrame([], schema)
    df = spark.read.parquet(str(cfg.spark_dir / rel))
    present = set(df.columns)
    return df.select(
        *(
            sf.col(f"`{c}`") if c in present else sf.lit(None).cast(_spark_type(t)).alias(c)
            for c, t in columns
        )
    )


def connect(cfg: Settings) -> BaseBackend:
    """The current snapshot as an Ibis PySpark backend: ``con.table(name)`` for every table.

    The fact tables of ``schema.TABLES`` and ``_quarantine`` / ``_imports`` are views over the
    snapshot in force when this is called; later imports are seen by a new ``connect``.
    """
    spark = session(cfg).newSession()
    snapshot = read_pointer(cfg)
    for name in all_tables():
        _table_frame(spark, cfg, name, snapshot.tables.get(name)).createOrReplaceTempView(name)
    backend: BaseBackend = ibis.pyspark.connect(spark, **SESSION_CONF)
    return backend
