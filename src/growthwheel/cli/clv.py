"""``growthwheel clv …``: fit the lifetime-value models, check them on a holdout, score customers.

Registered lazily as ``growthwheel clv`` (``cli/lazy.py``); ``fit`` works while the server runs (a
named read of ``growthwheel.analyst``), ``validate`` and ``score`` open the warehouse themselves.
Each command prints one clear line and exits 1 on an error it can explain (no data, data the models
cannot fit, a warehouse held by the server).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from growthwheel.cli.common import Column, cli_errors, escape_markup, money_text, parse_date, print_table
from growthwheel.config import settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.kit.export import write_frame

clv_app = typer.Typer(
    help="Customer lifetime value: BG/NBD or Pareto/NBD with Gamma-Gamma.", no_args_is_help=True
)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Model(StrEnum):
    """Repeat-purchase models."""

    bgnbd = "bgnbd"
    paretonbd = "paretonbd"


class TimeUnit(StrEnum):
    """Time units (a month is 30.4375 days)."""

    day = "day"
    week = "week"
    month = "month"


def _json(value: Any) -> None:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    sys.stdout.write(json.dumps(clean(value), ensure_ascii=False, indent=2, default=str) + "\n")


def _num(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"


def _backend_call(fn: Callable[[Any], Any]) -> Any:
    """Run ``fn(backend)`` on the warehouse, read-only, closing a DuckDB file afterwards."""
    from growthwheel.warehouse import connect

    cfg = settings()
    backend = connect(cfg)
    try:
        return fn(backend)
    finally:
        if cfg.warehouse == "duckdb":
            backend.disconnect()


def _params_table(title: str, fit: dict[str, Any]) -> Table:
    view = Table(title=title)
    view.add_column("parameter")
    view.add_column("estimate", justify="right")
    view.add_column("std. error", justify="right")
    for name, value in fit["params"].items():
        label = "v (γ)" if name == "v" else name
        view.add_row(label, _num(value), _num(fit["std_errors"].get(name)))
    return view


def _print_fit_notes(fit: dict[str, Any], customers_label: str) -> None:
    state = "converged" if fit["converged"] else "[yellow]did NOT converge[/yellow]"
    ll = fit["log_likelihood"]
    out.print(f"log-likelihood {'–' if ll is None else format(ll, '.3f')} · {fit['customers']:,} "
              f"{customers_label} · "
              f"{state} ({fit['optimizer']})", highlight=False)
    if fit["message"]:
        out.print(f"[yellow]{fit['message']}[/yellow]", highlight=False)


@clv_app.command("fit")
def fit_command(
    calibration_end: Annotated[str | None, typer.Option(
        "--calibration-end", help="Last day of data to fit on (default: last order day)")] = None,
    time_unit: Annotated[TimeUnit, typer.Option(
        "--time-unit", help="Unit of recency, age and rates")] = TimeUnit.week,
    model: Annotated[Model, typer.Option("--model", help="Repeat-purchase model")] = Model.bgnbd,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Fit the repeat-purchase model (BG/NBD or Pareto/NBD) and Gamma-Gamma on paid orders.

    Works while the server runs (it computes the fit on its snapshot: ``analyst.run``)."""
    from growthwheel.analyst import run

    with cli_errors():
        end = parse_date(calibration_end, "--calibration-end")
        result = run("clv_fit", {"model": model.value, "time_unit": time_unit.value,
                                 "calibration_end": end.isoformat() if end else None}, settings())
    if as_json:
        _json(result)
        return
    out.print(f"calibration through {result['calibration_end']} · time unit {result['time_unit']} · "
              f"{result['customers']:,} customers, {result['repeat_buyers']:,} repeat buyers",
              highlight=False)
    name = "BG/NBD" if model is Model.bgnbd else "Pareto/NBD"
    out.print(_params_table(f"{name} (repeat purchases per {time_unit.value})", result["purchases"]))
    _print_fit_notes(result["purchases"], "customers")
    out.print(_params_table(f"Gamma-Gamma (spend per purchase, {result['currency']})", result["spend"]))
    _print_fit_notes(result["spend"], "repeat buyers")
    if result["spend"]["mean_spend"] is not None:
        out.print(f"mean spend per purchase p·v/(q−1) = {result['spend']['mean_spend']:,.2f} "
                  f"{result['currency']}", highlight=False)


