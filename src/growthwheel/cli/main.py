"""The ``growthwheel`` command line: a thin face over the domain modules."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from growthwheel import __version__
from growthwheel.cli.common import (
    Column,
    cli_text,
    err,
    error_text,
    money_text,
    out,
    parse_date,
    print_json,
    print_table,
)
from growthwheel.cli.common import settings as settings
from growthwheel.cli.lazy import LazyGroup
from growthwheel.errors import GrowthwheelError
from growthwheel.warehouse.schema import TABLES

if TYPE_CHECKING:
    from growthwheel.config import Settings
    from growthwheel.warehouse import ingest
    from growthwheel.warehouse.server import ServerInfo

# Start-up time: this module imports only typer and light modules, so ``growthwheel --help``
# answers at once. Command groups of other modules are registered in ``cli/lazy.py`` (LAZY) and
# imported when used; commands here import what they need inside their body.
app = typer.Typer(
    cls=LazyGroup,
    help="Growthwheel: growth operations for e-commerce shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
quarantine_app = typer.Typer(help="Rows refused by imports.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")



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


def _print_version(value: bool) -> None:
    """``--version``: eager, so it answers before any command is looked for."""
    if value:
        out.print(__version__)
        raise typer.Exit()


@app.callback()
def main_options(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Data directory \\[env GROWTHWHEEL_DATA_DIR; default ./growthwheel-data]"
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    """Global options."""
    if data_dir is not None:
        from growthwheel.config import Settings, set_settings

        set_settings(Settings(data_dir=data_dir))


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, float | None], None] | None]:
    """A Rich progress bar fed by ``(phase, fraction)`` callbacks; ``None`` when disabled."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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
    from rich.table import Table as RichTable

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
    for name in result.header_only:
        out.print(f"[yellow]{cli_text('import_file.header_only', file=Path(name).name)}[/yellow]",
                  highlight=False)
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
    """Import files into a warehouse table: validated, quarantined, idempotent and atomic.

    While ``growthwheel serve`` runs on the same data directory the server owns the warehouse, so
    the import is handed to it (and runs there, after any write it is doing); the result is the same.
    """
    import duckdb

    from growthwheel.warehouse import ingest

    cfg = settings()
    server = _running_server(cfg)
    with _progress_bar(not as_json and sys.stderr.isatty()) as progress:
        if server is not None:
            if not as_json:
                err.print(f"handing the import to the running server (pid {server.pid}, {server.url})")
            from growthwheel.warehouse import owner

            result = owner.import_via_server(server, table, files, fmt.value, progress=progress,
                                             waiting=None if as_json else err.print)
        else:
            try:
                result = ingest.import_files(table, files, fmt.value, progress=progress)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                from growthwheel.warehouse import owner

                raise owner.warehouse_in_use_error(cfg, exc) from None
    if as_json:
        print_json(result.to_dict())
    else:
        _print_import(result)


