"""Recommenders over a :class:`~growthwheel.recs.history.History`: each is fitted once, then scores
a batch of customers at once (a dense batch × item block; never all customers × items).

* ``popularity``: baskets holding the item (the same list for everyone);
* ``repurchase``: the customer's own purchase frequency, recent baskets breaking ties (the strong
  baseline of next-basket work: Li et al., "A Next Basket Recommendation Reality Check", 2023);
* ``replenish``: ``repurchase`` made replenishment-aware: an item with a consumption cycle counts
  more when its cycle is due by the day scored and less while it was only just bought; the cycles
  and due days come from the journeys' replenishment trigger (``journeys.triggers``: the product's
  ``consumption_cycle_days``, else the learned median interval);
* ``item_cosine``: item-item co-occurrence over customers, cosine-normalised, top neighbours kept;
* ``tifu_knn``: TIFU-KNN (Hu et al., SIGIR 2020): time-decayed group-averaged basket vectors,
  blended with the mean vector of the nearest customers (cosine; searched in a pool of customers);
* ``als``: implicit-feedback matrix factorisation (the ``implicit`` package's ALS, Hu, Koren and
  Volinsky 2008) on purchase counts;
* ``blend``: a weighted sum of the models' scores, each scaled to a maximum of 1 per customer;
  the weights are chosen by offline evaluation (``recs.evaluation.choose_blend``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from growthwheel.recs.history import History, IntArray

FloatArray = npt.NDArray[np.float32]

MODEL_NAMES = ("popularity", "repurchase", "replenish", "item_cosine", "tifu_knn", "als")


class Recommender(Protocol):
    """A fitted model: scores for a batch of customers (indices) on given days."""

    name: str

    def fit(self, h: History) -> Recommender:
        """Learn from ``h``; returns itself."""

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """A ``len(users) × items`` block of scores (0 = nothing to say)."""


def _dense(m: sp.csr_matrix) -> FloatArray:
    return np.asarray(m.toarray(), dtype=np.float32)


@dataclass
class Popularity:
    """Items by how many baskets hold them."""

    name: str = "popularity"
    counts: FloatArray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    def fit(self, h: History) -> Popularity:
        """Count baskets per item."""
        self.counts = np.asarray(h.baskets.sum(axis=0), dtype=np.float32).ravel()
        return self

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """The same counts for every customer."""
        return np.broadcast_to(self.counts, (len(users), len(self.counts))).copy()


def _recency_weights(h: History, decay: float) -> npt.NDArray[np.float64]:
    """``decay ** (baskets after this one)`` per basket of its customer."""
    pos = np.arange(len(h.basket_customer)) - h.ptr[h.basket_customer]
    after = h.counts()[h.basket_customer] - 1 - pos
    return np.power(decay, after.astype(np.float64))


@dataclass
class Repurchase:
    """Personal re-purchase frequency (recency breaks ties)."""

    name: str = "repurchase"
    freq: sp.csr_matrix | None = None

    def fit(self, h: History) -> Repurchase:
        """Frequency plus a small recency term below one purchase."""
        self.freq = (h.customer_items() + 0.5 * h.customer_items(_recency_weights(h, 0.5))).tocsr()
        return self

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """The customers' rows."""
        assert self.freq is not None
        return _dense(self.freq[users])


@dataclass
class Replenish:
    """``repurchase`` scaled by whether each cyclic item is due (``due`` holds the due day of a
    customer's item, days since 1970, as given by the journeys' replenishment trigger)."""

    due: sp.csr_matrix | None = None
    horizon_days: int = 14
    boost: float = 3.0
    hold_back: float = 0.2
    name: str = "replenish"
    base: Repurchase = field(default_factory=Repurchase)

    def fit(self, h: History) -> Replenish:
        """Fit the frequency part; ``due`` is given (see :mod:`growthwheel.recs.service`)."""
        self.base.fit(h)
        if self.due is None:
            self.due = sp.csr_matrix((h.n_customers, h.n_items), dtype=np.float64)
        return self

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """Due (by ``day + horizon``) items × ``boost``; not yet due × ``hold_back``."""
        assert self.due is not None
        s = self.base.scores(users, day)
        due = self.due[users].tocoo()
        if due.nnz:
            left = due.data - day[due.row]
            factor = np.where(left <= self.horizon_days, self.boost, self.hold_back).astype(np.float32)
            s[due.row, due.col] *= factor
        return s


