"""The KPI catalogue: every metric defined once, over the stored warehouse tables.

How it works, in two layers:

1. **Base measures** are Ibis aggregations over the stored tables (``orders``, ``order_lines``,
   ``products``, ``events``, ``ad_spend``), grouped by period (and optionally a dimension). They are
   integer sums and counts (money in minor units), plus one float (cost of goods kept), so DuckDB
   and Spark return the same numbers. Only portable Ibis operations are used (filters, joins,
   ``row_number``, ``truncate``, ``coalesce``, sums and distinct counts), never raw SQL.
2. **Metrics** are small functions of those measures, one per KPI, each with its formula in its
   docstring and registered in :data:`METRICS`. They run in Python on the (small) aggregated rows
   with exact arithmetic: money is converted from minor units to major units with ``Decimal`` at the
   very end, ratios are computed from integers.

Definitions shared by all metrics:

* Only orders whose ``status`` is in ``PAID_STATUSES`` count (pending and cancelled orders never do).
* Money is goods after discounts excluding shipping: ``orders.total_amount`` (``line_total`` on
  lines). Refunds are ``refunded_amount``.
* Periods are calendar days, weeks (starting Monday), months or quarters of the shop-local date:
  ``orders.order_date``, ``events.event_date`` and ``ad_spend.date``. A period is labelled by its
  first day.
* ``start``/``end`` (inclusive) select days; a first or last period that is cut by them is partial.
  The period before the first one is computed too (in full), only to give the first row its
  period-over-period change.
* ``<metric>_change`` is the relative change against the previous period of the same breakdown
  value: ``(this − previous) / previous``; null when there is no previous value or it is zero.
* Without a dimension, every period between the first and the last one with any activity has a row
  (quiet periods show zeros). With a dimension, only (period, value) pairs with activity have rows.

Dimensions:

* ``channel``: the order's ``channel`` (last touch; ``(none)`` when empty). Ad spend is matched on
  ``ad_spend.channel``. Sessions are not attributed to channels, so ``sessions`` and
  ``session_conversion_rate`` are null by channel.
* ``category``: the line's ``category``, else the catalogue's ``products.category``, else
  ``(none)``. Order-level metrics are computed over the lines of the category: ``orders`` counts
  paid orders with at least one line in it, ``gmv`` sums those lines' ``line_total``, and so on.
  New buyers, sessions, ad spend, CAC and ROAS have no meaning per category and are null.
  Orders imported without lines do not appear in the category breakdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, cast

import ibis
import pandas as pd

from growthwheel.errors import InvalidArgumentError
from growthwheel.warehouse.schema import PAID_STATUSES

Period = Literal["day", "week", "month", "quarter"]
Dimension = Literal["channel", "category"]
Unit = Literal["money", "count", "ratio"]

PERIODS: tuple[str, ...] = ("day", "week", "month", "quarter")
DIMENSIONS: tuple[str, ...] = ("channel", "category")
#: Label used for an empty channel or category.
NONE_LABEL = "(none)"
#: The range of dates the catalogue accepts (a period before or after must still be a valid date).
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)

_IBIS_UNIT = {"day": "D", "week": "W", "month": "M", "quarter": "Q"}
_ALL_DIMS = frozenset({None, "channel", "category"})
_NO_CATEGORY = frozenset({None, "channel"})

Number = int | float | Fraction
Measures = Mapping[str, Any]


# --------------------------------------------------------------------------------------------
# Calendar periods (pure)
# --------------------------------------------------------------------------------------------


def _check_period(by: str) -> None:
    if by not in PERIODS:
        raise InvalidArgumentError(f"unknown period {by!r}; choose one of: {', '.join(PERIODS)}")


def period_start(day: date, by: str) -> date:
    """First day of the day / week (Monday) / month / quarter that contains ``day``."""
    _check_period(by)
    if by == "day":
        return day
    if by == "week":
        return day - timedelta(days=day.weekday())
    if by == "month":
        return day.replace(day=1)
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def shift_period(start: date, by: str, n: int) -> date:
    """The start of the period ``n`` periods after the one starting on ``start`` (``n`` may be < 0)."""
    _check_period(by)
    if by == "day":
        return start + timedelta(days=n)
    if by == "week":
        return start + timedelta(weeks=n)
    months = n * (3 if by == "quarter" else 1)
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_end(start: date, by: str) -> date:
    """Last day of the period that starts on ``start``."""
    return shift_period(start, by, 1) - timedelta(days=1)


# --------------------------------------------------------------------------------------------
# The metric registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One KPI: its name, labels, unit, formula and the breakdowns it is defined for."""

    name: str
    label_en: str
    label_zh: str
    unit: Unit
    formula: str
    dimensions: frozenset[str | None]
    #: Whether a rise is good news (``True``), bad news (``False``) or neither (``None``).
    higher_is_better: bool | None
    compute: Callable[[Measures], Number | None]
    #: For ratios: shown as a percentage (rates) rather than a plain number (items, ROAS).
    percent: bool = False

    def applies_to(self, dimension: str | None) -> bool:
        """Whether the metric has a meaning when broken down by ``dimension`` (None: no breakdown)."""
        return dimension in self.dimensions


