"""Alerts: the robust seasonal detector against known injected anomalies, rules evaluated over a
real DuckDB warehouse, one alert per period however often it is judged, cool-down, notifications
through the outbox, and the inbox's conditional moves under a crowd on both stores."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from crowds import crowd
from growthwheel.alerts import detect, evaluation, inbox, rules, series, service
from growthwheel.alerts.models import Alert, AlertRule
from growthwheel.config import Settings
from growthwheel.jobs.models import OutboxRow
from growthwheel.store.db import migrate, session_scope
from tiny_warehouse import make_warehouse

WEEK = np.array([1.0, 0.95, 0.9, 0.95, 1.1, 1.3, 1.25])  # Monday first


def _series(seed: int, n: int = 365, start: date = date(2025, 1, 1)) -> tuple[list[date], np.ndarray]:
    rng = np.random.default_rng(seed)
    days = [start + timedelta(days=i) for i in range(n)]
    level = np.linspace(100, 160, n)
    values = np.array([rng.poisson(level[i] * WEEK[d.weekday()]) for i, d in enumerate(days)], dtype=float)
    return days, values


# ---------------------------------------------------------------------------------------------
# The detector (pure)
# ---------------------------------------------------------------------------------------------


def test_detector_finds_injected_spikes_and_few_false_alarms() -> None:
    """Poisson counts with a weekly pattern, a trend and festival surges (×3); 1.6× spikes are
    injected on random ordinary days. Over 20 seeded years: recall ≥ 0.8, precision ≥ 0.9."""
    tp = fp = fn = 0
    for seed in range(20):
        days, values = _series(seed)
        festivals = detect.festival_days(days[0], days[-1])
        for i, day in enumerate(days):
            if day in festivals:
                values[i] *= 3
        rng = np.random.default_rng(100 + seed)
        injected = {days[i] for i in rng.choice(range(40, len(days)), 8, replace=False)
                    if days[i] not in festivals}
        for i, day in enumerate(days):
            if day in injected:
                values[i] *= 1.6
        found = detect.seasonal_anomalies(days, list(values), festivals=festivals, direction="up")
        flagged = {f.day for f in found if f.anomaly}
        assert not flagged & festivals, "festival days are never judged"
        tp, fp, fn = tp + len(flagged & injected), fp + len(flagged - injected), fn + len(injected - flagged)
    recall, precision = tp / (tp + fn), tp / (tp + fp)
    assert recall >= 0.8, (tp, fp, fn)
    assert precision >= 0.9, (tp, fp, fn)


def test_detector_speaks_only_after_two_weekly_cycles() -> None:
    days, values = _series(1, n=30)
    found = detect.seasonal_anomalies(days, list(values))
    assert found, "a month of history is enough"
    assert min(f.day for f in found) >= days[0] + timedelta(days=21)
    assert detect.seasonal_anomalies(days[:14], list(values[:14])) == []


def test_detector_direction_and_band() -> None:
    days, values = _series(2, n=120)
    values[100] *= 0.3  # a drop
    down = {f.day for f in detect.seasonal_anomalies(days, list(values), direction="down") if f.anomaly}
    up = {f.day for f in detect.seasonal_anomalies(days, list(values), direction="up") if f.anomaly}
    assert days[100] in down
    assert days[100] not in up
    finding = next(f for f in detect.seasonal_anomalies(days, list(values)) if f.day == days[100])
    assert finding.value < finding.lower < finding.expected < finding.upper
    assert finding.score == pytest.approx((finding.value - finding.expected)
                                          / ((finding.upper - finding.expected) / 4.0))


def test_detector_refuses_gaps_and_unknown_direction() -> None:
    with pytest.raises(ValueError, match="consecutive"):
        detect.seasonal_anomalies([date(2025, 1, 1), date(2025, 1, 3)], [1.0, 2.0])
    with pytest.raises(ValueError, match="direction"):
        detect.seasonal_anomalies([date(2025, 1, 1)], [1.0], direction="sideways")  # type: ignore[arg-type]


def test_threshold_and_change() -> None:
    assert detect.crosses(5, ">", 4)
    assert not detect.crosses(4, ">", 4)
    assert detect.crosses(4, ">=", 4)
    assert detect.changed(130, 100, "up", 0.3)
    assert not detect.changed(129, 100, "up", 0.3)
    assert detect.changed(70, 100, "down", 0.3)
    assert not detect.changed(70, 100, "up", 0.3)
    assert not detect.changed(5, 0, "both", 0.1), "no reference, no change"


# ---------------------------------------------------------------------------------------------
# Rules over a warehouse
# ---------------------------------------------------------------------------------------------

START = date(2025, 1, 1)
SPIKE = date(2025, 4, 15)
BAD_DAYS = [date(2025, 4, 20), date(2025, 4, 21)]


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 6, tzinfo=UTC).replace(tzinfo=None)


def _shop() -> dict[str, list[dict[str, Any]]]:
    days, counts = _series(7, n=140, start=START)
    orders: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    for day, n in zip(days, counts, strict=True):
        k = int(n * (2.2 if day == SPIKE else 1.0) / 10)  # ~10–20 orders a day
        for j in range(k):
            at = datetime(day.year, day.month, day.day, 4, j % 60, tzinfo=UTC).replace(tzinfo=None)
            orders.append({"order_id": f"o{day:%m%d}{j}", "customer_id": f"c{j}", "ordered_at": at,
                           "order_date": day, "status": "paid", "channel": "web", "currency": "CNY",
                           "item_count": 1, "gross_amount": 5000, "discount_amount": 0,
                           "total_amount": 5000, "shipping_amount": 0, "refunded_amount": 0})
        bad = 9 if day in BAD_DAYS else (1 if day.day % 5 == 0 else 0)
        for j in range(bad):
            reviews.append({"review_id": f"r{day:%m%d}{j}", "sku": "TEA-1", "rating": 1,
                            "created_at": _noon(day), "review_date": day})
        reviews.append({"review_id": f"g{day:%m%d}", "sku": "CUP-1", "rating": 5,
                        "created_at": _noon(day), "review_date": day})
    return {"orders": orders, "reviews": reviews}


@pytest.fixture(scope="module")
def shop() -> Any:
    return make_warehouse(_shop())


@pytest.fixture
def cfg(tmp_path: Any) -> Settings:
    settings = Settings(data_dir=tmp_path, database_url=None)
    migrate(settings)
    return settings


def _rule(session: Any, **kw: Any) -> AlertRule:
    spec = rules.RuleSpec(**{"name": "orders spike", "metric": "orders", "kind": "anomaly",
                             "params": {"direction": "up"}, **kw})
    return service.create_rule(session, spec, actor="ops@example.com")


def test_anomaly_rule_finds_the_spike_once_and_notifies_once(cfg: Settings, shop: Any) -> None:
    today = date(2025, 5, 20)
    now = datetime(2025, 5, 20, 1, tzinfo=UTC)
    with session_scope(cfg) as session:
        rule = _rule(session, notify=[{"channel": "email", "recipient": "ops@example.com"}])
        result = service.evaluate(session, shop, today=today, since=date(2025, 3, 1), now=now)
        assert result.errors == {}
        alerts = session.scalars(select(Alert).where(Alert.rule_id == rule.id)).all()
        assert [a.period_start for a in alerts] == [SPIKE]
        assert alerts[0].value > alerts[0].upper  # type: ignore[operator]
        assert alerts[0].notified
        assert inbox.drill_down(alerts[0]) == "/?start=2025-03-19&end=2025-04-15"
    with session_scope(cfg) as session:  # judged again: nothing new, nothing sent twice
        again = service.evaluate(session, shop, today=today, since=date(2025, 3, 1), now=now)
        assert again.new_alerts == 0
        assert session.scalar(select(func.count()).select_from(Alert)) == 1
        rows = session.scalars(select(OutboxRow)).all()
        assert [(r.channel, r.recipient) for r in rows] == [("email", "ops@example.com")]
        assert "订单数" in rows[0].payload["subject"]
        assert "2025-04-15" in rows[0].payload["subject"]


def test_cooldown_keeps_the_second_alert_quiet(cfg: Settings, shop: Any) -> None:
    now = datetime(2025, 5, 20, 1, tzinfo=UTC)
    with session_scope(cfg) as session:
        rule = _rule(session, name="many orders", kind="threshold", period="day",
                     params={"op": ">", "limit": 17}, cooldown_hours=48,
                     notify=[{"channel": "wecom", "recipient": "ops-group"}])
        result = service.evaluate(session, shop, today=date(2025, 5, 20), since=date(2025, 4, 1), now=now)
        alerts = session.scalars(select(Alert).where(Alert.rule_id == rule.id)).all()
        assert result.new_alerts == len(alerts) >= 2
        assert sum(a.notified for a in alerts) == 1 == result.notified
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 1


def test_negative_review_spike_by_sku(cfg: Settings, shop: Any) -> None:
    with session_scope(cfg) as session:
        assert service.ensure_builtin_rules(session) == len(rules.BUILTIN_RULES)
        assert service.ensure_builtin_rules(session) == 0
        rule = session.scalar(select(AlertRule).where(AlertRule.builtin == "negative_reviews_up"))
        assert rule is not None
        service.evaluate(session, shop, today=date(2025, 5, 20), since=date(2025, 3, 1), rule_ids=[rule.id])
        found = session.scalars(select(Alert).where(Alert.rule_id == rule.id)).all()
        assert sorted((a.dimension_value, a.period_start) for a in found) == [("TEA-1", d) for d in BAD_DAYS]


def test_change_rule_against_previous_week(cfg: Settings, shop: Any) -> None:
    with session_scope(cfg) as session:
        rule = _rule(session, name="weekly orders jump", kind="change", period="week",
                     params={"compare": "previous", "direction": "up", "at_least": 0.05})
        service.evaluate(session, shop, today=date(2025, 5, 19), since=date(2025, 4, 14),
                         rule_ids=[rule.id])
        weeks = [a.period_start for a in session.scalars(select(Alert).where(Alert.rule_id == rule.id))]
        assert date(2025, 4, 14) in weeks  # the week with the spike
        assert all(w.weekday() == 0 for w in weeks)


def test_min_base_leaves_thin_days_unjudged(cfg: Settings, shop: Any) -> None:
    """A ratio rule with ``min_base`` judges only the days whose base (orders for AOV) reaches it."""
    since, today = date(2025, 4, 1), date(2025, 5, 1)
    orders = series.daily_series(shop, "orders", None, since, today - timedelta(days=1))[""]
    with session_scope(cfg) as session:
        rule = _rule(session, name="big baskets", metric="aov", kind="threshold", period="day",
                     params={"op": ">", "limit": 10, "min_base": 15})
        service.evaluate(session, shop, today=today, since=since, rule_ids=[rule.id])
        days = sorted(a.period_start for a in session.scalars(select(Alert).where(Alert.rule_id == rule.id)))
    expected = [since + timedelta(days=i) for i, n in enumerate(orders) if n is not None and n >= 15]
    assert 0 < len(expected) < len(orders)  # some days are thin, some are not
    assert days == expected


@pytest.mark.parametrize(("field", "spec"), [
    ("metric", {"metric": "nonsense"}),
    ("dimension", {"metric": "sessions", "dimension": "channel"}),
    ("params.op", {"kind": "threshold", "params": {"op": "~", "limit": 1}}),
    ("params.z", {"params": {"z": "many"}}),
    ("period", {"period": "week"}),
    ("params.min_base", {"params": {"direction": "up", "min_base": 5}}),
    ("notify[0].recipient", {"notify": [{"channel": "email", "recipient": "nobody"}]}),
])
def test_bad_rules_name_the_field(cfg: Settings, field: str, spec: dict[str, Any]) -> None:
    with session_scope(cfg) as session, pytest.raises(Exception, match=field.replace("[", r"\[")
                                                      .replace("]", r"\]")):
        _rule(session, **spec)


def test_acknowledge_and_resolve_race(store_cfg: Settings) -> None:
    """Eight operators acknowledge one alert at once: exactly one wins, the others get a 409."""
    with session_scope(store_cfg) as session:
        rule = _rule(session)
        alert, _ = inbox.record(session, rule, evaluation.Finding(rule.id, "", date(2025, 4, 15), 30.0),
                                now=datetime(2025, 4, 16, tzinfo=UTC))
        assert alert is not None
        alert_id = alert.id

    def ack(i: int) -> str:
        with session_scope(store_cfg) as session:
            return inbox.acknowledge(session, alert_id, actor=f"op{i}@example.com").status

    results = crowd(8, ack)
    assert results.count("acknowledged") == 1, results
    assert results.count("alert_conflict") == 7, results
    with session_scope(store_cfg) as session:
        done = inbox.resolve(session, alert_id, actor="lead@example.com", note="supplier fixed")
        assert done.status == "resolved"
        assert done.note == "supplier fixed"
        with pytest.raises(rules.ConflictError):
            inbox.resolve(session, alert_id, actor="lead@example.com")


def test_the_review_lists_the_period_alerts(cfg: Settings, shop: Any) -> None:
    from growthwheel.reports.review import render_review

    with session_scope(cfg) as session:
        _rule(session, name="订单激增")
        service.evaluate(session, shop, today=date(2025, 5, 20), since=date(2025, 3, 1))
    html = render_review(shop, period="week", as_of=date(2025, 4, 20), shop_name="测试店", currency="CNY",
                         cfg=cfg)
    assert "本期预警" in html
    assert "2025-04-15" in html
    assert "订单激增" in html
    quiet = render_review(shop, period="week", as_of=date(2025, 4, 13), shop_name="测试店", currency="CNY",
                          cfg=cfg)
    assert "本期预警" in quiet
    assert "订单激增" not in quiet
    assert "本期预警" not in render_review(shop, period="week", as_of=date(2025, 4, 20), shop_name="测试店",
                                        currency="CNY")
