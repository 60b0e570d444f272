"""``growthwheel segments …`` and ``growthwheel tags …`` (registered lazily in ``cli/lazy.py``;
``growthwheel personas`` lives with the other insight commands in ``cli/insight.py``).

Commands open the warehouse themselves, so they need the server to be stopped (like ``kpi``);
with the server running, use the API (``/api/v1/segments``) or the console. Domain errors are
raised as ``GrowthwheelError`` (the main entry point prints one line and exits 1). The CLI user
holds the data directory, so exports are not masked unless ``--mask`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from growthwheel.cli.common import cli_actor, print_json, store_session, warehouse_reader
from growthwheel.config import settings
from growthwheel.errors import GrowthwheelError
from growthwheel.segments import service
from growthwheel.segments.definition import definition_json_schema, parse_definition
from growthwheel.segments.schemas import SegmentOut

segments_app = typer.Typer(help="Customer segments: preview, save, refresh, export.", no_args_is_help=True)
tags_app = typer.Typer(help="Manual customer tags.", no_args_is_help=True)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise GrowthwheelError(f"--as-of: {value!r} is not a date (YYYY-MM-DD)") from None


def _read_definition(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise GrowthwheelError(f"{path}: {exc.strerror or exc}") from None
    return parse_definition(text)


@contextmanager
def _writer() -> Iterator[duckdb.DuckDBPyConnection]:
    from growthwheel.warehouse.db import open_duckdb

    con = open_duckdb(settings())
    con.execute("SET enable_progress_bar = false")
    try:
        yield con
    finally:
        con.close()


def _when(value: object) -> str:
    return "–" if value is None else str(value)[:19]


# ---------------------------------------------------------------------------------------------
# segments
# ---------------------------------------------------------------------------------------------


@segments_app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a segment definition."""
    print_json(definition_json_schema())


