"""The demo shop's calendar: weekly pattern, 618 and Double 11 surges, hours of the day.

All times in the simulator are whole seconds since shop-local midnight of the first simulated day;
``day = seconds // 86400`` is the shop-local day index. The multipliers here scale *acquisition*
(new customers, prospect traffic) and ad budgets; repeat buying is deliberately left without
seasonality so that a buy-till-you-die model fitted later can recover its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

DAY = 86_400

#: Relative demand Monday..Sunday (mean 1): weekends a little busier.
WEEKLY = (0.96, 0.94, 0.95, 0.97, 1.02, 1.07, 1.09)

#: Relative share of orders by shop-local hour: a lunch bump and the evening peak (20:00-23:00).
HOURLY = (
    2.0, 1.2, 0.6, 0.3, 0.2, 0.2, 0.4, 0.8, 1.5, 2.5, 3.2, 3.5,
    3.8, 3.2, 3.0, 3.0, 3.0, 3.2, 3.5, 4.2, 5.0, 5.5, 5.2, 3.5,
)
#: On a festival's peak day this share of the day's orders lands in the midnight hour (0:00-1:00).
MIDNIGHT_RUSH = 0.3


@dataclass(frozen=True)
class Festival:
    """A shopping festival: a window of (month, day) dates that ramps up to a peak day."""

    name: str
    start: tuple[int, int]
    peak: tuple[int, int]
    peak_multiplier: float
    opening_shape: float = 0.35

    def describe(self) -> dict[str, Any]:
        """The festival's parameters for ``ground_truth.json``."""
        return {
            "name": self.name,
            "window": f"{self.start[0]:02d}-{self.start[1]:02d} to {self.peak[0]:02d}-{self.peak[1]:02d}",
            "peak": f"{self.peak[0]:02d}-{self.peak[1]:02d}",
            "peak_multiplier": self.peak_multiplier,
            "shape": (
                "multiplier = 1 + (peak_multiplier - 1) * shape; shape = 1 on the peak day, "
                f"{self.opening_shape} on the opening day, 0.12 + 0.38 * x^2 on the days between "
                "(x = share of the way from opening to peak), 0 outside the window"
            ),
        }


FESTIVALS = (
    Festival("618", start=(6, 1), peak=(6, 18), peak_multiplier=5.0),
    Festival("double11", start=(10, 20), peak=(11, 11), peak_multiplier=8.0),
)

#: Share of the festival uplift that shops add to their ad budgets (budgets rise less than demand).
SPEND_UPLIFT_SHARE = 0.5


@dataclass(frozen=True)
class Calendar:
    """Per-day arrays for the simulated period."""

    start: date
    days: int
    weekday: Array  # 0 = Monday
    festival: Array  # index into FESTIVALS, -1 outside every window
    shape: Array  # 0..1 position in the festival ramp (1 on the peak day)
    peak_day: Array  # bool: a festival's peak day
    demand: Array  # acquisition multiplier: weekly * festival

    @property
    def dates(self) -> list[date]:
        """The calendar dates of the period."""
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def campaign_suffix(self) -> list[str]:
        """Per day: ``<festival>_<year>`` inside a festival window, else ``always_on``."""
        return [
            f"{FESTIVALS[f].name}_{d.year}" if f >= 0 else "always_on"
            for f, d in zip(self.festival.tolist(), self.dates, strict=True)
        ]

    def around_peaks(self, before: int, after: int) -> Array:
        """Per day: index of the festival whose peak is within ``before``/``after`` days, else -1."""
        out = np.full(self.days, -1, dtype=np.int64)
        for peak in np.flatnonzero(self.peak_day):
            lo, hi = max(0, peak - before), min(self.days, peak + after + 1)
            out[lo:hi] = self.festival[peak]
        return out

    def spend_multiplier(self) -> Array:
        """Multiplier on the daily ad budget (weekly pattern plus part of the festival uplift)."""
        uplift = np.zeros(self.days)
        for i, fest in enumerate(FESTIVALS):
            inside = self.festival == i
            uplift[inside] = SPEND_UPLIFT_SHARE * (fest.peak_multiplier - 1.0) * self.shape[inside]
        return np.asarray(WEEKLY)[self.weekday] * (1.0 + uplift)


def make_calendar(start: date, days: int) -> Calendar:
    """Weekly pattern and festival windows for ``days`` days from ``start``."""
    dates = [start + timedelta(days=i) for i in range(days)]
    weekday = np.array([d.weekday() for d in dates], dtype=np.int64)
    festival = np.full(days, -1, dtype=np.int64)
    shape = np.zeros(days)
    for i, d in enumerate(dates):
        for f_idx, fest in enumerate(FESTIVALS):
            opening = date(d.year, *fest.start)
            peak = date(d.year, *fest.peak)
            if opening <= d <= peak:
                festival[i] = f_idx
                if d == peak:
                    shape[i] = 1.0
                elif d == opening:
                    shape[i] = fest.opening_shape
                else:
                    x = (d - opening).days / (peak - opening).days
                    shape[i] = 0.12 + 0.38 * x * x
    multiplier = np.ones(days)
    for f_idx, fest in enumerate(FESTIVALS):
        inside = festival == f_idx
        multiplier[inside] = 1.0 + (fest.peak_multiplier - 1.0) * shape[inside]
    demand = np.asarray(WEEKLY)[weekday] * multiplier
    return Calendar(
        start=start,
        days=days,
        weekday=weekday,
        festival=festival,
        shape=shape,
        peak_day=shape == 1.0,
        demand=demand,
    )


def seconds_of_day(rng: np.random.Generator, n: int, peak_day: Array | None = None) -> Array:
    """Draw ``n`` times of day (seconds after local midnight) from the hourly profile.

    Where ``peak_day`` is true, a share ``MIDNIGHT_RUSH`` of the draws falls in the first hour.
    """
    weights = np.asarray(HOURLY, dtype=float)
    hours = rng.choice(24, size=n, p=weights / weights.sum())
    if peak_day is not None:
        rush = peak_day & (rng.random(n) < MIDNIGHT_RUSH)
        hours = np.where(rush, 0, hours)
    return (hours * 3600 + rng.integers(0, 3600, size=n)).astype(np.int64)


def describe() -> dict[str, Any]:
    """Seasonality parameters for ``ground_truth.json``."""
    return {
        "applies_to": "new-customer acquisition (all channels) and prospect traffic; ad budgets "
        f"get {SPEND_UPLIFT_SHARE:.0%} of the festival uplift; repeat buying has no seasonality",
        "weekly_monday_to_sunday": list(WEEKLY),
        "festivals": [f.describe() for f in FESTIVALS],
        "hourly_share": [round(h / sum(HOURLY), 6) for h in HOURLY],
        "midnight_rush_on_peak_days": MIDNIGHT_RUSH,
    }
