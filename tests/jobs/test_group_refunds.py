"""The worker's group-buy expiry hands the refunds to the checkout's refund flow: the paid leader
of a failed group gets the order's money (and points) back, once, however often the job runs;
an order the checkout never saw is reported as external instead of failing the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from growthwheel.config import Settings
from growthwheel.jobs import tasks
from growthwheel.jobs.models import JobRun
from growthwheel.jobs.worker import Worker
from growthwheel.loyalty import service as loyalty
from growthwheel.promotions import orders
from growthwheel.promotions.models import CheckoutRefund
from growthwheel.promotions.schemas import OrderIn
from growthwheel.social import deals
from growthwheel.store.db import session_scope

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
EXPIRY = [s for s in tasks.DEFAULT_SCHEDULES if s.kind == "social.expire_groups"]


def _worker(cfg: Settings, at: datetime) -> Worker:
    return Worker(cfg, name="tests", clock=lambda: at, channels={}, defaults=EXPIRY)


def test_a_failed_group_refunds_its_paid_members_through_the_checkout_once(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        deal = deals.create_deal(session, principal=None, name="Oolong 拼团", sku="TEA-OOLONG",
                                   currency="CNY", list_price=9900, group_price=6900, group_size=3,
                                   time_limit_minutes=60)
        deal_id = deal.id
    with session_scope(store_cfg) as session:  # the leader pays the group price through the checkout
        order = OrderIn.model_validate({
            "order_id": "o-lead", "customer_id": "leader",
            "lines": [{"line_id": "1", "sku": "TEA-OOLONG", "unit_price": 6900, "quantity": 1},
                      {"line_id": "2", "sku": "CUP", "unit_price": 1500, "quantity": 2}]})
        committed = orders.commit(session, order, currency="CNY", now=T0)
        assert committed.order.total == 6900 + 3000
        earned = committed.order.points_earned
        group_id = deals.open_group(session, deal_id, "leader", now=T0, order_id="o-lead", paid=True).id
        deals.join_group(session, group_id, "friend", now=T0 + timedelta(minutes=5), order_id="o-ext",
                           paid=True)  # paid in the shop's own system, unknown to the checkout
    assert earned > 0

    assert _worker(store_cfg, T0 + timedelta(minutes=30)).run_once().runs[0].result == {
        "members_released_paid": 0, "refunded": 0, "amount_refunded": 0, "external_orders": []}
    late = T0 + timedelta(minutes=61)
    summary = _worker(store_cfg, late).run_once()
    [run] = summary.runs
    assert run.status == "succeeded"
    assert run.result == {"members_released_paid": 2, "refunded": 1, "amount_refunded": 6900,
                          "external_orders": ["o-ext"]}
    with session_scope(store_cfg) as session:
        refunded = orders.get_order(session, "o-lead")
        assert (refunded.status, refunded.refunded_amount) == ("partially_refunded", 6900)  # the cups stay
        refund = session.get(CheckoutRefund, f"group-{deals.group_members(session, group_id)[0].id}")
        assert refund is not None
        assert refund.amount == 6900
        # the points earned on the refunded part went back with it
        assert loyalty.balance(session, "leader") == earned - earned * 6900 // 9900

    # Later runs (and a retry after a crash) find the refund made and change nothing.
    again = _worker(store_cfg, late + timedelta(minutes=5)).run_once()
    assert again.runs[0].result is not None
    assert again.runs[0].result["refunded"] == 0
    with session_scope(store_cfg) as session:
        assert len(session.scalars(select(CheckoutRefund)).all()) == 1
        assert orders.get_order(session, "o-lead").refunded_amount == 6900
        runs = session.scalars(select(JobRun).where(JobRun.kind == "social.expire_groups")).all()
        assert {r.status for r in runs} == {"succeeded"}
