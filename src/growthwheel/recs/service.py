"""Recommendations: built from the warehouse, stored in the operational store, served by key.

:func:`build` reads the paid order lines (Ibis; any backend), evaluates the models with each
customer's last order held out, chooses the blend, fits it on the whole history and returns plain
JSON: every customer's ranked list (items bought in the last ``just_bought_days`` left out unless
their cycle is due), every product's also-bought list (co-purchase rules with lift above 1, by
confidence) and the popular list. It runs where the warehouse is read (the server when one owns
it: the ``recs_build`` read of :mod:`growthwheel.analyst`). :func:`save` writes the answer in one
transaction (the caller commits); :func:`for_customer` and :func:`also_bought` serve it, leaving out
the excluded SKUs (out of stock, not for sale) at that moment. No function here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from growthwheel.errors import GrowthwheelError, InvalidArgumentError, NoDataError
from growthwheel.recs import copurchase as cp
from growthwheel.recs import evaluation, history
from growthwheel.recs import recommenders as r
from growthwheel.recs.models import EXCLUSION_REASONS, RecCustomer, RecExclusion, RecProduct, RecRun

STORED = 20
"""Items kept per customer and per product (a request asks for at most this many)."""
JUST_BOUGHT_DAYS = 7
MAX_ID = 200


class NoRecommendationsError(GrowthwheelError):
    """Nothing precomputed for the product (or nothing at all yet)."""

    code = "no_recommendations"
    status = 404


@dataclass(frozen=True)
class Item:
    """One recommended product."""

    sku: str
    score: float
    reason: str
    name: str | None


def _names(backend: Any) -> dict[str, str]:
    if "products" not in backend.list_tables():
        return {}
    p = backend.table("products").select("sku", "name").execute()
    return {str(s): str(n) for s, n in zip(p.sku, p.name, strict=True) if n is not None and not pd.isna(n)}


def read_lines(backend: Any) -> pd.DataFrame:
    """``customer_id, order_id, ordered_at, sku`` of the paid orders' lines (one query)."""
    from growthwheel.insight.rfm import paid_orders

    names = set(backend.list_tables())
    if not {"orders", "order_lines"} <= names:
        raise NoDataError("no order lines in the warehouse: import some with `growthwheel import`")
    orders = paid_orders(backend.table("orders")).select("order_id", "customer_id", "ordered_at")
    lines = backend.table("order_lines")
    lines = lines.select(l_order="order_id", sku="sku")
    j = orders.join(lines, orders.order_id == lines.l_order)
    frame = j.select("customer_id", "order_id", "ordered_at", "sku").execute()
    if frame.empty:
        raise NoDataError("no paid orders with lines in the warehouse: import order lines first")
    return pd.DataFrame(frame)


def read_products(backend: Any) -> pd.DataFrame | None:
    """``sku, consumption_cycle_days`` from the catalogue (``None`` without one)."""
    if "products" not in backend.list_tables():
        return None
    p = backend.table("products").select("sku", "consumption_cycle_days").execute()
    p["consumption_cycle_days"] = pd.to_numeric(p.consumption_cycle_days).astype("Int64")
    return pd.DataFrame(p)


def also_bought_lists(backend: Any, *, min_count: int = 2, top: int = STORED) -> dict[str, list[list[Any]]]:
    """Each SKU's co-purchased SKUs with lift above 1, by confidence: ``[sku, confidence, lift,
    support]`` (paid orders' lines; each product once per order)."""
    from growthwheel.insight.rfm import paid_orders

    paid = paid_orders(backend.table("orders")).select(p_order="order_id")
    lines = backend.table("order_lines")
    lines = lines.join(paid, lines.order_id == paid.p_order).select("order_id", "sku")
    rules = cp.pair_rules(cp.basket_items(lines), cp.Thresholds(min_count=min_count))
    rules = rules.filter(rules.lift > 1.0)
    rank = ibis.row_number().over(
        group_by=rules.antecedent, order_by=[rules.confidence.desc(), rules.n_ab.desc(), rules.consequent])
    best = rules.mutate(_rank=rank).filter(lambda t: t._rank < top)
    frame = best.select("antecedent", "consequent", "confidence", "lift", "support", "_rank").execute()
    out: dict[str, list[list[Any]]] = {}
    for row in frame.sort_values(["antecedent", "_rank"]).itertuples(index=False):
        out.setdefault(str(row.antecedent), []).append(
            [str(row.consequent), round(float(row.confidence), 6), round(float(row.lift), 6),
             round(float(row.support), 8)])
    return out


