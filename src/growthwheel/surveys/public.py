"""The public answer page of a survey link: ``GET /s/{token}`` shows it, ``POST /s/{token}`` answers.

A survey link (``LinkMaker.survey``, ``survey_url(survey)`` in journey messages, or
``POST /api/v1/surveys/{id}/links``) is signed with the server secret for the purpose ``survey``
and names the survey, the customer, the channel and the message; nothing else is needed: no
login. The page is in zh or en (``?lang=``, then the cookie, then the browser), asks the survey's
question with eleven buttons 0–10 and a comment box. The form carries the anonymous CSRF token.

The answer is recorded with ``source = link``, the token's channel and its message key as the
response key, so a second submission of the same link changes nothing (it shows "thank you,
already answered"). A token not signed by this server, or naming a survey that is gone,
answers 400 / 404 with a page in the visitor's language, never a 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from growthwheel.accounts.service import CsrfError
from growthwheel.api.deps import DbSession, check_csrf, server_secret
from growthwheel.errors import InvalidArgumentError
from growthwheel.journeys.channels.links import MAX_TOKEN, InvalidLinkError, SurveyToken, read_survey
from growthwheel.surveys import service
from growthwheel.surveys.models import Survey
from growthwheel.web.i18n import k
from growthwheel.web.pages import page_language, render

router = APIRouter(include_in_schema=False, tags=["surveys"])
Token = Annotated[str, Path(max_length=MAX_TOKEN)]

TITLES = {"form": k("surveys.public.title"), "done": k("surveys.public.done_title"),
          "already": k("surveys.public.done_title"), "closed": k("surveys.public.closed_title"),
          "invalid": k("surveys.public.invalid_title"), "gone": k("surveys.public.invalid_title")}
TEXTS = {"done": k("surveys.public.done_text"), "already": k("surveys.public.already_text"),
         "closed": k("surveys.public.closed_text"), "invalid": k("surveys.public.invalid_text"),
         "gone": k("surveys.public.gone_text")}
ERRORS = {"score": k("surveys.public.error_score"), "comment": k("surveys.public.error_comment")}


def _page(request: Request, state: str, survey: Survey | None = None, *, status: int = 200,
          error: str | None = None, score: int | None = None, comment: str = "") -> HTMLResponse:
    lang = page_language(request)
    question = ((survey.question_en if lang == "en" else survey.question_zh) if survey else "")
    response = render(request, "surveys/answer.html.j2", {
        "state": state, "title_key": TITLES[state], "text_key": TEXTS.get(state), "question": question,
        "body_class": "login-page", "action": request.url.path, "scores": list(range(11)),
        "error_key": ERRORS.get(error or ""), "score": score, "comment": comment,
    }, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _resolve(request: Request, session: DbSession,
             token: str) -> tuple[SurveyToken | None, Survey | None, str]:
    try:
        link = read_survey(server_secret(request), token)
    except InvalidLinkError:
        return None, None, "invalid"
    try:
        survey = service.get_survey(session, link.survey)
    except service.SurveyNotFoundError:
        return link, None, "gone"
    return link, survey, "form"


@router.get("/s/{token}", response_class=HTMLResponse)
def answer_page(request: Request, token: Token, session: DbSession) -> HTMLResponse:
    """The question, eleven score buttons and a comment box."""
    link, survey, state = _resolve(request, session, token)
    if link is None or survey is None:
        return _page(request, state, status=400 if state == "invalid" else 404)
    if service.find_answer(session, survey.id, link.customer_id, link.message_key[:200]) is not None:
        return _page(request, "already", survey)
    if not survey.active:
        return _page(request, "closed", survey, status=409)
    return _page(request, "form", survey)


@router.post("/s/{token}", response_class=HTMLResponse)
async def answer(request: Request, token: Token, session: DbSession) -> HTMLResponse:
    """Record the answer of the link's customer (once per link)."""
    try:
        await check_csrf(request)
    except CsrfError:
        return _page(request, "invalid", status=403)
    form = await request.form()
    raw_score, comment = str(form.get("score") or ""), str(form.get("comment") or "").strip()

    def work() -> HTMLResponse:
        link, survey, state = _resolve(request, session, token)
        if link is None or survey is None:
            return _page(request, state, status=400 if state == "invalid" else 404)
        if not raw_score.isdigit() or not 0 <= int(raw_score) <= 10:
            return _page(request, "form", survey, status=422, error="score", comment=comment)
        if len(comment) > service.MAX_COMMENT:
            return _page(request, "form", survey, status=422, error="comment", score=int(raw_score),
                         comment=comment[:service.MAX_COMMENT])
        if service.find_answer(session, survey.id, link.customer_id, link.message_key[:200]) is not None:
            return _page(request, "already", survey)
        try:
            service.record_answer(session, survey, service.AnswerIn(
                customer_id=link.customer_id, score=int(raw_score), comment=comment or None,
                response_key=link.message_key[:200], source="link", channel=link.channel,
                message_key=link.message_key))
        except service.SurveyClosedError:
            session.rollback()
            return _page(request, "closed", survey, status=409)
        except service.AnswerConflictError:
            session.rollback()
            return _page(request, "already", survey)
        except InvalidArgumentError as exc:  # e.g. a comment with a NUL character
            session.rollback()
            return _page(request, "form", survey, status=422, score=int(raw_score),
                         error="comment" if exc.message.startswith("comment") else "score")
        return _page(request, "done", survey)

    return await run_in_threadpool(work)
