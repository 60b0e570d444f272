"""Property tests of the pricing core over random carts and random promotion sets (hypothesis).

Monotonicity ("adding a promotion never raises the best price") is claimed exactly for an exact
search (``PricedCart.exact``): every combination possible before the new promotion is still possible
and priced the same, and the engine takes the minimum. It holds for every promotion kind and across
layers because the search also prices the combinations that leave a promotion out (a bigger item
discount that drops the cart below a 满减 threshold is simply not chosen). The random sets below are
small enough that the search is always exact, which the test asserts too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from growthwheel.promotions.rules import (
    BASIS,
    AmountOff,
    BundlePrice,
    Cart,
    Conditions,
    Coupon,
    Customer,
    EveryXOffY,
    FlashSalePrice,
    FreeShipping,
    GiftWithPurchase,
    Layer,
    Line,
    MemberPrice,
    NthItemOff,
    OrderAmountOff,
    OrderPercentOff,
    PercentOff,
    PointsUse,
    PricedCart,
    Promotion,
    QuantityTiers,
    Reward,
    SpendTiers,
    price_cart,
    refund_amount,
)

NOW = datetime(2026, 6, 18, tzinfo=UTC)
SKUS = ("A", "B", "C", "D")
CATEGORIES = ("x", "y")
rates = st.integers(1, BASIS)
money = st.integers(1, 30000)


@st.composite
def lines(draw: st.DrawFn) -> tuple[Line, ...]:
    count = draw(st.integers(1, 4))
    out = []
    for n in range(count):
        price = draw(st.integers(0, 20000))
        deposit_paid = draw(st.sampled_from([0, 0, 0, 500]))
        out.append(Line(
            f"l{n}", draw(st.sampled_from(SKUS)), price, draw(st.integers(1, 4)),
            category=draw(st.sampled_from(CATEGORIES)),
            member_prices=draw(st.sampled_from([{}, {"gold": price * 9 // 10},
                                                {"gold": max(price - 700, 0)}])),
            deposit_paid=deposit_paid, deposit_credit=deposit_paid * draw(st.integers(1, 3))))
    return tuple(out)


@st.composite
def tiers(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    thresholds = sorted(draw(st.sets(st.integers(1000, 60000), min_size=1, max_size=3)))
    offs = sorted(draw(st.lists(st.integers(1, 1000), min_size=len(thresholds), max_size=len(thresholds))))
    return tuple((t, min(o * (i + 1), t)) for i, (t, o) in enumerate(zip(thresholds, offs, strict=True)))


item_rewards: st.SearchStrategy[Reward] = st.one_of(
    st.builds(PercentOff, rates),
    st.builds(AmountOff, st.integers(1, 5000)),
    st.builds(FlashSalePrice, st.integers(0, 15000), st.integers(0, 5)),
    st.just(MemberPrice()),
    st.builds(NthItemOff, st.integers(2, 3), rates),
    st.builds(BundlePrice, st.sets(st.sampled_from(SKUS), min_size=2, max_size=3).map(frozenset),
              st.integers(0, 30000)),
)
order_rewards: st.SearchStrategy[Reward] = st.one_of(
    st.builds(SpendTiers, tiers()),
    st.builds(EveryXOffY, st.integers(5000, 20000), st.integers(100, 3000), st.none() | money),
    st.builds(QuantityTiers, st.sampled_from([((2, 1000),), ((2, 500), (3, 1500)), ((4, 3000),)])),
    st.builds(OrderAmountOff, money),
    st.builds(OrderPercentOff, rates, st.none() | money),
    st.builds(GiftWithPurchase, st.just("gift"), st.integers(1, 2), st.integers(0, 3000)),
    st.just(FreeShipping()),
)
conditions = st.builds(
    Conditions,
    skus=st.sampled_from([frozenset(), frozenset({"A"}), frozenset({"B", "C"})]),
    categories=st.sampled_from([frozenset(), frozenset({"x"})]),
    min_amount=st.sampled_from([0, 0, 5000, 20000]),
    min_quantity=st.sampled_from([0, 0, 2]),
)


@st.composite
def promotion(draw: st.DrawFn, pid: str, layer: Layer | None = None) -> Promotion:
    layer = layer or draw(st.sampled_from([Layer.ITEM, Layer.ORDER]))
    reward = draw(item_rewards if layer is Layer.ITEM else order_rewards)
    exclusive = draw(st.booleans())
    combines = draw(st.sets(st.sampled_from(["item", "order", "coupon", "p0", "p1", "p2", "c0", "new"]),
                            max_size=2)) if exclusive else set()
    return Promotion(pid, pid, layer, reward, draw(conditions), exclusive, frozenset(combines),
                     draw(st.integers(0, 2)))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Cart, list[Promotion]]:
    promos = [draw(promotion(f"p{n}")) for n in range(draw(st.integers(0, 4)))]
    coupons = tuple(Coupon(f"CODE{n}", draw(promotion(f"c{n}", Layer.COUPON)))
                    for n in range(draw(st.integers(0, 2))))
    points = draw(st.none() | st.builds(PointsUse, st.integers(0, 20000), st.sampled_from([1, 10, 100]),
                                        st.integers(0, BASIS)))
    customer = Customer(NOW, tier=draw(st.sampled_from([None, "gold"])))
    cart = Cart("CNY", customer, draw(lines()), coupons, points, shipping_fee=draw(st.sampled_from([0, 800])))
    return cart, promos


def check_invariants(result: PricedCart) -> None:
    totals = result.totals
    assert totals.total >= 0
    assert totals.goods_total == sum(line.paid for line in result.lines)
    assert totals.total == totals.goods_total + totals.shipping
    assert 0 <= totals.shipping <= totals.shipping_fee
    for line in result.lines:
        assert line.paid >= 0
        assert all(d.amount > 0 for d in line.discounts)
        assert line.subtotal - line.discount_total - line.deposit_credit == line.paid
    by_layer = {layer: sum(line.discount_for(layer) for line in result.lines) for layer in Layer}
    assert by_layer[Layer.ITEM] == totals.item_discount
    assert by_layer[Layer.ORDER] == totals.order_discount
    assert by_layer[Layer.COUPON] == totals.coupon_discount
    assert by_layer[Layer.POINTS] == totals.points_discount
    assert totals.subtotal - sum(by_layer.values()) - totals.deposit_credit == totals.goods_total
    for applied in result.applied:
        # line discounts of each order / coupon / points discount sum to it exactly
        assert sum(amount for _, amount in applied.per_line) == applied.amount
        recorded = sum(d.amount for line in result.lines for d in line.discounts
                       if d.promotion_id == applied.promotion_id)
        assert recorded == applied.amount


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_totals_are_never_negative_and_line_discounts_add_up(case: tuple[Cart, list[Promotion]]) -> None:
    cart, promos = case
    result = price_cart(cart, promos)
    assert result.exact
    check_invariants(result)


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_refunding_every_line_returns_exactly_what_was_paid(case: tuple[Cart, list[Promotion]]) -> None:
    cart, promos = case
    result = price_cart(cart, promos)
    everything = {line.line_id: line.quantity for line in result.lines}
    assert refund_amount(result, everything) == result.totals.goods_total
    for line in result.lines:  # one unit at a time adds up to the line's paid amount too
        units = [refund_amount(result, {line.line_id: 1}, {line.line_id: k}) for k in range(line.quantity)]
        assert sum(units) == line.paid
        assert max(units) - min(units) <= 1


@settings(max_examples=200, deadline=None)
@given(scenario(), st.randoms(use_true_random=False))
def test_pricing_is_deterministic_whatever_the_promotion_order(case: tuple[Cart, list[Promotion]],
                                                                rnd: object) -> None:
    cart, promos = case
    shuffled = list(promos)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert price_cart(cart, shuffled) == price_cart(cart, promos)


@settings(max_examples=300, deadline=None)
@given(scenario(), st.data())
def test_adding_a_promotion_never_raises_the_best_price(case: tuple[Cart, list[Promotion]],
                                                        data: st.DataObject) -> None:
    cart, promos = case
    before = price_cart(cart, promos)
    extra = data.draw(promotion("new"))
    after = price_cart(cart, [*promos, extra])
    assert before.exact
    assert after.exact
    assert after.totals.total <= before.totals.total
    # the same for one more coupon
    coupon = Coupon("NEWCODE", data.draw(promotion("newc", Layer.COUPON)))
    with_coupon = price_cart(Cart(cart.currency, cart.customer, cart.lines, (*cart.coupons, coupon),
                                  cart.points, shipping_fee=cart.shipping_fee), promos)
    assert with_coupon.exact
    assert with_coupon.totals.total <= before.totals.total
