"""Rule evaluation: the periods where a rule fires, read from the warehouse (pure of the store,
but for campaign pace, whose targets live in the store).

**Which periods are judged.** Complete periods only: the shop-local day before ``today`` and
earlier; a week or month once it has ended. :func:`growthwheel.alerts.service.evaluate` judges the
periods that ended in ``[since, yesterday]`` (``since`` defaults to yesterday, so a daily run judges
one day; a first run or a back-fill passes an earlier ``since``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from growthwheel.alerts import detect
from growthwheel.alerts.models import AlertRule
from growthwheel.alerts.rules import CAMPAIGN_PACE, STOCKOUT_RISK
from growthwheel.alerts.series import FrameMemo, daily_series, period_values, period_windows
from growthwheel.insight import kpis

#: Days of history loaded before the first judged day (the detector looks back at most
#: 3 × weeks weeks for its seasonal median plus a 56-day residual window).
HISTORY_DAYS = 7 * 12 + 56


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


def _reference_window(start: date, end: date, period: str, compare: str) -> tuple[date, date]:
    if compare == "previous":
        prev_start = kpis.shift_period(start, period, -1)
        return prev_start, kpis.period_end(prev_start, period)
    if period == "month":
        year_ago = kpis.shift_period(start, "month", -12)
        return year_ago, kpis.period_end(year_ago, "month")
    return start - timedelta(days=364), end - timedelta(days=364)


def find(con: Any, rule: AlertRule, *, since: date, yesterday: date, exponent: int = 2,
         memo: FrameMemo | None = None) -> list[Finding]:
    """The periods in ``[since, yesterday]`` where ``rule`` fires (pure of the store: reads the
    warehouse only). Rules judged together share KPI frames through ``memo``."""
    params = rule.params or {}
    if rule.metric == STOCKOUT_RISK:
        return _stockout_findings(con, rule, yesterday)
    if rule.metric == CAMPAIGN_PACE:
        return []  # needs the store's campaigns: judged by service.evaluate (campaign_findings)
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
    windows = period_windows(rule.period, since, yesterday)
    if not windows:
        return out
    if rule.kind == "threshold":
        by_period = period_values(con, rule.metric, rule.dimension, rule.period, windows[0][0],
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
    found = period_values(con, rule.metric, rule.dimension, rule.period, lo, windows[-1][1], exponent,
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


def campaign_findings(session: Session, con: Any, rule: AlertRule, yesterday: date) -> list[Finding]:
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
