"""What every CLI module shares: consoles, date options, JSON output."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from ibis.backends import BaseBackend
from rich.console import Console
from sqlalchemy.orm import Session

from growthwheel.config import settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.store.db import migrate, session_scope

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def parse_date(value: str | None, option: str) -> date | None:
    """``YYYY-MM-DD`` from a command-line option, or a one-line error naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def print_json(value: Any) -> None:
    """Print ``value`` as indented UTF-8 JSON on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def cli_actor() -> str:
    """Who a CLI change is audited as: ``cli:<login name>`` (``cli`` when there is none)."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli"


@contextmanager
def store_session() -> Iterator[Session]:
    """The operational store, migrated, as one transaction (committed when the block ends)."""
    cfg = settings()
    migrate(cfg)
    with session_scope(cfg) as session:
        yield session


@contextmanager
def warehouse_reader() -> Iterator[BaseBackend]:
    """The warehouse as an Ibis backend for reading, closed when the block ends."""
    from growthwheel.warehouse import connect

    cfg = settings()
    backend = connect(cfg)
    if cfg.warehouse == "duckdb":  # DuckDB draws its progress bar on stdout, into --json output
        backend.raw_sql("SET enable_progress_bar = false")
    try:
        yield backend
    finally:
        backend.disconnect()


def parse_now(value: str | None) -> datetime:
    """``--now``: an ISO 8601 time with its UTC offset, or the current time when not given."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError(f"--now: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidArgumentError("--now: give the UTC offset (e.g. 2026-06-18T12:00:00+08:00)")
    return parsed
