"""Console pages of surveys: ``GET /surveys`` (the list and a form for a new one) and
``GET /surveys/{id}`` (NPS by week or month with its interval as a chart and a table, by channel,
by saved segment, repurchase by NPS group, the latest comments, the journey template variable).

Every visible string comes from ``i18n/<lang>/surveys.json``. The chart is drawn by
``static/surveys.js`` (ECharts, vendored) from the JSON the page carries: the NPS line and its
interval band.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from growthwheel.accounts.service import PermissionDeniedError, audit
from growthwheel.api.deps import DbSession, Principal, check_csrf, current_user_page
from growthwheel.errors import GrowthwheelError
from growthwheel.surveys import nps, reads, service
from growthwheel.web.i18n import k
from growthwheel.web.pages import backend, local_time, page_language, page_translator, render, shop_of

router = APIRouter(include_in_schema=False)
User = Annotated[Principal, Depends(current_user_page)]

GROUP_KEYS = {"promoter": k("surveys.group.promoter"), "passive": k("surveys.group.passive"),
              "detractor": k("surveys.group.detractor")}
assert set(GROUP_KEYS) == set(nps.GROUPS)
PERIOD_KEYS = {"week": k("surveys.period.week"), "month": k("surveys.period.month")}
NOTICE_KEYS = {"created": k("surveys.notice.created"), "closed": k("surveys.notice.closed"),
               "opened": k("surveys.notice.opened")}
CHANNEL_KEYS = {"email": k("surveys.channel.email"), "sms": k("surveys.channel.sms"),
                "wecom": k("surveys.channel.wecom"), "webhook": k("surveys.channel.webhook"),
                "push": k("surveys.channel.push"), "app": k("surveys.channel.app"),
                "api": k("surveys.channel.api"), "link": k("surveys.channel.link")}
ASPECT_KEYS = {"quality": k("surveys.aspect.quality"), "price": k("surveys.aspect.price"),
               "logistics": k("surveys.aspect.logistics"), "packaging": k("surveys.aspect.packaging"),
               "service": k("surveys.aspect.service"), "size_fit": k("surveys.aspect.size_fit"),
               "taste": k("surveys.aspect.taste"), "appearance": k("surveys.aspect.appearance"),
               "performance": k("surveys.aspect.performance")}
DEFAULT_DAYS = 90


def _channel(t: Any, raw: str | None) -> dict[str, Any]:
    """A channel as shown: its name in the page's language, or the raw tag as code."""
    if not raw:
        return {"label": "–", "code": False}
    key = CHANNEL_KEYS.get(raw)
    return {"label": t(key), "code": False} if key else {"label": raw, "code": True}


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "nps_text": _fmt(r["nps"]),
             "interval": "–" if r["low"] is None else f"{r['low']:+.1f} ~ {r['high']:+.1f}",
             "wald": "–" if r["wald_low"] is None else f"{r['wald_low']:+.1f} ~ {r['wald_high']:+.1f}"}
            for r in items]


@router.get("/surveys", response_class=HTMLResponse)
def surveys_page(request: Request, user: User, session: DbSession) -> HTMLResponse:
    """Every survey with its answers, and the form for a new one."""
    t = page_translator(request)
    scores = service.nps_by_survey(session)
    rows = []
    for s in service.list_surveys(session):
        est = scores.get(s.id) or {"n": 0, "nps": None, "low": None, "high": None}
        rows.append({"id": s.id, "name": s.name, "channel": _channel(t, s.channel),
                     "campaign": s.campaign or "–", "journey": s.journey or "–", "active": s.active,
                     "answers": est["n"],
                     "nps": _fmt(est["nps"]),
                     "interval": "–" if est["low"] is None else f"{est['low']:+.1f} ~ {est['high']:+.1f}"})
    return render(request, "surveys/index.html.j2", {
        "surveys": rows, "can_edit": "write" in user.scopes, "default_question": service.DEFAULT_QUESTION,
        "notice": NOTICE_KEYS.get(request.query_params.get("done") or ""),
        "error": request.query_params.get("error") or "",
    }, user=user)


@router.post("/surveys", response_class=HTMLResponse)
async def new_survey(request: Request, user: User, session: DbSession) -> Response:
    """A new survey from the form (an error comes back as a notice naming the field)."""
    await check_csrf(request)
    if "write" not in user.scopes:
        raise PermissionDeniedError("analysts cannot create surveys")
    form = {key: str(value) for key, value in (await request.form()).items()}
    spec = service.SurveySpec(name=form.get("name", ""),
                              question_zh=form.get("question_zh") or service.DEFAULT_QUESTION["zh"],
                              question_en=form.get("question_en") or service.DEFAULT_QUESTION["en"],
                              channel=form.get("channel"), campaign=form.get("campaign"),
                              journey=form.get("journey"))

    def work() -> Response:
        try:
            survey = service.create_survey(session, spec, actor=user.name)
        except GrowthwheelError as exc:
            session.rollback()
            detail = exc.text(page_translator(request))[:300]
            return RedirectResponse("/surveys?" + urlencode({"error": detail}), status_code=303)
        audit(session, user, "survey.create", survey.id, {"name": survey.name})
        return RedirectResponse(f"/surveys/{survey.id}?done=created", status_code=303)

    return await run_in_threadpool(work)


