"""``growthwheel inventory …``: the stock plan, stock-out risks, slow movers and clearance drafts.

* ``inventory plan`` — per SKU: forecast demand (method chosen by a rolling-origin backtest, MASE
  against seasonal naive in the caption), on hand, safety stock, reorder point, EOQ, cover;
* ``inventory at-risk --until 2024-11-11 --uplift 3`` — SKUs likely to run out before a date;
* ``inventory slow-movers`` — stock beyond ``--target-cover-days`` with a clearance suggestion;
* ``inventory clearance SKU… --discount 20`` — a draft percent-off promotion to open in the console.

Warehouse reads run in the server when one owns the warehouse (``growthwheel.analyst``). Bad input
prints one line naming the option and exits 1. Registered lazily in ``cli/lazy.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from growthwheel.cli.common import Column, cli_actor, cli_errors, out, print_json, print_table

inventory_app = typer.Typer(help="Inventory: demand forecasts, safety stock, stock-out risk, slow movers.",
                            no_args_is_help=True)

Until = Annotated[str | None, typer.Option(help="Stock-out risk up to this day (YYYY-MM-DD)")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="Plan as of this day (default: latest data)")]
Grain = Annotated[str, typer.Option(help="day or week")]
Level = Annotated[float, typer.Option("--service-level", help="Cycle service level (0.5-0.999)")]
Uplift = Annotated[float, typer.Option(help="Demand multiplier up to --until (a campaign)")]
LeadTime = Annotated[float, typer.Option("--lead-time", help="Lead time in days where no receipt tells")]
Cover = Annotated[float, typer.Option("--target-cover-days", help="Cover beyond this is excess")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the answer as JSON")]
Limit = Annotated[int, typer.Option(help="Rows shown")]


def _run(as_of: str | None, until: str | None, grain: str, service_level: float, uplift: float,
         lead_time: float, target_cover_days: float) -> dict[str, Any]:
    from growthwheel import analyst

    with cli_errors():
        report: dict[str, Any] = analyst.run("inventory_plan", {
            "as_of": as_of, "until": until, "grain": grain, "service_level": service_level,
            "uplift": uplift, "lead_time_days": lead_time, "target_cover_days": target_cover_days})
    return report


def _n(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _caption(report: dict[str, Any]) -> str:
    bt = report.get("backtest")
    head = f"as of {report['as_of']}, risk up to {report['until']}, {report['skus']:,} SKUs"
    if not bt:
        return head + "; too little history for a backtest"
    mase = bt["mase"]
    return (f"{head}; backtest ({bt['origins']} origins × {bt['horizon']}): MASE of the choice "
            f"{_n(mase['selected_holdout'], 3)} vs seasonal naive {_n(mase['baseline_holdout'], 3)} "
            f"on the last origin")


@inventory_app.command("plan")
def plan(as_of: AsOf = None, until: Until = None, grain: Grain = "day", service_level: Level = 0.95,
         uplift: Uplift = 1.0, lead_time: LeadTime = 14.0, target_cover_days: Cover = 60.0,
         limit: Limit = 30, as_json: AsJson = False) -> None:
    """Forecasts, safety stock, reorder points, EOQ and cover per SKU (riskiest first)."""
    report = _run(as_of, until, grain, service_level, uplift, lead_time, target_cover_days)
    if as_json:
        print_json(report)
        return
    cols = [Column("sku", right=False), Column("method", right=False, keep=2), Column("per day"),
            Column("on hand"), Column("safety"), Column("reorder at"), Column("EOQ", keep=1),
            Column("cover d", keep=1), Column("risk")]
    rows = [[it["sku"], it["method"], _n(it["daily_demand"], 2), _n(it["on_hand"], 0),
             _n(it["safety_stock"]), _n(it["reorder_point"]), _n(it["eoq"], 0),
             _n(it["days_of_cover"]), _n(it["stockout_risk"], 2)] for it in report["items"][:limit]]
    print_table("Inventory plan", cols, rows, caption=_caption(report))


@inventory_app.command("at-risk")
def at_risk(until: Until = None, as_of: AsOf = None, uplift: Uplift = 1.0, service_level: Level = 0.95,
            threshold: Annotated[float, typer.Option(help="Smallest stock-out probability")] = 0.5,
            as_json: AsJson = False) -> None:
    """SKUs likely to run out before ``--until`` (e.g. a campaign's peak with ``--uplift``)."""
    from growthwheel.inventory import service

    report = _run(as_of, until, "day", service_level, uplift, 14.0, 60.0)
    items = service.at_risk(report, threshold)
    if as_json:
        print_json({"as_of": report["as_of"], "until": report["until"], "items": items})
        return
    cols = [Column("sku", right=False), Column("on hand"), Column("inbound"), Column("per day"),
            Column("risk"), Column("reorder now", right=False)]
    rows = [[it["sku"], _n(it["on_hand"], 0), _n(it["inbound"], 0), _n(it["daily_demand"], 2),
             _n(it["stockout_risk"], 2), "yes" if it["reorder_now"] else ""] for it in items]
    print_table(f"Stock-out risk up to {report['until']}", cols, rows, caption=_caption(report))


@inventory_app.command("slow-movers")
def slow_movers(as_of: AsOf = None, target_cover_days: Cover = 60.0, as_json: AsJson = False) -> None:
    """Stock beyond ``--target-cover-days`` of demand, with a clearance discount suggestion."""
    from growthwheel.inventory import service

    report = _run(as_of, None, "day", 0.95, 1.0, 14.0, target_cover_days)
    items = service.slow_movers(report)
    if as_json:
        print_json({"as_of": report["as_of"], "items": items})
        return
    cols = [Column("sku", right=False), Column("on hand"), Column("cover d"), Column("excess"),
            Column("discount"), Column("why", right=False)]
    rows = [[it["sku"], _n(it["on_hand"], 0), _n(it["days_of_cover"]), str(it["clearance"]["excess_units"]),
             f"{it['clearance']['discount_percent']}%", it["clearance"]["reason"]] for it in items]
    print_table("Slow movers", cols, rows,
                caption="draft a clearance: growthwheel inventory clearance SKU… --discount N")


@inventory_app.command("clearance")
def clearance(skus: Annotated[list[str], typer.Argument(help="SKUs to clear")],
              discount: Annotated[int, typer.Option(help="Percent off (1-90)")] = 20,
              name: Annotated[str | None, typer.Option(help="Promotion name")] = None) -> None:
    """Store a draft percent-off promotion on the SKUs (start it in the promotions console)."""
    from growthwheel.cli.common import store_session
    from growthwheel.inventory import service
    from growthwheel.promotions import service as promotions

    with cli_errors():
        definition = service.clearance_definition(skus, discount)
        title = name or f"Clearance {discount}% off ({len(definition['conditions']['skus'])} SKUs)"
        with store_session() as session:
            row = promotions.create_promotion(session, name=title, definition=definition, status="draft",
                                              actor_name=cli_actor())
            found = (row.id, row.name)
    out.print(f"draft promotion {found[0]} ({found[1]}): open /promotions/{found[0]} to start it",
              highlight=False)
