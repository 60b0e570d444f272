"""Personas: k-means on behavioural features of buyers, with readable automatic labels.

**Who.** Every customer with at least one paid order on or before ``as_of`` (people who never
bought have no behaviour to cluster).

**Features** (:func:`persona_features`, an Ibis aggregation; then plain numpy):

* ``orders`` — paid orders; ``aov`` — goods after discounts per order (minor units);
* ``discount_share`` — discounts / goods before discounts over the customer's paid orders;
* ``category_concentration`` — share of the customer's line spend in their top category (the
  first part of the category path, ``Beauty`` for ``Beauty/Skincare``), with ``top_category``;
* ``recency_days`` — days from the last paid order to ``as_of``; ``tenure_days`` — days from the
  first paid order to ``as_of``;
* ``refund_rate`` — refunded / goods after discounts.

``orders``, ``aov``, ``recency_days`` and ``tenure_days`` enter the clustering as ``log1p`` (they
are heavy-tailed); every feature is then standardised (z-score); a feature that does not vary
(e.g. concentration in a shop that imports orders without lines) is left out.

**k.** Unless given, k is the one among 3..8 with the highest mean silhouette (Euclidean, on the
standardised features), each k fitted on a random sample of at most 20,000 buyers and scored on a
sub-sample of at most 2,000 of them; ties go to the smaller k. The chosen k is then fitted on all
buyers, starting from the sample's centroids. k-means++ starts, 4 restarts, fixed seed: the same
data gives the same personas.

**Labels** compare each cluster with all buyers (means unless said; "overall" = all buyers):

=====================  ==================================================================
``high-value``         mean spend (GMV) per customer ≥ 2 × overall
``loyal``              mean orders ≥ 2 × overall and ≥ 2
``price-sensitive``    mean discount share ≥ 1.5 × overall and ≥ overall + 5 points
``refund-prone``       mean refund rate ≥ 2 × overall and ≥ overall + 5 points
``category fan: X``    mean concentration ≥ 0.8 and X is the top category of ≥ 60% of members
``new``                median tenure ≤ 0.5 × overall median
``lapsed``             median recency ≥ 1.5 × overall median (and not ``new``)
``occasional``         none of the above
=====================  ==================================================================

A persona's label is its first three traits in that order (Chinese labels alongside), with
``#2``, ``#3`` appended when two personas would read the same. Each persona reports its size,
revenue (GMV, minor units) and revenue share, and mean CLV when scores with a ``clv`` column are
given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pandas as pd
from ibis.backends import BaseBackend

from growthwheel.errors import NoDataError
from growthwheel.warehouse.schema import PAID_STATUSES

Array = npt.NDArray[np.float64]

FEATURES = (
    "orders", "aov", "discount_share", "category_concentration", "recency_days", "tenure_days",
    "refund_rate",
)
_LOGGED = frozenset({"orders", "aov", "recency_days", "tenure_days"})
K_RANGE = (3, 8)
SAMPLE_FIT = 20_000
SAMPLE_SILHOUETTE = 2_000
RESTARTS = 4
MAX_ITER = 100
MIN_BUYERS = 30

_ZH = {
    "high-value": "高价值", "loyal": "忠诚复购", "price-sensitive": "价格敏感", "refund-prone": "高退款",
    "category fan": "品类偏好", "new": "新客", "lapsed": "流失风险", "occasional": "偶尔购买",
}


# ---------------------------------------------------------------------------------------------
# Features (Ibis)
# ---------------------------------------------------------------------------------------------


def persona_features(backend: BaseBackend, as_of: date) -> ir.Table:
    """One row per buyer as of ``as_of``: ``customer_id``, ``orders``, ``gmv`` (minor units),
    ``discount``, ``refunded``, ``first_order``, ``last_order``, ``top_category``, ``top_spend``,
    ``line_spend`` — the sums the features are computed from (see the module docstring)."""
    o = backend.table("orders")
    o = o.filter(
        o.status.isin(list(PAID_STATUSES)) & o.customer_id.notnull()
        & (o.order_date <= ibis.literal(as_of))
    )
    per = o.group_by("customer_id").aggregate(
        orders=o.count(),
        gmv=o.total_amount.fill_null(0).sum(),
        discount=o.discount_amount.fill_null(0).sum(),
        refunded=o.refunded_amount.fill_null(0).sum(),
        first_order=o.order_date.min(),
        last_order=o.order_date.max(),
    )
    lines = backend.table("order_lines")
    products = backend.table("products").select(_p_sku="sku", _p_category="category")
    paid = o.select(_order_id="order_id", _customer_id="customer_id")
    joined = lines.join(paid, lines.order_id == paid._order_id).left_join(
        products, lines.sku == products._p_sku
    )
    category = ibis.coalesce(joined.category, joined._p_category)
    joined = joined.mutate(_top=category.split("/")[0].strip())
    joined = joined.filter(joined._top.notnull() & (joined._top != ""))
    spend = joined.group_by(c_id=joined._customer_id, top_category=joined._top).aggregate(
        spend=joined.line_total.fill_null(0).sum()
    )
    ranked = spend.mutate(
        _rank=ibis.row_number().over(
            group_by=spend.c_id, order_by=[ibis.desc(spend.spend), spend.top_category]
        ),
        line_spend=spend.spend.sum().over(group_by=spend.c_id),
    )
    top = ranked.filter(ranked._rank == 0).select(
        "c_id", "top_category", top_spend=ranked.spend, line_spend=ranked.line_spend
    )
    out = per.left_join(top, per.customer_id == top.c_id)
    return out.drop("c_id")


def feature_frame(raw: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """The feature columns (:data:`FEATURES`, floats) from the sums of :func:`persona_features`."""
    frame = raw.copy()
    as_of_ts = pd.Timestamp(as_of)
    orders = frame["orders"].astype("float64")
    gmv = frame["gmv"].astype("float64")
    discount = frame["discount"].astype("float64")
    gross = gmv + discount
    frame["orders"] = orders
    frame["aov"] = gmv / orders
    frame["discount_share"] = np.where(gross > 0, discount / gross.where(gross > 0, 1.0), 0.0)
    frame["refund_rate"] = np.where(
        gmv > 0, frame["refunded"].astype("float64") / gmv.where(gmv > 0, 1.0), 0.0
    )
    line_spend = frame["line_spend"].astype("float64")
    frame["category_concentration"] = np.where(
        line_spend > 0, frame["top_spend"].astype("float64") / line_spend.where(line_spend > 0, 1.0), np.nan
    )
    last = pd.to_datetime(frame["last_order"])
    first = pd.to_datetime(frame["first_order"])
    frame["recency_days"] = (as_of_ts - last).dt.days.astype("float64")
    frame["tenure_days"] = (as_of_ts - first).dt.days.astype("float64")
    return frame


# ---------------------------------------------------------------------------------------------
# k-means and silhouette (numpy)
# ---------------------------------------------------------------------------------------------


def _sq_distances(x: Array, centres: Array) -> Array:
    d: Array = (x * x).sum(axis=1)[:, None] - 2.0 * x @ centres.T + (centres * centres).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def _plus_plus(x: Array, k: int, rng: np.random.Generator) -> Array:
    centres = [x[rng.integers(len(x))]]
    closest = _sq_distances(x, np.asarray(centres))[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        pick = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=closest / total)
        centres.append(x[pick])
        closest = np.minimum(closest, _sq_distances(x, x[pick][None, :])[:, 0])
    return np.asarray(centres)


def _lloyd(x: Array, centres: Array) -> tuple[Array, npt.NDArray[np.int64], float]:
    centres = centres.copy()
    labels = np.zeros(len(x), dtype=np.int64)
    for iteration in range(MAX_ITER):
        d = _sq_distances(x, centres)
        new = d.argmin(axis=1)
        if iteration and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(centres)):
            members = x[labels == j]
            if len(members):
                centres[j] = members.mean(axis=0)
            else:  # an empty cluster takes the point farthest from its centre
                far = int(d[np.arange(len(x)), labels].argmax())
                centres[j] = x[far]
                labels[far] = j
    inertia = float(_sq_distances(x, centres)[np.arange(len(x)), labels].sum())
    return centres, labels, inertia


def kmeans(x: Array, k: int, seed: int, restarts: int = RESTARTS) -> tuple[Array, npt.NDArray[np.int64]]:
    """k-means (k-means++ starts, Lloyd iterations), best of ``restarts`` by inertia; returns the
    centres and each row's cluster."""
    rng = np.random.default_rng(seed)
    best: tuple[Array, npt.NDArray[np.int64], float] | None = None
    for _ in range(restarts):
        fitted = _lloyd(x, _plus_plus(x, k, rng))
        if best is None or fitted[2] < best[2]:
            best = fitted
    assert best is not None
    return best[0], best[1]


