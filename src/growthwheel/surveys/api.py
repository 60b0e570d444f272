"""REST endpoints of surveys (``/api/v1/surveys``): surveys, answers, NPS, repurchase, links.

Reading needs the ``read`` scope; creating surveys, recording answers and making links need
``write``. ``POST /{id}/answers`` is idempotent per customer × survey × ``response_key``: 201 the
first time, 200 with the stored answer when the same answer comes again, 409 ``answer_conflict``
when a different one comes under a used key. Errors are problem+json naming the field (422), a
missing survey (404) or a conflict (409).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from growthwheel.accounts.service import audit
from growthwheel.api.deps import DbSession, Principal, require_scope, server_secret
from growthwheel.api.warehouse import warehouse
from growthwheel.errors import InvalidArgumentError
from growthwheel.journeys.channels import config as channels_config
from growthwheel.journeys.channels.links import LinkMaker
from growthwheel.surveys import reads, service
from growthwheel.warehouse.owner import WarehouseOwner

router = APIRouter(prefix="/api/v1/surveys", tags=["surveys"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Writer = Annotated[Principal, Depends(require_scope("write"))]
Owner = Annotated[WarehouseOwner, Depends(warehouse)]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "No such survey (problem+json)."},
    409: {"description": "Name taken, survey closed, or another answer under this key (problem+json)."},
    422: {"description": "Invalid parameter, named in the problem (problem+json)."},
}


class SurveyIn(BaseModel):
    """A new NPS survey (the question defaults to the standard recommend question)."""

    name: str = Field(min_length=1, max_length=200)
    question_zh: str | None = Field(default=None, max_length=500)
    question_en: str | None = Field(default=None, max_length=500)
    channel: str | None = Field(default=None, max_length=40, description="e.g. email, sms, app")
    campaign: str | None = Field(default=None, max_length=200)
    journey: str | None = Field(default=None, max_length=200)


class AnswerBody(BaseModel):
    """One answer: a 0–10 score and an optional comment."""

    customer_id: str = Field(min_length=1, max_length=200)
    score: int = Field(ge=0, le=10, strict=True)
    comment: str | None = Field(default=None, max_length=service.MAX_COMMENT)
    response_key: str = Field(default="", max_length=200,
                              description="Tells apart several answers of one customer (e.g. per order)")
    channel: str | None = Field(default=None, max_length=40)
    answered_at: datetime | None = Field(default=None, description="ISO 8601 with offset (default now)")


class LinkIn(BaseModel):
    """Who the signed answer link is for."""

    customer_id: str = Field(min_length=1, max_length=200)
    channel: str = Field(default="email", min_length=1, max_length=40)
    message_key: str = Field(default="", max_length=400)


class ActiveIn(BaseModel):
    """Open or close a survey."""

    active: bool


@router.get("", summary="Surveys", responses=_PROBLEMS)
def list_surveys(session: DbSession, principal: Reader) -> list[dict[str, Any]]:
    """Every survey with its number of answers and its NPS over them (with the interval)."""
    scores = service.nps_by_survey(session)
    return [{**service.survey_out(s, int(scores[s.id]["n"]) if s.id in scores else 0),
             "nps": scores.get(s.id)} for s in service.list_surveys(session)]


@router.post("", summary="Create a survey", status_code=201, responses=_PROBLEMS)
def create_survey(body: SurveyIn, session: DbSession, principal: Writer) -> dict[str, Any]:
    """An NPS survey: name, question in zh and en, optional channel / campaign / journey tag."""
    spec = service.SurveySpec(name=body.name, question_zh=body.question_zh or service.DEFAULT_QUESTION["zh"],
                              question_en=body.question_en or service.DEFAULT_QUESTION["en"],
                              channel=body.channel, campaign=body.campaign, journey=body.journey)
    survey = service.create_survey(session, spec, actor=principal.name)
    audit(session, principal, "survey.create", survey.id, {"name": survey.name})
    return service.survey_out(survey, 0)


@router.get("/{survey_id}", summary="One survey", responses=_PROBLEMS)
def get_survey(survey_id: str, session: DbSession, principal: Reader) -> dict[str, Any]:
    """The survey (by id or name)."""
    survey = service.get_survey(session, survey_id)
    return service.survey_out(survey, service.answer_counts(session).get(survey.id, 0))


@router.put("/{survey_id}/active", summary="Open or close a survey", responses=_PROBLEMS)
def set_active(survey_id: str, body: ActiveIn, session: DbSession, principal: Writer) -> dict[str, Any]:
    """A closed survey refuses new answers (409 ``survey_closed``); repeats of old ones still pass."""
    survey = service.set_active(session, survey_id, body.active)
    audit(session, principal, "survey.active", survey.id, {"active": body.active})
    return service.survey_out(survey)


@router.post("/{survey_id}/answers", summary="Record an answer", status_code=201, responses=_PROBLEMS)
def record_answer(survey_id: str, body: AnswerBody, response: Response, session: DbSession,
                  principal: Writer) -> dict[str, Any]:
    """Record a 0–10 answer once per customer × survey × response key (see the module docstring)."""
    survey = service.get_survey(session, survey_id)
    row, created = service.record_answer(session, survey, service.AnswerIn(
        customer_id=body.customer_id, score=body.score, comment=body.comment,
        response_key=body.response_key, source="api", channel=body.channel, answered_at=body.answered_at))
    if not created:
        response.status_code = 200
    return {**service.answer_out(row), "created": created}


@router.post("/{survey_id}/links", summary="A signed answer link for one customer", status_code=201,
             responses=_PROBLEMS)
def make_link(survey_id: str, body: LinkIn, request: Request, session: DbSession,
              principal: Writer) -> dict[str, str]:
    """The public answer page's URL for ``customer_id`` (what ``survey_url()`` gives in journey
    messages), for the shop's own systems to send."""
    survey = service.get_survey(session, survey_id)
    cfg = request.app.state.cfg
    maker = LinkMaker(secret=server_secret(request), base_url=channels_config.load(cfg).public_url,
                      customer_id=body.customer_id, channel=body.channel,
                      message_key=body.message_key or f"api:{survey.id}:{body.customer_id}")
    return {"url": maker.survey(survey.id)}


