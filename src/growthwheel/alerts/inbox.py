"""The alerts a rule's findings become: recorded once, notified (or not), read and moved in the
inbox, and put into words and links.

**Once, and not too often.** An alert's ``dedup_key`` is ``rule | dimension value | period
start`` and unique in the database (``INSERT … ON CONFLICT DO NOTHING``): judging a day again, or
two workers judging it at once, records one alert. A new alert notifies (through the journey
channels' outbox, one message per configured ``{channel, recipient}``, keyed by alert) unless the
same rule and dimension value notified within its ``cooldown_hours`` — then it lands in the inbox
quietly (``notified`` false).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from growthwheel.accounts.models import new_id, utcnow
from growthwheel.alerts.evaluation import Finding
from growthwheel.alerts.models import ALERT_STATUSES, Alert, AlertRule
from growthwheel.alerts.rules import (
    CAMPAIGN_PACE,
    NEGATIVE_REVIEWS,
    STOCKOUT_RISK,
    ConflictError,
    NotFoundError,
    label,
)
from growthwheel.errors import InvalidArgumentError
from growthwheel.insight import kpis
from growthwheel.store.db import insert_for


def record(session: Session, rule: AlertRule, finding: Finding, *, now: datetime,
           lang: str = "zh", console_url: str = "") -> tuple[Alert | None, bool]:
    """Record ``finding`` once (``None`` when its alert exists already) and queue its notifications
    unless the rule's cool-down holds. Returns (the new alert, whether it notified)."""
    key = f"{rule.id}|{finding.dimension_value}|{rule.period}|{finding.period_start.isoformat()}"
    alert_id = session.execute(
        insert_for(session)(Alert).values(
            id=new_id(), rule_id=rule.id, dedup_key=key, metric=rule.metric, dimension=rule.dimension,
            dimension_value=finding.dimension_value, period=rule.period, period_start=finding.period_start,
            value=finding.value, reference=finding.reference, lower=finding.lower, upper=finding.upper,
            score=finding.score, status="open", notified=False, created_at=now,
        ).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(Alert.id)
    ).scalar()
    if alert_id is None:
        return None, False
    alert = session.get(Alert, alert_id)
    assert alert is not None
    if not rule.notify:
        return alert, False
    since = now - timedelta(hours=rule.cooldown_hours)
    recent = session.scalar(select(func.count()).select_from(Alert).where(
        Alert.rule_id == rule.id, Alert.dimension_value == finding.dimension_value,
        Alert.notified.is_(True), Alert.created_at > since, Alert.id != alert.id))
    if recent:
        return alert, False
    from growthwheel.jobs import outbox

    subject, text = message(rule, alert, lang=lang, console_url=console_url)
    for target in rule.notify:
        outbox.enqueue(session, key=f"a|{alert.id}|{target['channel']}|{target['recipient']}",
                       channel=target["channel"], recipient=target["recipient"],
                       payload={"subject": subject, "text": text, "lang": lang,
                                "data": {"alert_id": alert.id, "rule": rule.name}},
                       now=now)
    alert.notified = True
    session.flush()
    return alert, True


