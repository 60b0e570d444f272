"""The inventory plan over a real (in-memory DuckDB) warehouse with demand of known parameters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from tests.tiny_warehouse import make_warehouse

from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.inventory import service

START = date(2024, 1, 1)
DAYS = 140
AS_OF = START + timedelta(days=DAYS - 1)


def shop() -> Any:
    """Three SKUs: FAST sells ~Poisson(10) a day, SLOW ~ once a fortnight, DEAD never; stock
    snapshots and receipts with lead times 10 and 14 days."""
    rng = np.random.default_rng(7)
    orders, lines = [], []
    n = 0
    for day in range(DAYS):
        when = START + timedelta(days=day)
        for sku, qty in (("FAST", int(rng.poisson(10))), ("SLOW", int(rng.random() < 1 / 14))):
            if qty:
                n += 1
                orders.append({"order_id": f"o{n}", "customer_id": "c", "order_date": when,
                               "ordered_at": datetime(when.year, when.month, when.day, 4, tzinfo=UTC),
                               "status": "paid", "total_amount": 100 * qty})
                lines.append({"order_id": f"o{n}", "line_no": 1, "sku": sku, "quantity": qty,
                              "line_total": 100 * qty})
    inventory = [
        {"sku": "FAST", "date": AS_OF - timedelta(days=3), "kind": "snapshot", "location": "default",
         "on_hand": 60},
        {"sku": "FAST", "date": AS_OF - timedelta(days=30), "kind": "snapshot", "location": "default",
         "on_hand": 170},
        {"sku": "FAST", "date": AS_OF - timedelta(days=60), "kind": "receipt", "location": "default",
         "received": 300, "lead_time_days": 10, "unit_cost": 2000},
        {"sku": "FAST", "date": AS_OF - timedelta(days=20), "kind": "receipt", "location": "default",
         "received": 300, "lead_time_days": 14, "unit_cost": 2000},
        {"sku": "FAST", "date": AS_OF + timedelta(days=5), "kind": "receipt", "location": "default",
         "received": 100, "lead_time_days": 12, "unit_cost": 2000},
        {"sku": "SLOW", "date": AS_OF, "kind": "snapshot", "location": "default", "on_hand": 200},
        {"sku": "DEAD", "date": AS_OF, "kind": "snapshot", "location": "north", "on_hand": 40},
    ]
    products = [{"sku": "FAST", "name": "Fast tea", "cost": 2000}, {"sku": "SLOW", "name": "Slow pot"}]
    return make_warehouse({"orders": orders, "order_lines": lines, "inventory": inventory,
                           "products": products})


@pytest.fixture(scope="module")
def con() -> Any:
    return shop()


def test_plan_numbers_follow_the_known_demand(con: Any) -> None:
    report = service.plan(con, service.PlanOptions(service_level=0.95, order_cost=5_000))
    assert report["as_of"] == AS_OF.isoformat()
    items = {it["sku"]: it for it in report["items"]}
    fast = items["FAST"]
    assert fast["daily_demand"] == pytest.approx(10, abs=1.5)
    assert fast["demand_sd"] == pytest.approx(np.sqrt(10), rel=0.35)
    assert fast["lead_time_days"] == 12  # mean of the past receipts (10 and 14); the due one not yet
    assert fast["lead_time_sd"] == pytest.approx(2.8, abs=0.1)
    # on hand: the snapshot 3 days ago minus what sold since; the receipt due in 5 days is inbound
    assert fast["inbound"] == 100
    assert 10 <= fast["on_hand"] <= 60
    # the policy numbers are the textbook formulas of the plan's own inputs
    d, sd, lead, lsd = fast["daily_demand"], fast["demand_sd"], 12.0, fast["lead_time_sd"]
    expected_ss = 1.6449 * np.sqrt(lead * sd**2 + d**2 * lsd**2)
    assert fast["safety_stock"] == pytest.approx(expected_ss, rel=0.02)
    assert fast["reorder_point"] == pytest.approx(d * lead + fast["safety_stock"], rel=0.01)
    assert fast["eoq"] == pytest.approx(np.sqrt(2 * d * 365 * 5_000 / (0.25 * 2000)), rel=0.01)
    assert fast["reorder_now"] is True
    assert fast["stockout_risk"] > 0.5  # ~140 units over 14 days against ~30 + 100
    slow = items["SLOW"]
    assert slow["clearance"]["discount_percent"] == 30  # 200 units at ~1/14 a day: years of cover
    dead = items["DEAD"]
    assert dead["daily_demand"] == 0
    assert dead["days_of_cover"] is None  # infinite
    assert dead["clearance"]["reason"] == "no_sales"
    assert {it["sku"] for it in service.slow_movers(report)} == {"SLOW", "DEAD"}
    assert [it["sku"] for it in service.at_risk(report)] == ["FAST"]
    assert report["backtest"]["mase"]["selected_holdout"] is not None


def test_weekly_plan_and_campaign_uplift(con: Any) -> None:
    weekly = service.plan(con, service.PlanOptions(grain="week", horizon=2))
    fast = next(it for it in weekly["items"] if it["sku"] == "FAST")
    assert fast["daily_demand"] == pytest.approx(10, abs=1.5)
    calm = service.plan(con, service.PlanOptions(until=AS_OF + timedelta(days=7)))
    peak = service.plan(con, service.PlanOptions(until=AS_OF + timedelta(days=7), uplift=3.0))
    risk = {r["sku"]: r["stockout_risk"] for r in calm["items"]}
    risk_peak = {r["sku"]: r["stockout_risk"] for r in peak["items"]}
    assert risk_peak["FAST"] > risk["FAST"]


def test_bad_options_and_empty_warehouse(con: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="service_level"):
        service.plan(con, service.PlanOptions(service_level=1.0))
    with pytest.raises(InvalidArgumentError, match="until"):
        service.plan(con, service.PlanOptions(as_of=AS_OF, until=AS_OF))
    with pytest.raises(InvalidArgumentError, match="as_of"):
        service.plan(con, service.PlanOptions(as_of=date(1, 1, 1)))  # no history before year 1
    with pytest.raises(NoDataError):
        service.plan(make_warehouse({}))
    assert service.clearance_definition(["B", "A", "A"], 20) == {
        "reward": {"type": "percent_off", "rate_bp": 2000}, "conditions": {"skus": ["A", "B"]}}
    with pytest.raises(InvalidArgumentError, match="discount_percent"):
        service.clearance_definition(["A"], 95)
