"""Acquisition cohorts and retention (同期群 / 留存).

A customer is *acquired* by their first paid order ever (earliest ``ordered_at``, ties broken by
``order_id``, as the KPI ``new_buyers`` counts them); paid orders are those of
:func:`growthwheel.insight.rfm.paid_orders`. Their *cohort* is the week (Monday to Sunday) or month
of that order's shop-local date, and their *acquisition channel* is that order's ``channel``
(``(none)`` when empty).

Periods since acquisition, two ways:

* ``calendar``: period k is the k-th calendar week / month after the cohort's own (period 0 is the
  cohort's week or month itself, so a customer acquired on its last day has a short period 0).
* ``rolling``: period k is days [k·L, (k+1)·L) after the customer's *own* first order date, with
  ``L`` = ``window_days`` (default 7 for weekly cohorts, 30 for monthly ones).

In each (cohort, period) cell:

* ``customers`` (retained): cohort members with a paid order in the period. Period 0 holds every
  member, so it is the cohort size.
* ``recurring``: of those, members who also bought in the previous period (k ≥ 1).
* ``first_returns``: of those, members for whom this is the first period after period 0 with an
  order: first-time retention. Σ over k ≥ 1 is the number of members who ever came back.
* ``orders`` and ``revenue``: the members' paid orders in the period and their net revenue
  (``total_amount`` − ``refunded_amount``, minor units in the Ibis table).

Only orders on or before ``end`` count (acquisition included), so a cohort table "as of" a past date
is what the shop would have seen then (refund amounts excepted: they carry no date).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.kpis import NONE_LABEL, period_end, period_start, shift_period
from growthwheel.insight.rfm import last_paid_day, paid_orders

COHORT_UNITS: tuple[str, ...] = ("week", "month")
MODES: tuple[str, ...] = ("calendar", "rolling")
_IBIS_UNIT = {"week": "W", "month": "M"}
_DEFAULT_WINDOW = {"week": 7, "month": 30}


def _check(by: str, mode: str, window_days: int | None) -> int:
    if by not in COHORT_UNITS:
        raise InvalidArgumentError(f"unknown cohort period {by!r}; choose week or month")
    if mode not in MODES:
        raise InvalidArgumentError(f"unknown mode {mode!r}; choose calendar or rolling")
    if window_days is not None and window_days < 1:
        raise InvalidArgumentError("window_days must be at least 1")
    return window_days or _DEFAULT_WINDOW[by]


def acquisitions(orders: ir.Table, *, end: date | None = None) -> ir.Table:
    """Every customer's first paid order (up to ``end``): ``customer_id``, ``first_date``, ``channel``."""
    o = paid_orders(orders, end=end)
    rn = ibis.row_number().over(group_by=o.customer_id, order_by=[o.ordered_at, o.order_id])
    first = o.mutate(_rn=rn)
    first = first.filter(first._rn == 0)
    return first.select(
        "customer_id",
        first_date=first.order_date,
        channel=first.channel.fill_null(NONE_LABEL),
    )


def cohort_activity(
    orders: ir.Table,
    *,
    by: str = "month",
    mode: str = "calendar",
    window_days: int | None = None,
    start: date | None = None,
    end: date | None = None,
    by_channel: bool = False,
) -> ir.Table:
    """Retention cells: one row per (``cohort``, [``channel``,] ``period``) with any activity.

    ``cohort`` is the first day of the acquisition week / month; ``period`` is k (see the module
    docstring); measures ``customers``, ``recurring``, ``first_returns``, ``orders``, ``revenue``
    (minor units). ``start`` keeps customers acquired on or after it; ``end`` ignores later orders.
    """
    length = _check(by, mode, window_days)
    o = paid_orders(orders, end=end)
    first = acquisitions(orders, end=end)
    if start is not None:
        first = first.filter(first.first_date >= start)
    first = first.select(_c="customer_id", first_date="first_date", _channel="channel")
    j = o.join(first, o.customer_id == first._c)
    j = j.mutate(channel=j._channel)  # the acquisition channel, not each order's
    cohort = j.first_date.truncate(_IBIS_UNIT[by])
    if mode == "rolling":
        period = j.order_date.delta(j.first_date, unit="day") // length
    elif by == "month":
        period = (j.order_date.year() * 12 + j.order_date.month()) - (
            j.first_date.year() * 12 + j.first_date.month()
        )
    else:
        period = j.order_date.truncate("W").delta(cohort, unit="day") // 7
    j = j.mutate(cohort=cohort, period=period.cast("int64"))
    keys = ["cohort"] + (["channel"] if by_channel else [])
    cells = j.group_by(["customer_id", *keys, "period"]).aggregate(
        orders=j.count(), revenue=j.net_amount.sum()
    )
    previous = cells.period.lag().over(group_by=cells.customer_id, order_by=cells.period)
    cells = cells.mutate(_previous=previous)
    cells = cells.mutate(
        recurring=ibis.ifelse(cells._previous == cells.period - 1, 1, 0),
        first_return=ibis.ifelse((cells.period > 0) & (cells._previous == 0), 1, 0),
    )
    return cells.group_by([*keys, "period"]).aggregate(
        customers=cells.count(),
        recurring=cells.recurring.sum().cast("int64"),
        first_returns=cells.first_return.sum().cast("int64"),
        orders=cells.orders.sum().cast("int64"),
        revenue=cells.revenue.sum().cast("int64"),
    )