def build(backend: Any, *, as_of: date | None = None, top: int = STORED, evaluate: bool = True,
          weights: dict[str, float] | None = None,
          just_bought_days: int = JUST_BOUGHT_DAYS) -> dict[str, Any]:
    """Everything :func:`save` stores, as plain JSON (see the module)."""
    if not 1 <= top <= 100:
        raise InvalidArgumentError("top: between 1 and 100")
    frame = read_lines(backend)
    products = read_products(backend)
    names = _names(backend)
    h = history.from_lines(frame)
    report: dict[str, Any] | None = None
    if weights is None:
        ev = evaluation.evaluate(h, products) if evaluate else None
        if ev is not None:
            weights, report = ev.weights, ev.to_dict()
        else:
            weights = evaluation.choose_weights(history.hold_out_last(h), products)
    day_of = (int((np.datetime64(as_of, "D") - history.EPOCH).astype(np.int64)) if as_of
              else int(h.basket_day.max()))
    due = evaluation.due_days(h, products)
    models = {n: r.make(n, due) for n in weights}
    blend = r.Blend(models, weights).fit(h)
    recent = h.keep_baskets(h.basket_day > day_of - just_bought_days).customer_items()
    exclude = recent.tocsr()
    if due.nnz:  # a due item is not "just bought" (a cycle shorter than the window)
        left = due.copy()
        left.data = (left.data - day_of <= 0).astype(np.float64)
        exclude = (exclude - exclude.multiply(left)).tocsr()
    exclude.eliminate_zeros()
    users = np.arange(h.n_customers, dtype=np.int64)
    days = np.full(len(users), day_of, dtype=np.int64)
    idx, scores = r.recommend(blend, users, days, top, exclude=exclude)
    rows = np.repeat(users, idx.shape[1])
    cols = np.maximum(idx.ravel(), 0)
    due_at = _lookup(due, rows, cols).reshape(idx.shape)
    had = _lookup(h.customer_items(), rows, cols).reshape(idx.shape)
    reasons = np.where((due_at > 0) & (due_at - day_of <= 14), "replenish",
                       np.where(had > 0, "bought_before", "similar"))
    skus = [str(x) for x in h.items]
    shown = [names.get(x) for x in skus]
    rounded = np.round(scores.astype(np.float64), 6).tolist()
    lists: list[list[list[Any]]] = [
        [[skus[i], rounded[u][n], str(reasons[u, n]), shown[i]] for n, i in enumerate(row) if i >= 0]
        for u, row in enumerate(idx.tolist())]
    pop = r.Popularity().fit(h).counts
    order = np.argsort(-pop, kind="stable")[:top]
    popular = [[str(h.items[i]), float(pop[i]), "popular", names.get(str(h.items[i]))]
               for i in order if pop[i] > 0]
    also = also_bought_lists(backend, top=top)
    for pairs in also.values():
        for pair in pairs:
            pair.append(names.get(str(pair[0])))
    as_of_day = history.EPOCH + np.timedelta64(day_of, "D")
    return {"as_of": str(as_of_day), "weights": weights,
            "evaluation": report, "customers": [str(c) for c in h.customers], "lists": lists,
            "popular": popular, "products": also,
            "out_of_stock": out_of_stock(backend, date.fromisoformat(str(as_of_day)))}


#: Who automatic out-of-stock exclusions are recorded as (an operator's own stay as they are).
STOCK_ACTOR = "inventory"


def out_of_stock(backend: Any, day: date) -> list[str]:
    """SKUs with nothing on hand at the end of ``day`` by the ``inventory`` fact (as the inventory
    plan counts stock); none when the shop imports no stock."""
    from growthwheel.inventory.service import on_hand_at

    return sorted(sku for sku, units in on_hand_at(backend, day).items() if units <= 0)


