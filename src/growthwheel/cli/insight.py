"""``growthwheel rfm | lifecycle | cohorts | funnel``: customer insight on the command line.

Each command reads the warehouse (DuckDB or Spark, as configured), prints a Rich table, or with
``--json`` the same figures as JSON (money in major units of the shop currency). Registered on the
main app with ``app.add_typer(insight_app)`` (the commands sit at the top level).
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from growthwheel.cli.common import out, parse_date, print_json
from growthwheel.config import settings
from growthwheel.errors import GrowthwheelError
from growthwheel.kit.export import write_frame
from growthwheel.kit.jsonable import json_records

insight_app = typer.Typer(help="Customer insight: RFM, lifecycle, cohorts, funnels.")



class Cut(StrEnum):
    """Where R, F and M split into high and low for the 8 value classes."""

    mean = "mean"
    median = "median"


class CohortPeriod(StrEnum):
    """Cohort periods."""

    week = "week"
    month = "month"


class CohortMetric(StrEnum):
    """What the cohort table shows in each cell."""

    retention = "retention"
    customers = "customers"
    recurring = "recurring"
    revenue = "revenue"


class Breakdown(StrEnum):
    """Funnel breakdowns: attributes of the entry event."""

    utm_source = "utm_source"
    utm_medium = "utm_medium"
    utm_campaign = "utm_campaign"
    device = "device"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _warehouse() -> tuple[Any, int, str]:
    """The warehouse backend, the shop currency's minor-unit exponent and its code."""
    from growthwheel.kit.money import currency_exponent
    from growthwheel.warehouse import connect

    cfg = settings()
    currency = cfg.shop().currency
    return connect(cfg), currency_exponent(currency), currency


@insight_app.command("rfm")
def rfm_command(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Score as of this day (default: last order)")
    ] = None,
    cut: Annotated[Cut, typer.Option("--cut", help="High/low split of the 8 value classes")] = Cut.mean,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write every customer's scores to this CSV")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """RFM scores (quintiles 1-5), the 11 classic segments and the 8 value classes (客户价值分类)."""
    from growthwheel.insight.rfm import last_paid_day, rfm_report, rfm_scores

    con, exponent, currency = _warehouse()
    orders = con.table("orders")
    day = parse_date(as_of, "--as-of") or last_paid_day(orders)
    report = rfm_report(orders, day, cut=cut.value, currency_exponent=exponent)
    if out_file is not None:
        scores = rfm_scores(orders, day, cut=cut.value).execute()
        scores["monetary"] = scores["monetary"] / 10**exponent
        write_frame(scores.sort_values("customer_id"), out_file)  # formula-like text defused
        report["out"] = str(out_file)
    if as_json:
        print_json({"currency": currency, **report})
        return
    if not report["customers"]:
        out.print(f"No customer with a paid order on or before {day}.")
        return
    for key, title, label in (("segments", "RFM segments", "label_zh"),
                              ("value_classes", "客户价值分类 (8 classes)", "label_en")):
        view = RichTable(title=f"{title} as of {report['as_of']} ({currency})")
        for name in ("segment", "", "customers", "share", "net revenue", "avg days", "avg orders",
                     "avg spend"):
            view.add_column(name, justify="left" if name in ("segment", "") else "right")
        for row in report[key]:
            view.add_row(row["segment"], row[label], f"{row['customers']:,}", _pct(row["share"]),
                         _num(row["monetary"], exponent), _num(row["avg_recency_days"], 1),
                         _num(row["avg_frequency"], 2), _num(row["avg_monetary"], exponent))
        out.print(view)
    grid = RichTable(title="customers by R (rows) × F (columns)")
    grid.add_column("R \\ F")
    for f in range(1, 6):
        grid.add_column(str(f), justify="right")
    cells = {(c["r_score"], c["f_score"]): c["customers"] for c in report["grid"]}
    for r in range(5, 0, -1):
        grid.add_row(str(r), *(f"{cells[(r, f)]:,}" for f in range(1, 6)))
    out.print(grid)
    if out_file is not None:
        out.print(f"scores of {report['customers']:,} customers written to {out_file}")


