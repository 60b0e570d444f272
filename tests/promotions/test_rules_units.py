"""Every unit gets its own best price (issue 10, item 4), whatever the cart's split into lines.

A flash sale covering only part of a line used to hide the member price on the rest of it: the
line took the single largest price discount (the flash sale's, on two units) and the third unit
paid the list price, while the same units sent as two lines paid the member price on the third.
Amounts in 分.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from test_rules_properties import check_invariants, scenario

from growthwheel.promotions.rules import (
    BundlePrice,
    Cart,
    Conditions,
    Customer,
    FlashSalePrice,
    Layer,
    Line,
    MemberPrice,
    PercentOff,
    PricedCart,
    Promotion,
    price_cart,
    refund_amount,
)

NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
FLASH = Promotion("flash", "秒杀 99", Layer.ITEM, FlashSalePrice(9900, stock_left=2),
                  Conditions(skus=frozenset({"TEE"})))
MEMBER = Promotion("member", "会员价", Layer.ITEM, MemberPrice())
GOLD = Customer(NOW, customer_id="c1", tier="gold")


def tee(line_id: str, quantity: int) -> Line:
    return Line(line_id, "TEE", 19900, quantity, member_prices={"gold": 15900})


def priced(*lines: Line, promos: tuple[Promotion, ...] = (FLASH, MEMBER)) -> PricedCart:
    return price_cart(Cart("CNY", GOLD, lines), list(promos))


def test_a_flash_sale_on_part_of_a_line_leaves_the_member_price_on_the_rest() -> None:
    # 3 units in one line: two at the flash price 99.00, the third at the gold price 159.00.
    one_line = priced(tee("a", 3))
    assert one_line.totals.total == 9900 + 9900 + 15900
    assert one_line.lines[0].paid == 35700
    by_promo = {a.promotion_id: a.amount for a in one_line.applied}
    assert by_promo == {"flash": 2 * (19900 - 9900), "member": 19900 - 15900}
    check_invariants(one_line)
    # The same units as 2 + 1 lines: the same total, the flash sale on the first two units.
    two_lines = priced(tee("a", 2), tee("b", 1))
    assert two_lines.totals.total == one_line.totals.total
    assert [line.paid for line in two_lines.lines] == [19800, 15900]
    # Refunding the one-line order unit by unit gives back exactly what was paid.
    units = [refund_amount(one_line, {"a": 1}, {"a": k}) for k in range(3)]
    assert sum(units) == 35700


def test_more_stock_than_units_prices_every_unit_at_the_flash_price() -> None:
    result = priced(tee("a", 3), promos=(replace(FLASH, reward=FlashSalePrice(9900, 10)), MEMBER))
    assert result.totals.total == 3 * 9900
    assert {a.promotion_id for a in result.applied} == {"flash"}
    assert {n.promotion_id: n.code for n in result.not_applied} == {"member": "no_benefit"}


def test_a_bundle_on_one_unit_and_the_member_price_on_the_others() -> None:
    # Bundle TEE + CAP for 200.00 (list 199.00 + 50.00 = 249.00: 49.00 off, spread by value:
    # 4900 × 19900 / 24900 = 3916.06 → 3916 on the tee unit, 983.94 → 984 on the cap). Gold price
    # 159.00 saves 40.00 a tee: more than the bundle's 39.16 on the tee, so every tee unit takes the
    # member price and the cap keeps its bundle share (as before).
    bundle = Promotion("bundle", "组合价", Layer.ITEM, BundlePrice(frozenset({"TEE", "CAP"}), 20000))
    cap = Line("cap", "CAP", 5000, 1)
    result = priced(tee("a", 2), cap, promos=(bundle, MEMBER))
    assert result.totals.total == 2 * 15900 + 5000 - 984
    # With a flash sale on one tee (100.00 off) that unit takes the flash price, the other the
    # member price.
    flash1 = replace(FLASH, reward=FlashSalePrice(9900, 1))
    result = priced(tee("a", 2), cap, promos=(bundle, MEMBER, flash1))
    assert result.totals.total == 9900 + 15900 + 5000 - 984


def test_percentages_stack_on_each_units_own_price() -> None:
    # 10 % off the list price of every unit on top of the unit's price reward: 3 × 19.90 off.
    pct = Promotion("pct", "9折", Layer.ITEM, PercentOff(1000))
    result = priced(tee("a", 3), promos=(FLASH, MEMBER, pct))
    assert result.totals.total == 9900 + 9900 + 15900 - 3 * 1990


@st.composite
def split_case(draw: st.DrawFn) -> tuple[Cart, list[Promotion], Cart]:
    """A random cart and promotions, and the same cart with one line cut into 2-4 lines in place."""
    cart, promos = draw(scenario())
    if draw(st.booleans()):  # often a flash sale with little stock and a member price too
        promos = [*promos, Promotion("fl", "fl", Layer.ITEM,
                                     FlashSalePrice(draw(st.integers(0, 15000)), draw(st.integers(0, 5)))),
                  Promotion("mp", "mp", Layer.ITEM, MemberPrice())]
    where = draw(st.integers(0, len(cart.lines) - 1))
    line = cart.lines[where]
    pieces = draw(st.integers(2, 4))
    cuts = sorted(draw(st.lists(st.integers(1, 7), min_size=pieces, max_size=pieces)))
    quantities = [line.quantity, *cuts[1:]]  # the original quantity and a few more units
    split_lines = [replace(line, line_id=f"{line.line_id}.{k}", quantity=q) for k, q in enumerate(quantities)]
    whole = replace(line, quantity=sum(quantities))
    merged = replace(cart, lines=(*cart.lines[:where], whole, *cart.lines[where + 1:]))
    split = replace(cart, lines=(*cart.lines[:where], *split_lines, *cart.lines[where + 1:]))
    return merged, promos, split


@settings(max_examples=300, deadline=None)
@given(split_case())
def test_splitting_a_line_never_changes_the_total(case: tuple[Cart, list[Promotion], Cart]) -> None:
    whole, promos, split = case
    one = price_cart(whole, promos)
    many = price_cart(split, promos)
    assert many.totals == one.totals
    assert many.points_used == one.points_used
    assert many.exact == one.exact
    check_invariants(many)
    everything = {line.line_id: line.quantity for line in many.lines}
    assert refund_amount(many, everything) == many.totals.goods_total
