"""``growthwheel warehouse compact | vacuum``: upkeep of the Spark warehouse's files.

The server does both by itself every minute (``WarehouseOwner.maintain``); these commands are
for a warehouse no server holds, or to reclaim space now. Both are safe while a server or another
command reads or writes: they take the warehouse's publish lock, and vacuum keeps every snapshot a
live process holds a lease on.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from growthwheel.cli.common import out, print_json
from growthwheel.config import settings
from growthwheel.errors import GrowthwheelError
from growthwheel.warehouse import lake

warehouse_app = typer.Typer(help="Upkeep of the Spark warehouse's files.", no_args_is_help=True)


def _spark_only() -> None:
    if settings().warehouse != "spark":
        raise GrowthwheelError("compact and vacuum are for the Spark warehouse "
                               "(GROWTHWHEEL_WAREHOUSE=spark); DuckDB manages its own file")


@warehouse_app.command("vacuum")
def vacuum_command(
    keep: Annotated[float, typer.Option(
        "--keep-seconds", min=0, help="Keep snapshots newer than this")] = lake.KEEP_SECONDS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Delete snapshots no reader can need any more and the files only they used."""
    _spark_only()
    result = lake.vacuum(settings(), keep)
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    out.print(f"kept {result.snapshots_kept} snapshot(s), removed {result.snapshots_removed}; "
              f"deleted {result.files_removed} file(s), {result.bytes_removed:,} bytes")


@warehouse_app.command("compact")
def compact_command(
    min_files: Annotated[int, typer.Option("--min-files", min=1,
                                           help="Merge partitions holding more files than this")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Merge the small files appends leave (a new snapshot; old files go at the next vacuum)."""
    _spark_only()
    result = lake.compact(settings(), min_files)
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    out.print(f"merged {result.files_before} file(s) of {result.partitions} partition(s)"
              + (f" into snapshot {result.snapshot}" if result.snapshot else ""))