@router.post("/surveys/{survey_id}/active", response_class=HTMLResponse)
async def toggle(request: Request, survey_id: str, user: User, session: DbSession) -> Response:
    """Close a survey for answers, or open it again."""
    await check_csrf(request)
    if "write" not in user.scopes:
        raise PermissionDeniedError("analysts cannot close surveys")
    active = str((await request.form()).get("active") or "") == "1"

    def work() -> Response:
        survey = service.set_active(session, survey_id, active)
        audit(session, user, "survey.active", survey.id, {"active": active})
        return RedirectResponse(f"/surveys/{survey.id}?done={'opened' if active else 'closed'}",
                                status_code=303)

    return await run_in_threadpool(work)


@router.get("/surveys/{survey_id}", response_class=HTMLResponse)
async def survey_page(request: Request, survey_id: str, user: User, session: DbSession) -> HTMLResponse:
    """NPS by period with its interval, by channel and segment, beside repurchase; comments."""
    t = page_translator(request)
    lang = page_language(request)
    period = request.query_params.get("period") or "week"
    if period not in service.PERIODS:
        period = "week"
    try:
        days = max(1, min(reads.MAX_DAYS, int(request.query_params.get("days") or DEFAULT_DAYS)))
    except ValueError:
        days = DEFAULT_DAYS
    zone = ZoneInfo(shop_of(request).timezone)

    def work() -> HTMLResponse:
        survey = service.get_survey(session, survey_id)
        data = service.report(session, survey, zone=zone, period=period)
        with backend(request) as con:
            segments = reads.by_segment(session, con, survey)
            again = reads.repurchase(session, con, survey, days=days)
        comments = [{"at": local_time(a.answered_at, zone), "score": a.score,
                     "group": t(GROUP_KEYS[nps.group_of(a.score)]), "channel": _channel(t, a.channel),
                     "comment": a.comment or "",
                     "sentiment": "–" if a.sentiment is None else f"{a.sentiment:.2f}"}
                    for a in service.recent_comments(session, survey.id)]
        chart = {"periods": [r["group"] for r in data["by_period"]],
                 "nps": [r["nps"] for r in data["by_period"]], "low": [r["low"] for r in data["by_period"]],
                 "high": [r["high"] for r in data["by_period"]], "n": [r["n"] for r in data["by_period"]],
                 "labels": {"nps": t(k("surveys.chart.nps")), "band": t(k("surveys.chart.band")),
                            "n": t(k("surveys.chart.n"))}}
        aspect_rows = [{**r, "label": t(ASPECT_KEYS[r["aspect"]]) if r["aspect"] in ASPECT_KEYS
                        else r["aspect"]} for r in data["aspects"]]
        repurchase_rows = [{**g, "label": t(GROUP_KEYS[g["group"]]),
                            "share_text": "–" if g["share"] is None else f"{g['share'] * 100:.1f}%"}
                           for g in again["groups"]]
        return render(request, "surveys/detail.html.j2", {
            "survey": survey, "question": survey.question_en if lang == "en" else survey.question_zh,
            "overall": _rows([{"group": "", **data["overall"]}])[0], "by_period": _rows(data["by_period"]),
            "by_channel": [{**r, **_channel(t, r["group"])} for r in _rows(data["by_channel"])],
            "by_segment": [{**r, "label": r["group"], "code": False} for r in _rows(segments)],
            "chart": chart,
            "period": period, "periods": PERIOD_KEYS, "days": days, "repurchase": repurchase_rows,
            "as_of": again["as_of"][:10] if again["as_of"] else "–", "comments": comments,
            "comments_total": data["comments"], "aspects": aspect_rows,
            "comments_scored": data["comments_scored"],
            "mean_sentiment": "–" if data["mean_sentiment"] is None else f"{data['mean_sentiment']:.2f}",
            "can_edit": "write" in user.scopes, "variable": "{{ survey_url('" + survey.id + "') }}",
            "notice": NOTICE_KEYS.get(request.query_params.get("done") or ""),
            "confidence": int(data["confidence"] * 100),
        }, user=user)

    return await run_in_threadpool(work)
