"""The exact search's memoised bounds (:mod:`growthwheel.promotions.rules.bounds`): the same numbers as
the item layer of each selection, and the same best price as brute force over every subset.

Amounts are in 分 (CNY minor units).
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from itertools import combinations

import pytest

from growthwheel.promotions.rules import (
    AmountOff,
    Cart,
    Conditions,
    Coupon,
    Customer,
    EveryXOffY,
    FlashSalePrice,
    GiftWithPurchase,
    Layer,
    Line,
    MemberPrice,
    OrderAmountOff,
    PercentOff,
    PointsUse,
    Promotion,
    SpendTiers,
    price_cart,
)
from growthwheel.promotions.rules import bounds as bounds_module
from growthwheel.promotions.rules.bounds import MaskBounds
from growthwheel.promotions.rules.search import Engine

NOW = datetime(2026, 6, 18, tzinfo=UTC)


def test_mask_bounds_read_each_line_and_reward_from_the_contested_candidates_touching_it() -> None:
    # Three lines; candidate 0 is in every selection (the base), candidates 1 and 2 are contested:
    # 1 touches line 0 only, 2 touches lines 1 and 2. What the item layer leaves, by hand:
    #   line 0: 1000, or 700 with candidate 1;
    #   line 1: 2000, or 1500 with candidate 2;   line 2: 3000, or 2900 with candidate 2.
    # Later rewards: "10 % of lines 0-1" (base 3000 / 2700 / 2500 / 2200 -> 300 / 270 / 250 / 220), "20 %
    # of line 2" (600 / 580) and "5 % of every line" (on the goods).
    def item_left(mask: int) -> tuple[int, ...]:
        calls.append(mask)
        assert mask & 1  # every selection holds the base
        return (700 if mask & 2 else 1000, 1500 if mask & 4 else 2000, 2900 if mask & 4 else 3000)

    calls: list[int] = []
    ranked = [(-900, 0b111), (-600, 0b101), (-300, 0b011), (0, 0b001)]
    line_masks = [0b111, 0b001, 0b110]
    takers = [(lambda base, quantity: base // 10, (0, 1), 2),
              (lambda base, quantity: base // 5, (2,), 1),
              (lambda base, quantity: base // 20, None, 3)]
    lines_read: list[tuple[int, int, int]] = []

    def line_left(base: int, key: int, i: int) -> int:
        lines_read.append((base, key, i))
        return item_left(base | key)[i]

    memo = MaskBounds(ranked, line_masks, takers, item_left, line_left)
    assert calls == [0b001]  # the base's item layer
    expected = {0b111: (700 + 1500 + 2900, 220 + 580), 0b101: (1000 + 1500 + 2900, 250 + 580),
                0b011: (700 + 2000 + 3000, 270 + 600), 0b001: (1000 + 2000 + 3000, 300 + 600)}
    for mask, (goods, off) in expected.items():
        assert memo.goods(mask) == goods
        assert memo.off(mask, goods) == off + goods // 20
    # Each line read once per subset of the contested candidates touching it: line 0 with and without
    # candidate 1, lines 1 and 2 with and without candidate 2; asked again (any order), from the memos.
    assert sorted(lines_read) == [(1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 2, 0), (1, 4, 1), (1, 4, 2)]
    lines_read.clear()
    for mask in (0b001, 0b111, 0b011, 0b101):
        goods = memo.goods(mask)
        assert (goods, memo.off(mask, goods) - goods // 20) == expected[mask]
    assert lines_read == []


def test_a_reward_on_lines_no_contested_candidate_touches_is_a_constant() -> None:
    # Candidate 1 (contested) touches line 0; the reward on line 1 alone never changes: 10 % of 5000.
    def item_left(mask: int) -> tuple[int, ...]:
        return (800 if mask & 2 else 1000, 5000)

    memo = MaskBounds([(-200, 0b11), (0, 0b01)], [0b11, 0b01], [(lambda b, q: b // 10, (1,), 1)], item_left,
                      lambda base, key, i: item_left(base | key)[i])
    assert memo.const_off == 500
    assert memo.partial == []
    assert [memo.goods(0b11), memo.goods(0b01)] == [5800, 6000]
    assert memo.off(0b11, 5800) == memo.off(0b01, 6000) == 500


SKUS = ("A", "B", "C", "D", "E", "F")
CATEGORIES = ("x", "y", "z")


def _case(seed: int) -> tuple[Cart, list[Promotion]]:
    """A small cart that many item promotions contest against later thresholds."""
    rnd = random.Random(seed)
    lines = []
    for n, sku in enumerate(rnd.sample(SKUS, rnd.randint(3, 6))):
        price = rnd.randint(500, 12000)
        lines.append(Line(f"l{n}", sku, price, rnd.randint(1, 3), category=rnd.choice(CATEGORIES),
                          member_prices=rnd.choice([{}, {"gold": price * 9 // 10}])))
    subtotal = sum(line.unit_price * line.quantity for line in lines)
    promos: list[Promotion] = []
    for n in range(rnd.randint(5, 6)):
        target = rnd.choice([Conditions(categories=frozenset({rnd.choice(CATEGORIES)})),
                             Conditions(skus=frozenset(rnd.sample(SKUS, 2)))])
        reward = rnd.choice([PercentOff(rnd.choice([500, 1000, 2000])), AmountOff(rnd.randint(100, 1500)),
                             FlashSalePrice(rnd.randint(300, 8000), rnd.randint(1, 4)), MemberPrice()])
        promos.append(Promotion(f"i{n}", f"item {n}", Layer.ITEM, reward, target))
    for n in range(2):
        # Thresholds near what the cart is worth, so that item discounts can cost a later reward.
        near = max(1000, subtotal * rnd.randint(70, 100) // 100)
        reward = rnd.choice([SpendTiers(((near, near // 10), (near * 11 // 10, near // 5))),
                             EveryXOffY(max(500, near // 3), rnd.randint(100, 2000), rnd.randint(500, 5000)),
                             GiftWithPurchase("gift", 1, rnd.randint(100, 3000))])
        conditions = rnd.choice([Conditions(), Conditions(categories=frozenset(rnd.sample(CATEGORIES, 2))),
                                 Conditions(min_amount=near)])
        promos.append(Promotion(f"o{n}", f"order {n}", Layer.ORDER, reward, conditions))
    coupons = tuple(Coupon(f"K{n}", Promotion(f"k{n}", f"coupon {n}", Layer.COUPON,
                                              OrderAmountOff(rnd.randint(100, 3000)),
                                              Conditions(min_amount=subtotal * rnd.randint(50, 95) // 100)))
                    for n in range(rnd.randint(0, 1)))
    points = rnd.choice([None, PointsUse(rnd.randint(0, 5000), 1, rnd.randint(0, 5000))])
    customer = Customer(NOW, tier=rnd.choice([None, "gold"]))
    return Cart("CNY", customer, tuple(lines), coupons, points, shipping_fee=rnd.choice([0, 800])), promos


@pytest.fixture
def memo_use(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every memoised bound checked against its selection's item layer; counts the selections the
    memos bounded."""
    monkeypatch.setattr(Engine, "check_bounds", True)
    used: list[int] = []
    goods = bounds_module.MaskBounds.goods

    def counted(self: MaskBounds, mask: int) -> int:
        used.append(mask)
        return goods(self, mask)

    monkeypatch.setattr(bounds_module.MaskBounds, "goods", counted)
    return used


