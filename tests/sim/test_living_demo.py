"""The living demo: a small demo shop brought to life through the services has content in every
domain a console page shows (real SQLite store, real DuckDB warehouse, real aiosmtpd mail sink),
its known effects are in ``ground_truth.json``, and acting twice changes nothing."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
from sqlalchemy import func, select

from growthwheel.config import Settings
from growthwheel.experiments.models import Experiment
from growthwheel.jobs.models import JobSchedule, OutboxRow
from growthwheel.journeys.models import Enrolment, Journey
from growthwheel.loyalty.models import Member
from growthwheel.promotions.models import CheckoutOrder, CouponBatch, CouponRedemption, Promotion
from growthwheel.segments.models import Segment
from growthwheel.sim import living, mailsink
from growthwheel.sim.demo import build_demo
from growthwheel.social.models import Bargain, BargainCut, Group
from growthwheel.store.db import engine, session_scope

CUSTOMERS, DAYS, START = 600, 240, date(2025, 1, 1)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, living.Acted]]:
    data = tmp_path_factory.mktemp("living")
    cfg = Settings(data_dir=data, database_url=None)
    build_demo(cfg, customers=CUSTOMERS, days=DAYS, seed=5, start=START)
    acted = living.bring_to_life(
        cfg, end=living.history_end(START, DAYS), seed=5, mail_port=mailsink.free_port(), checkout_orders=80
    )
    yield cfg, acted
    engine(cfg).dispose()


def count(cfg: Settings, model: Any, *where: Any) -> int:
    with session_scope(cfg) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_every_domain_has_content(shop: tuple[Settings, living.Acted]) -> None:
    cfg, acted = shop
    # members in every tier of the ladder, some with points
    with session_scope(cfg) as session:
        tiers = dict(session.execute(select(Member.tier_code, func.count()).group_by(Member.tier_code)).all())
    assert set(tiers) >= {"normal", "silver", "gold", "black"}, tiers
    assert all(tiers[t] > 0 for t in ("normal", "silver", "gold", "black"))
    assert acted.counts["members_with_opening_points"] > 0
    # promotions: ended and running, with results from the checkout
    with session_scope(cfg) as session:
        promos = {p.name: p for p in session.scalars(select(Promotion))}
    statuses = {p.status for p in promos.values()}
    assert {"ended", "active", "draft"} <= statuses
    results = {
        p.name: (p.used_count, p.used_amount, p.stock_used) for p in promos.values() if p.status != "draft"
    }
    assert all(any(r) for r in results.values()), results  # budget or stock taken by the checkout
    # coupon batches with issued codes and redemptions
    assert count(cfg, CouponBatch) == 3
    assert count(cfg, CouponRedemption) > 0
    with session_scope(cfg) as session:
        used = {b.name: b.used_count for b in session.scalars(select(CouponBatch))}
    assert sum(1 for v in used.values() if v > 0) >= 2, used
    # saved segments, refreshed, one refreshed by the worker on a schedule
    with session_scope(cfg) as session:
        segments = list(session.scalars(select(Segment)))
        assert all(s.refreshed_at is not None for s in segments)
        assert any(s.members for s in segments)
        scheduled = session.scalars(
            select(JobSchedule.name).where(JobSchedule.name.like("segments.refresh:%"))
        )
        assert len(list(scheduled)) == 1
    assert len(segments) == 3
    # an experiment, stopped, with its exposures and results in the warehouse
    with session_scope(cfg) as session:
        exp = session.scalars(select(Experiment)).one()
        assert exp.status == "stopped"
        assert exp.planned_units
    # group buys (complete and open) and bargains with cuts
    with session_scope(cfg) as session:
        groups = dict(session.execute(select(Group.status, func.count()).group_by(Group.status)).all())
    assert groups.get("complete", 0) > 0, groups
    assert groups.get("open", 0) > 0, groups
    assert count(cfg, Bargain) > 0
    assert count(cfg, BargainCut) > 0
    # a journey: enrolments with a hold-out, emails delivered to the local mail sink
    assert count(cfg, Journey, Journey.status == "active") == 1
    assert count(cfg, Enrolment, Enrolment.held_out.is_(True)) > 0
    assert count(cfg, Enrolment, Enrolment.held_out.is_(False)) > 0
    sent = count(cfg, OutboxRow, OutboxRow.status == "sent")
    mails = sorted((cfg.data_dir / mailsink.MAILBOX_DIR).glob("*.eml"))
    assert sent == acted.mails == len(mails) > 0
    first = email.message_from_bytes(mails[0].read_bytes())
    assert "好久不见" in str(email.header.make_header(email.header.decode_header(first["Subject"])))
    # the warehouse: CLV scores for every customer, checkout orders and exposures as facts
    checkout = count(cfg, CheckoutOrder)
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        scores = con.execute("SELECT count(*) FROM customer_scores").fetchone()
        facts = con.execute("SELECT count(*) FROM orders WHERE source = 'checkout'").fetchone()
        exposures = con.execute("SELECT count(*) FROM events WHERE type = 'experiment_exposure'").fetchone()
    finally:
        con.close()
    assert scores == (CUSTOMERS,)
    assert facts == (checkout,)
    assert checkout > 0
    assert exposures == (acted.counts["experiment_units"],)


def test_ground_truth_records_the_known_effects(shop: tuple[Settings, living.Acted]) -> None:
    cfg, acted = shop
    truth = json.loads((cfg.data_dir / "ground_truth.json").read_text("utf-8"))
    lift = truth["experiments"][living.EXPERIMENT_KEY]
    assert lift["true_lift_revenue_per_unit"] == pytest.approx(lift["probability"] * lift["amount"])
    winback = truth["journeys"]["winback"]
    assert 0 <= winback["natural_rate"] <= 1
    assert winback["true_effect_on_reactivation"] == pytest.approx(
        winback["effect"] * (1 - winback["natural_rate"])
    )
    assert winback["entrants"] == acted.counts["journey_enrolled"]
    assert truth["acting"]["checkout_orders"] == acted.counts["checkout_orders"]


def test_acting_again_changes_nothing(shop: tuple[Settings, living.Acted]) -> None:
    cfg, _acted = shop
    before = count(cfg, CheckoutOrder), count(cfg, Promotion), count(cfg, Enrolment)
    again = living.bring_to_life(
        cfg, end=living.history_end(START, DAYS), seed=5, mail_port=mailsink.free_port()
    )
    assert again.counts == {}
    assert (count(cfg, CheckoutOrder), count(cfg, Promotion), count(cfg, Enrolment)) == before


def test_the_alert_inbox_is_judged_over_the_history(shop: tuple[Settings, living.Acted]) -> None:
    """The built-in rules exist and judged the history; every alert recorded is one of theirs."""
    from growthwheel.alerts.models import Alert, AlertRule
    from growthwheel.alerts.rules import BUILTIN_RULES

    cfg, acted = shop
    with session_scope(cfg) as session:
        builtins = count(cfg, AlertRule, AlertRule.builtin.is_not(None))
        alerts = session.scalars(select(Alert)).all()
    assert builtins == len(BUILTIN_RULES)
    assert acted.counts["alerts"] == len(alerts)


def test_the_demo_nps_intervals_cover_the_true_nps(shop: tuple[Settings, living.Acted]) -> None:
    """The simulator's survey answers have a known true NPS per segment (``sim.surveys``): the
    adjusted Wald interval of the answers covers it (99% per segment, so a fixed seed does not
    make the test a coin toss; the overall one at 95%)."""
    from growthwheel.surveys import reads, service
    from growthwheel.warehouse import connect

    cfg, acted = shop
    truth = json.loads((cfg.data_dir / "ground_truth.json").read_text("utf-8"))["surveys"]
    assert truth["overall"]["respondents"] == acted.counts["survey_answers"] > 100
    backend = connect(cfg)
    try:
        with session_scope(cfg) as session:
            survey = service.get_survey(session, truth["survey"])
            overall = service.report(session, survey, zone=ZoneInfo(cfg.shop().timezone))["overall"]
            by_segment = {r["group"]: r for r in reads.by_segment(session, backend, survey, confidence=0.99)}
    finally:
        backend.disconnect()
    assert overall["low"] <= truth["overall"]["true_nps"] <= overall["high"]
    checked = 0
    for name, known in truth["segments"].items():
        if known["respondents"] < 15:
            continue
        row = by_segment[name]
        assert row["n"] == known["respondents"]
        assert row["low"] <= known["true_nps"] <= row["high"], (name, row, known)
        checked += 1
    assert checked >= 2


def test_the_review_queue_holds_the_demos_negative_reviews(shop: tuple[Settings, living.Acted]) -> None:
    """Every 1–2-star review of the history is a case; the team's past answers are replied, some
    late (breached); the last three days' cases are open; the bad batch shows as a quality (or
    packaging) problem of its SKU in the product feedback."""
    from datetime import UTC, datetime

    from growthwheel.voice import feedback, service
    from growthwheel.voice.models import ReviewCase
    from growthwheel.warehouse import connect

    cfg, acted = shop
    truth = json.loads((cfg.data_dir / "ground_truth.json").read_text("utf-8"))
    backend = connect(cfg)
    try:
        t = backend.table("reviews")
        low = int(t.filter(t.rating <= 2).count().execute())
        spike = next(a for a in truth["anomalies"] if a["kind"] == "negative_review_spike")
        first, last = date.fromisoformat(spike["first_day"]), date.fromisoformat(spike["last_day"])
        worse = feedback.trends(feedback.load(backend, first, last, spike["value"]), first, last)
    finally:
        backend.disconnect()
    assert acted.counts["review_cases"] == count(cfg, ReviewCase) >= low > 0
    with session_scope(cfg) as session:
        now = datetime.now(UTC)
        cases = [service.case_out(c, now=now) for c in service.list_cases(session, limit=100_000)]
    replied = [c for c in cases if c["status"] == "replied"]
    assert len(replied) == acted.counts["review_replies"] > 0
    assert 0 < sum(c["breached"] for c in replied) < len(replied)
    assert {a.aspect for a in worse} & {"quality", "packaging"}
