"""RFM: recency, frequency and monetary scores as of any date, and two named segment schemes.

Everything here is an Ibis expression over the stored ``orders`` table, so it runs unchanged on
DuckDB and on Spark (no raw SQL). Results are computed per customer who has at least one paid
order on or before the ``as_of`` date.

Raw values (per customer, over paid orders, i.e. ``status`` in ``PAID_STATUSES``, whose shop-local
``order_date`` is on or before ``as_of``):

* ``recency_days``: whole days from the last such order's ``order_date`` to ``as_of`` (0 = bought
  that day).
* ``frequency``: number of such orders (as the KPI ``orders`` counts them: refunded orders were
  paid and count).
* ``monetary``: net revenue in minor units, Σ (``total_amount`` − ``refunded_amount``): goods after
  discounts, excluding shipping, less refunds. Refunds carry no date in the warehouse, so the
  refunded amount known today is subtracted whatever ``as_of`` is.

Scores 1–5 (quintiles) with a tie rule that gives equal values equal scores and never skips a
score. Each distinct value first gets its rank-based quintile ``1 + floor(5 · b / n)``, where ``n``
is the number of customers scored and ``b`` the number of them with a strictly *worse* value (for
frequency and monetary: smaller; for recency: more days): a cut at ``n/5, 2n/5, 3n/5, 4n/5``, so
without ties it gives exact quintiles (20 % of customers per score when ``n`` is a multiple of 5)
and a block of tied values gets the score of its first (worst-ranked) member. A tie block that
covers several cuts would leave the scores it straddles empty (when 60 % of customers have one
order they all get F = 1 and two orders would jump to F = 4), so going from one distinct value
to the next better one the score rises by at most one: ``score_k = min(quintile_k,
score_(k−1) + 1)`` (with 60 % one-order customers: one order F = 1, two F = 2, three F = 3 …).
A score never skips a level (three customers score 1, 2, 3, not 1, 2, 4). Scores depend only on
the values, never on row order; with ``n ≥ 5`` and no tie straddling a cut they are the plain
quintiles.

Classic segments (11), from the R score and the FM score ``FM = floor((F + M + 1) / 2)`` (the mean
of F and M rounded half up), after the widely used R / FM score-range table (Champions R 4–5
FM 4–5, Loyal Customers R 2–5 FM 3–5, Potential Loyalist R 3–5 FM 1–3, New Customers R 4–5 FM ≤ 1,
Promising R 3–4 FM ≤ 1, Need Attention R 2–3 FM 2–3, About To Sleep R 2–3 FM ≤ 2, At Risk R ≤ 2
FM 2–5, Can't Lose Them R ≤ 1 FM 4–5, Hibernating R 1–2 FM 1–2, Lost R ≤ 2 FM ≤ 2). Those ranges
overlap, so each of the 25 cells is given to exactly one segment whose range contains it
(:data:`CLASSIC_GRID`, rows R = 5 … 1, columns FM = 1 … 5)::

    R\\FM  1               2                   3                4                5
    5     New Customers   Potential Loyalist  Loyal Customers  Champions        Champions
    4     Promising       Potential Loyalist  Loyal Customers  Champions        Champions
    3     Promising       Need Attention      Need Attention   Loyal Customers  Loyal Customers
    2     About To Sleep  About To Sleep      At Risk          At Risk          At Risk
    1     Lost            Hibernating         At Risk          Can't Lose Them  Can't Lose Them

Chinese value classes (8, 客户价值分类): each of R, F, M is *high* or *low* against the mean over
the scored customers of the raw value (``cut="mean"``, the default, as the classic 8-class model
is usually taught; ``cut="median"`` is available for skewed shops). High means strictly better than
the cut: ``recency_days`` < cut, ``frequency`` > cut, ``monetary`` > cut; a value equal to the cut
is low. The mean comparison is done in integers (``x · n`` vs ``Σ x``), exactly. M decides
重要 (important) vs 一般 (general); R and F decide the rest: R high F high 价值 (value),
R high F low 发展 (develop), R low F high 保持 (keep), R low F low 挽留 (win back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from growthwheel.errors import InvalidArgumentError, NoDataError
from growthwheel.warehouse.schema import PAID_STATUSES

Cut = Literal["mean", "median"]
CUTS: tuple[str, ...] = ("mean", "median")


@dataclass(frozen=True)
class Segment:
    """A named segment with its labels and what to do about it."""

    name: str
    label_zh: str
    doc: str


#: The 11 classic segments, best first.
CLASSIC_SEGMENTS: tuple[Segment, ...] = (
    Segment("Champions", "冠军客户", "bought recently, buy often and spend the most"),
    Segment("Loyal Customers", "忠诚客户", "buy regularly and spend well"),
    Segment("Potential Loyalist", "潜力客户", "recent customers with average frequency and spend"),
    Segment("New Customers", "新客户", "bought very recently, once and little"),
    Segment("Promising", "有潜力的新客", "recent shoppers who have not spent much yet"),
    Segment("Need Attention", "需要关注", "middling recency, frequency and spend"),
    Segment("About To Sleep", "即将沉睡", "below-average recency, frequency and spend"),
    Segment("At Risk", "有流失风险", "spent well and often, but long ago"),
    Segment("Can't Lose Them", "不能失去", "were among the best, have not come back for a long time"),
    Segment("Hibernating", "冬眠客户", "last bought long ago, few orders, low spend"),
    Segment("Lost", "已流失", "lowest recency, frequency and spend"),
)

_N, _P, _L, _C = "New Customers", "Potential Loyalist", "Loyal Customers", "Champions"
_PR, _NA, _AS, _AR = "Promising", "Need Attention", "About To Sleep", "At Risk"
_CL, _H, _LO = "Can't Lose Them", "Hibernating", "Lost"
#: Segment of each (R, FM) cell: ``CLASSIC_GRID[r][fm - 1]``.
CLASSIC_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: (_N, _P, _L, _C, _C),
    4: (_PR, _P, _L, _C, _C),
    3: (_PR, _NA, _NA, _L, _L),
    2: (_AS, _AS, _AR, _AR, _AR),
    1: (_LO, _H, _AR, _CL, _CL),
}

#: The 8 value classes, keyed by (R high, F high, M high), with an English gloss.
VALUE_CLASSES: dict[tuple[bool, bool, bool], tuple[str, str]] = {
    (True, True, True): ("重要价值", "important value"),
    (True, False, True): ("重要发展", "important to develop"),
    (False, True, True): ("重要保持", "important to keep"),
    (False, False, True): ("重要挽留", "important to win back"),
    (True, True, False): ("一般价值", "general value"),
    (True, False, False): ("一般发展", "general to develop"),
    (False, True, False): ("一般保持", "general to keep"),
    (False, False, False): ("一般挽留", "general to win back"),
}

#: Columns of :func:`rfm_scores`, in order.
SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id", "first_order_date", "last_order_date", "recency_days", "frequency", "monetary",
    "r_score", "f_score", "m_score", "fm_score", "rfm", "segment",
    "r_high", "f_high", "m_high", "value_class",
)


def paid_orders(orders: ir.Table, *, end: date | None = None) -> ir.Table:
    """Paid orders (``status`` in ``PAID_STATUSES``) placed on or before the shop-local date ``end``.

    Adds ``net_amount`` = ``total_amount`` − ``refunded_amount`` (nulls as 0), in minor units.
    """
    o = orders.filter(orders.status.isin(PAID_STATUSES) & orders.customer_id.notnull())
    if end is not None:
        o = o.filter(o.order_date <= end)
    return o.mutate(
        net_amount=o.total_amount.fill_null(0) - o.refunded_amount.fill_null(0)
    )


def last_paid_day(orders: ir.Table) -> date:
    """The shop-local date of the latest paid order (runs one query); ``NoDataError`` if none."""
    import pandas as pd  # here: modules importing this one to list things need no pandas

    value = paid_orders(orders).order_date.max().execute()
    if value is None or pd.isna(value):
        raise NoDataError("no paid orders in the warehouse: import some with `growthwheel import`")
    return pd.Timestamp(value).date()


def _value_scores(per: ir.Table, column: str, *, higher_is_better: bool) -> ir.Table:
    """For each distinct value of ``column``: its score 1–5 (the rule of the module docstring).

    A histogram of the values with running totals, much smaller than the customers (few distinct
    recencies and frequencies), joined back instead of ranking every customer.
    """
    h = per.group_by(column).aggregate(_count=per.count())
    order = h[column] if higher_is_better else ibis.desc(h[column])
    upto = ibis.window(order_by=order, rows=(None, 0))
    h = h.mutate(
        _worse=h._count.sum().over(upto) - h._count,
        _n=h._count.sum().over(ibis.window()),
        _step=ibis.row_number().over(upto),  # 0 for the worst value, then 1, 2 …
    )
    h = h.mutate(_gap=(((h._worse * 5) // h._n) + 1).cast("int64") - h._step)
    # score_k = min(q_k, score_(k-1) + 1) = step_k + min over j <= k of (q_j - step_j)
    h = h.mutate(_score=(h._step + h._gap.min().over(upto)).cast("int64"))
    return h.select(**{f"_v_{column}": h[column], f"_s_{column}": h._score})


def _cell_segment(r: Any, fm: Any) -> Any:
    cell = r * 10 + fm
    by_segment: dict[str, list[int]] = {}
    for r_score, row in CLASSIC_GRID.items():
        for fm_score, name in enumerate(row, start=1):
            by_segment.setdefault(name, []).append(r_score * 10 + fm_score)
    branches = [(cell.isin(cells), name) for name, cells in by_segment.items()]
    return ibis.cases(*branches, else_=ibis.null().cast("string"))


def rfm_scores(orders: ir.Table, as_of: date, *, cut: str = "mean") -> ir.Table:
    """Per customer: raw R, F, M as of ``as_of``, quintile scores and both segment schemes.

    ``orders`` is the stored ``orders`` table. Columns are :data:`SCORE_COLUMNS`: the first and
    last paid order dates, ``recency_days``, ``frequency``, ``monetary`` (net revenue, minor
    units), ``r_score`` / ``f_score`` / ``m_score`` (1–5, ties equal, see the module docstring),
    ``fm_score``, ``rfm`` (e.g. ``"545"``), ``segment`` (classic name), ``r_high`` / ``f_high`` /
    ``m_high`` against the ``cut`` (``mean`` or ``median``) and ``value_class`` (e.g. ``重要价值``).
    """
    if cut not in CUTS:
        raise InvalidArgumentError(f"unknown cut {cut!r}; choose one of: {', '.join(CUTS)}")
    o = paid_orders(orders, end=as_of)
    per = o.group_by("customer_id").aggregate(
        first_order_date=o.order_date.min(),
        last_order_date=o.order_date.max(),
        frequency=o.count(),
        monetary=o.net_amount.sum(),
    )
    per = per.mutate(
        recency_days=ibis.literal(as_of).delta(per.last_order_date, unit="day").cast("int64"),
    )
    # Whole-population figures as one row joined to every customer (cheaper than windows).
    if cut == "mean":
        stats = per.aggregate(
            _n=per.count(), _r=per.recency_days.sum(), _f=per.frequency.sum(),
            _m=per.monetary.sum(),
        )
    else:
        stats = per.aggregate(
            _n=per.count(), _r=per.recency_days.median(), _f=per.frequency.median(),
            _m=per.monetary.median(),
        )
    t = per.cross_join(stats)
    for column, higher_is_better in (("recency_days", False), ("frequency", True),
                                     ("monetary", True)):
        scored = _value_scores(per, column, higher_is_better=higher_is_better)
        t = t.join(scored, t[column] == scored[f"_v_{column}"])
    if cut == "mean":
        # x > mean  ⇔  x · n > Σ x, in integers.
        r_high = t.recency_days * t._n < t._r
        f_high = t.frequency * t._n > t._f
        m_high = t.monetary * t._n > t._m
    else:
        r_high, f_high, m_high = t.recency_days < t._r, t.frequency > t._f, t.monetary > t._m
    t = t.mutate(
        r_score=t._s_recency_days,
        f_score=t._s_frequency,
        m_score=t._s_monetary,
        r_high=r_high,
        f_high=f_high,
        m_high=m_high,
    )
    t = t.mutate(fm_score=((t.f_score + t.m_score + 1) // 2).cast("int64"))
    # The class from a 3-bit code (R, F, M high), one comparison per class.
    code = (
        ibis.ifelse(t.r_high, 4, 0) + ibis.ifelse(t.f_high, 2, 0) + ibis.ifelse(t.m_high, 1, 0)
    )
    value_class = ibis.cases(
        *[(code == 4 * r + 2 * f + m, zh) for (r, f, m), (zh, _) in VALUE_CLASSES.items()],
        else_=ibis.null().cast("string"),
    )
    t = t.mutate(
        rfm=(t.r_score * 100 + t.f_score * 10 + t.m_score).cast("string"),
        segment=_cell_segment(t.r_score, t.fm_score),
        value_class=value_class,
    )
    return t.select(*SCORE_COLUMNS)


def rfm_grid(scores: ir.Table) -> ir.Table:
    """The R × F grid of :func:`rfm_scores`: one row per (``r_score``, ``f_score``) cell present.

    Columns: ``r_score``, ``f_score``, ``customers``, ``orders`` (Σ frequency), ``monetary``
    (Σ net revenue, minor units) and ``recency_days_sum`` (for averages); sorted R then F, descending.
    """
    g = scores.group_by(["r_score", "f_score"]).aggregate(
        customers=scores.count(),
        orders=scores.frequency.sum(),
        monetary=scores.monetary.sum(),
        recency_days_sum=scores.recency_days.sum(),
    )
    return g.order_by([ibis.desc("r_score"), ibis.desc("f_score")])


def rfm_segment_summary(scores: ir.Table, *, scheme: str = "classic") -> ir.Table:
    """Counts and value per segment: ``scheme`` is ``classic`` (11 segments) or ``value`` (8 classes).

    Columns: ``segment``, ``customers``, ``orders``, ``monetary`` (minor units) and
    ``recency_days_sum``; segments without customers are absent.
    """
    if scheme not in ("classic", "value"):
        raise InvalidArgumentError(f"unknown scheme {scheme!r}; choose classic or value")
    key = scores.segment if scheme == "classic" else scores.value_class
    t = scores.mutate(_segment=key)
    g = t.group_by("_segment").aggregate(
        customers=t.count(),
        orders=t.frequency.sum(),
        monetary=t.monetary.sum(),
        recency_days_sum=t.recency_days.sum(),
    )
    return g.rename(segment="_segment")


def segment_order(scheme: str) -> list[str]:
    """Segment names of ``scheme`` in display order (best first)."""
    if scheme == "classic":
        return [s.name for s in CLASSIC_SEGMENTS]
    return [zh for zh, _ in VALUE_CLASSES.values()]


def _major(minor: int, exponent: int) -> float:
    return round(minor / 10.0**exponent, exponent)


def rfm_report(
    orders: ir.Table, as_of: date | None = None, *, cut: str = "mean", currency_exponent: int = 2
) -> dict[str, Any]:
    """A JSON-ready summary of RFM as of ``as_of`` (default: the last paid order's date).

    Runs one query, grouped by score cell. Keys: ``as_of`` (ISO date), ``cut``, ``customers``;
    ``segments`` (all 11 classic segments in order) and ``value_classes`` (all 8), each row with
    ``segment``, its other-language label, ``customers``, ``share``, ``orders``, ``monetary``
    (major units), ``avg_recency_days``, ``avg_frequency`` and ``avg_monetary``; ``grid``: all 25
    R × F cells (``r_score``, ``f_score``, ``customers``, ``orders``, ``monetary``,
    ``avg_recency_days``), R from 5 down, F from 1 up. Empty groups have zeros and null averages.
    """
    day = as_of or last_paid_day(orders)
    scores = rfm_scores(orders, day, cut=cut)
    # Grouped by the small integer / boolean columns only; names are looked up here, so the
    # engine never builds the text columns.
    keys = ["r_score", "f_score", "m_score", "r_high", "f_high", "m_high"]
    df = scores.group_by(keys).aggregate(
        customers=scores.count(),
        orders=scores.frequency.sum(),
        monetary=scores.monetary.sum(),
        recency=scores.recency_days.sum(),
    ).execute()
    sums: dict[tuple[str, Any], list[int]] = {}
    for record in df.to_dict(orient="records"):
        values = [int(record[k]) for k in ("customers", "orders", "monetary", "recency")]
        r, f, m = (int(record[k]) for k in ("r_score", "f_score", "m_score"))
        segment = CLASSIC_GRID[r][(f + m + 1) // 2 - 1]
        value_class = VALUE_CLASSES[
            (bool(record["r_high"]), bool(record["f_high"]), bool(record["m_high"]))][0]
        for key in (("segment", segment), ("value", value_class), ("grid", (r, f))):
            total = sums.setdefault(key, [0, 0, 0, 0])
            for i, value in enumerate(values):
                total[i] += value
    everyone = sum(v[0] for k, v in sums.items() if k[0] == "segment")

    def row(key: tuple[str, Any]) -> dict[str, Any]:
        customers, n_orders, monetary, recency = sums.get(key, [0, 0, 0, 0])
        return {
            "customers": customers,
            "share": customers / everyone if everyone else None,
            "orders": n_orders,
            "monetary": _major(monetary, currency_exponent),
            "avg_recency_days": recency / customers if customers else None,
            "avg_frequency": n_orders / customers if customers else None,
            "avg_monetary": round(monetary / customers / 10.0**currency_exponent, currency_exponent)
            if customers else None,
        }

    grid = []
    for r in range(5, 0, -1):
        for f in range(1, 6):
            cell = row(("grid", (r, f)))
            grid.append({"r_score": r, "f_score": f, **{
                k: cell[k] for k in ("customers", "orders", "monetary", "avg_recency_days")}})
    return {
        "as_of": day.isoformat(),
        "cut": cut,
        "customers": everyone,
        "segments": [{"segment": s.name, "label_zh": s.label_zh, **row(("segment", s.name))}
                     for s in CLASSIC_SEGMENTS],
        "value_classes": [{"segment": zh, "label_en": en, **row(("value", zh))}
                          for zh, en in VALUE_CLASSES.values()],
        "grid": grid,
    }