def list_alerts(session: Session, *, status: str | None = None, limit: int = 200) -> list[Alert]:
    """Alerts, newest first (``status`` one of open / acknowledged / resolved, or all)."""
    if status is not None and status not in ALERT_STATUSES:
        raise InvalidArgumentError(f"status: one of {', '.join(ALERT_STATUSES)}")
    query = select(Alert).order_by(Alert.period_start.desc(), Alert.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(Alert.status == status)
    return list(session.scalars(query))


def counts(session: Session) -> dict[str, int]:
    """How many alerts are in each status."""
    rows = session.execute(select(Alert.status, func.count()).group_by(Alert.status)).all()
    found = {str(s): int(n) for s, n in rows}
    return {s: found.get(s, 0) for s in ALERT_STATUSES}


def get_alert(session: Session, alert_id: str) -> Alert:
    """One alert, or :class:`NotFoundError`."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f"alert {alert_id!r} not found")
    return alert


def _move(session: Session, alert_id: str, allowed: tuple[str, ...], values: dict[str, Any]) -> Alert:
    done = session.execute(update(Alert).where(and_(Alert.id == alert_id, Alert.status.in_(allowed)))
                           .values(**values).execution_options(synchronize_session=False))
    alert = get_alert(session, alert_id)
    session.refresh(alert)
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"alert {alert_id!r} is {alert.status}")
    return alert


def acknowledge(session: Session, alert_id: str, *, actor: str, now: datetime | None = None) -> Alert:
    """``open`` → ``acknowledged`` (409 from any other status: someone was first)."""
    return _move(session, alert_id, ("open",), {"status": "acknowledged", "acknowledged_by": actor,
                                                 "acknowledged_at": now or utcnow()})


def resolve(session: Session, alert_id: str, *, actor: str, note: str | None = None,
            now: datetime | None = None) -> Alert:
    """``open`` / ``acknowledged`` → ``resolved`` with an optional note."""
    if note is not None and len(note) > 2000:
        raise InvalidArgumentError("note: at most 2,000 characters")
    return _move(session, alert_id, ("open", "acknowledged"),
                 {"status": "resolved", "resolved_by": actor, "resolved_at": now or utcnow(), "note": note})


def drill_down(alert: Alert) -> str:
    """The console page that explains ``alert``: the overview over the fortnight up to it (the
    reviews of the SKU for review alerts)."""
    end = alert.period_start if alert.period == "day" else kpis.period_end(alert.period_start, alert.period)
    start = end - timedelta(days=27)
    if alert.metric == NEGATIVE_REVIEWS:
        return f"/customers?start={start.isoformat()}&end={end.isoformat()}"
    if alert.metric == STOCKOUT_RISK:
        return "/inventory"
    if alert.metric == CAMPAIGN_PACE:
        return "/marketing/campaigns"
    return f"/?start={start.isoformat()}&end={end.isoformat()}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) < 1 and value != 0:
        return f"{value:.4f}"
    return f"{value:,.2f}"


def message(rule: AlertRule, alert: Alert, *, lang: str, console_url: str = "") -> tuple[str, str]:
    """The notification's subject and text in ``lang``."""
    name = label(rule.metric, lang)
    where = f" · {alert.dimension_value}" if alert.dimension_value else ""
    when = alert.period_start.isoformat()
    link = (console_url.rstrip("/") + drill_down(alert)) if console_url else drill_down(alert)
    if lang == "zh":
        subject = f"【预警】{rule.name}：{name}{where}（{when}）"
        lines = [f"指标：{name}{where}", f"周期：{when}（{rule.period}）", f"实际值：{_fmt(alert.value)}"]
        if alert.reference is not None:
            lines.append(f"参考值：{_fmt(alert.reference)}")
        if alert.lower is not None and alert.upper is not None:
            lines.append(f"正常区间：{_fmt(alert.lower)} ~ {_fmt(alert.upper)}")
        lines.append(f"查看：{link}")
    else:
        subject = f"[Alert] {rule.name}: {name}{where} ({when})"
        lines = [f"Metric: {name}{where}", f"Period: {when} ({rule.period})", f"Value: {_fmt(alert.value)}"]
        if alert.reference is not None:
            lines.append(f"Reference: {_fmt(alert.reference)}")
        if alert.lower is not None and alert.upper is not None:
            lines.append(f"Normal range: {_fmt(alert.lower)} to {_fmt(alert.upper)}")
        lines.append(f"Open: {link}")
    return subject, "\n".join(lines)


def alert_out(alert: Alert, rule_name: str | None = None) -> dict[str, Any]:
    """An alert as the API answers it."""
    return {"id": alert.id, "rule_id": alert.rule_id, "rule": rule_name, "metric": alert.metric,
            "dimension": alert.dimension, "dimension_value": alert.dimension_value, "period": alert.period,
            "period_start": alert.period_start.isoformat(), "value": alert.value,
            "reference": alert.reference,
            "lower": alert.lower, "upper": alert.upper, "score": alert.score, "status": alert.status,
            "notified": alert.notified, "created_at": alert.created_at.isoformat(),
            "acknowledged_by": alert.acknowledged_by, "resolved_by": alert.resolved_by, "note": alert.note,
            "drill_down": drill_down(alert)}


def rule_names(session: Session) -> dict[str, str]:
    """Rule id → name."""
    return {str(i): str(n) for i, n in session.execute(select(AlertRule.id, AlertRule.name)).all()}


def _band(alert: Alert) -> str:
    if alert.lower is not None and alert.upper is not None:
        return f"{_fmt(alert.lower)} ~ {_fmt(alert.upper)}"
    return _fmt(alert.reference)


def report_rows(cfg: Any, start: date, end: date) -> list[dict[str, Any]]:
    """The alerts of periods starting in ``[start, end]``, for the periodic review (both
    languages: the review is bilingual). Empty when the store has no alerts table yet."""
    from sqlalchemy.exc import SQLAlchemyError

    from growthwheel.store.db import session_scope

    try:
        with session_scope(cfg) as session:
            names = rule_names(session)
            found = session.scalars(select(Alert).where(Alert.period_start.between(start, end))
                                    .order_by(Alert.period_start, Alert.created_at)).all()
            return [{"day": a.period_start.isoformat(), "rule": names.get(a.rule_id, ""),
                     "metric_en": label(a.metric, "en"), "metric_zh": label(a.metric, "zh"),
                     "where": a.dimension_value, "value": _fmt(a.value),
                     "band": _band(a), "status": a.status} for a in found]
    except SQLAlchemyError:
        return []
