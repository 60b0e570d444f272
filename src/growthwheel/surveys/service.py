"""Surveys: create them, record answers once, and read NPS by period, channel and segment.

Services never commit: the request, job or CLI command that calls them owns the transaction.

* An answer is keyed by survey × customer × ``response_key`` (default ``""``: one answer per
  customer). Sending the same answer again returns the stored one (``created`` false); sending a
  *different* score or comment under a key already used is a 409 ``answer_conflict`` — the first
  answer stands.
* NPS per group comes from :mod:`growthwheel.surveys.nps` (adjusted Wald interval by default,
  the Wald one beside it). Periods are the shop's local weeks (from Monday) or months.
* ``channel`` of an answer: the message channel a survey link came through, else what the API
  caller says, else the survey's own channel tag, else ``api``.
* A comment goes through the voice domain's sentiment and aspects (``voice.aspects.analyse``:
  the project's own zh/en model) when it is recorded: ``sentiment`` is P(positive), ``aspects``
  holds the label, the language and each aspect mention with its polarity.
* Reads that need the warehouse (segments, repurchase) live in :mod:`growthwheel.surveys.reads`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.kit.ids import canonical_id
from growthwheel.surveys import nps
from growthwheel.surveys.models import SOURCES, Survey, SurveyAnswer

Period = Literal["week", "month"]
PERIODS: tuple[Period, ...] = ("week", "month")
DEFAULT_QUESTION = {
    "zh": "您有多大可能把我们推荐给朋友或同事？（0 = 完全不可能，10 = 非常可能）",
    "en": "How likely are you to recommend us to a friend or colleague? (0 = not at all, 10 = extremely)",
}
MAX_COMMENT = 2000
MAX_ANSWERS_READ = 500_000


class SurveyNotFoundError(GrowthwheelError):
    """No survey with that id or name."""

    code = "survey_not_found"
    status = 404


class SurveyExistsError(GrowthwheelError):
    """A survey with that name exists already."""

    code = "survey_exists"
    status = 409


class SurveyClosedError(GrowthwheelError):
    """The survey no longer takes answers."""

    code = "survey_closed"
    status = 409


class AnswerConflictError(GrowthwheelError):
    """Another answer was recorded already under the same survey, customer and response key."""

    code = "answer_conflict"
    status = 409


@dataclass(frozen=True)
class SurveySpec:
    """A survey as written by an operator."""

    name: str
    question_zh: str = DEFAULT_QUESTION["zh"]
    question_en: str = DEFAULT_QUESTION["en"]
    channel: str | None = None
    campaign: str | None = None
    journey: str | None = None


@dataclass(frozen=True)
class AnswerIn:
    """One answer to record."""

    customer_id: str
    score: int
    comment: str | None = None
    response_key: str = ""
    source: str = "api"
    channel: str | None = None
    message_key: str | None = None
    answered_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, field: str, limit: int, *, required: bool = False) -> str | None:
    text = (value or "").strip()
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise InvalidArgumentError(f"{field}: contains a NUL or a lone surrogate (含有无效字符)")
    if not text:
        if required:
            raise InvalidArgumentError(f"{field}: must not be empty (不能为空)")
        return None
    if len(text) > limit:
        raise InvalidArgumentError(f"{field}: at most {limit} characters (最多 {limit} 个字符)")
    return text


# ---------------------------------------------------------------------------------------------
# Surveys
# ---------------------------------------------------------------------------------------------


def create_survey(session: Session, spec: SurveySpec, *, actor: str) -> Survey:
    """Create a survey; 409 ``survey_exists`` when the name is taken, 422 naming a bad field."""
    name = _text(spec.name, "name", 200, required=True)
    assert name is not None
    if session.scalar(select(Survey.id).where(Survey.name == name)) is not None:
        raise SurveyExistsError(f"name: a survey named {name!r} exists already (问卷名称已存在)")
    survey = Survey(name=name,
                    question_zh=_text(spec.question_zh, "question_zh", 500) or DEFAULT_QUESTION["zh"],
                    question_en=_text(spec.question_en, "question_en", 500) or DEFAULT_QUESTION["en"],
                    channel=_text(spec.channel, "channel", 40),
                    campaign=_text(spec.campaign, "campaign", 200),
                    journey=_text(spec.journey, "journey", 200), active=True, created_by=actor,
                    created_at=_now())
    session.add(survey)
    session.flush()
    return survey


def get_survey(session: Session, ref: str) -> Survey:
    """The survey with id or name ``ref``; 404 otherwise."""
    if not ref or len(ref) > 200 or "\x00" in ref or any(0xD800 <= ord(c) <= 0xDFFF for c in ref):
        raise SurveyNotFoundError("survey: no such survey (找不到该问卷)")
    survey = session.get(Survey, ref) if len(ref) <= 32 else None
    if survey is None:
        survey = session.scalar(select(Survey).where(Survey.name == ref))
    if survey is None:
        raise SurveyNotFoundError(f"survey: no survey {ref!r} (找不到该问卷)")
    return survey


def list_surveys(session: Session) -> list[Survey]:
    """Every survey, newest first."""
    return list(session.scalars(select(Survey).order_by(Survey.created_at.desc(), Survey.name)))


def set_active(session: Session, ref: str, active: bool) -> Survey:
    """Open or close a survey for answers."""
    survey = get_survey(session, ref)
    survey.active = active
    session.flush()
    return survey


def answer_counts(session: Session) -> dict[str, int]:
    """Answers per survey id."""
    rows = session.execute(select(SurveyAnswer.survey_id, func.count()).group_by(SurveyAnswer.survey_id))
    return {str(sid): int(n) for sid, n in rows}


def nps_by_survey(session: Session) -> dict[str, dict[str, Any]]:
    """Every survey's NPS over all its answers (counts by group in SQL), for listing surveys side by
    side — e.g. by their channel, campaign or journey tag."""
    promoter = func.sum(case((SurveyAnswer.score >= 9, 1), else_=0))
    detractor = func.sum(case((SurveyAnswer.score <= 6, 1), else_=0))
    rows = session.execute(select(SurveyAnswer.survey_id, promoter, detractor, func.count())
                           .group_by(SurveyAnswer.survey_id))
    return {str(sid): nps.estimate(nps.Counts(int(p or 0), int(n) - int(p or 0) - int(d or 0), int(d or 0)))
            .as_dict() for sid, p, d, n in rows}


def survey_out(survey: Survey, answers: int | None = None) -> dict[str, Any]:
    """A survey as JSON."""
    return {"id": survey.id, "name": survey.name, "question_zh": survey.question_zh,
            "question_en": survey.question_en, "channel": survey.channel, "campaign": survey.campaign,
            "journey": survey.journey, "active": survey.active, "created_by": survey.created_by,
            "created_at": survey.created_at.isoformat(), "answers": answers}


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


def _answered_at(value: datetime | None) -> datetime:
    now = _now()
    at = value or now
    if at.tzinfo is None:
        raise InvalidArgumentError("answered_at: give a time zone offset, e.g. Z or +08:00 (需要时区)")
    try:
        at = at.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidArgumentError("answered_at: out of range (时间超出范围)") from exc
    if at > now + timedelta(days=1) or at.year < 2000:
        raise InvalidArgumentError("answered_at: not in the future nor before 2000 "
                                   "(不能晚于现在或早于 2000 年)")
    return at


def _check_answer(answer: AnswerIn) -> tuple[str, str | None, str]:
    customer = canonical_id(answer.customer_id or "", "customer_id", 200)
    if isinstance(answer.score, bool) or not isinstance(answer.score, int) or not 0 <= answer.score <= 10:
        raise InvalidArgumentError("score: a whole number from 0 to 10 (分数须为 0 到 10 的整数)")
    comment = _text(answer.comment, "comment", MAX_COMMENT)
    if answer.source not in SOURCES:
        raise InvalidArgumentError(f"source: one of {', '.join(SOURCES)}")
    key = _text(answer.response_key, "response_key", 200) or ""
    return customer, comment, key


def find_answer(session: Session, survey_id: str, customer: str, key: str) -> SurveyAnswer | None:
    """The answer recorded under survey × customer × response key, if any."""
    return session.scalar(select(SurveyAnswer).where(
        SurveyAnswer.survey_id == survey_id, SurveyAnswer.customer_id == customer,
        SurveyAnswer.response_key == key))


def _same(stored: SurveyAnswer, score: int, comment: str | None) -> SurveyAnswer:
    if stored.score != score or (stored.comment or None) != comment:
        raise AnswerConflictError(
            f"response_key: this customer answered survey {stored.survey_id} under this key already, "
            f"with score {stored.score} (该客户已用此键回答过该问卷)")
    return stored


def analyse_comment(comment: str | None) -> tuple[float | None, dict[str, Any] | None]:
    """Sentiment (P(positive)) and aspects of a comment; ``(None, None)`` without one."""
    if not comment:
        return None, None
    from growthwheel.voice.aspects import analyse

    found = analyse([comment])[0]
    return round(float(found.score), 4), _aspects_of(found)


def _aspects_of(found: Any) -> dict[str, Any]:
    return {"label": found.label, "lang": found.lang,
            "mentions": [{"aspect": m.aspect, "polarity": m.polarity, "clause": m.clause[:200]}
                         for m in found.aspects]}


def record_answer(session: Session, survey: Survey, answer: AnswerIn) -> tuple[SurveyAnswer, bool]:
    """Record ``answer`` once; ``(answer, created)``. A repeat returns the stored answer; a different
    answer under a used key is :class:`AnswerConflictError`; a closed survey :class:`SurveyClosedError`."""
    customer, comment, key = _check_answer(answer)
    at = _answered_at(answer.answered_at)
    stored = find_answer(session, survey.id, customer, key)
    if stored is not None:
        return _same(stored, answer.score, comment), False
    if not survey.active:
        raise SurveyClosedError(f"survey: {survey.name!r} no longer takes answers (该问卷已关闭)")
    sentiment, aspects = analyse_comment(comment)
    row = SurveyAnswer(survey_id=survey.id, customer_id=customer, response_key=key, score=answer.score,
                       comment=comment, source=answer.source,
                       channel=_text(answer.channel, "channel", 40) or survey.channel or answer.source,
                       message_key=_text(answer.message_key, "message_key", 400),
                       answered_at=at, sentiment=sentiment, aspects=aspects)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same key recorded at the same moment by another request
        stored = find_answer(session, survey.id, customer, key)
        if stored is None:
            raise
        return _same(stored, answer.score, comment), False
    return row, True


def score_unscored(session: Session, survey_id: str | None = None, *, batch: int = 1000) -> int:
    """Run sentiment and aspects over the comments recorded without them (e.g. before the voice
    model was installed); how many were scored."""
    from growthwheel.voice.aspects import analyse

    q = select(SurveyAnswer).where(SurveyAnswer.comment.is_not(None), SurveyAnswer.sentiment.is_(None))
    if survey_id is not None:
        q = q.where(SurveyAnswer.survey_id == survey_id)
    done = 0
    while True:
        rows = list(session.scalars(q.order_by(SurveyAnswer.id).limit(batch)))
        if not rows:
            return done
        for row, found in zip(rows, analyse([r.comment or "" for r in rows]), strict=True):
            row.sentiment = round(float(found.score), 4)
            row.aspects = _aspects_of(found)
        session.flush()
        done += len(rows)


def answer_out(row: SurveyAnswer) -> dict[str, Any]:
    """An answer as JSON."""
    return {"id": row.id, "survey_id": row.survey_id, "customer_id": row.customer_id,
            "response_key": row.response_key, "score": row.score, "group": nps.group_of(row.score),
            "comment": row.comment, "source": row.source, "channel": row.channel,
            "message_key": row.message_key, "answered_at": row.answered_at.isoformat(),
            "sentiment": row.sentiment, "aspects": row.aspects}


@dataclass(frozen=True)
class Answer:
    """An answer as the reports read it."""

    customer_id: str
    score: int
    channel: str
    answered_at: datetime
    comment: str | None
    sentiment: float | None
    aspects: dict[str, Any] | None = None


def answers(session: Session, survey_id: str, *, since: datetime | None = None,
            until: datetime | None = None) -> list[Answer]:
    """The answers of a survey, oldest first (``since`` inclusive, ``until`` exclusive)."""
    q = select(SurveyAnswer.customer_id, SurveyAnswer.score, SurveyAnswer.channel, SurveyAnswer.answered_at,
               SurveyAnswer.comment, SurveyAnswer.sentiment, SurveyAnswer.aspects
               ).where(SurveyAnswer.survey_id == survey_id)
    if since is not None:
        q = q.where(SurveyAnswer.answered_at >= since)
    if until is not None:
        q = q.where(SurveyAnswer.answered_at < until)
    q = q.order_by(SurveyAnswer.answered_at, SurveyAnswer.id).limit(MAX_ANSWERS_READ)
    return [Answer(str(c), int(s), str(ch or "api"), at, com, sen, asp)
            for c, s, ch, at, com, sen, asp in session.execute(q)]


def recent_comments(session: Session, survey_id: str, limit: int = 20) -> list[SurveyAnswer]:
    """The latest answers with a comment."""
    return list(session.scalars(select(SurveyAnswer).where(
        SurveyAnswer.survey_id == survey_id, SurveyAnswer.comment.is_not(None))
        .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc()).limit(limit)))


# ---------------------------------------------------------------------------------------------
# NPS
# ---------------------------------------------------------------------------------------------


def period_start(at: datetime, period: Period, zone: ZoneInfo) -> date:
    """The first day (shop-local) of the week (Monday) or month that ``at`` falls in."""
    day = at.astimezone(zone).date()
    return day - timedelta(days=day.weekday()) if period == "week" else day.replace(day=1)


def check_options(period: str, confidence: float, method: str) -> None:
    """422 naming the option when ``period``, ``confidence`` or ``method`` is not usable."""
    if period not in PERIODS:
        raise InvalidArgumentError("period: week or month (周或月)")
    if not 0.5 <= confidence < 1:
        raise InvalidArgumentError("confidence: from 0.5 to below 1, e.g. 0.95 (置信水平须在 0.5 到 1 之间)")
    if method not in nps.METHODS:
        raise InvalidArgumentError(f"method: one of {', '.join(nps.METHODS)}")


def grouped(items: Iterable[tuple[str, int]], confidence: float, method: nps.Method,
            order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """NPS with its interval for each group of ``(group, score)`` pairs."""
    scores: dict[str, list[int]] = {}
    for key, score in items:
        scores.setdefault(key, []).append(score)
    keys = [k for k in order if k in scores] if order is not None else sorted(scores)
    return [{"group": key, **nps.estimate(nps.Counts.of(scores[key]), confidence, method).as_dict()}
            for key in keys]


def report(session: Session, survey: Survey, *, zone: ZoneInfo, period: str = "week",
           confidence: float = 0.95, method: str = "adjusted_wald", since: datetime | None = None,
           until: datetime | None = None) -> dict[str, Any]:
    """NPS of a survey overall, by period and by channel, each with its interval."""
    check_options(period, confidence, method)
    m: nps.Method = "wald" if method == "wald" else "adjusted_wald"
    rows = answers(session, survey.id, since=since, until=until)
    p: Period = "month" if period == "month" else "week"
    overall = nps.estimate(nps.Counts.of(a.score for a in rows), confidence, m).as_dict()
    by_period = grouped(((period_start(a.answered_at, p, zone).isoformat(), a.score) for a in rows),
                        confidence, m)
    by_channel = grouped(((a.channel, a.score) for a in rows), confidence, m)
    scored = [a.sentiment for a in rows if a.sentiment is not None]
    return {"survey": survey_out(survey, len(rows)), "period": p, "confidence": confidence, "method": m,
            "overall": overall, "by_period": by_period, "by_channel": by_channel,
            "comments": sum(1 for a in rows if a.comment), "comments_scored": len(scored),
            "mean_sentiment": round(sum(scored) / len(scored), 4) if scored else None,
            "aspects": aspect_summary(rows)}


def aspect_summary(rows: Iterable[Answer]) -> list[dict[str, Any]]:
    """Per aspect the comments mention: mentions, positive and negative ones, and the negative
    mentions by detractors — what the unhappy customers complain about, most complaints first."""
    table: dict[str, dict[str, Any]] = {}
    for a in rows:
        for m in (a.aspects or {}).get("mentions", []):
            name = str(m["aspect"])
            row = table.setdefault(name, {"aspect": name, "mentions": 0, "positive": 0, "negative": 0,
                                          "detractor_negative": 0})
            row["mentions"] += 1
            if m["polarity"] in ("positive", "negative"):
                row[m["polarity"]] += 1
            if m["polarity"] == "negative" and nps.group_of(a.score) == "detractor":
                row["detractor_negative"] += 1
    return sorted(table.values(), key=lambda r: (-r["negative"], -r["mentions"], r["aspect"]))


def review_rows(cfg: Any, start: date, end: date) -> list[dict[str, Any]]:
    """For the periodic review: each survey's NPS (adjusted Wald 95% interval) over the answers of
    the shop-local days ``start`` … ``end``. Empty when the store has no surveys table yet."""
    from sqlalchemy.exc import SQLAlchemyError

    from growthwheel.store.db import session_scope

    zone = ZoneInfo(cfg.shop().timezone)
    since = datetime.combine(start, datetime.min.time(), zone).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
    try:
        with session_scope(cfg) as session:
            out = []
            for survey in list_surveys(session):
                rows = answers(session, survey.id, since=since, until=until)
                if rows:
                    est = nps.estimate(nps.Counts.of(a.score for a in rows)).as_dict()
                    out.append({"survey": survey.name, **est,
                                "comments": sum(1 for a in rows if a.comment)})
            return out
    except SQLAlchemyError:
        return []