def silhouette(x: Array, labels: npt.NDArray[np.int64]) -> float:
    """Mean silhouette coefficient (Euclidean); points alone in their cluster score 0."""
    d = np.sqrt(_sq_distances(x, x))
    clusters = np.unique(labels)
    if len(clusters) < 2:
        return 0.0
    sums = np.stack([d[:, labels == c].sum(axis=1) for c in clusters], axis=1)
    sizes = np.array([(labels == c).sum() for c in clusters], dtype=np.float64)
    own = np.searchsorted(clusters, labels)
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(len(x)), own] / np.maximum(own_size - 1, 1), 0.0)
    means = sums / sizes[None, :]
    means[np.arange(len(x)), own] = np.inf
    b = means.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def choose_k(x: Array, seed: int, k_range: tuple[int, int] = K_RANGE) -> tuple[int, dict[int, float], Array]:
    """The k with the best silhouette (see the module docstring); returns k, every k's score, and
    the centres fitted on the sample for that k."""
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(len(x), size=SAMPLE_FIT, replace=False)] if len(x) > SAMPLE_FIT else x
    scored = sample[rng.choice(len(sample), size=SAMPLE_SILHOUETTE, replace=False)] \
        if len(sample) > SAMPLE_SILHOUETTE else sample
    scores: dict[int, float] = {}
    centres_by_k: dict[int, Array] = {}
    for k in range(k_range[0], min(k_range[1], len(sample) - 1) + 1):
        centres, _ = kmeans(sample, k, seed)
        labels = _sq_distances(scored, centres).argmin(axis=1)
        scores[k] = silhouette(scored, labels)
        centres_by_k[k] = centres
    if not scores:
        raise NoDataError("too few buyers to form personas")
    best = max(scores, key=lambda k: (round(scores[k], 6), -k))
    return best, scores, centres_by_k[best]