#: Every KPI, in display order, keyed by name.
METRICS: dict[str, Metric] = {}


def _metric(
    name: str,
    label_en: str,
    label_zh: str,
    unit: Unit,
    dimensions: frozenset[str | None] = _ALL_DIMS,
    higher_is_better: bool | None = True,
    percent: bool | None = None,
) -> Callable[[Callable[[Measures], Number | None]], Callable[[Measures], Number | None]]:
    def register(fn: Callable[[Measures], Number | None]) -> Callable[[Measures], Number | None]:
        doc = " ".join((fn.__doc__ or "").split())
        as_percent = unit == "ratio" if percent is None else percent
        METRICS[name] = Metric(
            name, label_en, label_zh, unit, doc, dimensions, higher_is_better, fn, as_percent
        )
        return fn

    return register


def _ratio(num: Number | None, den: Number | None) -> Fraction | None:
    if num is None or den is None or den == 0:
        return None
    return Fraction(num) / Fraction(den)


@_metric("orders", "Orders", "订单数", "count")
def orders(m: Measures) -> Number | None:
    """orders = number of paid orders placed in the period (by category: paid orders with at least
    one line in the category)."""
    return cast(Number | None, m["orders"])


@_metric("buyers", "Buyers", "买家数", "count")
def buyers(m: Measures) -> Number | None:
    """buyers = number of distinct customers with at least one paid order in the period."""
    return cast(Number | None, m["buyers"])


@_metric("new_buyers", "New buyers", "新客数", "count", _NO_CATEGORY)
def new_buyers(m: Measures) -> Number | None:
    """new_buyers = customers whose first paid order ever (earliest ordered_at, ties by order_id)
    was placed in the period; by channel, counted under the channel of that first order."""
    return cast(Number | None, m["new_buyers"])


@_metric("new_buyer_share", "New buyer share", "新客占比", "ratio", _NO_CATEGORY, None)
def new_buyer_share(m: Measures) -> Number | None:
    """new_buyer_share = new_buyers / buyers."""
    return _ratio(m["new_buyers"], m["buyers"])


@_metric("gmv", "GMV", "成交额 GMV", "money")
def gmv(m: Measures) -> Number | None:
    """GMV = Σ total_amount of paid orders (goods after discounts, excluding shipping; refunds are
    not subtracted). By category: Σ line_total of the category's lines."""
    return cast(Number | None, m["gmv"])


@_metric("net_revenue", "Net revenue", "净收入", "money")
def net_revenue(m: Measures) -> Number | None:
    """net_revenue = GMV − Σ refunded_amount of the same orders (lines, by category)."""
    if m["gmv"] is None:
        return None
    return cast(int, m["gmv"]) - cast(int, m["refunded"] or 0)


