"""Checkout and referral together: committing a referred customer's first order through
``POST /api/v1/orders``' service starts the referral's window, an order shipped to the inviter's
address cancels it, and a refund of the qualifying order inside the window cancels it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from growthwheel.config import Settings
from growthwheel.promotions import orders
from growthwheel.promotions.schemas import OrderIn, RefundIn
from growthwheel.social import service
from growthwheel.social.models import Referral
from growthwheel.store.db import session_scope

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
INVITER = {"phone": "13800138000", "address": "上海市浦东新区世纪大道100号", "device": "dev-alice"}


def _referred(cfg: Settings, invitee: str) -> None:
    with session_scope(cfg) as session:
        code = service.invite_code(session, "alice", now=T0, **INVITER).code
    with session_scope(cfg) as session:
        assert service.bind(session, invitee, code, now=T0 + timedelta(hours=1)).bound


def _order(order_id: str, customer: str, **contact: str) -> OrderIn:
    return OrderIn.model_validate({
        "order_id": order_id, "customer_id": customer,
        "lines": [{"line_id": "1", "sku": "tea", "unit_price": 5000, "quantity": 2}], **contact})


def _status(cfg: Settings, invitee: str) -> tuple[str, str | None, str | None]:
    with session_scope(cfg) as session:
        row = session.scalar(select(Referral).where(Referral.invitee_id == invitee))
        assert row is not None
        return row.status, row.cancel_reason, row.first_order_id


def test_checkout_starts_and_a_refund_in_the_window_cancels_the_referral(store_cfg: Settings) -> None:
    _referred(store_cfg, "bob")
    paid = T0 + timedelta(days=1)
    with session_scope(store_cfg) as session:
        done = orders.commit(session, _order("o-bob-1", "bob", contact_phone="13900001111",
                                             device_id="dev-bob"), currency="CNY", now=paid)
    assert done.order.total == 10000
    assert _status(store_cfg, "bob") == ("pending", None, "o-bob-1")
    with session_scope(store_cfg) as session:  # a second order changes nothing
        orders.commit(session, _order("o-bob-2", "bob"), currency="CNY", now=paid + timedelta(hours=1))
    assert _status(store_cfg, "bob") == ("pending", None, "o-bob-1")
    with session_scope(store_cfg) as session:  # half the qualifying order back on day 3 of 7
        refund = orders.refund(session, "o-bob-1", RefundIn.model_validate(
            {"refund_id": "r1", "lines": [{"line_id": "1", "quantity": 1}]}), now=paid + timedelta(days=3))
    assert refund.amount == 5000
    assert _status(store_cfg, "bob") == ("cancelled", "refunded_in_window", "o-bob-1")
    with session_scope(store_cfg) as session:
        assert service.settle_referrals(session, paid + timedelta(days=30)).rewarded == []


def test_an_order_shipped_to_the_inviter_is_a_self_referral(store_cfg: Settings) -> None:
    _referred(store_cfg, "mallory")
    with session_scope(store_cfg) as session:
        orders.commit(session, _order("o-m-1", "mallory", shipping_address="上海市浦东新区 世纪大道100号"),
                      currency="CNY", now=T0 + timedelta(days=1))
    assert _status(store_cfg, "mallory") == ("cancelled", "same_address", "o-m-1")