# ---------------------------------------------------------------------------------------------
# Personas
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    """One cluster of buyers, described."""

    id: int
    label: str
    label_zh: str
    traits: tuple[str, ...]
    size: int
    share: float
    """Of all buyers."""
    revenue: int
    """GMV of the members, minor units."""
    revenue_share: float
    mean_clv: float | None
    """Mean CLV of the members (minor units) when scores were given."""
    top_category: str | None
    """The most common top category among members."""
    profile: dict[str, float]
    """Mean of each feature over the members (``aov`` in minor units)."""


@dataclass(frozen=True)
class PersonaResult:
    """The personas of a shop as of a day."""

    as_of: date | None
    k: int
    silhouettes: dict[int, float]
    """Mean silhouette of each k tried (empty when k was given)."""
    personas: list[Persona]
    assignments: pd.DataFrame = field(repr=False)
    """``customer_id``, ``persona`` (the persona's id) for every buyer."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the per-customer assignments)."""
        return {
            "as_of": self.as_of.isoformat() if self.as_of else None, "k": self.k,
            "silhouettes": {str(k): round(v, 4) for k, v in self.silhouettes.items()},
            "personas": [
                {**{name: getattr(p, name) for name in (
                    "id", "label", "label_zh", "size", "share", "revenue", "revenue_share", "mean_clv",
                    "top_category")},
                 "traits": list(p.traits), "profile": p.profile}
                for p in self.personas
            ],
        }


def _matrix(frame: pd.DataFrame) -> Array:
    columns = []
    for name in FEATURES:
        values = frame[name].astype("float64").to_numpy()
        if np.isnan(values).all():
            continue
        values = np.where(np.isnan(values), np.nanmedian(values), values)
        if name in _LOGGED:
            values = np.log1p(np.maximum(values, 0.0))
        sd = values.std()
        if sd > 1e-12:
            columns.append((values - values.mean()) / sd)
    if not columns:
        raise NoDataError("the buyers' features do not vary: nothing to cluster")
    return np.column_stack(columns)


def _traits(members: pd.DataFrame, everyone: pd.DataFrame) -> tuple[list[str], str | None]:
    def mean(df: pd.DataFrame, col: str) -> float:
        return float(df[col].mean()) if len(df) else 0.0

    traits: list[str] = []
    if mean(members, "gmv") >= 2 * mean(everyone, "gmv"):
        traits.append("high-value")
    if mean(members, "orders") >= max(2 * mean(everyone, "orders"), 2.0):
        traits.append("loyal")
    overall = mean(everyone, "discount_share")
    if mean(members, "discount_share") >= max(1.5 * overall, overall + 0.05):
        traits.append("price-sensitive")
    overall = mean(everyone, "refund_rate")
    if mean(members, "refund_rate") >= max(2 * overall, overall + 0.05):
        traits.append("refund-prone")
    tops = members["top_category"].dropna()
    top = str(tops.mode().sort_values().iloc[0]) if len(tops) else None
    concentration = members["category_concentration"].mean()
    if top is not None and concentration >= 0.8 and (tops == top).sum() >= 0.6 * len(members):
        traits.append(f"category fan: {top}")
    new = members["tenure_days"].median() <= 0.5 * everyone["tenure_days"].median()
    if new:
        traits.append("new")
    elif members["recency_days"].median() >= 1.5 * everyone["recency_days"].median():
        traits.append("lapsed")
    return (traits or ["occasional"]), top


