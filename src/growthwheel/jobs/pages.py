"""Console page of the worker: ``GET /jobs`` and ``POST /jobs/outbox/replay``.

The page shows every schedule (when it runs next, how it last ended, who holds its lease), the
latest runs with failures and retries, the outbox by status, and the dead letters with a replay
button (form with CSRF token; operators and admins). Every visible string comes from
``i18n/<lang>/jobs.json`` (keys chosen here are marked with :func:`k`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from growthwheel.api.deps import DbSession, PageUser, Principal, check_csrf
from growthwheel.jobs import outbox
from growthwheel.jobs.models import JobRun, JobSchedule, OutboxRow
from growthwheel.web.i18n import k
from growthwheel.web.pages import render

router = APIRouter(include_in_schema=False)

#: Runs and dead letters shown.
RECENT = 50
RUN_STATUS_KEYS = {"running": k("jobs.run.running"), "succeeded": k("jobs.run.succeeded"),
                   "failed": k("jobs.run.failed"), "lost": k("jobs.run.lost")}
OUTBOX_KEYS = {"pending": k("jobs.outbox.pending"), "claimed": k("jobs.outbox.claimed"),
               "sending": k("jobs.outbox.sending"), "sent": k("jobs.outbox.sent"),
               "skipped": k("jobs.outbox.skipped"), "dead": k("jobs.outbox.dead")}
DEAD_KEYS = {"max_attempts": k("jobs.dead.max_attempts"), "refused": k("jobs.dead.refused"),
             "in_doubt": k("jobs.dead.in_doubt"), "no_channel": k("jobs.dead.no_channel")}


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return "–"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _context(session: Session, zone: ZoneInfo, user: Principal) -> dict[str, Any]:
    schedules = [
        {"name": s.name, "kind": s.kind, "every": s.every_seconds, "daily_at": s.daily_at,
         "enabled": s.enabled, "next": _local(s.next_run_at, zone), "last_status": s.last_status or "",
         "last_key": RUN_STATUS_KEYS.get(s.last_status or "", ""), "last_error": s.last_error or "",
         "failures": s.failures, "holder": s.lease_owner or ""}
        for s in session.scalars(select(JobSchedule).order_by(JobSchedule.name))]
    runs = [
        {"schedule": r.schedule, "status": r.status, "status_key": RUN_STATUS_KEYS[r.status],
         "attempt": r.attempt, "worker": r.worker, "started": _local(r.started_at, zone),
         "seconds": f"{(r.finished_at - r.started_at).total_seconds():.1f}" if r.finished_at else "",
         "will_retry": r.will_retry, "error": r.error or ""}
        for r in session.scalars(select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id).limit(RECENT))]
    failures = int(session.scalar(select(func.count()).select_from(JobRun)
                                  .where(JobRun.status.in_(("failed", "lost")))) or 0)
    dead = [
        {"id": row.id, "key": row.key, "channel": row.channel, "recipient": row.recipient,
         "reason_key": DEAD_KEYS.get(row.dead_reason or "", k("jobs.dead.other")), "attempts": row.attempts,
         "error": row.last_error or "", "at": _local(row.dead_at, zone), "replays": row.replays}
        for row in outbox.dead_letters(session, RECENT)]
    counts = outbox.counts(session)
    return {"schedules": schedules, "runs": runs, "failures": failures, "dead": dead,
            "outbox": [{"status": name, "key": OUTBOX_KEYS[name], "count": counts.get(name, 0)}
                       for name in OUTBOX_KEYS],
            "can_edit": "write" in user.scopes}


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """Schedules, recent runs (failures and retries), the outbox and its dead letters."""
    zone = ZoneInfo(request.app.state.cfg.shop().timezone)
    replayed = request.query_params.get("replayed")
    context = {**_context(session, zone, user),
               "replayed": int(replayed) if replayed and replayed.isdigit() else None}
    return render(request, "jobs/index.html.j2", context, user=user)


@router.post("/jobs/outbox/replay", response_class=HTMLResponse)
async def replay_dead_letters(request: Request, user: PageUser, session: DbSession) -> Response:
    """Queue the chosen dead letters (or all of them) again and go back to the page."""
    await check_csrf(request)
    form = await request.form()
    if "write" not in user.scopes:
        return RedirectResponse("/jobs", status_code=303)
    ids = [str(v) for v in form.getlist("id")][:1000]

    def replay() -> int:
        chosen = ids or list(session.scalars(select(OutboxRow.id).where(OutboxRow.status == "dead")))
        return outbox.replay(session, chosen, now=datetime.now(UTC), principal=user)

    count = await run_in_threadpool(replay)
    return RedirectResponse(f"/jobs?replayed={count}", status_code=303)