def test_the_memoised_bounds_give_the_item_layers_numbers_and_the_best_of_every_subset(
        memo_use: list[int]) -> None:
    searched = []  # the carts whose search bounded selections from the memos
    for seed in range(400):
        cart, promos = _case(seed)
        before = len(memo_use)
        result = price_cart(cart, promos)  # every memoised bound is checked (check_bounds)
        if result.exact and len(memo_use) > before:
            searched.append((seed, cart, promos, result.totals.total))
    assert len(searched) >= 80
    assert len(memo_use) >= 500  # the memos bounded many selections, not only the first few
    for seed, cart, promos, total in searched[:20]:
        best = min(price_cart(replace(cart, coupons=coupons), list(subset)).totals.total
                   for k in range(len(promos) + 1) for subset in combinations(promos, k)
                   for j in range(len(cart.coupons) + 1) for coupons in combinations(cart.coupons, j))
        assert total == best, seed


def test_the_whole_set_is_not_searched_again_when_the_first_branch_had_too_many_contested(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # An exclusive 满减 splits the search into branches; when the first branch already has more
    # contested candidates than the limit allows, the engine no longer retries the whole set in one
    # piece: checked here by running that retry anyway and finding it past the limit too.
    search = Engine.search
    skipped: list[int] = []

    def checked(self: Engine, universes: list[int], coarse_points: bool,
                bases: dict[int, int]) -> object:
        self._hopeless = False
        found = search(self, universes, coarse_points, bases)
        everything = (1 << len(self.candidates)) - 1
        if found is None and self._hopeless and universes != [everything]:
            assert search(self, [everything], coarse_points, bases) is None
            skipped.append(len(universes))
        return found

    monkeypatch.setattr(Engine, "search", checked)
    for seed in range(60):
        cart, promos = _case(seed)
        rnd = random.Random(seed)
        extra = [Promotion(f"j{n}", f"more {n}", Layer.ITEM, PercentOff(rnd.choice([300, 700])),
                           Conditions(skus=frozenset({line.sku})))
                 for n, line in enumerate(cart.lines)]
        near = sum(line.unit_price * line.quantity for line in cart.lines) * 9 // 10
        solo = Promotion("x", "exclusive 满减", Layer.ORDER, SpendTiers(((near, near // 5),)), exclusive=True)
        result = price_cart(cart, [*promos, *extra, solo])
        assert result.totals.total <= sum(line.unit_price * line.quantity for line in cart.lines) + 800
    assert len(skipped) >= 10