@_metric("aov", "AOV", "客单价", "money", _ALL_DIMS, True)
def aov(m: Measures) -> Number | None:
    """AOV = GMV / orders (by category: the category's GMV per order containing it)."""
    return _ratio(m["gmv"], m["orders"])


@_metric("items_per_order", "Items per order", "件单数", "ratio", percent=False)
def items_per_order(m: Measures) -> Number | None:
    """items_per_order = Σ item_count / number of paid orders whose item_count is known (by
    category: Σ quantity of the category's lines / orders containing it)."""
    return _ratio(m["items"], m["item_orders"])


@_metric("repurchase_rate", "Repurchase rate", "复购率", "ratio")
def repurchase_rate(m: Measures) -> Number | None:
    """repurchase_rate = buyers with ≥ 2 paid orders in the period / buyers in the period (the
    people-based 复购率 of e-commerce reporting; orders in earlier periods do not count). By
    category: buyers with ≥ 2 orders containing the category / the category's buyers."""
    return _ratio(m["repeat_buyers"], m["buyers"])


@_metric("sessions", "Sessions", "访问会话数", "count", frozenset({None}))
def sessions(m: Measures) -> Number | None:
    """sessions = distinct sessions with an event in the period: events.session_id, or where it is
    empty (customer_id, else anonymous_id) + event_date. A session belongs to the day of its
    first event."""
    return cast(Number | None, m["sessions"])


@_metric(
    "session_conversion_rate", "Session conversion", "会话转化率", "ratio", frozenset({None})
)
def session_conversion_rate(m: Measures) -> Number | None:
    """session_conversion_rate = sessions with a `purchase` event / sessions."""
    return _ratio(m["converted_sessions"], m["sessions"])


@_metric("refund_rate", "Refund rate", "退款率", "ratio", _ALL_DIMS, False)
def refund_rate(m: Measures) -> Number | None:
    """refund_rate = Σ refunded_amount / GMV (by amount, so that net_revenue = GMV × (1 −
    refund_rate))."""
    return _ratio(m["refunded"], m["gmv"])


@_metric("discount_rate", "Discount rate", "折扣率", "ratio", _ALL_DIMS, None)
def discount_rate(m: Measures) -> Number | None:
    """discount_rate = Σ discount_amount / Σ gross_amount (goods before discounts; on lines
    line_total + discount_amount)."""
    return _ratio(m["discount"], m["gross"])


@_metric("gross_margin", "Gross margin", "毛利率", "ratio")
def gross_margin(m: Measures) -> Number | None:
    """gross_margin = (net revenue − cost of goods kept) / net revenue, over the lines of paid
    orders whose product has a cost: net revenue of a line = line_total − refunded_amount; cost of
    goods kept = quantity × products.cost × (net revenue of the line / line_total) (a fully refunded
    line costs nothing). Lines without a known cost are left out of both sides."""
    net, cogs = m["costed_net"], m["cogs_kept"]
    if net is None or cogs is None:
        return None
    return _ratio(net - cogs, net)


@_metric("ad_spend", "Ad spend", "广告花费", "money", _NO_CATEGORY, None)
def ad_spend(m: Measures) -> Number | None:
    """ad_spend = Σ ad_spend.spend dated in the period (by channel: of that channel)."""
    return cast(Number | None, m["ad_spend"])


@_metric("cac", "CAC", "获客成本 CAC", "money", _NO_CATEGORY, False)
def cac(m: Measures) -> Number | None:
    """CAC = ad spend / new buyers (overall: all new buyers, whatever their channel; by channel:
    the channel's spend / new buyers whose first order's channel is that channel). Without spend
    (an organic channel, a period with no ad spend) there is no acquisition cost to speak of:
    unknown (shown "–"), not 0."""
    if not m["ad_spend"]:
        return None
    return _ratio(m["ad_spend"], m["new_buyers"])


