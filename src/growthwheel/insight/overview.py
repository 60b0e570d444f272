"""The numbers behind the Overview page, all from the KPI catalogue (``insight.kpis``).

The page compares a date range with the range of the same length just before it. The KPI
catalogue computes calendar periods (days, weeks, months, quarters), so a free range is handled
by :func:`range_backend`: a view of the warehouse in which every date of the selected range reads
as one day (the range's last day) and every date of the previous range as the day before. A
one-day KPI frame over that view then holds exactly the selected range's KPIs with their change
against the previous range, computed by the very same definitions as every other report (distinct
buyers over the whole range, first orders ever for new buyers, sessions by their first event).
Dates outside both ranges keep their order (earlier ones read as 1900-01-01, later ones as
9999-12-31), so "first ever" and "first event" questions are answered as on the real dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import ibis
import pandas as pd

from growthwheel.insight.kpis import kpi_frame

#: The KPIs shown as cards, in order.
CARD_METRICS: tuple[str, ...] = (
    "gmv", "orders", "buyers", "aov", "new_buyers", "repurchase_rate",
    "session_conversion_rate", "refund_rate",
)
#: Range presets offered next to the date inputs (days, ending on the last day with data).
PRESETS: tuple[int, ...] = (7, 30, 90)
DEFAULT_DAYS = 30
#: Ranges longer than this are charted by week instead of by day.
MAX_DAILY_POINTS = 92

_FAR_PAST = date(1900, 1, 1)
_FAR_FUTURE = date(9999, 12, 31)
#: The date column that places each table's rows in time, for the tables the KPIs read.
_DATE_COLUMNS = {"orders": "order_date", "events": "event_date", "ad_spend": "date"}


def previous_range(start: date, end: date) -> tuple[date, date]:
    """The range of the same length that ends the day before ``start``."""
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


class _RangeView:
    """An Ibis backend stand-in whose date columns collapse the two ranges onto two days."""

    def __init__(self, con: Any, start: date, end: date) -> None:
        self._con = con
        self._start = start
        self._end = end

    def table(self, name: str) -> Any:
        table = self._con.table(name)
        column = _DATE_COLUMNS.get(name)
        if column is None:
            return table
        day = table[column]
        prev_start, _ = previous_range(self._start, self._end)
        collapsed = ibis.cases(
            (day.isnull(), ibis.null().cast("date")),
            ((day >= self._start) & (day <= self._end), ibis.literal(self._end)),
            ((day >= prev_start) & (day < self._start), ibis.literal(self._end - timedelta(days=1))),
            (day > self._end, ibis.literal(_FAR_FUTURE)),
            else_=ibis.literal(_FAR_PAST),
        )
        return table.mutate(**{column: collapsed})


def range_backend(con: Any, start: date, end: date) -> Any:
    """A view of ``con`` for :func:`insight.kpis.kpi_frame` in which ``[start, end]`` reads as the
    single day ``end`` and the previous range of the same length as the day ``end − 1``."""
    return _RangeView(con, start, end)


class FilteredView:
    """An Ibis backend stand-in that narrows the shop to one channel and / or one category.

    ``channel``: the orders credited to it (and their lines, and its ad spend). ``category``: the
    orders with a line in it or one of its sub-categories (``Beauty`` covers ``Beauty/Skincare``;
    a line's category is its own, else the catalogue's), and only those lines — so GMV and orders
    are those of the orders that hold the category, the category mix only that category. Behaviour
    events are not narrowed (a session has no channel or category of its own), so session
    conversion stays the shop's.
    """

    def __init__(self, con: Any, *, channel: str | None = None, category: str | None = None) -> None:
        self._con = con
        self.channel = channel or None
        self.category = category or None

    def _lines(self) -> Any:
        lines = self._con.table("order_lines")
        if self.category is None:
            return lines
        products = self._con.table("products").select(_p_sku="sku", _p_cat="category")
        joined = lines.left_join(products, lines.sku == products._p_sku)
        cat = ibis.coalesce(joined.category, joined._p_cat)
        keep = (cat == self.category) | cat.startswith(self.category + "/")
        return joined.filter(keep.fill_null(False)).select(*lines.columns)

    def _orders(self) -> Any:
        orders = self._con.table("orders")
        if self.channel is not None:
            orders = orders.filter(orders.channel == self.channel)
        if self.category is not None:
            ids = self._lines().select(_line_order="order_id").distinct()
            orders = orders.semi_join(ids, orders.order_id == ids._line_order)
        return orders

    def table(self, name: str) -> Any:
        """The table ``name``, narrowed as described."""
        if name == "orders":
            return self._orders()
        if name == "order_lines":
            lines = self._lines()
            if self.channel is None:
                return lines
            ids = self._orders().select(_kept="order_id")
            return lines.semi_join(ids, lines.order_id == ids._kept)
        table = self._con.table(name)
        if name == "ad_spend" and self.channel is not None:
            return table.filter(table.channel == self.channel)
        return table


def narrowed(con: Any, *, channel: str | None = None, category: str | None = None) -> Any:
    """``con`` narrowed to ``channel`` and / or ``category`` (itself when neither is given)."""
    if not channel and not category:
        return con
    return FilteredView(con, channel=channel, category=category)


def year_before(day: date) -> date:
    """The same day a year earlier (29 February → 28 February)."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def filter_options(con: Any) -> tuple[list[str], list[str]]:
    """The channels of the shop's orders and the top-level categories of its lines and products,
    sorted (for the page's filters)."""
    orders = con.table("orders")
    channels = orders.filter(orders.channel.notnull()).select("channel").distinct()
    lines = con.table("order_lines")
    products = con.table("products")
    cats = lines.filter(lines.category.notnull()).select("category").union(
        products.filter(products.category.notnull()).select("category"))
    top = cats.select(category=cats.category.split("/")[0]).distinct()
    return (sorted(str(r["channel"]) for r in channels.limit(200).to_pyarrow().to_pylist()),
            sorted(str(r["category"]) for r in top.limit(200).to_pyarrow().to_pylist() if r["category"]))


