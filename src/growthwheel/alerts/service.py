"""Alert rules kept in the store, and one evaluation of them: judge, record, notify.

The parts: :mod:`~growthwheel.alerts.rules` (what a rule may say, validation, built-ins),
:mod:`~growthwheel.alerts.series` (series from the warehouse, shared KPI frames),
:mod:`~growthwheel.alerts.evaluation` (where a rule fires), :mod:`~growthwheel.alerts.inbox`
(alerts recorded once, notifications, the inbox). The service never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.accounts.models import new_id, utcnow
from growthwheel.alerts.evaluation import campaign_findings, find
from growthwheel.alerts.inbox import record
from growthwheel.alerts.models import AlertRule
from growthwheel.alerts.rules import (
    BUILTIN_RULES,
    CAMPAIGN_PACE,
    ConflictError,
    NotFoundError,
    RuleSpec,
    validate,
)
from growthwheel.alerts.series import FrameMemo
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.store.db import insert_for


def ensure_builtin_rules(session: Session, *, actor: str = "system") -> int:
    """Add the built-in rules a store lacks (an operator's changes to them are kept); returns how
    many were added."""
    have = set(session.scalars(select(AlertRule.builtin).where(AlertRule.builtin.is_not(None))))
    added = 0
    for key, spec in BUILTIN_RULES.items():
        if key in have:
            continue
        ok = validate(spec)
        values = {"id": new_id(), "name": ok.name, "builtin": key, "metric": ok.metric,
                  "dimension": ok.dimension, "kind": ok.kind, "period": ok.period, "params": dict(ok.params),
                  "notify": [dict(t) for t in ok.notify], "cooldown_hours": ok.cooldown_hours,
                  "enabled": True, "created_by": actor, "created_at": utcnow(), "updated_at": utcnow()}
        done = session.execute(insert_for(session)(AlertRule).values(**values).on_conflict_do_nothing()
                               .returning(AlertRule.id)).scalar()
        added += done is not None
    session.flush()
    return added


def create_rule(session: Session, spec: RuleSpec, *, actor: str) -> AlertRule:
    """Save a new rule (409 when the name is taken)."""
    ok = validate(spec)
    if session.scalar(select(AlertRule.id).where(AlertRule.name == ok.name)) is not None:
        raise ConflictError(f"name: a rule named {ok.name!r} exists already")
    rule = AlertRule(name=ok.name, metric=ok.metric, dimension=ok.dimension, kind=ok.kind, period=ok.period,
                     params=dict(ok.params), notify=[dict(t) for t in ok.notify],
                     cooldown_hours=ok.cooldown_hours, enabled=ok.enabled, created_by=actor)
    session.add(rule)
    session.flush()
    return rule


def update_rule(session: Session, rule_id: str, spec: RuleSpec) -> AlertRule:
    """Replace a rule's definition (its past alerts stay)."""
    rule = get_rule(session, rule_id)
    ok = validate(spec)
    clash = session.scalar(select(AlertRule.id).where(AlertRule.name == ok.name, AlertRule.id != rule_id))
    if clash is not None:
        raise ConflictError(f"name: a rule named {ok.name!r} exists already")
    rule.name, rule.metric, rule.dimension, rule.kind, rule.period = (ok.name, ok.metric, ok.dimension,
                                                                      ok.kind, ok.period)
    rule.params, rule.notify = dict(ok.params), [dict(t) for t in ok.notify]
    rule.cooldown_hours, rule.enabled = ok.cooldown_hours, ok.enabled
    rule.updated_at = utcnow()
    session.flush()
    return rule


def get_rule(session: Session, rule_id: str) -> AlertRule:
    """One rule, or :class:`NotFoundError`."""
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFoundError(f"alert rule {rule_id!r} not found")
    return rule


def list_rules(session: Session) -> list[AlertRule]:
    """Every rule, built-in ones first."""
    return list(session.scalars(select(AlertRule).order_by(AlertRule.builtin.is_(None), AlertRule.name)))


def delete_rule(session: Session, rule_id: str) -> None:
    """Delete a rule and its alerts."""
    session.delete(get_rule(session, rule_id))
    session.flush()


def rule_out(rule: AlertRule) -> dict[str, Any]:
    """A rule as the API answers it."""
    return {"id": rule.id, "name": rule.name, "builtin": rule.builtin, "metric": rule.metric,
            "dimension": rule.dimension, "kind": rule.kind, "period": rule.period, "params": rule.params,
            "notify": rule.notify, "cooldown_hours": rule.cooldown_hours, "enabled": rule.enabled}


@dataclass
class Evaluation:
    """What one evaluation did."""

    rules: int = 0
    findings: int = 0
    new_alerts: int = 0
    notified: int = 0
    quiet: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"rules": self.rules, "findings": self.findings, "new_alerts": self.new_alerts,
                "notified": self.notified, "quiet": self.quiet, "errors": dict(self.errors)}