@router.get("/{survey_id}/nps", summary="NPS by period and channel with its interval", responses=_PROBLEMS)
def nps_report(request: Request, survey_id: str, session: DbSession, principal: Reader,
               period: Annotated[Literal["week", "month"], Query()] = "week",
               confidence: Annotated[float, Query(ge=0.5, lt=1)] = 0.95,
               method: Annotated[Literal["adjusted_wald", "wald"], Query()] = "adjusted_wald",
               since: Annotated[datetime | None, Query(description="ISO 8601 with offset")] = None,
               until: Annotated[datetime | None, Query(description="ISO 8601 with offset")] = None,
               ) -> dict[str, Any]:
    """Overall, per week or month (shop-local) and per channel: promoters, passives, detractors,
    NPS in points and its interval (adjusted Wald by default; the Wald bounds beside it)."""
    survey = service.get_survey(session, survey_id)
    zone = ZoneInfo(request.app.state.cfg.shop().timezone)
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidArgumentError(f"{name}: give a time zone offset (需要时区)")
    return service.report(session, survey, zone=zone, period=period, confidence=confidence, method=method,
                          since=since, until=until)


@router.get("/{survey_id}/segments", summary="NPS by saved segment", responses=_PROBLEMS)
async def nps_by_segment(survey_id: str, session: DbSession, principal: Reader, owner: Owner,
                         confidence: Annotated[float, Query(ge=0.5, lt=1)] = 0.95,
                         method: Annotated[Literal["adjusted_wald", "wald"], Query()] = "adjusted_wald",
                         ) -> list[dict[str, Any]]:
    """NPS of each saved segment's current members who answered."""

    def work() -> list[dict[str, Any]]:
        survey = service.get_survey(session, survey_id)
        with owner.read() as con:
            return reads.by_segment(session, con, survey, confidence=confidence, method=method)

    return await run_in_threadpool(work)


@router.get("/{survey_id}/repurchase", summary="Repurchase within N days by NPS group", responses=_PROBLEMS)
async def repurchase(survey_id: str, session: DbSession, principal: Reader, owner: Owner,
                     days: Annotated[int, Query(ge=1, le=reads.MAX_DAYS)] = 90) -> dict[str, Any]:
    """For promoters, passives and detractors: the share who bought again within ``days`` days."""

    def work() -> dict[str, Any]:
        survey = service.get_survey(session, survey_id)
        with owner.read() as con:
            return reads.repurchase(session, con, survey, days=days)

    return await run_in_threadpool(work)
