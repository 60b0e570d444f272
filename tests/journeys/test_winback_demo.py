"""The demo's win-back journey: the measured uplift against the hold-out recovers the simulator's
true effect within its 95 % interval (real SQLite store, real DuckDB warehouse)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import ibis
from sqlalchemy import select
from test_journey_tick import ENV, NOW, setup_journey, warehouse

from growthwheel.config import Settings
from growthwheel.journeys import service
from growthwheel.journeys.models import Enrolment
from growthwheel.journeys.report import journey_report
from growthwheel.journeys.repository import WarehouseView
from growthwheel.sim.journeys import Entrant, WinbackTruth, reactivation_orders, write_truth
from growthwheel.store import db
from growthwheel.store.db import session_scope


def test_measured_uplift_recovers_the_true_effect(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    db.migrate(cfg)
    truth = WinbackTruth(base_rate=0.10, effect=0.08, amount=12_000, days=30)
    write_truth(tmp_path / "ground_truth.json", truth)
    con = warehouse(2400)
    view = WarehouseView(ibis.duckdb.from_connection(con))
    definition = {
        "trigger": {"kind": "lifecycle", "stage": "dormant"},
        "start": "coupon",
        "steps": [
            {"id": "coupon", "type": "coupon", "batch_id": "", "next": "out"},
            {"id": "out", "type": "exit"},
        ],
        "holdout_share": 0.5,
        "backfill_days": 400,
        "goal": {"within_days": 30},
    }
    journey_id = setup_journey(
        cfg,
        lambda b: {
            **definition,
            "steps": [{**definition["steps"][0], "batch_id": b}, definition["steps"][1]],
        },
    )
    assert service.tick(cfg, view, now=NOW, env=ENV).enrolled == 2400
    with session_scope(cfg) as session:
        entrants = [
            Entrant(c, h, at)
            for c, h, at in session.execute(
                select(Enrolment.customer_id, Enrolment.held_out, Enrolment.entered_at).order_by(
                    Enrolment.customer_id
                )
            )
        ]
    orders = reactivation_orders(entrants, truth, seed=20250602)
    for o in orders:
        con.execute(
            "INSERT INTO orders (order_id, customer_id, ordered_at, order_date, status, total_amount) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                o["order_id"],
                o["customer_id"],
                o["ordered_at"],
                o["order_date"],
                o["status"],
                o["total_amount"],
            ],
        )
    service.tick(cfg, view, now=NOW + timedelta(days=31), env=ENV)
    with session_scope(cfg) as session:
        report = journey_report(session, service.get_journey(session, journey_id))
    stored = json.loads((tmp_path / "ground_truth.json").read_text("utf-8"))["journeys"]["winback"]
    # The hold-out is drawn by hashing the journey's random id, so each run is a new experiment and a
    # 95 % interval misses the truth in one run of twenty by design: the test widens the report's
    # interval to 99.9 % (the same centre, its half-width × 3.29 / 1.96) so that it fails only when
    # the estimate is wrong, not when a run is unlucky. The 95 % interval must still exclude 0.
    def covers(interval: dict[str, float], truth: float) -> bool:
        centre = (interval["ci_lower"] + interval["ci_upper"]) / 2
        half = (interval["ci_upper"] - interval["ci_lower"]) / 2 * 3.29 / 1.96
        return centre - half <= truth <= centre + half

    conversion = report["uplift"]["conversion"]
    assert covers(conversion, stored["true_effect_on_reactivation"]), conversion
    assert conversion["ci_lower"] > 0  # and the effect is detected
    revenue = report["uplift"]["revenue_per_entrant"]
    assert covers(revenue, stored["true_effect_on_revenue_per_entrant"]), revenue
    assert report["holdout"]["entered"] + report["treatment"]["entered"] == 2400
    db.engine(cfg).dispose()
