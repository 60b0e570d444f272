"""The living demo's members, tiers and points, CLV scores and saved segments (see ``sim.living``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.sim.living import ACTOR, POINTS_PER_TIER, SEGMENT_HIGH_VALUE, Acted, Shop
from growthwheel.store.db import session_scope
from growthwheel.warehouse.owner import WarehouseOwner

# ---------------------------------------------------------------------------------------------
# Loyalty, CLV, segments
# ---------------------------------------------------------------------------------------------


def members(cfg: Settings, owner: WarehouseOwner, shop: Shop, acted: Acted) -> None:
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


def clv(owner: WarehouseOwner, acted: Acted) -> None:
    from growthwheel.insight import clv

    with owner.read() as backend:
        scores = clv.compute_scores(backend, currency=owner.cfg.shop().currency)
    acted.add("clv_scores", owner.run_write(lambda con: clv.write_scores(con, scores)))


def segments(cfg: Settings, owner: WarehouseOwner, shop: Shop, acted: Acted) -> str:
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