@segments_app.command("preview")
def preview_command(
    file: Annotated[Path, typer.Option("--file", "-f", help="The definition (JSON)")],
    sample: Annotated[int, typer.Option(help="Matching customers to show", min=0, max=100)] = 10,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this day (YYYY-MM-DD)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Count the customers a definition matches and show a sample, without saving it."""
    node = _read_definition(file)
    with warehouse_reader() as backend:
        ctx = service.context(settings(), backend, _as_of(as_of))
        result = service.preview(backend, node, ctx, sample=sample)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    out.print(f"{result.count:,} customer(s) match as of {result.as_of}", highlight=False)
    if result.sample:
        table = Table(title=f"sample of {len(result.sample)}")
        for column in ("customer_id", "name", "city", "channel", "signed up (UTC)"):
            table.add_column(column)
        for row in result.sample:
            table.add_row(row.customer_id, row.name or "", row.city or "", row.channel or "",
                          _when(row.signed_up_at))
        out.print(table)


@segments_app.command("create")
def create_command(
    name: Annotated[str, typer.Argument(help="A unique name")],
    file: Annotated[Path, typer.Option("--file", "-f", help="The definition (JSON)")],
    description: Annotated[str | None, typer.Option(help="What it is for")] = None,
    tag: Annotated[str | None, typer.Option(help="Make it a tag rule: refreshing tags the members")] = None,
) -> None:
    """Save a segment (refresh it to materialise its members)."""
    node = _read_definition(file)
    with store_session() as session:
        row = service.create_segment(session, name, node, principal=None, actor_name=cli_actor(),
                                     description=description, tag=tag)
        shown = f"{row.name} ({row.id})" + (f", tag rule for {row.tag!r}" if row.tag else "")
    out.print(f"saved segment {shown}; refresh it with: growthwheel segments refresh {name!r}",
              highlight=False)


@segments_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List saved segments with what their last refresh found."""
    with store_session() as session:
        rows = [SegmentOut.model_validate(s) for s in service.list_segments(session)]
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table(title=f"{len(rows)} segment(s)")
    for column in ("name", "tag", "members", "as of", "refreshed (UTC)", "created by"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.name, r.tag or "", "–" if r.members is None else f"{r.members:,}",
                      _when(r.as_of), _when(r.refreshed_at), r.created_by)
    out.print(table)


@segments_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Name or id")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Show a saved segment: its definition, last refresh and membership changes."""
    with store_session() as session:
        row = SegmentOut.model_validate(service.get_segment(session, name))
        seg = service.get_segment(session, name)
        with warehouse_reader() as backend:
            changes = service.history(backend, seg, 20)
    if as_json:
        print_json({**row.model_dump(mode="json"), "history": changes})
        return
    out.print(f"{row.name} ({row.id})" + (f" — tag rule for {row.tag!r}" if row.tag else ""), highlight=False)
    out.print(json.dumps(row.definition, ensure_ascii=False, indent=2), highlight=False)
    members = "–" if row.members is None else f"{row.members:,}"
    out.print(f"members: {members} · as of {_when(row.as_of)} · refreshed {_when(row.refreshed_at)}",
              highlight=False)
    for change in changes:
        out.print(f"  {_when(change['at'])}  +{change['entered']:,}  −{change['left']:,}", highlight=False)


@segments_app.command("refresh")
def refresh_command(
    name: Annotated[str | None, typer.Argument(help="Name or id (omit with --all)")] = None,
    refresh_all: Annotated[bool, typer.Option("--all", help="Refresh every saved segment")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this day (YYYY-MM-DD)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Evaluate saved segments and store their membership: who entered, who left (and, for tag
    rules, set and remove their tags)."""
    if (name is None) == (not refresh_all):
        raise GrowthwheelError("name one segment or give --all")
    results = []
    with store_session() as session, _writer() as con:
        chosen = service.list_segments(session) if refresh_all else [service.get_segment(session, name or "")]
        write = service.direct_writer(con)
        from ibis import duckdb as ibis_duckdb

        ctx = service.context(settings(), ibis_duckdb.from_connection(con), _as_of(as_of))
        for seg in chosen:
            results.append(service.refresh_segment(session, seg, ctx, write, principal=None,
                                                   actor_name=cli_actor()))
    if as_json:
        dumped = [r.model_dump(mode="json") for r in results]
        print_json(dumped if refresh_all else dumped[0])
        return
    for r in results:
        extra = f" · tagged +{r.tagged:,} −{r.untagged:,}" if r.tagged or r.untagged else ""
        out.print(f"{r.name}: {r.members:,} member(s) as of {r.as_of} · entered {r.entered:,} · "
                  f"left {r.left:,}{extra} · {r.seconds:.2f} s", highlight=False)


@segments_app.command("export")
def export_command(
    name: Annotated[str, typer.Argument(help="Name or id")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write")],
    mask: Annotated[bool, typer.Option("--mask", help="Mask email and phone (as for analysts)")] = False,
) -> None:
    """Write the members of the last refresh with their profile to a CSV file (UTF-8)."""
    with store_session() as session:
        seg = service.get_segment(session, name)
        with warehouse_reader() as backend:
            rows = service.member_rows(backend, seg)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("w", encoding="utf-8", newline="") as handle:
        zone = ZoneInfo(settings().shop().timezone)  # times as the console shows them, with the offset
        for chunk in service.csv_chunks(rows, can_see_pii=not mask, zone=zone):
            handle.write(chunk)
    out.print(f"{rows.num_rows:,} member(s) written to {out_file}", highlight=False)


@segments_app.command("delete")
def delete_command(name: Annotated[str, typer.Argument(help="Name or id")]) -> None:
    """Delete a saved segment, its current membership and the tags it set (history stays)."""
    with store_session() as session, _writer() as con:
        seg = service.get_segment(session, name)
        shown = seg.name
        removed = service.delete_segment(session, seg, service.direct_writer(con), principal=None,
                                         actor_name=cli_actor())
    out.print(f"deleted segment {shown} ({removed:,} member(s) removed)", highlight=False)


# ---------------------------------------------------------------------------------------------
# tags
# ---------------------------------------------------------------------------------------------


def _change_tag(tag: str, add: list[str], remove: list[str]) -> None:
    with store_session() as session, _writer() as con:
        result = service.change_tag(session, tag, service.direct_writer(con), add=add, remove=remove,
                                    principal=None, actor_name=cli_actor())
    out.print(f"{result.tag}: added to {result.added:,}, removed from {result.removed:,} customer(s)",
              highlight=False)


@tags_app.command("add")
def tags_add(
    tag: Annotated[str, typer.Argument(help="The tag")],
    customers: Annotated[list[str], typer.Argument(help="Customer ids")],
) -> None:
    """Give a manual tag to customers."""
    _change_tag(tag, customers, [])


@tags_app.command("remove")
def tags_remove(
    tag: Annotated[str, typer.Argument(help="The tag")],
    customers: Annotated[list[str], typer.Argument(help="Customer ids")],
) -> None:
    """Take a manual tag from customers (tags set by rules follow their rule)."""
    _change_tag(tag, [], customers)


@tags_app.command("list")
def tags_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List tags with how many customers carry them (manual, rule, imported)."""
    with warehouse_reader() as backend:
        rows = service.list_tags(backend)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} tag(s)")
    for column in ("tag", "customers", "manual", "rule", "imported"):
        table.add_column(column, justify="left" if column == "tag" else "right")
    for r in rows:
        table.add_row(r["tag"], *(f"{r[c]:,}" for c in ("customers", "manual", "rule", "imported")))
    out.print(table)

