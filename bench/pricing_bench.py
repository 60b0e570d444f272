"""Benchmark: pricing a 10-line cart against 200 active promotions, in process.

A generated shop (40 categories, 600 skus) runs 200 promotions at once, the mix a big sale has:
category discounts, sku discounts, flash sales, member price, 第二件半价, bundles, 满减 tiers,
每满减, 满件折, gifts, free shipping, some of them exclusive, restricted to a channel, a tier, a
customer segment or a time window (a fifth of them not running now). Each run prices a different
10-line cart (drawn once, deterministically) with two coupons and points, and the p50 / p99 of
:func:`growthwheel.promotions.rules.price_cart` over ``--runs`` carts are printed.

Baselines measured in the same run:

* **sum of lines** — ``Σ unit_price × quantity`` of the same carts: the floor of any pricing, so the
  ratio says what the promotions cost on top of reading the cart;
* **naive subsets** — the best price found by pricing every subset of a smaller set (12 promotions
  that apply to one cart, 4096 subsets) one by one, against the engine on the same 12 promotions;
  the two must give the same total (printed as a check).

Usage: ``python bench/pricing_bench.py [--runs 5000] [--seed 7]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import combinations

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
    Promotion,
    QuantityTiers,
    Reward,
    SpendTiers,
    price_cart,
)

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)
CATEGORIES = [f"cat{n:02d}" for n in range(40)]
SKUS = [f"sku{n:03d}" for n in range(600)]
CATEGORY_OF = {sku: CATEGORIES[n % len(CATEGORIES)] for n, sku in enumerate(SKUS)}
PRICE_OF = {sku: 990 + (n * 7919) % 40000 for n, sku in enumerate(SKUS)}


def build_promotions(rnd: random.Random) -> list[Promotion]:
    """200 promotions; about a fifth outside their time window, some restricted to a context."""
    promos: list[Promotion] = []

    def add(layer: Layer, reward: Reward, conditions: Conditions, exclusive: bool = False) -> None:
        n = len(promos)
        window = rnd.random()
        if window < 0.1:  # ended
            conditions = Conditions(**{**conditions.__dict__, "ends_at": NOW - timedelta(days=1)})
        elif window < 0.2:  # not started
            conditions = Conditions(**{**conditions.__dict__, "starts_at": NOW + timedelta(days=1)})
        context = rnd.random()
        if context < 0.1:
            conditions = Conditions(**{**conditions.__dict__, "channels": frozenset({"app"})})
        elif context < 0.15:
            conditions = Conditions(**{**conditions.__dict__, "tiers": frozenset({"platinum"})})
        elif context < 0.2:
            conditions = Conditions(**{**conditions.__dict__, "segments": frozenset({"dormant"})})
        promos.append(Promotion(f"promo{n:03d}", f"promotion {n}", layer, reward, conditions, exclusive,
                                frozenset({"coupon"}) if exclusive else frozenset(), rnd.randint(0, 3)))

    def cats(k: int) -> frozenset[str]:
        return frozenset(rnd.sample(CATEGORIES, k))

    def skus(k: int) -> frozenset[str]:
        return frozenset(rnd.sample(SKUS, k))

    for _ in range(50):
        add(Layer.ITEM, PercentOff(rnd.choice([500, 1000, 1500, 2000])), Conditions(categories=cats(1)),
            exclusive=rnd.random() < 0.2)
    for _ in range(30):
        add(Layer.ITEM, AmountOff(rnd.choice([300, 500, 1000])), Conditions(skus=skus(4)))
    for _ in range(20):
        sku = rnd.choice(SKUS)
        add(Layer.ITEM, FlashSalePrice(PRICE_OF[sku] * 6 // 10, rnd.randint(0, 20)),
            Conditions(skus=frozenset({sku})))
    add(Layer.ITEM, MemberPrice(), Conditions())
    for _ in range(15):
        add(Layer.ITEM, NthItemOff(2, 5000), Conditions(categories=cats(1)))
    for _ in range(15):
        pair = skus(2)
        add(Layer.ITEM, BundlePrice(pair, sum(PRICE_OF[s] for s in pair) * 85 // 100), Conditions())
    for _ in range(25):
        base = rnd.choice([10000, 15000, 20000])
        add(Layer.ORDER, SpendTiers(((base, base // 10), (base * 2, base // 4), (base * 4, base * 3 // 5))),
            Conditions(categories=cats(6)), exclusive=rnd.random() < 0.3)
    for _ in range(15):
        add(Layer.ORDER, EveryXOffY(rnd.choice([10000, 20000]), rnd.choice([1000, 1500]), 6000),
            Conditions(categories=cats(5)))
    for _ in range(15):
        add(Layer.ORDER, QuantityTiers(((2, 500), (3, 1000))), Conditions(categories=cats(4)))
    for _ in range(7):
        add(Layer.ORDER, GiftWithPurchase(rnd.choice(SKUS), 1, 2000),
            Conditions(min_amount=rnd.choice([20000, 50000])))
    for _ in range(7):
        add(Layer.ORDER, FreeShipping(), Conditions(min_amount=rnd.choice([9900, 19900])))
    assert len(promos) == 200, len(promos)
    return promos


def coupons() -> tuple[Coupon, ...]:
    return (
        Coupon("NEWYEAR20", Promotion("cp-amount", "满199减20", Layer.COUPON, OrderAmountOff(2000),
                                      Conditions(min_amount=19900))),
        Coupon("BEAUTY15", Promotion("cp-pct", "8.5折券", Layer.COUPON, OrderPercentOff(1500, cap=5000),
                                     Conditions(categories=frozenset(CATEGORIES[:20])))),
    )


def build_cart(rnd: random.Random, n_lines: int = 10) -> Cart:
    lines = []
    for n, sku in enumerate(rnd.sample(SKUS, n_lines)):
        price = PRICE_OF[sku]
        lines.append(Line(f"line{n}", sku, price, rnd.choice([1, 1, 1, 2, 3]), category=CATEGORY_OF[sku],
                          member_prices={"gold": price * 95 // 100}))
    customer = Customer(NOW, customer_id="C1", tier=rnd.choice(["gold", "silver"]),
                        segments=frozenset({"active"}), channel=rnd.choice(["app", "web"]))
    return Cart("CNY", customer, tuple(lines), coupons(), PointsUse(rnd.randint(0, 3000), 1, 3000),
                EarnRule(100, 10000), shipping_fee=800)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rnd = random.Random(args.seed)
    promos = build_promotions(rnd)
    carts = [build_cart(rnd) for _ in range(args.runs)]

    for cart in carts[:50]:  # warm-up
        price_cart(cart, promos)
    engine: list[float] = []
    applied = inexact = 0
    for cart in carts:
        started = time.perf_counter()
        result = price_cart(cart, promos)
        engine.append(time.perf_counter() - started)
        applied += len(result.applied)
        inexact += not result.exact
    summing: list[float] = []
    for cart in carts:
        started = time.perf_counter()
        sum(line.unit_price * line.quantity for line in cart.lines)
        summing.append(time.perf_counter() - started)

    p50, p99 = percentile(engine, 0.5) * 1e3, percentile(engine, 0.99) * 1e3
    base50 = percentile(summing, 0.5) * 1e3
    print(f"price_cart, 10 lines x 200 promotions + 2 coupons + points, {args.runs} carts")
    print(f"  p50 {p50:.3f} ms   p99 {p99:.3f} ms   max {max(engine) * 1e3:.3f} ms   "
          f"mean {statistics.fmean(engine) * 1e3:.3f} ms   "
          f"(target p99 < 2 ms: {'met' if p99 < 2 else 'MISSED'})")
    print(f"  {applied / args.runs:.1f} promotions applied per cart; {inexact} carts needed the fallback")
    print(f"  baseline sum of lines: p50 {base50 * 1e3:.2f} us -> "
          f"pricing costs {p50 / base50:.0f}x reading the cart")

    # Naive baseline: every subset of 12 promotions that apply to one cart, each priced on its own.
    cart = carts[0]
    first = price_cart(cart, promos)
    competing = {"not_combinable", "worse_combination", "no_benefit", "below_threshold", "below_min_amount"}
    ids = {a.promotion_id for a in first.applied} | {n.promotion_id for n in first.not_applied
                                                     if n.code in competing}
    useful = [p for p in promos if p.id in ids]
    others = [p for p in promos
              if p not in useful and p.conditions.starts_at is None and p.conditions.ends_at is None]
    small = (useful + others)[:12]
    started = time.perf_counter()
    naive_best = min(price_cart(cart, list(subset)).totals.total
                     for k in range(len(small) + 1) for subset in combinations(small, k))
    naive = time.perf_counter() - started
    repeats = 200
    started = time.perf_counter()
    for _ in range(repeats):
        engine_best = price_cart(cart, small).totals.total
    ours = (time.perf_counter() - started) / repeats
    print(f"baseline naive subsets, 12 promotions ({2 ** len(small)} subsets): {naive * 1e3:.1f} ms; "
          f"engine {ours * 1e3:.3f} ms -> {naive / ours:.0f}x faster; "
          f"same total: {naive_best == engine_best} "
          f"({naive_best} vs {engine_best})")
    return 0 if naive_best == engine_best else 1


if __name__ == "__main__":
    sys.exit(main())
