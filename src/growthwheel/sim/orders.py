"""Orders and their lines: baskets, discounts, shipping, delivery, refunds and statuses.

Money here is integer fen (``int64``). An order's spend ``z`` (Gamma-Gamma) is what the customer
pays for goods after discounts; the basket is chosen so that its list value is close to
``z / (1 - discount rate)``, so a promotion buys more goods rather than changing the spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from growthwheel.sim import catalogue as cat
from growthwheel.sim.behaviour import Transactions
from growthwheel.sim.customers import CHANNEL_INDEX, REPEAT_CHANNEL_MIX
from growthwheel.sim.product_roles import DRIVER_BONUS
from growthwheel.sim.seasons import DAY, FESTIVALS, Calendar, seconds_of_day

Array = npt.NDArray[Any]

#: Extra lines per order ~ Poisson(EXTRA_LINES), at most MAX_LINES lines.
EXTRA_LINES = 0.45
MAX_LINES = 4
#: Lines are split so that each targets at most BIG_LINE fen and, if possible, SMALL_LINE or more.
BIG_LINE = 120_000
SMALL_LINE = 4_000
#: Candidate SKUs considered per line: half from the customer's preferred category (by
#: popularity), half among the SKUs whose list price is near the line's target.
CANDIDATES = 12
PRICE_WINDOW = 10

#: (probability, lowest %, highest %, coupon code) of a discount, by situation.
FESTIVAL_DISCOUNT = {"618": (0.60, 10, 25, "618-SALE"), "double11": (0.75, 15, 30, "D11-SALE")}
NEW_CUSTOMER_DISCOUNT = (0.30, 10, 10, "NEWUSER10")
EVERYDAY_DISCOUNT = (0.10, 5, 15, "COUPON")
COUPON_CODES = ("618-SALE", "D11-SALE", "NEWUSER10", "COUPON5", "COUPON10", "COUPON15")

FREE_SHIPPING_FROM = 9900  # fen
SHIPPING_FEE = 800  # fen

HEAVY_DELAY_BASE = 0.04
HEAVY_DELAY_AROUND_PEAK = {"618": 0.10, "double11": 0.18}  # from 2 days before to 5 days after
HEAVY_DELAY_MULTIPLIER_REFUND = 2.5
POOR_QUALITY_MULTIPLIER_REFUND = 3.0
PARTIAL_REFUND_RATE = 0.04
AUTO_CONFIRM_DAYS = 10

STATUSES = ("paid", "shipped", "completed", "partially_refunded", "refunded")


@dataclass(frozen=True)
class Orders:
    """Orders (sorted by time) and their lines (sorted by order, then line)."""

    customer: Array
    ordered_at: Array  # seconds since the start
    paid_at: Array
    day: Array
    is_first: Array
    channel: Array  # index into CHANNELS
    discount_bp: Array  # discount rate in basis points
    coupon: Array  # index into COUPON_CODES, -1 none
    shipping: Array  # fen
    heavy_delay: Array  # bool
    delivered_at: Array
    refund_kind: Array  # 0 none, 1 full, 2 partial (only refunds that happened by the end)
    refunded_at: Array
    status: Array  # index into STATUSES
    spend: Array  # z, fen (float)
    line_order: Array
    line_sku: Array
    line_quantity: Array
    line_unit_price: Array
    line_discount: Array
    line_total: Array
    line_refunded: Array

    def order_totals(self) -> Array:
        """Goods after discounts per order, fen."""
        return np.bincount(self.line_order, weights=self.line_total, minlength=len(self.customer))


def _repeat_channels(
    rng: np.random.Generator, acq_channel: Array, accepts: Array, n: int
) -> Array:
    kinds = list(REPEAT_CHANNEL_MIX)
    pick = rng.choice(len(kinds), size=n, p=list(REPEAT_CHANNEL_MIX.values()))
    out = np.full(n, CHANNEL_INDEX["direct"], dtype=np.int64)
    for k_idx, kind in enumerate(kinds):
        mask = pick == k_idx
        if kind == "acquisition":
            out[mask] = acq_channel[mask]
        elif kind == "newsletter":
            out[mask & accepts] = CHANNEL_INDEX["newsletter"]
        else:
            out[mask] = CHANNEL_INDEX[kind]
    return out


def _discounts(
    rng: np.random.Generator, calendar: Calendar, day: Array, first: Array
) -> tuple[Array, Array]:
    n = len(day)
    bp = np.zeros(n, dtype=np.int64)
    coupon = np.full(n, -1, dtype=np.int64)
    u = rng.random(n)
    fest = calendar.festival[day]
    everyday_pct = rng.choice(np.array([5, 10, 15]), size=n)
    for f_idx, f in enumerate(FESTIVALS):
        prob, lo, hi, code = FESTIVAL_DISCOUNT[f.name]
        mask = (fest == f_idx) & (u < prob)
        bp[mask] = rng.integers(lo, hi + 1, size=int(mask.sum())) * 100
        coupon[mask] = COUPON_CODES.index(code)
    outside = fest < 0
    prob, lo, _, code = NEW_CUSTOMER_DISCOUNT
    mask = outside & first & (u < prob)
    bp[mask] = lo * 100
    coupon[mask] = COUPON_CODES.index(code)
    mask = outside & ~first & (u < EVERYDAY_DISCOUNT[0])
    bp[mask] = everyday_pct[mask] * 100
    coupon[mask] = np.array([COUPON_CODES.index(f"COUPON{p}") for p in (5, 10, 15)])[
        everyday_pct[mask] // 5 - 1
    ]
    return bp, coupon


def _baskets(
    rng: np.random.Generator,
    catalogue: cat.Catalogue,
    target: Array,
    day: Array,
    preferred: Array,
    staple: Array,
    entry: bool = False,
) -> tuple[Array, Array, Array]:
    """Lines (order index, sku, quantity) whose list value is close to ``target`` fen per order
    (``entry``: first orders, whose first line prefers its category's traffic driver)."""
    n = len(target)
    # Small orders have one line, big ones enough lines for the catalogue's prices.
    lines = np.maximum(1 + rng.poisson(EXTRA_LINES, n), np.ceil(target / BIG_LINE).astype(np.int64))
    lines = np.clip(np.minimum(lines, target // SMALL_LINE), 1, MAX_LINES).astype(np.int64)
    l_order = np.repeat(np.arange(n), lines)
    rank = np.arange(len(l_order)) - np.repeat(np.cumsum(lines) - lines, lines)
    w = rng.gamma(2.0, 1.0, len(l_order))
    share = w / np.bincount(l_order, weights=w, minlength=n)[l_order]
    t = target[l_order] * share
    half = CANDIDATES // 2
    pref = np.repeat(preferred[l_order], half)
    in_pref = cat.sample_in_category(rng, catalogue, pref, catalogue.popularity).reshape(-1, half)
    # The other half: SKUs priced near the line's target, from the whole catalogue.
    by_price = np.argsort(catalogue.price, kind="stable")
    near = np.searchsorted(catalogue.price[by_price], t)[:, None] + rng.integers(
        -PRICE_WINDOW, PRICE_WINDOW + 1, size=(len(l_order), half)
    )
    anywhere = by_price[np.clip(near, 0, catalogue.size - 1)]
    st = staple[l_order]
    staple_cat = np.asarray([c.staple_rebuy for c in cat.CATEGORIES])[catalogue.category[np.maximum(st, 0)]]
    use_staple = (rank == 0) & (st >= 0) & (rng.random(len(l_order)) < staple_cat)
    cand = np.concatenate([in_pref, anywhere, np.where(use_staple, st, in_pref[:, 0])[:, None]], axis=1)
    drivers = catalogue.entry_sku if entry else None
    if drivers is not None:  # the designed traffic drivers (sim/product_roles.py)
        cand = np.concatenate([cand, drivers[preferred[l_order]][:, None]], axis=1)
    price = catalogue.price[cand].astype(float)
    max_q = catalogue.max_quantity()[cand]
    qty = np.clip(np.rint(t[:, None] / price), 1, max_q)
    err = np.abs(qty * price - t[:, None]) / t[:, None] + 0.01 * (qty - 1)
    err[:, half:] += 0.03
    err[:, 2 * half] = np.where(use_staple, err[:, 2 * half] - 0.15, np.inf)
    if drivers is not None:
        err[:, -1] = np.where(rank == 0, err[:, -1] - DRIVER_BONUS, np.inf)
    err[catalogue.launched_day[cand] >= day[l_order][:, None]] = np.inf  # on sale the day after
    best = np.argmin(err, axis=1)
    rows = np.arange(len(l_order))
    sku = cand[rows, best]
    q = qty[rows, best].astype(np.int64)
    # Two lines of one order on the same SKU become one line.
    key = l_order * catalogue.size + sku
    uniq, inverse = np.unique(key, return_inverse=True)
    q_sum = np.bincount(inverse, weights=q).astype(np.int64)
    return uniq // catalogue.size, uniq % catalogue.size, q_sum


def _delivery(
    rng: np.random.Generator, calendar: Calendar, day: Array, paid_at: Array
) -> tuple[Array, Array, Array]:
    n = len(day)
    prob = np.full(n, HEAVY_DELAY_BASE)
    near = calendar.around_peaks(2, 5)[day]
    for f_idx, f in enumerate(FESTIVALS):
        prob[near == f_idx] = HEAVY_DELAY_AROUND_PEAK[f.name]
    heavy = rng.random(n) < prob
    deliver_days = np.where(heavy, 7.0 + rng.exponential(4.0, n), 1.0 + rng.gamma(2.0, 0.8, n))
    ship_days = np.where(heavy, 3.0 + rng.uniform(0, 3.0, n), 0.1 + rng.exponential(0.5, n))
    ship_days = np.minimum(ship_days, deliver_days * 0.6)
    shipped = paid_at + (ship_days * DAY).astype(np.int64)
    delivered = paid_at + (deliver_days * DAY).astype(np.int64)
    return heavy, shipped, delivered


def make_orders(
    rng: np.random.Generator,
    calendar: Calendar,
    catalogue: cat.Catalogue,
    tx: Transactions,
    acq_channel: Array,
    acquired_at: Array,
    accepts_marketing: Array,
    preferred_category: Array,
) -> Orders:
    """Turn the purchase process into orders with lines, money, delivery, refunds and statuses."""
    horizon = calendar.days * DAY
    cust, day, first = tx.order_customer, tx.order_day, tx.order_is_first
    n = len(cust)
    at = np.where(first, acquired_at[cust], day * DAY + seconds_of_day(rng, n))
    order = np.lexsort((cust, at))
    cust, day, first, at, spend = cust[order], day[order], first[order], at[order], tx.spend[order]
    paid_at = at + 5 + rng.exponential(90.0, n).astype(np.int64)
    channel = np.where(
        first, acq_channel[cust], _repeat_channels(rng, acq_channel[cust], accepts_marketing[cust], n)
    )
    bp, coupon = _discounts(rng, calendar, day, first)
    z_fen = spend * 100.0
    target = z_fen / (1.0 - bp / 10_000.0)
    # First orders first, so that a repeat order can re-buy the customer's staple SKU.
    staple = np.full(len(acquired_at), -1, dtype=np.int64)
    parts = []
    for is_first in (True, False):
        idx = np.flatnonzero(first == is_first)
        l_o, l_sku, l_q = _baskets(
            rng, catalogue, target[idx], day[idx], preferred_category[cust[idx]], staple[cust[idx]],
            entry=is_first,
        )
        l_o = idx[l_o]
        if is_first:
            gross = l_q * catalogue.price[l_sku]
            top = np.lexsort((-gross, l_o))
            head = np.ones(len(top), dtype=bool)
            head[1:] = l_o[top][1:] != l_o[top][:-1]
            staple[cust[l_o[top][head]]] = l_sku[top][head]
        parts.append((l_o, l_sku, l_q))
    l_order = np.concatenate([p[0] for p in parts])
    l_sku = np.concatenate([p[1] for p in parts])
    l_q = np.concatenate([p[2] for p in parts])
    sort = np.lexsort((l_sku, l_order))
    l_order, l_sku, l_q = l_order[sort], l_sku[sort], l_q[sort]
    unit = catalogue.price[l_sku]
    gross = unit * l_q
    disc = (gross * bp[l_order] + 5000) // 10_000
    total = gross - disc
    order_total = np.bincount(l_order, weights=total, minlength=n).astype(np.int64)
    shipping = np.where(order_total >= FREE_SHIPPING_FROM, 0, SHIPPING_FEE)

    heavy, shipped, delivered = _delivery(rng, calendar, day, paid_at)
    # Refunds: category of the order's largest line, delays and poor-quality SKUs raise the odds.
    big = np.lexsort((-gross, l_order))
    head = np.ones(len(big), dtype=bool)
    head[1:] = l_order[big][1:] != l_order[big][:-1]
    main_cat = np.empty(n, dtype=np.int64)
    main_cat[l_order[big][head]] = catalogue.category[l_sku[big][head]]
    poor = np.bincount(l_order, weights=catalogue.poor_quality[l_sku], minlength=n) > 0
    rates = np.asarray([c.refund_rate for c in cat.CATEGORIES])[main_cat]
    p_full = np.minimum(
        0.6,
        rates * np.where(heavy, HEAVY_DELAY_MULTIPLIER_REFUND, 1.0)
        * np.where(poor, POOR_QUALITY_MULTIPLIER_REFUND, 1.0),
    )
    p_part = PARTIAL_REFUND_RATE * np.where(heavy, 1.5, 1.0) * np.where(poor, 2.0, 1.0)
    u = rng.random(n)
    kind = np.where(u < p_full, 1, np.where(u < p_full + p_part, 2, 0))
    before_shipping = rng.random(n) < 0.3
    refund_at = np.where(
        (kind == 1) & before_shipping,
        paid_at + rng.integers(1800, 12 * 3600, n),
        delivered + (rng.uniform(0.5, 7.0, n) * DAY).astype(np.int64),
    )
    kind = np.where(refund_at < horizon, kind, 0)
    delivered = np.where((kind == 1) & before_shipping, -1, delivered)  # never shipped
    refunded = np.where(kind[l_order] == 1, total, 0)
    # Partial refunds: a whole line of a multi-line order, one unit, or a price adjustment.
    lines_per_order = np.bincount(l_order, minlength=n)
    line_rank = np.arange(len(l_order)) - np.repeat(np.cumsum(lines_per_order) - lines_per_order,
                                                    lines_per_order)
    chosen = (rng.random(n) * lines_per_order).astype(np.int64)
    partial = (kind[l_order] == 2) & (line_rank == chosen[l_order])
    multi = lines_per_order[l_order] > 1
    adjust = np.rint(total * rng.uniform(0.2, 0.5, len(total))).astype(np.int64)
    part_amount = np.where(multi, total, np.where(l_q > 1, total // np.maximum(l_q, 1), adjust))
    refunded = np.where(partial, part_amount, refunded)
    status = np.where(
        kind == 1,
        STATUSES.index("refunded"),
        np.where(
            kind == 2,
            STATUSES.index("partially_refunded"),
            np.where(
                delivered + AUTO_CONFIRM_DAYS * DAY <= horizon,
                STATUSES.index("completed"),
                np.where(shipped <= horizon, STATUSES.index("shipped"), STATUSES.index("paid")),
            ),
        ),
    )
    return Orders(
        customer=cust,
        ordered_at=at,
        paid_at=paid_at,
        day=day,
        is_first=first,
        channel=channel,
        discount_bp=bp,
        coupon=coupon,
        shipping=shipping,
        heavy_delay=heavy,
        delivered_at=delivered,
        refund_kind=kind,
        refunded_at=np.where(kind > 0, refund_at, -1),
        status=status,
        spend=z_fen,
        line_order=l_order,
        line_sku=l_sku,
        line_quantity=l_q,
        line_unit_price=unit,
        line_discount=disc,
        line_total=total,
        line_refunded=refunded,
    )


def describe(o: Orders) -> dict[str, Any]:
    """Discount, refund and delivery parameters with realised rates, for ``ground_truth.json``."""
    totals = o.order_totals()
    rel = totals / o.spend - 1.0
    gross = o.line_unit_price * o.line_quantity
    return {
        "basket": {
            "lines_per_order": f"1 + Poisson({EXTRA_LINES}) but at least ceil(target / "
            f"{BIG_LINE // 100} CNY), at most floor(target / {SMALL_LINE // 100} CNY) and "
            f"{MAX_LINES}, at least 1; lines on the same SKU merged",
            "target": "spend z / (1 - discount rate): list value the basket aims at",
            "sku_choice": f"per line the best of {CANDIDATES} candidates ({CANDIDATES // 2} from "
            "the customer's preferred category by popularity, the rest priced near the line's "
            "target), scored by relative price error; repeat orders may re-buy the customer's "
            "staple SKU (its first order's biggest line)",
            "order_total_vs_spend_z": {
                "mean_relative_error": round(float(rel.mean()), 6),
                "median_abs_relative_error": round(float(np.median(np.abs(rel))), 6),
                "p90_abs_relative_error": round(float(np.quantile(np.abs(rel), 0.9)), 6),
            },
        },
        "discounts": {
            "festival": {k: {"probability": v[0], "percent_range": [v[1], v[2]], "coupon_code": v[3]}
                         for k, v in FESTIVAL_DISCOUNT.items()},
            "new_customer_first_order": {"probability": NEW_CUSTOMER_DISCOUNT[0],
                                         "percent": NEW_CUSTOMER_DISCOUNT[1],
                                         "coupon_code": NEW_CUSTOMER_DISCOUNT[3]},
            "everyday_repeat_order": {"probability": EVERYDAY_DISCOUNT[0], "percent": [5, 10, 15],
                                      "coupon_code": "COUPON<percent>"},
            "allocation": "the order's rate applied to every line, rounded half-up to the fen",
            "realised_discount_rate": round(float(o.line_discount.sum() / gross.sum()), 6),
            "orders_with_discount_share": round(float((o.discount_bp > 0).mean()), 6),
        },
        "shipping": {"fee_cny": SHIPPING_FEE / 100, "free_from_cny": FREE_SHIPPING_FROM / 100},
        "delivery": {
            "heavy_delay": "delivered 7 + Exponential(mean 4) days after payment; otherwise "
            "1 + Gamma(2, 0.8) days",
            "heavy_delay_probability": HEAVY_DELAY_BASE,
            "heavy_delay_probability_around_peaks": HEAVY_DELAY_AROUND_PEAK,
            "realised_heavy_delay_share": round(float(o.heavy_delay.mean()), 6),
            "auto_confirm_days": AUTO_CONFIRM_DAYS,
        },
        "refunds": {
            "full": "probability = category full_refund_rate x "
            f"{HEAVY_DELAY_MULTIPLIER_REFUND} if heavily delayed x {POOR_QUALITY_MULTIPLIER_REFUND} "
            "if a poor-quality SKU is in the order (at most 0.6); 30% before shipping",
            "partial": f"probability {PARTIAL_REFUND_RATE} x 1.5 if delayed x 2 if poor quality: "
            "one whole line of a multi-line order, else one unit, else a 20-50% price adjustment",
            "only_refunds_before_end": True,
            "realised_full_refund_share": round(float((o.refund_kind == 1).mean()), 6),
            "realised_partial_refund_share": round(float((o.refund_kind == 2).mean()), 6),
            "refunded_share_of_gmv": round(float(o.line_refunded.sum() / o.line_total.sum()), 6),
        },
    }
