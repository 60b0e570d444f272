"""One process owns the warehouse: the server, while it runs.

DuckDB lets one process open a database file for writing, and then no other process may open it
at all. So while ``growthwheel serve`` runs, its :class:`WarehouseOwner` holds the only connection
to ``<data_dir>/warehouse.duckdb`` and everything else goes through it:

* **Reads** (console pages, API routes) run on a cursor of that connection per thread
  (:meth:`WarehouseOwner.read`). DuckDB's MVCC lets them run while a write is under way: a read
  sees the last committed state and never waits for a long import.
* **Writes** run one at a time, in order, on a single writer thread: imports
  (:meth:`WarehouseOwner.submit_import`, with their progress on an :class:`ImportJob`) and the
  flushes of captured events.
* **Events** (:meth:`WarehouseOwner.append_events`) are durable before the API answers: they are
  appended to a JSON Lines segment in ``<data_dir>/events-spool/`` and ``fdatasync``-ed (appends
  that arrive together share one sync). About every second (or sooner when many are waiting) the
  closed segments are read and imported into ``events`` by ``ingest.import_rows`` — the normal
  validation, quarantine (naming segment and line) and merge keyed on ``event_id`` — and deleted
  after the commit. Segments left by a crash are imported when the owner next starts; as the merge is keyed
  on ``event_id``, replaying a segment that had already been merged changes nothing.
* **Other processes.** On start the owner writes ``<data_dir>/server.json`` (pid, host, port and a
  random token, mode 0600) and removes it on stop. ``growthwheel import`` finds it
  (:func:`find_server`: the pid is alive and the port answers with that pid) and hands its import
  to the server (:func:`import_via_server`, through the loopback-only, token-protected
  ``/api/v1/internal/imports``), printing the same result as a direct import. Without a running
  server the CLI opens the warehouse itself, as before. Commands that only read (``kpi``,
  ``report``) cannot open the file while the server holds it; they fail with one clear line
  (:func:`warehouse_in_use_error`) pointing at the console and API instead.
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
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal, TypeVar

import duckdb
import ibis
import pyarrow as pa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from ibis.backends import BaseBackend
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from growthwheel.api.deps import Principal, require_scope
from growthwheel.config import Settings
from growthwheel.errors import ConfigError, GrowthwheelError
from growthwheel.warehouse import db as wh
from growthwheel.warehouse import ingest
from growthwheel.warehouse.schema import EVENTS, TABLES

log = logging.getLogger(__name__)

SERVER_FILE = "server.json"
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_SPOOL_COLUMNS = "{" + ", ".join(f"'{c.name}': 'VARCHAR'" for c in EVENTS.inputs) + "}"


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

SPOOL_DIR = "events-spool"
T = TypeVar("T")

JobStatus = Literal["queued", "running", "done", "failed"]


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Import jobs
# ---------------------------------------------------------------------------------------------


@dataclass
class ImportJob:
    """An import handed to the owner: its status, progress and outcome.

    ``status`` moves queued → running → done | failed. While running, ``phase`` and ``fraction``
    (0–1, ``None`` when unknown) follow the import's own progress reports (large files only).
    ``result`` is the ``ImportResult`` once done; ``error`` / ``error_code`` when failed.
    """

    id: str
    table: str
    format: str
    files: list[str]
    status: JobStatus = "queued"
    phase: str | None = None
    fraction: float | None = None
    result: ingest.ImportResult | None = None
    error: str | None = None
    error_code: str | None = None
    error_status: int | None = None
    submitted_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def state(self) -> JobStatus:
        """Same as ``status`` (the console's name for it)."""
        return self.status

    @property
    def paths(self) -> list[str]:
        """Same as ``files``."""
        return self.files

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (times as ISO 8601 text, the result as ``ImportResult.to_dict()``)."""
        data: dict[str, Any] = {
            name: getattr(self, name) for name in (
                "id", "table", "format", "files", "status", "phase", "fraction", "error",
                "error_code", "error_status",
            )
        }
        data["files"] = list(self.files)
        data["result"] = self.result.to_dict() if self.result is not None else None
        for name in ("submitted_at", "started_at", "finished_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value is not None else None
        return data

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is done or failed; ``False`` on timeout."""
        return self.done.wait(timeout)


# ---------------------------------------------------------------------------------------------
# The event spool: append-only JSON Lines segments, durable on return.
# ---------------------------------------------------------------------------------------------


class EventSpool:
    """Captured events waiting for the warehouse, in ``<data_dir>/events-spool/*.jsonl``.

    Each append writes whole lines and returns once they are on disk (``fdatasync``). Appends
    running at the same time share one sync (group commit): a sync that starts after a write
    covers it. :meth:`rotate` closes the segment being written so that it can be imported;
    :meth:`done` deletes imported segments.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # the open segment, counters
        self._sync_lock = threading.Lock()  # one fdatasync at a time; closing a segment waits for it
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._seq = 0
        self._written = 0  # appends written to the open segment(s)
        self._synced = 0  # appends known to be on disk
        self._lines: dict[Path, int] = {}
        self._pending = 0

    def _open_segment(self) -> IO[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{_now():%Y%m%dT%H%M%S%f}-{os.getpid()}-{self._seq:06d}.jsonl"
        self._path = self.folder / name
        self._file = open(self._path, "ab")  # kept open across appends
        self._lines[self._path] = 0
        self._sync_dir()
        return self._file

    def _sync_dir(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write ``rows`` as JSON lines and make them durable before returning."""
        if not rows:
            return
        data = "".join([_ENCODE(row) + "\n" for row in rows]).encode("utf-8")
        with self._lock:
            handle = self._file or self._open_segment()
            handle.write(data)
            handle.flush()
            self._written += 1
            mine = self._written
            assert self._path is not None
            self._lines[self._path] += len(rows)
            self._pending += len(rows)
        with self._sync_lock:
            if self._synced >= mine:
                return  # a sync that started after our write has covered it
            with self._lock:
                target = self._written
                assert self._file is not None  # closing syncs first, so ours would be covered
                fd = self._file.fileno()
            os.fdatasync(fd)
            self._synced = target

    def _close_segment(self) -> None:
        """Sync and close the open segment (caller holds both locks)."""
        if self._file is not None:
            self._file.flush()
            os.fdatasync(self._file.fileno())
            self._synced = self._written
            self._file.close()
            self._file = None
            self._path = None

    def rotate(self) -> list[Path]:
        """Close the segment being written; return every closed segment, oldest first."""
        with self._sync_lock, self._lock:
            self._close_segment()
            return sorted(p for p in self.folder.glob("*.jsonl")) if self.folder.is_dir() else []

    def done(self, segments: Sequence[Path]) -> None:
        """Forget segments whose events are committed to the warehouse."""
        with self._lock:
            for path in segments:
                path.unlink(missing_ok=True)
                self._pending -= self._lines.pop(path, 0)
            if self.folder.is_dir():
                self._sync_dir()

    def set_aside(self, path: Path) -> Path:
        """Move a segment that cannot be imported to ``failed/`` (kept for a person to look at)."""
        target = self.folder / "failed" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            os.replace(path, target)
            self._pending -= self._lines.pop(path, 0)
        return target

    def pending(self) -> int:
        """Events appended and not yet committed to the warehouse."""
        return self._pending

    def recover(self) -> list[Path]:
        """Segments left by an earlier process, repaired: a torn last line (a crash part-way
        through an append that was never acknowledged) is cut off."""
        if not self.folder.is_dir():
            return []
        found = sorted(self.folder.glob("*.jsonl"))
        for path in found:
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                with open(path, "r+b") as handle:
                    handle.truncate(keep)
                    handle.flush()
                    os.fsync(handle.fileno())
                log.warning("%s: cut a torn last line (%d bytes)", path, len(data) - keep)
                data = data[:keep]
            with self._lock:
                self._lines[path] = data.count(b"\n")
                self._pending += self._lines[path]
        return found

    def close(self) -> None:
        """Close the segment being written (its events stay for the next flush or start)."""
        with self._sync_lock, self._lock:
            self._close_segment()


# ---------------------------------------------------------------------------------------------
# The owner
# ---------------------------------------------------------------------------------------------


class WarehouseOwner:
    """Holds the warehouse for the server process; see the module docstring.

    ``flush_seconds``: how often spooled events are moved into the warehouse;
    ``flush_at``: flush sooner once this many events are waiting; ``lock_wait``: how long ``start``
    waits for another process (a CLI import) to release the warehouse file.
    """

    def __init__(self, cfg: Settings, *, flush_seconds: float = 1.0, flush_at: int = 50_000,
                 lock_wait: float = 30.0) -> None:
        self.cfg = cfg
        self.flush_seconds = flush_seconds
        self.flush_at = flush_at
        self.lock_wait = lock_wait
        self.token = secrets.token_urlsafe(32)
        self.spool = EventSpool(cfg.data_dir / SPOOL_DIR)
        self.address: tuple[str, int] | None = None
        self.events_flushed = 0
        self.last_flush_error: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._spark: BaseBackend | None = None
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
        self._spark = None
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
        """An Ibis backend for reading, on this thread's own cursor (never waits for writes)."""
        yield self._backend()

    def _backend(self) -> BaseBackend:
        if self.cfg.warehouse == "spark":
            if self._spark is None:
                self._spark = wh.connect(self.cfg)
            return self._spark
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
                      on_done: Callable[[ImportJob], None] | None = None) -> str:
        """Queue an import of ``paths`` (files this process can read) on the writer thread and
        return its job id (see :meth:`job`).

        Checks the table, format and files at once (raising the import's own errors); the rest is
        reported on the job. ``on_done`` is called on the writer thread when it ends.
        """
        if not self.running:
            raise ConfigError("the warehouse owner is not running")
        _table, files = ingest.check_request(table, paths, fmt)
        job = ImportJob(f"job_{uuid.uuid4().hex[:12]}", table, fmt, [str(p) for p in files])
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

            result = ingest.import_files(job.table, files, job.format, cfg=self.cfg, progress=progress)
        except GrowthwheelError as exc:
            job.error, job.error_code, job.error_status = exc.message, exc.code, exc.status
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
        its result (or raise its exception). ``connection`` is a fresh cursor of the warehouse
        (read-write, UTC), closed afterwards; ``fn`` owns its transaction. DuckDB only."""
        if self.cfg.warehouse != "duckdb":
            raise ConfigError("this write needs the DuckDB warehouse")

        def on_cursor() -> T:
            if self._con is None:
                raise ConfigError("the warehouse is not open (the server is stopping)")
            cursor = self._con.cursor()
            try:
                cursor.execute("SET TimeZone = 'UTC'")
                return fn(cursor)
            finally:
                cursor.close()

        return self._on_writer(on_cursor, timeout, "the warehouse write")

    def _on_writer(self, fn: Callable[[], T], timeout: float | None, what: str) -> T:
        """Queue ``fn`` on the writer thread, wait for it and hand back its result or exception."""
        if not self.running:
            raise ConfigError("the warehouse owner is not running")
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
        if count:
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

    def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
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


class JobNotFoundError(GrowthwheelError):
    """No import job with that id (on this server, since it started)."""

    code = "import_not_found"
    status = 404


# ---------------------------------------------------------------------------------------------
# Finding the server from another process, and handing it an import
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """What ``server.json`` says about the running server."""

    pid: int
    host: str
    port: int
    token: str

    @property
    def url(self) -> str:
        """Base URL on the loopback interface."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"