@insight_app.command("lifecycle")
def lifecycle_command(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Stages as of this day (default: last order)")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Also show moves since this day")] = None,
    at_risk_days: Annotated[
        int | None, typer.Option(help="Set thresholds by hand: at risk after N days")
    ] = None,
    dormant_days: Annotated[int | None, typer.Option(help="Dormant after N days")] = None,
    churned_days: Annotated[int | None, typer.Option(help="Churned after N days")] = None,
    new_days: Annotated[int, typer.Option(help="A one-order customer is new for N days")] = 30,
    loyal_orders: Annotated[int, typer.Option(help="Loyal from this many orders")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """Lifecycle stages (new, active, repeat, loyal, at risk, dormant, churned) and moves between them.

    Thresholds are learned from the shop's own repeat-purchase gaps unless all three of
    --at-risk-days, --dormant-days and --churned-days are given.
    """
    from growthwheel.insight.lifecycle import (
        NO_STAGE,
        STAGE_LABELS_ZH,
        STAGES,
        Thresholds,
        lifecycle_report,
        thresholds_for,
    )
    from growthwheel.insight.rfm import last_paid_day

    con, _, _ = _warehouse()
    orders = con.table("orders")
    day = parse_date(as_of, "--as-of") or last_paid_day(orders)
    since = parse_date(start, "--from")
    manual = (at_risk_days, dormant_days, churned_days)
    if any(v is not None for v in manual):
        if any(v is None for v in manual):
            raise GrowthwheelError("give all of --at-risk-days, --dormant-days and --churned-days, or none")
        th = Thresholds(at_risk_days=at_risk_days or 0, dormant_days=dormant_days or 0,
                        churned_days=churned_days or 0, new_days=new_days, loyal_orders=loyal_orders)
    else:
        th = thresholds_for(orders, end=day, new_days=new_days, loyal_orders=loyal_orders)
    report = lifecycle_report(orders, day, thresholds=th, start=since)
    if as_json:
        print_json(report)
        return
    how = {"learned": f"learned from {th.gaps:,} repeat gaps (P80 {th.p80_days} d, P95 {th.p95_days} d)",
           "default": f"defaults (only {th.gaps:,} repeat gaps to learn from)",
           "manual": "set by hand"}[th.source]
    out.print(f"thresholds {how}: at risk after {th.at_risk_days} days, dormant after "
              f"{th.dormant_days}, churned after {th.churned_days}; new for {th.new_days} days, "
              f"loyal from {th.loyal_orders} orders")
    view = RichTable(title=f"lifecycle stages as of {report['as_of']}")
    for name in ("stage", "", "customers", "share", "orders"):
        view.add_column(name, justify="left" if name in ("stage", "") else "right")
    for row in report["stages"]:
        view.add_row(row["stage"], row["label_zh"], f"{row['customers']:,}", _pct(row["share"]),
                     f"{row['orders']:,}")
    out.print(view)
    if "transitions" in report:
        moves = {(m["from_stage"], m["to_stage"]): m["customers"]
                 for m in report["transitions"]["moves"]}
        matrix = RichTable(title=f"moves from {report['transitions']['from']} (rows) "
                                 f"to {report['as_of']} (columns)")
        matrix.add_column("from \\ to")
        for stage in STAGES:
            matrix.add_column(stage, justify="right")
        for origin in (NO_STAGE, *STAGES):
            if any(k[0] == origin for k in moves):
                matrix.add_row(f"{origin} {STAGE_LABELS_ZH[origin]}",
                               *(f"{moves.get((origin, s), 0):,}" for s in STAGES))
        out.print(matrix)


@insight_app.command("cohorts")
def cohorts_command(
    by: Annotated[CohortPeriod, typer.Option("--by", help="Cohort period")] = CohortPeriod.month,
    rolling: Annotated[
        bool, typer.Option("--rolling", help="Periods count from each customer's first order")
    ] = False,
    window_days: Annotated[
        int | None, typer.Option(help="Rolling period length (default 7 / 30 days)")
    ] = None,
    by_channel: Annotated[
        bool, typer.Option("--by-channel", help="Split cohorts by acquisition channel")
    ] = False,
    start: Annotated[str | None, typer.Option("--from", help="Cohorts acquired from this day")] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Ignore orders after this day (default: last order)")
    ] = None,
    metric: Annotated[
        CohortMetric, typer.Option("--metric", help="What each cell shows")
    ] = CohortMetric.retention,
    as_json: Annotated[bool, typer.Option("--json", help="Print every cell as JSON")] = False,
) -> None:
    """Acquisition cohorts × periods since: retention, recurring customers and revenue."""
    from growthwheel.insight.cohorts import retention_frame

    con, exponent, currency = _warehouse()
    frame = retention_frame(
        con.table("orders"), by=by.value, mode="rolling" if rolling else "calendar",
        window_days=window_days, start=parse_date(start, "--from"), end=parse_date(end, "--to"),
        by_channel=by_channel, currency_exponent=exponent,
    )
    if as_json:
        print_json({"currency": currency, "by": by.value, "mode": "rolling" if rolling else "calendar",
               "cells": json_records(frame)})
        return
    if frame.empty:
        out.print("No cohorts in that range.")
        return
    periods = int(frame["period"].max()) + 1
    unit = "d" if rolling else by.value[0]
    view = RichTable(title=f"{metric.value} by {by.value}ly cohort"
                           f"{' and channel' if by_channel else ''} ({currency})")
    view.add_column("cohort")
    if by_channel:
        view.add_column("channel")
    view.add_column("size", justify="right")
    for k in range(periods):
        view.add_column(f"{k * (window_days or (7 if by.value == 'week' else 30))}{unit}"
                        if rolling else f"{unit}{k}", justify="right")
    keys = ["cohort", "channel"] if by_channel else ["cohort"]
    for key, group in frame.groupby(keys, sort=False):
        values = key if isinstance(key, tuple) else (key,)
        cells: list[str] = []
        for record in group.to_dict(orient="records"):
            value = record[metric.value if metric is not CohortMetric.recurring else "recurring_rate"]
            if metric in (CohortMetric.retention, CohortMetric.recurring):
                text = _pct(value)
            elif metric is CohortMetric.revenue:
                text = _num(float(value), 0)
            else:
                text = f"{value:,}"
            cells.append(text if record["complete"] else f"[dim]{text}[/dim]")
        cells += [""] * (periods - len(cells))
        view.add_row(*(escape(str(v)) for v in values), f"{group['cohort_size'].iloc[0]:,}", *cells)
    out.print(view)
    out.print("[dim]dim: period not over yet[/dim]")


