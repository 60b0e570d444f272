"""Engine, sessions and migrations of the operational store.

Services never commit: whoever owns the unit of work (a request, a CLI command, a job) uses
``session_scope`` which commits on success and rolls back on error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from growthwheel.config import Settings, settings

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


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def engine(cfg: Settings | None = None) -> Engine:
    """The engine for the configured store (one per URL per process; cheap to call per request)."""
    cfg = cfg or settings()
    return _engine_for(cfg.database_url, cfg.data_dir)


@lru_cache(maxsize=8)
def _engine_for(database_url: str | None, data_dir: Path) -> Engine:
    if database_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
    return _engine(Settings(data_dir=data_dir, database_url=database_url).store_url)


def migrate(cfg: Settings | None = None) -> None:
    """Bring the store's schema to the newest migration (idempotent)."""
    cfg = cfg or settings()
    alembic_cfg = Config()
    alembic_cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine(cfg).begin() as connection:
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