@clv_app.command("validate")
def validate_command(
    calibration_end: Annotated[str, typer.Option(
        "--calibration-end", help="Last day of the calibration period")],
    holdout_end: Annotated[str, typer.Option("--holdout-end", help="Last day of the holdout period")],
    time_unit: Annotated[TimeUnit, typer.Option("--time-unit", help="Time unit of the fit")] = TimeUnit.week,
    model: Annotated[Model, typer.Option("--model", help="Repeat-purchase model")] = Model.bgnbd,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide the table")] = False,
) -> None:
    """Predicted vs actual purchase days in the holdout period, in total and by calibration frequency."""
    from growthwheel.insight import clv

    with cli_errors():
        cal = parse_date(calibration_end, "--calibration-end")
        hold = parse_date(holdout_end, "--holdout-end")
        assert cal is not None
        assert hold is not None
        result = _backend_call(lambda backend: clv.validate(
            backend, calibration_end=cal, holdout_end=hold, model=model.value,
            time_unit=time_unit.value)).to_dict()
    if as_json:
        _json(result)
        return
    out.print(f"fit through {result['calibration_end']}, holdout to {result['holdout_end']} "
              f"({result['holdout_length']:.2f} {result['time_unit']}s) · {result['customers']:,} customers",
              highlight=False)
    columns = [Column("cal. freq."), Column("customers"), Column("actual"), Column("predicted"),
               Column("actual / cust.", keep=1), Column("predicted / cust.", keep=1), Column("MAE")]
    rows = [[str(row["frequency"]), f"{row['customers']:,}", f"{row['actual_total']:,.0f}",
             f"{row['predicted_total']:,.1f}", f"{row['actual_mean']:.3f}",
             f"{row['predicted_mean']:.3f}", f"{row['mean_absolute_error']:.3f}"]
            for row in result["by_frequency"]]
    rows.append(["all", f"{result['customers']:,}", f"{result['actual_total']:,.0f}",
                 f"{result['predicted_total']:,.1f}", "", "", f"{result['mean_absolute_error']:.3f}"])
    print_table("holdout purchases: predicted vs actual", columns, rows, wide=wide)


@clv_app.command("score")
def score_command(
    horizon: Annotated[int, typer.Option("--horizon", help="Horizon in time units", min=1)] = 12,
    time_unit: Annotated[TimeUnit, typer.Option("--time-unit", help="Unit of the horizon and the fit")] = (
        TimeUnit.month),
    discount_rate: Annotated[float, typer.Option("--discount-rate", help="Discount rate per month")] = 0.01,
    model: Annotated[Model, typer.Option("--model", help="Repeat-purchase model")] = Model.bgnbd,
    calibration_end: Annotated[
        str | None, typer.Option("--calibration-end", help="Score as of this day (default: last order day)")
    ] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Also write the scores (.csv or .parquet)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide the table")] = False,
) -> None:
    """Score every customer (P(alive), expected purchases and spend, CLV) into the warehouse table
    customer_scores."""
    from growthwheel.insight import clv

    with cli_errors():
        if out_file is not None and out_file.suffix.lower() not in (".csv", ".parquet"):
            raise InvalidArgumentError(f"--out: {out_file.name} must end in .csv or .parquet")
        end = parse_date(calibration_end, "--calibration-end")
        scores = clv.score_customers(settings(), horizon=horizon, time_unit=time_unit.value,
                                     discount_rate=discount_rate, model=model.value, calibration_end=end)
    frame = scores.frame
    exponent = scores.fits.summary.exponent
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        if out_file.suffix.lower() == ".csv":
            write_frame(frame, out_file)  # formula-like text defused
        else:
            frame.to_parquet(out_file, index=False)
    total = int(frame["clv"].sum())
    summary = {
        "customers": len(frame),
        "params_id": scores.fits.params_id,
        "calibration_end": scores.fits.summary.calibration_end.isoformat(),
        "horizon": horizon,
        "time_unit": time_unit.value,
        "discount_rate": discount_rate,
        "currency": scores.fits.summary.currency,
        "total_clv": total / 10**exponent,
        "mean_clv": total / 10**exponent / max(len(frame), 1),
        "mean_p_alive": float(frame["p_alive"].mean()),
        "expected_purchases": float(frame["expected_purchases"].sum()),
        "table": clv.SCORES_TABLE,
        "out": str(out_file) if out_file else None,
        "fit": scores.fits.to_dict(),
    }
    if as_json:
        _json(summary)
        return
    out.print(f"scored {len(frame):,} customers over {horizon} {time_unit.value}(s) as of "
              f"{summary['calibration_end']} → warehouse table {clv.SCORES_TABLE} "
              f"(fit {summary['params_id']})", highlight=False)
    out.print(f"total CLV {money_text(summary['total_clv'], exponent)} {summary['currency']} · mean "
              f"{money_text(summary['mean_clv'], exponent)} · mean P(alive) "
              f"{summary['mean_p_alive']:.3f} · expected purchases {summary['expected_purchases']:,.0f}",
              highlight=False)
    top = frame.nlargest(10, "clv")
    currency = summary["currency"]
    columns = [Column("customer", right=False), Column("repeat days", keep=2), Column("P(alive)"),
               Column("expected purchases", keep=1), Column(f"expected spend ({currency})", keep=1),
               Column(f"CLV ({currency})")]
    rows = [[escape_markup(str(row.customer_id)), f"{row.frequency:,}", f"{row.p_alive:.3f}",
             f"{row.expected_purchases:.2f}", money_text(row.expected_spend / 10**exponent, exponent),
             money_text(row.clv / 10**exponent, exponent)] for row in top.itertuples()]
    print_table("top customers by CLV", columns, rows, wide=wide)
    if out_file is not None:
        out.print(f"written to {out_file.resolve()}", highlight=False)