@dataclass
class ItemCosine:
    """Item-item cosine over customers' purchases, ``neighbours`` kept per item."""

    neighbours: int = 50
    name: str = "item_cosine"
    bought: sp.csr_matrix | None = None
    sim: sp.csr_matrix | None = None

    def fit(self, h: History) -> ItemCosine:
        """Co-occurrence over customers, cosine-normalised, diagonal removed, top neighbours."""
        x = h.customer_items().tocsr()
        x.data[:] = 1.0
        self.bought = x
        c = (x.T @ x).tocsr().astype(np.float32)
        norms = np.sqrt(np.maximum(c.diagonal(), 1.0)).astype(np.float32)
        c = sp.diags(1.0 / norms) @ c @ sp.diags(1.0 / norms)
        c = sp.csr_matrix(c)
        c.setdiag(0.0)
        c.eliminate_zeros()
        self.sim = _top_per_row(c, self.neighbours)
        return self

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """Sum of similarities to what the customer bought."""
        assert self.bought is not None
        assert self.sim is not None
        return _dense(self.bought[users] @ self.sim)


def _top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    m = m.tocsr()
    rows, cols, vals = [], [], []
    for i in range(m.shape[0]):
        a, b = m.indptr[i], m.indptr[i + 1]
        if b == a:
            continue
        d, j = m.data[a:b], m.indices[a:b]
        if b - a > k:
            top = np.argpartition(-d, k)[:k]
            d, j = d[top], j[top]
        rows.append(np.full(len(j), i))
        cols.append(j)
        vals.append(d)
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=m.shape, dtype=np.float32)


@dataclass
class TifuKnn:
    """TIFU-KNN: a customer's vector is the decayed mean of group vectors (groups of ``group_size``
    consecutive baskets, decayed by ``group_decay``; baskets in a group by ``basket_decay``); the
    score is ``alpha`` × own vector + (1 − ``alpha``) × mean of the ``k`` most similar customers'
    vectors (cosine), searched among at most ``pool`` customers (a fixed sample when more)."""

    k: int = 50
    alpha: float = 0.7
    group_size: int = 7
    basket_decay: float = 0.9
    group_decay: float = 0.7
    pool: int = 4_000
    seed: int = 0
    name: str = "tifu_knn"
    vectors: sp.csr_matrix | None = None
    pool_ids: IntArray | None = None
    pool_unit: sp.csr_matrix | None = None
    pool_vectors: sp.csr_matrix | None = None

    def fit(self, h: History) -> TifuKnn:
        """Each customer's TIFU vector; the neighbour pool, unit-normalised."""
        counts = h.counts()
        pos = np.arange(len(h.basket_customer)) - h.ptr[h.basket_customer]
        n = counts[h.basket_customer]
        # Groups counted from the most recent basket backwards (the last group is complete).
        back = n - 1 - pos
        group_back = back // self.group_size
        groups = (n + self.group_size - 1) // self.group_size
        in_group = np.minimum(self.group_size, n - group_back * self.group_size)
        pos_in_group_back = back % self.group_size
        w = (np.power(self.basket_decay, pos_in_group_back) / in_group
             * np.power(self.group_decay, group_back) / groups)
        self.vectors = h.customer_items(w.astype(np.float64)).astype(np.float32).tocsr()
        active = np.flatnonzero(counts > 0)
        if len(active) > self.pool:
            active = np.sort(np.random.default_rng(self.seed).choice(active, self.pool, replace=False))
        self.pool_ids = active.astype(np.int64)
        self.pool_vectors = self.vectors[self.pool_ids].tocsr()
        self.pool_unit = _unit_rows(self.pool_vectors)
        return self

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """Own vector blended with the neighbours' mean."""
        assert self.vectors is not None
        assert self.pool_unit is not None
        assert self.pool_ids is not None
        own = self.vectors[users]
        sim = _dense(_unit_rows(own) @ self.pool_unit.T)
        # A customer is not their own neighbour.
        where = np.searchsorted(self.pool_ids, users)
        inside = (where < len(self.pool_ids)) & (self.pool_ids[np.minimum(where, len(self.pool_ids) - 1)]
                                                   == users)
        sim[np.flatnonzero(inside), where[inside]] = 0.0
        k = min(self.k, sim.shape[1])
        if k == 0:
            return _dense(own) * self.alpha
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(len(users)), k)
        vals = np.take_along_axis(sim, top, axis=1).ravel()
        pick = sp.csr_matrix(((vals > 0).astype(np.float32) / k, (rows, top.ravel())),
                             shape=(len(users), len(self.pool_ids)))
        assert self.pool_vectors is not None
        neighbours = pick @ self.pool_vectors
        return self.alpha * _dense(own) + (1.0 - self.alpha) * _dense(neighbours)


