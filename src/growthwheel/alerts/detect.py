"""Pure alert decisions: thresholds, period-over-period changes and a robust seasonal detector.

No I/O here: the service feeds these functions plain lists of numbers and dates.

**The seasonal detector** (:func:`seasonal_anomalies`) is a seasonal-median forecast with a
median / MAD residual scale — the robust core of Twitter's S-H-ESD without its iterations, made for
daily shop KPIs that have a weekly pattern and shopping festivals:

1. *Forecast.* For day *t*, the seasonal median ``F_t`` is the median of the same weekday over the
   ``weeks`` previous weeks with a value (``y[t-7]``, ``y[t-14]``, …), leaving out missing values
   and festival days (looking back at most ``3 × weeks`` weeks). The median makes one bad week
   harmless.
2. *Residuals.* Over the trailing ``window`` days before *t* (festival days left out), the residuals
   ``e_s = y_s − F_s`` give a bias ``b = median(e)`` (the level drift the seasonal median lags
   behind) and a scale ``σ = 1.4826 · MAD(e)`` (the standard deviation for normal noise, robust to
   the anomalies themselves), floored at ``min_scale`` and at ``rel_floor`` × |median level| so a
   flat series does not alarm on every wobble.
3. *Score.* ``expected_t = F_t + b``; ``z_t = (y_t − expected_t) / σ``; day *t* is an anomaly when
   ``|z_t| ≥ z`` in the rule's direction (``up``, ``down`` or ``both``). The band shown beside an
   alert is ``expected ± z·σ``.

It **speaks only after two seasonal cycles**: ``F_t`` needs at least two same-weekday values, and
the scale at least ``min_residuals`` residuals (so with ``weeks=4`` a fresh shop gets its first
verdict on its 22nd day). **Festival days** (618, Double 11 … see :data:`DEFAULT_FESTIVALS`) are
neither judged nor used as history: a festival surge is expected, not an anomaly, and it must not
widen the ordinary days' band. A shop judges festivals against themselves with a threshold or a
same-period-last-year change rule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[str, ...] = ("up", "down", "both")

#: Shopping-festival windows as ((month, day) first day, (month, day) last day), inclusive: the
#: pre-sales, the peak and the days of returns right after. 双十二 and 年货节 are short.
DEFAULT_FESTIVALS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("618", (5, 25), (6, 20)),
    ("double11", (10, 20), (11, 13)),
    ("double12", (12, 10), (12, 12)),
)

#: 1 / Φ⁻¹(3/4): turns a median absolute deviation into a standard deviation for normal noise.
MAD_TO_SIGMA = 1.4826


def festival_days(first: date, last: date,
                  windows: Iterable[tuple[str, tuple[int, int], tuple[int, int]]] = DEFAULT_FESTIVALS
                  ) -> frozenset[date]:
    """Every day between ``first`` and ``last`` (inclusive) inside a festival window."""
    out: set[date] = set()
    for year in range(first.year, last.year + 1):
        for _name, (m0, d0), (m1, d1) in windows:
            day, end = date(year, m0, d0), date(year, m1, d1)
            while day <= end:
                if first <= day <= last:
                    out.add(day)
                day += timedelta(days=1)
    return frozenset(out)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


@dataclass(frozen=True)
class Finding:
    """One judged day of a series."""

    day: date
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    """The robust z-score ``(value − expected) / σ``."""
    anomaly: bool


def seasonal_anomalies(
    days: Sequence[date],
    values: Sequence[float | None],
    *,
    judge_from: date | None = None,
    direction: Direction = "both",
    z: float = 4.0,
    season: int = 7,
    weeks: int = 4,
    window: int = 56,
    min_residuals: int = 7,
    min_scale: float = 1e-9,
    rel_floor: float = 0.02,
    festivals: frozenset[date] = frozenset(),
) -> list[Finding]:
    """Judge each day of a daily series (``days`` consecutive, one value each, ``None`` = no data).

    Days before ``judge_from`` serve as history only. Returns one :class:`Finding` per day that
    could be judged (enough history, not a festival, a value present); see the module docstring.
    """
    if len(days) != len(values):
        raise ValueError("days and values must have the same length")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    if z <= 0 or season < 1 or weeks < 2 or window < season or min_residuals < 2:
        raise ValueError("z > 0, season ≥ 1, weeks ≥ 2, window ≥ season and min_residuals ≥ 2")
    for a, b in itertools.pairwise(days):
        if (b - a).days != 1:
            raise ValueError(f"days must be consecutive: {a} is followed by {b}")
    n = len(values)
    usable = [v is not None and math.isfinite(v) and days[i] not in festivals
              for i, v in enumerate(values)]

    forecast: list[float | None] = [None] * n
    for t in range(n):
        lags: list[float] = []
        for k in range(1, 3 * weeks + 1):  # skip festival weeks, looking back at most 3 × weeks
            s = t - k * season
            if s < 0 or len(lags) == weeks:
                break
            if usable[s]:
                lags.append(float(values[s]))  # type: ignore[arg-type]
        if len(lags) >= 2:
            forecast[t] = _median(lags)

    out: list[Finding] = []
    for t in range(n):
        if judge_from is not None and days[t] < judge_from:
            continue
        value, f_t = values[t], forecast[t]
        if not usable[t] or value is None or f_t is None:
            continue
        lo = max(0, t - window)
        residuals = [float(values[s]) - forecast[s]  # type: ignore[arg-type, operator]
                     for s in range(lo, t) if usable[s] and forecast[s] is not None]
        if len(residuals) < min_residuals:
            continue
        bias = _median(residuals)
        mad = _median([abs(e - bias) for e in residuals])
        level = _median([float(values[s]) for s in range(lo, t) if usable[s]])  # type: ignore[arg-type]
        sigma = max(MAD_TO_SIGMA * mad, min_scale, rel_floor * abs(level))
        expected = f_t + bias
        score = (float(value) - expected) / sigma
        flagged = (score >= z if direction == "up" else score <= -z if direction == "down"
                   else abs(score) >= z)
        out.append(Finding(day=days[t], value=float(value), expected=expected,
                           lower=expected - z * sigma, upper=expected + z * sigma, score=score,
                           anomaly=flagged))
    return out


def crosses(value: float, op: str, limit: float) -> bool:
    """A threshold rule: ``value`` compared with ``limit`` by ``op`` (``>``, ``>=``, ``<``, ``<=``)."""
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    if op == "<=":
        return value <= limit
    raise ValueError(f"op must be one of >, >=, <, <= (got {op!r})")


def relative_change(current: float, reference: float | None) -> float | None:
    """``(current − reference) / |reference|``; ``None`` without a reference or when it is zero."""
    if reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return (current - reference) / abs(reference)


def changed(current: float, reference: float | None, direction: Direction, at_least: float) -> bool:
    """A change rule: the relative change reaches ``at_least`` (a share, e.g. 0.3) upwards,
    downwards or either way."""
    change = relative_change(current, reference)
    if change is None:
        return False
    if direction == "up":
        return change >= at_least
    if direction == "down":
        return change <= -at_least
    return abs(change) >= at_least