def evaluate(session: Session, con: Any, *, today: date, since: date | None = None,
             rule_ids: Sequence[str] | None = None, now: datetime | None = None, exponent: int = 2,
             lang: str = "zh", console_url: str = "") -> Evaluation:
    """Judge every enabled rule (or ``rule_ids``) over the periods that ended in ``[since,
    today − 1]`` and record what fires. ``today`` is the shop-local date."""
    yesterday = today - timedelta(days=1)
    since = since or yesterday
    if since > yesterday:
        raise InvalidArgumentError(f"since: {since} is not before today ({today})")
    if (yesterday - since).days > 3 * 366:
        raise InvalidArgumentError("since: at most three years back")
    moment = now or datetime.now(UTC)
    query = select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.name)
    if rule_ids:
        query = select(AlertRule).where(AlertRule.id.in_(list(rule_ids)))
    result = Evaluation()
    memo: FrameMemo = {}
    for rule in session.scalars(query).all():
        result.rules += 1
        try:
            findings = (campaign_findings(session, con, rule, yesterday) if rule.metric == CAMPAIGN_PACE
                        else find(con, rule, since=since, yesterday=yesterday, exponent=exponent, memo=memo))
        except GrowthwheelError as exc:
            result.errors[rule.name] = exc.message
            continue
        except ibis.common.exceptions.IbisError as exc:  # a table the shop has not imported yet
            result.errors[rule.name] = str(exc)[:300]
            continue
        result.findings += len(findings)
        for finding in sorted(findings, key=lambda f: (f.period_start, f.dimension_value)):
            alert, notified = record(session, rule, finding, now=moment, lang=lang, console_url=console_url)
            if alert is not None:
                result.new_alerts += 1
                result.notified += notified
                result.quiet += not notified
    session.flush()
    return result


def shop_today(cfg: Any, now: datetime | None = None) -> date:
    """Today's date in the shop's time zone."""
    from zoneinfo import ZoneInfo

    return (now or datetime.now(UTC)).astimezone(ZoneInfo(cfg.shop().timezone)).date()


def evaluate_shop(con: Any, cfg: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """Add missing built-in rules, then :func:`evaluate` every enabled rule for ``cfg``'s shop.
    ``params``: ``today`` and ``since`` (ISO dates, optional), ``lang`` (``zh``/``en``)."""
    from growthwheel.kit.money import currency_exponent
    from growthwheel.store.db import migrate, session_scope

    def day(name: str) -> date | None:
        text = params.get(name)
        if text in (None, ""):
            return None
        try:
            return date.fromisoformat(str(text))
        except ValueError:
            raise InvalidArgumentError(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None

    today = day("today") or shop_today(cfg)
    lang = "en" if params.get("lang") == "en" else "zh"
    try:
        from growthwheel.journeys.channels import config as channels_config

        console_url = channels_config.load(cfg).public_url
    except (GrowthwheelError, OSError, ValueError):
        console_url = ""
    migrate(cfg)
    with session_scope(cfg) as session:
        ensure_builtin_rules(session)
        result = evaluate(session, con, today=today, since=day("since"), lang=lang, console_url=console_url,
                          exponent=currency_exponent(cfg.shop().currency))
        return {"today": today.isoformat(), **result.as_dict()}
