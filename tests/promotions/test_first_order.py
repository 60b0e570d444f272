"""A new customer's first order gets the first-order (新人) promotion when it is committed, as
``/carts/price`` showed it: the order's own id, claimed before the cart is re-priced, is not an
earlier order (before the fix the commit charged the full price)."""

from __future__ import annotations

from datetime import timedelta

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.promotions import coupons, orders, service
from growthwheel.promotions.schemas import CartIn, OrderIn
from growthwheel.store.db import session_scope

CART = {"customer_id": "fresh", "lines": [{"line_id": "1", "sku": "A", "unit_price": 10000, "quantity": 1}]}


def test_the_first_order_is_committed_at_the_first_order_price(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        service.create_promotion(session, name="新人立减", status="active", definition={
            "reward": {"type": "order_amount_off", "amount": 500}, "conditions": {"first_order_only": True}})
    with session_scope(store_cfg) as session:
        shown = service.quote(session, CartIn.model_validate(CART), currency="CNY").priced.totals.total
    with session_scope(store_cfg) as session:
        first = orders.commit(session, OrderIn.model_validate({**CART, "order_id": "o1"}), currency="CNY")
    with session_scope(store_cfg) as session:  # a retry answers the stored order, unchanged
        again = orders.commit(session, OrderIn.model_validate({**CART, "order_id": "o1"}), currency="CNY")
    with session_scope(store_cfg) as session:
        second = orders.commit(session, OrderIn.model_validate({**CART, "order_id": "o2"}), currency="CNY")
    assert (shown, first.order.total) == (9500, 9500)
    assert [a.promotion_id for a in first.order.priced.applied] != []
    assert (again.replayed, again.order.total) == (True, 9500)
    assert second.order.total == 10000  # no longer new


def test_a_first_order_coupon_alone_still_asks_whether_the_customer_ordered_before(
        store_cfg: Settings) -> None:
    """The store is asked about earlier orders only when a first-order rule is in play; a first-order
    coupon (新人券) with no first-order promotion live is such a case."""
    now = utcnow()
    with session_scope(store_cfg) as session:
        coupons.create_batch(
            session, name="新人券", code_mode="shared", shared_code="NEW5", per_customer_limit=5,
            definition={"reward": {"type": "order_amount_off", "amount": 500},
                        "conditions": {"first_order_only": True}},
            valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1))
    cart = {**CART, "customer_id": "newbie", "coupon_codes": ["NEW5"]}
    with session_scope(store_cfg) as session:
        first = orders.commit(session, OrderIn.model_validate({**cart, "order_id": "n1"}), currency="CNY")
    with session_scope(store_cfg) as session:
        second = service.quote(session, CartIn.model_validate(cart), currency="CNY").priced
    assert (first.order.total, first.order.coupons) == (9500, ["NEW5"])
    assert second.totals.total == 10000
    assert [m.code for m in second.not_applied] == ["not_first_order"]
