"""Metric series read from the warehouse for the rules, and the KPI frames rules share.

Rules judged together in one evaluation read each KPI frame (period, window, breakdown) once,
through a :data:`FrameMemo`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, cast

from growthwheel.alerts.rules import NEGATIVE_RATINGS, NEGATIVE_REVIEWS, RATIO_BASES
from growthwheel.insight import kpis


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


def period_windows(period: str, since: date, yesterday: date) -> list[tuple[date, date]]:
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


def _sum(values: Sequence[float | None]) -> float | None:
    """A period's count from its days (``None`` when no day has a value)."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def period_values(con: Any, metric: str, dimension: str | None, period: str, first: date, last: date,
                   exponent: int, min_base: float | None = None,
                   memo: FrameMemo | None = None) -> dict[tuple[str, date], float | None]:
    """``metric`` for every complete ``period`` between ``first`` and ``last``, by dimension value."""
    if metric == NEGATIVE_REVIEWS:
        daily = _negative_reviews(con, dimension, first, last)
        out: dict[tuple[str, date], float | None] = {}
        for key, values in daily.items():
            for start, end in period_windows(period, first, last):
                lo, hi = (start - first).days, (end - first).days
                out[(key, start)] = _sum(values[max(lo, 0):hi + 1])
        return out
    rows = _frame_rows(con, period, first, last, dimension, exponent, memo)
    found: dict[tuple[str, date], float | None] = {}
    for row in rows:
        key = "" if dimension is None else str(row.get(dimension) or kpis.NONE_LABEL)
        found[(key, row["period"])] = None if _thin(row, metric, min_base) else _float(row.get(metric))
    return found