def _lookup(m: sp.csr_matrix, rows: npt.NDArray[np.int64],
            cols: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``m[rows[j], cols[j]]`` for every j at once (0 where ``m`` holds nothing)."""
    m = m.tocsr()
    m.sum_duplicates()  # sorted indices, one entry per cell
    out = np.zeros(len(rows), dtype=np.float64)
    if m.nnz == 0:
        return out
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * m.shape[1] + m.indices
    want = rows.astype(np.int64) * m.shape[1] + cols
    at = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    found = keys[at] == want
    out[found] = np.asarray(m.data, dtype=np.float64)[at[found]]
    return out


def save(session: Session, built: dict[str, Any], now: datetime, *, batch: int = 5000) -> RecRun:
    """Replace the stored recommendations by ``built`` (:func:`build`'s answer); one transaction,
    owned by the caller."""
    run = RecRun(computed_at=now, customers=len(built["customers"]), products=len(built["products"]),
                 weights=built["weights"], evaluation=built.get("evaluation") or {}, popular=built["popular"])
    session.add(run)
    session.flush()
    session.execute(delete(RecCustomer))
    session.execute(delete(RecProduct))
    rows = [{"customer_id": c[:MAX_ID], "items": items, "run_id": run.id, "computed_at": now}
            for c, items in zip(built["customers"], built["lists"], strict=True)]
    for start in range(0, len(rows), batch):
        session.execute(insert(RecCustomer), rows[start:start + batch])
    prows = [{"sku": s[:MAX_ID], "items": items, "run_id": run.id, "computed_at": now}
             for s, items in built["products"].items()]
    for start in range(0, len(prows), batch):
        session.execute(insert(RecProduct), prows[start:start + batch])
    sync_stock_exclusions(session, built.get("out_of_stock") or [], now)
    return run


def sync_stock_exclusions(session: Session, skus: list[str], now: datetime) -> None:
    """Exclude ``skus`` as out of stock (recorded as :data:`STOCK_ACTOR`) and recommend again the
    ones this excluded before that are back in stock; exclusions an operator set stay as they are."""
    wanted = {s[:MAX_ID] for s in skus}
    for row in session.scalars(select(RecExclusion).where(RecExclusion.created_by == STOCK_ACTOR)):
        if row.sku not in wanted:
            session.delete(row)
    manual = set(session.scalars(select(RecExclusion.sku).where(RecExclusion.created_by != STOCK_ACTOR)))
    for sku in sorted(wanted - manual):
        set_exclusion(session, sku, "out_of_stock", STOCK_ACTOR, now)
    session.flush()

def _excluded(session: Session) -> set[str]:
    return set(session.scalars(select(RecExclusion.sku)))


def _check_id(value: str, field: str) -> str:
    if not value or len(value) > MAX_ID:
        raise InvalidArgumentError(f"{field}: between 1 and {MAX_ID} characters")
    return value


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= STORED:
        raise InvalidArgumentError(f"limit: between 1 and {STORED}")


def latest_run(session: Session) -> RecRun | None:
    """The newest refresh (``None`` before the first)."""
    return session.scalars(select(RecRun).order_by(RecRun.id.desc()).limit(1)).first()


def for_customer(session: Session, customer_id: str, limit: int = 10) -> dict[str, Any]:
    """A customer's recommendations without the excluded SKUs; a customer without history gets
    the popular list (``source: popular``)."""
    _check_id(customer_id, "customer_id")
    _check_limit(limit)
    row = session.get(RecCustomer, customer_id)
    excluded = _excluded(session)
    if row is not None and row.items:
        source, items, at = "personal", row.items, row.computed_at
    else:
        run = latest_run(session)
        if run is None:
            raise NoRecommendationsError(
                "no recommendations computed yet: run `growthwheel recommend refresh`")
        source, items, at = "popular", run.popular, run.computed_at
    picked = [i for i in items if i[0] not in excluded][:limit]
    if source == "personal" and len(picked) < limit:  # top up with popular items not shown yet
        run = latest_run(session)
        seen = {i[0] for i in picked}
        for i in (run.popular if run else []):
            if len(picked) >= limit:
                break
            if i[0] not in excluded and i[0] not in seen:
                picked.append([i[0], 0.0, "popular", i[3] if len(i) > 3 else None])
    return {"customer_id": customer_id, "source": source, "computed_at": at.isoformat(),
            "items": [{"sku": i[0], "score": i[1], "reason": i[2], "name": i[3] if len(i) > 3 else None}
                      for i in picked]}


def also_bought(session: Session, sku: str, limit: int = 10) -> dict[str, Any]:
    """Products bought with ``sku`` (co-purchase rules, lift above 1) without the excluded SKUs."""
    _check_id(sku, "sku")
    _check_limit(limit)
    row = session.get(RecProduct, sku)
    if row is None:
        raise NoRecommendationsError(f"sku: no products bought together with {sku!r} in the last refresh")
    excluded = _excluded(session)
    picked = [i for i in row.items if i[0] not in excluded][:limit]
    return {"sku": sku, "computed_at": row.computed_at.isoformat(),
            "items": [{"sku": i[0], "confidence": i[1], "lift": i[2], "support": i[3],
                       "name": i[4] if len(i) > 4 else None} for i in picked]}


def set_exclusion(session: Session, sku: str, reason: str, actor: str, now: datetime) -> RecExclusion:
    """Exclude ``sku`` from every list (``reason``: out_of_stock or not_for_sale)."""
    _check_id(sku, "sku")
    if reason not in EXCLUSION_REASONS:
        raise InvalidArgumentError(f"reason: one of {', '.join(EXCLUSION_REASONS)}")
    row = session.get(RecExclusion, sku)
    if row is None:
        row = RecExclusion(sku=sku, reason=reason, created_by=actor[:320], created_at=now)
        session.add(row)
    else:
        row.reason, row.created_by, row.created_at = reason, actor[:320], now
    session.flush()
    return row


def clear_exclusion(session: Session, sku: str) -> bool:
    """Recommend ``sku`` again; whether it was excluded."""
    _check_id(sku, "sku")
    row = session.get(RecExclusion, sku)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def exclusions(session: Session) -> list[dict[str, str]]:
    """Every excluded SKU."""
    rows = session.scalars(select(RecExclusion).order_by(RecExclusion.sku))
    return [{"sku": x.sku, "reason": x.reason, "created_by": x.created_by,
             "created_at": x.created_at.isoformat()} for x in rows]
