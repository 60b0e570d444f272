"""The living demo's promotions, coupon batches, group buys and bargains (see ``sim.living``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.sim.living import ACTOR, MARKER_PROMOTION, Acted, Shop, cart, checkout, moment
from growthwheel.store.db import session_scope
from growthwheel.warehouse.owner import WarehouseOwner

# ---------------------------------------------------------------------------------------------
# Promotions and coupons (orders through the checkout)
# ---------------------------------------------------------------------------------------------


def promotions(cfg: Settings, shop: Shop, rng: np.random.Generator, acted: Acted, orders: int) -> None:
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
            basket = cart(shop, rng, lines=lines, order_id=order_id)
            if prefix == "flash":
                basket = [{"line_id": f"{order_id}-1", "sku": sku, "unit_price": price, "quantity": 1}]
            committed += checkout(
                cfg,
                shop,
                order_id=order_id,
                customer=customer,
                at=moment(rng, start, min(stop, end)),
                lines=basket,
            )
    with session_scope(cfg) as session:  # the first two are over: the operator ended them
        for row_id in [row.id for row in made[:2]]:
            service.update_promotion(
                session, service.get_promotion(session, row_id), status="ended", actor_name=ACTOR
            )
    acted.add("promotions", len(made) + 1)
    acted.add("checkout_orders", committed)


def coupons(
    cfg: Settings,
    owner: WarehouseOwner,
    shop: Shop,
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
        basket = cart(shop, rng, lines=3, order_id=order_id)
        redeemed += checkout(
            cfg,
            shop,
            order_id=order_id,
            customer=customer,
            lines=basket,
            codes=[code],
            at=moment(rng, issued_at, end),
        )
    for n in range(orders // 8):
        order_id = f"demo-newyear-{n + 1:04d}"
        customer = shop.customers[int(rng.integers(len(shop.customers)))]
        redeemed += checkout(
            cfg,
            shop,
            order_id=order_id,
            customer=customer,
            codes=[str(shared_code)],
            lines=cart(shop, rng, lines=2, order_id=order_id),
            at=moment(rng, end - timedelta(days=15), end),
        )
    acted.add("coupon_batches", 2)
    acted.add("coupon_orders", redeemed)


def social(cfg: Settings, shop: Shop, rng: np.random.Generator, acted: Acted) -> None:
    from growthwheel.social import deals

    sku, price, _category = shop.products[len(shop.products) // 3]
    now = utcnow()
    people = [
        shop.customers[int(i)]
        for i in rng.choice(len(shop.customers), size=min(60, len(shop.customers)), replace=False)
    ]
    with session_scope(cfg) as session:
        deal = deals.create_deal(
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
        offer = deals.create_offer(
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
            group = deals.open_group(session, deal_id, people[2 * k], now=at)
            if k < 6:
                deals.join_group(session, group.id, people[2 * k + 1], now=at + timedelta(minutes=30))
            groups += 1
        for k in range(6):  # bargains with 1 to 5 friends' cuts (a full one reaches the floor)
            at = now - timedelta(hours=10 - k)
            bargain = deals.start_bargain(session, offer_id, people[20 + k], now=at)
            session.flush()
            for j in range(k % 5 + 1):
                deals.cut(
                    session,
                    bargain.id,
                    people[30 + (k * 5 + j) % 30],
                    now=at + timedelta(minutes=5 * (j + 1)),
                )
            bargains += 1
    acted.add("groups", groups)
    acted.add("bargains", bargains)
