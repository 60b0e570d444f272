"""``growthwheel experiments list|create|start|stop|results``.

Wiring (in ``cli/main.py``)::

    from growthwheel.experiments.cli import experiments_app
    app.add_typer(experiments_app, name="experiments")

``results`` opens the warehouse itself, so it needs the server to be stopped (like ``kpi``); with
the server running, use ``GET /api/v1/experiments/{key}/results`` or the console. Domain errors
are raised as ``GrowthwheelError`` (the main entry point prints one line and exits 1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from growthwheel.cli.common import cli_actor, out, print_json, store_session, warehouse_reader
from growthwheel.errors import InvalidArgumentError
from growthwheel.experiments import service
from growthwheel.experiments.schemas import ExperimentCreate, ExperimentOut

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON")]

experiments_app = typer.Typer(help="A/B tests and hold-outs: set up, start, stop, results.",
                              no_args_is_help=True)


def _out(exp: Any) -> dict[str, Any]:
    return ExperimentOut.model_validate(exp).model_dump(mode="json")


def read_create_file(path: Path) -> ExperimentCreate:
    """An experiment set-up from a JSON file (``-`` for stdin); one clear error naming the field."""
    try:
        text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        return ExperimentCreate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise InvalidArgumentError(f"{path}: {where}: {first['msg']}") from None


@experiments_app.command("list")
def list_command(as_json: JsonFlag = False) -> None:
    """Every experiment and hold-out, newest first."""
    with store_session() as session:
        rows = service.list_experiments(session)
        if as_json:
            print_json([_out(e) for e in rows])
            return
        table = Table()
        for column in ("key", "name", "kind", "status", "variants", "traffic", "layer", "started (UTC)"):
            table.add_column(column)
        for exp in rows:
            s = service.summary(exp)
            table.add_row(s["key"], s["name"], s["kind"], s["status"], s["variants"], f"{s['traffic']:.0%}",
                          s["layer"] or "–", str(s["started_at"] or "–")[:19])
        out.print(table)


@experiments_app.command("create")
def create_command(
    file: Annotated[Path, typer.Option("--file", "-f", help="Set-up JSON (the API's body); - = stdin")],
    as_json: JsonFlag = False,
) -> None:
    """Save a draft experiment (or hold-out) from a JSON file."""
    body = read_create_file(file)
    with store_session() as session:
        exp = service.create_experiment(session, body, principal=None, actor_name=cli_actor())
        data = _out(exp)
    if as_json:
        print_json(data)
    else:
        key = data["key"]
        out.print(f"created {key} (draft); start it: growthwheel experiments start {key}", highlight=False)


def _change(key: str, action: str, as_json: bool) -> None:
    with store_session() as session:
        exp = service.get_experiment(session, key)
        if action == "start":
            service.start_experiment(session, exp, principal=None, actor_name=cli_actor())
        else:
            service.stop_experiment(session, exp, principal=None, actor_name=cli_actor())
        data = _out(exp)
    if as_json:
        print_json(data)
    else:
        out.print(f"{key}: {data['status']}", highlight=False)


@experiments_app.command("start")
def start_command(key: str, as_json: JsonFlag = False) -> None:
    """Start a draft experiment."""
    _change(key, "start", as_json)


@experiments_app.command("stop")
def stop_command(key: str, as_json: JsonFlag = False) -> None:
    """Stop a running experiment."""
    _change(key, "stop", as_json)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2%}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.4g}"


@experiments_app.command("results")
def results_command(key: str, as_json: JsonFlag = False) -> None:
    """Every metric's effect with its confidence interval, and the warnings to read first."""
    with store_session() as session:
        exp = service.get_experiment(session, key)
        with warehouse_reader() as backend:
            found = service.results(backend, exp)
    if as_json:
        print_json(found)
        return
    status = found["status"]
    out.print(f"{key}: {status['units']:,} units exposed "
              + ", ".join(f"{v['name']} {v['units']:,}" for v in status["variants"]), highlight=False)
    for warning in found["warnings"]:
        out.print(f"[bold red]warning[/]: {_warning_text(warning)}")
    table = Table()
    for column in ("metric", "role", "variant", "control", "treatment", "relative effect", "CI", "p (adj.)"):
        table.add_column(column)
    for metric in found["metrics"]:
        if "error" in metric:
            table.add_row(metric["label"], metric["role"], "–", "–", "–", metric["error"], "", "")
            continue
        for comp in metric["comparisons"]:
            rel = comp["relative"] or {}
            table.add_row(
                metric["label"], metric["role"], comp["variant"], _num(comp["control_mean"]),
                _num(comp["treatment_mean"]), _pct(rel.get("estimate")),
                f"{_pct(rel.get('ci_lower'))} to {_pct(rel.get('ci_upper'))}",
                "–" if rel.get("p_adjusted") is None else f"{rel['p_adjusted']:.3f}"
                + (" *" if comp["significant"] else ""),
            )
    out.print(table)


_WARNINGS = {
    "srm": "the split of units does not match the weights (sample-ratio mismatch): do not trust the results",
    "multiple_exposures": "some units saw more than one variant; they are left out",
    "peeking": "a fixed-horizon test looked at before its planned sample size: p-values are not yet valid",
    "peeking_unplanned": "a fixed-horizon test without a planned sample size: p-values are only valid at the "
                         "end of a planned test",
    "guardrail": "a guardrail metric got significantly worse",
}


def _warning_text(warning: dict[str, Any]) -> str:
    text = _WARNINGS.get(str(warning["code"]), str(warning["code"]))
    extra = {k: v for k, v in warning.items() if k != "code"}
    return f"{text} {extra}" if extra else text