@quarantine_app.command("list")
def quarantine_list(
    table: Annotated[str | None, typer.Option(help="Only rows meant for this table")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Show quarantined rows: file, row, column, value and reason."""
    from rich.table import Table as RichTable

    from growthwheel.cli.common import cli_language
    from growthwheel.warehouse import ingest
    from growthwheel.warehouse.reasons import reason_text
    from growthwheel.web.i18n import translator

    rows = ingest.quarantine_rows(table=table, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("No quarantined rows.")
        return
    view = RichTable(title="quarantined rows")
    for name in ("table_name", "file", "row_number", "column_name", "value", "reason"):
        view.add_column(name.replace("_name", "").replace("_number", ""))
    t = translator(cli_language())  # reasons in the reader's language, as the console shows them
    for row in rows:
        view.add_row(*(str(row[k]) if row[k] is not None else "" for k in (
            "table_name", "file", "row_number", "column_name", "value")),
                     reason_text(t, str(row["reason"] or ""))[0])
    out.print(view)


@app.command("init")
def init_command(
    name: Annotated[str | None, typer.Option(help="Shop name")] = None,
    currency: Annotated[str | None, typer.Option(help="ISO 4217 currency, e.g. CNY or USD")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone, e.g. Asia/Shanghai")] = None,
) -> None:
    """Create or update the shop's settings (currency, time zone) in the data directory."""
    from growthwheel.config import ShopSettings

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
    stored: Annotated[bool, typer.Option("--stored", help="The stored columns instead")] = False,
) -> None:
    """Print the generic import columns (or the stored columns) of each table, as Markdown."""
    lines: list[str] = []
    for spec in TABLES.values():
        if table and spec.name != table:
            continue
        lines += [f"### {spec.name}", "", spec.doc, ""]
        if stored:
            lines += [f"Key: {', '.join(spec.key)}.", "", "| column | type | meaning |", "|---|---|---|"]
            lines += [f"| `{c.name}` | {c.sql_type} | {c.doc} |" for c in spec.stored]
        else:
            lines += ["| column | kind | required | meaning |", "|---|---|---|---|"]
            lines += [f"| `{c.name}` | {c.kind} | {'yes' if c.required else ''} | {c.doc} |"
                      for c in spec.inputs]
        lines.append("")
    sys.stdout.write("\n".join(lines) + "\n")


_KPI_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("period", "period", 0), ("orders", "orders", 0), ("gmv", "GMV", 0), ("aov", "AOV", 1),
    ("gmv_change", "GMV Δ", 1), ("repurchase_rate", "repeat", 2), ("buyers", "buyers", 3),
    ("session_conversion_rate", "conv.", 3), ("net_revenue", "net", 4), ("new_buyers", "new", 5),
    ("gross_margin", "margin", 5), ("roas", "ROAS", 6), ("new_buyer_share", "new %", 7),
    ("items_per_order", "items/order", 7), ("refund_rate", "refunds", 7),
    ("discount_rate", "discount", 7), ("sessions", "sessions", 8), ("ad_spend", "ad spend", 8),
    ("cac", "CAC", 8),
)
"""Columns of the terminal table (key, header, drop rank: the highest go first to fit 80 columns;
``--wide`` shows them all); ``--json`` has every metric."""
_KPI_MONEY = frozenset({"gmv", "net_revenue", "aov", "ad_spend", "cac"})


def _cell(name: str, value: Any, exponent: int = 2) -> str:
    if value is None:
        return "–"
    if name in _KPI_MONEY:
        return money_text(value, exponent)
    if name.endswith("_change"):
        return f"{value:+.1%}"
    if name.endswith("_rate") or name in ("gross_margin", "new_buyer_share"):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _running_server(cfg: Settings) -> ServerInfo | None:
    """The server that owns this data directory's warehouse, if one runs (cheap when none does)."""
    if not (cfg.data_dir / "server.json").exists():
        return None
    from growthwheel.warehouse.server import find_server

    return find_server(cfg)


