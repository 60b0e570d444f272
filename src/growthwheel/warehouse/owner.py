"""One process owns the warehouse: the server, while it runs.

DuckDB lets one process open a database file for writing, and then no other process may open it
at all. So while ``growthwheel serve`` runs, its :class:`WarehouseOwner` holds the only connection
to ``<data_dir>/warehouse.duckdb`` and everything else goes through it:

* **Reads** (console pages, API routes) run on a cursor of that connection per thread
  (:meth:`WarehouseOwner.read`). DuckDB's MVCC lets them run while a write is under way: a read
  sees the last committed state and waits for no import's staging, checks or writes, only for
  ``COMMIT`` statements, which the commit gate keeps apart from reads (DuckDB 1.5.6 lets a query
  running during a large commit see part of it; :mod:`growthwheel.warehouse.gate`).
* **Writes** run one at a time, in order, on a single writer thread: imports
  (:meth:`WarehouseOwner.submit_import`, with their progress on an
  :class:`~growthwheel.warehouse.jobs.ImportJob`) and the flushes of captured events.
* **Events** (:meth:`WarehouseOwner.append_events`) are durable before the API answers: they are
  appended to a JSON Lines segment of the :class:`~growthwheel.warehouse.spool.EventSpool` and
  ``fdatasync``-ed. About every second (or sooner when many are waiting) the closed segments are
  read and imported into ``events`` by ``ingest.import_rows`` — the normal validation, quarantine
  (naming segment and line) and merge keyed on ``event_id`` — and deleted after the commit.
  Segments left by a crash are imported when the owner next starts; as the merge is keyed on
  ``event_id``, replaying a segment that had already been merged changes nothing.
* **Other processes.** On start the owner writes ``<data_dir>/server.json`` (pid, host, port and a
  random token, mode 0600) and removes it on stop; ``warehouse/server.py`` is the client other
  processes use to find the server and hand it work.

The FastAPI side (the owner in the app's life cycle, the ``warehouse`` dependency, the internal
routes) lives with the API in ``growthwheel/api/warehouse.py``; this layer imports nothing above it.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import queue
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import duckdb
import ibis
import pyarrow as pa
from ibis.backends import BaseBackend
from starlette.concurrency import run_in_threadpool

from growthwheel.config import Settings
from growthwheel.errors import ConfigError, GrowthwheelError
from growthwheel.warehouse import db as wh
from growthwheel.warehouse import ingest, lake, uploads
from growthwheel.warehouse.gate import CommitGate, ReadInCommitError, gate_for
from growthwheel.warehouse.jobs import ImportJob, JobNotFoundError, JobStatus
from growthwheel.warehouse.schema import EVENTS, TABLES
from growthwheel.warehouse.server import (
    SERVER_FILE,
    ServerError,
    ServerInfo,
    find_server,
    import_via_server,
    read_server_file,
    read_via_server,
    warehouse_in_use_error,
)
from growthwheel.warehouse.spool import SPOOL_DIR, EventSpool

__all__ = [  # the owner, and (for callers of the one-module era) the parts it was split into
    "SERVER_FILE", "SPOOL_DIR", "EventSpool", "ImportJob", "JobNotFoundError", "JobStatus",
    "ServerError", "ServerInfo", "WarehouseOwner", "find_server", "import_via_server",
    "read_server_file", "read_via_server", "warehouse_in_use_error",
]

log = logging.getLogger(__name__)

_SPOOL_COLUMNS = "{" + ", ".join(f"'{c.name}': 'VARCHAR'" for c in EVENTS.inputs) + "}"
T = TypeVar("T")


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _now() -> datetime:
    return datetime.now(UTC)


class _CommitGated:
    """The cursor a :meth:`WarehouseOwner.run_write` function gets: its ``COMMIT`` goes through
    the commit gate; everything else goes straight to the cursor."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, gate: CommitGate) -> None:
        self._cursor, self._gate = cursor, gate

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        if query.strip().rstrip(";").upper() in ("COMMIT", "COMMIT TRANSACTION", "END", "END TRANSACTION"):
            with self._gate.committing():
                return self._cursor.execute(query)
        return self._cursor.execute(query, parameters)

    def commit(self) -> duckdb.DuckDBPyConnection:
        with self._gate.committing():
            return self._cursor.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class WarehouseOwner:
    """Holds the warehouse for the server process; see the module docstring.

    ``flush_seconds``: how often spooled events are moved into the warehouse;
    ``flush_at``: flush sooner once this many events are waiting; ``lock_wait``: how long ``start``
    waits for another process (a CLI import) to release the warehouse file.
    """

    def __init__(self, cfg: Settings, *, flush_seconds: float = 1.0, flush_at: int = 50_000,
                 lock_wait: float = 30.0, keep_seconds: float = lake.KEEP_SECONDS,
                 maintain_seconds: float = 60.0, compact_at: int = 32) -> None:
        self.cfg = cfg
        self.keep_seconds = keep_seconds
        self.maintain_seconds = maintain_seconds
        self.compact_at = compact_at
        self._maintained = time.monotonic()
        self.flush_seconds = flush_seconds
        self.flush_at = flush_at
        self.lock_wait = lock_wait
        self.token = secrets.token_urlsafe(32)
        self.spool = EventSpool(cfg.data_dir / SPOOL_DIR)
        self.address: tuple[str, int] | None = None
        self.events_flushed = 0
        self.last_flush_error: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        # Spark: one backend per snapshot in use -> [backend, readers, lease file]
        self._snapshots: dict[str | None, list[Any]] = {}
        self._snapshot_lock = threading.Lock()  # one backend built at a time
        self._parser: duckdb.DuckDBPyConnection | None = None  # reads spool segments (in memory)
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._flush_queued = False
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._generation = 0
        self._gate = gate_for(cfg.warehouse_path)

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the owner has started and not stopped."""
        return self._writer is not None and not self._stopping.is_set()

    def start(self, host: str | None = None, port: int | None = None) -> None:
        """Open the warehouse, replay spooled events left by a crash, start the writer; when
        ``host`` and ``port`` are given, announce the server in ``server.json``."""
        if self._writer is not None:
            raise ConfigError("the warehouse owner is already running")
        self._stopping.clear()
        uploads.sweep(self.cfg.data_dir)  # uploads a killed server left behind
        if self.cfg.warehouse == "duckdb":
            self._con = self._open()
        self._generation += 1
        try:
            with self.read() as backend:  # the first Ibis query pays for lazy imports, not a request
                backend.table("events").count().execute()
            leftovers = self.spool.recover()
            if leftovers:
                log.info("replaying %d event spool segment(s) left by an earlier run", len(leftovers))
                self._flush_logged()
        except BaseException:
            self._close_connections()
            raise
        self._writer = threading.Thread(target=self._write_loop, name="warehouse-writer", daemon=True)
        self._writer.start()
        self._flusher = threading.Thread(target=self._flush_loop, name="events-flusher", daemon=True)
        self._flusher.start()
        if host is not None and port is not None:
            self.address = (host, port)
            self._announce(host, port)

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The read-write connection, waiting up to ``lock_wait`` for another process to let go."""
        self.cfg.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                con = duckdb.connect(str(self.cfg.warehouse_path))
                con.execute("SET TimeZone = 'UTC'")
                wh.ensure_schema(con)
                return con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise warehouse_in_use_error(self.cfg, exc) from None
                log.warning("warehouse busy (another process holds it); waiting…")
                time.sleep(0.5)

    def stop(self) -> None:
        """Finish the running write, refuse queued imports, flush events, close, and withdraw
        ``server.json``. Safe to call twice."""
        if self._writer is None:
            return
        self._stopping.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        self._queue.put(self._flush_logged)
        self._queue.put(None)
        self._writer.join()
        self._writer = self._flusher = None
        self.spool.close()
        self._withdraw()
        self._close_connections()

    def _close_connections(self) -> None:
        with self._lock:
            cursors, self._cursors = self._cursors, []
        for cursor in cursors:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.execute("CHECKPOINT")
            self._con.close()
            self._con = None
        with self._lock:
            held, self._snapshots = self._snapshots, {}
        for _backend, _readers, lease_file in held.values():
            if lease_file is not None:
                lease_file.unlink(missing_ok=True)
        if self._parser is not None:
            self._parser.close()
            self._parser = None
        self._generation += 1

    async def astart(self, host: str | None = None, port: int | None = None) -> None:
        """:meth:`start` off the event loop."""
        await run_in_threadpool(self.start, host, port)

    async def astop(self) -> None:
        """:meth:`stop` off the event loop."""
        await run_in_threadpool(self.stop)

    # -- reads --------------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[BaseBackend]:
        """An Ibis backend for reading; use one ``read`` for a whole request.

        DuckDB: this thread's own cursor; the block holds a share of the commit gate
        (:mod:`growthwheel.warehouse.gate`), so it never sees part of a commit and waits for none
        but the ``COMMIT`` statements themselves. Spark: the snapshot in force when the block
        starts, for the whole block (a lease keeps its files); the next ``read`` sees the newest
        snapshot.
        """
        if self.cfg.warehouse != "spark":
            with self._gate.reading():
                yield self._backend()
            return
        snapshot_id, entry = self._spark_entry()
        try:
            yield entry[0]
        finally:
            with self._lock:
                entry[1] -= 1
            self._retire(snapshot_id)

    def _spark_entry(self) -> tuple[str | None, list[Any]]:
        """The snapshot in force and its backend, with one more reader (built and leased on first
        use).

        A backend kept here holds a lease taken by :func:`lake.lease_current`, so its files stay
        while it is kept; a new one is leased before the pointer is trusted (reading the pointer,
        then leasing, let a publish and a vacuum remove the snapshot in between)."""
        current = lake.read_pointer(self.cfg).id
        with self._lock:
            entry = self._snapshots.get(current)
            if entry is not None:
                entry[1] += 1
                return current, entry
        with self._snapshot_lock:
            snapshot, lease_file = lake.lease_current(self.cfg)
            with self._lock:
                entry = self._snapshots.get(snapshot.id)
                if entry is not None:
                    entry[1] += 1
            if entry is not None:  # built meanwhile (it holds a lease of its own)
                if lease_file is not None:
                    lease_file.unlink(missing_ok=True)
                return snapshot.id, entry
            try:
                from growthwheel.warehouse import spark

                backend = spark.connect(self.cfg, snapshot)
            except BaseException:
                if lease_file is not None:
                    lease_file.unlink(missing_ok=True)
                raise
            entry = [backend, 1, lease_file]
            with self._lock:
                self._snapshots[snapshot.id] = entry
            return snapshot.id, entry

    def _retire(self, newest: str | None) -> None:
        """Let go of backends over snapshots older than ``newest`` that no reader uses."""
        current = lake.read_pointer(self.cfg).id
        with self._lock:
            idle = [k for k, (_b, readers, _l) in self._snapshots.items()
                    if readers == 0 and k != current and k != newest]
            gone = [self._snapshots.pop(k) for k in idle]
        for _backend, _readers, lease_file in gone:
            if lease_file is not None:
                lease_file.unlink(missing_ok=True)

    def snapshots_in_use(self) -> dict[str | None, int]:
        """Spark: snapshot id -> readers now (the backends this owner keeps)."""
        with self._lock:
            return {k: int(v[1]) for k, v in self._snapshots.items()}

    def _backend(self) -> BaseBackend:
        if self._con is None:
            raise ConfigError("the warehouse is not open (the server is starting or stopping)")
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            cursor = self._con.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            with self._lock:
                self._cursors.append(cursor)
            local.backend = ibis.duckdb.from_connection(cursor)
            local.generation = self._generation
        backend: BaseBackend = local.backend
        return backend

    async def query(self, fn: Callable[[BaseBackend], T]) -> T:
        """Run ``fn(backend)`` on a worker thread; for ``async`` routes."""

        def run() -> T:
            with self.read() as backend:
                return fn(backend)

        return await run_in_threadpool(run)

    def counts(self) -> dict[str, int]:
        """Rows in each fact table."""
        with self.read() as backend:
            if self.cfg.warehouse == "spark":
                return {name: int(backend.table(name).count().execute()) for name in TABLES}
            sql = "SELECT " + ", ".join(f'(SELECT count(*) FROM "{name}")' for name in TABLES)
            found = backend.raw_sql(sql).fetchone()
            return {name: int(n) for name, n in zip(TABLES, found, strict=True)}

    # -- writes: imports ----------------------------------------------------------------------

    def submit_import(self, table: str, paths: Sequence[Path | str], fmt: str = "generic", *,
                      on_done: Callable[[ImportJob], None] | None = None,
                      names: Sequence[str] | None = None) -> str:
        """Queue an import of ``paths`` (files this process can read) on the writer thread and
        return its job id (see :meth:`job`).

        Checks the table, format and files at once (raising the import's own errors); the rest is
        reported on the job. ``on_done`` is called on the writer thread when it ends. ``names``
        (uploads: the names the client gave, one per path) name the files in the result, the
        quarantine and errors instead of their paths.
        """
        if not self.running:
            raise ConfigError("the warehouse owner is not running")
        _table, files = ingest.check_request(table, paths, fmt, names)
        job = ImportJob(f"job_{uuid.uuid4().hex[:12]}", table, fmt, [str(p) for p in files],
                        names=list(names) if names is not None else [])
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > 500:
                self._jobs.popitem(last=False)
        self._queue.put(lambda: self._run_import(job, files, on_done))
        return job.id

    def _run_import(self, job: ImportJob, files: list[Path],
                    on_done: Callable[[ImportJob], None] | None) -> None:
        job.started_at = _now()
        try:
            if self._stopping.is_set():
                raise ConfigError("the server stopped before the import started; import again")
            job.status = "running"

            def progress(phase: str, fraction: float | None) -> None:
                job.phase, job.fraction = phase, fraction

            result = ingest.import_files(job.table, files, job.format, cfg=self.cfg, progress=progress,
                                         names=job.names or None)
        except GrowthwheelError as exc:
            job.error, job.error_code, job.error_status = exc.message, exc.code, exc.status
            job.error_file = getattr(exc, "file", None)
            job.error_values = dict(getattr(exc, "values", None) or {})
            job.error_key = exc.key if job.error_file else None
            job.status = "failed"
        except Exception as exc:
            log.exception("import %s failed", job.id)
            job.error = f"{type(exc).__name__}: {exc}"
            job.error_code, job.error_status = "internal_error", 500
            job.status = "failed"
        else:
            job.result = result
            job.phase, job.fraction = "done", 1.0
            job.status = "done"
        finally:
            job.finished_at = _now()
            job.done.set()
        if on_done is not None:
            try:
                on_done(job)
            except Exception:
                log.exception("on_done of import %s failed", job.id)

    def job(self, job_id: str) -> ImportJob | None:
        """The job called ``job_id``, or ``None`` (the last 500 jobs are kept, until a restart)."""
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[ImportJob]:
        """Recent jobs, newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    # -- writes: events -----------------------------------------------------------------------

    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Spool validated event rows (generic ``events`` columns); durable when this returns.

        They reach the warehouse with the next flush (about ``flush_seconds`` later).
        """
        self.spool.append(rows)
        if self.spool.pending() >= self.flush_at:
            self._wake.set()

    def pending_events(self) -> int:
        """Events accepted and not yet in the warehouse."""
        return self.spool.pending()

    def flush_events(self, timeout: float | None = 60.0) -> int:
        """Move every spooled event into the warehouse now (after the writes already queued);
        return the number of spooled rows read."""
        return self._on_writer(self._flush, timeout, "the event flush")

    def run_write(self, fn: Callable[[duckdb.DuckDBPyConnection], T], timeout: float | None = 600.0) -> T:
        """Run ``fn(connection)`` on the writer thread, after the writes already queued, and return
        its result (or raise its exception). ``fn`` owns its transaction.

        DuckDB: ``connection`` is a fresh cursor of the warehouse (read-write, UTC), closed
        afterwards. Spark: an in-memory DuckDB connection holding the derived tables of the
        current snapshot (segment membership, tags, CLV scores…; the fact tables are read-only
        views over their files); what ``fn`` changed or created is published as a new snapshot
        (only the changed partitions are written) once it returns.
        """
        if self.cfg.warehouse == "spark":
            return self._on_writer(lambda: self._spark_write(fn), timeout, "the warehouse write")

        def on_cursor() -> T:
            if self._con is None:
                raise ConfigError("the warehouse is not open (the server is stopping)")
            cursor = self._con.cursor()
            try:
                cursor.execute("SET TimeZone = 'UTC'")
                return fn(cast(duckdb.DuckDBPyConnection, _CommitGated(cursor, self._gate)))
            finally:
                cursor.close()

        return self._on_writer(on_cursor, timeout, "the warehouse write")

    def run_serial(self, fn: Callable[[], T], timeout: float | None = 600.0) -> T:
        """Run ``fn()`` on the writer thread, after the writes already queued, and return its result;
        ``fn`` writes through ``ingest`` itself, as the event flush does (the acting facts' drain)."""
        return self._on_writer(fn, timeout, "the warehouse write")

    def _spark_write(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        snapshot = lake.read_pointer(self.cfg)
        derived = [n for n in snapshot.tables if n not in lake.all_tables()]
        con = lake.load_snapshot(self.cfg, derived)
        try:
            for name in lake.all_tables():  # readable, not writable
                files = snapshot.files(name)
                if files:
                    paths = ", ".join(_sql_text(str(self.cfg.spark_dir / f)) for f in files)
                    con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM read_parquet([{paths}], '
                                "union_by_name = true)")
                else:  # never written: empty, with its stored columns
                    cols = ", ".join(f'"{c}" {t}' for c, t in lake.table_columns(name))
                    con.execute(f'CREATE TEMP TABLE "{name}" ({cols})')
            result = fn(con)
            lake.publish_snapshot(self.cfg, con)  # the tables fn created or changed
            return result
        finally:
            con.close()

    def _on_writer(self, fn: Callable[[], T], timeout: float | None, what: str) -> T:
        """Queue ``fn`` on the writer thread, wait for it and hand back its result or exception."""
        if not self.running:
            raise ConfigError("the warehouse owner is not running")
        if self._gate.held():  # the writer's commit would wait for this thread, and it for the writer
            raise ReadInCommitError(f"{what} was asked for inside a read block; leave the block first")
        box: list[T] = []
        failure: list[BaseException] = []
        finished = threading.Event()

        def work() -> None:
            try:
                box.append(fn())
            except BaseException as exc:
                failure.append(exc)
            finally:
                finished.set()

        self._queue.put(work)
        if not finished.wait(timeout):
            raise TimeoutError(f"{what} did not finish in time")
        if failure:
            raise failure[0]
        return box[0]

    def _flush(self) -> int:
        """Import every closed spool segment (runs on the writer thread, or in ``start``)."""
        segments = self.spool.rotate()
        if not segments:
            return 0
        rows = self._read_segments(segments)
        count = int(rows.num_rows)
        if count and self.cfg.warehouse == "spark":
            # Appends: the flush reads no stored rows but the keys of the months it touches.
            with lake.scoped({"events", wh.QUARANTINE_TABLE, wh.IMPORTS_TABLE}):
                ingest.import_rows("events", rows, str(self.spool.folder), cfg=self.cfg)
        elif count:
            ingest.import_rows("events", rows, str(self.spool.folder), cfg=self.cfg)
        self.spool.done([s for s in segments if s.exists()])
        self.events_flushed += count
        self.last_flush_error = None
        return count

    def _read_segments(self, segments: list[Path]) -> pa.Table:
        """The spooled rows, oldest first, each with its segment and line (for quarantine entries).

        A segment that cannot be read is set aside (``failed/``) so that the others still go in.
        """
        if self._parser is None:
            self._parser = duckdb.connect()
        parts: list[pa.Table] = []
        for segment in segments:
            try:
                part = self._parser.execute(
                    f"SELECT * FROM read_json({_sql_text(str(segment))}, format = 'newline_delimited', "
                    f"columns = {_SPOOL_COLUMNS})"
                ).to_arrow_table()
            except duckdb.Error as exc:
                target = self.spool.set_aside(segment)
                self.last_flush_error = f"{segment.name}: {str(exc).splitlines()[0]} (moved to {target})"
                log.error("event spool segment unreadable, set aside: %s", self.last_flush_error)
                continue
            n = part.num_rows
            part = part.append_column("_file", pa.array([str(segment)] * n, pa.string()))
            part = part.append_column("_file_idx", pa.array([len(parts)] * n, pa.int32()))
            parts.append(part.append_column("_row", pa.array(range(1, n + 1), pa.int64())))
        if not parts:
            return pa.table({c.name: pa.array([], pa.string()) for c in EVENTS.inputs})
        return pa.concat_tables(parts)

    def _flush_logged(self) -> None:
        try:
            self._flush()
        except Exception as exc:  # the events stay in the spool for the next try
            self.last_flush_error = f"{type(exc).__name__}: {exc}"
            log.exception("event flush failed; the events stay spooled")

    def _flush_job(self) -> None:
        with self._lock:
            self._flush_queued = False
        self._flush_logged()

    def maintain(self, timeout: float | None = 600.0) -> tuple[lake.CompactResult, lake.VacuumResult]:
        """Spark: merge small files (partitions with more than ``compact_at``) and delete the
        snapshots and files no reader needs (older than ``keep_seconds``, not leased), on the
        writer thread. Runs by itself every ``maintain_seconds``."""
        if self.cfg.warehouse != "spark":
            raise ConfigError("compaction and vacuum are for the Spark warehouse")
        return self._on_writer(self._maintain, timeout, "the warehouse maintenance")

    def _maintain(self) -> tuple[lake.CompactResult, lake.VacuumResult]:
        self._maintained = time.monotonic()
        compacted = lake.compact(self.cfg, self.compact_at)
        vacuumed = lake.vacuum(self.cfg, self.keep_seconds)
        log.info("warehouse maintenance: %s, %s", compacted, vacuumed)
        return compacted, vacuumed

    def _maintain_logged(self) -> None:
        try:
            self._maintain()
        except Exception:
            log.exception("warehouse maintenance failed")

    def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if (self.cfg.warehouse == "spark" and not self._stopping.is_set()
                    and time.monotonic() - self._maintained >= self.maintain_seconds):
                self._maintained = time.monotonic()
                self._queue.put(self._maintain_logged)
            if self._stopping.is_set() or not self.spool.pending():
                continue
            with self._lock:
                if self._flush_queued:
                    continue
                self._flush_queued = True
            self._queue.put(self._flush_job)

    def _write_loop(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            try:
                work()
            except Exception:
                log.exception("warehouse write failed")

    # -- server.json ----------------------------------------------------------------------------

    @property
    def server_file(self) -> Path:
        """``<data_dir>/server.json``."""
        return self.cfg.data_dir / SERVER_FILE

    def _announce(self, host: str, port: int) -> None:
        info = {"pid": os.getpid(), "host": host, "port": port, "token": self.token,
                "started_at": _now().isoformat()}
        tmp = self.server_file.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.server_file)

    def _withdraw(self) -> None:
        info = read_server_file(self.cfg)
        if info is not None and info.pid == os.getpid() and hmac.compare_digest(info.token, self.token):
            self.server_file.unlink(missing_ok=True)
        self.address = None

