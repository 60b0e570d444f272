"""``growthwheel journeys``: list, show, create, change, activate / pause / end, preview, report.

Wiring (in ``cli/main.py``)::

    from growthwheel.journeys.cli import journeys_app
    app.add_typer(journeys_app, name="journeys")

A definition is read from a JSON file (``--file``, ``-`` for stdin); a bad one prints one line
naming the field (``definition.steps[2].next: …``) and exits non-zero, like the API's 422.
``preview`` reads the warehouse itself, so it needs the server to be stopped (like ``kpi``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from growthwheel.cli.common import (
    cli_actor,
    out,
    parse_now,
    print_json,
    settings,
    store_session,
    warehouse_reader,
)
from growthwheel.errors import InvalidArgumentError

journeys_app = typer.Typer(help="Automated journeys: triggers, steps, hold-out and reports.",
                           no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]
Ref = Annotated[str, typer.Argument(help="The journey's id or name")]
DefFile = Annotated[str, typer.Option("--file", "-f", help="The definition as a JSON file ('-': stdin)")]


def read_definition(path: str) -> Any:
    """The JSON of ``--file`` (one clear error when it is missing or not JSON)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgumentError(f"--file: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"--file: {path} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InvalidArgumentError(f"--file: not JSON ({where}: {exc.msg})") from None
    if isinstance(data, dict) and "definition" in data and "trigger" not in data:
        data = data["definition"]  # the API's body {"name": …, "definition": {…}} works too
    return data


def _row(j: Any) -> dict[str, Any]:
    return {"id": j.id, "name": j.name, "description": j.description, "status": j.status,
            "version": j.version, "trigger": (j.definition or {}).get("trigger", {}).get("kind"),
            "activated_at": j.activated_at, "ended_at": j.ended_at, "evaluated_until": j.evaluated_until,
            "created_by": j.created_by, "created_at": j.created_at}


def _say(j: Any, verb: str) -> None:
    out.print(f"{verb} journey {j.name} ({j.id}): {j.status}, version {j.version}", highlight=False)


@journeys_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option("--status", help="draft, active, paused or ended")] = None,
    as_json: AsJson = False,
) -> None:
    """Every journey, newest first."""
    from growthwheel.journeys import repository

    if status is not None and status not in ("draft", "active", "paused", "ended"):
        raise InvalidArgumentError("--status: one of draft, active, paused, ended")
    with store_session() as session:
        rows = [_row(j) for j in repository.journeys(session, status)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no journeys", highlight=False)
    for r in rows:
        out.print(f"{r['name']}\t{r['status']}\tv{r['version']}\t{r['trigger']}\t{r['id']}", highlight=False)


@journeys_app.command("show")
def show_command(ref: Ref, as_json: AsJson = False) -> None:
    """One journey with its definition."""
    from growthwheel.journeys import service

    with store_session() as session:
        j = service.get_journey(session, ref)
        data = {**_row(j), "definition": dict(j.definition)}
    if as_json:
        print_json(data)
        return
    _say(j, "")
    out.print(json.dumps(data["definition"], ensure_ascii=False, indent=2), highlight=False)


@journeys_app.command("create")
def create_command(
    name: Annotated[str, typer.Option("--name", help="A unique name")],
    file: DefFile,
    description: Annotated[str | None, typer.Option("--description")] = None,
    as_json: AsJson = False,
) -> None:
    """Create a journey (draft) from a definition file."""
    from growthwheel.journeys import service

    definition = read_definition(file)
    with store_session() as session:
        j = service.create_journey(session, name, definition, description=description, actor_name=cli_actor())
        data = _row(j)
    if as_json:
        print_json(data)
        return
    _say(j, "created")


@journeys_app.command("update")
def update_command(ref: Ref, file: DefFile, as_json: AsJson = False) -> None:
    """A new version of the definition (enrolments already in keep theirs)."""
    from growthwheel.journeys import service

    definition = read_definition(file)
    with store_session() as session:
        j = service.update_definition(session, ref, definition, actor_name=cli_actor())
        data = _row(j)
    if as_json:
        print_json(data)
        return
    _say(j, "updated")


def _transition(ref: str, action: str, as_json: bool) -> None:
    from growthwheel.journeys import service

    with store_session() as session:
        j = service.change_status(session, ref, action, actor_name=cli_actor())
        data = _row(j)
    if as_json:
        print_json(data)
        return
    _say(j, {"activate": "activated", "pause": "paused", "end": "ended"}[action])


@journeys_app.command("activate")
def activate_command(ref: Ref, as_json: AsJson = False) -> None:
    """Start enrolling (and advancing)."""
    _transition(ref, "activate", as_json)


@journeys_app.command("pause")
def pause_command(ref: Ref, as_json: AsJson = False) -> None:
    """Stop enrolling and advancing until activated again."""
    _transition(ref, "pause", as_json)


@journeys_app.command("end")
def end_command(ref: Ref, as_json: AsJson = False) -> None:
    """End the journey for good."""
    _transition(ref, "end", as_json)


@journeys_app.command("preview")
def preview_command(
    ref: Annotated[str | None, typer.Argument(help="A journey (or give --file)")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="A definition file instead")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="Look this many days back")] = 30,
    now: Annotated[str | None, typer.Option("--now", help="As of (ISO, with zone; default now)")] = None,
    as_json: AsJson = False,
) -> None:
    """Audience preview: how many customers the trigger hit over the last days (and a sample)."""
    from growthwheel.journeys import service
    from growthwheel.journeys.repository import WarehouseView

    if (ref is None) == (file is None):
        raise InvalidArgumentError("give a journey or --file (one of them)")
    with store_session() as session:
        if file is not None:
            definition = read_definition(file)
        else:
            definition = dict(service.get_journey(session, ref or "").definition)
        with warehouse_reader() as backend:
            found = service.preview(session, WarehouseView(backend), definition,
                                    timezone=settings().shop().timezone, days=days,
                                    now=parse_now(now))
    if as_json:
        print_json(found)
        return
    out.print(f"{found['customers']} customers ({found['occurrences']} occurrences) in the last {days} days; "
              f"about {found['expected_holdout']} would be held out", highlight=False)
    if found["sample"]:
        out.print("sample: " + ", ".join(found["sample"]), highlight=False)


@journeys_app.command("report")
def report_command(
    ref: Ref,
    lang: Annotated[str, typer.Option("--lang", help="zh or en (the words)")] = "en",
    as_json: AsJson = False,
) -> None:
    """Entered, per step, converted, revenue, and the uplift against the hold-out."""
    from growthwheel.journeys import service
    from growthwheel.journeys.report import journey_report

    if lang not in ("zh", "en"):
        raise InvalidArgumentError("--lang: zh or en")
    with store_session() as session:
        currency = settings().shop().currency
        report = journey_report(session, service.get_journey(session, ref), currency=currency)
    if as_json:
        print_json(report)
        return
    t, h = report["treatment"], report["holdout"]
    out.print(f"{report['journey']['name']}: {report['entered']} entered "
              f"({t['entered']} in the journey, {h['entered']} held out)", highlight=False)
    for s in report["steps"]:
        out.print(f"  {s['step']}: {s['outcome']} × {s['enrolments']}", highlight=False)
    out.print(f"converted: {t['converted']} in the journey, {h['converted']} held out", highlight=False)
    uplift = report.get("uplift")
    if uplift:
        out.print(uplift["conversion"]["words"][lang], highlight=False)
        out.print(uplift["revenue_per_entrant"]["words"][lang], highlight=False)
    else:
        out.print(report["uplift_words"][lang], highlight=False)