@app.command("kpi")
def kpi_command(
    by: Annotated[Period, typer.Option("--by", help="Period")] = Period.month,
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD)")] = None,
    dimension: Annotated[Dimension | None, typer.Option("--dimension", help="Break down by")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array")] = False,
    definitions: Annotated[bool, typer.Option("--definitions", help="Print each metric's formula")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide the table")] = False,
) -> None:
    """The KPI catalogue by period (money in major units), with period-over-period change."""
    from growthwheel.kit.money import currency_exponent

    if definitions:
        from growthwheel.insight.kpis import METRICS

        rows = ["| metric | 指标 | unit | definition |", "|---|---|---|---|"]
        rows += [f"| `{m.name}` | {m.label_zh} | {m.unit} | {m.formula} |" for m in METRICS.values()]
        sys.stdout.write("\n".join(rows) + "\n")
        return

    cfg = settings()
    first, last = parse_date(start, "--from"), parse_date(end, "--to")
    if first and last and first > last:
        raise GrowthwheelError(f"--from {first} is after --to {last}")
    dim = dimension.value if dimension else None
    server = _running_server(cfg)
    if server is not None:  # the server owns the warehouse: it computes the same records
        from growthwheel.warehouse.server import read_via_server

        records = read_via_server(server, "kpis", {
            "by": by.value, "from": _iso(first), "to": _iso(last), "dimension": dim})
    else:
        from growthwheel.insight.kpis import kpi_frame, kpi_records
        from growthwheel.warehouse import connect

        frame = kpi_frame(connect(cfg), by=by.value, start=first, end=last, dimension=dim,
                          currency_exponent=currency_exponent(cfg.shop().currency))
        records = kpi_records(frame)
    if as_json:
        print_json(records)
        return
    if not records:
        out.print("No orders in the warehouse for that range: import some with `growthwheel import`.")
        return
    currency = cfg.shop().currency
    exponent = currency_exponent(currency)
    keys = [(key, label, keep) for key, label, keep in _KPI_COLUMNS
            if any(record.get(key) is not None for record in records) or keep == 0]
    if dimension:
        keys.insert(1, (dimension.value, dimension.value, 0))
    columns = [Column(label, right=key not in ("period", "channel", "category"), keep=keep)
               for key, label, keep in keys]
    cells = [[_cell(key, record.get(key), exponent) for key, _, _ in keys] for record in records]
    print_table(f"KPIs by {by.value} (money in {currency})", columns, cells, wide=wide)


@app.command("report")
def report_command(
    period: Annotated[Period, typer.Option("--period", help="week, month or quarter")] = Period.week,
    out_file: Annotated[Path | None, typer.Option("--out", help="HTML file to write")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Review the last full period ending on or before this date")
    ] = None,
) -> None:
    """Write the periodic review (复盘) as one self-contained HTML file."""
    from growthwheel.reports.review import render_review
    from growthwheel.warehouse import connect

    if period is Period.day:
        raise GrowthwheelError("--period: choose week, month or quarter")
    cfg = settings()
    shop = cfg.shop()
    day = parse_date(as_of, "--as-of")
    server = _running_server(cfg)
    if server is not None:  # the server owns the warehouse: it renders the same report
        from growthwheel.warehouse.server import read_via_server

        html = str(read_via_server(server, "report", {
            "period": period.value, "as_of": _iso(day)})["html"])
    else:
        html = render_review(connect(cfg), period=period.value, as_of=day, shop_name=shop.name,
                             currency=shop.currency, cfg=cfg)
    target = out_file or cfg.data_dir / "reports" / f"review-{period.value}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    out.print(f"review written to {target.resolve()}")


@app.command("demo")
def demo_command(
    customers: Annotated[int, typer.Option(help="Customers to simulate", min=100)] = 50_000,
    days: Annotated[int, typer.Option(help="Days of history", min=30)] = 365,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same shop)")] = 7,
    start: Annotated[
        str | None, typer.Option(help="First day of the history (default: --days before --end)")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="The history's 'now', the day after its last day (default: today, shop time)"),
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the console on http://127.0.0.1:8000 afterwards")
    ] = True,
) -> None:
    """Build a demo shop with known ground truth, import it, run the KPI pipeline, serve the console."""
    from growthwheel.sim.demo import build_demo, history_start, shop_today

    cfg = settings()
    first = parse_date(start, "--start")
    if first is None:  # the history ends where the worker, running in real time, lives: today
        first = history_start(days, parse_date(end, "--end") or shop_today())
    elif end is not None:
        from growthwheel.errors import InvalidArgumentError

        raise InvalidArgumentError("--start and --end: give one of them")
    with _progress_bar(sys.stderr.isatty()) as progress:
        run = build_demo(cfg, customers=customers, days=days, seed=seed, start=first, say=progress)
    for result in run.results:
        # order_lines: the rows read are lines, the counts are the orders they make up (named so)
        lines = result.table == "order_lines"
        counts = result.tables["orders" if lines else result.table]
        unit = "orders: " if lines else ""
        out.print(
            f"{result.table:<12} {result.rows_read:>10,} {'lines' if lines else 'rows '} read · {unit}"
            f"{counts.inserted:,} new · {counts.updated:,} updated · {counts.unchanged:,} unchanged · "
            f"{result.rows_quarantined:,} quarantined"
        )
    out.print(f"simulated in {run.seconds_simulating:.1f} s, imported in {run.seconds_importing:.1f} s; "
              f"ground truth: {run.ground_truth}")
    from growthwheel.sim import living, mailsink

    mail_port = mailsink.configured_port(cfg.data_dir) or mailsink.DEFAULT_PORT
    if not mailsink.port_free(mail_port):
        mail_port = mailsink.free_port()
    with _progress_bar(sys.stderr.isatty()) as bar:
        say = (lambda message, bar=bar: bar(message, None)) if bar is not None else None
        acted = living.bring_to_life(cfg, end=living.history_end(first, days), seed=seed, mail_port=mail_port,
                                     say=say)
    if acted.counts:
        out.print("acted on the shop through the services in "
                  f"{acted.seconds:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in acted.counts.items()))
    kpi_command(by=Period.month, start=None, end=None, dimension=None, as_json=False, definitions=False,
                wide=False)
    for period in (Period.week, Period.month):
        report_command(period=period, out_file=None, as_of=None)
    if serve:
        email, password = _demo_admin(cfg)
        out.print(f"\nConsole: http://127.0.0.1:8000  ·  sign in as {email} with password {password}")
        out.print("(a new password is generated each time; `growthwheel users set-password` changes it)")
        from growthwheel.jobs import worker as jobs_worker

        mail_port = mailsink.configured_port(cfg.data_dir) or mailsink.DEFAULT_PORT
        if not mailsink.port_free(mail_port):
            mail_port = mailsink.free_port()
            mailsink.write_channels(cfg.data_dir, mail_port, daily_email_cap=400)
        sink = mailsink.start(cfg.data_dir, mail_port)  # the journeys' emails land here, nowhere else
        out.print(f"mail sink on 127.0.0.1:{mail_port}: the emails sent are in {sink.directory}")
        background = jobs_worker.spawn(cfg)  # the worker runs beside the server and stops with it
        out.print(f"worker running beside the server (pid {background.pid}); Jobs page: /jobs")
        try:
            serve_command(host="127.0.0.1", port=8000)
        finally:
            jobs_worker.stop(background)
            sink.stop()


def _demo_admin(cfg: Settings) -> tuple[str, str]:
    """Create the demo's admin (or give it a fresh password) and return its credentials."""
    from growthwheel.accounts import repository, service
    from growthwheel.store.db import migrate, session_scope

    email, password = "admin@demo.growthwheel.local", service.generate_password()
    migrate(cfg)
    with session_scope(cfg) as session:
        if repository.user_by_email(session, email) is None:
            service.create_user(session, email, "admin", password, actor_name="growthwheel demo")
        else:
            service.set_password(session, email, password, actor_name="growthwheel demo")
    return email, password


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port", min=1, max=65535)] = 8000,
    workers: Annotated[int | None, typer.Option(
        help="Server processes [env GROWTHWHEEL_SERVER__WORKERS; default 1]. Above 1 needs PostgreSQL: "
             "one process owns the warehouse, the others serve the checkout and forward the rest to it",
        min=1, max=64)] = None,
) -> None:
    """Serve the web console and the REST API (the server owns the warehouse while it runs)."""
    import os

    import uvicorn

    from growthwheel.api.app import create_app

    cfg = settings()
    count = workers or cfg.server.workers
    if count > 1 and cfg.store_url.startswith("sqlite"):
        raise typer.BadParameter(
            "SQLite has one writer per database: run one process (or use PostgreSQL, "
            "GROWTHWHEEL_DATABASE_URL, for several)", param_hint="--workers")
    out.print(f"Growthwheel on http://{host}:{port} (API docs: /api/docs)"
              f"{f', {count} processes' if count > 1 else ''} — Ctrl-C to stop")
    # X-Forwarded-For is read by the app itself, from GROWTHWHEEL_TRUSTED_PROXIES only
    # (uvicorn's own default believes it from any local client).
    if count == 1:
        application = create_app(cfg)
        application.state.server_address = (host, port)  # lets CLI imports find the server
        from growthwheel.kit.runtime import tune_interpreter

        # the application is loaded: see kit/runtime.py
        tune_interpreter(cfg.server.switch_interval, gc_tuning=cfg.server.gc_tuning)
        uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=False)
        return
    os.environ["GROWTHWHEEL_DATA_DIR"] = str(cfg.data_dir.resolve())  # the worker processes' settings
    from growthwheel.api.workers import run_workers

    run_workers(host, port, count)


def main() -> None:
    """Entry point: run the app, turning domain errors into one clear line and exit code 1."""
    try:
        app()
    except GrowthwheelError as exc:
        err.print(f"[red]error:[/red] {error_text(exc)}", highlight=False, soft_wrap=True)
        sys.exit(1)
