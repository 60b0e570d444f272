"""Engine, sessions and migrations of the operational store.

Services never commit: whoever owns the unit of work (a request, a CLI command, a job) uses
``session_scope`` which commits on success and rolls back on error.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, bindparam, create_engine, event, inspect, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from growthwheel.config import Settings, settings
from growthwheel.errors import GrowthwheelError

MIGRATIONS = Path(__file__).parent / "migrations"

# Stable constraint names so that migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every table in the operational store."""

    metadata = MetaData(naming_convention=NAMING)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class StoreBusyError(GrowthwheelError):
    """The store could not take this unit of work in time (its one writer was busy for longer than
    ``server.write_timeout``, a lock wait ran out, or no connection came free): 503, try again."""

    code = "store_busy"
    status = 503


# -- SQLite: one writer at a time, queued in this process -------------------------------------
#
# SQLite has one writer per database. Left to itself, every would-be writer polls the file lock
# (``busy_timeout``: sleeps of up to 100 ms) and gives up with "database is locked" after 10 s,
# whatever its turn. Here each connection takes the process's writer lock before its first write
# statement of a transaction and lets go when the transaction ends (commit, rollback, close), so
# writers of this process queue on a lock instead and SQLite's own lock is rarely contended
# (only by other processes, e.g. a CLI command). Waiting longer than ``write_timeout`` raises
# :class:`StoreBusyError` (503 with ``Retry-After`` at the API).

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "BEGIN IMMEDIATE",
           "BEGIN EXCLUSIVE")


class _WriterGuardedConnection(sqlite3.Connection):
    """A sqlite3 connection that gives the writer lock back when its transaction ends."""

    writer: threading.Lock
    holds_writer = False

    def _let_go(self) -> None:
        if self.holds_writer:
            self.holds_writer = False
            self.writer.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._let_go()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._let_go()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._let_go()


def _guarded_connection_class(writer: threading.Lock) -> type[sqlite3.Connection]:
    return type("WriterGuardedConnection", (_WriterGuardedConnection,), {"writer": writer})


def _take_writer(timeout: float) -> Any:
    def before_cursor_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        raw = conn.connection.driver_connection
        if not isinstance(raw, _WriterGuardedConnection) or raw.holds_writer:
            return
        if not statement.lstrip()[:15].upper().startswith(_WRITES):
            return
        if not raw.writer.acquire(timeout=timeout):
            raise StoreBusyError(
                f"the store is busy: waited {timeout:.0f} s for its one writer; try again shortly")
        raw.holds_writer = True

    return before_cursor_execute


def _raw(conn: Any) -> Any:
    return conn.connection.driver_connection if conn is not None else None


def _let_go_outside_transaction(raw: Any) -> None:
    """A write that ran without a transaction (DDL, a failed ``BEGIN``) gives the writer back at once."""
    if isinstance(raw, _WriterGuardedConnection) and raw.holds_writer and not raw.in_transaction:
        raw._let_go()


def _after_cursor_execute(conn: Any, *_args: Any) -> None:
    _let_go_outside_transaction(_raw(conn))


def _on_error(context: Any) -> None:
    _let_go_outside_transaction(_raw(context.connection))


def _on_checkin(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, _WriterGuardedConnection) and dbapi_connection.holds_writer:
        dbapi_connection.rollback()  # a connection back in the pool never keeps the writer


@lru_cache(maxsize=8)
def _engine(url: str, pool_size: int = 36, write_timeout: float = 30.0) -> Engine:
    pool = {"pool_size": pool_size, "max_overflow": 8, "pool_timeout": 30}
    if url.startswith("sqlite"):
        memory = ":memory:" in url or url.rstrip("/").endswith("sqlite:")
        args: dict[str, Any] = {"check_same_thread": False}
        if not memory:
            args["factory"] = _guarded_connection_class(threading.Lock())
        engine = create_engine(url, connect_args=args, **({} if memory else pool))
        event.listen(engine, "connect", _sqlite_pragmas)
        if not memory:
            event.listen(engine, "before_cursor_execute", _take_writer(write_timeout))
            event.listen(engine, "after_cursor_execute", _after_cursor_execute)
            event.listen(engine, "handle_error", _on_error)
            event.listen(engine, "checkin", _on_checkin)
        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def engine(cfg: Settings | None = None) -> Engine:
    """The engine for the configured store (one per URL per process; cheap to call per request).

    Its pool holds ``server.pool_size`` connections (``server.concurrency + 4``) plus 8 overflow;
    on SQLite, writers are queued in-process (see ``StoreBusyError``).
    """
    cfg = cfg or settings()
    return _engine_for(cfg.database_url, cfg.data_dir, cfg.server.pool_size, cfg.server.write_timeout)


@lru_cache(maxsize=8)
def _engine_for(database_url: str | None, data_dir: Path, pool_size: int = 36,
                write_timeout: float = 30.0) -> Engine:
    if database_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
    return _engine(Settings(data_dir=data_dir, database_url=database_url).store_url, pool_size, write_timeout)


def head_revision() -> str:
    """The newest migration's revision. Migrations are the files ``versions/NNNN_<name>.py`` of one
    chain, each with revision ``NNNN`` (a test checks this against Alembic's own head)."""
    return max(path.name[:4] for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def migrate(cfg: Settings | None = None) -> None:
    """Bring the store's schema to the newest migration (idempotent). A store already at the
    newest one is left without loading Alembic and its migration scripts (about 0.3 s of every
    command's start)."""
    cfg = cfg or settings()
    with engine(cfg).begin() as connection:
        if inspect(connection).has_table("alembic_version"):
            found = [row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))]
            if found == [head_revision()]:
                return
        from alembic import command
        from alembic.config import Config

        alembic_cfg = Config()
        alembic_cfg.set_main_option("script_location", str(MIGRATIONS))
        alembic_cfg.attributes["connection"] = connection
        command.upgrade(alembic_cfg, "head")


def sessionmaker_for(cfg: Settings | None = None) -> sessionmaker[Session]:
    """A session factory bound to the configured store."""
    return sessionmaker(bind=engine(cfg), expire_on_commit=False)


@contextmanager
def session_scope(cfg: Settings | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    session = sessionmaker_for(cfg)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def insert_for(session: Session) -> Any:
    """The ``insert`` construct of ``session``'s dialect (PostgreSQL or SQLite), the one with
    ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for idempotent writes."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


_UPDATES: dict[tuple[str, tuple[str, ...]], Any] = {}
"""The statements of :func:`write_through`, by table and the columns set."""


def write_through(session: Session, instance: Any, values: dict[str, Any]) -> None:
    """Set ``values`` (column name → value) on a persistent ``instance`` now, with one Core
    ``UPDATE`` by primary key; the instance takes them as committed, so no flush writes them
    again. For the checkout's hot path, where a unit-of-work flush of one row cost several times
    the statement it sends. Columns are named as their attributes."""
    mapper = inspect(instance).mapper
    table = mapper.local_table
    keys = tuple(sorted(values))
    statement = _UPDATES.get((table.name, keys))
    if statement is None:
        where = [column == bindparam(f"pk_{column.key}") for column in mapper.primary_key]
        statement = _UPDATES[(table.name, keys)] = update(table).where(*where).values(
            {key: bindparam(key, type_=table.c[key].type) for key in keys})
    params = {**values, **{f"pk_{c.key}": getattr(instance, c.key) for c in mapper.primary_key}}
    session.execute(statement, params)
    for key, value in values.items():
        set_committed_value(instance, key, value)