@_metric("roas", "ROAS", "广告投入产出比 ROAS", "ratio", _NO_CATEGORY, percent=False)
def roas(m: Measures) -> Number | None:
    """ROAS = attributed GMV / ad spend, last touch: attributed GMV is the GMV of paid orders whose
    channel is a channel that appears in ad_spend (on any date); by channel: the channel's GMV /
    its spend."""
    return _ratio(m["attributed_gmv"], m["ad_spend"])


#: Names of the base measures every breakdown row carries, and their Ibis types.
_MEASURE_TYPES: dict[str, str] = {
    "orders": "int64",
    "buyers": "int64",
    "repeat_buyers": "int64",
    "new_buyers": "int64",
    "gmv": "int64",
    "refunded": "int64",
    "discount": "int64",
    "gross": "int64",
    "items": "int64",
    "item_orders": "int64",
    "costed_net": "int64",
    "cogs_kept": "int64",
    "sessions": "int64",
    "converted_sessions": "int64",
    "ad_spend": "int64",
    "attributed_gmv": "int64",
}
#: Which base measures exist for each breakdown (the others are null there).
_MEASURES_FOR: dict[str | None, frozenset[str]] = {
    None: frozenset(_MEASURE_TYPES),
    "channel": frozenset(_MEASURE_TYPES) - {"sessions", "converted_sessions"},
    "category": frozenset(_MEASURE_TYPES)
    - {"sessions", "converted_sessions", "new_buyers", "ad_spend", "attributed_gmv"},
}


# --------------------------------------------------------------------------------------------
# Base measures as Ibis expressions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """Which shop-local days count: [ext_start, first_start) ∪ [start, end], any bound optional."""

    unit: str
    ext_start: date | None
    first_start: date | None
    start: date | None
    end: date | None

    def keep(self, day: Any) -> Any:
        """Boolean Ibis expression selecting the days of the window."""
        cond = ibis.literal(True)
        if self.end is not None:
            cond = cond & (day <= self.end)
        if self.start is not None:
            cond = cond & (day >= (self.ext_start or self.start))
            if self.first_start is not None and self.start > self.first_start:
                cond = cond & ((day < self.first_start) | (day >= self.start))
        return cond

    def period(self, day: Any) -> Any:
        """The period (start date) of a date expression."""
        return day.truncate(self.unit)


def _if(cond: Any, then: Any, otherwise: Any) -> Any:
    return ibis.ifelse(cond, then, otherwise)


def _paid_orders(con: Any) -> Any:
    o = con.table("orders")
    o = o.filter(o.status.isin(PAID_STATUSES))
    return o.mutate(
        channel=o.channel.fill_null(NONE_LABEL),
        total_amount=o.total_amount.fill_null(0),
        refunded_amount=o.refunded_amount.fill_null(0),
        discount_amount=o.discount_amount.fill_null(0),
    )


def _lines(con: Any, paid: Any, win: _Window) -> Any:
    """Lines of the paid orders in the window, with period, channel, customer, category, cost."""
    lines = con.table("order_lines")
    products = con.table("products").select(
        p_sku="sku", p_name="name", p_category="category", p_cost="cost"
    )
    lines = lines.left_join(products, lines.sku == products.p_sku)
    orders = paid.filter(win.keep(paid.order_date)).select(
        o_order_id="order_id",
        order_date="order_date",
        customer_id="customer_id",
        channel="channel",
    )
    joined = lines.join(orders, lines.order_id == orders.o_order_id)
    line_total = joined.line_total.fill_null(0)
    refunded = joined.refunded_amount.fill_null(0)
    return joined.select(
        period=win.period(joined.order_date),
        order_id=joined.order_id,
        customer_id=joined.customer_id,
        channel=joined.channel,
        sku=joined.sku,
        name=ibis.coalesce(joined.p_name, joined.product_name, joined.sku),
        category=ibis.coalesce(joined.category, joined.p_category, ibis.literal(NONE_LABEL)),
        quantity=joined.quantity.fill_null(0),
        line_total=line_total,
        refunded=refunded,
        discount=joined.discount_amount.fill_null(0),
        cost=joined.p_cost,
    )


