"""Where segment conditions of type ``score`` find a customer's scores: one pluggable place.

A **score resolver** is a function ``(backend, as_of) -> Ibis table | None`` giving one row per
customer with a ``customer_id`` column and any of the columns in :data:`SCORE_COLUMNS`. ``None``
(or a table without the column a condition asks for) makes such a condition fail with a clear
message; conditions of other types never call it.

The default resolver, :func:`insight_scores`, computes RFM (``insight.rfm``) and lifecycle
stages (``insight.lifecycle``, thresholds learned from the shop's own repeat gaps up to
``as_of``) as of the segment's ``as_of``, and adds ``clv`` and ``p_alive`` from the warehouse
table ``customer_scores`` that ``growthwheel clv score`` writes (those are as of the day they were
computed). :func:`warehouse_scores` reads ``customer_scores`` alone. Install another resolver once
at start-up to change this::

    from growthwheel.segments import scores
    scores.set_score_resolver(my_resolver)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

SCORES_TABLE = "customer_scores"

#: The score columns a condition may test, with their meaning and type.
SCORE_COLUMNS: dict[str, str] = {
    "rfm_segment": "text: classic RFM segment (Champions, Loyal Customers, …, Lost)",
    "rfm_class": "text: the 8-class Chinese value class (重要价值, 重要发展, …, 一般挽留)",
    "rfm_score": "the R, F and M quintile scores as a three-digit code, 111..555 (integer or text)",
    "r_score": "recency quintile score, 1..5 (5 = most recent)",
    "f_score": "frequency quintile score, 1..5",
    "m_score": "monetary quintile score, 1..5",
    "lifecycle_stage": "text: new, active, repeat, loyal, at_risk, dormant or churned",
    "clv": "expected customer lifetime value, in minor units of the shop currency (a number)",
    "p_alive": "probability that the customer is still active, 0..1",
}

ScoreResolver = Callable[[BaseBackend, date], "ir.Table | None"]


def warehouse_scores(backend: BaseBackend, as_of: date) -> ir.Table | None:
    """The default resolver: the warehouse table ``customer_scores`` if there is one."""
    del as_of  # stored scores carry their own date
    if SCORES_TABLE not in backend.list_tables():
        return None
    table: ir.Table = backend.table(SCORES_TABLE)
    return table


def insight_scores(backend: BaseBackend, as_of: date) -> ir.Table:
    """RFM and lifecycle stage as of ``as_of`` for every buyer, with ``clv`` and ``p_alive`` from
    ``customer_scores`` when that table exists (runs one small query: the lifecycle thresholds)."""
    from growthwheel.insight import lifecycle, rfm

    orders = backend.table("orders")
    r = rfm.rfm_scores(orders, as_of)
    scored = r.select(
        "customer_id", "r_score", "f_score", "m_score",
        rfm_segment=r.segment, rfm_class=r.value_class, rfm_score=r.rfm,
    )
    staged = lifecycle.stages(orders, as_of, lifecycle.thresholds_for(orders, end=as_of))
    staged = staged.select(_stage_id=staged.customer_id, lifecycle_stage=staged.stage)
    scored = scored.left_join(staged, scored.customer_id == staged._stage_id).drop("_stage_id")
    stored = warehouse_scores(backend, as_of)
    if stored is None:
        return scored
    extra = [c for c in ("clv", "p_alive") if c in stored.columns]
    stored = stored.select(_score_id=stored.customer_id, **{c: stored[c] for c in extra})
    both = scored.outer_join(stored, scored.customer_id == stored._score_id)
    return both.mutate(customer_id=ibis.coalesce(both.customer_id, both._score_id)).drop("_score_id")


_resolver: ScoreResolver = insight_scores


def set_score_resolver(resolver: ScoreResolver | None) -> None:
    """Use ``resolver`` for score conditions from now on (``None`` restores the default)."""
    global _resolver
    _resolver = resolver or insight_scores


def score_table(backend: BaseBackend, as_of: date) -> ir.Table | None:
    """The per-customer score table as of ``as_of``, from the resolver in force."""
    return _resolver(backend, as_of)
