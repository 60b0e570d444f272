"""The demo shop: simulate everything, then write the generic import files and the ground truth.

``simulate`` is the pure core (arrays in, Arrow tables and a ground-truth dict out);
``build_demo_files`` writes them: CSV for the small tables, Parquet (all columns text) for
``order_lines`` and ``events``, ``ground_truth.json`` with the true parameters, and
``ground_truth_customers.parquet`` with every customer's latent values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from growthwheel.sim import (
    anomalies,
    behaviour,
    catalogue,
    customers,
    orders,
    product_roles,
    reviews,
    seasons,
    sessions,
    stock,
    text,
)
from growthwheel.sim.seasons import DAY, Calendar

Array = npt.NDArray[Any]

CURRENCY = "CNY"
TIMEZONE = "Asia/Shanghai"
SHOP_URL = "https://shop.example.cn"
TABLES = ("products", "customers", "order_lines", "events", "ad_spend", "reviews", "inventory")
PARQUET_TABLES = ("order_lines", "events")
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class DemoFiles:
    """Files written for the demo shop: one per table, plus the ground truth."""

    paths: dict[str, Path]
    ground_truth: Path
    customer_truth: Path


@dataclass(frozen=True)
class DemoShop:
    """A simulated shop held in memory: generic-format tables and the ground truth."""

    tables: dict[str, pa.Table]
    ground_truth: dict[str, Any]
    customer_truth: pa.Table


def _nothing(_: str) -> None:
    return None


def _campaign(calendar: Calendar, channel: Array, day: Array) -> Any:
    """``<source>_<festival>_<year>`` or ``<source>_always_on``; null for direct traffic."""
    sources = text.pick([c.utm_source for c in customers.CHANNELS], channel)
    suffix = text.pick(list(calendar.campaign_suffix()), np.clip(day, 0, calendar.days - 1))
    return pc.binary_join_element_wise(sources, suffix, "_")


def _utm(channel: Array) -> tuple[Any, Any]:
    return (
        text.pick([c.utm_source for c in customers.CHANNELS], channel),
        text.pick([c.utm_medium for c in customers.CHANNELS], channel),
    )


def _nullable(values: Array) -> Any:
    """Index array with -1 meaning null, for ``take``."""
    return pa.array(values, mask=np.asarray(values) < 0, type=pa.int64())


def simulate(
    *,
    customers_count: int = 50_000,
    days: int = 365,
    seed: int = 7,
    start: date = date(2025, 1, 1),
    progress: Callable[[str], None] | None = None,
) -> DemoShop:
    """Simulate the shop; deterministic for the arguments."""
    if customers_count < 1 or days < 1:
        raise ValueError("customers and days must be at least 1")
    say = progress or _nothing
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    horizon = days * DAY
    calendar = seasons.make_calendar(start, days)

    say("catalogue")
    cat = product_roles.designate(catalogue.make_catalogue(rngs[0], days), days)
    say(f"acquiring {customers_count:,} customers")
    acq = customers.acquire(rngs[1], calendar, customers_count)
    prof = customers.profiles(rngs[2], customers_count, start.year)
    say("repeat purchases (BG/NBD, Gamma-Gamma)")
    bg, gg = behaviour.BgNbd(), behaviour.GammaGamma()
    tx = behaviour.simulate(rngs[3], acq.acquired_at, horizon, bg, gg)
    say(f"baskets, discounts and refunds for {len(tx.order_customer):,} orders")
    od = orders.make_orders(
        rngs[4], calendar, cat, tx, acq.channel, acq.acquired_at, prof.accepts_marketing,
        prof.preferred_category,
    )
    say("sessions and events")
    ss = sessions.make_sessions(rngs[5], calendar, cat, od, acq.acquired_at)
    say("reviews")
    rv = reviews.make_reviews(rngs[6], cat, od, horizon)
    say("writing tables")

    n_c = customers_count
    cid_width = max(7, len(str(n_c)))
    customer_ids = text.ids("C", np.arange(1, n_c + 1), cid_width)
    device_ids = pa.array(text.scrambled_hex(np.arange(n_c + ss.prospects)), type=pa.string())
    n_o = len(od.customer)
    order_ids = text.ids("SO", np.arange(1, n_o + 1), max(8, len(str(n_o))))
    order_campaign = _campaign(calendar, od.channel, od.day)

    products = pa.table(
        {
            "sku": pa.array(cat.sku, type=pa.string()),
            "name": pa.array(cat.name, type=pa.string()),
            "category": pa.array(cat.category_path, type=pa.string()),
            "brand": pa.array(cat.brand, type=pa.string()),
            "price": text.money(cat.price),
            "cost": text.money(cat.cost),
            "currency": pa.array([CURRENCY] * cat.size, type=pa.string()),
            "consumption_cycle_days": text.integers(cat.cycle_days),
            "launched_at": text.dates(start, cat.launched_day),
        }
    )

    first_order = np.flatnonzero(od.is_first)
    first_of = np.empty(n_c, dtype=np.int64)
    first_of[od.customer[first_order]] = first_order
    signed_up = np.maximum(
        acq.acquired_at // DAY * DAY,
        acq.acquired_at - rngs[7].integers(60, 1200, n_c),
    )
    src, med = _utm(acq.channel)
    wechat = acq.channel == customers.CHANNEL_INDEX["wechat"]
    cust_table = pa.table(
        {
            "customer_id": customer_ids,
            **{k: prof.table.column(k) for k in ("email", "phone", "name", "gender", "birthday",
                                                 "city", "province", "country")},
            "signed_up_at": text.timestamps(start, signed_up),
            "channel": text.pick([c.name for c in customers.CHANNELS], acq.channel),
            "utm_source": src,
            "utm_medium": med,
            "utm_campaign": order_campaign.take(pa.array(first_of)),
            "accepts_marketing": prof.table.column("accepts_marketing"),
            "tags": text.pick([None, "wechat_group"], wechat.astype(np.int64)),
        }
    )

    lo = od.line_order
    l_src, l_med = _utm(od.channel[lo])
    first_line = np.ones(len(lo), dtype=bool)
    first_line[1:] = lo[1:] != lo[:-1]
    sku_text = pa.array(cat.sku, type=pa.string())
    lines = pa.table(
        {
            "order_id": order_ids.take(pa.array(lo)),
            "customer_id": customer_ids.take(pa.array(od.customer[lo])),
            "ordered_at": text.timestamps(start, od.ordered_at[lo]),
            "sku": sku_text.take(pa.array(od.line_sku)),
            "quantity": text.integers(od.line_quantity),
            "line_total": text.money(od.line_total),
            "unit_price": text.money(od.line_unit_price),
            "discount": text.money(od.line_discount),
            "currency": pa.array([CURRENCY] * len(lo), type=pa.string()),
            "status": text.pick(list(orders.STATUSES), od.status[lo]),
            "channel": text.pick([c.name for c in customers.CHANNELS], od.channel[lo]),
            "product_name": pa.array(cat.name, type=pa.string()).take(pa.array(od.line_sku)),
            "category": pa.array(cat.category_path, type=pa.string()).take(pa.array(od.line_sku)),
            "paid_at": text.timestamps(start, od.paid_at[lo]),
            "refunded_amount": text.money(od.line_refunded),
            "shipping": text.money(od.shipping[lo]),
            "coupon_code": pa.array(list(orders.COUPON_CODES), type=pa.string()).take(
                _nullable(od.coupon[lo])
            ),
            "utm_source": l_src,
            "utm_medium": l_med,
            "utm_campaign": order_campaign.take(pa.array(lo)),
        }
    )

    es = ss.ev_session
    s_campaign = _campaign(calendar, ss.channel, ss.day)
    bought = ss.order >= 0
    s_campaign = pc.if_else(
        pa.array(bought), order_campaign.take(_nullable(ss.order)), s_campaign
    )
    e_src, e_med = _utm(ss.channel[es])
    e_campaign = s_campaign.take(pa.array(es))
    e_sku = sku_text.take(_nullable(ss.ev_sku))
    pages = pa.array(
        [None, f"{SHOP_URL}/cart", f"{SHOP_URL}/checkout", f"{SHOP_URL}/checkout/success"],
        type=pa.string(),
    )
    page = pc.if_else(
        pa.array(ss.ev_type == 0),
        pc.binary_join_element_wise(f"{SHOP_URL}/item/", e_sku, ""),
        pages.take(pa.array(ss.ev_type)),
    )
    query = pc.binary_join_element_wise(
        "?utm_source=", e_src, "&utm_medium=", e_med, "&utm_campaign=", e_campaign, ""
    )
    landing_query = pc.if_else(pa.array(ss.ev_landing), pc.coalesce(query, ""), "")
    referrers = [c.referrer for c in customers.CHANNELS]
    ref_idx = np.where(ss.ev_landing, ss.channel[es], -1)
    n_ev = len(es)
    events = pa.table(
        {
            "event_id": text.ids("E", np.arange(1, n_ev + 1), max(9, len(str(n_ev)))),
            "type": text.pick(list(sessions.TYPES), ss.ev_type),
            "occurred_at": text.timestamps(start, ss.ev_time),
            "customer_id": customer_ids.take(_nullable(ss.ev_customer)),
            "anonymous_id": device_ids.take(pa.array(ss.device_owner[es])),
            "session_id": text.ids("S", es + 1, max(9, len(str(len(ss.stage))))),
            "sku": e_sku,
            "order_id": order_ids.take(
                _nullable(np.where(ss.ev_type == 3, ss.order[es], -1))
            ),
            "url": pc.binary_join_element_wise(page, landing_query, ""),
            "referrer": pa.array(referrers, type=pa.string()).take(_nullable(ref_idx)),
            "utm_source": e_src,
            "utm_medium": e_med,
            "utm_campaign": e_campaign,
            "device": text.pick(list(sessions.DEVICES), ss.device[es]),
        }
    )

    clicks = sessions.clicks(ss, days)
    paid_idx = np.flatnonzero(customers.PAID)
    a_day = np.repeat(np.arange(days), len(paid_idx))
    a_ch = np.tile(paid_idx, days)
    a_clicks = clicks[:, paid_idx].ravel()
    ctr = np.array([customers.CHANNELS[i].ctr for i in a_ch])
    noisy_ctr = ctr * np.exp(rngs[7].normal(0.0, 0.1, len(a_ch)))
    impressions = np.maximum(a_clicks, np.rint((a_clicks + 0.5) / noisy_ctr).astype(np.int64))
    a_src, a_med = _utm(a_ch)
    # Dated anomalies for the alerts (sim/anomalies.py): reported spend, extra traffic, a bad batch.
    reported_fen, cac_incident = anomalies.cac_jump(
        acq.spend_fen, start, days, [customers.CHANNELS[i].name for i in paid_idx])
    ad_spend = pa.table(
        {
            "date": text.dates(start, a_day),
            "channel": text.pick([c.name for c in customers.CHANNELS], a_ch),
            "spend": text.money(reported_fen.ravel()),
            "utm_source": a_src,
            "utm_medium": a_med,
            "utm_campaign": _campaign(calendar, a_ch, a_day),
            "impressions": text.integers(impressions),
            "clicks": text.integers(a_clicks),
            "currency": pa.array([CURRENCY] * len(a_ch), type=pa.string()),
        }
    )

    r_line = rv.line
    r_order = lo[r_line]
    review_table = pa.table(
        {
            "review_id": text.ids("R", np.arange(1, len(r_line) + 1), 7),
            "sku": sku_text.take(pa.array(od.line_sku[r_line])),
            "rating": text.integers(rv.rating),
            "created_at": text.timestamps(start, rv.created_at),
            "order_id": order_ids.take(pa.array(r_order)),
            "customer_id": customer_ids.take(pa.array(od.customer[r_order])),
            "title": pa.array(rv.title, type=pa.string()),
            "body": pa.array(rv.body, type=pa.string()),
            "language": text.pick(["zh", "en"], rv.english.astype(np.int64)),
        }
    )

    bot_events, drop_incident = anomalies.extra_sessions(
        np.random.default_rng([seed, 91]), start, days, len(ss.stage), sku_text, events.schema,
        cat.launched_day)
    if bot_events is not None:
        events = pa.concat_tables([events, bot_events])
    best_seller = str(sku_text[int(np.argmax(np.bincount(od.line_sku, minlength=cat.size)))])
    best_lines = np.flatnonzero(od.line_sku == int(np.argmax(np.bincount(od.line_sku, minlength=cat.size))))
    bad_reviews, review_incident = anomalies.bad_batch(
        np.random.default_rng([seed, 92]), start, days, best_seller, review_table.schema,
        order_ids.take(pa.array(lo[best_lines])), customer_ids.take(pa.array(od.customer[lo[best_lines]])),
        od.ordered_at[lo[best_lines]])
    if bad_reviews is not None:
        review_table = pa.concat_tables([review_table, bad_reviews])

    orders_per_customer = np.bincount(od.customer, minlength=n_c)
    customer_truth = pa.table(
        {
            "customer_id": customer_ids,
            "acquired_at": text.timestamps(start, acq.acquired_at),
            "channel": text.pick([c.name for c in customers.CHANNELS], acq.channel),
            "lambda_per_week": pa.array(tx.lam),
            "p_dropout": pa.array(tx.p_drop),
            "nu": pa.array(tx.nu),
            "alive_at_end": pa.array(tx.alive),
            "repeat_purchases_before_merge": pa.array(tx.repeat_transactions),
            "orders": pa.array(orders_per_customer),
            "preferred_category": text.pick([c.name for c in catalogue.CATEGORIES],
                                            prof.preferred_category),
        }
    )

    say("stock")
    line_day = np.asarray(od.ordered_at, dtype=np.int64)[od.line_order] // DAY
    inventory, stock_truth = stock.simulate_stock(seed, start, days, cat, od.line_sku, line_day,
                                                  od.line_quantity)
    tables = {
        "products": products,
        "customers": cust_table,
        "order_lines": lines,
        "events": events,
        "ad_spend": ad_spend,
        "reviews": review_table,
        "inventory": inventory,
    }
    truth: dict[str, Any] = {
        "generator": {
            "name": "growthwheel.sim",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "customers": customers_count,
            "days": days,
            "start": start.isoformat(),
            "end_exclusive": (start + timedelta(days=days)).isoformat(),
            "timezone": TIMEZONE,
            "utc_offset": text.OFFSET,
            "currency": CURRENCY,
            "money": "files hold major units with two decimals",
        },
        **behaviour.describe(bg, gg, tx),
        "acquisition": customers.describe(acq, calendar, reported_fen),
        "seasonality": seasons.describe(),
        "catalogue": catalogue.describe(cat),
        "product_roles": product_roles.describe(cat),
        **orders.describe(od),
        "funnel": sessions.describe(ss),
        "reviews": reviews.describe(rv),
        "anomalies": anomalies.describe([cac_incident, drop_incident, review_incident]),
        "inventory": stock_truth,
        "counts": {
            "customers": customers_count,
            "orders": n_o,
            "first_orders": int(od.is_first.sum()),
            "repeat_orders": int((~od.is_first).sum()),
            "customers_with_repeat_orders": int((orders_per_customer > 1).sum()),
            "order_lines": len(lo),
            "sessions": len(ss.stage),
            "events": events.num_rows,
            "reviews": review_table.num_rows,
            "ad_spend_rows": len(a_ch),
            "products": cat.size,
            "gmv_cny": round(float(od.line_total.sum()) / 100, 2),
            "ad_spend_cny": round(float(acq.spend_fen.sum()) / 100, 2),
        },
        "files": {
            "customer_truth": "ground_truth_customers.parquet: per customer lambda_per_week, "
            "p_dropout, nu, alive_at_end, repeat purchases before same-day merging, orders",
        },
    }
    return DemoShop(tables=tables, ground_truth=_rounded(truth), customer_truth=customer_truth)


def _rounded(value: Any) -> Any:
    """Floats rounded to 10 significant digits so that the JSON is stable and readable."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` as CSV (header, UTF-8, nulls empty) or Parquet, by the file's suffix."""
    if path.suffix == ".parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        pacsv.write_csv(table, path)


def build_demo_files(
    out_dir: Path,
    *,
    customers: int = 50_000,
    days: int = 365,
    seed: int = 7,
    start: date = date(2025, 1, 1),
    progress: Callable[[str], None] | None = None,
) -> DemoFiles:
    """Simulate the demo shop and write its generic import files into ``out_dir``.

    Same arguments give byte-identical files. Returns the path of each table's file (CSV for
    ``products``, ``customers``, ``ad_spend`` and ``reviews``; Parquet with text columns for
    ``order_lines`` and ``events``) and of ``ground_truth.json``.
    """
    shop = simulate(customers_count=customers, days=days, seed=seed, start=start, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in TABLES:
        path = out_dir / f"{name}.{'parquet' if name in PARQUET_TABLES else 'csv'}"
        write_table(shop.tables[name], path)
        paths[name] = path
    truth = out_dir / "ground_truth.json"
    truth.write_text(json.dumps(shop.ground_truth, ensure_ascii=False, indent=2) + "\n", "utf-8")
    latent = out_dir / "ground_truth_customers.parquet"
    pq.write_table(shop.customer_truth, latent, compression="zstd")
    return DemoFiles(paths=paths, ground_truth=truth, customer_truth=latent)
