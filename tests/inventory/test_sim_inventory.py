"""The inventory plan on the demo shop's simulated stock (``sim/stock.py``): the imported snapshots
and receipts, forecasts that beat seasonal naive on the simulated demand, the designed slow movers
and the designed supplier failure found, lead times recovered from the receipts."""

from __future__ import annotations

from typing import Any

import pytest

from growthwheel.config import Settings
from growthwheel.inventory import service
from growthwheel.sim.catalogue import CATEGORIES
from growthwheel.sim.shop import simulate, write_table
from growthwheel.warehouse import connect, ingest


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    folder = tmp_path_factory.mktemp("inventory-sim")
    shop = simulate(customers_count=3000, days=365, seed=7)
    cfg = Settings(data_dir=folder / "data", database_url=None)
    for name, suffix in (("products", ".csv"), ("order_lines", ".parquet"), ("inventory", ".csv")):
        path = folder / f"{name}{suffix}"
        write_table(shop.tables[name], path)
        assert ingest.import_files(name, [path], cfg=cfg).rows_quarantined == 0, name
    backend = connect(cfg)
    try:
        report = service.plan(backend, service.PlanOptions(service_level=0.95))
    finally:
        backend.disconnect()
    products = shop.tables["products"].to_pandas()
    category = {sku: path.split("/")[0]
                for sku, path in zip(products["sku"], products["category"], strict=True)}
    return report, shop.ground_truth["inventory"], category


def test_forecasts_beat_seasonal_naive_on_the_simulated_demand(demo: Any) -> None:
    report, _, _ = demo
    mase, rmsse = report["backtest"]["mase"], report["backtest"]["rmsse"]
    # every intermittent-demand method beats seasonal naive over all origins, by MASE and by RMSSE
    for method in ("croston", "sba", "tsb"):
        assert mase[method] < 0.9 * mase["seasonal_naive"], method
        assert rmsse[method] < 0.8 * rmsse["seasonal_naive"], method
    # the per-SKU choice, graded on the last origin only (not on the origins it was picked from):
    # clearly better by RMSSE; by MASE (which rewards forecasting zero for items that rarely sell)
    # the two are close, so only RMSSE is asserted
    assert rmsse["selected_holdout"] < 0.85 * rmsse["baseline_holdout"]


def test_designed_slow_movers_and_supplier_failure_are_found(demo: Any) -> None:
    report, truth, _ = demo
    slow = {it["sku"] for it in service.slow_movers(report)}
    assert set(truth["overstocked"]) <= slow
    items = {it["sku"]: it for it in report["items"]}
    flagged = [sku for sku in truth["at_risk_at_end"]
               if items[sku]["reorder_now"] or (items[sku]["stockout_risk"] or 0) >= 0.5]
    assert len(flagged) >= 4, [(s, items[s]["on_hand"], items[s]["reorder_point"])
                               for s in truth["at_risk_at_end"]]
    for sku in truth["at_risk_at_end"]:
        assert items[sku]["inbound"] == 0  # the supplier stopped delivering


def test_lead_times_are_recovered_from_the_receipts(demo: Any) -> None:
    report, truth, category = demo
    known = {c.zh: truth["lead_time_days"][c.name]["mean"] for c in CATEGORIES}
    errors = [abs(it["lead_time_days"] - known[category[it["sku"]]]) / known[category[it["sku"]]]
              for it in report["items"] if it["lead_time_sd"] > 0]  # SKUs with at least two receipts
    assert len(errors) >= 3  # a 3,000-customer shop restocks few SKUs twice in a year
    assert sum(errors) / len(errors) < 0.25