def _to_major(minor: int, exponent: int) -> Decimal:
    return Decimal(int(minor)).scaleb(-exponent)


#: Columns of :func:`retention_frame` (``channel`` after ``cohort`` when broken down by channel).
FRAME_COLUMNS: tuple[str, ...] = (
    "cohort", "period", "period_start", "complete", "cohort_size", "customers", "retention",
    "recurring", "recurring_rate", "first_returns", "first_return_rate", "orders", "revenue",
    "cumulative_revenue", "revenue_per_customer",
)


def retention_frame(
    orders: ir.Table,
    *,
    by: str = "month",
    mode: str = "calendar",
    window_days: int | None = None,
    start: date | None = None,
    end: date | None = None,
    by_channel: bool = False,
    currency_exponent: int = 2,
) -> pd.DataFrame:
    """The cohort × period table, dense (elapsed periods without activity are zeros), with rates.

    One row per cohort (and channel) and period k = 0 … the period containing ``end`` (default: the
    last paid order's date). ``period_start`` is the first day of period k (calendar) or of the
    cohort's first day + k·L (rolling); ``complete`` is true once every member has lived the whole
    period by ``end``. Rates are over ``cohort_size``; ``revenue``, ``cumulative_revenue`` (Σ up to
    k) and ``revenue_per_customer`` (cumulative / size) are exact ``Decimal`` major units.
    """
    length = _check(by, mode, window_days)
    last = end or last_paid_day(orders)
    df = cohort_activity(
        orders, by=by, mode=mode, window_days=window_days, start=start, end=last,
        by_channel=by_channel,
    ).execute()
    cells: dict[tuple[date, Any], dict[int, dict[str, Any]]] = {}
    for record in df.to_dict(orient="records"):
        cohort = pd.Timestamp(record["cohort"]).date()
        key = (cohort, record["channel"] if by_channel else None)
        cells.setdefault(key, {})[int(record["period"])] = record
    rows: list[dict[str, Any]] = []
    for cohort, channel in sorted(cells, key=lambda k: (k[0], str(k[1]))):
        periods = cells[(cohort, channel)]
        size = int(periods[0]["customers"]) if 0 in periods else 0
        cohort_last_day = period_end(cohort, by)
        if mode == "rolling":
            horizon = (last - cohort).days // length
        else:
            horizon = 0
            while shift_period(cohort, by, horizon + 1) <= period_start(last, by):
                horizon += 1
        cumulative = 0
        for k in range(horizon + 1):
            cell = periods.get(k, {})
            if mode == "rolling":
                begins = cohort + timedelta(days=k * length)
                complete = cohort_last_day + timedelta(days=(k + 1) * length - 1) <= last
            else:
                begins = shift_period(cohort, by, k)
                complete = period_end(begins, by) <= last
            customers = int(cell.get("customers", 0))
            recurring = int(cell.get("recurring", 0))
            returns = int(cell.get("first_returns", 0))
            revenue = int(cell.get("revenue", 0))
            cumulative += revenue
            row: dict[str, Any] = {"cohort": cohort}
            if by_channel:
                row["channel"] = channel
            row.update({
                "period": k,
                "period_start": begins,
                "complete": complete,
                "cohort_size": size,
                "customers": customers,
                "retention": customers / size if size else None,
                "recurring": recurring if k else None,
                "recurring_rate": recurring / size if size and k else None,
                "first_returns": returns if k else None,
                "first_return_rate": returns / size if size and k else None,
                "orders": int(cell.get("orders", 0)),
                "revenue": _to_major(revenue, currency_exponent),
                "cumulative_revenue": _to_major(cumulative, currency_exponent),
                "revenue_per_customer": (
                    (_to_major(cumulative, currency_exponent) / size).quantize(
                        Decimal(1).scaleb(-currency_exponent), rounding=ROUND_HALF_UP
                    ) if size else None
                ),
            })
            rows.append(row)
    columns = list(FRAME_COLUMNS)
    if by_channel:
        columns.insert(1, "channel")
    return pd.DataFrame(rows, columns=columns, dtype=object)