@insight_app.command("funnel")
def funnel_command(
    steps: Annotated[str, typer.Option(help="Event types in order, comma-separated")] = (
        "view,add_to_cart,checkout,purchase"),
    window_days: Annotated[float, typer.Option(help="Conversion window from the first step, days")] = 14,
    start: Annotated[str | None, typer.Option("--from", help="First day of entries")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day of entries")] = None,
    by: Annotated[Breakdown | None, typer.Option("--by", help="Break down by the entry event's")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON")] = False,
) -> None:
    """An ordered funnel over events: entrants per step, conversion, drop-off, time to convert."""
    from growthwheel.insight.funnels import funnel_frame

    con, _, _ = _warehouse()
    names = [s.strip() for s in steps.split(",") if s.strip()]
    frame = funnel_frame(
        con.table("events"), names, window=timedelta(days=window_days),
        start=parse_date(start, "--from"), end=parse_date(end, "--to"),
        breakdown=by.value if by else None,
    )
    if as_json:
        print_json({"steps": names, "window_days": window_days, "breakdown": by.value if by else None,
               "rows": json_records(frame)})
        return
    if frame.empty or not frame["entrants"].iloc[0]:
        out.print("Nobody entered the funnel in that range.")
        return
    view = RichTable(title=escape(f"funnel {' → '.join(names)} (window {window_days:g} days)"))
    if by:
        view.add_column(by.value)
    for name in ("step", "entrants", "from previous", "overall", "drop-off", "median time"):
        view.add_column(name, justify="left" if name == "step" else "right")
    for record in frame.to_dict(orient="records"):
        seconds = record["median_seconds_from_first"]
        lead = [escape(str(record[by.value]))] if by else []
        view.add_row(*lead, escape(f"{record['step']}. {record['event']}"), f"{record['entrants']:,}",
                     _pct(record["conversion_from_previous"]), _pct(record["conversion_from_first"]),
                     "–" if record["drop_off"] is None else f"{record['drop_off']:,}",
                     "–" if seconds is None else str(timedelta(seconds=round(seconds))))
    out.print(view)