def _complete(piece: Any, keys: list[str]) -> Any:
    """Project a piece onto the full measure schema, with typed nulls for what it lacks."""
    cols: dict[str, Any] = {k: piece[k] for k in keys}
    for name, typ in _MEASURE_TYPES.items():
        cols[name] = piece[name].cast(typ) if name in piece.columns else ibis.null().cast(typ)
    return piece.select(**cols)


def _order_piece(paid: Any, win: _Window, dim: str | None) -> Any:
    """Order-level sums (no breakdown, or by channel)."""
    o = paid.filter(win.keep(paid.order_date))
    o = o.mutate(
        period=win.period(o.order_date),
        gross=ibis.coalesce(o.gross_amount, o.total_amount + o.discount_amount),
    )
    keys = ["period"] + ([dim] if dim else [])
    return o.group_by(keys).aggregate(
        orders=o.order_id.count(),
        gmv=o.total_amount.sum(),
        refunded=o.refunded_amount.sum(),
        discount=o.discount_amount.sum(),
        gross=o.gross.sum(),
        items=o.item_count.sum(),
        item_orders=o.item_count.count(),
    )


def _buyer_piece(rows: Any, keys: list[str], *, per_line: bool) -> Any:
    """Buyers and buyers with two or more orders, by ``keys``.

    ``rows`` are orders (one row per order) or lines (``per_line``: orders are counted distinct,
    and the order count is returned too, as ``orders`` and ``item_orders``).
    """
    per_buyer = rows.group_by([*keys, "customer_id"]).aggregate(
        n=rows.order_id.nunique() if per_line else rows.order_id.count()
    )
    measures = {
        "buyers": per_buyer.customer_id.count(),
        "repeat_buyers": _if(per_buyer.n >= 2, 1, 0).sum(),
    }
    if per_line:
        measures["orders"] = per_buyer.n.sum()
        measures["item_orders"] = per_buyer.n.sum()
    return per_buyer.group_by(keys).aggregate(**measures)


def _line_piece(lines: Any, dim: str | None, *, sales: bool) -> Any:
    """Sums over lines: net revenue and cost of goods kept of the lines whose product has a cost
    (for gross margin), and with ``sales`` also GMV, refunds, discounts and units."""
    net = lines.line_total - lines.refunded
    full_cost = (lines.quantity * lines.cost).cast("float64")
    # Each line's kept cost is rounded to the minor unit before summing, so the sum is an integer
    # sum, exact and the same on every engine whatever order it adds the lines in.
    kept_cost = _if(
        lines.line_total > 0,
        full_cost * net.cast("float64") / lines.line_total.cast("float64"),
        full_cost,
    ).round(0).cast("int64")
    costed = lines.cost.notnull()
    t = lines.mutate(
        costed_net=_if(costed, net, ibis.null().cast("int64")),
        cogs_kept=_if(costed, kept_cost, ibis.null().cast("int64")),
    )
    measures = {"costed_net": t.costed_net.sum(), "cogs_kept": t.cogs_kept.sum()}
    if sales:
        measures.update(
            gmv=t.line_total.sum(),
            refunded=t.refunded.sum(),
            discount=t.discount.sum(),
            gross=(t.line_total + t.discount).sum(),
            items=t.quantity.sum(),
        )
    keys = ["period"] + ([dim] if dim else [])
    return t.group_by(keys).aggregate(**measures)


