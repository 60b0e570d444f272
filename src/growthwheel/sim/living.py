"""The living demo: after the demo shop's history is imported, its operations team acts on it.

Everything here goes through the services the API, console and worker use (no SQL written for
the occasion), with the warehouse held by a :class:`~growthwheel.warehouse.owner.WarehouseOwner`
in this process exactly as the server holds it, so every page of the console has content on its
first open:

* **members** — members, growth and tiers from the imported history (``loyalty.history``), a
  four-tier ladder whose thresholds are the 0 / 60th / 85th / 97th percentiles of the members'
  growth (so every tier has members), and opening points balances carried over from the shop's
  old system (``loyalty.service.adjust_points``, 1 point per yuan of lifetime spend);
* **CLV scores** — BG/NBD + Gamma-Gamma fitted and stored (``insight.clv``);
* **saved segments** — three segments refreshed into the warehouse, one refreshed daily by the
  worker (``jobs.tasks.segment_schedule``);
* **promotions** — an ended Double 11 spend-X-save-Y, an ended flash sale and a running
  every-X-save-Y, each used by orders committed through the checkout (``promotions.orders``)
  during its window, so their budgets, stock and the orders show results;
* **coupon batches** — a members' coupon issued to the high-value segment and redeemed at the
  checkout by part of it, a shared new-year code, and the win-back journey's coupon;
* **an experiment** — two product-page layouts with a planned sample size, every sampled customer
  exposed through the event path, the treatment's extra orders (``sim.experiment``, a known lift)
  imported, stopped: its results page has numbers to read;
* **group buys and bargains** — a 2-person group deal with completed groups and open ones, a
  bargain offer with bargains cut by friends (``social.service``);
* **a win-back journey** — dormant customers enrolled 35 days before the history ends, a
  hold-out, a coupon and an email each through the real email channel to the demo's mail sink
  (:mod:`growthwheel.sim.mailsink`), the world's reaction (``sim.journeys``, a known effect)
  imported, and the goal checked 31 days later.

Checkout orders and the other acting facts reach the warehouse through the fact outbox
(``facts.service.drain_all``). The known effects go to ``ground_truth.json`` (``experiments`` and
``journeys.winback``) beside the shop's; ``acting`` there counts what was done. The demo's "now"
for acting is the end of its history; the running promotion and coupon batches stay valid for
30-60 days after the real today, so they show as running. Acting happens once per data
directory (the marker is the ``demo.acting`` audit entry's promotion); running the demo again
changes nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import func, select

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError
from growthwheel.store.db import migrate, session_scope
from growthwheel.warehouse.owner import WarehouseOwner

ACTOR = "growthwheel demo"
#: The ended promotion's name, also the marker that this data directory was brought to life.
MARKER_PROMOTION = "双11 满减（已结束）"
SEGMENT_HIGH_VALUE = "高价值客户"
EXPERIMENT_KEY = "pdp-gallery"
WINBACK_JOURNEY = "沉睡客户唤醒"
Say = Callable[[str], None]
#: Members per tier given an opening points balance.
POINTS_PER_TIER = 60


@dataclass
class Acted:
    """What :func:`bring_to_life` did (counts per domain; empty when it had acted before)."""

    counts: dict[str, int] = field(default_factory=dict)
    mails: int = 0
    seconds: float = 0.0

    def add(self, name: str, value: int) -> None:
        """Count ``value`` more of ``name``."""
        self.counts[name] = self.counts.get(name, 0) + value


@dataclass(frozen=True)
class _Shop:
    """What the acting reads once from the imported history."""

    end: datetime
    customers: list[str]
    products: list[tuple[str, int, str | None]]  # sku, price, category
    currency: str


def already_acted(cfg: Settings) -> bool:
    """Whether the demo's operations were done in this data directory's store."""
    from growthwheel.promotions.models import Promotion

    migrate(cfg)
    with session_scope(cfg) as session:
        found = session.scalar(
            select(func.count()).select_from(Promotion).where(Promotion.name == MARKER_PROMOTION)
        )
    return bool(found)


def bring_to_life(
    cfg: Settings, *, end: date, seed: int, mail_port: int, checkout_orders: int = 300, say: Say | None = None
) -> Acted:
    """Act on the imported demo shop (see the module docstring). ``end`` is the day after the
    history's last day; ``mail_port`` the port of the demo's mail sink on 127.0.0.1 (started here
    for the length of the run and written into ``channels.json``); ``checkout_orders`` about how
    many orders the promotions and coupons see at the checkout (a small demo for tests takes few)."""
    import time as clock

    from growthwheel.sim import mailsink

    acted = Acted()
    if already_acted(cfg):
        return acted
    started = clock.perf_counter()
    tell = say or (lambda _m: None)
    rng = np.random.default_rng(seed + 1000)
    mailsink.write_channels(cfg.data_dir, mail_port, daily_email_cap=400)
    sink = mailsink.start(cfg.data_dir, mail_port)
    owner = WarehouseOwner(cfg, flush_seconds=0.2)
    owner.start()
    try:
        shop = _read_shop(cfg, owner, end)
        tell("members, tiers and points")
        _members(cfg, owner, shop, acted)
        tell("CLV scores")
        _clv(owner, acted)
        tell("saved segments")
        high_value = _segments(cfg, owner, shop, acted)
        tell("promotions and coupons through the checkout")
        _promotions(cfg, shop, rng, acted, checkout_orders)
        _coupons(cfg, owner, shop, rng, high_value, acted, checkout_orders)
        tell("an experiment")
        _experiment(cfg, owner, shop, rng, acted)
        tell("group buys and bargains")
        _social(cfg, shop, rng, acted)
        tell("the win-back journey and its emails")
        _journey(cfg, owner, shop, seed, acted)
        from growthwheel.facts import service as facts

        drained = owner.run_serial(
            lambda: facts.drain_all(lambda: session_scope(cfg), facts.direct_importer(cfg))
        )
        acted.add("facts", drained.facts)
        _write_truth(cfg, acted)
    finally:
        owner.stop()
        acted.mails = sink.received
        sink.stop()
    acted.seconds = clock.perf_counter() - started
    return acted


# ---------------------------------------------------------------------------------------------
# What the acting reads
# ---------------------------------------------------------------------------------------------


def _read_shop(cfg: Settings, owner: WarehouseOwner, end: date) -> _Shop:
    with owner.read() as backend:
        customers = sorted(str(c) for c in backend.table("customers").customer_id.to_pyarrow().to_pylist())
        products = backend.table("products").select("sku", "price", "category").to_pyarrow().to_pylist()
    catalogue = sorted(
        (str(p["sku"]), int(p["price"]), p["category"])
        for p in products
        if p["price"] is not None and 1_000 <= int(p["price"]) <= 100_000
    )
    return _Shop(datetime.combine(end, time(0), UTC), customers, catalogue, cfg.shop().currency)


def _cart(shop: _Shop, rng: np.random.Generator, *, lines: int, order_id: str) -> list[dict[str, Any]]:
    picks = rng.choice(len(shop.products), size=lines, replace=False)
    out = []
    for n, index in enumerate(picks):
        sku, price, category = shop.products[int(index)]
        out.append(
            {
                "line_id": f"{order_id}-{n + 1}",
                "sku": sku,
                "unit_price": price,
                "quantity": int(rng.integers(1, 3)),
                **({"category": category} if category else {}),
            }
        )
    return out


def _checkout(
    cfg: Settings,
    shop: _Shop,
    *,
    order_id: str,
    customer: str,
    at: datetime,
    lines: list[dict[str, Any]],
    codes: list[str] | None = None,
) -> bool:
    """Commit one order through the checkout; ``False`` when the checkout refused it (a limit)."""
    from growthwheel.promotions import orders
    from growthwheel.promotions.schemas import OrderIn

    request = OrderIn.model_validate(
        {
            "order_id": order_id,
            "customer_id": customer,
            "lines": lines,
            "coupon_codes": codes or [],
            "channel": "小程序",
        }
    )
    try:
        with session_scope(cfg) as session:
            orders.commit(session, request, currency=shop.currency, now=at)
    except GrowthwheelError:
        return False  # e.g. the promotion's budget or the flash sale's stock ran out: the shop says no
    return True


def _moment(rng: np.random.Generator, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=float(rng.random() * (end - start).total_seconds()))


# ---------------------------------------------------------------------------------------------
# Loyalty, CLV, segments
# ---------------------------------------------------------------------------------------------


def _members(cfg: Settings, owner: WarehouseOwner, shop: _Shop, acted: Acted) -> None:
    from growthwheel.loyalty import history
    from growthwheel.loyalty import service as loyalty
    from growthwheel.loyalty.models import Member

    with owner.read() as backend:
        people, growth = history.read_history(backend, shop.end)
    totals = sorted(sum(amount for _o, _at, amount in entries) for entries in growth.values())
    if totals:  # the ladder first (no member yet: nothing to re-evaluate), then one bulk sync
        steps = [0, *(_round_nice(max(1, int(np.percentile(totals, p)))) for p in (60, 85, 97))]
        for i in range(1, len(steps)):
            steps[i] = max(steps[i], steps[i - 1] + 1)
        ladder = [
            loyalty.TierSpec("normal", "普通会员", steps[0]),
            loyalty.TierSpec("silver", "银卡会员", steps[1], points_multiplier_bp=12_000),
            loyalty.TierSpec("gold", "金卡会员", steps[2], points_multiplier_bp=15_000, free_shipping=True),
            loyalty.TierSpec("black", "黑金会员", steps[3], points_multiplier_bp=20_000, free_shipping=True),
        ]
        with session_scope(cfg) as session:
            loyalty.set_tiers(session, ladder, now=shop.end)
    synced = history.sync_members(lambda: session_scope(cfg), people, growth, shop.end)
    acted.add("members", synced.customers)
    # Opening balances carried over from the shop's old points system (1 point per yuan of
    # growth), for up to POINTS_PER_TIER members of each tier: each goes through the points
    # ledger one by one (tens of milliseconds each), so the whole membership would take long.
    with session_scope(cfg) as session:
        people_by_tier: dict[str, list[tuple[str, int]]] = {}
        for customer, grown, tier in session.execute(
            select(Member.customer_id, Member.growth, Member.tier_code)
            .where(Member.growth > 0)
            .order_by(Member.customer_id)
        ):
            people_by_tier.setdefault(str(tier), []).append((customer, int(grown)))
    chosen = [p for members in people_by_tier.values() for p in members[:POINTS_PER_TIER]]
    with session_scope(cfg) as session:
        for customer, grown in chosen:
            loyalty.adjust_points(
                session, customer, grown, shop.end - timedelta(days=1), note="旧系统积分迁入"
            )
    acted.add("members_with_opening_points", len(chosen))


def _round_nice(value: int) -> int:
    """Round a threshold to two significant digits (1,234 → 1,200)."""
    if value < 100:
        return value
    digits = len(str(value)) - 2
    return round(value, -digits)


def _clv(owner: WarehouseOwner, acted: Acted) -> None:
    from growthwheel.insight import clv

    with owner.read() as backend:
        scores = clv.compute_scores(backend, currency=owner.cfg.shop().currency)
    acted.add("clv_scores", owner.run_write(lambda con: clv.write_scores(con, scores)))


def _segments(cfg: Settings, owner: WarehouseOwner, shop: _Shop, acted: Acted) -> str:
    from growthwheel.jobs import scheduler, tasks
    from growthwheel.segments import service

    definitions: list[tuple[str, str, dict[str, Any]]] = [
        (
            SEGMENT_HIGH_VALUE,
            "近一年消费前列、预测价值高的客户",
            {
                "all": [
                    {
                        "type": "orders",
                        "measure": "count",
                        "op": ">=",
                        "value": 2,
                        "window": {"last": 12, "unit": "months"},
                    },
                    {
                        "type": "score",
                        "field": "rfm_segment",
                        "op": "in",
                        "value": ["Champions", "Loyal Customers"],
                    },
                ]
            },
        ),
        (
            "沉睡客户",
            "生命周期为沉睡的客户（唤醒旅程的对象）",
            {"all": [{"type": "score", "field": "lifecycle_stage", "op": "equals", "value": "dormant"}]},
        ),
        (
            "近 30 天新客",
            "最近 30 天首次下单的客户",
            {"all": [{"type": "score", "field": "lifecycle_stage", "op": "equals", "value": "new"}]},
        ),
    ]
    ids: list[str] = []
    with session_scope(cfg) as session:
        with owner.read() as backend:
            ctx = service.context(cfg, backend)
        for name, description, definition in definitions:
            seg = service.create_segment(
                session, name, definition, principal=None, actor_name=ACTOR, description=description
            )
            out = service.refresh_segment(
                session, seg, ctx, owner.run_write, principal=None, actor_name=ACTOR, at=shop.end
            )
            acted.add("segment_members", out.members)
            ids.append(seg.id)
        scheduler.put_schedule(
            session,
            tasks.segment_schedule(ids[0], 24 * 3600),
            now=utcnow(),
            timezone=cfg.shop().timezone,
            replace=True,
        )
    acted.add("segments", len(ids))
    return ids[0]


# ---------------------------------------------------------------------------------------------
# Promotions and coupons (orders through the checkout)
# ---------------------------------------------------------------------------------------------


def _promotions(cfg: Settings, shop: _Shop, rng: np.random.Generator, acted: Acted, orders: int) -> None:
    from growthwheel.promotions import service

    end = shop.end
    year = (end - timedelta(days=1)).year
    double11 = (datetime(year, 10, 31, 16, tzinfo=UTC), datetime(year, 11, 11, 16, tzinfo=UTC))
    if double11[1] > end:  # a history that does not reach Double 11: the last ten days
        double11 = (end - timedelta(days=40), end - timedelta(days=30))
    flash = (end - timedelta(days=20), end - timedelta(days=18))
    running = (end - timedelta(days=10), max(utcnow(), end) + timedelta(days=30))
    sku, price, _category = shop.products[len(shop.products) // 2]
    with session_scope(cfg) as session:
        made = [
            service.create_promotion(
                session,
                name=MARKER_PROMOTION,
                status="active",
                starts_at=double11[0],
                ends_at=double11[1],
                definition={"reward": {"type": "spend_tiers", "tiers": [[29_900, 3_000], [49_900, 6_000]]}},
                budget_amount=3_000_000,
                actor_name=ACTOR,
            ),
            service.create_promotion(
                session,
                name=f"限时秒杀 · {sku}",
                status="active",
                starts_at=flash[0],
                ends_at=flash[1],
                definition={
                    "reward": {"type": "flash_sale", "price": price * 7 // 10},
                    "conditions": {"skus": [sku]},
                },
                stock=60,
                actor_name=ACTOR,
            ),
            service.create_promotion(
                session,
                name="年终每满 200 减 20",
                status="active",
                starts_at=running[0],
                ends_at=running[1],
                definition={
                    "reward": {"type": "every_x_off_y", "every": 20_000, "off": 2_000, "cap": 10_000}
                },
                budget_count=5_000,
                actor_name=ACTOR,
            ),
        ]
        service.create_promotion(
            session,
            name="会员日 9 折（草稿）",
            status="draft",
            definition={
                "reward": {"type": "percent_off", "rate_bp": 1000},
                "conditions": {"tiers": ["gold", "black"]},
            },
            actor_name=ACTOR,
        )
    committed = 0
    windows = [
        (double11, "d11", orders * 3 // 10, 3),
        (flash, "flash", orders // 4, 1),
        ((running[0], end), "yearend", orders // 5, 2),
    ]
    for (start, stop), prefix, count, lines in windows:
        for n in range(count):
            order_id = f"demo-{prefix}-{n + 1:04d}"
            customer = shop.customers[int(rng.integers(len(shop.customers)))]
            cart = _cart(shop, rng, lines=lines, order_id=order_id)
            if prefix == "flash":
                cart = [{"line_id": f"{order_id}-1", "sku": sku, "unit_price": price, "quantity": 1}]
            committed += _checkout(
                cfg,
                shop,
                order_id=order_id,
                customer=customer,
                at=_moment(rng, start, min(stop, end)),
                lines=cart,
            )
    with session_scope(cfg) as session:  # the first two are over: the operator ended them
        for row_id in [row.id for row in made[:2]]:
            service.update_promotion(
                session, service.get_promotion(session, row_id), status="ended", actor_name=ACTOR
            )
    acted.add("promotions", len(made) + 1)
    acted.add("checkout_orders", committed)


def _coupons(
    cfg: Settings,
    owner: WarehouseOwner,
    shop: _Shop,
    rng: np.random.Generator,
    segment_id: str,
    acted: Acted,
    orders: int,
) -> None:
    from growthwheel.promotions import coupons, service
    from growthwheel.segments import service as segments

    end = shop.end
    until = max(utcnow(), end) + timedelta(days=60)
    with owner.read() as backend:
        members = service.segment_member_ids(backend, segment_id)
    issued_at = end - timedelta(days=20)
    with session_scope(cfg) as session:
        seg = segments.get_segment(session, segment_id)
        batch = coupons.create_batch(
            session,
            name="高价值客户专享券 满 199 减 30",
            valid_from=issued_at - timedelta(hours=1),
            valid_until=until,
            definition={
                "reward": {"type": "order_amount_off", "amount": 3_000},
                "conditions": {"min_amount": 19_900},
            },
            budget_count=max(1, len(members)),
            actor_name=ACTOR,
        )
        result = coupons.issue(
            session, batch, members, issue_key=f"segment:{seg.id}", now=issued_at, actor_name=ACTOR
        )
        shared = coupons.create_batch(
            session,
            name="新年通用码 9 折",
            valid_from=end - timedelta(days=15),
            valid_until=until,
            code_mode="shared",
            shared_code="NEWYEAR",
            budget_count=500,
            per_customer_limit=1,
            definition={"reward": {"type": "order_percent_off", "rate_bp": 1000, "cap": 5_000}},
            actor_name=ACTOR,
        )
        shared_code = shared.shared_code
    acted.add("coupons_issued", len(result.issued))
    redeemed = 0
    holders = sorted(result.issued.items())
    chosen = (
        [
            holders[int(i)]
            for i in rng.choice(
                len(holders),
                size=min(len(holders), orders * 2 // 5, max(1, len(holders) * 3 // 10)),
                replace=False,
            )
        ]
        if holders
        else []
    )
    for n, (customer, code) in enumerate(chosen):
        order_id = f"demo-coupon-{n + 1:04d}"
        cart = _cart(shop, rng, lines=3, order_id=order_id)
        redeemed += _checkout(
            cfg,
            shop,
            order_id=order_id,
            customer=customer,
            lines=cart,
            codes=[code],
            at=_moment(rng, issued_at, end),
        )
    for n in range(orders // 8):
        order_id = f"demo-newyear-{n + 1:04d}"
        customer = shop.customers[int(rng.integers(len(shop.customers)))]
        redeemed += _checkout(
            cfg,
            shop,
            order_id=order_id,
            customer=customer,
            codes=[str(shared_code)],
            lines=_cart(shop, rng, lines=2, order_id=order_id),
            at=_moment(rng, end - timedelta(days=15), end),
        )
    acted.add("coupon_batches", 2)
    acted.add("coupon_orders", redeemed)


# ---------------------------------------------------------------------------------------------
# Experiment, social selling, journey
# ---------------------------------------------------------------------------------------------


def _import(owner: WarehouseOwner, table: str, rows: pa.Table) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{table}.csv"
        pacsv.write_csv(rows, path)
        job = owner.job(owner.submit_import(table, [path]))
        if job is None or not job.wait(600) or job.status != "done" or job.result is None:
            raise GrowthwheelError(f"the demo's {table} import failed: {job.error if job else 'no job'}")
        return int(job.result.tables[table].inserted)


def _experiment(
    cfg: Settings, owner: WarehouseOwner, shop: _Shop, rng: np.random.Generator, acted: Acted
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
    _import(owner, "orders", lift.orders)
    with session_scope(cfg) as session:
        service.stop_experiment(
            session, service.get_experiment(session, EXPERIMENT_KEY), principal=None, at=stop
        )
    acted.add("experiment_units", len(units))
    acted.add("experiment_lift_orders", lift.orders.num_rows)
    _truth(
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


def _social(cfg: Settings, shop: _Shop, rng: np.random.Generator, acted: Acted) -> None:
    from growthwheel.social import service

    sku, price, _category = shop.products[len(shop.products) // 3]
    now = utcnow()
    people = [
        shop.customers[int(i)]
        for i in rng.choice(len(shop.customers), size=min(60, len(shop.customers)), replace=False)
    ]
    with session_scope(cfg) as session:
        deal = service.create_deal(
            session,
            name=f"两人拼团 · {sku}",
            sku=sku,
            currency=shop.currency,
            group_price=price * 8 // 10,
            group_size=2,
            time_limit_minutes=24 * 60,
            list_price=price,
            principal=None,
        )
        deal_id = deal.id
        offer = service.create_offer(
            session,
            name=f"好友砍价 · {sku}",
            sku=sku,
            currency=shop.currency,
            start_price=price,
            floor_price=price // 2,
            cuts=5,
            duration_minutes=48 * 60,
            principal=None,
        )
        offer_id = offer.id
    groups = bargains = 0
    with session_scope(cfg) as session:
        for k in range(8):  # six complete groups, two still waiting for a friend
            at = now - timedelta(hours=20 - 2 * k)
            group = service.open_group(session, deal_id, people[2 * k], now=at)
            if k < 6:
                service.join_group(session, group.id, people[2 * k + 1], now=at + timedelta(minutes=30))
            groups += 1
        for k in range(6):  # bargains with 1 to 5 friends' cuts (a full one reaches the floor)
            at = now - timedelta(hours=10 - k)
            bargain = service.start_bargain(session, offer_id, people[20 + k], now=at)
            session.flush()
            for j in range(k % 5 + 1):
                service.cut(
                    session,
                    bargain.id,
                    people[30 + (k * 5 + j) % 30],
                    now=at + timedelta(minutes=5 * (j + 1)),
                )
            bargains += 1
    acted.add("groups", groups)
    acted.add("bargains", bargains)


def _journey(cfg: Settings, owner: WarehouseOwner, shop: _Shop, seed: int, acted: Acted) -> None:
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
        _import(owner, "orders", rows)
    with owner.read() as backend:
        service.tick(cfg, WarehouseView(backend), now=entered + timedelta(days=truth.days + 1))
    acted.add("journey_reactivation_orders", len(orders))
    _truth(
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


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------


def _truth(cfg: Settings, path: list[str], value: dict[str, Any]) -> None:
    target = cfg.data_dir / "ground_truth.json"
    data: dict[str, Any] = json.loads(target.read_text("utf-8")) if target.exists() else {}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    target.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")


def _write_truth(cfg: Settings, acted: Acted) -> None:
    _truth(
        cfg,
        ["acting"],
        {
            **acted.counts,
            "meaning": "what the demo's operations team did through the services after the history was "
            "imported (growthwheel.sim.living); the checkout orders, the experiment's lift orders "
            "and the win-back reaction orders are in the warehouse besides the simulated history",
        },
    )


def history_end(start: date, days: int) -> date:
    """The day after the demo history's last day (its "now" for acting)."""
    return start + timedelta(days=days)