def last_day_with_data(con: Any) -> date | None:
    """The latest shop-local date with an order (else an event); ``None`` for an empty warehouse."""
    for table, column in (("orders", "order_date"), ("events", "event_date")):
        value = con.table(table)[column].max().execute()
        if value is not None and not pd.isna(value):
            return pd.Timestamp(value).date()
    return None


def resolve_range(
    start: date | None, end: date | None, days: int | None, last_day: date
) -> tuple[date, date]:
    """The range to show: ``days`` ending on ``last_day`` when a preset is chosen, else the given
    bounds (a missing bound is filled so that the range is 30 days), swapped when reversed."""
    if days is not None and days > 0:
        return last_day - timedelta(days=days - 1), last_day
    if end is None:
        end = last_day if start is None else start + timedelta(days=DEFAULT_DAYS - 1)
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    return start, end


@dataclass(frozen=True)
class Card:
    """One KPI card: the value over the range, over the previous range, and the relative change."""

    metric: str
    value: Any
    previous: Any
    change: float | None


@dataclass
class Overview:
    """Everything the Overview page draws."""

    start: date
    end: date
    previous_start: date
    previous_end: date
    cards: list[Card]
    #: ``day`` or ``week``.
    trend_by: str
    trend_periods: list[str] = field(default_factory=list)
    trend_gmv: list[float] = field(default_factory=list)
    trend_orders: list[int] = field(default_factory=list)
    trend_new: list[int] = field(default_factory=list)
    trend_returning: list[int] = field(default_factory=list)
    #: (channel, GMV, orders), by GMV descending.
    channels: list[tuple[str, Decimal, int]] = field(default_factory=list)
    #: (category, GMV, orders), by GMV descending.
    categories: list[tuple[str, Decimal, int]] = field(default_factory=list)
    new_buyers: int = 0
    returning_buyers: int = 0


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _mix(frame: pd.DataFrame, dimension: str) -> list[tuple[str, Decimal, int]]:
    rows = [
        (str(r[dimension]), Decimal(r["gmv"] or 0), _int(r["orders"]))
        for r in frame.to_dict(orient="records")
    ]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def overview(con: Any, start: date, end: date, *, currency_exponent: int = 2) -> Overview:
    """The Overview of ``[start, end]`` (inclusive shop-local dates) against the previous range."""
    view = range_backend(con, start, end)
    prev_start, prev_end = previous_range(start, end)
    both = kpi_frame(view, by="day", start=end - timedelta(days=1), end=end,
                     currency_exponent=currency_exponent)
    by_day = {row["period"]: row for row in both.to_dict(orient="records")}
    current = by_day.get(end, {})
    before = by_day.get(end - timedelta(days=1), {})
    cards = [
        Card(name, current.get(name), before.get(name), current.get(f"{name}_change"))
        for name in CARD_METRICS
    ]
    trend_by = "day" if (end - start).days + 1 <= MAX_DAILY_POINTS else "week"
    result = Overview(start, end, prev_start, prev_end, cards, trend_by)

    trend = kpi_frame(con, by=trend_by, start=start, end=end, currency_exponent=currency_exponent)
    for row in trend.to_dict(orient="records"):
        buyers, new = _int(row["buyers"]), _int(row["new_buyers"])
        result.trend_periods.append(row["period"].isoformat())
        result.trend_gmv.append(float(row["gmv"] or 0))
        result.trend_orders.append(_int(row["orders"]))
        result.trend_new.append(new)
        result.trend_returning.append(buyers - new)

    for dimension in ("channel", "category"):
        frame = kpi_frame(view, by="day", start=end, end=end, dimension=dimension,
                          currency_exponent=currency_exponent)
        mix = _mix(frame, dimension)
        if dimension == "channel":
            result.channels = mix
        else:
            result.categories = mix

    result.new_buyers = _int(current.get("new_buyers"))
    result.returning_buyers = _int(current.get("buyers")) - result.new_buyers
    return result