def _zh(trait: str) -> str:
    if trait.startswith("category fan: "):
        return f"{_ZH['category fan']}：{trait.removeprefix('category fan: ')}"
    return _ZH.get(trait, trait)


def describe(
    frame: pd.DataFrame, labels: npt.NDArray[np.int64], clv: pd.Series | None = None
) -> list[Persona]:
    """Name and measure each cluster of ``frame`` (rows of :func:`feature_frame`); ``clv`` is
    indexed like ``frame``. Personas are numbered by revenue, largest first."""
    total_gmv = int(frame["gmv"].sum())
    order = sorted(set(labels.tolist()), key=lambda c: -int(frame["gmv"][labels == c].sum()))
    personas: list[Persona] = []
    seen: dict[str, int] = {}
    for new_id, cluster in enumerate(order):
        mask = labels == cluster
        members = frame[mask]
        traits, top = _traits(members, frame)
        shown = traits[:3]
        label, label_zh = ", ".join(shown), "·".join(_zh(t) for t in shown)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label, label_zh = f"{label} #{seen[label]}", f"{label_zh} #{seen[label]}"
        revenue = int(members["gmv"].sum())
        mean_clv = None
        if clv is not None:
            values = clv[mask].dropna()
            mean_clv = round(float(values.mean()), 2) if len(values) else None
        personas.append(Persona(
            id=new_id, label=label, label_zh=label_zh, traits=tuple(traits), size=int(mask.sum()),
            share=round(float(mask.mean()), 4), revenue=revenue,
            revenue_share=round(revenue / total_gmv, 4) if total_gmv else 0.0,
            mean_clv=mean_clv, top_category=top,
            profile={name: round(float(members[name].mean()), 4) for name in (*FEATURES, "gmv")},
        ))
    return personas


def cluster(frame: pd.DataFrame, k: int | None = None, seed: int = 7,
            clv: pd.Series | None = None, as_of: date | None = None) -> PersonaResult:
    """Personas of the buyers in ``frame`` (rows of :func:`feature_frame`): k chosen by
    silhouette unless given."""
    if len(frame) < MIN_BUYERS:
        raise NoDataError(f"personas need at least {MIN_BUYERS} buyers; there are {len(frame)}")
    x = _matrix(frame)
    if k is None:
        k, scores, start = choose_k(x, seed)
        centres, _ = _lloyd(x, start)[:2]
        labels = _sq_distances(x, centres).argmin(axis=1)
    else:
        if not 2 <= k <= min(20, len(frame) - 1):
            raise NoDataError(f"k must be between 2 and {min(20, len(frame) - 1)}")
        scores = {}
        _, labels = kmeans(x, k, seed)
    personas = describe(frame.reset_index(drop=True), labels,
                        None if clv is None else clv.reset_index(drop=True))
    # Map cluster numbers to persona ids (ordered by revenue).
    order = sorted(set(labels.tolist()), key=lambda c: -int(frame["gmv"].to_numpy()[labels == c].sum()))
    ids = np.empty(max(order) + 1, dtype=np.int64)
    for new_id, c in enumerate(order):
        ids[c] = new_id
    assignments = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy(), "persona": ids[labels]})
    return PersonaResult(as_of=as_of, k=k, silhouettes=scores, personas=personas,
                         assignments=assignments)


def personas(
    backend: BaseBackend, as_of: date, *, k: int | None = None, seed: int = 7, scores: ir.Table | None = None,
) -> PersonaResult:
    """The personas of the shop's buyers as of ``as_of``; ``scores`` (a table with ``customer_id``
    and ``clv``) adds each persona's mean CLV."""
    raw = persona_features(backend, as_of).order_by("customer_id").to_pandas()
    if raw.empty:
        raise NoDataError(f"no paid orders on or before {as_of}: nothing to cluster")
    frame = feature_frame(raw, as_of)
    clv = None
    if scores is not None and "clv" in scores.columns:
        values = scores.select("customer_id", "clv").to_pandas().drop_duplicates("customer_id")
        clv = frame[["customer_id"]].merge(values, on="customer_id", how="left")["clv"].astype("float64")
    return cluster(frame, k=k, seed=seed, clv=clv, as_of=as_of)
