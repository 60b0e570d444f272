"""Limits hold under a stampede, on PostgreSQL and on SQLite: every buyer is a thread with its own
session (its own connection), all released together by a barrier, committing through the real
order service."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from promo_store import points_state

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.models import PointsLedgerEntry
from growthwheel.promotions import coupons, orders, service
from growthwheel.promotions.models import (
    CheckoutOrder,
    CouponBatch,
    CouponRedemption,
    Promotion,
)
from growthwheel.promotions.schemas import OrderIn
from growthwheel.store.db import session_scope


def stampede(cfg: Settings, requests: list[OrderIn]) -> list[Any]:
    """Commit every request at once (one thread and session each); returns answers or error codes."""
    barrier = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)

    def buy(index: int, request: OrderIn) -> None:
        barrier.wait()
        try:
            with session_scope(cfg) as session:
                results[index] = orders.commit(session, request, currency="CNY")
        except GrowthwheelError as exc:
            results[index] = exc.code
        except Exception as exc:  # reported by the assertion below, never swallowed
            results[index] = f"unexpected {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=buy, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def outcome(results: list[Any]) -> Counter[str]:
    """``ok`` for committed orders, else the error code."""
    return Counter("ok" if isinstance(r, orders.Committed) else str(r) for r in results)


def order(order_id: str, customer: str, **extra: Any) -> OrderIn:
    """An order of one 100.00 item."""
    return OrderIn(order_id=order_id, customer_id=customer,
                   lines=[{"line_id": "1", "sku": "TEA-1", "unit_price": 10000, "quantity": 1}], **extra)


def scalar(cfg: Settings, query: Callable[[], Any]) -> Any:
    """Run ``query()`` (a select) in a fresh session."""
    with session_scope(cfg) as session:
        return session.scalar(query())


def shared_batch(cfg: Settings, **limits: Any) -> str:
    """A shared code ``STAMPEDE`` (10.00 off) valid now; returns the batch id."""
    now = utcnow()
    with session_scope(cfg) as session:
        batch = coupons.create_batch(
            session, name="stampede", definition={"reward": {"type": "order_amount_off", "amount": 1000}},
            valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1), code_mode="shared",
            shared_code="STAMPEDE", **limits)
        return batch.id


def test_200_buyers_race_for_a_coupon_with_50_uses(store_cfg: Settings) -> None:
    batch_id = shared_batch(store_cfg, budget_count=50, per_customer_limit=1)
    results = stampede(store_cfg, [order(f"o{i}", f"c{i}", coupon_codes=["STAMPEDE"]) for i in range(200)])
    assert outcome(results) == {"ok": 50, "coupon_used_up": 150}
    assert all(r.order.total == 9000 for r in results if isinstance(r, orders.Committed))
    used = scalar(store_cfg, lambda: sa.select(CouponBatch.used_count).where(CouponBatch.id == batch_id))
    assert used == 50
    assert scalar(store_cfg, lambda: sa.select(sa.func.count()).select_from(CouponRedemption)) == 50
    # the failed buyers left nothing behind (their whole transaction was rolled back)
    assert scalar(store_cfg, lambda: sa.select(sa.func.count()).select_from(CheckoutOrder)) == 50


def test_flash_sale_with_10_units_and_100_buyers_makes_10_orders(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        sale = service.create_promotion(
            session, name="秒杀", definition={"reward": {"type": "flash_sale", "price": 100},
                                              "conditions": {"skus": ["TEA-1"]}},
            status="active", stock=10)
        sale_id = sale.id
    # Each buyer confirmed the flash price (1.00): after the stock is gone the cart re-prices at
    # 100.00 and the order is refused rather than charged more.
    results = stampede(store_cfg, [order(f"o{i}", f"c{i}", expected_total=100) for i in range(100)])
    counts = outcome(results)
    assert counts["ok"] == 10
    assert set(counts) <= {"ok", "flash_sale_sold_out", "price_changed"}
    assert scalar(store_cfg, lambda: sa.select(Promotion.stock_used).where(Promotion.id == sale_id)) == 10
    assert scalar(store_cfg, lambda: sa.select(sa.func.count()).select_from(CheckoutOrder)) == 10


def test_per_customer_limit_holds_when_one_customer_fires_20_orders(store_cfg: Settings) -> None:
    shared_batch(store_cfg, per_customer_limit=2)
    results = stampede(store_cfg, [order(f"o{i}", "greedy", coupon_codes=["STAMPEDE"]) for i in range(20)])
    assert outcome(results) == {"ok": 2, "coupon_used_up": 18}


def test_the_same_order_committed_20_times_at_once_counts_once(store_cfg: Settings) -> None:
    shared_batch(store_cfg, budget_count=100)
    same = order("o-dup", "alice", coupon_codes=["STAMPEDE"])
    results = stampede(store_cfg, [same] * 20)
    assert outcome(results) == {"ok": 20}
    answers = {r.order.model_dump_json() for r in results}
    assert len(answers) == 1  # every retry got the same answer
    assert sum(not r.replayed for r in results) == 1
    assert scalar(store_cfg, lambda: sa.select(sa.func.count()).select_from(CouponRedemption)) == 1
    earns = scalar(store_cfg, lambda: sa.select(sa.func.count()).where(PointsLedgerEntry.kind == "earn"))
    assert earns == 1
    assert points_state(store_cfg, "alice")["balance"] == 90  # 90.00 paid, 1 point per yuan


def test_points_are_never_overspent_by_concurrent_orders(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        loyalty.earn_points(session, "dora", 5000, utcnow() - timedelta(days=1), order_id="seed")
    # each order pays 10.00 of its 100.00 with 1000 points (1 分 each): 5 can, 15 cannot
    results = stampede(store_cfg, [order(f"o{i}", "dora", points_to_use=1000) for i in range(20)])
    counts = outcome(results)
    assert counts["ok"] == 5
    assert set(counts) == {"ok", "insufficient_points"}
    state = points_state(store_cfg, "dora")
    # 5000 - 5 × 1000 spent + 5 × 90 earned (90.00 paid each)
    assert state["balance"] == state["ledger_sum"] == state["lots_remaining"] == 450
