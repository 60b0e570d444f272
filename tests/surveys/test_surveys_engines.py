"""The survey reads that join the warehouse (NPS by segment, repurchase by NPS group) give the same
answers on DuckDB and on Spark (the same Ibis expressions over the same small tables)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pytest
from sqlalchemy.orm import Session
from tests.tiny_warehouse import copy_to_spark

from growthwheel.config import Settings
from growthwheel.segments.models import Segment
from growthwheel.store.db import engine, migrate, session_scope
from growthwheel.surveys import reads, service

ANSWERED = datetime(2025, 3, 5, 2, tzinfo=UTC)


def _orders() -> pd.DataFrame:
    day = pd.Timestamp("2025-02-01")  # the warehouse keeps naive UTC times
    rows = [(f"first{i}", f"c{i}", day + pd.Timedelta(hours=i), "paid") for i in range(30)]
    rows += [(f"again{i}", f"c{i}", pd.Timestamp("2025-03-10") + pd.Timedelta(days=i // 3), "paid")
             for i in range(0, 30, 3)]
    rows += [("cancel", "c1", pd.Timestamp("2025-03-12"), "cancelled"),
             ("last", "c99", pd.Timestamp("2025-06-30"), "paid")]
    return pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "status"])


def _members(segment_id: str) -> pd.DataFrame:
    return pd.DataFrame({"segment_id": [segment_id] * 15, "customer_id": [f"c{i}" for i in range(0, 30, 2)],
                         "entered_at": [pd.Timestamp("2025-03-01")] * 15})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str, str]]:
    cfg = Settings(data_dir=Path(tmp_path_factory.mktemp("survey-engines")), database_url=None)
    migrate(cfg)
    with session_scope(cfg) as session:
        survey = service.create_survey(session, service.SurveySpec(name="engines"), actor="tests")
        for i in range(30):
            service.record_answer(session, survey, service.AnswerIn(
                customer_id=f"c{i}", score=(10, 8, 3)[i % 3], answered_at=ANSWERED + timedelta(hours=i)))
        seg = Segment(name="偶数客户", definition={"all": []}, created_by="tests")
        session.add(seg)
        session.flush()
        ids = survey.id, seg.id
    yield cfg, *ids
    engine(cfg).dispose()


def _answers(session: Session, backend: Any, survey_id: str) -> tuple[Any, Any]:
    survey = service.get_survey(session, survey_id)
    return (reads.by_segment(session, backend, survey),
            reads.repurchase(session, backend, survey, days=30))


@pytest.mark.spark
def test_the_same_answers_on_duckdb_and_spark(spark_session: Any, store: tuple[Settings, str, str]) -> None:
    cfg, survey_id, segment_id = store
    duck = ibis.duckdb.connect()
    duck.create_table("orders", _orders())
    duck.create_table("segment_members", _members(segment_id))
    spark = copy_to_spark(spark_session, duck, ("orders", "segment_members"))
    with session_scope(cfg) as session:
        on_duck = _answers(session, duck, survey_id)
        on_spark = _answers(session, spark, survey_id)
    assert on_duck == on_spark
    segments, repurchase = on_duck
    assert [(r["group"], r["n"]) for r in segments] == [("偶数客户", 15)]
    groups = {g["group"]: g for g in repurchase["groups"]}
    # customers 0, 3, 6, … bought again within 30 days; 0, 3, 6 … are all promoters (score by i % 3)
    assert groups["promoter"]["repurchased"] == 10
    assert groups["passive"]["repurchased"] == 0
    assert groups["detractor"]["repurchased"] == 0
