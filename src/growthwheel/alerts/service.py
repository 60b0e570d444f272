"""Alert rules, their evaluation over the warehouse, the inbox and the notifications.

**What a rule watches.** Any metric of the KPI catalogue (``insight.kpis.METRICS``), overall or
by ``channel`` / ``category`` where the metric has a meaning there, plus ``negative_reviews``
(reviews rated 1–2 per shop-local day, overall or by ``sku``).

**Kinds.**

* ``threshold`` — the period's value compared with a limit (``params``: ``op`` one of ``>``,
  ``>=``, ``<``, ``<=``; ``limit``), for days, weeks or months;
* ``change`` — the period against the previous one (``compare: previous``) or the same period a
  year before (``compare: last_year``: 364 days back for days and weeks, so weekdays line up; the
  same month of the year before for months), firing when the relative change reaches ``at_least``
  in ``direction``;
* ``anomaly`` — the robust seasonal detector of :mod:`growthwheel.alerts.detect` on the daily
  series (``params``: ``direction``, ``z``), festival days left out.

**Which periods are judged.** Complete periods only: the shop-local day before ``today`` and
earlier; a week or month once it has ended. :func:`evaluate` judges the periods that ended in
``[since, yesterday]`` (``since`` defaults to yesterday, so a daily run judges one day; a first run
or a back-fill passes an earlier ``since``).

**Once, and not too often.** An alert's ``dedup_key`` is ``rule | dimension value | period
start`` and unique in the database (``INSERT … ON CONFLICT DO NOTHING``): judging a day again, or
two workers judging it at once, records one alert. A new alert notifies (through the journey
channels' outbox, one message per configured ``{channel, recipient}``, keyed by alert) unless the
same rule and dimension value notified within its ``cooldown_hours`` — then it lands in the inbox
quietly (``notified`` false).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import ibis
from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from growthwheel.accounts.models import new_id, utcnow
from growthwheel.alerts import detect
from growthwheel.alerts.models import ALERT_STATUSES, Alert, AlertRule
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.insight import kpis
from growthwheel.store.db import insert_for

NEGATIVE_REVIEWS = "negative_reviews"
#: Probability that a SKU's stock runs out within the inventory plan's horizon (``inventory/``),
#: judged for the latest day only (a risk is about the days ahead, not a past series).
STOCKOUT_RISK = "stockout_risk"
#: A running campaign's pace (actual / expected to date, of GMV or new buyers, in its current phase
#: or overall; ``marketing/campaigns``), judged for the latest day: targets live in the store.
CAMPAIGN_PACE = "campaign_pace"
#: Ratings that count as a negative review.
NEGATIVE_RATINGS = (1, 2)
PERIODS = ("day", "week", "month")
OPS = (">", ">=", "<", "<=")
COMPARES = ("previous", "last_year")
#: Days of history loaded before the first judged day (the detector looks back at most
#: 3 × weeks weeks for its seasonal median plus a 56-day residual window).
HISTORY_DAYS = 7 * 12 + 56
MAX_NOTIFY = 10


class NotFoundError(GrowthwheelError):
    """No rule or alert with that id."""

    code = "alert_not_found"
    status = 404


class ConflictError(GrowthwheelError):
    """A name taken, or an alert someone else moved first."""

    code = "alert_conflict"
    status = 409


def metric_names() -> list[str]:
    """Every metric a rule may watch."""
    return [*kpis.METRICS, NEGATIVE_REVIEWS, STOCKOUT_RISK, CAMPAIGN_PACE]


def dimensions_for(metric: str) -> list[str | None]:
    """The breakdowns ``metric`` has a meaning for (``None``: the whole shop)."""
    if metric == NEGATIVE_REVIEWS:
        return [None, "sku"]
    if metric == STOCKOUT_RISK:
        return ["sku"]
    if metric == CAMPAIGN_PACE:
        return ["campaign"]
    spec = kpis.METRICS.get(metric)
    if spec is None:
        raise InvalidArgumentError(f"metric: unknown metric {metric!r}; choose one of: "
                                   + ", ".join(metric_names()))
    return [d for d in (None, *kpis.DIMENSIONS) if spec.applies_to(d)]


def label(metric: str, lang: str) -> str:
    """The metric's name in ``lang`` (``zh`` or ``en``)."""
    if metric == NEGATIVE_REVIEWS:
        return "差评数" if lang == "zh" else "Negative reviews"
    if metric == STOCKOUT_RISK:
        return "缺货风险" if lang == "zh" else "Stock-out risk"
    if metric == CAMPAIGN_PACE:
        return "活动进度" if lang == "zh" else "Campaign pace"
    spec = kpis.METRICS[metric]
    return spec.label_zh if lang == "zh" else spec.label_en


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """A rule as an operator writes it (validated by :func:`validate`)."""

    name: str
    metric: str
    kind: str
    dimension: str | None = None
    period: str = "day"
    params: Mapping[str, Any] = field(default_factory=dict)
    notify: Sequence[Mapping[str, str]] = ()
    cooldown_hours: int = 24
    enabled: bool = True


