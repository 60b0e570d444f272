"""On the demo shop: an experiment with a known injected effect is found, with its confidence
interval covering the truth, and an A/A experiment on the same shop finds nothing.

Everything goes through the real paths: the demo shop is simulated and imported, the customers
are assigned by ``service.assign_and_expose`` whose exposures go through the event service into
the server's warehouse owner, the treatment's extra orders (``sim.experiment.lift_orders``: each
treated customer buys one extra ¥100 order with probability 0.3, so the true lift is exactly 3,000
minor units of revenue and 0.3 orders per customer in expectation) are imported as an ``orders``
file by the owner, and the results are read back with ``service.results``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.csv as pacsv
import pytest

from growthwheel.config import Settings
from growthwheel.events import service as events_service
from growthwheel.experiments import service
from growthwheel.experiments.schemas import ExperimentCreate
from growthwheel.sim.demo import build_demo
from growthwheel.sim.experiment import lift_orders
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse.owner import WarehouseOwner

START = datetime(2025, 3, 1, tzinfo=UTC)  # the demo's history runs Jan 1 – Apr 30, 2025
END = datetime(2025, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, WarehouseOwner, list[str]]]:
    data = tmp_path_factory.mktemp("demo-experiment")
    cfg = Settings(data_dir=data, database_url=None)
    build_demo(cfg, customers=2000, days=120, seed=5, start=date(2025, 1, 1))
    migrate(cfg)
    owner = WarehouseOwner(cfg, flush_seconds=0.2)
    owner.start()
    with owner.read() as backend:
        customers = sorted(str(c) for c in backend.table("customers").customer_id.to_pyarrow().to_pylist())
    try:
        yield cfg, owner, customers
    finally:
        owner.stop()


def run_experiment(cfg: Settings, owner: WarehouseOwner, customers: list[str], key: str) -> dict[str, str]:
    """Create and start ``key`` at START, expose every customer once (in the first day), stop at END."""
    body = ExperimentCreate.model_validate({
        "key": key, "name": key, "salt": key,  # a fixed salt: the same split on every run
        "variants": [{"name": "control", "weight": 0.5}, {"name": "b", "weight": 0.5}],
        "primary_metric": {"kind": "revenue"},
        "secondary_metrics": [{"kind": "orders"}, {"kind": "conversion"}],
        "guardrail_metrics": [{"kind": "refund_rate"}], "cuped_days": 28, "planned_units": len(customers),
    })
    tz = ZoneInfo(cfg.shop().timezone)
    pending: list[dict[str, Any]] = []
    assigned: dict[str, str] = {}
    with session_scope(cfg) as session:
        exp = service.create_experiment(session, body, principal=None, actor_name="test")
        service.start_experiment(session, exp, principal=None, at=START)
        for i, customer in enumerate(customers):
            found, recorded = service.assign_and_expose(
                session, exp, customer_id=customer, record=pending.extend,
                at=START + timedelta(seconds=30 * i),
            )
            assert recorded
            assert found.variant is not None
            assigned[customer] = found.variant
        for first in range(0, len(pending), 1000):
            events_service.record_events(owner, pending[first:first + 1000], tz)
        service.stop_experiment(session, exp, principal=None, at=END)
    owner.flush_events()
    return assigned


def results(cfg: Settings, owner: WarehouseOwner, key: str) -> dict[str, Any]:
    with session_scope(cfg) as session, owner.read() as backend:
        return service.results(backend, service.get_experiment(session, key))


def metric(found: dict[str, Any], label: str) -> dict[str, Any]:
    entry = next(m for m in found["metrics"] if m["label"] == label)
    assert "error" not in entry, entry.get("error")
    comparison: dict[str, Any] = entry["comparisons"][0]
    return comparison


def test_a_known_lift_is_found_and_an_aa_test_is_not(
    shop: tuple[Settings, WarehouseOwner, list[str]], tmp_path: Path
) -> None:
    cfg, owner, customers = shop
    assigned = run_experiment(cfg, owner, customers, "demo-lift")
    treated = [c for c, v in assigned.items() if v == "b"]
    lift = lift_orders(treated, start=START, days=(END - START).days, probability=0.3, amount=10_000, seed=11)
    path = tmp_path / "lift_orders.csv"
    pacsv.write_csv(lift.orders, path)
    job = owner.job(owner.submit_import("orders", [path]))
    assert job is not None
    assert job.wait(120)
    assert job.status == "done", job.error
    assert job.result is not None
    assert job.result.rows_quarantined == 0
    assert job.result.tables["orders"].inserted == lift.orders.num_rows

    found = results(cfg, owner, "demo-lift")
    assert found["status"]["units"] == len(customers)
    assert found["status"]["srm"]["mismatch"] is False
    assert [w["code"] for w in found["warnings"]] == []  # stopped, balanced, no guardrail harm
    revenue = metric(found, "revenue")
    assert revenue["significant"] is True
    assert revenue["absolute"]["ci_lower"] <= lift.revenue_per_unit <= revenue["absolute"]["ci_upper"]
    assert revenue["absolute"]["ci_lower"] > 0
    orders = metric(found, "orders")
    assert orders["significant"] is True
    assert orders["absolute"]["ci_lower"] <= lift.orders_per_unit <= orders["absolute"]["ci_upper"]

    # A/A on the same shop (another salt splits the treated customers evenly): nothing to find.
    run_experiment(cfg, owner, customers, "demo-aa")
    aa = results(cfg, owner, "demo-aa")
    for label in ("revenue", "orders", "conversion"):
        comparison = metric(aa, label)
        assert comparison["significant"] is False, label
        assert comparison["absolute"]["ci_lower"] <= 0 <= comparison["absolute"]["ci_upper"], label
