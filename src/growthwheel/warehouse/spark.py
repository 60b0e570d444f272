"""The Spark warehouse (``GROWTHWHEEL_WAREHOUSE=spark``): Parquet snapshots read by PySpark.

Storage (``warehouse/lake.py``): Parquet files under ``cfg.spark_dir``, partitioned (events and
orders by shop-local month), published as snapshots (``CURRENT.json`` and ``snapshots/<id>.json``
list every table's files). An import merges in DuckDB and publishes what changed: appends add
files, a partition that lost rows is rewritten alone; the event flush appends. Old snapshots stay
while a reader holds a lease on them or for ``lake.KEEP_SECONDS``, then ``lake.vacuum`` removes
them; ``lake.compact`` merges small files.

Reading. :func:`connect` returns ``ibis.pyspark.connect(session)`` where every fact table, the
bookkeeping tables ``_quarantine`` and ``_imports`` and every derived table written by the server
(segment membership, CLV scores…) is a temporary view over one snapshot's files, with exactly the
stored schema (tables never written are empty with that schema). Each call uses its own Spark
session (sharing one JVM and ``SparkContext`` per process), so two connections never see each
other's views. The server's owner keeps one such connection per snapshot in use and leases it.

Types. DuckDB writes ``TIMESTAMP`` (UTC wall time) as Parquet timestamps with
``isAdjustedToUTC=false``; Spark reads them as ``TIMESTAMP_NTZ``, which Ibis maps to a timestamp
without time zone, exactly as on DuckDB, so ``ordered_at`` comes back as the same wall-clock value
whatever the machine's time zone. ``DATE`` stays ``DATE``, ``BIGINT`` money stays ``BIGINT``; the
``_row_hash`` bookkeeping column (``UBIGINT``) reads as ``DECIMAL(20,0)``. Sessions run in UTC with
``spark.sql.timestampType=TIMESTAMP_NTZ`` (a timestamp literal means what it means on DuckDB) and
ANSI mode on (money sums that overflow raise instead of wrapping).

Limits: a Spark master other than ``local[...]`` needs ``spark_dir`` on a file system its
executors share. An import holds the tables it writes in DuckDB memory (spilling to
``spark_dir/.tmp`` when larger); the event flush does not.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import ibis

from growthwheel.config import Settings
from growthwheel.errors import ConfigError
from growthwheel.warehouse.lake import (
    POINTER,
    Snapshot,
    SnapshotConflictError,
    all_tables,
    load_snapshot,
    publish_snapshot,
    read_pointer,
    table_columns,
)

if TYPE_CHECKING:
    from ibis.backends import BaseBackend
    from pyspark.sql import DataFrame, SparkSession

__all__ = [  # storage lives in lake.py; these names are kept here for callers
    "POINTER", "SESSION_CONF", "Snapshot", "SnapshotConflictError", "all_tables", "connect",
    "load_snapshot", "publish_snapshot", "read_pointer", "session", "table_columns",
]
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


# ---------------------------------------------------------------------------------------------
# Spark: one session per process, one Ibis connection per call
# ---------------------------------------------------------------------------------------------

_session: SparkSession | None = None
_remote: dict[str, Any] = {}  # Spark Connect URL -> session
_session_lock = threading.Lock()
#: Set by pyspark once a Spark Connect session exists; it would send a classic builder to Connect.
_CONNECT_MODE_ENV = "SPARK_CONNECT_MODE_ENABLED"
#: Spark Connect's port when the URL names none, and how long to wait for it to answer (seconds).
CONNECT_DEFAULT_PORT = 15002
CONNECT_TIMEOUT = 5.0


def _classic_session(cfg: Settings) -> SparkSession:
    """A Spark started in this process (``cfg.spark.master``); the caller holds the lock."""
    global _session
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
    _session = spark
    return spark


def _check_reachable(url: str) -> None:
    """Fail at once, with one clear line, when nothing listens at the Connect server's address
    (pyspark's client would otherwise retry for about ten minutes)."""
    parsed = urlsplit("http://" + url.removeprefix("sc://"))
    address = (parsed.hostname or "localhost", parsed.port or CONNECT_DEFAULT_PORT)
    try:
        with socket.create_connection(address, timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Spark Connect server {url} ({exc}); check GROWTHWHEEL_SPARK_REMOTE"
        ) from exc


def _remote_session(url: str) -> SparkSession:
    """A new session on the Spark Connect server at ``url``, with :data:`SESSION_CONF` set."""
    from pyspark.errors import PySparkException
    from pyspark.sql.connect.session import SparkSession as RemoteSparkSession

    _check_reachable(url)
    try:
        spark: Any = RemoteSparkSession(connection=url)
        for key, value in SESSION_CONF.items():
            spark.conf.set(key, value)
    except (PySparkException, ValueError) as exc:  # unreachable server, malformed URL
        raise ConfigError(f"cannot reach the Spark Connect server {url} ({exc})") from exc
    # pyspark's DataFrame functions dispatch on this variable; set it as ``builder.remote`` would.
    os.environ[_CONNECT_MODE_ENV] = "1"
    result: SparkSession = spark
    return result


def session(cfg: Settings) -> SparkSession:
    """The process's Spark session, started on first use and stopped at exit.

    With ``cfg.spark_remote`` (``GROWTHWHEEL_SPARK_REMOTE=sc://host:port``) it is a session on that
    Spark Connect server, one per URL; the server's owner sizes and configures Spark. Otherwise
    Spark runs in this process (``cfg.spark.master``): local mode gets a small driver (1 GB), no
    UI, 4 shuffle partitions and UTC everywhere, and the first call's settings win for the life of
    the process. One process uses one or the other: pyspark routes its functions to Spark Connect
    by a process-wide switch, so asking for the second kind is a :class:`ConfigError`.
    """
    with _session_lock:
        first = _session is None and not _remote
        local_running = _session is not None and _session.sparkContext._jsc is not None
        if cfg.spark_remote and cfg.spark_remote not in _remote:
            _check_reachable(cfg.spark_remote)
        if (cfg.spark_remote and local_running) or (not cfg.spark_remote and _remote):
            raise ConfigError(
                "this process already uses "
                + ("Spark in process" if local_running else "Spark Connect")
                + "; pyspark cannot use Spark in process and Spark Connect side by side: run the "
                "other in a process of its own (GROWTHWHEEL_SPARK_REMOTE set or unset for it)"
            )
        if cfg.spark_remote:
            spark = _remote.get(cfg.spark_remote)
            if spark is None or spark.is_stopped:
                spark = _remote[cfg.spark_remote] = _remote_session(cfg.spark_remote)
        else:
            spark = _classic_session(cfg)
        if first:
            atexit.register(stop_session)
        return spark


def new_session(cfg: Settings) -> SparkSession:
    """A session of its own (temporary views are per session) sharing :func:`session`'s Spark.

    In process: ``session(cfg).newSession()`` (same JVM and ``SparkContext``). Through Spark
    Connect: a new server-side session, released when the returned object is garbage-collected
    or stopped.
    """
    if not cfg.spark_remote:
        shared: Any = session(cfg)
        separate: SparkSession = shared.newSession()
        return separate
    session(cfg)  # one check that the server answers, and the exit hook
    return _remote_session(cfg.spark_remote)


def release_with(owner: object, spark: Any) -> None:
    """Release ``spark``'s server-side state (its views) when ``owner`` is garbage-collected, if it
    is a Spark Connect session from :func:`new_session` (an in-process session needs nothing)."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        weakref.finalize(owner, _release_remote, spark.client)


def _release_remote(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.release_session()


def _connect_backend_class() -> type[Any]:
    """Ibis 12's PySpark backend, made to work over Spark Connect.

    ``Table.cache()`` (used by experiment metrics) asserts ``DataFrame.is_cached`` right after
    ``cache()``; through Spark Connect (pyspark 4.0.5) that property asks the server for the
    storage level of the re-sent plan and answers ``False``, so the assertion fails. This subclass
    caches and uncaches without the assertion (everything else is ibis's own); the answers do not
    depend on whether Spark really kept the table in memory.
    """
    from ibis.backends.pyspark import Backend

    # Loading the backend through ``ibis.pyspark`` registers ``ibis.options.pyspark``, which the
    # compiler reads; a subclass used directly would skip that in a process without local Spark.
    _ = ibis.pyspark

    class ConnectBackend(Backend):  # type: ignore[misc]
        def _create_cached_table(self, name: str, expr: Any) -> Any:
            frame = self._session.sql(self.compile(expr)).cache()
            frame.createTempView(name)
            self._cached_dataframes[name] = frame
            return self.table(name)

        def _drop_cached_table(self, name: str) -> None:
            self._session.catalog.dropTempView(name)
            self._cached_dataframes.pop(name).unpersist()

    return ConnectBackend


def _local_backend_class() -> type[Any]:
    """Ibis 12's PySpark backend for Spark in this process, whose ``disconnect`` leaves Spark running.

    ibis's own ``disconnect`` stops the session, and stopping any session of a process stops its
    one ``SparkContext``: every other connection (other requests of a server, other readers) would
    lose Spark mid-query and the next one would start it again. Here ``disconnect`` drops the
    connection's temporary views; :func:`stop_session` stops Spark at exit.
    """
    from ibis.backends.pyspark import Backend

    _ = ibis.pyspark  # registers ``ibis.options.pyspark`` (the compiler reads it)

    class LocalBackend(Backend):  # type: ignore[misc]
        def disconnect(self) -> None:
            with contextlib.suppress(Exception):
                for table in self._session.catalog.listTables():
                    if table.isTemporary:
                        self._session.catalog.dropTempView(table.name)

    return LocalBackend


def ibis_backend(spark: Any) -> BaseBackend:
    """``ibis.pyspark.connect(spark)`` with :data:`SESSION_CONF`, whose ``disconnect`` never stops the
    process's Spark; for a Spark Connect session the backend also works around ibis's cache check
    and releases the server-side session once it is garbage-collected (:func:`release_with`)."""
    if not type(spark).__module__.startswith("pyspark.sql.connect"):
        backend: BaseBackend = _local_backend_class()().connect(spark, **SESSION_CONF)
        return backend
    remote: BaseBackend = _connect_backend_class()().connect(spark, **SESSION_CONF)
    release_with(remote, spark)
    return remote


def spark_path(cfg: Settings, rel: str) -> str:
    """How Spark names ``spark_dir / rel``: under ``cfg.spark.warehouse_uri`` when set, else the
    absolute local path (a Spark Connect server does not share this process's working directory)."""
    if cfg.spark.warehouse_uri:
        return cfg.spark.warehouse_uri.rstrip("/") + "/" + rel
    return str((cfg.spark_dir / rel).resolve())


def stop_session() -> None:
    """Stop the process's Spark sessions if any were started (a later call starts new ones).

    A Spark Connect server is left running (other clients may use it); only this process's
    sessions on it are released.
    """
    global _session
    with _session_lock:
        if _session is not None:
            _session.stop()
            _session = None
        for spark in _remote.values():
            spark.stop()
        _remote.clear()
        os.environ.pop(_CONNECT_MODE_ENV, None)


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


def _table_frame(spark: SparkSession, cfg: Settings, name: str, files: Sequence[str]) -> DataFrame:
    """The table as a Spark DataFrame over ``files`` (relative to ``spark_dir``) with exactly the
    stored columns, in order (a derived table: as written)."""
    from pyspark.sql import types as st

    try:
        columns: tuple[tuple[str, str], ...] | None = table_columns(name)
    except KeyError:
        columns = None
    if not files:
        assert columns is not None
        schema = st.StructType([st.StructField(c, _spark_type(t), True) for c, t in columns])
        return spark.createDataFrame([], schema)
    df = spark.read.parquet(*(spark_path(cfg, f) for f in files))
    if columns is None:
        return df
    present = set(df.columns)
    # SQL expressions rather than ``pyspark.sql.functions``: the same code for a session in this
    # process and one through Spark Connect.
    return df.selectExpr(
        *(
            f"`{c}`" if c in present else f"CAST(NULL AS {_spark_type(t).simpleString()}) AS `{c}`"
            for c, t in columns
        )
    )


def connect(cfg: Settings, snapshot: Snapshot | None = None) -> BaseBackend:
    """A snapshot (default: the one in force now) as an Ibis PySpark backend.

    Every table of ``lake.all_tables()`` and every derived table of the snapshot is a view over
    that snapshot's files; later publishes are seen by a new ``connect``. Keep the snapshot's files
    while reading if publishes and vacuums may run meanwhile: ``lake.lease_current`` gives the
    snapshot in force with a lease no vacuum can have missed (leasing what ``read_pointer`` named
    earlier can be too late).
    """
    spark = new_session(cfg)
    snapshot = snapshot if snapshot is not None else read_pointer(cfg)
    for name in (*all_tables(), *(n for n in snapshot.tables if n not in all_tables())):
        _table_frame(spark, cfg, name, snapshot.files(name)).createOrReplaceTempView(name)
    backend: BaseBackend = ibis_backend(spark)
    return backend
