"""Alert rules as operators write them: what a rule may watch, its kinds, validation, built-ins.

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

Pure: no store, no warehouse (:mod:`growthwheel.alerts.service` saves rules).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from growthwheel.alerts import detect
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.insight import kpis

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
