"""What every CLI module shares: consoles, date options, JSON output."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

from growthwheel.errors import InvalidArgumentError

if TYPE_CHECKING:  # imported where used: ``growthwheel --help`` loads none of them
    from ibis.backends import BaseBackend
    from sqlalchemy.orm import Session

    from growthwheel.config import Settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Domain errors as one red line on stderr and exit code 1 (also under ``CliRunner``, which
    calls the app without :func:`growthwheel.cli.main.main`)."""
    import typer

    from growthwheel.errors import GrowthwheelError

    try:
        yield
    except GrowthwheelError as exc:
        err.print(f"[red]error:[/red] {error_text(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def cli_language() -> str:
    """The CLI's language: ``GROWTHWHEEL_LANG`` (``zh`` or ``en``), else the locale's
    (``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``zh_CN.UTF-8`` → ``zh``); English by default."""
    import os

    for name in ("GROWTHWHEEL_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").strip().lower()
        if value and value not in ("c", "posix", "c.utf-8"):
            return "zh" if value.startswith("zh") else "en"
    return "en"


def error_text(exc: Exception) -> str:
    """A domain error's one line in the CLI's language (its catalogue words when it has them)."""
    from growthwheel.errors import GrowthwheelError

    if not isinstance(exc, GrowthwheelError):
        return str(exc)
    lang = cli_language()
    if lang == "en" or exc.key is None:
        return exc.message
    from growthwheel.web.i18n import translator

    try:
        return exc.text(translator(lang))
    except (KeyError, IndexError, ValueError):  # a placeholder the error does not fill
        return exc.message


def cli_text(key: str, **values: object) -> str:
    """A catalogue text in the CLI's language."""
    from growthwheel.web.i18n import translator

    return translator(cli_language())(key, **values)


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


def settings() -> Settings:
    """The process's settings (pydantic is imported on first use, not at start-up)."""
    from growthwheel.config import settings as current

    return current()


def cli_actor() -> str:
    """Who a CLI change is audited as: ``cli:<login name>`` (``cli`` when there is none)."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this environment
        return "cli"


@contextmanager
def store_session() -> Iterator[Session]:
    """The operational store, migrated, as one transaction (committed when the block ends)."""
    from growthwheel.store.db import migrate, session_scope

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


@dataclass(frozen=True)
class Column:
    """A column of a terminal table. ``keep`` ranks what is dropped to fit the terminal: columns
    with the highest ``keep`` go first; ``keep=0`` columns are always shown."""

    header: str
    right: bool = True
    keep: int = 0


def money_text(value: float | int | None, exponent: int) -> str:
    """One money format for every CLI table: major units, thousands grouped, exactly the currency's
    decimals (``1234567.5`` → ``1,234,567.50`` for CNY, ``1,234,568`` for JPY); ``–`` for none."""
    if value is None:
        return "–"
    from decimal import ROUND_HALF_UP, Decimal

    from growthwheel.kit.money import grouped_major

    minor = Decimal(repr(float(value))).scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return grouped_major(int(minor), exponent)


def print_table(title: str, columns: list[Column], rows: list[list[str]], *, wide: bool = False,
                caption: str | None = None) -> None:
    """Print a table no cell of which is ever cut short.

    Without ``wide`` the table fits the terminal (80 columns when output is not a terminal): the
    columns with the highest ``keep`` are left out until it fits, and a note says how to see them
    (``--wide``). With ``wide`` every column is printed at its full width, however wide the lines.
    """
    from rich import box
    from rich.cells import cell_len
    from rich.markup import render
    from rich.table import Table

    def width(text: str) -> int:
        return max((cell_len(line) for line in render(text).plain.splitlines()), default=0)

    needed = [max([width(c.header), *(width(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))

    def total(indices: list[int]) -> int:
        return sum(needed[i] for i in indices) + 3 * (len(indices) - 1)  # " │ " without the bar

    if not wide:
        for i in sorted(shown, key=lambda k: (-columns[k].keep, -k)):
            if total(shown) <= out.width or columns[i].keep == 0:
                break
            shown.remove(i)
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                  caption=caption, title_justify="left", caption_justify="left")
    for i in shown:
        table.add_column(columns[i].header, justify="right" if columns[i].right else "left",
                         no_wrap=True, min_width=needed[i])
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    target = out
    if wide and total(shown) > out.width:
        target = Console(file=out.file, width=total(shown), soft_wrap=True)
    target.print(table)
    if len(shown) < len(columns):
        left = ", ".join(columns[i].header for i in range(len(columns)) if i not in shown)
        out.print(f"[dim]--wide also shows: {escape_markup(left)}[/dim]", highlight=False,
                  soft_wrap=False)


def escape_markup(text: str) -> str:
    """``text`` with Rich markup escaped (for names that may hold ``[``)."""
    from rich.markup import escape

    return escape(text)
