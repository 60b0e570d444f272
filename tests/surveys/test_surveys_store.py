"""Answers on SQLite and PostgreSQL: recorded once when the same answer arrives at the same moment
from several requests; the score is checked by the database too."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from growthwheel.config import Settings
from growthwheel.store.db import session_scope
from growthwheel.surveys import service
from growthwheel.surveys.models import SurveyAnswer


def test_the_same_answer_sent_at_once_is_recorded_once(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        survey_id = service.create_survey(session, service.SurveySpec(name="并发"), actor="tests").id
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def send() -> None:
        try:
            start.wait()
            with session_scope(store_cfg) as session:
                survey = service.get_survey(session, survey_id)
                row, created = service.record_answer(session, survey, service.AnswerIn(
                    customer_id="c1", score=9, comment="很好", response_key="order-1"))
                results.append((row.id, created))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 6
    assert len({row_id for row_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with session_scope(store_cfg) as session:
        assert session.scalar(select(func.count()).select_from(SurveyAnswer)) == 1


def test_the_database_refuses_a_score_out_of_range(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        survey_id = service.create_survey(session, service.SurveySpec(name="范围"), actor="tests").id
    with session_scope(store_cfg) as session:
        session.add(SurveyAnswer(survey_id=survey_id, customer_id="c1", response_key="", score=11,
                                 source="api"))
        with pytest.raises(IntegrityError):
            session.flush()
        session.rollback()


def test_nul_and_lone_surrogates_are_refused_before_the_database(store_cfg: Settings) -> None:
    """PostgreSQL cannot store a NUL: such input is a 404 / 422 naming the field, never a 500."""
    from growthwheel.errors import InvalidArgumentError

    with session_scope(store_cfg) as session:
        survey = service.create_survey(session, service.SurveySpec(name="输入"), actor="tests")
        with pytest.raises(service.SurveyNotFoundError):
            service.get_survey(session, "ab\x00cd")
        with pytest.raises(service.SurveyNotFoundError):
            service.get_survey(session, "\ud800")
        bad = (("comment", service.AnswerIn(customer_id="c1", score=5, comment="a\x00b")),
               ("response_key", service.AnswerIn(customer_id="c1", score=5, response_key="\x00")),
               ("customer_id", service.AnswerIn(customer_id="c\x001", score=5)))
        for field, answer in bad:
            with pytest.raises(InvalidArgumentError, match=field):
                service.record_answer(session, survey, answer)
        with pytest.raises(InvalidArgumentError, match="name"):
            service.create_survey(session, service.SurveySpec(name="x\x00"), actor="tests")
