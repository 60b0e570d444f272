"""Benchmark: pricing a 10-line cart against 200 active promotions, in process.

Two scenarios, each over its own deterministic set of random 10-line carts:

* **realistic** — a shop of 2,000 skus in 40 categories running 200 promotions, all inside their time
  window (some restricted to a channel, tier or customer segment): most target one category or a sku
  set (category percentages, sku amount-off, flash sales, 第二件半价, bundles, category 满减 /
  每满减 / 满件折), a few are store-wide (three 满减 ladders, one free shipping, one gift, the member
  price); each customer brings 0-3 coupons from a pool and half of them spend points. Carts draw
  70 % of their lines from the whole catalogue and 30 % from 100 best sellers (where the flash sales
  and bundles are), so a cart meets the handful of promotions a real one would.
* **heavy overlap** (worst case) — the earlier set: 600 skus, 25 category 满减 on 6 categories
  each, 7 store-wide gifts and 7 free-shipping thresholds, so ~90 promotions pass their conditions
  on every cart and most of them could change a later threshold; the exact search fits about half
  of the carts, the layer-by-layer fallback prices the rest.

Both price against a :class:`PromotionIndex` built once (what an API process does: the active set
changes rarely, carts come all the time); the realistic scenario also reports ``price_cart`` with a
plain list (the index built on every call).

Baselines measured in the same run:

* **sum of lines** — ``Σ unit_price × quantity`` of the same carts: the floor of any pricing;
* **naive subsets** — the best price found by pricing every subset of 12 promotions that compete for
  one cart (4096 subsets, each priced on its own), against the engine on the same 12 promotions; the
  two must give the same total (asserted: the engine's search is exact there).

Robustness: ``--busy`` runs a CPU-burning thread in the same process for the whole measurement (a
busy machine, and the GIL shared with another thread, as in a server); ``--compare SRC`` also loads
the pricing core of another checkout (``SRC`` is its ``src/`` directory, e.g. a ``git archive`` of an
older commit) and prices the same carts with both, cart by cart interleaved, so the before / after
ratio comes from one run under the same load.

Every scenario reports wall time and the CPU time of the pricing thread per cart (``thread_time``:
on a loaded machine it leaves out the waits for a core). With ``--compare`` every cart's result of
both cores must be identical (asserted, realistic and heavy-overlap carts), and ``--rounds N``
repeats the interleaved timing N times and reports the medians, and the mean CPU of the slowest 1 %
of carts (by the old core's least CPU over the rounds: the carts the exact search works hardest on).

Interpreter: like ``growthwheel serve`` once its application is loaded, the bench freezes what
exists at start-up out of the garbage collector's sight (``growthwheel.kit.runtime``);
``--python-defaults`` measures with Python's own settings. Only a summary of each priced cart is
kept during the timing (a server drops each result once answered).

Usage: ``python bench/pricing_bench.py [--runs 5000] [--heavy-runs 2000] [--seed 7] [--busy]
[--compare OLD/src [--rounds 3] [--only-compare]] [--python-defaults]``
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path
from types import ModuleType

from growthwheel.kit.runtime import tune_interpreter
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
    Promotion,
    PromotionIndex,
    QuantityTiers,
    Reward,
    SpendTiers,
    price_cart,
)

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)

# --------------------------------------------------------------------------------------------------
# Realistic scenario: 2,000 skus, 40 categories, 200 active promotions, 0-3 coupons per customer
# --------------------------------------------------------------------------------------------------

SHOP_CATEGORIES = [f"c{n:02d}" for n in range(40)]
SHOP_SKUS = [f"s{n:04d}" for n in range(2000)]
SHOP_CATEGORY_OF = {sku: SHOP_CATEGORIES[n % 40] for n, sku in enumerate(SHOP_SKUS)}
SHOP_PRICE_OF = {sku: 990 + (n * 7919) % 60000 for n, sku in enumerate(SHOP_SKUS)}
BEST_SELLERS = SHOP_SKUS[::20]  # 100 skus, all categories


def realistic_promotions(rnd: random.Random) -> list[Promotion]:
    """200 running promotions: ~190 on a category or a sku set, a few store-wide."""
    promos: list[Promotion] = []

    def add(layer: Layer, reward: Reward, conditions: Conditions, exclusive: bool = False) -> None:
        n = len(promos)
        context = rnd.random()
        if context < 0.06:
            conditions = replace(conditions, channels=frozenset({"app"}))
        elif context < 0.10:
            conditions = replace(conditions, tiers=frozenset({"gold", "platinum"}))
        elif context < 0.13:
            conditions = replace(conditions, segments=frozenset({"dormant"}))
        promos.append(Promotion(f"r{n:03d}", f"promotion {n}", layer, reward, conditions, exclusive,
                                frozenset({"coupon"}) if exclusive else frozenset(), rnd.randint(0, 3)))

    def cats(k: int) -> frozenset[str]:
        return frozenset(rnd.sample(SHOP_CATEGORIES, k))

    for _ in range(70):  # category sales, one in ten not combinable with other promotions
        add(Layer.ITEM, PercentOff(rnd.choice([500, 1000, 1500, 2000])), Conditions(categories=cats(1)),
            exclusive=rnd.random() < 0.1)
    for _ in range(40):  # brand / collection: amount off a sku set
        add(Layer.ITEM, AmountOff(rnd.choice([300, 500, 1000])),
            Conditions(skus=frozenset(rnd.sample(SHOP_SKUS, rnd.randint(5, 20)))))
    for sku in rnd.sample(BEST_SELLERS, 25):  # flash sales on best sellers
        add(Layer.ITEM, FlashSalePrice(SHOP_PRICE_OF[sku] * 6 // 10, rnd.randint(0, 50)),
            Conditions(skus=frozenset({sku})))
    add(Layer.ITEM, MemberPrice(), Conditions())
    for _ in range(15):
        add(Layer.ITEM, NthItemOff(2, 5000), Conditions(categories=cats(1)))
    for _ in range(15):
        pair = frozenset({rnd.choice(BEST_SELLERS), rnd.choice(SHOP_SKUS)})
        if len(pair) < 2:
            pair = frozenset({SHOP_SKUS[len(promos)], SHOP_SKUS[len(promos) + 1]})
        add(Layer.ITEM, BundlePrice(pair, sum(SHOP_PRICE_OF[s] for s in pair) * 85 // 100), Conditions())
    for _ in range(15):  # category 满减
        base = rnd.choice([10000, 20000, 30000])
        add(Layer.ORDER, SpendTiers(((base, base // 10), (base * 2, base // 4))),
            Conditions(categories=cats(rnd.randint(1, 3))), exclusive=rnd.random() < 0.2)
    for _ in range(8):
        add(Layer.ORDER, EveryXOffY(rnd.choice([10000, 20000]), rnd.choice([1000, 1500]), 6000),
            Conditions(categories=cats(rnd.randint(1, 2))))
    for _ in range(6):
        add(Layer.ORDER, QuantityTiers(((2, 500), (3, 1000))), Conditions(categories=cats(1)))
    # store-wide: three 满减 ladders (one not combinable), free shipping, a gift
    add(Layer.ORDER, SpendTiers(((19900, 2000), (39900, 5000), (79900, 12000))), Conditions())
    add(Layer.ORDER, SpendTiers(((29900, 3000), (59900, 8000))), Conditions(), exclusive=True)
    add(Layer.ORDER, SpendTiers(((99900, 15000),)), Conditions())
    add(Layer.ORDER, FreeShipping(), Conditions(min_amount=9900))
    add(Layer.ORDER, GiftWithPurchase(rnd.choice(SHOP_SKUS), 1, 2000), Conditions(min_amount=50000))
    assert len(promos) == 200, len(promos)
    return promos


def coupon_pool(rnd: random.Random) -> list[Coupon]:
    """Coupons customers hold: store-wide thresholds, category percentages, new-customer, win-back."""
    pool = [
        Coupon("ALL20", Promotion("k-all20", "满199减20", Layer.COUPON, OrderAmountOff(2000),
                                  Conditions(min_amount=19900))),
        Coupon("ALL50", Promotion("k-all50", "满499减50", Layer.COUPON, OrderAmountOff(5000),
                                  Conditions(min_amount=49900))),
        Coupon("NEW15", Promotion("k-new", "新人券", Layer.COUPON, OrderAmountOff(1500),
                                  Conditions(first_order_only=True))),
        Coupon("BACK30", Promotion("k-back", "回归券", Layer.COUPON, OrderAmountOff(3000),
                                   Conditions(min_amount=15000, segments=frozenset({"dormant"})))),
    ]
    for n in range(8):
        pool.append(Coupon(f"CAT{n}", Promotion(
            f"k-cat{n}", f"category coupon {n}", Layer.COUPON, OrderPercentOff(1500, cap=5000),
            Conditions(categories=frozenset(rnd.sample(SHOP_CATEGORIES, 4))))))
    return pool


def realistic_cart(rnd: random.Random, pool: Sequence[Coupon], n_lines: int = 10) -> Cart:
    """10 distinct skus (30 % best sellers), 0-3 coupons, points half of the time."""
    skus: list[str] = []
    while len(skus) < n_lines:
        sku = rnd.choice(BEST_SELLERS) if rnd.random() < 0.3 else rnd.choice(SHOP_SKUS)
        if sku not in skus:
            skus.append(sku)
    lines = []
    for n, sku in enumerate(skus):
        price = SHOP_PRICE_OF[sku]
        member = {"gold": price * 95 // 100} if n % 3 == 0 else {}
        lines.append(Line(f"line{n}", sku, price, rnd.choice([1, 1, 1, 2, 3]),
                          category=SHOP_CATEGORY_OF[sku], member_prices=member))
    customer = Customer(NOW, customer_id=f"C{rnd.randint(1, 10**6)}",
                        tier=rnd.choice([None, "silver", "gold"]),
                        segments=frozenset({rnd.choice(["active", "active", "dormant"])}),
                        is_first_order=rnd.random() < 0.1, channel=rnd.choice(["app", "web", "mini"]))
    coupons = tuple(rnd.sample(list(pool), rnd.randint(0, 3)))
    points = PointsUse(rnd.randint(0, 5000), 1, 2000) if rnd.random() < 0.5 else None
    return Cart("CNY", customer, tuple(lines), coupons, points, EarnRule(100, 10000), shipping_fee=800)


# --------------------------------------------------------------------------------------------------
# Heavy-overlap scenario (worst case): the earlier generator, unchanged
# --------------------------------------------------------------------------------------------------

CATEGORIES = [f"cat{n:02d}" for n in range(40)]
SKUS = [f"sku{n:03d}" for n in range(600)]
CATEGORY_OF = {sku: CATEGORIES[n % len(CATEGORIES)] for n, sku in enumerate(SKUS)}
PRICE_OF = {sku: 990 + (n * 7919) % 40000 for n, sku in enumerate(SKUS)}


def heavy_promotions(rnd: random.Random) -> list[Promotion]:
    """200 promotions, a fifth outside their time window, heavily overlapping on every cart."""
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


def heavy_coupons() -> tuple[Coupon, ...]:
    """The two coupons every heavy-overlap cart brings."""
    return (
        Coupon("NEWYEAR20", Promotion("cp-amount", "满199减20", Layer.COUPON, OrderAmountOff(2000),
                                      Conditions(min_amount=19900))),
        Coupon("BEAUTY15", Promotion("cp-pct", "8.5折券", Layer.COUPON, OrderPercentOff(1500, cap=5000),
                                     Conditions(categories=frozenset(CATEGORIES[:20])))),
    )


def heavy_cart(rnd: random.Random, n_lines: int = 10) -> Cart:
    """10 random skus of the small catalogue, two coupons and points."""
    lines = []
    for n, sku in enumerate(rnd.sample(SKUS, n_lines)):
        price = PRICE_OF[sku]
        lines.append(Line(f"line{n}", sku, price, rnd.choice([1, 1, 1, 2, 3]), category=CATEGORY_OF[sku],
                          member_prices={"gold": price * 95 // 100}))
    customer = Customer(NOW, customer_id="C1", tier=rnd.choice(["gold", "silver"]),
                        segments=frozenset({"active"}), channel=rnd.choice(["app", "web"]))
    return Cart("CNY", customer, tuple(lines), heavy_coupons(), PointsUse(rnd.randint(0, 3000), 1, 3000),
                EarnRule(100, 10000), shipping_fee=800)


# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass(frozen=True)
class Summary:
    """What the report reads of a priced cart (a server drops each result once answered: keeping
    thousands of whole results alive would make the garbage collector walk them during the timing)."""

    exact: bool
    applied: int
    competing: int


def timed(carts: Sequence[Cart], price: Callable[[Cart], PricedCart],
          keep: int = 0) -> tuple[list[float], list[float], list[Summary], list[PricedCart]]:
    """Per-cart wall time and CPU time of this thread (s) of ``price``, a summary of each result and
    the first ``keep`` results whole, after a warm-up of 50 carts. CPU time is what a loaded machine
    disturbs least (waiting for a core is not counted; cache and frequency effects of the load still
    are)."""
    for cart in carts[:50]:
        price(cart)
    samples: list[float] = []
    cpu: list[float] = []
    summaries: list[Summary] = []
    kept: list[PricedCart] = []
    for cart in carts:
        started, started_cpu = time.perf_counter(), time.thread_time()
        result = price(cart)
        cpu.append(time.thread_time() - started_cpu)
        samples.append(time.perf_counter() - started)
        summaries.append(Summary(result.exact, len(result.applied), len(result.applied) + sum(
            n.code in COMPETING for n in result.not_applied)))
        if len(kept) < keep:
            kept.append(result)
    return samples, cpu, summaries, kept


def report(title: str, samples: list[float], cpu: list[float], results: list[Summary]) -> float:
    """Print p50 / p99 / max of wall and CPU time and the share of exact searches; return p50 in ms."""
    p50, p99 = percentile(samples, 0.5) * 1e3, percentile(samples, 0.99) * 1e3
    c50, c99 = percentile(cpu, 0.5) * 1e3, percentile(cpu, 0.99) * 1e3
    exact = sum(r.exact for r in results)
    applied = statistics.fmean(r.applied for r in results)
    competing = statistics.fmean(r.competing for r in results)
    print(f"{title}, {len(samples)} carts")
    print(f"  wall p50 {p50:.3f} ms   p99 {p99:.3f} ms   max {max(samples) * 1e3:.3f} ms   "
          f"mean {statistics.fmean(samples) * 1e3:.3f} ms   "
          f"(target p99 < 2 ms: {'met' if p99 < 2 else 'MISSED'})")
    print(f"  cpu  p50 {c50:.3f} ms   p99 {c99:.3f} ms   max {max(cpu) * 1e3:.3f} ms   "
          f"mean {statistics.fmean(cpu) * 1e3:.3f} ms   "
          f"(target p99 < 2 ms: {'met' if c99 < 2 else 'MISSED'})")
    print(f"  exact search {exact / len(results):.1%} of carts; {applied:.1f} applied and "
          f"~{competing:.1f} competing promotions per cart")
    return p50


#: Not-applied codes of promotions that passed their conditions and took part in the search.
COMPETING = {"not_combinable", "worse_combination", "no_benefit", "below_threshold", "below_min_amount"}


def naive_baseline(carts: Sequence[Cart], promos: list[Promotion]) -> None:
    """Every subset of 12 promotions competing for one cart, each priced alone, vs the engine."""
    for cart in carts:
        cart = replace(cart, coupons=(), points=None)
        first = price_cart(cart, promos)
        ids = {a.promotion_id for a in first.applied} | {n.promotion_id for n in first.not_applied
                                                         if n.code in COMPETING}
        small = [p for p in promos if p.id in ids][:12]
        if len(small) == 12 and price_cart(cart, small).exact:
            break
    else:
        raise SystemExit("no cart with 12 competing promotions and an exact search")
    started = time.perf_counter()
    naive_best = min(price_cart(cart, list(subset)).totals.total
                     for k in range(len(small) + 1) for subset in combinations(small, k))
    naive = time.perf_counter() - started
    index = PromotionIndex(small)
    repeats = 200
    started = time.perf_counter()
    for _ in range(repeats):
        engine_best = price_cart(cart, index).totals.total
    ours = (time.perf_counter() - started) / repeats
    assert naive_best == engine_best, (naive_best, engine_best)
    print(f"baseline naive subsets, 12 competing promotions ({2 ** len(small)} subsets): "
          f"{naive * 1e3:.1f} ms; engine {ours * 1e3:.3f} ms -> {naive / ours:.0f}x faster; "
          f"same total {engine_best} (asserted)")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def plain(result: object) -> object:
    """A priced cart as plain data (dicts, lists, str-valued enums), comparable across two copies of
    the pricing core whose classes differ."""
    return dataclasses.asdict(result)  # type: ignore[call-overload]


def compare(src: Path, runs: int, seed: int, rounds: int) -> None:
    """The same carts priced by the pricing core under ``src`` (before) and this one (after), cart by
    cart interleaved (odd carts old first), in this process, ``rounds`` times: p50 / p99 of wall and
    CPU time and the exact-search share of each, the median over the rounds and the ratios.

    Every result of both cores is compared field by field (totals, per-line discounts, applied and
    not-applied lists with their codes, reasons and nudges, points, exactness) on the realistic
    carts and on the heavy-overlap carts: a speed-up must not change any price (asserted)."""
    rules_name = "growthwheel.promotions.rules"
    package = src / "growthwheel" / "promotions" / "rules"
    current = {name: module for name, module in sys.modules.items()
               if name == rules_name or name.startswith(rules_name + ".")}
    for name in current:
        del sys.modules[name]
    try:
        if package.is_dir():
            # The old package under the package's own name, so that its absolute imports of its
            # submodules load the old files (not this tree's, already in sys.modules).
            spec = importlib.util.spec_from_file_location(
                rules_name, package / "__init__.py", submodule_search_locations=[str(package)])
            assert spec is not None
            assert spec.loader is not None
            old_rules = importlib.util.module_from_spec(spec)
            sys.modules[rules_name] = old_rules
            spec.loader.exec_module(old_rules)
        else:  # a single-module core (before the package split)
            old_rules = _load(rules_name, package.with_suffix(".py"))
        old_files = {getattr(module, "__file__", "") for name, module in sys.modules.items()
                     if name == rules_name or name.startswith(rules_name + ".")}
        assert all(str(src) in file for file in old_files), old_files  # the old core, all of it
        old_bench = _load("pricing_bench_before", Path(__file__))  # the same generators, old classes
    finally:
        for name in [name for name in sys.modules if name == rules_name or name.startswith(rules_name + ".")]:
            del sys.modules[name]
        sys.modules.update(current)
    assert old_rules.price_cart is not sys.modules[rules_name].price_cart
    current_rules = sys.modules[rules_name]

    def setup(module: ModuleType, rules: ModuleType) -> tuple[object, list[object]]:
        rnd = random.Random(seed)
        promos = module.realistic_promotions(rnd)
        pool = module.coupon_pool(rnd)
        return rules.PromotionIndex(promos), [module.realistic_cart(rnd, pool) for _ in range(runs)]

    def setup_heavy(module: ModuleType, rules: ModuleType) -> tuple[object, list[object]]:
        rnd = random.Random(seed)
        promos = module.heavy_promotions(rnd)
        return rules.PromotionIndex(promos), [module.heavy_cart(rnd) for _ in range(max(100, runs // 4))]

    this = sys.modules[__name__]
    sides = [(old_rules, *setup(old_bench, old_rules)), (current_rules, *setup(this, current_rules))]
    heavy = [(old_rules, *setup_heavy(old_bench, old_rules)),
             (current_rules, *setup_heavy(this, current_rules))]
    for name, pair in (("realistic", sides), ("heavy overlap", heavy)):
        (old, old_index, old_carts), (new, new_index, new_carts) = pair
        for n, (a, b) in enumerate(zip(old_carts, new_carts, strict=True)):
            before, after = plain(old.price_cart(a, old_index)), plain(new.price_cart(b, new_index))
            assert before == after, f"{name} cart {n}: the result differs from {src}'s"
        print(f"before/after: {len(old_carts)} {name} carts priced identically by both cores (asserted)")
    per_round: list[tuple[float, ...]] = []
    exact = [0, 0]
    before_cpu, after_cpu = [float("inf")] * runs, [float("inf")] * runs  # per cart, least over rounds
    for _ in range(rounds):
        for rules, index, carts in sides:
            for cart in carts[:50]:
                rules.price_cart(cart, index)
        samples: list[list[float]] = [[], []]
        cpu: list[list[float]] = [[], []]
        exact = [0, 0]
        for n in range(runs):
            for side in ((0, 1) if n % 2 else (1, 0)):
                rules, index, carts = sides[side]
                started, started_cpu = time.perf_counter(), time.thread_time()
                exact[side] += rules.price_cart(carts[n], index).exact
                cpu[side].append(time.thread_time() - started_cpu)
                samples[side].append(time.perf_counter() - started)
        per_round.append(tuple(percentile(s, q) * 1e3 for s in (*samples, *cpu) for q in (0.5, 0.99)))
        for n, t in enumerate(cpu[0]):
            before_cpu[n] = min(before_cpu[n], t)
        for n, t in enumerate(cpu[1]):
            after_cpu[n] = min(after_cpu[n], t)
    medians = [statistics.median(r[k] for r in per_round) for k in range(8)]
    b50, b99, a50, a99, cb50, cb99, ca50, ca99 = medians
    # The carts the exact search works hardest on: the slowest 1 % before, each at its least CPU over
    # the rounds (what a cart costs, without the load's worst moments), before and after.
    slowest = sorted(range(runs), key=before_cpu.__getitem__)[-max(1, runs // 100):]
    tail_before = statistics.fmean(before_cpu[n] for n in slowest) * 1e3
    tail_after = statistics.fmean(after_cpu[n] for n in slowest) * 1e3
    print(f"before/after, realistic, {runs} carts interleaved, median of {rounds} round(s): "
          f"before ({src}) exact {exact[0] / runs:.1%}, after exact {exact[1] / runs:.1%}")
    print(f"  wall: before p50 {b50:.3f} ms p99 {b99:.3f} ms; after p50 {a50:.3f} ms p99 {a99:.3f} ms "
          f"-> p50 x{a50 / b50:.2f}, p99 x{a99 / b99:.2f}")
    print(f"  cpu:  before p50 {cb50:.3f} ms p99 {cb99:.3f} ms; after p50 {ca50:.3f} ms p99 {ca99:.3f} ms "
          f"-> p50 x{ca50 / cb50:.2f}, p99 x{ca99 / cb99:.2f}")
    print(f"  slowest 1 % of carts before ({len(slowest)}), least CPU of {rounds} round(s): before "
          f"{tail_before:.3f} ms, after {tail_after:.3f} ms -> x{tail_after / tail_before:.2f}")
    if rounds > 1:
        print("  per round (wall before p50/p99, after p50/p99, cpu before p50/p99, after p50/p99): "
              + "; ".join("/".join(f"{v:.2f}" for v in r) for r in per_round))


def main(argv: list[str] | None = None) -> int:
    """Run both scenarios and the baselines; print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000, help="carts of the realistic scenario")
    parser.add_argument("--heavy-runs", type=int, default=2000, help="carts of the heavy-overlap scenario")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--busy", action="store_true", help="a CPU-burning thread runs meanwhile")
    parser.add_argument("--compare", type=Path, help="src/ of another checkout: before / after ratios")
    parser.add_argument("--rounds", type=int, default=1, help="--compare: interleaved rounds (median)")
    parser.add_argument("--only-compare", action="store_true", help="--compare, then stop")
    parser.add_argument("--python-defaults", action="store_true",
                        help="keep Python's garbage collector and GIL settings instead of the server's")
    args = parser.parse_args(argv)
    if args.python_defaults:
        print(f"interpreter: Python's defaults (gc thresholds {gc.get_threshold()}, "
              f"switch interval {sys.getswitchinterval():.3f} s)")
    else:  # what `growthwheel serve` does once the application is loaded (kit/runtime.py)
        tune_interpreter()
        print(f"interpreter: the server's set-up (start-up objects frozen out of the collector, "
              f"switch interval {sys.getswitchinterval():.3f} s)")
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    stop = threading.Event()
    if args.busy:

        def burn() -> None:
            spins = 0
            while not stop.is_set():
                spins += 1

        threading.Thread(target=burn, daemon=True).start()
        print("busy: a CPU-burning thread runs in this process for the whole measurement")
    try:
        return _run(args)
    finally:
        stop.set()


