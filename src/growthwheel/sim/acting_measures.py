"""The living demo's experiment and win-back journey, with their known effects (see ``sim.living``)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import select

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError
from growthwheel.sim.living import ACTOR, EXPERIMENT_KEY, WINBACK_JOURNEY, Acted, Shop
from growthwheel.sim.living import truth as record_truth
from growthwheel.store.db import session_scope
from growthwheel.warehouse.owner import WarehouseOwner

# ---------------------------------------------------------------------------------------------
# Experiment, social selling, journey
# ---------------------------------------------------------------------------------------------


def import_rows(owner: WarehouseOwner, table: str, rows: pa.Table) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{table}.csv"
        pacsv.write_csv(rows, path)
        job = owner.job(owner.submit_import(table, [path]))
        if job is None or not job.wait(600) or job.status != "done" or job.result is None:
            raise GrowthwheelError(f"the demo's {table} import failed: {job.error if job else 'no job'}")
        return int(job.result.tables[table].inserted)


def experiment(
    cfg: Settings, owner: WarehouseOwner, shop: Shop, rng: np.random.Generator, acted: Acted
) -> None:
    from growthwheel.events import service as events
    from growthwheel.experiments import service
    from growthwheel.experiments.schemas import ExperimentCreate
    from growthwheel.sim.experiment import lift_orders

    start, stop = shop.end - timedelta(days=42), shop.end - timedelta(days=1)
    size = min(len(shop.customers), 3_000)
    units = sorted(shop.customers[int(i)] for i in rng.choice(len(shop.customers), size=size, replace=False))
    body = ExperimentCreate.model_validate(
        {
            "key": EXPERIMENT_KEY,
            "name": "商品页大图画廊",
            "hypothesis": "更大的商品图让更多人下单",
            "salt": "demo-gallery",
            "planned_units": size,
            "variants": [{"name": "control", "weight": 0.5}, {"name": "gallery", "weight": 0.5}],
            "primary_metric": {"kind": "revenue"},
            "secondary_metrics": [{"kind": "orders"}, {"kind": "conversion"}],
            "guardrail_metrics": [{"kind": "refund_rate"}],
            "cuped_days": 28,
        }
    )
    pending: list[dict[str, Any]] = []
    treated: list[str] = []
    tz = ZoneInfo(cfg.shop().timezone)
    with session_scope(cfg) as session:
        exp = service.create_experiment(session, body, principal=None, actor_name=ACTOR)
        service.start_experiment(session, exp, principal=None, at=start)
        for i, customer in enumerate(units):
            found, _recorded = service.assign_and_expose(
                session,
                exp,
                customer_id=customer,
                record=pending.extend,
                at=start + timedelta(seconds=60 * i),
            )
            if found.variant == "gallery":
                treated.append(customer)
    for first in range(0, len(pending), 1000):
        events.record_events(owner, pending[first : first + 1000], tz)
    owner.flush_events()
    lift = lift_orders(
        treated,
        start=start,
        days=(stop - start).days,
        probability=0.08,
        amount=15_000,
        seed=int(rng.integers(1 << 30)),
        prefix="demo-gallery",
    )
    import_rows(owner, "orders", lift.orders)
    with session_scope(cfg) as session:
        service.stop_experiment(
            session, service.get_experiment(session, EXPERIMENT_KEY), principal=None, at=stop
        )
    acted.add("experiment_units", len(units))
    acted.add("experiment_lift_orders", lift.orders.num_rows)
    record_truth(
        cfg,
        ["experiments", EXPERIMENT_KEY],
        {
            "variant": "gallery",
            "units": len(units),
            "probability": lift.probability,
            "amount": lift.amount,
            "true_lift_revenue_per_unit": lift.revenue_per_unit,
            "true_lift_orders_per_unit": lift.orders_per_unit,
            "meaning": "each customer shown `gallery` places one extra paid order of `amount` minor units "
            "with probability `probability` during the test; control customers do not",
        },
    )


def journey(cfg: Settings, owner: WarehouseOwner, shop: Shop, seed: int, acted: Acted) -> None:
    from growthwheel.jobs import outbox
    from growthwheel.journeys import service
    from growthwheel.journeys.models import Enrolment
    from growthwheel.journeys.repository import WarehouseView
    from growthwheel.promotions import coupons
    from growthwheel.sim.journeys import Entrant, WinbackTruth, reactivation_orders

    entered = shop.end - timedelta(days=35)
    truth = WinbackTruth(base_rate=0.05, effect=0.08, amount=12_000, days=30)
    definition = {
        "trigger": {"kind": "lifecycle", "stage": "dormant"},
        "start": "coupon",
        "steps": [
            {"id": "coupon", "type": "coupon", "batch_id": "", "next": "mail"},
            {
                "id": "mail",
                "type": "send",
                "channel": "email",
                "next": "wait",
                "template": {
                    "texts": {
                        "zh": {
                            "subject": "{{ customer.name }}，好久不见",
                            "text": "我们为你留了一张回归券：{{ coupon.code }}，满 99 减 20，60 天内有效。",
                        }
                    }
                },
            },
            {"id": "wait", "type": "wait", "hours": 72, "next": "check"},
            {
                "id": "check",
                "type": "condition",
                "condition": {"kind": "ordered"},
                "then": "done",
                "else": "tag",
            },
            {"id": "tag", "type": "tag", "tag": "唤醒未回应", "next": "done"},
            {"id": "done", "type": "exit"},
        ],
        "holdout_share": 0.3,
        "backfill_days": 14,
        "goal": {"within_days": truth.days},
    }
    with session_scope(cfg) as session:
        batch = coupons.create_batch(
            session,
            name="回归券 满 99 减 20",
            valid_from=entered - timedelta(days=1),
            valid_until=max(utcnow(), shop.end) + timedelta(days=60),
            definition={
                "reward": {"type": "order_amount_off", "amount": 2_000},
                "conditions": {"min_amount": 9_900},
            },
            actor_name=ACTOR,
        )
        definition["steps"][0]["batch_id"] = batch.id  # type: ignore[index]
        row = service.create_journey(session, WINBACK_JOURNEY, definition, actor_name=ACTOR, now=entered)
        service.change_status(session, row.id, "activate", actor_name=ACTOR, now=entered)
        journey_id = row.id
    with owner.read() as backend:
        stats = service.tick(cfg, WarehouseView(backend), now=entered)
    acted.add("journey_enrolled", stats.enrolled)
    channels = outbox.configured_channels(cfg)
    while True:  # the worker's delivery, at the journey's time (the daily cap defers the rest)
        done = outbox.deliver_due(cfg, channels, worker="demo", clock=lambda: entered + timedelta(minutes=5))
        if done.claimed == 0 or done.sent == 0:
            break
    with session_scope(cfg) as session:
        entrants = [
            Entrant(c, bool(h), at if at.tzinfo else at.replace(tzinfo=UTC))
            for c, h, at in session.execute(
                select(Enrolment.customer_id, Enrolment.held_out, Enrolment.entered_at)
                .where(Enrolment.journey_id == journey_id)
                .order_by(Enrolment.customer_id)
            )
        ]
    natural = _natural_rate(owner, entrants, truth.days)
    orders = reactivation_orders(entrants, truth, seed=seed + 77, prefix="demo-winback")
    if orders:
        rows = pa.table(
            {
                "order_id": [o["order_id"] for o in orders],
                "customer_id": [o["customer_id"] for o in orders],
                "ordered_at": [o["ordered_at"].replace(tzinfo=UTC).isoformat() for o in orders],
                "paid_at": [o["ordered_at"].replace(tzinfo=UTC).isoformat() for o in orders],
                "total": [str(o["total_amount"] / 100) for o in orders],
                "status": ["paid"] * len(orders),
                "currency": [shop.currency] * len(orders),
                "item_count": ["1"] * len(orders),
            }
        )
        import_rows(owner, "orders", rows)
    with owner.read() as backend:
        service.tick(cfg, WarehouseView(backend), now=entered + timedelta(days=truth.days + 1))
    acted.add("journey_reactivation_orders", len(orders))
    record_truth(
        cfg,
        ["journeys", "winback"],
        {
            "journey": WINBACK_JOURNEY,
            "base_rate": truth.base_rate,
            "effect": truth.effect,
            "amount": truth.amount,
            "days": truth.days,
            "entrants": len(entrants),
            "natural_rate": natural,
            "true_effect_on_reactivation": truth.effect * (1 - natural),
            "true_effect_on_revenue_per_entrant": truth.revenue_per_entrant,
            "meaning": "each entrant orders once more within `days` with probability base_rate (held out) or "
            "base_rate + effect (treated), besides the orders of the simulated history; "
            "`natural_rate` is the share of entrants who ordered in the window anyway, so the "
            "effect on reactivation is effect × (1 − natural_rate) in expectation",
        },
    )


def _natural_rate(owner: WarehouseOwner, entrants: list[Any], days: int) -> float:
    """Share of entrants with a paid order of the simulated history within ``days`` of entering."""
    if not entrants:
        return 0.0
    with owner.read() as backend:
        orders = backend.table("orders")
        paid = (
            orders.filter(orders.status == "paid")
            .select("customer_id", "ordered_at")
            .to_pyarrow()
            .to_pylist()
        )
    by_customer: dict[str, list[datetime]] = {}
    for o in paid:
        by_customer.setdefault(str(o["customer_id"]), []).append(o["ordered_at"])
    hit = 0
    for e in entrants:
        at = e.entered_at.astimezone(UTC).replace(tzinfo=None)
        if any(at < t <= at + timedelta(days=days) for t in by_customer.get(e.customer_id, [])):
            hit += 1
    return hit / len(entrants)