#: The base count of the ratio metrics a rule may guard with ``min_base``: a day (or period) whose
#: base is below it is unknown rather than judged. A channel's CAC on a day with three new buyers
#: moves by a third with one buyer more; judging it raises alarms that are only small numbers.
RATIO_BASES: dict[str, str] = {
    "cac": "new_buyers",
    "session_conversion_rate": "sessions",
    "refund_rate": "orders",
    "aov": "orders",
    "repurchase_rate": "buyers",
}


#: The plans' risks, as rules every shop starts with (notifying nobody until an operator adds a
#: recipient). Stock-out risk is the inventory plan's probability that a SKU runs out within its
#: horizon (14 days), at or above 0.8, judged for the latest day only.
#: Their sensitivities come from the demo shop (``bench/alerts_bench.py``): a channel's daily CAC
#: divides by a small count of new buyers and has a heavy right tail, so it needs z = 5 and is not
#: judged on days with fewer than five new buyers (on the 20k-customer demo year the CAC rule's
#: false alarms fell from 10 to 1, the injected CAC jump still found); a SKU's negative reviews
#: are counts near zero, so a spike needs at least five on the day.
BUILTIN_RULES: dict[str, RuleSpec] = {
    "cac_up": RuleSpec("CAC up / 获客成本上升", "cac", "anomaly", "channel",
                       params={"direction": "up", "z": 5.0, "min_base": 5}),
    "conversion_down": RuleSpec("Conversion down / 转化率下降", "session_conversion_rate", "anomaly",
                                params={"direction": "down", "z": 4.5}),
    "refund_rate_up": RuleSpec("Refund rate spike / 退款率飙升", "refund_rate", "anomaly",
                               params={"direction": "up", "z": 4.5}),
    "negative_reviews_up": RuleSpec("Negative-review spike / 差评激增", NEGATIVE_REVIEWS, "anomaly", "sku",
                                    params={"direction": "up", "z": 4.0, "min_value": 5}),
    "stockout_risk": RuleSpec("Stock-out risk / 缺货风险", STOCKOUT_RISK, "threshold", "sku",
                              params={"op": ">=", "limit": 0.8}),
    "campaign_behind": RuleSpec("Campaign behind pace / 活动进度落后", CAMPAIGN_PACE, "threshold", "campaign",
                                params={"op": "<", "limit": 0.9}),
}


