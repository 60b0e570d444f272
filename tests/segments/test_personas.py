"""Personas: features worked out by hand on the tea shop, k-means and silhouette against naive
implementations, labels on made-up buyers, and the demo shop against its known latent structure."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from tea_shop import AS_OF

from growthwheel.config import Settings
from growthwheel.errors import NoDataError
from growthwheel.insight.personas import (
    choose_k,
    cluster,
    feature_frame,
    kmeans,
    persona_features,
    personas,
    silhouette,
)
from growthwheel.sim.demo import build_demo
from growthwheel.warehouse import connect


def test_features_of_the_tea_shop(tea_shop_template: Path) -> None:
    backend = connect(Settings(data_dir=tea_shop_template, database_url=None))
    try:
        raw = persona_features(backend, AS_OF).order_by("customer_id").to_pandas()
    finally:
        backend.disconnect()
    frame = feature_frame(raw, AS_OF).set_index("customer_id")
    # Buyers with a paid order up to 03-31: c1, c2 (cancelled O3 does not count), c3, c6 (refunded
    # order was paid); c4's order is after as_of and c5 never bought.
    assert list(frame.index) == ["c1", "c2", "c3", "c6"]
    c1 = frame.loc["c1"]
    assert (c1.orders, c1.gmv, c1.aov) == (2, 19_000, 9_500)
    assert (c1.top_category, c1.recency_days, c1.tenure_days) == ("Teaware", 6, 80)  # 03-25, 01-10
    assert c1.category_concentration == pytest.approx(120 / 190)  # Teaware 120.00 of 190.00
    c2 = frame.loc["c2"]
    assert (c2.orders, c2.gmv, c2.recency_days, c2.tenure_days) == (1, 12_000, 116, 116)  # 2024-12-05
    c3 = frame.loc["c3"]
    assert (c3.top_category, c3.category_concentration) == ("Tea", 1.0)
    assert (c3.recency_days, c3.tenure_days) == (1, 39)
    c6 = frame.loc["c6"]
    assert c6.top_category is None or pd.isna(c6.top_category)  # its gift card has no category
    assert math.isnan(c6.category_concentration)
    assert (frame.discount_share == 0).all()
    assert (frame.refund_rate == 0).all()  # the refunded order carries no refunded amount


def _blobs(centres: list[tuple[float, float]], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, 0.3, size=(n, 2)) for c in centres])
    return x, np.repeat(np.arange(len(centres)), n)


def _naive_silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    values = []
    for i in range(len(x)):
        dist = np.sqrt(((x - x[i]) ** 2).sum(axis=1))
        own = labels == labels[i]
        if own.sum() == 1:
            values.append(0.0)
            continue
        a = dist[own].sum() / (own.sum() - 1)
        b = min(dist[labels == c].mean() for c in set(labels.tolist()) if c != labels[i])
        values.append((b - a) / max(a, b))
    return float(np.mean(values))


def test_kmeans_finds_separated_groups_and_silhouette_picks_their_number() -> None:
    x, truth = _blobs([(0, 0), (5, 0), (0, 5), (5, 5)], 60, seed=1)
    _, labels = kmeans(x, 4, seed=3)
    # Each true group lands in one cluster.
    assert all(len(set(labels[truth == g].tolist())) == 1 for g in range(4))
    k, scores, _ = choose_k(x, seed=3)
    assert k == 4
    assert scores[4] > max(v for kk, v in scores.items() if kk != 4)
    assert silhouette(x, labels) == pytest.approx(_naive_silhouette(x, labels), rel=1e-9)
    odd = np.array([0] * 5 + [1] + [2] * 4)  # a cluster of one scores 0
    small = np.random.default_rng(2).normal(size=(10, 3))
    assert silhouette(small, odd) == pytest.approx(_naive_silhouette(small, odd), rel=1e-9)


def _buyers() -> pd.DataFrame:
    """Made-up buyers as of 2025-06-30 in four kinds of 50: big spenders buying often, discount
    hunters, Beauty fans and one-off buyers who left long ago."""
    rng = np.random.default_rng(5)
    rows = []
    kinds = {
        "big": {"orders": (8, 12), "aov": (40_000, 60_000), "disc": (0.0, 0.03),
                 "last": (1, 20), "first": (300, 400)},
        "deal": {"orders": (2, 3), "aov": (8_000, 12_000), "disc": (0.3, 0.4),
                 "last": (10, 40), "first": (100, 200)},
        "fan": {"orders": (2, 4), "aov": (10_000, 15_000), "disc": (0.0, 0.05),
                 "last": (10, 40), "first": (100, 200)},
        "gone": {"orders": (1, 1), "aov": (9_000, 12_000), "disc": (0.0, 0.05),
                 "last": (250, 350), "first": (250, 350)},
    }
    for kind, spec in kinds.items():
        for i in range(50):
            orders = int(rng.integers(spec["orders"][0], spec["orders"][1] + 1))
            gmv = int(orders * rng.uniform(*spec["aov"]))
            disc = rng.uniform(*spec["disc"])
            last = int(rng.integers(*spec["last"]))
            first = max(last, int(rng.integers(*spec["first"])))
            top, conc = ("Beauty", rng.uniform(0.9, 1.0)) if kind == "fan" else \
                (["Food", "Home", "Baby"][i % 3], rng.uniform(0.4, 0.6))
            rows.append({
                "customer_id": f"{kind}-{i:02d}", "orders": orders, "gmv": gmv,
                "discount": int(gmv * disc / (1 - disc)), "refunded": 0,
                "first_order": date.fromordinal(date(2025, 6, 30).toordinal() - first),
                "last_order": date.fromordinal(date(2025, 6, 30).toordinal() - last),
                "top_category": top, "top_spend": int(gmv * conc), "line_spend": gmv,
            })
    return feature_frame(pd.DataFrame(rows), date(2025, 6, 30))


def test_labels_read_like_the_buyers_they_describe() -> None:
    frame = _buyers()
    result = cluster(frame, k=4, seed=7, as_of=date(2025, 6, 30))
    kind_of = result.assignments.assign(kind=result.assignments.customer_id.str.split("-").str[0])
    persona = {p.id: p for p in result.personas}
    by_kind = {k: {int(i) for i in g.persona} for k, g in kind_of.groupby("kind")}
    assert all(len(ids) == 1 for ids in by_kind.values()), by_kind  # each kind is one persona
    traits = {k: set(persona[ids.pop()].traits) for k, ids in by_kind.items()}
    assert {"high-value", "loyal"} <= traits["big"]
    assert "price-sensitive" in traits["deal"]
    assert "category fan: Beauty" in traits["fan"]
    assert "lapsed" in traits["gone"]
    assert not traits["gone"] & {"high-value", "loyal", "price-sensitive"}
    assert [p.size for p in result.personas] == [50, 50, 50, 50]
    assert sum(p.revenue for p in result.personas) == int(frame.gmv.sum())
    assert result.personas[0].revenue_share == max(p.revenue_share for p in result.personas)  # by revenue
    fan = next(p for p in result.personas if p.top_category == "Beauty")
    assert fan.label_zh.startswith("品类偏好：Beauty")
    # Mean CLV per persona when scores are given.
    clv = pd.Series(np.where(frame.customer_id.str.startswith("big"), 100_000.0, 1_000.0))
    with_clv = cluster(frame, k=4, seed=7, clv=clv)
    means = sorted(p.mean_clv for p in with_clv.personas if p.mean_clv is not None)
    assert means == [1000.0, 1000.0, 1000.0, 100000.0]


def test_too_few_buyers() -> None:
    with pytest.raises(NoDataError, match="at least 30 buyers"):
        cluster(_buyers().head(10))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    cfg = Settings(data_dir=tmp_path_factory.mktemp("demo") / "data", database_url=None)
    build_demo(cfg, customers=4000, days=365, seed=7, start=date(2025, 1, 1))
    return cfg


def test_demo_personas_follow_the_simulated_customers(demo: Settings) -> None:
    backend = connect(demo)
    try:
        as_of = backend.table("orders").order_date.max().to_pyarrow().as_py()
        result = personas(backend, as_of)
        again = personas(backend, as_of)
    finally:
        backend.disconnect()
    assert 3 <= result.k <= 8
    assert result.silhouettes[result.k] == max(result.silhouettes.values())
    pd.testing.assert_frame_equal(result.assignments, again.assignments)  # fixed seed: same personas
    truth = pq.read_table(demo.data_dir / "ground_truth_customers.parquet").to_pandas()
    joined = result.assignments.merge(truth, on="customer_id", validate="one_to_one")
    assert len(joined) == len(result.assignments) == int((truth.orders > 0).sum())
    joined["acquired"] = pd.to_datetime(joined.acquired_at.str[:10])
    overall_rate, overall_acquired = joined.lambda_per_week.mean(), joined.acquired.mean()
    traits = {p.id: set(p.traits) for p in result.personas}
    seen: set[str] = set()
    for persona, members in joined.groupby("persona"):
        found = traits[int(persona)]
        seen |= found
        # The simulator's latent purchase rate and acquisition day back the labels.
        if found & {"high-value", "loyal"}:
            assert members.lambda_per_week.mean() > 1.5 * overall_rate, found
        if "lapsed" in found:
            assert members.lambda_per_week.mean() < overall_rate, found
        if "new" in found:
            assert members.acquired.mean() > overall_acquired + pd.Timedelta(days=30), found
    assert {"loyal", "lapsed", "new"} <= seen
    assert sum(p.share for p in result.personas) == pytest.approx(1.0, abs=1e-3)
