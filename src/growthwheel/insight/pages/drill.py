"""Drill-down from an insight page to the customers behind a count.

Each count on an insight page links to the customer list (``/customers``) filtered by a segment
definition expressing exactly that count: an RFM segment or value class is a ``score`` condition
on ``rfm_segment`` / ``rfm_class``, an R × F cell two conditions on ``r_score`` and ``f_score``, a
lifecycle stage one on ``lifecycle_stage`` — evaluated by ``segments.scores`` with the same
functions (``insight.rfm.rfm_scores``, ``insight.lifecycle.stages`` with the thresholds learned up
to the same day) as the page, as of the page's day. So the list's total equals the page's count,
and a list saved as a segment (refreshed as of that day) has as many members.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode


def customers_href(definition: dict[str, Any], as_of: date | str, label: str) -> str:
    """The customer list of ``definition`` as of ``as_of``, titled ``label``."""
    day = as_of.isoformat() if isinstance(as_of, date) else as_of
    text = json.dumps(definition, ensure_ascii=False, separators=(",", ":"))
    return "/customers?" + urlencode({"def": text, "as_of": day, "label": label})


def score_equals(field: str, value: str | int) -> dict[str, Any]:
    """A ``score`` condition: ``field`` equals ``value``."""
    return {"type": "score", "field": field, "op": "equals" if isinstance(value, str) else "=",
            "value": value}


def rfm_segment(segment: str) -> dict[str, Any]:
    """Customers in a classic RFM segment (``Champions`` …)."""
    return score_equals("rfm_segment", segment)


def rfm_class(value_class: str) -> dict[str, Any]:
    """Customers in a value class (``重要价值`` …) at the mean cut (the scores' cut)."""
    return score_equals("rfm_class", value_class)


def rfm_cell(r_score: int, f_score: int) -> dict[str, Any]:
    """Customers in one R × F cell of the heatmap."""
    return {"all": [score_equals("r_score", r_score), score_equals("f_score", f_score)]}


def lifecycle_stage(stage: str) -> dict[str, Any]:
    """Customers in a lifecycle stage as of the day."""
    return score_equals("lifecycle_stage", stage)


def _period_end(first: date, by: str) -> date:
    """The last day of the calendar month or week that starts on ``first``."""
    if by == "week":
        return first + timedelta(days=6)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def cohort_cell(cohort: Any, by: str, period_start: Any = None) -> dict[str, Any]:
    """Customers of an acquisition cohort (first paid order in the calendar month / week starting
    on ``cohort``), and with ``period_start`` those of them with a paid order in that period — the
    cohort page's retained customers of a cell (calendar periods)."""
    first = _day(cohort)
    parts: list[dict[str, Any]] = [
        {"type": "orders", "measure": "count", "op": "=", "value": 0,
         "window": {"to": (first - timedelta(days=1)).isoformat()}},
        {"type": "orders", "measure": "count", "op": ">=", "value": 1,
         "window": {"from": first.isoformat(), "to": _period_end(first, by).isoformat()}},
    ]
    if period_start is not None:
        start = _day(period_start)
        parts.append({"type": "orders", "measure": "count", "op": ">=", "value": 1,
                      "window": {"from": start.isoformat(), "to": _period_end(start, by).isoformat()}})
    return {"all": parts}


def funnel_stop(steps: list[str], window_days: int, first: date, last: date,
                reached: int) -> dict[str, Any]:
    """Customers whose furthest step of the funnel (entered between ``first`` and ``last``, with
    ``window_days`` to convert) was step ``reached``: the funnel page's "stopped here" count."""
    return {"type": "funnel", "steps": list(steps), "window_days": window_days,
            "from": first.isoformat(), "to": last.isoformat(), "reached": reached, "exact": True}