def validate(spec: RuleSpec) -> RuleSpec:
    """``spec`` checked and normalised; :class:`InvalidArgumentError` naming the field otherwise."""
    name = spec.name.strip()
    if not name or len(name) > 200:
        raise InvalidArgumentError("name: 1 to 200 characters")
    dims = dimensions_for(spec.metric)
    if spec.dimension not in dims:
        allowed = ", ".join(d or "(none)" for d in dims)
        raise InvalidArgumentError(f"dimension: {spec.metric} can be broken down by {allowed}")
    if spec.kind not in ("threshold", "change", "anomaly"):
        raise InvalidArgumentError("kind: one of threshold, change, anomaly")
    if spec.metric == STOCKOUT_RISK and (spec.kind != "threshold" or spec.period != "day"):
        raise InvalidArgumentError("kind: stock-out risk rules are threshold rules on days")
    if spec.metric == CAMPAIGN_PACE and (spec.kind != "threshold" or spec.period != "day"
                                         or dict(spec.params).get("op") not in ("<", "<=")):
        raise InvalidArgumentError("kind: campaign pace rules are threshold rules on days, op < or <=")
    if spec.metric == CAMPAIGN_PACE and not 0 < _number(spec.params, "limit", None, 0.0, 1.0) < 1:
        raise InvalidArgumentError("params.limit: a pace between 0 and 1 (0.9: below 90 % of the pace)")
    if spec.period not in PERIODS:
        raise InvalidArgumentError(f"period: one of {', '.join(PERIODS)}")
    params = dict(spec.params)
    clean: dict[str, Any] = {}
    if spec.kind == "anomaly":
        if spec.period != "day":
            raise InvalidArgumentError("period: anomaly rules judge days")
        clean["direction"] = _choice(params, "direction", detect.DIRECTIONS, "both")
        clean["z"] = _number(params, "z", 4.0, 1.0, 20.0)
    elif spec.kind == "threshold":
        clean["op"] = _choice(params, "op", OPS, None)
        clean["limit"] = _number(params, "limit", None, -1e15, 1e15)
    else:
        clean["compare"] = _choice(params, "compare", COMPARES, "previous")
        clean["direction"] = _choice(params, "direction", detect.DIRECTIONS, "both")
        clean["at_least"] = _number(params, "at_least", None, 0.0, 100.0)
    if "min_value" in params:
        clean["min_value"] = _number(params, "min_value", None, 0.0, 1e15)
    if "min_base" in params:
        if spec.metric not in RATIO_BASES:
            raise InvalidArgumentError(
                f"params.min_base: only for {', '.join(sorted(RATIO_BASES))} (a ratio and its base)")
        clean["min_base"] = _number(params, "min_base", None, 0.0, 1e15)
    unknown = set(params) - set(clean)
    if unknown:
        raise InvalidArgumentError(f"params: unknown parameter {sorted(unknown)[0]!r} for a {spec.kind} rule")
    if not 0 <= spec.cooldown_hours <= 24 * 90:
        raise InvalidArgumentError("cooldown_hours: 0 to 2160")
    notify = [_target(t, i) for i, t in enumerate(spec.notify)]
    if len(notify) > MAX_NOTIFY:
        raise InvalidArgumentError(f"notify: at most {MAX_NOTIFY} recipients")
    return RuleSpec(name=name, metric=spec.metric, kind=spec.kind, dimension=spec.dimension,
                    period=spec.period, params=clean, notify=notify, cooldown_hours=spec.cooldown_hours,
                    enabled=spec.enabled)


def _choice(params: Mapping[str, Any], key: str, allowed: Iterable[str], default: str | None) -> str:
    value = params.get(key, default)
    options = tuple(allowed)
    if value not in options:
        raise InvalidArgumentError(f"params.{key}: one of {', '.join(options)}")
    return str(value)


