"""Coupons: unguessable codes with a check character, batches, issuing, limits and release rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from promo_store import at
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.promotions import coupons, orders
from growthwheel.promotions.errors import CouponNotApplicableError, CouponNotFoundError, CouponUsedUpError
from growthwheel.promotions.models import CouponBatch
from growthwheel.promotions.schemas import OrderIn, RefundIn
from growthwheel.store.db import session_scope

TEN_OFF = {"reward": {"type": "order_amount_off", "amount": 1000}}


def test_generated_codes_are_unambiguous_unique_and_self_checking() -> None:
    codes = {coupons.generate_code() for _ in range(5000)}
    assert len(codes) == 5000
    assert all(len(c) == 13 and coupons.well_formed(c) for c in codes)
    assert not set("".join(codes)) & set("01ILO")
    # Every single mistyped character is caught by the check character, at every position.
    code = sorted(codes)[0]
    for position in range(len(code)):
        for char in coupons.ALPHABET:
            if char != code[position]:
                assert not coupons.well_formed(code[:position] + char + code[position + 1:])
    # ... and so is every swap of two different neighbours in the random part.
    for position in range(len(code) - 2):
        if code[position] != code[position + 1]:
            swapped = code[:position] + code[position + 1] + code[position] + code[position + 2:]
            assert not coupons.well_formed(swapped)
    assert coupons.normalize_code(f" {code[:4].lower()}-{code[4:8]} {code[8:]} ") == code


@pytest.fixture
def session(store_cfg: Settings) -> Iterator[Session]:
    with session_scope(store_cfg) as s:
        yield s


def batch(session: Session, **extra: Any) -> CouponBatch:
    now = utcnow()
    args: dict[str, Any] = {"name": "ten off", "definition": TEN_OFF, "valid_from": now - timedelta(days=1),
                            "valid_until": now + timedelta(days=30)}
    return coupons.create_batch(session, **{**args, **extra})


def test_bad_batches_are_refused_naming_the_field(session: Session) -> None:
    with pytest.raises(InvalidArgumentError, match=r"reward\.type: 'percent_off' is an item reward"):
        batch(session, definition={"reward": {"type": "percent_off", "rate_bp": 1000}})
    with pytest.raises(InvalidArgumentError, match="valid_until: must be after valid_from"):
        batch(session, valid_until=utcnow() - timedelta(days=2))
    with pytest.raises(InvalidArgumentError, match=r"definition\.reward\.spend_tiers\.tiers"):
        batch(session, definition={"reward": {"type": "spend_tiers", "tiers": []}})
    with pytest.raises(InvalidArgumentError, match=r"SpendTiers\.tiers: thresholds must increase"):
        batch(session, definition={"reward": {"type": "spend_tiers", "tiers": [[300, 50], [200, 20]]}})
    batch(session, code_mode="shared", shared_code="spring-10")
    with pytest.raises(InvalidArgumentError, match="shared_code: 'SPRING10' is taken"):  # same code
        batch(session, code_mode="shared", shared_code="SPRING-10")


def test_issuing_twice_under_one_key_serves_each_customer_once(session: Session) -> None:
    b = batch(session)
    first = coupons.issue(session, b, ["alice", "bob"], issue_key="segment:s1")
    assert sorted(first.issued) == ["alice", "bob"]
    assert first.already == []
    again = coupons.issue(session, b, ["bob", "carol"], issue_key="segment:s1")
    assert list(again.issued) == ["carol"]
    assert again.already == ["bob"]
    assert len(set(first.issued.values()) | set(again.issued.values())) == 3
    assert b.issued_count == 3
    with pytest.raises(InvalidArgumentError, match="shared code is not issued"):
        coupons.issue(session, batch(session, code_mode="shared", shared_code="ALL10"), ["dan"])


def test_codes_are_checked_at_checkout(session: Session) -> None:
    b = batch(session)
    code = coupons.issue(session, b, ["alice"]).issued["alice"]
    now = utcnow()
    with pytest.raises(CouponNotApplicableError, match="issued to another customer"):
        coupons.resolve(session, [code], "bob", now)
    with pytest.raises(CouponNotFoundError, match="is mistyped"):
        coupons.resolve(session, [code[:-1] + ("2" if code[-1] != "2" else "3")], "alice", now)
    with pytest.raises(CouponNotFoundError, match="does not exist"):
        coupons.resolve(session, ["NOPE"], "alice", now)
    with pytest.raises(CouponNotApplicableError, match="expired"):
        coupons.resolve(session, [code], "alice", now + timedelta(days=31))
    assert [r.coupon.code for r in coupons.resolve(session, [code.lower()], "alice", now)] == [code]


def one_item(order_id: str, customer: str, codes: list[str], price: int = 10000) -> OrderIn:
    return OrderIn(order_id=order_id, customer_id=customer, coupon_codes=codes,
                   lines=[{"line_id": "1", "sku": "TEA", "unit_price": price, "quantity": 1}])


def test_a_money_budget_stops_the_redemption_that_would_exceed_it(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as s:
        batch(s, code_mode="shared", shared_code="BUDGET", budget_amount=2500, per_customer_limit=5)
    for n in (1, 2):  # 10.00 + 10.00 = 20.00 of the 25.00 budget
        with session_scope(store_cfg) as s:
            orders.commit(s, one_item(f"o{n}", f"c{n}", ["BUDGET"]), currency="CNY")
    spent = pytest.raises(CouponUsedUpError, match="budget of 'ten off' is spent")
    with spent, session_scope(store_cfg) as s:
        orders.commit(s, one_item("o3", "c3", ["BUDGET"]), currency="CNY")
    with session_scope(store_cfg) as s:
        row = s.query(CouponBatch).one()
        assert (row.used_count, row.used_amount) == (2, 2000)


@pytest.mark.parametrize(("rule", "refund_at_day", "released"), [
    ("full_refund_within_validity", 1, True),
    ("full_refund_within_validity", 40, False),  # the batch expired on day 30
    ("full_refund", 40, True),
    ("never", 1, False),
])
def test_a_full_refund_releases_the_coupon_by_the_batch_rule(
    store_cfg: Settings, rule: str, refund_at_day: int, released: bool,
) -> None:
    start = at("2026-03-01")
    with session_scope(store_cfg) as s:
        b = coupons.create_batch(s, name="once", definition=TEN_OFF, valid_from=start,
                                 valid_until=start + timedelta(days=30), release_on_refund=rule)
        code = coupons.issue(s, b, ["alice"], now=start).issued["alice"]
    two = OrderIn(order_id="o1", customer_id="alice", coupon_codes=[code],
                  lines=[{"line_id": "1", "sku": "TEA", "unit_price": 10000, "quantity": 2}])
    with session_scope(store_cfg) as s:
        orders.commit(s, two, currency="CNY", now=start + timedelta(hours=1))
    when = start + timedelta(days=refund_at_day)
    with session_scope(store_cfg) as s:  # a partial refund never releases
        one = RefundIn(refund_id="r1", lines=[{"line_id": "1", "quantity": 1}])
        part = orders.refund(s, "o1", one, now=when)
        assert part.coupons_released == []
    with session_scope(store_cfg) as s:
        rest = orders.refund(s, "o1", RefundIn(refund_id="r2"), now=when)
        assert rest.coupons_released == ([code] if released else [])
        assert part.amount + rest.amount == 19000
    # Released: the same code can be used again (while valid); otherwise it stays used.
    if released and refund_at_day < 30:
        with session_scope(store_cfg) as s:
            again = orders.commit(s, one_item("o2", "alice", [code]), currency="CNY", now=when)
            assert again.order.coupons == [code]
    else:
        with pytest.raises(GrowthwheelError), session_scope(store_cfg) as s:
            orders.commit(s, one_item("o2", "alice", [code]), currency="CNY", now=when)