def _unit_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sp.diags((1.0 / norms).astype(np.float32)) @ m).tocsr()


@dataclass
class Als:
    """``implicit``'s ALS on purchase counts (confidence 1 + ``alpha`` × count)."""

    factors: int = 32
    iterations: int = 12
    regularization: float = 0.05
    alpha: float = 10.0
    seed: int = 0
    name: str = "als"
    user_factors: FloatArray | None = None
    item_factors: FloatArray | None = None

    def fit(self, h: History) -> Als:
        """Fit the factors (one BLAS thread: ``implicit`` asks for it)."""
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from implicit.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        x = h.customer_items().astype(np.float32).tocsr()
        x.data = 1.0 + self.alpha * x.data
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=self.factors, iterations=self.iterations,
                                            regularization=self.regularization, random_state=self.seed,
                                            use_gpu=False)
            model.fit(x, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """Dot products of the factors (negative = 0)."""
        assert self.user_factors is not None
        assert self.item_factors is not None
        s = self.user_factors[users] @ self.item_factors.T
        return np.asarray(np.maximum(s, 0.0), dtype=np.float32)


def scaled(s: FloatArray) -> FloatArray:
    """Each row divided by its maximum (rows of zeros stay zeros)."""
    top = s.max(axis=1, keepdims=True)
    top[top <= 0] = 1.0
    return np.asarray(s / top, dtype=np.float32)


@dataclass
class Blend:
    """A weighted sum of fitted models' per-customer scaled scores."""

    models: Mapping[str, Any]
    weights: Mapping[str, float]
    name: str = "blend"

    def fit(self, h: History) -> Blend:
        """Fit every model with a non-zero weight."""
        for name, model in self.models.items():
            if self.weights.get(name, 0.0):
                model.fit(h)
        return self

    def scores(self, users: IntArray, day: IntArray) -> FloatArray:
        """Σ weight × scaled scores."""
        total: FloatArray | None = None
        for name, w in self.weights.items():
            if not w:
                continue
            part = scaled(self.models[name].scores(users, day)) * np.float32(w)
            total = part if total is None else total + part
        if total is None:
            raise ValueError("a blend needs a model with a weight above 0")
        return total


def make(name: str, due: sp.csr_matrix | None = None) -> Any:
    """A fresh, unfitted model by name (``due``: the replenishment due days, for ``replenish``)."""
    if name == "popularity":
        return Popularity()
    if name == "repurchase":
        return Repurchase()
    if name == "replenish":
        return Replenish(due=due)
    if name == "item_cosine":
        return ItemCosine()
    if name == "tifu_knn":
        return TifuKnn()
    if name == "als":
        return Als()
    raise ValueError(f"model: one of {', '.join(MODEL_NAMES)}")


def top_k(s: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """The ``k`` best items of each row with their scores, best first; -1 where a row has fewer
    than ``k`` items with a positive score."""
    k = min(k, s.shape[1])
    idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(s, idx, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    idx[vals <= 0] = -1
    return idx, vals.astype(np.float32)


def recommend(model: Any, users: IntArray, day: IntArray, k: int = 10, *,
              batch: int = 1024, exclude: sp.csr_matrix | None = None) -> tuple[IntArray, FloatArray]:
    """Top ``k`` items for every customer in ``users`` (``exclude``: customer × item, non-zero =
    never recommend), in batches."""
    out_i = np.full((len(users), k), -1, dtype=np.int64)
    out_s = np.zeros((len(users), k), dtype=np.float32)
    for start in range(0, len(users), batch):
        u = users[start:start + batch]
        s = model.scores(u, day[start:start + batch])
        if exclude is not None:
            ex = exclude[u].tocoo()
            s[ex.row, ex.col] = 0.0
        idx, vals = top_k(s, k)
        out_i[start:start + len(u), :idx.shape[1]] = idx
        out_s[start:start + len(u), :vals.shape[1]] = vals
    return out_i, out_s