def _number(params: Mapping[str, Any], key: str, default: float | None, lo: float, hi: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidArgumentError(f"params.{key}: a number is required")
    try:
        number = float(value)
    except ValueError:
        raise InvalidArgumentError(f"params.{key}: a number is required") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InvalidArgumentError(f"params.{key}: between {lo:g} and {hi:g}")
    return number


def _target(item: Mapping[str, str], index: int) -> dict[str, str]:
    if not isinstance(item, Mapping):
        raise InvalidArgumentError(f"notify[{index}]: an object with channel and recipient")
    channel, recipient = str(item.get("channel") or ""), str(item.get("recipient") or "").strip()
    if channel not in ("email", "wecom", "webhook", "sms"):
        raise InvalidArgumentError(f"notify[{index}].channel: one of email, wecom, webhook, sms")
    if not recipient or len(recipient) > 320:
        raise InvalidArgumentError(f"notify[{index}].recipient: 1 to 320 characters")
    if channel == "email" and "@" not in recipient:
        raise InvalidArgumentError(f"notify[{index}].recipient: an e-mail address")
    return {"channel": channel, "recipient": recipient}


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


# ---------------------------------------------------------------------------------------------
# Series from the warehouse
# ---------------------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


#: KPI frames computed during one evaluation, as rows, by (period, start, end, dimension,
#: exponent): every rule on the same breakdown and window reads one frame (the catalogue's metrics
#: come together).
FrameMemo = dict[tuple[str, date, date, str | None, int], list[dict[str, Any]]]


def _frame_rows(con: Any, period: str, start: date, end: date, dimension: str | None, exponent: int,
                memo: FrameMemo | None) -> list[dict[str, Any]]:
    key = (period, start, end, dimension, exponent)
    if memo is not None and key in memo:
        return memo[key]
    frame = kpis.kpi_frame(con, by=period, start=start, end=end, dimension=dimension,
                           currency_exponent=exponent)
    rows = cast(list[dict[str, Any]], frame.to_dict("records"))
    if memo is not None:
        memo[key] = rows
    return rows


def daily_series(con: Any, metric: str, dimension: str | None, start: date, end: date,
                 *, exponent: int = 2, min_base: float | None = None,
                 memo: FrameMemo | None = None) -> dict[str, list[float | None]]:
    """``metric`` per shop-local day from ``start`` to ``end`` (inclusive), one list per dimension
    value (``""`` without a dimension). Counts and money of a quiet day are 0; a ratio with nothing
    to divide is ``None``, and so is a ratio whose base (:data:`RATIO_BASES`) is below
    ``min_base``. Money is in major units."""
    n = (end - start).days + 1
    if n <= 0:
        return {}
    if metric == NEGATIVE_REVIEWS:
        return _negative_reviews(con, dimension, start, end)
    rows = _frame_rows(con, "day", start, end, dimension, exponent, memo)
    zero: float | None = 0.0 if kpis.METRICS[metric].unit in ("count", "money") else None
    out: dict[str, list[float | None]] = {}
    for row in rows:
        day = row["period"]
        if not isinstance(day, date) or not start <= day <= end:
            continue
        key = "" if dimension is None else str(row.get(dimension) or kpis.NONE_LABEL)
        values = out.setdefault(key, [zero] * n)
        values[(day - start).days] = None if _thin(row, metric, min_base) else _float(row.get(metric))
    return out


def _thin(row: Mapping[str, Any], metric: str, min_base: float | None) -> bool:
    """Whether ``row``'s base for ``metric`` is below ``min_base`` (too few to judge the ratio)."""
    if min_base is None or metric not in RATIO_BASES:
        return False
    base = _float(row.get(RATIO_BASES[metric]))
    return base is None or base < min_base


def _negative_reviews(con: Any, dimension: str | None, start: date, end: date
                      ) -> dict[str, list[float | None]]:
    n = (end - start).days + 1
    if "reviews" not in con.list_tables():
        return {}
    t = con.table("reviews")
    bad = t.filter(t.rating.isin(list(NEGATIVE_RATINGS)), t.review_date >= start, t.review_date <= end)
    keys = [bad.review_date] + ([bad.sku] if dimension == "sku" else [])
    rows = bad.group_by(keys).aggregate(n=bad.count()).to_pyarrow().to_pylist()
    out: dict[str, list[float | None]] = {}
    for row in rows:
        key = str(row.get("sku") or "") if dimension == "sku" else ""
        values = out.setdefault(key, [0.0] * n)
        values[(row["review_date"] - start).days] = float(row["n"])
    if dimension is None and not out:
        out[""] = [0.0] * n
    return out


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A rule's finding for one period and dimension value."""

    rule_id: str
    dimension_value: str
    period_start: date
    value: float
    reference: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float | None = None


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


def _period_windows(period: str, since: date, yesterday: date) -> list[tuple[date, date]]:
    """Complete periods (first day, last day) that ended in ``[since, yesterday]``."""
    out: list[tuple[date, date]] = []
    start = kpis.period_start(since, period)
    while True:
        end = kpis.period_end(start, period)
        if end > yesterday:
            break
        if end >= since:
            out.append((start, end))
        start = end + timedelta(days=1)
    return out


def _reference_window(start: date, end: date, period: str, compare: str) -> tuple[date, date]:
    if compare == "previous":
        prev_start = kpis.shift_period(start, period, -1)
        return prev_start, kpis.period_end(prev_start, period)
    if period == "month":
        year_ago = kpis.shift_period(start, "month", -12)
        return year_ago, kpis.period_end(year_ago, "month")
    return start - timedelta(days=364), end - timedelta(days=364)


def _sum(values: Sequence[float | None]) -> float | None:
    """A period's count from its days (``None`` when no day has a value)."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _period_values(con: Any, metric: str, dimension: str | None, period: str, first: date, last: date,
                   exponent: int, min_base: float | None = None,
                   memo: FrameMemo | None = None) -> dict[tuple[str, date], float | None]:
    """``metric`` for every complete ``period`` between ``first`` and ``last``, by dimension value."""
    if metric == NEGATIVE_REVIEWS:
        daily = _negative_reviews(con, dimension, first, last)
        out: dict[tuple[str, date], float | None] = {}
        for key, values in daily.items():
            for start, end in _period_windows(period, first, last):
                lo, hi = (start - first).days, (end - first).days
                out[(key, start)] = _sum(values[max(lo, 0):hi + 1])
        return out
    rows = _frame_rows(con, period, first, last, dimension, exponent, memo)
    found: dict[tuple[str, date], float | None] = {}
    for row in rows:
        key = "" if dimension is None else str(row.get(dimension) or kpis.NONE_LABEL)
        found[(key, row["period"])] = None if _thin(row, metric, min_base) else _float(row.get(metric))
    return found


def find(con: Any, rule: AlertRule, *, since: date, yesterday: date, exponent: int = 2,
         memo: FrameMemo | None = None) -> list[Finding]:
    """The periods in ``[since, yesterday]`` where ``rule`` fires (pure of the store: reads the
    warehouse only). Rules judged together share KPI frames through ``memo``."""
    params = rule.params or {}
    if rule.metric == STOCKOUT_RISK:
        return _stockout_findings(con, rule, yesterday)
    if rule.metric == CAMPAIGN_PACE:
        return []  # needs the store's campaigns: judged by :func:`evaluate` (_campaign_findings)
    min_value = params.get("min_value")
    min_base = None if params.get("min_base") is None else float(params["min_base"])
    out: list[Finding] = []
    if rule.kind == "anomaly":
        first = since - timedelta(days=HISTORY_DAYS)
        days = [first + timedelta(days=i) for i in range((yesterday - first).days + 1)]
        festivals = detect.festival_days(first, yesterday)
        for key, values in daily_series(con, rule.metric, rule.dimension, first, yesterday,
                                        exponent=exponent, min_base=min_base, memo=memo).items():
            for f in detect.seasonal_anomalies(days, values, judge_from=since, festivals=festivals,
                                               direction=params.get("direction", "both"),
                                               z=float(params.get("z", 4.0))):
                if f.anomaly and (min_value is None or f.value >= float(min_value)):
                    out.append(Finding(rule.id, key, f.day, f.value, f.expected, f.lower, f.upper, f.score))
        return out
    windows = _period_windows(rule.period, since, yesterday)
    if not windows:
        return out
    if rule.kind == "threshold":
        by_period = _period_values(con, rule.metric, rule.dimension, rule.period, windows[0][0],
                                   windows[-1][1], exponent, min_base, memo)
        for (key, start), value in sorted(by_period.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if value is None or not any(start == w[0] for w in windows):
                continue
            if detect.crosses(value, params["op"], float(params["limit"])):
                if min_value is None or value >= float(min_value):
                    out.append(Finding(rule.id, key, start, value, float(params["limit"])))
        return out
    compare = params.get("compare", "previous")
    refs = [_reference_window(s, e, rule.period, compare) for s, e in windows]
    lo = min(r[0] for r in refs)
    found = _period_values(con, rule.metric, rule.dimension, rule.period, lo, windows[-1][1], exponent,
                           min_base, memo)
    for (start, _end), (ref_start, _ref_end) in zip(windows, refs, strict=True):
        for (key, when), value in found.items():
            if when != start or value is None:
                continue
            reference = found.get((key, ref_start))
            if detect.changed(value, reference, params.get("direction", "both"), float(params["at_least"])):
                if min_value is None or value >= float(min_value):
                    out.append(Finding(rule.id, key, start, value, reference,
                                       score=detect.relative_change(value, reference)))
    return out



def _campaign_findings(session: Session, con: Any, rule: AlertRule, yesterday: date) -> list[Finding]:
    """Campaigns running on ``yesterday`` whose pace (GMV or new buyers, in the current phase or
    overall) crosses the rule's limit; the dimension value names campaign, metric and phase."""
    from growthwheel.marketing.campaigns import signals

    params = rule.params or {}
    out: list[Finding] = []
    limit = float(params["limit"])
    # The signal's "behind" is pace < 1 − tolerance: ask a hair wider, then judge the rule exactly.
    for item in signals.behind_pace(session, con, as_of=yesterday, tolerance=max(1e-9, 1 - limit - 1e-9)):
        pace = item.get("pace")
        if pace is None or not detect.crosses(float(pace), params["op"], limit):
            continue
        key = " · ".join(str(part) for part in (item["campaign"], item["metric"], item["phase"]) if part)
        out.append(Finding(rule.id, key[:200], yesterday, float(pace), limit))
    return out


def _stockout_findings(con: Any, rule: AlertRule, yesterday: date) -> list[Finding]:
    """SKUs whose probability of running out within the inventory plan's horizon, as of
    ``yesterday``, crosses the rule's limit (none without sales or stock)."""
    from growthwheel.errors import NoDataError
    from growthwheel.inventory import service as inventory

    params = rule.params or {}
    try:
        report = inventory.plan(con, inventory.PlanOptions(as_of=yesterday))
    except NoDataError:
        return []
    out: list[Finding] = []
    for item in report["items"]:
        risk = item["stockout_risk"]
        if risk is not None and detect.crosses(risk, params["op"], float(params["limit"])):
            out.append(Finding(rule.id, item["sku"], yesterday, risk, float(params["limit"])))
    return out


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
            findings = (_campaign_findings(session, con, rule, yesterday) if rule.metric == CAMPAIGN_PACE
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


# ---------------------------------------------------------------------------------------------
# Inbox
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Words and links
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# One evaluation of the shop (the worker's job, the CLI, the API)
# ---------------------------------------------------------------------------------------------


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


def rule_out(rule: AlertRule) -> dict[str, Any]:
    """A rule as the API answers it."""
    return {"id": rule.id, "name": rule.name, "builtin": rule.builtin, "metric": rule.metric,
            "dimension": rule.dimension, "kind": rule.kind, "period": rule.period, "params": rule.params,
            "notify": rule.notify, "cooldown_hours": rule.cooldown_hours, "enabled": rule.enabled}


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
