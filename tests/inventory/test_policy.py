"""Safety stock, reorder point and EOQ against worked examples from operations-management texts."""

from __future__ import annotations

import math

import pytest

from growthwheel.inventory import policy


def test_safety_stock_and_reorder_point_for_a_cycle_service_level() -> None:
    # Chopra & Meindl, *Supply Chain Management* (Pearson), "Evaluating safety inventory given a
    # desired cycle service level": weekly demand N(2,500, 500), lead time 2 weeks, CSL 90 %
    # → σL = 707, safety inventory = NORMSINV(0.9) × 707 = 906, ROP = 5,000 + 906 = 5,906.
    ss = policy.safety_stock(0.90, demand_sd=500, lead_time=2)
    assert policy.lead_time_demand_sd(500, 2) == pytest.approx(707.1, abs=0.1)
    assert round(ss) == 906
    assert round(policy.reorder_point(2500, 2, ss)) == 5906


def test_safety_stock_with_lead_time_variability() -> None:
    # Chopra & Meindl, "Impact of lead time uncertainty on safety inventory" (Dell): daily demand
    # N(2,500, 500), lead time 7 days with sd 7 days, CSL 90 % → σL = 17,550, safety inventory 22,491.
    sd = policy.lead_time_demand_sd(500, 7, demand_mean=2500, lead_time_sd=7)
    assert round(sd, -1) == 17550
    ss = policy.safety_stock(0.90, demand_sd=500, lead_time=7, demand_mean=2500, lead_time_sd=7)
    assert round(ss) == 22491


def test_safety_stock_for_95_percent_service() -> None:
    # Heizer & Render, *Operations Management*, Chapter 12, Memphis Regional Hospital: lead-time
    # demand mean 350 kits, σ 10, 95 % service, Z = 1.65 (table value) → safety stock 16.5, ROP 366.5.
    ss = policy.safety_stock(0.95, demand_sd=10, lead_time=1)
    assert ss == pytest.approx(16.5, abs=0.06)  # exact z = 1.6449 gives 16.45
    assert policy.reorder_point(350, 1, ss) == pytest.approx(366.5, abs=0.06)


def test_reorder_point_without_safety_stock() -> None:
    # Heizer & Render, Electronic Assembler: 8,000 units a year over 250 working days, lead time
    # 3 days → d = 32 a day, ROP = 96 units.
    assert policy.reorder_point(8000 / 250, 3, 0.0) == 96


def test_eoq_matches_textbook_answers() -> None:
    # Heizer & Render, Sharp Inc.: D = 1,000 needles a year, S = $10 an order, H = $0.50 → Q* = 200.
    # Money in minor units (cents): the answer is unchanged.
    assert policy.eoq(1000, 1000, 50) == pytest.approx(200.0)
    # Chopra & Meindl, Best Buy (HP computers): D = 12,000 a year, S = $4,000, h = 20 % of C = $500
    # → EOQ = 980.
    assert round(policy.eoq(12_000, 4_000, 0.2 * 500)) == 980


def test_cover_turnover_and_risk() -> None:
    assert policy.days_of_cover(120, 4) == 30
    assert policy.days_of_cover(10, 0) == math.inf
    assert policy.days_of_cover(0, 3) == 0
    # cost of goods sold 1,200,000 over average inventory 200,000 → 6 turns, ~61 days in a year
    turns = policy.turnover(1_200_000, 200_000)
    assert turns == 6
    assert policy.days_in_inventory(365, turns) == pytest.approx(60.83, abs=0.01)
    # demand over the window N(100, 20): 100 available → about half; 140 → ~2 %
    assert policy.stockout_probability(100, 100, 20) == pytest.approx(0.49, abs=0.01)
    assert policy.stockout_probability(140, 100, 20) == pytest.approx(0.0202, abs=0.002)
    assert policy.stockout_probability(0, 5, 1) == 1.0


def test_clearance_suggestions() -> None:
    assert policy.clearance(50, 1, target_days=60) is None
    mild = policy.clearance(100, 1, target_days=60)
    assert mild is not None
    assert (mild.discount_percent, mild.excess_units, mild.reason) == (10, 40, "excess_cover")
    dead = policy.clearance(30, 0, target_days=60, days_since_sale=90)
    assert dead is not None
    assert (dead.discount_percent, dead.excess_units, dead.reason) == (30, 30, "no_sales")


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_service_level_out_of_range(level: float) -> None:
    with pytest.raises(ValueError, match="service_level"):
        policy.z_value(level)
