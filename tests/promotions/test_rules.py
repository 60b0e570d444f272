"""Worked examples for the pricing core; every expected number is calculated by hand in the comments.

Amounts are in 分 (CNY minor units): 12000 = 120.00 yuan.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from growthwheel.promotions.rules import (
    AmountOff,
    BundlePrice,
    Cart,
    Conditions,
    Coupon,
    Customer,
    EarnRule,
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
    PricingInputError,
    Promotion,
    QuantityTiers,
    SpendTiers,
    format_money,
    points_for_payment,
    price_cart,
    refund_amount,
)

NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def make_cart(*lines: Line, coupons: tuple[Coupon, ...] = (), points: PointsUse | None = None,
              shipping_fee: int = 0, earn: EarnRule | None = None, **customer: object) -> Cart:
    return Cart("CNY", Customer(NOW, **customer), lines, coupons=coupons,  # type: ignore[arg-type]
                points=points, shipping_fee=shipping_fee, earn=earn)


def paid(result: PricedCart) -> dict[str, int]:
    return {line.line_id: line.paid for line in result.lines}


def not_applied(result: PricedCart) -> dict[str, str]:
    return {n.promotion_id: n.code for n in result.not_applied}


MANJIAN = Promotion("manjian", "满200减20 / 满300减50 / 满500减100", Layer.ORDER,
                    SpendTiers(((20000, 2000), (30000, 5000), (50000, 10000))))


def test_multi_tier_manjian_with_a_coupon_on_top() -> None:
    # Subtotal 120.00 + 2 × 95.00 + 60.00 = 370.00: the 满300减50 tier (not 满500) → 320.00.
    # 50.00 over [12000, 19000, 6000] (sum 37000) by largest remainder:
    #   a: 5000·12000/37000 = 1621 r 23000; b: 2567 r 21000; c: 810 r 30000; 2 left → c, a.
    #   → a 1622, b 2567, c 811 (sum 5000); left a 10378, b 16433, c 5189 = 32000.
    # Coupon 满300减30 on 320.00 ≥ 300.00 → 30.00 over [10378, 16433, 5189] (sum 32000):
    #   a: 972.94 → 972, b: 1540.59 → 1540, c: 486.47 → 486; 2 left → a (.94), b (.59).
    #   → a 973, b 1541, c 486. Paid a 9405, b 14892, c 4703 = 290.00.
    # Coupon 满400减60: 320.00 < 400.00 → not applied, "spend 80.00 more to save 60.00".
    save30 = Coupon("SAVE30", Promotion("c30", "满300减30", Layer.COUPON, OrderAmountOff(3000),
                                        Conditions(min_amount=30000)))
    save60 = Coupon("SAVE60", Promotion("c60", "满400减60", Layer.COUPON, OrderAmountOff(6000),
                                        Conditions(min_amount=40000)))
    cart = make_cart(Line("a", "A", 12000, 1), Line("b", "B", 9500, 2), Line("c", "C", 6000, 1),
                     coupons=(save30, save60))
    result = price_cart(cart, [MANJIAN])
    assert result.totals.subtotal == 37000
    assert result.totals.order_discount == 5000
    assert result.totals.coupon_discount == 3000
    assert result.totals.total == 29000
    assert paid(result) == {"a": 9405, "b": 14892, "c": 4703}
    by_id = {a.promotion_id: a for a in result.applied}
    assert by_id["manjian"].per_line == (("a", 1622), ("b", 2567), ("c", 811))
    assert by_id["c30"].per_line == (("a", 973), ("b", 1541), ("c", 486))
    assert by_id["c30"].coupon_code == "SAVE30"
    assert not_applied(result) == {"c60": "below_min_amount"}
    messages = {n.promotion_id: n.message for n in result.nudges}
    # The next 满减 tier: 500.00 − 370.00 = 130.00 more to save 100.00.
    assert messages == {"c60": "spend 80.00 more to save 60.00",
                        "manjian": "spend 130.00 more to save 100.00"}
    assert result.exact


def test_every_x_save_y_with_cap_and_its_nudge() -> None:
    # 每满100减15, at most 40.00. 3 × 130.00 = 390.00 → 3 × 15.00 = 45.00 → capped at 40.00 → 350.00.
    every = Promotion("every", "每满100减15", Layer.ORDER, EveryXOffY(10000, 1500, cap=4000))
    result = price_cart(make_cart(Line("x", "X", 13000, 3)), [every])
    assert result.totals.order_discount == 4000
    assert result.totals.total == 35000
    assert result.nudges == ()  # already at the cap: spending more saves nothing more
    # 250.00 → 2 × 15.00 = 30.00 → 220.00; at 300.00 it would be 45.00 → cap 40.00: 50.00 more.
    result = price_cart(make_cart(Line("x", "X", 12500, 2)), [every])
    assert result.totals.total == 22000
    assert [n.message for n in result.nudges] == ["spend 50.00 more to save 40.00"]


def test_n_items_percent_off_and_add_one_more_item() -> None:
    # 2件9折, 3件8折. Shirt 99.00 + socks 19.90 = 118.90, 2 items → 10 % = 11.89.
    # Allocation over [9900, 1990]: 1189·9900/11890 = 990 exactly, 1189·1990/11890 = 199 exactly.
    promo = Promotion("qty", "2件9折 3件8折", Layer.ORDER, QuantityTiers(((2, 1000), (3, 2000))))
    result = price_cart(make_cart(Line("s", "shirt", 9900, 1), Line("k", "socks", 1990, 1)), [promo])
    assert result.totals.order_discount == 1189
    assert result.totals.total == 10701
    assert paid(result) == {"s": 8910, "k": 1791}
    (nudge,) = result.nudges
    assert nudge.message == "add 1 more item to get 20% off"
    assert nudge.short_quantity == 1
    assert nudge.would_save == 2378  # 20 % of 118.90 on the items already in the cart
    # A single item: below the first tier, with the nudge to add one.
    result = price_cart(make_cart(Line("s", "shirt", 9900, 1)), [promo])
    assert result.totals.total == 9900
    assert result.not_applied[0].code == "below_threshold"
    assert result.not_applied[0].reason == "add 1 more item to get 10% off"


def test_nth_item_half_price_goes_to_the_cheaper_unit() -> None:
    # 第二件半价 on the tea category: units by price 80.00, 60.00, 60.00 → the 2nd (60.00) at half
    # price: 30.00 off tea-b. 80.00 + 2 × 60.00 − 30.00 = 170.00.
    promo = Promotion("nth", "第二件半价", Layer.ITEM, NthItemOff(2, 5000),
                      Conditions(categories=frozenset({"tea"})))
    result = price_cart(make_cart(Line("a", "tea-a", 8000, 1, category="tea"),
                                  Line("b", "tea-b", 6000, 2, category="tea"),
                                  Line("m", "mug", 3000, 1, category="ware")), [promo])
    assert result.totals.item_discount == 3000
    assert paid(result) == {"a": 8000, "b": 9000, "m": 3000}
    assert result.totals.total == 20000


def test_bundle_price_spreads_the_bundle_discount_by_unit_price() -> None:
    # Camera 899.00 + SD card 129.00 together for 999.00: 29.00 off per bundle. 2 cameras, 1 card
    # → 1 bundle. 2900 over the bundle's units [89900, 12900] (sum 102800):
    #   camera 2536 r 9200, card 363 r 93600 → 1 left → card: camera 2536, card 364.
    promo = Promotion("bundle", "相机+存储卡 999", Layer.ITEM,
                      BundlePrice(frozenset({"camera", "sd"}), 99900))
    result = price_cart(make_cart(Line("cam", "camera", 89900, 2), Line("sd", "sd", 12900, 1)), [promo])
    (applied,) = result.applied
    assert applied.per_line == (("cam", 2536), ("sd", 364))
    assert result.totals.total == 2 * 89900 + 12900 - 2900
    # Without the card the bundle is incomplete, and says what is missing.
    result = price_cart(make_cart(Line("cam", "camera", 89900, 2)), [promo])
    assert (result.not_applied[0].code, result.not_applied[0].reason) == ("incomplete_bundle",
                                                                          "add sd to complete the bundle")


def test_flash_sale_prices_only_the_units_in_stock() -> None:
    # 秒杀 1499.00 with 1 unit left, 3 phones at 1999.00: one at 1499.00 → 3 × 1999 − 500 = 5497.00.
    promo = Promotion("flash", "秒杀", Layer.ITEM, FlashSalePrice(149900, stock_left=1),
                      Conditions(skus=frozenset({"phone"})))
    result = price_cart(make_cart(Line("p", "phone", 199900, 3)), [promo])
    assert result.totals.item_discount == 50000
    assert result.totals.total == 549700
    sold_out = Promotion("flash", "秒杀", Layer.ITEM, FlashSalePrice(149900, stock_left=0))
    result = price_cart(make_cart(Line("p", "phone", 199900, 3)), [sold_out])
    assert result.totals.total == 599700
    assert not_applied(result) == {"flash": "no_stock"}


def test_member_price_by_tier_and_lowest_price_wins() -> None:
    # Cream 300.00 × 2: gold price 270.00 → 60.00 off; silver 285.00 → 30.00 off; no tier → none.
    line = Line("c", "cream", 30000, 2, member_prices={"gold": 27000, "silver": 28500})
    member = Promotion("member", "会员价", Layer.ITEM, MemberPrice())
    assert price_cart(make_cart(line, tier="gold"), [member]).totals.total == 54000
    assert price_cart(make_cart(line, tier="silver"), [member]).totals.total == 57000
    anonymous = price_cart(make_cart(line), [member])
    assert anonymous.totals.total == 60000
    assert not_applied(anonymous) == {"member": "no_member_price"}
    # A flash price of 260.00 for one unit and the gold price: a unit has one price, its own lowest
    # (issue 10, item 4): the first unit at the flash price 260.00, the second at the gold price
    # 270.00 → 530.00; the prices of one unit never add up.
    flash = Promotion("flash", "秒杀", Layer.ITEM, FlashSalePrice(26000, stock_left=1))
    result = price_cart(make_cart(line, tier="gold"), [member, flash])
    assert result.totals.total == 26000 + 27000
    assert {a.promotion_id: a.amount for a in result.applied} == {"flash": 4000, "member": 3000}
    # A flash price above the gold price loses on every unit.
    dear = Promotion("flash", "秒杀", Layer.ITEM, FlashSalePrice(28000, stock_left=1))
    result = price_cart(make_cart(line, tier="gold"), [member, dear])
    assert result.totals.total == 54000
    assert not_applied(result) == {"flash": "no_benefit"}


def test_presale_deposit_counts_for_more_at_the_final_payment() -> None:
    # TV 2999.00, deposit 50.00 paid earlier counts as 100.00 (定金50抵100). Final payment before
    # order promotions: 2999.00 − 100.00 = 2899.00; 满2000减200 on the final payment → 2699.00.
    # The customer pays 50.00 + 2699.00 = 2749.00 in all: 250.00 less than the list price.
    manjian = Promotion("mj", "满2000减200", Layer.ORDER, SpendTiers(((200000, 20000),)))
    tv = Line("tv", "tv", 299900, 1, deposit_paid=5000, deposit_credit=10000)
    result = price_cart(make_cart(tv), [manjian])
    (line,) = result.lines
    assert (line.deposit_paid, line.deposit_credit, line.paid) == (5000, 10000, 269900)
    assert result.totals.deposit_credit == 10000
    assert result.totals.order_discount == 20000
    assert result.totals.total == 269900
    assert line.deposit_paid + line.paid == 274900


def test_points_are_capped_by_the_maximum_share() -> None:
    # 100.00; coupon 10.00 off → 90.00; points at 1 分 each, at most 20 % of 90.00 = 18.00:
    # 5000 points asked, 1800 used → 72.00. Gold earns 1.5 points per yuan: ⌊7200 × 1.5 / 100⌋ = 108.
    coupon = Coupon("TEN", Promotion("ten", "立减10元", Layer.COUPON, OrderAmountOff(1000)))
    cart = make_cart(Line("a", "A", 10000, 1), coupons=(coupon,),
                     points=PointsUse(5000, minor_per_point=1, max_share_bp=2000),
                     earn=EarnRule(minor_per_point=100, multiplier_bp=15000))
    result = price_cart(cart, [])
    assert result.points_used == 1800
    assert result.totals.points_discount == 1800
    assert result.totals.total == 7200
    assert result.points_to_earn == 108
    # Fewer points than the cap: all 1500 are used → 75.00.
    cart = make_cart(Line("a", "A", 10000, 1), coupons=(coupon,), points=PointsUse(1500, 1, 2000))
    assert price_cart(cart, []).totals.total == 7500


def test_three_way_rounding_and_an_exact_partial_refund() -> None:
    # 10.00 off three lines of 33.33: 1000·3333/9999 = 333.33 each → 333 × 3 = 999, 1 left; equal
    # remainders → the first line: 334, 333, 333. Paid 2999 + 3000 + 3000 = 89.99 = 99.99 − 10.00.
    promo = Promotion("ten", "立减10元", Layer.ORDER, OrderAmountOff(1000))
    result = price_cart(make_cart(Line("a", "A", 3333, 1), Line("b", "B", 3333, 1), Line("c", "C", 3333, 1)),
                        [promo])
    assert paid(result) == {"a": 2999, "b": 3000, "c": 3000}
    assert result.totals.total == 8999
    assert refund_amount(result, {"a": 1}) == 2999
    assert refund_amount(result, {"a": 1, "b": 1, "c": 1}) == 8999
    # One line of 3 × 33.33 pays 89.99; units take 3000, 3000, 2999 (largest remainder, first units
    # first); refunding one unit at a time returns 30.00, 30.00, 29.99 — exactly 89.99 in all.
    result = price_cart(make_cart(Line("t", "T", 3333, 3)), [promo])
    assert paid(result) == {"t": 8999}
    refunds = [refund_amount(result, {"t": 1}, already_refunded={"t": k}) for k in range(3)]
    assert refunds == [3000, 3000, 2999]
    with pytest.raises(PricingInputError, match="exceeds the 3 bought"):
        refund_amount(result, {"t": 2}, already_refunded={"t": 2})
    with pytest.raises(PricingInputError, match="no such line"):
        refund_amount(result, {"nope": 1})


def test_discounts_never_make_the_order_negative() -> None:
    # 10.00 off three lines of 3.33 (9.99): the discount stops at 9.99, the goods cost 0; shipping
    # 8.00 is priced separately.
    promo = Promotion("ten", "立减10元", Layer.ORDER, OrderAmountOff(1000))
    cart = make_cart(Line("a", "A", 333, 1), Line("b", "B", 333, 1), Line("c", "C", 333, 1), shipping_fee=800)
    result = price_cart(cart, [promo])
    assert result.totals.order_discount == 999
    assert result.totals.goods_total == 0
    assert result.totals.total == 800
    assert all(line.paid == 0 for line in result.lines)


def test_exclusive_promotions_compete_for_the_lowest_total() -> None:
    # 400.00. X: 30 % off, exclusive → 280.00. Z: 10 % off → 360.00, then Y 满250减60 → 300.00.
    # The engine keeps X (280.00 < 300.00) and says why Y and Z lost.
    x = Promotion("x", "全场7折", Layer.ITEM, PercentOff(3000), exclusive=True)
    y = Promotion("y", "满250减60", Layer.ORDER, SpendTiers(((25000, 6000),)))
    z = Promotion("z", "9折", Layer.ITEM, PercentOff(1000))
    line = Line("a", "A", 40000, 1)
    result = price_cart(make_cart(line), [y, z, x])
    assert result.totals.total == 28000
    assert not_applied(result) == {"y": "not_combinable", "z": "not_combinable"}
    assert "全场7折" in result.not_applied[0].reason
    # X at 20 % off (320.00) loses to Z + Y (300.00).
    x8 = Promotion("x", "全场8折", Layer.ITEM, PercentOff(2000), exclusive=True)
    result = price_cart(make_cart(line), [y, z, x8])
    assert result.totals.total == 30000
    assert {a.promotion_id for a in result.applied} == {"y", "z"}
    # X may name what it combines with: with the order layer allowed, X + Y = 280.00 − 60.00
    # (280.00 ≥ 250.00).
    x_with_orders = Promotion("x", "全场7折", Layer.ITEM, PercentOff(3000), exclusive=True,
                              combines_with=frozenset({"order"}))
    assert price_cart(make_cart(line), [y, z, x_with_orders]).totals.total == 22000


def test_an_item_discount_that_would_lose_a_threshold_is_left_out() -> None:
    # 200.00 with 满200减30 → 170.00. 5 % off alone would give 190.00, below the threshold: the
    # engine keeps the cheaper order (170.00) and explains that the 5 % would cost more.
    manjian = Promotion("mj", "满200减30", Layer.ORDER, SpendTiers(((20000, 3000),)))
    five = Promotion("five", "95折", Layer.ITEM, PercentOff(500))
    result = price_cart(make_cart(Line("a", "A", 20000, 1)), [manjian, five])
    assert result.totals.total == 17000
    assert not_applied(result) == {"five": "worse_combination"}


def test_conditions_filter_before_the_search() -> None:
    later = NOW + timedelta(days=1)
    promos = [
        Promotion("app", "App专享", Layer.ITEM, PercentOff(1000), Conditions(channels=frozenset({"app"}))),
        Promotion("gold", "金卡9折", Layer.ITEM, PercentOff(1000), Conditions(tiers=frozenset({"gold"}))),
        Promotion("vip", "VIP", Layer.ITEM, PercentOff(1000), Conditions(segments=frozenset({"vip"}))),
        Promotion("soon", "预热", Layer.ITEM, PercentOff(1000), Conditions(starts_at=later)),
        Promotion("over", "已结束", Layer.ITEM, PercentOff(1000), Conditions(ends_at=NOW)),
        Promotion("shoes", "鞋类", Layer.ITEM, PercentOff(1000), Conditions(categories=frozenset({"shoes"}))),
        Promotion("three", "3件起", Layer.ITEM, AmountOff(100), Conditions(min_quantity=3)),
    ]
    new_customer = Coupon("NEW", Promotion("new", "新人券", Layer.COUPON, OrderAmountOff(1000),
                                           Conditions(first_order_only=True)))
    result = price_cart(make_cart(Line("a", "A", 10000, 2, category="bags"), coupons=(new_customer,),
                                  channel="web", tier="silver", segments=frozenset({"dormant"})), promos)
    assert result.totals.total == 20000
    assert not_applied(result) == {
        "app": "wrong_channel", "gold": "wrong_tier", "vip": "wrong_segment", "soon": "not_started",
        "over": "ended", "shoes": "no_eligible_lines", "three": "below_min_quantity",
        "new": "not_first_order"}
    assert {n.promotion_id: n.message for n in result.nudges} == {
        "three": "add 1 more qualifying item to get 3件起"}
    # The same cart as a first order on the app by a gold VIP: everything that can apply does.
    result = price_cart(make_cart(Line("a", "A", 10000, 2, category="bags"), coupons=(new_customer,),
                                  channel="app", tier="gold", segments=frozenset({"vip"}),
                                  is_first_order=True),
                        promos)
    # Three 10 % item promotions on 200.00 add up on the same base: 3 × 20.00; then 10.00 coupon.
    assert result.totals.item_discount == 6000
    assert result.totals.total == 13000


def test_gift_and_free_shipping_over_a_threshold() -> None:
    # 满199包邮 and 满299赠帆布袋. 250.00: free shipping (8.00 waived), the gift is 49.00 away.
    free = Promotion("ship", "满199包邮", Layer.ORDER, FreeShipping(), Conditions(min_amount=19900))
    gift = Promotion("gift", "满299赠帆布袋", Layer.ORDER, GiftWithPurchase("tote", 1, value=3900),
                     Conditions(min_amount=29900))
    result = price_cart(make_cart(Line("a", "A", 25000, 1), shipping_fee=800), [free, gift])
    assert (result.totals.shipping_discount, result.totals.shipping, result.totals.total) == (800, 0, 25000)
    assert not_applied(result) == {"gift": "below_min_amount"}
    assert [n.message for n in result.nudges] == ["spend 49.00 more to get 1 × tote free"]
    result = price_cart(make_cart(Line("a", "A", 30000, 1), shipping_fee=800), [free, gift])
    gift_line = result.lines[-1]
    assert (gift_line.line_id, gift_line.sku, gift_line.paid, gift_line.is_gift) == (
        "gift:gift", "tote", 0, True)
    assert result.totals.total == 30000


def test_percentage_coupon_with_cap_on_eligible_categories_only() -> None:
    # 20 % off beauty, at most 30.00: beauty 200.00 → 40.00 → capped 30.00; the book is untouched.
    coupon = Coupon("BEAUTY", Promotion("beauty", "美妆8折券", Layer.COUPON, OrderPercentOff(2000, cap=3000),
                                        Conditions(categories=frozenset({"beauty"}))))
    result = price_cart(make_cart(Line("l", "lipstick", 20000, 1, category="beauty"),
                                  Line("b", "book", 5000, 1, category="books"), coupons=(coupon,)), [])
    assert paid(result) == {"l": 17000, "b": 5000}


def test_points_earned_round_down() -> None:
    # 1 point per yuan × 1.2 (silver): 99.99 → ⌊119.988⌋ = 119.
    assert points_for_payment(9999, EarnRule(100, 12000)) == 119
    assert points_for_payment(0, EarnRule()) == 0


def test_money_text_uses_the_currency_exponent() -> None:
    assert format_money(1200, "CNY") == "12.00"
    assert format_money(1200, "JPY") == "1200"
    assert format_money(1200, "KWD") == "1.200"


def test_bad_input_names_the_field() -> None:
    with pytest.raises(PricingInputError, match=r"Line 'a'.quantity"):
        Line("a", "A", 100, 0)
    with pytest.raises(PricingInputError, match=r"PercentOff\.rate_bp"):
        PercentOff(0)
    with pytest.raises(PricingInputError, match=r"SpendTiers\.tiers: thresholds must increase"):
        SpendTiers(((30000, 5000), (20000, 2000)))
    with pytest.raises(PricingInputError, match="layer must be 'item'"):
        Promotion("p", "p", Layer.ORDER, PercentOff(1000))
    with pytest.raises(PricingInputError, match=r"Cart\.currency"):
        Cart("XXX", Customer(NOW), (Line("a", "A", 100, 1),))
    with pytest.raises(PricingInputError, match=r"Customer\.now"):
        Customer(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive datetime is the error under test
    promo = Promotion("p", "p", Layer.ITEM, PercentOff(1000))
    with pytest.raises(PricingInputError, match="duplicate promotion id 'p'"):
        price_cart(make_cart(Line("a", "A", 100, 1)), [promo, promo])


def test_without_explain_all_the_promotions_no_product_of_the_cart_is_for_are_only_counted() -> None:
    """A checkout's answer names what concerns the cart: a 200-promotion shop's ``not_applied``
    would otherwise list nearly every promotion ("no product in the cart qualifies")."""
    ten = PercentOff(1000)
    promos = [
        Promotion("tea", "tea 10%", Layer.ITEM, ten, Conditions(skus=frozenset({"TEA"}))),  # applies
        Promotion("shoes", "shoes 10%", Layer.ITEM, ten, Conditions(skus=frozenset({"SHOE"}))),
        Promotion("app-shoes", "app shoes", Layer.ITEM, ten,  # a context condition, no product either
                  Conditions(skus=frozenset({"SHOE"}), channels=frozenset({"app"}))),
        Promotion("bundle", "camera + card", Layer.ITEM, BundlePrice(frozenset({"camera", "sd"}), 99900)),
        Promotion("app-all", "app 5% off everything", Layer.ORDER, OrderPercentOff(500),  # concerns it
                  Conditions(channels=frozenset({"app"}))),
        Promotion("cup-min", "cups, 3 or more", Layer.ITEM, ten,  # a product is for it: the near miss
                  Conditions(skus=frozenset({"CUP"}), min_quantity=3)),
    ]
    cart = make_cart(Line("1", "TEA", 10000, 1), Line("2", "CUP", 2000, 1), channel="web")
    everything = price_cart(cart, promos)
    concerned = price_cart(replace(cart, explain_all=False), promos)
    assert not_applied(everything) == {"shoes": "no_eligible_lines", "app-shoes": "wrong_channel",
                                       "bundle": "incomplete_bundle", "app-all": "wrong_channel",
                                       "cup-min": "below_min_quantity"}
    assert everything.elsewhere == 0
    assert not_applied(concerned) == {"app-all": "wrong_channel", "cup-min": "below_min_quantity"}
    assert concerned.elsewhere == 3
    assert (concerned.totals, concerned.applied, concerned.nudges) == (
        everything.totals, everything.applied, everything.nudges)
