"""The ``growthwheel`` command line: a thin face over the domain modules."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from growthwheel import __version__
from growthwheel.config import Settings, ShopSettings, set_settings, settings
from growthwheel.errors import GrowthwheelError
from growthwheel.warehouse import ingest
from growthwheel.warehouse.schema import TABLES

app = typer.Typer(
    help="Growthwheel: growth operations for e-commerce shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
quarantine_app = typer.Typer(help="Rows refused by imports.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")

out = Console()
err = Console(stderr=True)


class Format(StrEnum):
    """Import formats."""

    generic = "generic"
    shopify = "shopify"
    taobao = "taobao"


class Period(StrEnum):
    """Calendar periods."""

    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"


class Dimension(StrEnum):
    """KPI breakdowns."""

    channel = "channel"
    category = "category"


@app.callback()
def main_options(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Data directory [env GROWTHWHEEL_DATA_DIR; default ./growthwheel-data]"
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Global options."""
    if version:
        out.print(__version__)
        raise typer.Exit()
    if data_dir is not None:
        set_settings(Settings(data_dir=data_dir))


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, float | None], None] | None]:
    """A Rich progress bar fed by ``(phase, fraction)`` callbacks; ``None`` when disabled."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, fraction: float | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase[:40], total=100.0)
            if fraction is not None:
                bar.update(tasks[phase], completed=max(0.0, min(fraction, 1.0)) * 100.0)

        yield update


def _print_import(result: ingest.ImportResult) -> None:
    table = RichTable(title=f"import {result.import_id} → {result.table} ({result.format})")
    table.add_column("table")
    table.add_column("new", justify="right")
    table.add_column("updated", justify="right")
    table.add_column("unchanged", justify="right")
    for name, counts in result.tables.items():
        table.add_row(name, f"{counts.inserted:,}", f"{counts.updated:,}", f"{counts.unchanged:,}")
    out.print(table)
    out.print(
        f"rows read {result.rows_read:,} · imported {result.rows_read - result.rows_quarantined:,}"
        f" · quarantined {result.rows_quarantined:,} · {result.seconds:.2f} s"
    )
    for path, cols in result.ignored_columns.items():
        out.print(f"[yellow]{path}: ignored unknown column(s) {', '.join(cols)}[/yellow]")
    if result.rows_quarantined:
        out.print(
            f"[yellow]{result.rows_quarantined:,} row(s) quarantined: "
            f"growthwheel quarantine list --table {result.table}[/yellow]"
        )


@app.command("import")
def import_command(
    table: Annotated[str, typer.Argument(help="Target table: " + ", ".join(TABLES))],
    files: Annotated[list[Path], typer.Argument(help="Files to import (CSV, Parquet, JSON Lines)")],
    fmt: Annotated[Format, typer.Option("--format", help="Input format")] = Format.generic,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Import files into a warehouse table: validated, quarantined, idempotent and atomic."""
    with _progress_bar(not as_json and sys.stderr.isatty()) as progress:
        result = ingest.import_files(table, files, fmt.value, progress=progress)
    if as_json:
        _json(result.to_dict())
    else:
        _print_import(result)


@quarantine_app.command("list")
def quarantine_list(
    table: Annotated[str | None, typer.Option(help="Only rows meant for this table")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Show quarantined rows: file, row, column, value and reason."""
    rows = ingest.quarantine_rows(table=table, limit=limit)
    if as_json:
        _json(rows)
        return
    if not rows:
        out.print("No quarantined rows.")
        return
    view = RichTable(title="quarantined rows")
    for name in ("table_name", "file", "row_number", "column_name", "value", "reason"):
        view.add_column(name.replace("_name", "").replace("_number", ""))
    for row in rows:
        view.add_row(*(str(row[k]) if row[k] is not None else "" for k in (
            "table_name", "file", "row_number", "column_name", "value", "reason")))
    out.print(view)


@app.command("init")
def init_command(
    name: Annotated[str | None, typer.Option(help="Shop name")] = None,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 currency, e.g. CNY or USD")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone, e.g. Asia/Shanghai")] = None,
) -> None:
    """Create or update the shop's settings (currency, time zone) in the data directory."""
    cfg = settings()
    current = cfg.shop().model_dump()
    for key, value in (("name", name), ("currency", currency), ("timezone", timezone)):
        if value is not None:
            current[key] = value
    try:
        shop = ShopSettings(**current)
    except ValueError as exc:
        raise GrowthwheelError(str(exc)) from None
    path = cfg.save_shop(shop)
    out.print(f"{path}: {shop.name} · {shop.currency} · {shop.timezone}")


@app.command("schema")
def schema_command(
    table: Annotated[str | None, typer.Argument(help="One table (default: all)")] = None,
) -> None:
    """Print the generic import columns of each table (Markdown)."""
    for spec in TABLES.values():
        if table and spec.name != table:
            continue
        out.print(f"### {spec.name}\n\n{spec.doc}\n", markup=False)
        out.print("| column | kind | required | meaning |\n|---|---|---|---|", markup=False)
        for column in spec.inputs:
            req = "yes" if column.required else ""
            out.print(f"| `{column.name}` | {column.kind} | {req} | {column.doc} |", markup=False)
        out.print("", markup=False)


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise GrowthwheelError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def main() -> None:
    """Entry point: run the app, turning domain errors into one clear line and exit code 1."""
    try:
        app()
    except GrowthwheelError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(1)
