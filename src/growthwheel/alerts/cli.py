"""``growthwheel alerts …``: judge the rules, read the inbox, acknowledge and resolve.

* ``alerts evaluate [--since D] [--today D] [--lang zh|en]`` — what the worker's daily job does
  (through the running server when one owns the warehouse); ``--since`` back-fills.
* ``alerts list [--status open|acknowledged|resolved|all] [--json]`` — the inbox.
* ``alerts rules [--json]`` — the rules (built-in ones are added on the first evaluation).
* ``alerts ack ID`` / ``alerts resolve ID [--note TEXT]`` — conditional moves (a one-line error
  when someone moved the alert first).

Registered lazily in ``cli/lazy.py``. Bad input prints one line naming the option and exits 1.
"""

from __future__ import annotations

from typing import Annotated

import typer

from growthwheel.cli.common import Column, cli_errors, err, out, parse_date, print_json, print_table
from growthwheel.cli.common import settings as current_settings
from growthwheel.errors import InvalidArgumentError

alerts_app = typer.Typer(help="Alerts: KPI rules, anomalies and the inbox.", no_args_is_help=True)


@alerts_app.command("evaluate")
def evaluate(
    since: Annotated[str | None, typer.Option(help="First day to judge (default yesterday).")] = None,
    today: Annotated[str | None, typer.Option(help="The shop-local today (default: now).")] = None,
    lang: Annotated[str, typer.Option(help="Language of the notifications: zh or en.")] = "zh",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Judge every enabled rule over the periods that ended since --since."""
    from growthwheel import analyst

    with cli_errors():
        if lang not in ("zh", "en"):
            raise InvalidArgumentError("--lang: zh or en")
        first, now = parse_date(since, "--since"), parse_date(today, "--today")
        result = analyst.run("alerts_evaluate", {"since": first.isoformat() if first else None,
                                                 "today": now.isoformat() if now else None, "lang": lang},
                             current_settings())
    if as_json:
        print_json(result)
        return
    out.print(f"{result['today']}: {result['rules']} rules, {result['new_alerts']} new alerts "
              f"({result['notified']} notified, {result['quiet']} in cool-down)")
    for name, problem in result["errors"].items():
        err.print(f"  {name}: {problem}", highlight=False)


@alerts_app.command("list")
def list_alerts(
    status: Annotated[str, typer.Option(help="open, acknowledged, resolved or all.")] = "open",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide.")] = False,
) -> None:
    """The inbox, newest period first."""
    from growthwheel.alerts import inbox
    from growthwheel.store.db import migrate, session_scope

    cfg = current_settings()
    with cli_errors():
        if status not in ("open", "acknowledged", "resolved", "all"):
            raise InvalidArgumentError("--status: open, acknowledged, resolved or all")
        migrate(cfg)
        with session_scope(cfg) as session:
            names = inbox.rule_names(session)
            rows = [inbox.alert_out(a, names.get(a.rule_id))
                    for a in inbox.list_alerts(session, status=None if status == "all" else status)]
    if as_json:
        print_json(rows)
        return
    print_table(f"Alerts ({status})", [
        Column("id", right=False), Column("period", right=False), Column("rule", right=False, keep=2),
        Column("metric", right=False), Column("where", right=False, keep=1), Column("value"),
        Column("expected", keep=3), Column("status", right=False)],
        [[a["id"], a["period_start"], a["rule"] or "", a["metric"], a["dimension_value"] or "–",
          f"{a['value']:,.2f}", "–" if a["reference"] is None else f"{a['reference']:,.2f}", a["status"]]
         for a in rows], wide=wide)


@alerts_app.command("rules")
def list_rules(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The rules."""
    from growthwheel.alerts import service
    from growthwheel.store.db import migrate, session_scope

    cfg = current_settings()
    migrate(cfg)
    with session_scope(cfg) as session:
        service.ensure_builtin_rules(session)
        rows = [service.rule_out(r) for r in service.list_rules(session)]
    if as_json:
        print_json(rows)
        return
    print_table("Alert rules", [Column("name", right=False), Column("metric", right=False),
                                Column("by", right=False), Column("kind", right=False),
                                Column("params", right=False, keep=1)],
                [[r["name"], r["metric"], r["dimension"] or "–", f"{r['kind']}/{r['period']}",
                  ", ".join(f"{k}={v}" for k, v in r["params"].items())] for r in rows])


def _move(alert_id: str, action: str, note: str | None) -> None:
    from growthwheel.alerts import inbox
    from growthwheel.store.db import migrate, session_scope

    cfg = current_settings()
    with cli_errors():
        migrate(cfg)
        with session_scope(cfg) as session:
            if action == "ack":
                alert = inbox.acknowledge(session, alert_id, actor="cli")
            else:
                alert = inbox.resolve(session, alert_id, actor="cli", note=note)
            out.print(f"{alert.id}: {alert.status}")


@alerts_app.command("ack")
def acknowledge(alert_id: Annotated[str, typer.Argument(help="The alert's id.")]) -> None:
    """Acknowledge an open alert."""
    _move(alert_id, "ack", None)


@alerts_app.command("resolve")
def resolve(alert_id: Annotated[str, typer.Argument(help="The alert's id.")],
            note: Annotated[str | None, typer.Option(help="How it was handled.")] = None) -> None:
    """Resolve an alert."""
    _move(alert_id, "resolve", note)