def _new_buyer_piece(paid: Any, win: _Window, dim: str | None) -> Any:
    """Customers whose first paid order ever falls in the window, by period (and its channel).

    The first order is the earliest ``ordered_at``, ties broken by the smallest ``order_id``:
    found with two aggregations and a join (the orders at each customer's earliest time, then the
    smallest id among those few) instead of a window ranking every order, which sorts them all.
    """
    earliest = paid.group_by("customer_id").aggregate(first_at=paid.ordered_at.min())
    at_first = paid.join(
        earliest,
        [paid.customer_id == earliest.customer_id, paid.ordered_at == earliest.first_at],
    )
    first = at_first.group_by("customer_id").aggregate(
        order_date=at_first.order_date.argmin(at_first.order_id),
        channel=at_first.channel.argmin(at_first.order_id),
    )
    first = first.filter(win.keep(first.order_date))
    first = first.mutate(period=win.period(first.order_date))
    keys = ["period"] + ([dim] if dim else [])
    return first.group_by(keys).aggregate(new_buyers=first.customer_id.count())


def _session_piece(con: Any, win: _Window) -> Any:
    """Sessions and sessions with a purchase, by the period of their first event."""
    ev = con.table("events")
    fallback = ibis.coalesce(ev.customer_id, ev.anonymous_id).concat(
        "|", ev.event_date.cast("string")
    )
    ev = ev.mutate(
        session=ibis.coalesce(ev.session_id, fallback),
        bought=_if(ev.type == "purchase", 1, 0),
    )
    ev = ev.filter(ev.session.notnull() & ev.event_date.notnull())
    per_session = ev.group_by("session").aggregate(
        first_day=ev.event_date.min(), bought=ev.bought.max()
    )
    per_session = per_session.filter(win.keep(per_session.first_day))
    per_session = per_session.mutate(period=win.period(per_session.first_day))
    return per_session.group_by("period").aggregate(
        sessions=per_session.session.count(), converted_sessions=per_session.bought.sum()
    )


def _spend_piece(con: Any, win: _Window, dim: str | None) -> Any:
    """Ad spend by period (and channel)."""
    ad = con.table("ad_spend")
    ad = ad.filter(win.keep(ad.date))
    ad = ad.mutate(period=win.period(ad.date), channel=ad.channel.fill_null(NONE_LABEL))
    keys = ["period"] + ([dim] if dim else [])
    return ad.group_by(keys).aggregate(ad_spend=ad.spend.fill_null(0).sum())


def _attributed_piece(con: Any, paid: Any, win: _Window, dim: str | None) -> Any:
    """GMV of paid orders whose channel has ad spend (last-touch attribution)."""
    ad = con.table("ad_spend")
    channels = ad.filter(ad.channel.notnull()).select(ad_channel=ad.channel).distinct()
    o = paid.filter(win.keep(paid.order_date))
    o = o.semi_join(channels, o.channel == channels.ad_channel)
    o = o.mutate(period=win.period(o.order_date))
    keys = ["period"] + ([dim] if dim else [])
    return o.group_by(keys).aggregate(attributed_gmv=o.total_amount.sum())


