"""The Spark warehouse's storage: Parquet files, snapshots that readers can trust, cheap appends.

Layout of ``cfg.spark_dir`` (``<data_dir>/spark-warehouse``)::

    CURRENT.json                      the snapshot in force (a copy of its manifest)
    snapshots/<id>.json               every snapshot still kept: table -> partition -> files
    leases/<id>.<pid>.<token>         a reader (in process ``pid``) is using snapshot ``id``
    <table>/<partition>/<version>-*.parquet
    .lock                             taken while a snapshot is published, vacuumed or compacted

**Partitions.** Tables with a natural time axis are split by shop-local month (``events`` by
``event_date``, ``orders`` by ``order_date``, ``_imports`` / ``_quarantine`` by their timestamps);
``order_lines`` by a hash bucket of ``order_id`` (its order decides its fate). Others have one
partition (``all``).

**Writing.** Imports validate and merge in DuckDB (``warehouse/ingest.py``): :func:`load_snapshot`
gives the import an in-memory DuckDB connection holding the tables it writes, read from the
current snapshot, each row marked with the partition it came from (a hidden ``_gw_part`` column;
rows the import inserts have none). A *scope* (:func:`scoped`, used by the event flush) limits the
rows loaded to some partitions of a table — the months a batch of events falls in — so a flush
reads what it touches, not the table. After the import's ``COMMIT``, :func:`publish_snapshot`
works out, per partition, what changed: a partition that lost no row only gains a new file with
the rows the import added (an **append**: its cost is what it adds); a partition that lost rows
(an update replaced them) is rewritten, alone. Unchanged tables keep their files. It ``fsync``-s
the files, writes the new manifest and only then replaces ``CURRENT.json`` (atomic rename), so a
reader sees either the old or the new snapshot, and a crash leaves the old one in force.

**Concurrent imports.** The second to publish finds that a partition it loaded changed since and
fails with :class:`SnapshotConflictError` (nothing is lost; run it again).

**Retention.** A reader takes a *lease* on the snapshot it reads (:func:`lease`): a file naming the
snapshot and its process; :func:`lease_current` leases the snapshot in force without a window in
which a vacuum could remove it first. :func:`vacuum` deletes snapshots that are not current, were published
more than ``keep_seconds`` ago and are leased by no live process, then every file no kept snapshot
references. It is run by the server's owner (every minute) and by ``growthwheel warehouse
vacuum``.

**Compaction.** Appends leave many small files; :func:`compact` merges the files of every
partition that has more than ``min_files`` into one (a new snapshot; the old files go at vacuum).
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from growthwheel.config import Settings
from growthwheel.errors import ConfigError, GrowthwheelError
from growthwheel.warehouse.db import IMPORTS_TABLE, QUARANTINE_TABLE
from growthwheel.warehouse.schema import IMPORTS_STORED, QUARANTINE_STORED, TABLES
from growthwheel.warehouse.sqltext import lit as _lit
from growthwheel.warehouse.sqltext import q as _q

POINTER = "CURRENT.json"
SNAPSHOTS_DIR = "snapshots"
LEASES_DIR = "leases"
LOCK_FILE = ".lock"
FORMAT = 2
#: One partition for tables that are not split.
WHOLE = "all"
#: How long a snapshot that is no longer current is kept for readers without a lease (seconds).
KEEP_SECONDS = 600.0
_BASE_VARIABLE = "gw_lake_base"

#: Partition of a row, as DuckDB SQL over the stored columns (tables not named: one partition).
PARTITION_SQL: dict[str, str] = {
    "events": "coalesce(strftime(event_date, '%Y-%m'), 'none')",
    "orders": "coalesce(strftime(order_date, '%Y-%m'), 'none')",
    "order_lines": "'b' || lpad(CAST(hash(order_id) % 16 AS VARCHAR), 2, '0')",
    IMPORTS_TABLE: "coalesce(strftime(finished_at, '%Y-%m'), 'none')",
    QUARANTINE_TABLE: "coalesce(strftime(quarantined_at, '%Y-%m'), 'none')",
}

Manifest = dict[str, dict[str, list[str]]]  # table -> partition -> files (relative to spark_dir)


class SnapshotConflictError(GrowthwheelError):
    """Another import published a partition this one rewrote since it was loaded; run it again."""

    code = "warehouse_conflict"
    status = 409


# ---------------------------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One published state of the warehouse: table -> partition -> Parquet files (relative)."""

    id: str | None = None
    tables: Manifest = field(default_factory=dict)
    published_at: float = 0.0

    def files(self, table: str) -> list[str]:
        """Every file of ``table``, partition by partition."""
        return [f for part in sorted(self.tables.get(table, {})) for f in self.tables[table][part]]


