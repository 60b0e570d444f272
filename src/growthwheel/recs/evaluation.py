"""Offline evaluation of the recommenders, and the blend it chooses.

The split is by time: each customer's last order is held out (customers with at least two
orders are tested); everything else trains. Metrics at K (10): NDCG@K (binary relevance, ideal
DCG over min(|held-out items|, K)), recall@K (share of the held-out items found), hit rate
(customers with at least one held-out item in their K) and coverage (distinct items recommended
over the items known), every model side by side.

The blend's weights are chosen on a validation split inside the training data (each tested
customer's second-to-last order held out from it), so the test orders never choose them;
coordinate ascent on NDCG@K starting from re-purchase alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from growthwheel.recs import recommenders as r
from growthwheel.recs.history import EPOCH, History, IntArray, Split, hold_out_last

K = 10
WEIGHT_STEPS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
BLEND_PARTS = ("replenish", "repurchase", "tifu_knn", "item_cosine", "als", "popularity")


@dataclass(frozen=True)
class Scores:
    """One model's offline metrics."""

    model: str
    ndcg: float
    recall: float
    hit_rate: float
    coverage: float
    customers: int
    seconds: float


def metrics(model: str, recs: IntArray, targets: Sequence[IntArray], n_items: int, k: int = K,
            seconds: float = 0.0) -> Scores:
    """NDCG@k, recall@k, hit rate and coverage of ``recs`` (rows of item indices, -1 = empty)."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg = recall = hits = 0.0
    width = min(k, recs.shape[1]) if recs.ndim == 2 else k
    for row, target in zip(recs, targets, strict=True):
        got = np.isin(row[:width], target) & (row[:width] >= 0)
        dcg = float(discounts[:width][got].sum())
        ideal = float(discounts[:min(len(target), k)].sum())
        ndcg += dcg / ideal if ideal else 0.0
        found = int(got.sum())
        recall += found / len(target) if len(target) else 0.0
        hits += 1.0 if found else 0.0
    n = max(len(targets), 1)
    shown = recs[:, :k]
    coverage = len(np.unique(shown[shown >= 0])) / n_items if n_items else 0.0
    return Scores(model, ndcg / n, recall / n, hits / n, coverage, len(targets), seconds)


def due_days(h: History, products: pd.DataFrame | None = None, *, min_repeats: int = 2) -> sp.csr_matrix:
    """Customer × item due day (days since 1970) of each item with a cycle, from the journeys'
    replenishment trigger run over ``h`` (``products``: ``sku, consumption_cycle_days``)."""
    import ibis

    from growthwheel.journeys import definition as d
    from growthwheel.journeys.triggers import Window, replenishment_trigger

    if not len(h.basket_customer):
        return sp.csr_matrix((h.n_customers, h.n_items), dtype=np.float64)
    day = (EPOCH + h.basket_day.astype("timedelta64[D]")).astype("datetime64[s]")
    orders = pd.DataFrame({"order_id": np.arange(len(h.basket_customer)).astype(str),
                           "customer_id": h.customers[h.basket_customer].astype(str),
                           "order_date": pd.to_datetime(day).date,
                           "status": "paid", "total_amount": 0, "refunded_amount": 0})
    coo = h.baskets.tocoo()
    lines = pd.DataFrame({"order_id": coo.row.astype(str), "sku": h.items[coo.col].astype(str)})
    trig = d.ReplenishmentTrigger(kind="replenishment", min_repeats=min_repeats)
    w = Window(since=datetime(1971, 1, 1, tzinfo=UTC), now=datetime(2199, 1, 1, tzinfo=UTC), timezone="UTC")
    con = ibis.duckdb.connect()
    try:
        p = None
        if products is not None and len(products):
            p = ibis.memtable(products[["sku", "consumption_cycle_days"]].astype(
                {"sku": str, "consumption_cycle_days": "Int64"}))
        expr = replenishment_trigger(ibis.memtable(orders), ibis.memtable(lines), p, trig, w)
        due = con.execute(expr)
    finally:
        con.disconnect()
    if due.empty:
        return sp.csr_matrix((h.n_customers, h.n_items), dtype=np.float64)
    sku = due.occurrence.str.slice(len("replenish:")).str.rsplit(":", n=1).str[0]
    cust = pd.Index(h.customers).get_indexer(due.customer_id.astype(str))
    item = pd.Index(h.items).get_indexer(sku)
    ok = (cust >= 0) & (item >= 0)
    when = pd.to_datetime(due.occurred_at).to_numpy().astype("datetime64[D]")
    days = (when - EPOCH).astype(np.int64).astype(np.float64)
    return sp.csr_matrix((days[ok], (cust[ok], item[ok])), shape=(h.n_customers, h.n_items))


def _fit_all(train: History, names: Sequence[str], due: sp.csr_matrix) -> dict[str, Any]:
    return {name: r.make(name, due).fit(train) for name in names}


def _scaled_blocks(models: Mapping[str, Any], users: IntArray, day: IntArray) -> dict[str, r.FloatArray]:
    return {name: r.scaled(m.scores(users, day)) for name, m in models.items()}


def _ndcg_of(total: r.FloatArray, targets: Sequence[IntArray], n_items: int) -> float:
    idx, _ = r.top_k(total, K)
    return metrics("-", idx, targets, n_items).ndcg


def choose_weights(split: Split, products: pd.DataFrame | None = None, *, parts: Sequence[str] = BLEND_PARTS,
                   sample: int = 3000, seed: int = 0, rounds: int = 2) -> dict[str, float]:
    """The blend's weights, chosen on a validation split of ``split.train`` (see the module)."""
    val = hold_out_last(split.train)
    if len(val.users) == 0:
        return {"repurchase": 1.0, "popularity": 0.1}
    pick = np.arange(len(val.users))
    if len(pick) > sample:
        pick = np.sort(np.random.default_rng(seed).choice(pick, sample, replace=False))
    users, day = val.users[pick], val.day[pick]
    targets = [val.targets[i] for i in pick]
    models = _fit_all(val.train, parts, due_days(val.train, products))
    blocks = _scaled_blocks(models, users, day)
    weights = dict.fromkeys(parts, 0.0)
    weights["repurchase"] = 1.0

    def value(w: Mapping[str, float]) -> float:
        total = np.zeros_like(blocks[parts[0]])
        for n, v in w.items():
            if v:
                total += blocks[n] * np.float32(v)
        return _ndcg_of(total, targets, split.train.n_items)

    best = value(weights)
    for _ in range(rounds):
        for name in parts:
            for step in WEIGHT_STEPS:
                trial = {**weights, name: step}
                if not any(trial.values()):
                    continue
                v = value(trial)
                if v > best + 1e-9:
                    best, weights = v, trial
    return {n: v for n, v in weights.items() if v}


