"""The marketing-mix model against the demo shop's ground truth, on the demo's own acquisition.

The year is drawn as ``sim/shop.py`` draws the demo's (the demo's seed 7, its random streams, its
flighted budgets, 20,000 customers) and the ``ad_spend`` the demo imports: the budget with the
demo's bidding mistake (``sim/anomalies.py`` → ``cac_jump``: five days on which 抖音 paid three
times its budget and got the budget's customers). The truth is ``customers.response_truth`` — what
``ground_truth.json`` → ``acquisition.channels`` holds: elasticity ``beta``, ROAS and marginal ROAS
per yuan the shop *paid*.

Those five days break the model's assumption that every day's spend meets the same curve: fitted
with them, 抖音's elasticity came out 0.468 [0.439, 0.498] against the true 0.55 on the 50,000-
customer demo (百度 0.632 [0.583, 0.685] against 0.70 as well, through the shared demand terms).
Per day the mistake is within noise (about −2.4 standard deviations at 20,000 customers), so no
robust loss finds it (Huber, soft-L1 and Cauchy losses left 抖音 at 0.49–0.50); the alerts do
(``cac_up``). Left out with ``exclude``, as an analyst leaves out a known incident, every paid
channel's truth lies inside its 90 % interval."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pytest

from growthwheel.sim import anomalies, customers, seasons
from growthwheel.stats import mmm

SEED = 7  # the demo's
CUSTOMERS = 20_000
DAYS = 365


def _demo_year(start: date) -> dict[str, Any]:
    calendar = seasons.make_calendar(start, DAYS)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(SEED).spawn(8)]
    acq = customers.acquire(rngs[1], calendar, CUSTOMERS)  # sim/shop.py's stream for acquisition
    names = [c.name for c in customers.paid_channels()]
    paid_fen, incident = anomalies.cac_jump(acq.spend_fen, start, DAYS, names)
    assert incident is not None
    assert incident.value == "抖音"
    day = acq.acquired_at // seasons.DAY
    counts = np.column_stack([np.bincount(day[acq.channel == i], minlength=DAYS)
                              for i in np.flatnonzero(customers.PAID)]).astype(float)
    exclude = np.zeros((DAYS, len(names)), dtype=bool)
    first = (incident.first - start).days
    exclude[first:first + incident.days, names.index(incident.value)] = True
    return {"calendar": calendar, "acq": acq, "paid_fen": paid_fen, "counts": counts, "names": names,
            "exclude": exclude}


STARTS = (date(2025, 12, 6), date(2025, 1, 1), date(2025, 6, 1), date(2025, 9, 15))


def _fitted(start: date) -> dict[str, Any]:
    year = _demo_year(start)
    year["fit"] = mmm.fit(year["calendar"].dates, year["paid_fen"].astype(float), year["counts"],
                          year["names"], exclude=year["exclude"])
    return year


@pytest.fixture(scope="module")
def demos() -> list[dict[str, Any]]:
    """The demo built on 6 December 2026 (its history 6 Dec 2025 – 5 Dec 2026: the demo's history
    ends the day before it is built), then three other build days (the only four tried)."""
    return [_fitted(start) for start in STARTS]


def test_the_written_truth_is_per_yuan_paid() -> None:
    year = _demo_year(date(2025, 12, 6))
    truth = customers.describe(year["acq"], year["calendar"], year["paid_fen"])["channels"]
    douyin = truth["抖音"]
    assert douyin["spend_cny"] == pytest.approx(year["paid_fen"][:, 0].sum() / 100)
    assert douyin["spend_cny"] > douyin["budget_cny"] * 1.02  # five days at three times the budget
    assert douyin["roas_customers_per_cny"] == pytest.approx(douyin["expected_new_customers"]
                                                             / douyin["spend_cny"], rel=1e-6)
    assert truth["百度"]["spend_cny"] == truth["百度"]["budget_cny"]  # no mistake there


def _checks(year: dict[str, Any]) -> list[tuple[str, str, float, mmm.Interval]]:
    fit: mmm.Fit = year["fit"]
    assert [c.channel for c in fit.channels] == year["names"]
    assert any("left out" in note for note in fit.notes)
    out = []
    for j, ch in enumerate(fit.channels):
        keep = ~year["exclude"][:, j]
        truth = customers.response_truth(year["acq"], j, year["paid_fen"], keep)
        assert ch.spend == int(year["paid_fen"][keep, j].sum())
        per_fen = 1 / 100  # the truth is per yuan, the model per minor unit
        out += [(ch.channel, "elasticity", truth["spend_elasticity"], ch.elasticity),
                (ch.channel, "roas", truth["roas_customers_per_cny"] * per_fen, ch.roas),
                (ch.channel, "marginal_roas", truth["marginal_roas_customers_per_cny"] * per_fen,
                 ch.marginal_roas)]
        assert ch.elasticity.high - ch.elasticity.low < 0.2  # an interval that says something
    return out


def test_every_paid_channels_true_response_lies_in_its_interval_on_the_demo(
        demos: list[dict[str, Any]]) -> None:
    for channel, name, value, interval in _checks(demos[0]):
        assert interval.contains(value), (channel, name, value, interval)


def test_coverage_over_four_demo_build_days(demos: list[dict[str, Any]]) -> None:
    """90 % intervals over 4 build days × 3 channels: at least 10 of 12 hold each truth (10.8
    expected), and a miss is by less than a second half-width."""
    hits = {"elasticity": 0, "roas": 0, "marginal_roas": 0}
    for year in demos:
        for channel, name, value, interval in _checks(year):
            hits[name] += interval.contains(value)
            assert abs(value - interval.mean) < interval.high - interval.low, (channel, name)
    assert min(hits.values()) >= 10, hits


def test_leaving_the_incident_in_biases_douyin_towards_saturation(demos: list[dict[str, Any]]) -> None:
    """What the exclusion corrects, measured on the same data (the direction, not a miss: a miss
    depends on the draw)."""
    demo = demos[0]
    fit_all = mmm.fit(demo["calendar"].dates, demo["paid_fen"].astype(float), demo["counts"],
                      demo["names"])
    with_incident = fit_all.channels[0].elasticity.mean
    without = demo["fit"].channels[0].elasticity.mean
    assert with_incident < without - 0.02