def _parse(data: Mapping[str, object], root: Path, where: Path) -> Snapshot:
    fmt = data.get("format")
    raw_tables = data.get("tables")
    if not isinstance(raw_tables, dict):
        raise ConfigError(f"{where}: snapshot without tables")
    published = data.get("published_at")
    when = 0.0
    if isinstance(published, str):
        with contextlib.suppress(ValueError):
            when = datetime.strptime(published, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    if fmt == 1:  # one version directory per table, written before partitions existed
        tables: Manifest = {}
        for name, rel in raw_tables.items():
            files = sorted(p.relative_to(root).as_posix() for p in (root / str(rel)).glob("*.parquet"))
            tables[str(name)] = {WHOLE: files}
        return Snapshot(str(data.get("snapshot")) if data.get("snapshot") else None, tables, when)
    if fmt != FORMAT:
        raise ConfigError(f"{where}: unknown snapshot format {fmt!r}")
    tables = {str(n): {str(p): [str(f) for f in fs] for p, fs in parts.items()}
              for n, parts in raw_tables.items()}
    return Snapshot(str(data["snapshot"]), tables, when)


def read_pointer(cfg: Settings) -> Snapshot:
    """The snapshot in force (empty if nothing was ever published)."""
    path = cfg.spark_dir / POINTER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Snapshot()
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable snapshot pointer ({exc})") from exc
    return _parse(data, cfg.spark_dir, path)


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, body: object) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(body, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent, directory=True)


