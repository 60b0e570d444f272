"""The marketing-mix model against the demo simulator's known response curves and a known adstock."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from growthwheel.sim import customers, seasons
from growthwheel.stats import mmm
from growthwheel.stats.budget import Curve, allocate, evaluate


def _demo_year(seed: int, level: float = 0.9) -> dict[str, Any]:
    """A year of the demo shop's acquisition (20,000 customers, its flighted budgets) with Poisson
    counts per paid channel, the model fitted to it and the truth ``ground_truth.json`` holds."""
    calendar = seasons.make_calendar(date(2025, 1, 1), 365)
    rng = np.random.default_rng(seed)
    acq = customers.acquire(rng, calendar, 20_000)
    counts = rng.poisson(acq.expected)[:, customers.PAID]
    paid = customers.paid_channels()
    fit = mmm.fit(calendar.dates, acq.spend_fen, counts, [c.name for c in paid], level=level)
    truth = customers.describe(acq, calendar)["channels"]
    return {"acq": acq, "fit": fit, "truth": truth, "paid": paid}


@pytest.fixture(scope="module")
def demo_years() -> list[dict[str, Any]]:
    """Four independent demo years (seeds 200-203, the first four tried)."""
    return [_demo_year(seed) for seed in range(200, 204)]


def test_recovers_each_paid_channels_true_response_within_its_interval(
        demo_years: list[dict[str, Any]]) -> None:
    """90 % intervals: over 4 years × 3 paid channels, at least 10 of 12 hold the true spend
    elasticity and the true ROAS (expected 10.8), and no miss is by more than a second half-width."""
    hits = {"elasticity": 0, "roas": 0, "marginal_roas": 0}
    for year in demo_years:
        fit: mmm.Fit = year["fit"]
        for ch in fit.channels:
            truth = year["truth"][ch.channel]  # what ground_truth.json → acquisition says
            per_fen = 1 / 100  # the model's spend is in minor units, the truth's in yuan
            for name, interval, value in (
                ("elasticity", ch.elasticity, truth["spend_elasticity"]),
                ("roas", ch.roas, truth["roas_customers_per_cny"] * per_fen),
                ("marginal_roas", ch.marginal_roas, truth["marginal_roas_customers_per_cny"] * per_fen),
            ):
                hits[name] += interval.contains(value)
                assert abs(value - interval.mean) < interval.high - interval.low, (ch.channel, name)
            # Intervals that say something: elasticity to ±0.1, ROAS to ±5 %.
            assert ch.elasticity.high - ch.elasticity.low < 0.2
            assert ch.roas.high - ch.roas.low < 0.1 * ch.roas.mean
            assert ch.decay.low < 0.02  # the simulator has no carry-over
            assert ch.decay.mean < 0.3
        assert fit.r_squared > 0.9
        assert 0.7 < fit.dispersion < 1.5  # Poisson counts: the model leaves Poisson noise
    assert hits["elasticity"] >= 10, hits
    assert hits["roas"] >= 10, hits
    assert hits["marginal_roas"] >= 10, hits


@pytest.mark.parametrize("year", range(4))
def test_allocator_on_fitted_curves_beats_the_actual_split_on_true_curves(
        demo_years: list[dict[str, Any]], year: int) -> None:
    demo_year = demo_years[year]
    acq = demo_year["acq"]
    fit: mmm.Fit = demo_year["fit"]
    curves, errors = mmm.budget_curves(fit)
    assert max(errors) < 0.01  # the Hill curve of the year's total follows the model's R_c within 1 %
    actual = [int(x) for x in acq.spend_fen.sum(axis=0)]
    # The simulator's true curve of a channel's yearly spend X: expected · (X / X_observed)^beta.
    true = [Curve(c.name, "power", beta=float(acq.expected[:, customers.PAID][:, j].sum()),
                  k=float(actual[j]), s=c.beta) for j, c in enumerate(demo_year["paid"])]
    plan = allocate(curves, sum(actual), reserve_share=0.0)
    assert plan.allocated == sum(actual)
    planned = [line.spend for line in plan.lines]
    best = allocate(true, sum(actual)).outcome
    gain = evaluate(true, planned) - evaluate(true, actual)
    assert gain > 10  # more new customers for the same money, on the simulator's own curves
    assert gain > 0.5 * (best - evaluate(true, actual))  # at least half of what knowing the truth gives


def test_recovers_a_known_adstock_and_the_total_outcome_baseline() -> None:
    # Total outcome: baseline 40 a day plus two Hill channels with carry-over 0.6 and 0.
    rng = np.random.default_rng(3)
    n = 300
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(n)]
    weeks = np.arange(n) // 7
    x = np.column_stack([2e5 * (1 + 0.8 * np.sin(weeks * 1.3)) * rng.lognormal(0, 0.3, n),
                         1e5 * (1 + 0.8 * np.cos(weeks * 0.7)) * rng.lognormal(0, 0.3, n)])
    a1 = mmm.adstock(x[:, 0], 0.6)
    mu = 40 + 60 * a1 / (a1 + 2e5) + 30 * x[:, 1] / (x[:, 1] + 1e5)
    y = rng.poisson(mu)
    fit = mmm.fit(days, x, y, ["a", "b"], holidays=())
    assert fit.channels[0].decay.contains(0.6)
    assert fit.channels[0].decay.high - fit.channels[0].decay.low < 0.3
    assert fit.channels[1].decay.low < 0.02
    true_a = float((60 * a1 / (a1 + 2e5)).sum())
    assert fit.channels[0].contribution.contains(true_a)
    assert fit.baseline.contains(40.0 * n)
    curve = fit.curve(0, [0.0, float(x[:, 0].sum()), 2 * float(x[:, 0].sum())])
    assert curve["outcome"][0] == 0.0
    assert curve["low"][1] <= fit.channels[0].contribution.mean <= curve["high"][1]
    assert curve["outcome"][2] > curve["outcome"][1]


def test_weekly_data_and_holiday_columns() -> None:
    weeks = [date(2024, 1, 1) + timedelta(weeks=i) for i in range(104)]
    design, names = mmm.demand_design(weeks)
    assert design.shape[0] == 104
    assert not any(n.startswith("weekly") for n in names)
    assert {"618_window", "618_peak", "double11_window", "double11_peak"} <= set(names)
    peak = names.index("double11_peak")
    assert design[:, peak].sum() == 2  # one week with 11 November in each year
    daily = [date(2024, 11, 1) + timedelta(days=i) for i in range(30)]
    _, names = mmm.demand_design(daily)
    assert "double11+0" in names
    assert "double11-10" in names


@pytest.mark.parametrize(("dates", "spend", "outcome", "field"), [
    ([date(2024, 1, 1) + timedelta(days=2 * i) for i in range(20)], np.ones((20, 1)), np.ones(20), "dates"),
    ([date(2024, 1, 1) + timedelta(days=i) for i in range(20)], -np.ones((20, 1)), np.ones(20), "spend"),
    ([date(2024, 1, 1) + timedelta(days=i) for i in range(20)], np.ones((20, 1)), np.ones(19), "outcome"),
    ([date(2024, 1, 1) + timedelta(days=i) for i in range(20)], np.ones((20, 1)), np.zeros(20), "outcome"),
    ([date(2024, 1, 1) + timedelta(days=i) for i in range(4)], np.ones((4, 1)), np.ones(4), "dates"),
])
def test_bad_input_names_the_argument(dates: list[date], spend: Any, outcome: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        mmm.fit(dates, spend, outcome, ["a"])
