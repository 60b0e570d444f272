"""The periodic review (复盘) lists each survey's NPS for the period, from the operational store."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from growthwheel.config import Settings
from growthwheel.reports.review import render_review
from growthwheel.store.db import engine, migrate, session_scope
from growthwheel.surveys import service
from growthwheel.warehouse import connect, ingest

from .test_surveys_api import _orders_csv

SHANGHAI = timezone(timedelta(hours=8))


def test_the_monthly_review_shows_the_months_nps(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(_orders_csv(), encoding="utf-8")
    cfg = Settings(data_dir=tmp_path / "data", database_url=None)
    ingest.import_files("orders", [tmp_path / "orders.csv"], cfg=cfg)
    migrate(cfg)
    with session_scope(cfg) as session:
        survey = service.create_survey(session, service.SurveySpec(name="三月回访"), actor="tests")
        # March (shop time): 3 promoters, 1 passive, 1 detractor → NPS +40; one answer on
        # 1 April 00:30 Shanghai (still 31 March in UTC) belongs to April and is left out
        for i, score in enumerate([10, 9, 9, 8, 2]):
            service.record_answer(session, survey, service.AnswerIn(
                customer_id=f"c{i}", score=score, comment="很好" if i == 0 else None,
                answered_at=datetime(2025, 3, 10 + i, 12, tzinfo=SHANGHAI)))
        service.record_answer(session, survey, service.AnswerIn(
            customer_id="c9", score=0, answered_at=datetime(2025, 4, 1, 0, 30, tzinfo=SHANGHAI)))
    backend = connect(cfg)
    try:
        html = render_review(backend, period="month", as_of=date(2025, 4, 2), shop_name="S", currency="CNY",
                             cfg=cfg)
    finally:
        backend.disconnect()
        engine(cfg).dispose()
    table = re.search(r'<table id="nps">.*?</table>', html, re.S)
    assert table is not None
    cells = re.findall(r"<td>([^<]*)</td>", table.group(0))
    assert cells[:6] == ["三月回访", "5", "3", "1", "1", "+40.0"]
    assert cells[7] == "1"
