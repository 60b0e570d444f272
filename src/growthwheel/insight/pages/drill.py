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
from datetime import date
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
