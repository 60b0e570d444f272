"""The campaign reads (pacing, the three-axis review) give the same answers on DuckDB and Spark
(the tiny shop of ``campaign_data``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from growthwheel.marketing.campaigns import pacing, review

from . import campaign_data as data


@pytest.mark.spark
def test_duckdb_and_spark_review_and_pace_the_same(spark_session: Any, tmp_path: Path) -> None:
    from growthwheel.config import Settings
    from growthwheel.warehouse import db

    campaign = SimpleNamespace(name="Double 11 2024", budget={"douyin": 50_000}, target_gmv=200_000,
                               target_new_buyers=10, target_roi=2.0, profile="last_year")
    phases = [pacing.Phase("warm_up", "蓄水", date(2024, 11, 1), date(2024, 11, 3), 0.2),
              pacing.Phase("peak", "爆发", date(2024, 11, 4), date(2024, 11, 5), 0.6),
              pacing.Phase("after_glow", "返场", date(2024, 11, 6), date(2024, 11, 7))]
    answers = []
    for backend in ("duckdb", "spark"):
        cfg = Settings(data_dir=tmp_path / backend, warehouse=backend)  # type: ignore[arg-type]
        (tmp_path / f"in-{backend}").mkdir()
        data.load(cfg, tmp_path / f"in-{backend}")
        con = db.connect(cfg)
        answers.append((review.review(con, campaign, phases, influencer_cost=22_000),
                        review.pace(con, campaign, phases, as_of=date(2024, 11, 4))))
    assert answers[0] == answers[1]
    body, pace = answers[0]
    assert body["operations"]["roi"] == pytest.approx(150_000 / 52_000)
    assert pace["phases"][1]["gmv"]["status"] == "behind"
