"""``growthwheel worker``: run the scheduled jobs and deliver the outbox.

Wiring (in ``cli/main.py``)::

    from growthwheel.jobs.cli import worker_app
    app.add_typer(worker_app, name="worker")

* ``growthwheel worker`` runs forever; SIGTERM or SIGINT (Ctrl-C) stop it gracefully: the job in
  hand finishes and is recorded, the outbox messages not yet handed to a channel go back to the
  queue. Start as many as you like (on PostgreSQL, on several machines): they share the work.
* ``growthwheel worker --once [--now 2026-06-18T00:10:00+08:00]`` runs what is due (as of ``--now``)
  and exits.
* ``growthwheel worker status``, ``schedules``, ``schedule-segment``, ``replay``: runs, failures,
  dead letters, and what operators change.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from growthwheel.cli.common import cli_actor, out, parse_now, print_json, store_session
from growthwheel.config import settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.jobs import outbox, scheduler, tasks
from growthwheel.jobs.models import JobRun, JobSchedule, OutboxRow
from growthwheel.jobs.worker import Worker, system_clock

worker_app = typer.Typer(help="The worker: scheduled jobs and the outbox.", invoke_without_command=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]


@worker_app.callback()
def worker_command(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Run what is due, deliver the outbox, exit")] = False,
    now: Annotated[str | None, typer.Option(
        "--now", help="With --once: run as of this time (ISO, with zone; default now)")] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=3600, help="Idle seconds")] = 1.0,
    name: Annotated[str | None, typer.Option("--name", help="Name in leases (default host:pid)")] = None,
    as_json: AsJson = False,
    exit_with_parent: Annotated[int | None, typer.Option(
        "--exit-with-parent", hidden=True, help="Stop when the process with this id is gone")] = None,
) -> None:
    """Run the scheduled jobs (points expiry, tier review, birthday coupons, group-buy and bargain
    expiry with refunds, referral settlement, segment refreshes, reviews) and deliver the outbox."""
    if ctx.invoked_subcommand is not None:
        return
    if now is not None and not once:
        raise InvalidArgumentError("--now: only with --once (a worker that runs forever uses the real clock)")
    cfg = settings()
    if once:
        fixed = parse_now(now) if now is not None else None
        worker = Worker(cfg, name=name, clock=(lambda: fixed) if fixed is not None else system_clock)
        summary = worker.run_once()
        if as_json:
            print_json(summary.as_dict())
            return
        for run in summary.runs:
            tail = f" — {run.error}" if run.error else ""
            out.print(f"{run.schedule}: {run.status}{' (will retry)' if run.will_retry else ''}{tail}",
                      highlight=False)
        d = summary.delivery
        out.print(f"{len(summary.runs)} job run(s); outbox: {d.sent} sent, {d.skipped} skipped, "
                  f"{d.deferred} deferred, {d.retried} to retry, {d.dead} dead", highlight=False)
        return
    worker = Worker(cfg, name=name, poll_seconds=poll)

    def _stop(signum: int, _frame: Any) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    out.print(f"worker {worker.name} running (SIGTERM or Ctrl-C to stop)", highlight=False)
    worker.run_forever(parent=exit_with_parent)
    out.print(f"worker {worker.name} stopped", highlight=False)


@worker_app.command("schedules")
def schedules_command(as_json: AsJson = False) -> None:
    """Every schedule: when it runs next, how it last ended, who holds it."""
    Worker(settings(), channels={}).prepare()
    with store_session() as session:
        rows = list(session.scalars(select(JobSchedule).order_by(JobSchedule.name)))
        data: list[dict[str, Any]] = [
            {"name": r.name, "kind": r.kind, "every_seconds": r.every_seconds, "daily_at": r.daily_at,
                 "enabled": r.enabled, "next_run_at": r.next_run_at.isoformat(), "failures": r.failures,
                 "last_status": r.last_status, "last_error": r.last_error, "lease_owner": r.lease_owner}
                for r in rows]
    if as_json:
        print_json(data)
        return
    table = Table()
    for column in ("name", "when", "next run (UTC)", "last", "held by"):
        table.add_column(column)
    for r in data:
        when = f"every {r['every_seconds']} s" if r["every_seconds"] else f"daily {r['daily_at']}"
        table.add_row(str(r["name"]), when if r["enabled"] else "disabled", str(r["next_run_at"])[:19],
                      str(r["last_status"] or "–"), str(r["lease_owner"] or ""))
    out.print(table)


@worker_app.command("status")
def status_command(as_json: AsJson = False) -> None:
    """Recent runs, failures, and the outbox by status."""
    with store_session() as session:
        runs = list(session.scalars(select(JobRun).order_by(JobRun.started_at.desc()).limit(20)))
        data: dict[str, Any] = {"runs": [{"schedule": r.schedule, "status": r.status, "attempt": r.attempt,
                          "started_at": r.started_at.isoformat(), "worker": r.worker, "error": r.error,
                          "will_retry": r.will_retry} for r in runs],
                "outbox": outbox.counts(session)}
    if as_json:
        print_json(data)
        return
    for r in data["runs"]:
        out.print(f"{r['started_at'][:19]} {r['schedule']}: {r['status']} (attempt {r['attempt']})"
                  + (f" — {r['error']}" if r["error"] else ""), highlight=False)
    out.print("outbox: " + ", ".join(f"{k} {v:,}" for k, v in data["outbox"].items()), highlight=False)


@worker_app.command("schedule-segment")
def schedule_segment(
    segment: Annotated[str, typer.Argument(help="Segment name or id")],
    every: Annotated[float, typer.Option("--every-hours", min=0.01, max=24 * 365,
                                         help="Refresh every this many hours")] = 24.0,
    off: Annotated[bool, typer.Option("--off", help="Stop refreshing it on a schedule")] = False,
) -> None:
    """Refresh a saved segment on a schedule (or stop with --off)."""
    from growthwheel.segments import service as segments_service

    with store_session() as session:
        seg = segments_service.get_segment(session, segment)
        spec = tasks.segment_schedule(seg.id, int(timedelta(hours=every).total_seconds()))
        if off:
            row = session.get(JobSchedule, spec.name)
            if row is not None:
                row.enabled = False
            out.print(f"segment {seg.name!r} is no longer refreshed on a schedule", highlight=False)
            return
        scheduler.put_schedule(session, spec, now=parse_now(None), timezone=settings().shop().timezone,
                               replace=True)
    out.print(f"segment {seg.name!r} is refreshed every {every:g} h by the worker", highlight=False)


@worker_app.command("replay")
def replay_command(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead letters' ids (default: all of them)")] = None,
    as_json: AsJson = False,
) -> None:
    """Put dead letters back in the outbox queue."""
    with store_session() as session:
        chosen = ids or list(session.scalars(select(OutboxRow.id).where(OutboxRow.status == "dead")))
        count = outbox.replay(session, chosen, now=parse_now(None), actor_name=cli_actor())
    if as_json:
        print_json({"replayed": count})
    else:
        out.print(f"{count} dead letter(s) queued again", highlight=False)
