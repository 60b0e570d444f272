"""Console pages of reviews: ``GET /reviews`` (the service queue) and ``GET /reviews/feedback``.

* the queue by status (open / claimed / replied / closed, with the overdue count): each case's
  stars, SKU, text, aspects, time left of its 48 hours or its breach, owner; "take the next one",
  claim, release, close, and a reply form with the suggested template (operators and admins;
  conditional moves, so a case someone took first comes back as a notice);
* product feedback: per SKU, the aspects whose share of negative mentions rose against the period
  before, with quotes, and the SKUs' review counts.

Every visible string comes from ``i18n/<lang>/voice.json``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from growthwheel.api.deps import DbSession, PageUser, PageWriter
from growthwheel.errors import GrowthwheelError
from growthwheel.voice import feedback, service, templates
from growthwheel.voice.aspects import ASPECT_NAMES
from growthwheel.voice.models import CASE_STATUSES, SLA_HOURS
from growthwheel.voice.sentiment import detect_lang
from growthwheel.web.i18n import k
from growthwheel.web.pages import backend, page_language, page_translator, render

router = APIRouter(include_in_schema=False)

STATUS_KEYS = {"open": k("voice.status.open"), "claimed": k("voice.status.claimed"),
               "replied": k("voice.status.replied"), "closed": k("voice.status.closed")}
ASPECT_KEYS = {"quality": k("voice.aspect.quality"), "price": k("voice.aspect.price"),
               "logistics": k("voice.aspect.logistics"), "packaging": k("voice.aspect.packaging"),
               "service": k("voice.aspect.service"), "size_fit": k("voice.aspect.size_fit"),
               "taste": k("voice.aspect.taste"), "appearance": k("voice.aspect.appearance"),
               "performance": k("voice.aspect.performance")}
assert set(ASPECT_KEYS) == set(ASPECT_NAMES)
TEMPLATE_KEYS = {"apology": k("voice.template.apology"), "quality": k("voice.template.quality"),
                 "logistics": k("voice.template.logistics"), "packaging": k("voice.template.packaging"),
                 "size_fit": k("voice.template.size_fit"), "service": k("voice.template.service"),
                 "taste": k("voice.template.taste")}
assert set(TEMPLATE_KEYS) == set(templates.TEMPLATES)
NOTICE_KEYS = {"claimed": k("voice.notice.claimed"), "replied": k("voice.notice.replied"),
               "released": k("voice.notice.released"), "closed": k("voice.notice.closed"),
               "conflict": k("voice.notice.conflict"), "empty": k("voice.notice.empty"),
               "synced": k("voice.notice.synced")}


def _back(done: str, status: str = "open", error: str = "") -> RedirectResponse:
    query = {"status": status, "done": done} | ({"error": error[:300]} if error else {})
    return RedirectResponse("/reviews?" + urlencode(query), status_code=303)


def _hours(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.1f}"


@router.get("/reviews", response_class=HTMLResponse)
def queue_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The service queue (see the module docstring)."""
    t = page_translator(request)
    lang = "en" if page_language(request) == "en" else "zh"
    status = request.query_params.get("status") or "open"
    if status not in (*CASE_STATUSES, "all"):
        status = "open"
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(request.app.state.cfg.shop().timezone)
    rows = []
    for case in service.list_cases(session, status=None if status == "all" else status, limit=200):
        c = service.case_out(case)
        c["written"] = service.aware(case.review_created_at).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        rows.append({**c, "status_label": t(STATUS_KEYS[c["status"]]),
                     "hours_left": _hours(c["time_left_seconds"]),
                     "mine": c["owner"] == user.name,
                     "aspects_shown": [(t(ASPECT_KEYS[a["aspect"]]), a["polarity"]) for a in c["aspects"]
                                       if a.get("aspect") in ASPECT_KEYS],
                     "suggested_text": templates.render(c["suggested_template"], c["language"] or lang)})
    return render(request, "voice/queue.html.j2", {
        "status": status, "statuses": [(s, STATUS_KEYS[s]) for s in CASE_STATUSES],
        "counts": service.summary(session), "cases": rows, "templates": TEMPLATE_KEYS,
        "can_edit": "write" in user.scopes, "sla_hours": SLA_HOURS,
        "notice": NOTICE_KEYS.get(request.query_params.get("done") or ""),
        "error": request.query_params.get("error") or "",
    }, user=user)


@router.post("/reviews/sync", response_class=HTMLResponse)
async def sync_now(request: Request, user: PageWriter, session: DbSession) -> Response:
    """Open the cases of reviews imported since the last sync (what ``voice.sync`` does)."""

    def work() -> Response:
        try:
            with backend(request) as con:
                service.sync(session, con)
        except GrowthwheelError as exc:
            session.rollback()
            return _back("", error=exc.text(page_translator(request)))
        return _back("synced")

    return await run_in_threadpool(work)


@router.post("/reviews/claim-next", response_class=HTMLResponse)
async def claim_next(request: Request, user: PageWriter, session: DbSession) -> Response:
    """Take the open case due first."""

    def work() -> Response:
        case = service.claim_next(session, user.name)
        return _back("claimed" if case else "empty", "claimed" if case else "open")

    return await run_in_threadpool(work)


@router.post("/reviews/{case_id}/move", response_class=HTMLResponse)
async def move_case(request: Request, case_id: str, user: PageWriter, session: DbSession) -> Response:
    """Claim, release, close or reply (a conflict comes back as a notice, bad input as an error)."""
    form = await request.form()
    action = str(form.get("action") or "")
    text = str(form.get("text") or "").strip() or None
    template = str(form.get("template") or "") or None
    back = str(form.get("back") or "open")

    def work() -> Response:
        try:
            if action == "claim":
                service.claim(session, case_id, user.name)
                return _back("claimed", "claimed")
            if action == "release":
                service.release(session, case_id, user.name, admin=user.role == "admin")
                return _back("released", back)
            if action == "close":
                service.close(session, case_id, user.name)
                return _back("closed", back)
            service.reply(session, case_id, user.name, text=text, template=template)
            return _back("replied", "replied")
        except service.ConflictError:
            session.rollback()
            return _back("conflict", back)
        except GrowthwheelError as exc:
            session.rollback()
            return _back("", back, exc.text(page_translator(request)))

    return await run_in_threadpool(work)


@router.get("/reviews/feedback", response_class=HTMLResponse)
async def feedback_page(request: Request, user: PageUser) -> HTMLResponse:
    """Aspects getting worse per SKU over the last ``days`` days (default 28) up to the newest review."""
    t = page_translator(request)
    try:
        days = max(7, min(366, int(request.query_params.get("days") or 28)))
    except ValueError:
        days = 28

    def work() -> dict[str, Any]:
        with backend(request) as con:
            newest = feedback.newest_day(con)
            if newest is None:
                return {"end": None}
            start = newest - timedelta(days=days - 1)
            worse = feedback.trends(feedback.load(con, start, newest), start, newest)
            return {"start": start, "end": newest, "worse": worse,
                    "skus": feedback.sku_summary(con, start, newest, limit=20)}

    data = await run_in_threadpool(work)
    worse = [{**w.as_dict(), "aspect_label": t(ASPECT_KEYS[w.aspect]),
              "quotes_lang": [(q, detect_lang(q)) for q in w.quotes]} for w in data.get("worse", [])]
    return render(request, "voice/feedback.html.j2", {
        "days": days, "start": data.get("start"), "end": data.get("end"), "worse": worse,
        "skus": data.get("skus", []),
    }, user=user)
