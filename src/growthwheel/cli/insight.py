"""``growthwheel rfm | lifecycle | cohorts | funnel``: customer insight on the command line.

Each command reads the warehouse (DuckDB or Spark, as configured), prints a Rich table, or with
``--json`` the same figures as JSON (money in major units of the shop currency). Each is a named
read of :mod:`growthwheel.analyst` (``analyst.run``): computed here on the warehouse, or, while
``growthwheel serve`` owns it, by the server; the answer is the same JSON either way. Tables fit
the terminal (80 columns when piped); ``--wide`` shows every column. The commands are registered
lazily at the top level (``cli/lazy.py``).
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from growthwheel.cli.common import (
    Column,
    escape_markup,
    money_text,
    out,
    parse_date,
    print_json,
    print_table,
    settings,
)

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


WideFlag = Annotated[bool, typer.Option("--wide", help="Every column, however wide the table")]


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _run(name: str, **params: Any) -> Any:
    """The read ``name`` of ``growthwheel.analyst``: here, or in the server that owns the warehouse."""
    from growthwheel.analyst import run

    return run(name, params, settings())


def _exponent(currency: str) -> int:
    from growthwheel.kit.money import currency_exponent

    return currency_exponent(currency)


def _write_records(records: list[dict[str, Any]], path: Path) -> None:
    import pandas as pd

    from growthwheel.kit.export import write_frame

    write_frame(pd.DataFrame(records), path)  # formula-like text defused


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
    wide: WideFlag = False,
) -> None:
    """RFM scores (quintiles 1-5), the 11 classic segments and the 8 value classes (客户价值分类)."""
    report = _run("rfm", as_of=_iso(parse_date(as_of, "--as-of")), cut=cut.value,
                  scores=out_file is not None)
    scores = report.pop("scores", None)
    if out_file is not None:
        _write_records(scores or [], out_file)
        report["out"] = str(out_file)
    if as_json:
        print_json(report)
        return
    currency = report["currency"]
    exponent = _exponent(currency)
    if not report["customers"]:
        out.print(f"No customer with a paid order on or before {report['as_of']}.")
        return
    for key, title, label in (("segments", "RFM segments", "label_zh"),
                              ("value_classes", "客户价值分类 (8 classes)", "label_en")):
        columns = [Column("segment", right=False), Column("中文" if label == "label_zh" else "name",
                                                         right=False, keep=1),
                   Column("customers"), Column("share", keep=1), Column(f"net revenue ({currency})", keep=2),
                   Column("avg days", keep=3), Column("avg orders", keep=4),
                   Column(f"avg spend ({currency})", keep=3)]
        rows = [[escape_markup(str(row["segment"])), escape_markup(str(row[label] or "")),
                 f"{row['customers']:,}", _pct(row["share"]), money_text(row["monetary"], exponent),
                 _num(row["avg_recency_days"], 1), _num(row["avg_frequency"], 2),
                 money_text(row["avg_monetary"], exponent)] for row in report[key]]
        print_table(f"{title} as of {report['as_of']}", columns, rows, wide=wide)
    cells = {(c["r_score"], c["f_score"]): c["customers"] for c in report["grid"]}
    print_table("customers by R (rows) × F (columns)",
                [Column("R \\ F", right=False), *(Column(str(f)) for f in range(1, 6))],
                [[str(r), *(f"{cells.get((r, f), 0):,}" for f in range(1, 6))] for r in range(5, 0, -1)],
                wide=wide)
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
    wide: WideFlag = False,
) -> None:
    """Lifecycle stages (new, active, repeat, loyal, at risk, dormant, churned) and moves between them.

    Thresholds are learned from the shop's own repeat-purchase gaps unless all three of
    --at-risk-days, --dormant-days and --churned-days are given.
    """
    report = _run("lifecycle", as_of=_iso(parse_date(as_of, "--as-of")),
                  **{"from": _iso(parse_date(start, "--from"))}, at_risk_days=at_risk_days,
                  dormant_days=dormant_days, churned_days=churned_days, new_days=new_days,
                  loyal_orders=loyal_orders)
    if as_json:
        print_json(report)
        return
    th = report["thresholds"]
    how = {"learned": f"learned from {th['gaps']:,} repeat gaps (P80 {th['p80_days']} d, "
                      f"P95 {th['p95_days']} d)",
           "default": f"defaults (only {th['gaps']:,} repeat gaps to learn from)",
           "manual": "set by hand"}[th["source"]]
    out.print(f"thresholds {how}: at risk after {th['at_risk_days']} days, dormant after "
              f"{th['dormant_days']}, churned after {th['churned_days']}; new for {th['new_days']} "
              f"days, loyal from {th['loyal_orders']} orders", soft_wrap=False)
    print_table(f"lifecycle stages as of {report['as_of']}",
                [Column("stage", right=False), Column("", right=False, keep=2), Column("customers"),
                 Column("share", keep=1), Column("orders", keep=1)],
                [[row["stage"], row["label_zh"], f"{row['customers']:,}", _pct(row["share"]),
                  f"{row['orders']:,}"] for row in report["stages"]], wide=wide)
    if "transitions" in report:
        from growthwheel.insight.lifecycle import NO_STAGE, STAGE_LABELS_ZH, STAGES

        moves = {(m["from_stage"], m["to_stage"]): m["customers"]
                 for m in report["transitions"]["moves"]}
        rows = [[f"{origin} {STAGE_LABELS_ZH[origin]}", *(f"{moves.get((origin, s), 0):,}" for s in STAGES)]
                for origin in (NO_STAGE, *STAGES) if any(k[0] == origin for k in moves)]
        columns = [Column("from \\ to", right=False), *(Column(s, keep=1 + i) for i, s in enumerate(STAGES))]
        print_table(f"moves from {report['transitions']['from']} (rows) to {report['as_of']} (columns)",
                    columns, rows, wide=wide)


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
    wide: WideFlag = False,
) -> None:
    """Acquisition cohorts × periods since: retention, recurring customers and revenue."""
    answer = _run("cohorts", by=by.value, rolling=rolling, window_days=window_days,
                  by_channel=by_channel, **{"from": _iso(parse_date(start, "--from")),
                                            "to": _iso(parse_date(end, "--to"))})
    if as_json:
        print_json(answer)
        return
    cells: list[dict[str, Any]] = answer["cells"]
    if not cells:
        out.print("No cohorts in that range.")
        return
    currency = answer["currency"]
    exponent = _exponent(currency)
    periods = max(int(c["period"]) for c in cells) + 1
    unit = "d" if rolling else by.value[0]
    columns = [Column("cohort", right=False)]
    if by_channel:
        columns.append(Column("channel", right=False))
    columns.append(Column("size"))
    columns += [Column(f"{k * (window_days or (7 if by.value == 'week' else 30))}{unit}" if rolling
                       else f"{unit}{k}", keep=k) for k in range(periods)]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for cell in cells:
        key: tuple[str, ...] = ((str(cell["cohort"]), str(cell["channel"])) if by_channel
                                else (str(cell["cohort"]),))
        groups.setdefault(key, []).append(cell)
    rows: list[list[str]] = []
    for key, group in groups.items():
        texts: list[str] = []
        for record in sorted(group, key=lambda c: int(c["period"])):
            value = record[metric.value if metric is not CohortMetric.recurring else "recurring_rate"]
            if metric in (CohortMetric.retention, CohortMetric.recurring):
                text = _pct(value)
            elif metric is CohortMetric.revenue:
                text = money_text(value, exponent)
            else:
                text = f"{value:,}"
            texts.append(text if record["complete"] else f"[dim]{text}[/dim]")
        texts += [""] * (periods - len(texts))
        rows.append([*(escape_markup(v) for v in key), f"{group[0]['cohort_size']:,}", *texts])
    title = (f"{metric.value} by {by.value}ly cohort{' and channel' if by_channel else ''}"
             + (f" ({currency})" if metric is CohortMetric.revenue else ""))
    print_table(title, columns, rows, wide=wide)
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
    wide: WideFlag = False,
) -> None:
    """An ordered funnel over events: entrants per step, conversion, drop-off, time to convert."""
    names = [s.strip() for s in steps.split(",") if s.strip()]
    answer = _run("funnel", steps=names, window_days=window_days, by=by.value if by else None,
                  **{"from": _iso(parse_date(start, "--from")), "to": _iso(parse_date(end, "--to"))})
    if as_json:
        print_json(answer)
        return
    records: list[dict[str, Any]] = answer["rows"]
    if not records or not records[0]["entrants"]:
        out.print("Nobody entered the funnel in that range.")
        return
    columns = [Column(by.value, right=False)] if by else []
    columns += [Column("step", right=False), Column("entrants"), Column("from previous"),
                Column("overall", keep=1), Column("drop-off", keep=2), Column("median time", keep=3)]
    rows = []
    for record in records:
        seconds = record["median_seconds_from_first"]
        lead = [escape_markup(str(record[by.value]))] if by else []
        rows.append([*lead, escape_markup(f"{record['step']}. {record['event']}"), f"{record['entrants']:,}",
                     _pct(record["conversion_from_previous"]), _pct(record["conversion_from_first"]),
                     "–" if record["drop_off"] is None else f"{record['drop_off']:,}",
                     "–" if seconds is None else str(timedelta(seconds=round(seconds)))])
    print_table(escape_markup(f"funnel {' → '.join(names)} (window {window_days:g} days)"), columns, rows,
                wide=wide)


@insight_app.command("personas")
def personas_command(
    k: Annotated[int | None, typer.Option("--k", help="Number of personas (default: chosen by silhouette)",
                                          min=2, max=20)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As of this day (YYYY-MM-DD)")] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
    assignments: Annotated[
        Path | None, typer.Option("--assignments", help="Write customer_id,persona CSV")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    wide: WideFlag = False,
) -> None:
    """Cluster buyers into personas with readable labels, sizes and value."""
    answer = _run("personas", k=k, as_of=_iso(parse_date(as_of, "--as-of")), seed=seed,
                  assignments=assignments is not None)
    rows_out = answer.pop("assignments", None)
    if assignments is not None:
        _write_records(rows_out or [], assignments)
    if as_json:
        answer.pop("buyers", None)
        print_json(answer)
        return
    currency = answer["currency"]
    exponent = _exponent(currency)
    scores = ", ".join(f"k={n}: {s:.3f}" for n, s in answer["silhouettes"].items())
    out.print(f"{answer['k']} personas of {answer['buyers']:,} buyers as of {answer['as_of']}"
              + (f" (silhouette {scores})" if scores else ""), highlight=False, soft_wrap=False)
    columns = [Column("#"), Column("persona", right=False, keep=3), Column("画像", right=False),
               Column("buyers"), Column(f"revenue ({currency})"), Column("orders", keep=2),
               Column("AOV", keep=1), Column("discount", keep=2), Column("last", keep=4),
               Column("first", keep=4)]
    rows = [[str(p["id"]), escape_markup(p["label"]), escape_markup(p["label_zh"]),
             f"{p['size']:,} ({p['share']:.0%})",
             f"{money_text(p['revenue'] / 10**exponent, exponent)} ({p['revenue_share']:.0%})",
             f"{p['profile']['orders']:.1f}", money_text(p["profile"]["aov"] / 10**exponent, exponent),
             f"{p['profile']['discount_share']:.0%}", f"{p['profile']['recency_days']:.0f}",
             f"{p['profile']['tenure_days']:.0f}"] for p in answer["personas"]]
    print_table("personas", columns, rows, wide=wide,
                caption="days since the last / first order; --json for every figure")
