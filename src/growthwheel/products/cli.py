"""``growthwheel products roles``: the product matrix of a period (traffic drivers, profit makers,
potential products, slow movers, long tail), with each product's figures and why; ``--out`` writes
it as CSV or Excel, ``--segment ROLE`` prints the segment definition of that role's buyers (for
``growthwheel segments create NAME --file``). Runs in the server when one owns the warehouse
(``growthwheel.analyst``); bad input prints one line naming the option and exits 1. Registered
lazily in ``cli/lazy.py``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from growthwheel.cli.common import Column, cli_errors, out, print_json, print_table

products_app = typer.Typer(help="Products: the product matrix (traffic drivers, profit makers, potential).",
                           no_args_is_help=True)


class Role(StrEnum):
    """A role whose buyers make a segment."""

    traffic_driver = "traffic_driver"
    profit_maker = "profit_maker"
    potential = "potential"
    slow_mover = "slow_mover"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


@products_app.command("roles")
def roles_command(
    period: Annotated[str, typer.Option(help="YYYY-MM, YYYY-Qn, YYYY or lastN (days to the last order)")
                      ] = "last90",
    role: Annotated[str | None, typer.Option(help="Only products of this role")] = None,
    segment: Annotated[Role | None, typer.Option(help="Print the segment definition of a role's buyers")
                       ] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write every product to .csv or .xlsx")
                        ] = None,
    limit: Annotated[int, typer.Option(help="Rows shown", min=1)] = 40,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON")] = False,
) -> None:
    """Product roles of a period: traffic drivers, profit makers, potential, slow movers, long tail."""
    from growthwheel import analyst
    from growthwheel.errors import InvalidArgumentError
    from growthwheel.products.roles import ROLE_NAMES, ROLES

    with cli_errors():
        if role is not None and role not in ROLES:
            raise InvalidArgumentError(f"--role: one of {', '.join(ROLES)}")
        if out_file is not None and out_file.suffix.lower() not in (".csv", ".xlsx"):
            raise InvalidArgumentError("--out: a .csv or .xlsx file")
        answer = analyst.run("products_roles", {"period": period})
    if segment is not None:
        definition = answer["segments"].get(segment.value)
        if definition is None:
            out.print(f"no {segment.value} products in {answer['period']['label']}", style="red")
            raise typer.Exit(1)
        print_json(definition)
        return
    if out_file is not None:
        from growthwheel.kit import export
        from growthwheel.kit.money import currency_exponent
        from growthwheel.products.reads import EXPORT_HEADER, export_rows

        rows = export_rows(answer, currency_exponent(answer["currency"]))
        if out_file.suffix.lower() == ".csv":
            export.write_csv(out_file, EXPORT_HEADER, rows)
        else:
            export.write_xlsx(out_file, EXPORT_HEADER, rows, sheet="roles")
        out.print(f"wrote {len(rows):,} products to {out_file}")
        return
    if as_json:
        print_json(answer)
        return
    items = [i for i in answer["items"] if role is None or i["role"] == role]
    p = answer["period"]
    counts = ", ".join(f"{ROLE_NAMES[r][0].lower()} {n}" for r, n in answer["counts"].items())
    cols = [Column("SKU", right=False), Column("role", right=False), Column("orders"),
            Column("entry", keep=2), Column("pull-through", keep=3), Column("margin rate", keep=1),
            Column("conversion ≥", keep=4), Column("why", right=False, keep=5)]
    table = [[i["sku"], i["role"], str(i["orders"]), _pct(i["entry_share"]), _pct(i["pull_through"]),
              _pct(i["margin_rate"]), _pct(i["conversion_low"]), i["explanation"]["en"]]
             for i in items[:limit]]
    print_table(f"Product roles {p['start']} to {p['end']}", cols, table,
                caption=f"{counts}; {min(limit, len(items)):,} of {len(items):,} shown")