def _run(args: argparse.Namespace) -> int:
    if args.compare is not None:
        compare(args.compare, max(200, args.runs // 2), args.seed, max(1, args.rounds))
        if args.only_compare:
            return 0

    rnd = random.Random(args.seed)
    promos = realistic_promotions(rnd)
    pool = coupon_pool(rnd)
    carts = [realistic_cart(rnd, pool) for _ in range(args.runs)]
    started = time.perf_counter()
    index = PromotionIndex(promos)
    built = time.perf_counter() - started
    print(f"PromotionIndex of {len(index)} promotions built in {built * 1e3:.2f} ms")
    listed = carts[:max(1, args.runs // 5)]
    samples, cpu, results, first = timed(carts, lambda cart: price_cart(cart, index), keep=200)
    p50 = report("realistic: 10 lines x 200 active promotions (2,000 skus / 40 categories), index reused",
                 samples, cpu, results)
    list_samples, list_cpu, list_results, list_first = timed(listed, lambda cart: price_cart(cart, promos),
                                                             keep=200)
    assert list_first == first[:len(list_first)]  # the index changes the speed, never the price
    report("realistic, plain list (index built on every call)", list_samples, list_cpu, list_results)
    summing: list[float] = []
    for cart in carts:
        started = time.perf_counter()
        sum(line.unit_price * line.quantity for line in cart.lines)
        summing.append(time.perf_counter() - started)
    base50 = percentile(summing, 0.5) * 1e3
    print(f"  baseline sum of lines: p50 {base50 * 1e3:.2f} us -> "
          f"pricing costs {p50 / base50:.0f}x reading the cart")

    hrnd = random.Random(args.seed)
    heavy = heavy_promotions(hrnd)
    heavy_carts = [heavy_cart(hrnd) for _ in range(args.heavy_runs)]
    heavy_index = PromotionIndex(heavy)
    samples, cpu, results, _ = timed(heavy_carts, lambda cart: price_cart(cart, heavy_index))
    report("heavy overlap (worst case): 10 lines x 200 promotions + 2 coupons + points, index reused",
           samples, cpu, results)

    naive_baseline(carts, promos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
