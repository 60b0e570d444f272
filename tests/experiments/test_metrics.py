"""Warehouse metrics of an experiment: first exposures, outcomes after them, CUPED pre-period,
capping and retention, aggregated by DuckDB into sufficient statistics — every number below is
worked out by hand from the rows inserted (see the comments)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pytest

from growthwheel.config import Settings
from growthwheel.experiments import metrics
from growthwheel.experiments.schemas import MetricSpec
from growthwheel.stats.sufficient import (
    CupedMeanStats,
    CupedRatioStats,
    MeanStats,
    ProportionStats,
    RatioStats,
)
from growthwheel.warehouse.db import open_duckdb

WINDOW = metrics.Window(datetime(2025, 3, 1, tzinfo=UTC).replace(tzinfo=None),
                        datetime(2025, 4, 1, tzinfo=UTC).replace(tzinfo=None))  # naive UTC, as stored

EXPOSURES = [  # (customer, experiment, variant, at)
    ("c1", "pdp", "control", "2025-03-02 10:00"), ("c1", "pdp", "control", "2025-03-05 09:00"),
    ("c2", "pdp", "control", "2025-03-03 00:00"), ("c3", "pdp", "control", "2025-03-04 00:00"),
    ("c4", "pdp", "b", "2025-03-02 00:00"), ("c5", "pdp", "b", "2025-03-03 00:00"),
    ("c6", "pdp", "b", "2025-03-04 00:00"),
    ("c7", "pdp", "control", "2025-03-02 00:00"), ("c7", "pdp", "b", "2025-03-06 00:00"),  # two variants
    ("c1", "other", "b", "2025-03-01 00:00"),  # another experiment
    ("c8", "pdp", "b", "2025-02-20 00:00"),  # before the window
]
ORDERS = [  # (order, customer, at, status, total, refunded)
    ("o1", "c1", "2025-03-03 10:00", "paid", 10000, 0),
    ("o2", "c1", "2025-03-10 10:00", "partially_refunded", 5000, 1000),
    ("o3", "c1", "2025-02-25 10:00", "paid", 3000, 0),  # c1's pre-period
    ("o4", "c2", "2025-03-01 00:00", "paid", 2000, 0),  # before c2's exposure: pre-period
    ("o5", "c2", "2025-03-20 00:00", "cancelled", 9000, 0),  # never paid
    ("o6", "c4", "2025-03-05 00:00", "paid", 20000, 0),
    ("o7", "c5", "2025-03-04 00:00", "paid", 4000, 0),
    ("o8", "c5", "2025-03-06 00:00", "completed", 4000, 0),
    ("o9", "c5", "2025-02-28 00:00", "paid", 1000, 0),  # c5's pre-period
    ("o10", "c6", "2025-04-02 00:00", "paid", 7000, 0),  # after the window
    ("o11", "c7", "2025-03-07 00:00", "paid", 50000, 0),  # c7 is left out (two variants)
]
EVENTS = [  # (customer, type, at)
    ("c4", "add_to_cart", "2025-03-03 00:00"),
    ("c1", "add_to_cart", "2025-02-28 00:00"),  # pre-period
    ("c2", "view", "2025-03-12 00:00"),  # c2 exposed 03-03: active on day 9
]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[ibis.BaseBackend]:
    con = open_duckdb(Settings(data_dir=tmp_path, database_url=None))
    for i, (cid, key, variant, at) in enumerate(EXPOSURES):
        con.execute("INSERT INTO events (event_id, type, occurred_at, customer_id, properties) "
                    "VALUES (?, 'experiment_exposure', ?, ?, ?)",
                    [f"x{i}", at, cid, json.dumps({"experiment": key, "variant": variant})])
    for i, (cid, kind, at) in enumerate(EVENTS):
        con.execute("INSERT INTO events (event_id, type, occurred_at, customer_id) VALUES (?, ?, ?, ?)",
                    [f"e{i}", kind, at, cid])
    for oid, cid, at, status, total, refunded in ORDERS:
        con.execute("INSERT INTO orders (order_id, customer_id, ordered_at, status, total_amount, "
                    "refunded_amount) VALUES (?, ?, ?, ?, ?, ?)", [oid, cid, at, status, total, refunded])
    yield ibis.duckdb.from_connection(con)
    con.close()


def stats_of(backend: ibis.BaseBackend, *specs: MetricSpec, cuped_days: int = 0) -> list[list[object]]:
    return metrics.metric_stats(backend, "pdp", "customer", WINDOW, ["control", "b"], list(specs),
                                cuped_days=cuped_days)  # type: ignore[return-value]


def test_first_exposures_and_units_in_two_variants(backend: ibis.BaseBackend) -> None:
    seen = metrics.exposure_counts(metrics.first_exposures(backend, "pdp", "customer", WINDOW))
    assert seen.units == {"control": 3, "b": 3}  # c1-c3, c4-c6; c8 is outside the window
    assert seen.multiple == 1  # c7


def test_order_metrics_per_variant(backend: ibis.BaseBackend) -> None:
    conversion, revenue, orders, aov, refunds = stats_of(
        backend, MetricSpec(kind="conversion"), MetricSpec(kind="revenue"), MetricSpec(kind="orders"),
        MetricSpec(kind="aov"), MetricSpec(kind="refund_rate"))
    # control: c1 net 10000 + (5000 - 1000) = 14000 in 2 orders; c2, c3 nothing after exposure.
    # b: c4 20000 (1 order), c5 4000 + 4000 (2 orders), c6 nothing inside the window.
    assert conversion == [ProportionStats("control", 3, 1), ProportionStats("b", 3, 2)]
    assert revenue == [MeanStats("control", 3, 14000.0, 14000.0**2),
                       MeanStats("b", 3, 28000.0, 20000.0**2 + 8000.0**2)]
    assert orders == [MeanStats("control", 3, 2.0, 4.0), MeanStats("b", 3, 3.0, 5.0)]
    assert aov == [RatioStats("control", 3, 14000.0, 14000.0**2, 2.0, 4.0, 28000.0),
                   RatioStats("b", 3, 28000.0, 20000.0**2 + 8000.0**2, 3.0, 5.0, 20000.0 + 16000.0)]
    # refund rate = refunded / paid amount: control 1000 / 15000, b 0 / 28000
    assert refunds == [RatioStats("control", 3, 1000.0, 1e6, 15000.0, 15000.0**2, 1000.0 * 15000.0),
                       RatioStats("b", 3, 0.0, 0.0, 28000.0, 20000.0**2 + 8000.0**2, 0.0)]


def test_cuped_uses_the_same_metric_before_each_units_first_exposure(backend: ibis.BaseBackend) -> None:
    revenue, aov = stats_of(backend, MetricSpec(kind="revenue"), MetricSpec(kind="aov"), cuped_days=14)
    # pre-period: c1 3000 (Feb 25), c2 2000 (Mar 1, before its Mar 3 exposure), c5 1000 (Feb 28)
    assert revenue == [
        CupedMeanStats("control", 3, 14000.0, 14000.0**2, 5000.0, 3000.0**2 + 2000.0**2, 14000.0 * 3000.0),
        CupedMeanStats("b", 3, 28000.0, 20000.0**2 + 8000.0**2, 1000.0, 1000.0**2, 8000.0 * 1000.0),
    ]
    control = aov[0]
    assert isinstance(control, CupedRatioStats)
    assert (control.pre_num_sum, control.pre_den_sum, control.pre_num_den_sum) == (5000.0, 2.0, 5000.0)
    assert (control.num_pre_num_sum, control.num_pre_den_sum) == (14000.0 * 3000.0, 14000.0 * 1)
    assert (control.den_pre_num_sum, control.den_pre_den_sum) == (2.0 * 3000.0, 2.0 * 1)


def test_winsorising_caps_at_a_percentile_of_the_non_zero_values(backend: ibis.BaseBackend) -> None:
    (revenue,) = stats_of(backend, MetricSpec(kind="revenue", cap=0.6))
    # non-zero values 8000, 14000, 20000: the 0.6 quantile (linear) = 14000 + 0.2 × 6000 = 15200
    assert revenue[0] == MeanStats("control", 3, 14000.0, 14000.0**2)
    assert revenue[1] == MeanStats("b", 3, 15200.0 + 8000.0, 15200.0**2 + 8000.0**2)


def test_event_conversion_and_retention(backend: ibis.BaseBackend) -> None:
    carts, retained = stats_of(backend, MetricSpec(kind="conversion", event="add_to_cart"),
                               MetricSpec(kind="retention", days_from=7, days_to=14))
    assert carts == [ProportionStats("control", 3, 0), ProportionStats("b", 3, 1)]  # c1's cart is before
    # active on days 7-14 after first exposure: c1 (order Mar 10, exposed Mar 2), c2 (view Mar 12)
    assert retained == [ProportionStats("control", 3, 2), ProportionStats("b", 3, 0)]


def test_a_metric_window_limits_the_days_counted(backend: ibis.BaseBackend) -> None:
    (revenue,) = stats_of(backend, MetricSpec(kind="revenue", window_days=3))
    # within 3 days of exposure: c1's Mar 3 order (10000), c5's Mar 4 order; c4's Mar 5 order is day 3+
    assert revenue == [MeanStats("control", 3, 10000.0, 1e8), MeanStats("b", 3, 4000.0, 16e6)]


def test_duckdb_file_unchanged_by_analysis(tmp_path: Path) -> None:
    """Analysis only reads: a read-only connection is enough (the CLI opens the warehouse so)."""
    cfg = Settings(data_dir=tmp_path, database_url=None)
    open_duckdb(cfg).close()
    con = duckdb.connect(str(cfg.warehouse_path), read_only=True)
    try:
        found = metrics.metric_stats(ibis.duckdb.from_connection(con), "pdp", "customer", WINDOW,
                                     ["control", "b"], [MetricSpec(kind="revenue")], cuped_days=7)
    finally:
        con.close()
    assert [s.n for s in found[0]] == [0, 0]


def test_anonymous_units_meet_their_orders_through_the_customer_they_identified_as(
    backend: ibis.BaseBackend,
) -> None:
    con: Any = backend.con  # type: ignore[attr-defined]
    exposure = "experiment_exposure"
    rows = [("a1", "dev-1", None, exposure, "2025-03-02 00:00", {"experiment": "anon", "variant": "a"}),
            ("a2", "dev-2", None, exposure, "2025-03-02 00:00", {"experiment": "anon", "variant": "b"}),
            ("a3", "dev-1", "c4", "view", "2025-03-02 01:00", None)]  # dev-1 signs in as c4
    for event_id, anon, cid, kind, at, props in rows:
        con.execute("INSERT INTO events (event_id, type, occurred_at, customer_id, anonymous_id, properties) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [event_id, kind, at, cid, anon, json.dumps(props) if props else None])
    (revenue,) = metrics.metric_stats(backend, "anon", "anonymous", WINDOW, ["a", "b"],
                                      [MetricSpec(kind="revenue")], cuped_days=0)
    # dev-1 → c4, whose 20000 order (Mar 5) follows the exposure; dev-2 never identified
    assert revenue == [MeanStats("a", 1, 20000.0, 20000.0**2), MeanStats("b", 1, 0.0, 0.0)]