def _switch(root: Path, snapshot: Snapshot) -> None:
    """Record ``snapshot`` in ``snapshots/`` and make it the one in force (rename of the pointer)."""
    assert snapshot.id is not None
    body = {
        "format": FORMAT,
        "snapshot": snapshot.id,
        "published_at": datetime.fromtimestamp(snapshot.published_at, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"),
        "tables": {n: dict(sorted(p.items())) for n, p in sorted(snapshot.tables.items())},
    }
    (root / SNAPSHOTS_DIR).mkdir(parents=True, exist_ok=True)
    _write_json(root / SNAPSHOTS_DIR / f"{snapshot.id}.json", body)
    _write_json(root / POINTER, body)


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    """Exclusive lock held while one process publishes, vacuums or compacts."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _new_version() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


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


def _columns_of(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    description = con.execute(f"SELECT * FROM main.{_q(name)} LIMIT 0").description or []
    return [str(d[0]) for d in description]


# ---------------------------------------------------------------------------------------------
# Loading and publishing
# ---------------------------------------------------------------------------------------------

_SCOPE: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar("gw_lake_scope", default=None)


@contextlib.contextmanager
def scoped(tables: Collection[str]) -> Iterator[None]:
    """Within this block, :func:`load_snapshot` loads none of the rows of ``tables``: the import
    can only add to them, and :func:`publish_snapshot` reconciles what it adds with the stored
    rows of the partitions it falls in, by key (the event flush: its cost is the batch and the
    key column of the partitions it touches, not the table).

    The import's own counts then report every valid row as new; what is stored is right all the
    same (a row stored before, identical, is not stored twice; a changed one replaces it).
    """
    token = _SCOPE.set(frozenset(tables))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _fingerprint(con: duckdb.DuckDBPyConnection, name: str, where: str = "true") -> str:
    cols = ", ".join(_q(c) for c in _columns_of(con, name))
    row = con.execute(
        f"SELECT count(*), coalesce(sum(hash({cols})::HUGEINT), 0) FROM {_q(name)} WHERE {where}"
    ).fetchone()
    assert row is not None
    return f"{row[0]}:{row[1]}"


def _base_name(name: str) -> str:
    return "gw_lake_base_" + uuid.uuid5(uuid.NAMESPACE_OID, name).hex[:12]


def _row_hash(con: duckdb.DuckDBPyConnection, name: str) -> str:
    return f"hash({', '.join(_q(c) for c in _columns_of(con, name))})"


def load_snapshot(cfg: Settings, tables: Sequence[str],
                  scope: Collection[str] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection holding ``tables`` from the current snapshot.

    Fact and bookkeeping tables get their stored schema (columns the schema gained since a file
    was written are null); other tables (derived tables such as segment membership) are loaded as
    written. Tables in ``scope`` (or in the one set by :func:`scoped`) are created empty. What was
    loaded (a hash of each row and its partition) is kept in the connection for
    :func:`publish_snapshot`.
    """
    scope = scope if scope is not None else _SCOPE.get()
    snapshot = read_pointer(cfg)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        spill = cfg.spark_dir / ".tmp" / uuid.uuid4().hex[:12]
        # DuckDB creates its spill directory when it first spills, but not the parents: without
        # ``.tmp`` a publish larger than memory failed ("Failed to create directory").
        spill.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {_lit(str(spill))}")
        loaded: dict[str, dict[str, object]] = {}
        for name in dict.fromkeys(tables):
            parts = snapshot.tables.get(name, {})
            is_scoped = scope is not None and name in scope
            wanted = [] if is_scoped else sorted(parts)
            try:
                columns: tuple[tuple[str, str], ...] | None = table_columns(name)
            except KeyError:
                columns = None
            if columns is not None:
                cols = ", ".join(f"{_q(c)} {t}" for c, t in columns)
                con.execute(f"CREATE TABLE {_q(name)} ({cols})")
            base = _base_name(name)
            con.execute(f"CREATE TABLE {base} (h UBIGINT, p VARCHAR)")
            for part in wanted:
                files = [str(cfg.spark_dir / f) for f in parts[part]]
                if not files:
                    continue
                source = f"read_parquet([{', '.join(_lit(f) for f in files)}], union_by_name = true)"
                try:
                    present = {str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
                    if columns is None:
                        con.execute(f"CREATE TABLE {_q(name)} AS SELECT * FROM {source} LIMIT 0")
                        columns = tuple((c, "") for c in _columns_of(con, name))
                    common = ", ".join(_q(c) for c, _ in columns if c in present)
                    before = con.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()
                    con.execute(f"INSERT INTO {_q(name)} ({common}) SELECT {common} FROM {source}")
                    con.execute(f"INSERT INTO {base} SELECT {_row_hash(con, name)}, {_lit(part)} "
                                f"FROM {_q(name)} WHERE rowid >= {int(before[0]) if before else 0}")
                except duckdb.Error as exc:
                    raise ConfigError(f"snapshot {snapshot.id}: {name}/{part} is unreadable ({exc})") from exc
            if columns is None:
                con.execute(f"DROP TABLE {base}")
                continue  # a derived table never written: the writer creates it
            loaded[name] = {"files": {p: parts[p] for p in wanted}, "scoped": is_scoped}
        con.execute(f"SET VARIABLE {_BASE_VARIABLE} = ?", [json.dumps({"tables": loaded})])
    except BaseException:
        con.close()
        raise
    return con


def _user_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                       "AND NOT temporary AND database_name = current_database()").fetchall()
    return [str(r[0]) for r in rows if not str(r[0]).startswith("gw_")]


def _copy(con: duckdb.DuckDBPyConnection, select: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({select}) TO {_lit(str(target))} (FORMAT parquet, COMPRESSION zstd)")
    _fsync_path(target)
    _fsync_path(target.parent, directory=True)


def _partition_sql(name: str) -> str:
    return PARTITION_SQL.get(name, _lit(WHOLE))


def _reconcile(con: duckdb.DuckDBPyConnection, root: Path, name: str, files: list[str],
               new_rows: str) -> str | None:
    """For a scoped table: drop added rows already stored identically in ``files``; if some
    replace stored rows, return the SELECT of the rewritten partition (else ``None``: append)."""
    key = TABLES[name].key if name in TABLES else ()
    if not files or not key:
        return None
    keys = ", ".join(_q(k) for k in key)
    source = f"read_parquet([{', '.join(_lit(str(root / f)) for f in files)}], union_by_name = true)"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE gw_lake_hit AS SELECT {keys}, _row_hash FROM {source} "
        f"WHERE ({keys}) IN (SELECT ({keys}) FROM {_q(name)} WHERE {new_rows})")
    match = " AND ".join(f"h.{_q(k)} IS NOT DISTINCT FROM t.{_q(k)}" for k in key)
    con.execute(f"DELETE FROM {_q(name)} t WHERE {new_rows} AND EXISTS (SELECT 1 FROM gw_lake_hit h "
                f"WHERE {match} AND h._row_hash = t._row_hash)")
    row = con.execute(f"SELECT count(*) FROM {_q(name)} t WHERE {new_rows} AND EXISTS "
                      f"(SELECT 1 FROM gw_lake_hit h WHERE {match})").fetchone()
    if not row or not row[0]:
        return None
    cols = ", ".join(_q(c) for c in _columns_of(con, name))
    stored = match.replace("h.", "s.")
    return (f"SELECT {cols} FROM {source} s WHERE NOT EXISTS (SELECT 1 FROM {_q(name)} t WHERE "
            f"{new_rows} AND {stored}) UNION ALL BY NAME SELECT {cols} FROM {_q(name)} WHERE {new_rows}")


def publish_snapshot(cfg: Settings, con: duckdb.DuckDBPyConnection,
                     tables: Sequence[str] | None = None) -> Snapshot | None:
    """Write what changed in ``tables`` (default: every table of ``con``) and switch to it.

    ``con`` must come from :func:`load_snapshot`. Per partition: unchanged → same files; rows only
    added → one new file with them; rows removed or replaced → the partition is rewritten. A
    table created in ``con`` (a derived table) is written whole. Returns the new snapshot, or
    ``None`` when nothing changed. Raises :class:`SnapshotConflictError` if another writer
    changed a loaded partition meanwhile.
    """
    row = con.execute(f"SELECT getvariable({_lit(_BASE_VARIABLE)})").fetchone()
    if row is None or row[0] is None:
        raise ValueError("publish_snapshot needs a connection made by load_snapshot")
    loaded: dict[str, dict[str, object]] = json.loads(row[0])["tables"]
    present = set(_user_tables(con))
    names = [n for n in (dict.fromkeys(tables) if tables is not None else sorted(present)) if n in present]
    root = cfg.spark_dir
    with _lock(root):
        current = read_pointer(cfg)
        version = _new_version()
        new_tables: Manifest = {n: {p: list(f) for p, f in parts.items()}
                                for n, parts in current.tables.items()}
        changed = False
        for name in names:
            info = loaded.get(name) or {"files": {}, "scoped": False}
            now_parts = current.tables.get(name, {})
            if name not in loaded and now_parts:
                raise SnapshotConflictError(
                    f"another writer created {name} meanwhile; nothing was written, run it again")
            base = _base_name(name)
            if name not in loaded:
                con.execute(f"CREATE OR REPLACE TABLE {base} (h UBIGINT, p VARCHAR)")
            files_then: dict[str, list[str]] = info["files"]  # type: ignore[assignment]
            moved = [p for p, fs in files_then.items() if now_parts.get(p, []) != fs]
            if moved:
                raise SnapshotConflictError(
                    f"another import changed {name} ({', '.join(moved)}) meanwhile; nothing was "
                    "written by this one, run it again")
            part_expr = _partition_sql(name)
            cols = ", ".join(_q(c) for c in _columns_of(con, name))
            con.execute(f"CREATE OR REPLACE TEMP TABLE gw_lake_now AS SELECT {_row_hash(con, name)} AS h, "
                        f"{part_expr} AS p, rowid AS r FROM {_q(name)}")
            con.execute(f"CREATE OR REPLACE TEMP TABLE gw_lake_new AS SELECT n.r, n.p FROM gw_lake_now n "
                        f"ANTI JOIN {base} b ON b.h = n.h")
            rewrite = [str(r[0]) for r in con.execute(
                f"SELECT DISTINCT b.p FROM {base} b ANTI JOIN gw_lake_now n ON n.h = b.h ORDER BY 1"
            ).fetchall()]
            for part in rewrite:
                # Rows removed or changed: rewrite the partition (its kept rows and its new rows).
                where = (f"rowid IN (SELECT n.r FROM gw_lake_now n SEMI JOIN (SELECT h FROM {base} "
                         f"WHERE p = {_lit(part)}) b ON b.h = n.h) OR rowid IN "
                         f"(SELECT r FROM gw_lake_new WHERE p = {_lit(part)})")
                rel = f"{name}/{part}/{version}-r.parquet"
                _copy(con, f"SELECT {cols} FROM {_q(name)} WHERE {where}", root / rel)
                new_tables.setdefault(name, {})[part] = [rel]
                changed = True
            added = [str(r[0]) for r in con.execute(
                "SELECT DISTINCT p FROM gw_lake_new ORDER BY 1").fetchall() if str(r[0]) not in rewrite]
            for part in added:
                new_rows = f"rowid IN (SELECT r FROM gw_lake_new WHERE p = {_lit(part)})"
                if part not in files_then and not info["scoped"] and now_parts.get(part):
                    raise SnapshotConflictError(f"{name}/{part} appeared meanwhile; run it again")
                select = (_reconcile(con, root, name, now_parts.get(part, []), new_rows)
                          if info["scoped"] else None)
                if select is not None:
                    rel = f"{name}/{part}/{version}-r.parquet"
                    _copy(con, select, root / rel)
                    new_tables.setdefault(name, {})[part] = [rel]
                else:
                    n = con.execute(f"SELECT count(*) FROM {_q(name)} WHERE {new_rows}").fetchone()
                    if not n or not n[0]:
                        continue  # every row was stored already
                    rel = f"{name}/{part}/{version}-a.parquet"
                    _copy(con, f"SELECT {cols} FROM {_q(name)} WHERE {new_rows}", root / rel)
                    new_tables.setdefault(name, {}).setdefault(part, []).append(rel)
                changed = True
            if not new_tables.get(name) and name not in all_tables():
                # A derived table with no rows yet: one empty file keeps its columns for readers.
                rel = f"{name}/{WHOLE}/{version}-e.parquet"
                _copy(con, f"SELECT {cols} FROM {_q(name)} LIMIT 0", root / rel)
                new_tables[name] = {WHOLE: [rel]}
                changed = True
            if name not in new_tables:
                new_tables[name] = {}
                changed = True
            # The connection now mirrors what is published (a second publish changes nothing).
            con.execute(f"CREATE OR REPLACE TABLE {base} AS SELECT h, p FROM gw_lake_now "
                        "WHERE r IN (SELECT rowid FROM " + _q(name) + ")")
        if not changed:
            return None
        snapshot = Snapshot(version, new_tables, time.time())
        _switch(root, snapshot)
        refreshed = {n: {"files": new_tables.get(n, {}), "scoped": bool(loaded.get(n, {}).get("scoped"))}
                     for n in names}
        con.execute(f"SET VARIABLE {_BASE_VARIABLE} = ?", [json.dumps({"tables": {**loaded, **refreshed}})])
        return snapshot


# ---------------------------------------------------------------------------------------------
# Leases, vacuum, compaction
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def lease(cfg: Settings, snapshot_id: str | None) -> Iterator[None]:
    """Keep ``snapshot_id``'s files while the block runs (a lease file; see :func:`vacuum`)."""
    if snapshot_id is None:
        yield
        return
    path = take_lease(cfg, snapshot_id)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def take_lease(cfg: Settings, snapshot_id: str) -> Path:
    """Create a lease file on ``snapshot_id`` for this process; delete the returned path to end it."""
    folder = cfg.spark_dir / LEASES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{snapshot_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    path.touch()
    return path


#: How many times :func:`lease_current` follows a pointer that moved before giving up.
LEASE_ATTEMPTS = 50


def lease_current(cfg: Settings) -> tuple[Snapshot, Path | None]:
    """The snapshot in force and a lease on it (no lease when nothing was ever published), taken
    so that no :func:`vacuum` can have removed it or remove it later.

    Reading the pointer and then leasing what it named left a window: a publish and a vacuum in
    between (``keep_seconds`` 0, or a reader slower than it) removed the snapshot, and the reader
    then opened files that were gone (Spark: PATH_NOT_FOUND). So the pointer is read again once
    the lease file exists; if it moved, the lease moves to the newer snapshot. Every switch and
    every vacuum holds the lake's lock and a vacuum keeps the snapshot in force, so a snapshot
    still in force after its lease exists was kept by every vacuum that did not see the lease.
    Raises :class:`SnapshotConflictError` if the pointer moves :data:`LEASE_ATTEMPTS` times in a row.
    """
    snapshot = read_pointer(cfg)
    for _ in range(LEASE_ATTEMPTS):
        if snapshot.id is None:
            return snapshot, None
        path = take_lease(cfg, snapshot.id)
        now = read_pointer(cfg)
        if now.id == snapshot.id:
            return snapshot, path
        path.unlink(missing_ok=True)
        snapshot = now
    raise SnapshotConflictError(
        f"the warehouse published {LEASE_ATTEMPTS} snapshots while a reader was taking one; read again")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class VacuumResult:
    """What :func:`vacuum` kept and removed."""

    snapshots_kept: int = 0
    snapshots_removed: int = 0
    files_removed: int = 0
    bytes_removed: int = 0


def vacuum(cfg: Settings, keep_seconds: float = KEEP_SECONDS, *, now: float | None = None) -> VacuumResult:
    """Delete snapshots nobody can be reading any more, then the files only they referenced.

    Kept: the current snapshot, every snapshot published less than ``keep_seconds`` before
    ``now``, every snapshot a live process holds a lease on. Leases of dead processes are removed.
    A file no snapshot ever named is kept while younger than ``keep_seconds``: an import on Spark
    writes its files before it publishes them (``commit_partitions``).
    """
    root = cfg.spark_dir
    result = VacuumResult()
    if not root.is_dir():
        return result
    now = time.time() if now is None else now
    with _lock(root):
        current = read_pointer(cfg)
        leased: set[str] = set()
        lease_dir = root / LEASES_DIR
        if lease_dir.is_dir():
            for path in lease_dir.iterdir():
                snap, _, rest = path.name.partition(".")
                pid_text = rest.partition(".")[0]
                if pid_text.isdigit() and _pid_alive(int(pid_text)):
                    leased.add(snap)
                else:
                    path.unlink(missing_ok=True)
        keep: list[Snapshot] = [current]
        published = {f for n in current.tables for f in current.files(n)}
        snap_dir = root / SNAPSHOTS_DIR
        if snap_dir.is_dir():
            for path in sorted(snap_dir.glob("*.json")):
                found = _parse(json.loads(path.read_text(encoding="utf-8")), root, path)
                published.update(f for n in found.tables for f in found.files(n))
                if found.id == current.id or found.id in leased or now - found.published_at < keep_seconds:
                    keep.append(found)
                else:
                    path.unlink(missing_ok=True)
                    result.snapshots_removed += 1
        result.snapshots_kept = len({s.id for s in keep})
        referenced = {f for s in keep for n in s.tables for f in s.files(n)}
        referenced_dirs = {str(Path(f).parent) for f in referenced}
        for tmp in root.rglob("*.tmp"):
            # Half-written manifests; not the scratch folder ``.tmp`` nor what is in it (the spill
            # files of live DuckDB connections, ``duckdb_temp_storage*.tmp``; Spark's scratch).
            if tmp.relative_to(root).parts[0] != ".tmp" and tmp.is_file():
                tmp.unlink(missing_ok=True)
        for table_dir in root.iterdir():
            if (not table_dir.is_dir() or table_dir.name.startswith(".")
                    or table_dir.name in (SNAPSHOTS_DIR, LEASES_DIR)):
                continue
            for path in sorted(table_dir.rglob("*.parquet")):
                rel = path.relative_to(root).as_posix()
                if rel not in referenced:
                    if rel not in published and now - path.stat().st_mtime < keep_seconds:
                        continue  # written by an import still running (Spark writes, then commits)
                    result.bytes_removed += path.stat().st_size
                    path.unlink()
                    result.files_removed += 1
            for sub in sorted((p for p in table_dir.rglob("*") if p.is_dir()), reverse=True):
                rel = sub.relative_to(root).as_posix()
                if rel not in referenced_dirs and not any(sub.iterdir()):
                    shutil.rmtree(sub, ignore_errors=True)
    return result


@dataclass
class CompactResult:
    """What :func:`compact` merged."""

    partitions: int = 0
    files_before: int = 0
    snapshot: str | None = None


def compact(cfg: Settings, min_files: int = 8) -> CompactResult:
    """Merge the files of every partition holding more than ``min_files`` into one.

    Publishes one new snapshot (the same rows, fewer files); the merged files stay until
    :func:`vacuum` finds no reader needs them.
    """
    root = cfg.spark_dir
    result = CompactResult()
    if not root.is_dir():
        return result
    with _lock(root):
        current = read_pointer(cfg)
        version = _new_version()
        tables: Manifest = {n: {p: list(f) for p, f in parts.items()} for n, parts in current.tables.items()}
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone = 'UTC'")
            for name, parts in current.tables.items():
                for part, files in parts.items():
                    if len(files) <= min_files:
                        continue
                    rel = f"{name}/{part}/{version}-c.parquet"
                    target = root / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    sources = ", ".join(_lit(str(root / f)) for f in files)
                    con.execute(f"COPY (SELECT * FROM read_parquet([{sources}], union_by_name = true)) "
                                f"TO {_lit(str(target))} (FORMAT parquet, COMPRESSION zstd)")
                    _fsync_path(target)
                    _fsync_path(target.parent, directory=True)
                    tables[name][part] = [rel]
                    result.partitions += 1
                    result.files_before += len(files)
        finally:
            con.close()
        if result.partitions:
            _switch(root, Snapshot(version, tables, time.time()))
            result.snapshot = version
    return result


# ---------------------------------------------------------------------------------------------
# Publishing partitions written elsewhere (the Spark import: ``warehouse/spark_ingest.py``)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionChange:
    """New files for one partition: ``replace`` them for its files, or append them."""

    files: tuple[str, ...]
    replace: bool


def commit_partitions(cfg: Settings, base: Snapshot,
                      changes: Mapping[str, Mapping[str, PartitionChange]]) -> Snapshot | None:
    """Publish partition changes computed from ``base`` (files already written and fsync-ed,
    relative to ``spark_dir``) as a new snapshot.

    Under the lake's lock: every partition changed must still hold the files it held in ``base``
    (else :class:`SnapshotConflictError`: another writer changed it meanwhile; nothing is
    published and the caller's files go at the next :func:`vacuum`). Partitions and tables not
    named keep their files. Returns the new snapshot, or ``None`` when there is nothing to change.
    """
    if not any(changes.values()):
        return None
    root = cfg.spark_dir
    with _lock(root):
        current = read_pointer(cfg)
        tables: Manifest = {n: {p: list(f) for p, f in parts.items()} for n, parts in current.tables.items()}
        for name, parts in changes.items():
            then = base.tables.get(name, {})
            now = current.tables.get(name, {})
            moved = [p for p in parts if now.get(p, []) != then.get(p, [])]
            if moved:
                raise SnapshotConflictError(
                    f"another import changed {name} ({', '.join(sorted(moved))}) meanwhile; nothing "
                    "was written by this one, run it again")
            target = tables.setdefault(name, {})
            for part, change in parts.items():
                files = list(change.files) if change.replace else [*now.get(part, []), *change.files]
                if files:
                    target[part] = files
                else:
                    target.pop(part, None)
        snapshot = Snapshot(_new_version(), tables, time.time())
        _switch(root, snapshot)
        return snapshot