class ServerError(GrowthwheelError):
    """An error reported by the running server (its own code and status kept)."""

    def __init__(self, message: str, code: str = "server_error", status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def read_server_file(cfg: Settings) -> ServerInfo | None:
    """``server.json`` of the data directory, or ``None`` when absent or unreadable."""
    try:
        data = json.loads((cfg.data_dir / SERVER_FILE).read_text(encoding="utf-8"))
        return ServerInfo(int(data["pid"]), str(data["host"]), int(data["port"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _call(info: ServerInfo, method: str, path: str, body: Mapping[str, Any] | None = None,
          timeout: float = 10.0) -> tuple[int, Any]:
    """One JSON request to the server (stdlib only, so the CLI needs no HTTP client)."""
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(
        info.url + path, data=data, method=method,
        headers={"Authorization": f"Bearer {info.token}", "Content-Type": "application/json",
                 "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {}
        return int(exc.code), payload if isinstance(payload, dict) else {}


def find_server(cfg: Settings, wait: float = 10.0) -> ServerInfo | None:
    """The server holding this data directory, if one is running and answering.

    ``server.json`` must name a live process that answers ``/api/v1/internal/ping`` with the same
    pid and accepts the token; a server still starting up is waited for up to ``wait`` seconds.
    A stale file (the process is gone) is ignored.
    """
    info = read_server_file(cfg)
    if info is None or not _pid_alive(info.pid):
        return None
    deadline = time.monotonic() + wait
    while True:
        try:
            code, body = _call(info, "GET", "/api/v1/internal/ping", timeout=2.0)
        except (OSError, ValueError):
            if time.monotonic() >= deadline or not _pid_alive(info.pid):
                return None
            time.sleep(0.2)
            continue
        return info if code == 200 and body.get("pid") == info.pid else None


def _result_from_dict(data: Mapping[str, Any]) -> ingest.ImportResult:
    tables = {k: ingest.TableCounts(**v) for k, v in data["tables"].items()}
    return ingest.ImportResult(**{**data, "tables": tables})


def _problem(code: int, body: Mapping[str, Any]) -> ServerError:
    return ServerError(str(body.get("detail") or f"the server answered {code}"),
                       str(body.get("code") or "server_error"), code)


def import_via_server(
    info: ServerInfo,
    table: str,
    paths: Sequence[Path | str],
    fmt: str = "generic",
    *,
    progress: ingest.Progress | None = None,
    waiting: Callable[[str], None] | None = None,
    poll: float = 0.2,
) -> ingest.ImportResult:
    """Run an import in the server that owns the warehouse and return its result.

    Paths are sent absolute (the server reads the files itself). ``progress`` receives the same
    ``(phase, fraction)`` reports as a direct import; ``waiting`` is told once if the import waits
    behind other writes.
    """
    files = [os.path.abspath(p) for p in paths]
    try:
        code, body = _call(info, "POST", "/api/v1/internal/imports",
                           {"table": table, "paths": files, "format": fmt})
        if code != 202:
            raise _problem(code, body)
        job_id = str(body["id"])
        told = False
        seen: tuple[str | None, float | None] = (None, None)
        while True:
            code, body = _call(info, "GET", f"/api/v1/internal/imports/{job_id}")
            if code != 200:
                raise _problem(code, body)
            if body["status"] == "queued" and waiting is not None and not told:
                waiting("waiting for the server to finish earlier writes…")
                told = True
            now = (body.get("phase"), body.get("fraction"))
            if progress is not None and now[0] not in (None, "done") and now != seen:
                progress(str(now[0]), now[1])
            seen = now
            if body["status"] == "done":
                return _result_from_dict(body["result"])
            if body["status"] == "failed":
                raise ServerError(str(body.get("error")), str(body.get("error_code") or "server_error"),
                                  int(body.get("error_status") or 500))
            time.sleep(poll)
    except OSError as exc:
        raise ServerError(
            f"lost contact with the server at {info.url} during the import ({exc}); if it stopped, "
            "import again (imports are atomic and re-importing is idempotent)", "server_unreachable", 503,
        ) from None


def warehouse_in_use_error(cfg: Settings, exc: BaseException | None = None) -> ConfigError:
    """The one-line error for a process that cannot open the warehouse because another holds it."""
    info = read_server_file(cfg)
    if info is not None and _pid_alive(info.pid):
        return ConfigError(
            f"the Growthwheel server (pid {info.pid}, {info.url}) holds the warehouse "
            f"{cfg.warehouse_path}; read it through the server (console or /api/v1), "
            "or stop the server first (imports are handed to it automatically)"
        )
    detail = str(exc).splitlines()[0] if exc is not None else ""
    return ConfigError(
        f"the warehouse {cfg.warehouse_path} is in use by another process; wait for it to finish "
        f"and try again ({detail})"
    )


# ---------------------------------------------------------------------------------------------
# FastAPI: the owner in the app's life cycle, the dependency, and routes
# ---------------------------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start a :class:`WarehouseOwner` for ``app.state.cfg`` and stop it on shutdown.

    Does nothing if ``app.state.warehouse`` is already set (the app's own lifespan started one).
    ``app.state.server_address = (host, port)``, set by the command that runs the server, makes
    the owner announce itself in ``server.json``; ``app.state.warehouse_options`` (a dict) is passed
    to the owner (e.g. ``flush_seconds``).
    """
    if getattr(app.state, "warehouse", None) is not None:
        yield
        return
    owner = WarehouseOwner(app.state.cfg, **getattr(app.state, "warehouse_options", {}))
    address = getattr(app.state, "server_address", None)
    host, port = (address if address else (None, None))
    await owner.astart(host, port)
    app.state.warehouse = owner
    try:
        yield
    finally:
        app.state.warehouse = None
        await owner.astop()


def install(app: FastAPI) -> FastAPI:
    """Run :func:`lifespan` inside the app's own lifespan (idempotent); returns ``app``."""
    if getattr(app.state, "warehouse_installed", False):
        return app
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def both(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state, lifespan(a):
            yield state

    app.router.lifespan_context = both
    app.state.warehouse_installed = True
    return app


def warehouse(request: Request) -> WarehouseOwner:
    """FastAPI dependency: the app's :class:`WarehouseOwner`."""
    owner: WarehouseOwner | None = getattr(request.app.state, "warehouse", None)
    if owner is None:
        raise ConfigError("the warehouse is not open in this server")
    return owner


Owner = Annotated[WarehouseOwner, Depends(warehouse)]
read_scope = require_scope("read")
"""The dependency guarding warehouse reads (module-level so tests can override it)."""

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def internal_caller(request: Request, owner: Owner) -> None:
    """Only another local process holding the token of ``server.json`` may use internal routes."""
    client = request.client.host if request.client else ""
    allowed = _LOOPBACK | ({owner.address[0]} if owner.address else set())
    supplied = request.headers.get("authorization", "")
    expected = f"Bearer {owner.token}"
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong server token")
    if client not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "internal routes answer local processes only")


class ImportRequest(BaseModel):
    """An import handed over by another local process."""

    table: str = Field(description="target table")
    paths: list[str] = Field(min_length=1, max_length=1000, description="absolute paths")
    format: str = "generic"


router = APIRouter(prefix="/api/v1")
internal = APIRouter(prefix="/internal", dependencies=[Depends(internal_caller)],
                     include_in_schema=False)


@internal.get("/ping")
def ping() -> dict[str, int]:
    """Proves to a local process that this server owns its data directory."""
    return {"pid": os.getpid()}


@internal.post("/imports", status_code=status.HTTP_202_ACCEPTED)
def post_import(body: ImportRequest, owner: Owner) -> dict[str, Any]:
    """Queue an import of files on this machine; poll the job it returns."""
    return _job_dict(owner, owner.submit_import(body.table, [Path(p) for p in body.paths], body.format))


@internal.get("/imports/{job_id}")
def get_import(job_id: str, owner: Owner) -> dict[str, Any]:
    """An import job's status, progress and result."""
    return _job_dict(owner, job_id)


@internal.get("/kpis")
def internal_kpis(
    owner: Owner, by: str = "month",
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    dimension: str | None = None,
) -> list[dict[str, Any]]:
    """``growthwheel kpi --json`` for a shell while this server owns the warehouse."""
    from growthwheel.insight.kpis import kpi_frame, kpi_records
    from growthwheel.kit.money import currency_exponent

    exponent = currency_exponent(owner.cfg.shop().currency)
    with owner.read() as con:
        return kpi_records(kpi_frame(con, by=by, start=start, end=end, dimension=dimension,
                                     currency_exponent=exponent))


@internal.get("/report")
def internal_report(owner: Owner, period: str = "week", as_of: date | None = None) -> dict[str, str]:
    """``growthwheel report`` for a shell while this server owns the warehouse."""
    from growthwheel.reports.review import render_review

    shop = owner.cfg.shop()
    with owner.read() as con:
        return {"html": render_review(con, period=period, as_of=as_of, shop_name=shop.name,
                                      currency=shop.currency)}


def read_via_server(info: ServerInfo, path: str, params: Mapping[str, str | None]) -> Any:
    """A read-only computation (``kpis`` or ``report``) run by the server that owns the warehouse."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    try:
        code, body = _call(info, "GET", f"/api/v1/internal/{path}?{query}", timeout=300.0)
    except OSError as exc:
        raise ServerError(f"cannot reach the server at {info.url} ({exc})", "server_unreachable",
                          503) from None
    if code != 200:
        raise _problem(code, body)
    return body


def _job_dict(owner: WarehouseOwner, job_id: str) -> dict[str, Any]:
    job = owner.job(job_id)
    if job is None:
        raise JobNotFoundError(f"no import job {job_id!r} on this server")
    return job.to_dict()


router.include_router(internal)


class WarehouseCounts(BaseModel):
    """Rows per fact table, and events accepted but not yet flushed into ``events``."""

    tables: dict[str, int]
    events_pending: int


@router.get("/warehouse/counts", tags=["warehouse"], response_model=WarehouseCounts)
def get_counts(owner: Owner, _who: Annotated[Principal, Depends(read_scope)]) -> WarehouseCounts:
    """Rows in each warehouse table (a cheap read that never waits for a running import)."""
    return WarehouseCounts(tables=owner.counts(), events_pending=owner.pending_events())