@dataclass(frozen=True)
class Evaluation:
    """Every model's scores on the held-out orders, and the blend's weights."""

    scores: list[Scores]
    weights: dict[str, float]
    customers_tested: int
    items: int

    def table(self) -> pd.DataFrame:
        """One row per model: ndcg@10, recall@10, hit_rate, coverage, seconds."""
        return pd.DataFrame([{"model": s.model, "ndcg@10": s.ndcg, "recall@10": s.recall,
                              "hit_rate": s.hit_rate, "coverage": s.coverage, "seconds": s.seconds}
                             for s in self.scores])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"customers_tested": self.customers_tested, "items": self.items, "weights": self.weights,
                "models": self.table().to_dict(orient="records")}


def evaluate(h: History, products: pd.DataFrame | None = None, *,
             models: Sequence[str] = r.MODEL_NAMES, weights: Mapping[str, float] | None = None,
             seed: int = 0) -> Evaluation:
    """Hold out each customer's last order; fit each model on the rest; score the held-out orders;
    then the blend (weights chosen on the validation split unless given)."""
    split = hold_out_last(h)
    due = due_days(split.train, products)
    chosen = dict(weights) if weights is not None else choose_weights(split, products, seed=seed)
    out: list[Scores] = []
    fitted: dict[str, Any] = {}
    for name in list(dict.fromkeys([*models, *chosen])):
        start = time.perf_counter()
        model = r.make(name, due).fit(split.train)
        fitted[name] = model
        idx, _ = r.recommend(model, split.users, split.day, K)
        if name in models:
            out.append(metrics(name, idx, split.targets, h.n_items, seconds=time.perf_counter() - start))
    start = time.perf_counter()
    blend = r.Blend({n: fitted[n] for n in chosen}, chosen)
    idx, _ = r.recommend(blend, split.users, split.day, K)
    out.append(metrics("blend", idx, split.targets, h.n_items, seconds=time.perf_counter() - start))
    return Evaluation(out, chosen, len(split.users), h.n_items)