def _measures_expr(con: Any, win: _Window, dimension: str | None) -> Any:
    """One Ibis expression: every base measure by period (and ``dimension``)."""
    keys = ["period"] + ([dimension] if dimension else [])
    paid = _paid_orders(con)
    lines = _lines(con, paid, win)
    if dimension == "category":
        pieces = [
            _line_piece(lines, dimension, sales=True),
            _buyer_piece(lines, keys, per_line=True),
        ]
    else:
        orders = paid.filter(win.keep(paid.order_date))
        orders = orders.mutate(period=win.period(orders.order_date))
        pieces = [
            _order_piece(paid, win, dimension),
            _buyer_piece(orders, keys, per_line=False),
            _line_piece(lines, dimension, sales=False),
            _new_buyer_piece(paid, win, dimension),
            _spend_piece(con, win, dimension),
            _attributed_piece(con, paid, win, dimension),
        ]
        if dimension is None:
            pieces.append(_session_piece(con, win))
    union = ibis.union(*(_complete(p, keys) for p in pieces), distinct=False)
    return union.group_by(keys).aggregate(
        **{name: union[name].sum() for name in _MEASURE_TYPES}
    ).order_by(keys)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _to_major(value: Number, exponent: int) -> Decimal:
    """Minor units (possibly a fraction) → exact Decimal in major units, half-up to the minor unit."""
    frac = Fraction(value)
    sign = -1 if frac < 0 else 1
    num, den = abs(frac.numerator), frac.denominator
    minor = sign * ((2 * num + den) // (2 * den))
    return Decimal(minor).scaleb(-exponent)


def _present(value: Number | None, unit: Unit, exponent: int) -> Any:
    if value is None:
        return None
    if unit == "money":
        return _to_major(value, exponent)
    if unit == "count":
        return int(value)
    return float(value)


def _change(current: Any, previous: Any) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    if isinstance(current, Decimal) or isinstance(previous, Decimal):
        return float((Decimal(current) - Decimal(previous)) / Decimal(previous))
    return (float(current) - float(previous)) / float(previous)


def _clean(value: Any) -> Any:
    """A pandas cell as a plain Python value (NA → None, numpy scalars → int/float)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def frame_columns(dimension: str | None = None) -> list[str]:
    """The columns of :func:`kpi_frame`'s result, in order."""
    head = ["period"] + ([dimension] if dimension else [])
    return head + list(METRICS) + [f"{name}_change" for name in METRICS]


def kpi_frame(
    con: Any,
    *,
    by: str = "month",
    start: date | None = None,
    end: date | None = None,
    dimension: str | None = None,
    currency_exponent: int = 2,
) -> pd.DataFrame:
    """Every KPI by period (and ``dimension``), with period-over-period change.

    ``con`` is an Ibis backend over the stored warehouse tables (DuckDB or PySpark). ``by`` is
    ``day``, ``week`` (Monday to Sunday), ``month`` or ``quarter`` of the shop-local dates;
    ``start`` and ``end`` are inclusive shop-local dates; ``dimension`` is ``None``, ``channel`` or
    ``category``. One row per period (× dimension value), sorted: ``period`` (the period's first
    day, a ``datetime.date``), the dimension value, every metric in :data:`METRICS` (money as exact
    ``Decimal`` in major units, half-up to the minor unit; counts as ``int``; ratios as ``float``;
    ``None`` where undefined or not meaningful for the dimension), then ``<metric>_change``.
    """
    _check_period(by)
    if dimension is not None and dimension not in DIMENSIONS:
        raise InvalidArgumentError(
            f"unknown dimension {dimension!r}; choose one of: {', '.join(DIMENSIONS)}"
        )
    if start is not None and end is not None and start > end:
        raise InvalidArgumentError(f"start {start} is after end {end}")
    for day in (start, end):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidArgumentError(f"{day} is outside {FIRST_DAY} – {LAST_DAY}")
    first_start = period_start(start, by) if start is not None else None
    ext_start = shift_period(first_start, by, -1) if first_start is not None else None
    win = _Window(_IBIS_UNIT[by], ext_start, first_start, start, end)

    raw = _measures_expr(con, win, dimension).execute()
    available = _MEASURES_FOR[dimension]
    rows: dict[tuple[date, Any], dict[str, Any]] = {}
    for record in raw.to_dict(orient="records"):
        period = pd.Timestamp(record["period"]).date()
        key_value = record[dimension] if dimension else None
        measures: dict[str, Any] = dict.fromkeys(_MEASURE_TYPES)
        for name in available:
            value = _clean(record[name])
            if _MEASURE_TYPES[name] == "int64":
                # Spark hands nullable integer columns back as float64.
                value = 0 if value is None else int(value)
            measures[name] = value
        rows[(period, key_value)] = measures

    if dimension is None and rows:
        zero = {name: (0 if name in available else None)
                for name in _MEASURE_TYPES}
        first, last = min(p for p, _ in rows), max(p for p, _ in rows)
        if first_start is not None and ext_start is not None:
            first = min(first, ext_start)
        period = first
        while period <= last:
            rows.setdefault((period, None), dict(zero))
            period = shift_period(period, by, 1)

    values: dict[tuple[date, Any], dict[str, Any]] = {}
    for key, measures in rows.items():
        values[key] = {
            name: (
                _present(metric.compute(measures), metric.unit, currency_exponent)
                if metric.applies_to(dimension)
                else None
            )
            for name, metric in METRICS.items()
        }

    out: list[dict[str, Any]] = []
    for period, key_value in sorted(rows, key=lambda k: (k[0], "" if k[1] is None else str(k[1]))):
        if first_start is not None and period < first_start:
            continue
        current = values[(period, key_value)]
        previous = values.get((shift_period(period, by, -1), key_value))
        row: dict[str, Any] = {"period": period}
        if dimension:
            row[dimension] = key_value
        row.update(current)
        for name in METRICS:
            row[f"{name}_change"] = (
                _change(current[name], previous[name]) if previous is not None else None
            )
        out.append(row)
    return pd.DataFrame(out, columns=frame_columns(dimension), dtype=object)


def kpi_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of :func:`kpi_frame` as JSON-ready dicts.

    ``period`` becomes an ISO date string; money a number in major units rounded to 2 decimals;
    counts integers; ratios and changes floats rounded to 6 decimals; missing values ``None``.
    """
    units = {name: metric.unit for name, metric in METRICS.items()}
    records: list[dict[str, Any]] = []
    for raw in df.to_dict(orient="records"):
        record: dict[str, Any] = {}
        for column, value in raw.items():
            name = str(column)
            value = _clean(value)
            if value is None:
                record[name] = None
            elif name == "period":
                record[name] = value.isoformat()
            elif units.get(name) == "money":
                record[name] = round(float(value), 2)
            elif units.get(name) == "count":
                record[name] = int(value)
            elif name in units or name.endswith("_change"):
                record[name] = round(float(value), 6)
            else:
                record[name] = value
        records.append(record)
    return records


def gmv_by_product(
    con: Any,
    *,
    by: str = "month",
    start: date | None = None,
    end: date | None = None,
    currency_exponent: int = 2,
) -> pd.DataFrame:
    """GMV of each product (SKU) by period, over the lines of paid orders (as the KPIs count them).

    Columns: ``period`` (``datetime.date``), ``sku``, ``name`` (catalogue name, else the name on
    the line), ``category`` (as in the category breakdown), ``orders`` (paid orders with the
    product), ``quantity`` and ``gmv`` (Σ line_total, exact ``Decimal`` in major units).
    ``start``/``end`` are inclusive shop-local dates. Sorted by period, then GMV descending.
    """
    _check_period(by)
    win = _Window(_IBIS_UNIT[by], start, start, start, end)
    lines = _lines(con, _paid_orders(con), win)
    agg = lines.group_by(["period", "sku"]).aggregate(
        name=lines.name.max(),
        category=lines.category.max(),
        orders=lines.order_id.nunique(),
        quantity=lines.quantity.sum(),
        gmv=lines.line_total.sum(),
    )
    df = agg.execute()
    records = [
        {
            "period": pd.Timestamp(r["period"]).date(),
            "sku": r["sku"],
            "name": r["name"],
            "category": r["category"],
            "orders": int(r["orders"]),
            "quantity": int(r["quantity"]),
            "gmv": _to_major(int(r["gmv"]), currency_exponent),
        }
        for r in df.to_dict(orient="records")
    ]
    records.sort(key=lambda r: (r["period"], -r["gmv"], str(r["sku"])))
    columns = ["period", "sku", "name", "category", "orders", "quantity", "gmv"]
    return pd.DataFrame(records, columns=columns, dtype=object)
