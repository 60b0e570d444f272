"""The pricing search: exact against brute force, the cases the exact search must get right, the index.

Amounts are in 分 (CNY minor units): 10000 = 100.00 yuan. Expected numbers are worked out by hand in
the comments, or by brute force (every subset of the promotions priced on its own: the best of them is
the best price by definition).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from itertools import combinations

import pytest

from growthwheel.promotions.rules import (
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
    PricingInputError,
    Promotion,
    PromotionIndex,
    QuantityTiers,
    Reward,
    SpendTiers,
    price_cart,
)

NOW = datetime(2026, 6, 18, tzinfo=UTC)
SKUS = ("A", "B", "C", "D", "E")


def _item_reward(rnd: random.Random) -> Reward:
    return rnd.choice([
        lambda: PercentOff(rnd.randint(1, 10000)),
        lambda: AmountOff(rnd.randint(1, 5000)),
        lambda: FlashSalePrice(rnd.randint(0, 15000), rnd.randint(0, 5)),
        MemberPrice,
        lambda: NthItemOff(rnd.randint(2, 3), rnd.randint(1, 10000)),
        lambda: BundlePrice(frozenset(rnd.sample(SKUS, rnd.randint(2, 3))), rnd.randint(0, 30000)),
    ])()


def _order_reward(rnd: random.Random) -> Reward:
    def tiers() -> SpendTiers:
        thresholds = sorted(rnd.sample(range(1000, 60000), rnd.randint(1, 3)))
        offs = sorted(rnd.randint(1, 1000) for _ in thresholds)
        return SpendTiers(tuple((t, min(o * (n + 1), t)) for n, (t, o) in enumerate(zip(thresholds, offs,
                                                                                          strict=True))))
    return rnd.choice([
        tiers,
        lambda: EveryXOffY(rnd.randint(5000, 20000), rnd.randint(100, 3000),
                           rnd.choice([None, rnd.randint(1, 30000)])),
        lambda: QuantityTiers(rnd.choice([((2, 1000),), ((2, 500), (3, 1500))])),
        lambda: OrderAmountOff(rnd.randint(1, 30000)),
        lambda: OrderPercentOff(rnd.randint(1, 10000), rnd.choice([None, rnd.randint(1, 30000)])),
        lambda: GiftWithPurchase("gift", rnd.randint(1, 2), rnd.randint(0, 3000)),
        FreeShipping,
    ])()


def _promotion(rnd: random.Random, pid: str, layer: Layer | None = None) -> Promotion:
    layer = layer or rnd.choice([Layer.ITEM, Layer.ORDER])
    reward = _item_reward(rnd) if layer is Layer.ITEM else _order_reward(rnd)
    exclusive = rnd.random() < 0.4
    combines = (frozenset(rnd.sample(["item", "order", "coupon", "p0", "p1", "c0"], rnd.randint(0, 2)))
                if exclusive else frozenset())
    conditions = Conditions(skus=rnd.choice([frozenset(), frozenset({"A"}), frozenset({"B", "C"})]),
                            categories=rnd.choice([frozenset(), frozenset({"x"})]),
                            min_amount=rnd.choice([0, 0, 5000, 20000]))
    return Promotion(pid, pid, layer, reward, conditions, exclusive, combines, rnd.randint(0, 2))


def _random_case(seed: int) -> tuple[Cart, list[Promotion]]:
    rnd = random.Random(seed)
    promos = [_promotion(rnd, f"p{n}") for n in range(rnd.randint(2, 4))]
    coupons = tuple(Coupon(f"CODE{n}", _promotion(rnd, f"c{n}", Layer.COUPON))
                    for n in range(rnd.randint(0, 2)))
    lines = []
    for n in range(rnd.randint(2, 5)):
        price = rnd.randint(100, 20000)
        lines.append(Line(f"l{n}", rnd.choice(SKUS), price, rnd.randint(1, 3),
                          category=rnd.choice(["x", "y"]),
                          member_prices=rnd.choice([{}, {"gold": price * 9 // 10}])))
    points = rnd.choice([None, PointsUse(rnd.randint(0, 20000), rnd.choice([1, 100]),
                                         rnd.randint(0, 10000))])
    cart = Cart("CNY", Customer(NOW, tier=rnd.choice([None, "gold"])), tuple(lines), coupons, points,
                shipping_fee=rnd.choice([0, 800]))
    return cart, promos


@pytest.mark.parametrize("seed", range(80))
def test_the_exact_search_finds_the_best_of_every_subset(seed: int) -> None:
    cart, promos = _random_case(seed)
    result = price_cart(cart, promos)
    assert result.exact
    best = min(price_cart(replace(cart, coupons=coupons), list(subset)).totals.total
               for k in range(len(promos) + 1) for subset in combinations(promos, k)
               for j in range(len(cart.coupons) + 1) for coupons in combinations(cart.coupons, j))
    assert result.totals.total == best
    assert price_cart(cart, PromotionIndex(promos)) == result  # the index changes the speed only


def test_an_item_discount_that_moves_an_order_discount_onto_a_coupon_threshold_is_left_out() -> None:
    # Lines A 100.00 and B 100.00; item: 10.00 off A; order: 40.00 off the cart; coupon: 满80减30 on B.
    # Without the item discount: 40.00 is spread 20.00 / 20.00 -> B 80.00 reaches 80.00 -> coupon 30.00:
    #   80.00 + 50.00 = 130.00.
    # With it: A 90.00, B 100.00; 40.00 spread by what is left: 18.95 / 21.05 -> B 78.95 < 80.00, no
    #   coupon: 71.05 + 78.95 = 150.00. The item discount touches only A, yet costs 20.00.
    cart = Cart("CNY", Customer(NOW), (Line("a", "A", 10000, 1), Line("b", "B", 10000, 1)),
                (Coupon("B30", Promotion("k", "B 满80减30", Layer.COUPON, OrderAmountOff(3000),
                                         Conditions(skus=frozenset({"B"}), min_amount=8000))),))
    item = Promotion("f", "10 off A", Layer.ITEM, AmountOff(1000), Conditions(skus=frozenset({"A"})))
    order = Promotion("d", "40 off", Layer.ORDER, OrderAmountOff(4000))
    result = price_cart(cart, [item, order])
    assert result.exact
    assert result.totals.total == 13000
    assert {a.promotion_id for a in result.applied} == {"d", "k"}
    assert {n.promotion_id: n.code for n in result.not_applied} == {"f": "worse_combination"}


def test_an_exclusive_spend_tier_against_many_item_discounts_is_searched_exactly() -> None:
    # Eight lines of 50.00 in eight categories, each category 10 % off; 满300减30 for everyone, and an
    # exclusive 满400减120 (combines with coupons only, so with none of the above).
    # Item discounts: 8 × 5.00 -> 360.00, then 满300减30 (360 >= 300) -> 330.00.
    # Exclusive: no item discount, 400.00 reaches 400.00 -> 280.00, the best.
    # Eight contested item promotions are 256 combinations, past the exact limit unless the search
    # splits on the exclusive one: without it every item discount is free (the 满300减30 is reached
    # whatever happens), with it no item discount may apply.
    lines = tuple(Line(f"l{n}", f"S{n}", 5000, 1, category=f"cat{n}") for n in range(8))
    promos = [Promotion(f"i{n}", f"cat{n} 10% off", Layer.ITEM, PercentOff(1000),
                        Conditions(categories=frozenset({f"cat{n}"}))) for n in range(8)]
    promos.append(Promotion("all30", "满300减30", Layer.ORDER, SpendTiers(((30000, 3000),))))
    promos.append(Promotion("ex120", "满400减120", Layer.ORDER, SpendTiers(((40000, 12000),)),
                            exclusive=True, combines_with=frozenset({"coupon"})))
    result = price_cart(Cart("CNY", Customer(NOW), lines), promos)
    assert result.exact
    assert result.totals.total == 28000
    assert [a.promotion_id for a in result.applied] == ["ex120"]
    assert {n.code for n in result.not_applied} == {"not_combinable"}


def test_the_index_prices_many_carts_like_a_list_and_checks_the_set_once() -> None:
    promos = [Promotion("cat", "x 10% off", Layer.ITEM, PercentOff(1000),
                        Conditions(categories=frozenset({"x"}))),
              Promotion("sku", "5 off A", Layer.ITEM, AmountOff(500), Conditions(skus=frozenset({"A"}))),
              Promotion("late", "later", Layer.ITEM, AmountOff(100),
                        Conditions(starts_at=datetime(2027, 1, 1, tzinfo=UTC))),
              Promotion("all", "满100减10", Layer.ORDER, SpendTiers(((10000, 1000),)))]
    index = PromotionIndex(promos)
    assert len(index) == 4
    for lines in [(Line("1", "A", 8000, 1, category="y"),), (Line("1", "B", 12000, 1, category="x"),),
                  (Line("1", "A", 6000, 2, category="x"), Line("2", "C", 100, 1))]:
        cart = Cart("CNY", Customer(NOW), lines)
        assert price_cart(cart, index) == price_cart(cart, promos)
    # A: 80.00 - 5.00 (sku) = 75.00 < 100.00: no 满减; "cat" has no line, "late" has not started.
    first = price_cart(Cart("CNY", Customer(NOW), (Line("1", "A", 8000, 1, category="y"),)), index)
    assert first.totals.total == 7500
    assert {n.promotion_id: n.code for n in first.not_applied} == {
        "cat": "no_eligible_lines", "late": "not_started", "all": "below_threshold"}
    with pytest.raises(PricingInputError, match="duplicate promotion id 'cat'"):
        PromotionIndex([*promos, promos[0]])
    coupon_promo = Promotion("k", "coupon", Layer.COUPON, OrderAmountOff(100))
    with pytest.raises(PricingInputError, match=r"promotions\['k'\]\.layer"):
        PromotionIndex([coupon_promo])
    with pytest.raises(PricingInputError, match=r"Cart.coupons\['K'\]"):
        price_cart(Cart("CNY", Customer(NOW), (Line("1", "A", 100, 1),),
                        (Coupon("K", replace(coupon_promo, id="cat")),)), index)
