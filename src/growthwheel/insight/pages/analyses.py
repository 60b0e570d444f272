"""Console pages for customer insight (the RFM page is in ``rfm.py``): ``/insight/funnel`` (an ordered
funnel over the event types present, default view → cart → checkout → purchase, with conversion,
drop-off, median time to convert and an optional breakdown by channel or device),
``/insight/cohorts`` (monthly or weekly acquisition cohorts, calendar or rolling periods, retention
/ first-time return / recurring / revenue per customer, optionally for one acquisition channel),
``/insight/lifecycle`` (customers per lifecycle stage and the moves between stages) and
``/insight/clv`` (the stored lifetime-value scores: distributions, summary and top customers;
operators and admins compute them from the page).

Every page needs a signed-in user (``current_user_page`` redirects anonymous visitors to the login
form) and reads the warehouse through the server's warehouse owner on a worker thread (sync
routes). The figures are those of :func:`growthwheel.insight.rfm.rfm_report` and
:func:`growthwheel.insight.funnels.funnel_frame`, :func:`growthwheel.insight.cohorts.retention_frame`,
:func:`growthwheel.insight.lifecycle.lifecycle_report`, the same as the CLI's ``--json``;
segment names come from the report in both languages, every other visible string from the
catalogues (the templates call ``t(...)``). Charts are drawn by
``static/app.js`` from a ``<script type="application/json">`` block (no inline script runs).

The CLV page reads the warehouse table ``customer_scores`` that ``growthwheel clv score`` writes;
its compute form runs the same scoring (:func:`growthwheel.insight.clv.compute_scores`) on a read
cursor and stores the result on the warehouse owner's writer thread
(:func:`growthwheel.insight.clv.write_scores` through ``run_write``), after any import under way.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

import ibis
import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from ibis.backends import BaseBackend
from starlette.concurrency import run_in_threadpool

from growthwheel.api.deps import PageUser, Principal, check_csrf
from growthwheel.api.warehouse import warehouse
from growthwheel.customers.pages import customer_href
from growthwheel.errors import GrowthwheelError, NoDataError
from growthwheel.insight import clv
from growthwheel.insight.cohorts import MODES, acquisitions, retention_frame
from growthwheel.insight.funnels import (
    BREAKDOWNS,
    DEFAULT_STEPS,
    funnel_frame,
    funnel_with_stops,
    identity_links,
)
from growthwheel.insight.kpis import FIRST_DAY
from growthwheel.insight.lifecycle import NO_STAGE, STAGES, lifecycle_report, thresholds_for
from growthwheel.insight.pages import drill, funnel_cache, rfm
from growthwheel.insight.pages.common import _pct, parse_day
from growthwheel.insight.rfm import last_paid_day
from growthwheel.kit.money import currency_exponent
from growthwheel.stats.clv import TIME_UNITS, CannotFitError
from growthwheel.warehouse import db as warehouse_db
from growthwheel.warehouse.schema import STANDARD_EVENT_TYPES
from growthwheel.web.i18n import format_count, format_money, k
from growthwheel.web.pages import page_translator, render

router = APIRouter(include_in_schema=False)
router.include_router(rfm.router)  # /insight/rfm (rfm.py)


#: Conversion window of the funnel page: default and longest (days).
DEFAULT_WINDOW_DAYS = 14
MAX_WINDOW_DAYS = 365
#: Days before ``as_of`` the lifecycle page's moves start from by default.
DEFAULT_MOVES_DAYS = 30


def _duration(seconds: float | None) -> dict[str, str | None]:
    """A median time as ``unit`` (``min`` under two hours, else ``h``) and ``amount`` (one
    decimal); both ``None`` when there is no time."""
    if seconds is None:
        return {"unit": None, "amount": None}
    if seconds < 7200:
        return {"unit": "min", "amount": f"{seconds / 60:,.1f}"}
    return {"unit": "h", "amount": f"{seconds / 3600:,.1f}"}


def funnel_rows(frame: Any) -> list[dict[str, Any]]:
    """The rows of :func:`funnel_frame` (no breakdown) as the page shows them: counts, rates and
    the median time from the first step (:func:`_duration`)."""
    shown = []
    for record in frame.to_dict(orient="records"):
        seconds = record["median_seconds_from_first"]
        shown.append({
            "step": int(record["step"]), "event": str(record["event"]),
            "entrants": format_count(record["entrants"]),
            "from_previous": _pct(record["conversion_from_previous"]),
            "from_first": _pct(record["conversion_from_first"]),
            "drop_off": "–" if record["drop_off"] is None else format_count(record["drop_off"]),
            "drop_off_rate": _pct(record["drop_off_rate"]),
            **_duration(None if int(record["step"]) == 1 else seconds),
        })
    return shown


def window_days_of(text: str | None) -> int:
    """The funnel window asked for: a whole number of days within 1 – :data:`MAX_WINDOW_DAYS`
    (clamped), :data:`DEFAULT_WINDOW_DAYS` when missing or not a number."""
    try:
        days = int(text or "")
    except ValueError:
        return DEFAULT_WINDOW_DAYS
    return max(1, min(MAX_WINDOW_DAYS, days))


#: Event types with a name in the catalogues (``event.<type>``); others show as they are.
EVENT_NAMES = frozenset({"view", "search", "add_to_cart", "checkout", "purchase"})
#: Most steps the funnel form offers.
MAX_FUNNEL_STEPS = 8
#: Breakdown values drawn in the breakdown chart (the table lists them all).
CHART_BREAKDOWN_VALUES = 12
BREAKDOWN_KEYS = {
    "utm_source": k("insight.funnel.by_utm_source"),
    "utm_medium": k("insight.funnel.by_utm_medium"),
    "utm_campaign": k("insight.funnel.by_utm_campaign"),
    "device": k("insight.funnel.by_device"),
}


def event_types(events: Any) -> list[str]:
    """The event types present in ``events``: the standard ones in funnel order, then the
    others by name."""
    found = {str(v) for v in events.select("type").distinct().to_pyarrow().column(0).to_pylist()
             if v is not None}
    standard = [e for e in STANDARD_EVENT_TYPES if e in found]
    return standard + sorted(found - set(standard))


def funnel_steps_of(asked: list[str], present: list[str]) -> tuple[list[str], str | None]:
    """The steps to chart from the form's ``step`` fields (blank ones skipped) and an error key
    when they cannot make a funnel; without any step asked, :data:`DEFAULT_STEPS` (those present)."""
    steps = [s.strip() for s in asked if s.strip()]
    if not steps:
        return [s for s in DEFAULT_STEPS if s in present] or list(DEFAULT_STEPS), None
    if len(steps) > MAX_FUNNEL_STEPS:
        return steps[:MAX_FUNNEL_STEPS], k("insight.funnel.error_too_many")
    if any(s not in present for s in steps):
        return list(DEFAULT_STEPS), k("insight.funnel.error_unknown_step")
    if len(steps) < 2:
        return list(DEFAULT_STEPS), k("insight.funnel.error_two_steps")
    return steps, None


def breakdown_rows(frame: Any, breakdown: str, n_steps: int) -> list[dict[str, Any]]:
    """The rows of :func:`funnel_frame` with a breakdown, one per breakdown value (largest first):
    people at each step with the share of the first step, the overall conversion and the median
    time from the first step to the last."""
    shown: list[dict[str, Any]] = []
    records = frame.to_dict(orient="records")
    for i in range(0, len(records), n_steps):
        group = records[i:i + n_steps]
        last = group[-1]
        seconds = last["median_seconds_from_first"]
        shown.append({
            "value": str(group[0][breakdown]),
            "steps": [{"entrants": format_count(r["entrants"]), "count": int(r["entrants"]),
                       "from_first": _pct(r["conversion_from_first"])} for r in group],
            "conversion": _pct(last["conversion_from_first"]),
            **_duration(None if not int(last["entrants"]) else seconds),
        })
    return shown


#: Quick ranges of the funnel page (days ending on the last day with events) and the default.
FUNNEL_PRESETS: tuple[int, ...] = (30, 90, 365)
DEFAULT_FUNNEL_DAYS = 30
#: Longest range the funnel page computes (days).
MAX_FUNNEL_RANGE_DAYS = 1096


def funnel_range(start: date | None, end: date | None, days: int | None,
                 last_day: date) -> tuple[date, date]:
    """The entry dates the funnel counts (shop time): ``days`` ending on ``last_day`` for a quick
    range, else the given bounds (a missing one makes the range :data:`DEFAULT_FUNNEL_DAYS` long;
    reversed bounds are swapped), at most :data:`MAX_FUNNEL_RANGE_DAYS` long."""
    if days is not None and days > 0 and start is None and end is None:
        first, last = last_day - timedelta(days=days - 1), last_day
    else:
        last = end or (last_day if start is None else start + timedelta(days=DEFAULT_FUNNEL_DAYS - 1))
        first = start or last - timedelta(days=DEFAULT_FUNNEL_DAYS - 1)
        if first > last:
            first, last = last, first
    if (last - first).days >= MAX_FUNNEL_RANGE_DAYS:
        first = last - timedelta(days=MAX_FUNNEL_RANGE_DAYS - 1)
    return first, last


def _last_event_day(events: Any) -> date | None:
    value = events.event_date.max().execute()
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


@router.get("/insight/funnel", response_class=HTMLResponse)
def funnel_page(
    request: Request,
    user: PageUser,
    window: Annotated[str | None, Query(alias="window_days", max_length=20)] = None,
    step: Annotated[list[str] | None, Query(max_length=64)] = None,
    by: Annotated[str | None, Query(max_length=20)] = None,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    days: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """An ordered funnel over the events (default view → add to cart → checkout → purchase; the
    ``step`` fields choose others among the event types present) of the people whose first step
    falls between ``start`` and ``end`` (shop-local dates; ``days`` for a quick range ending on the
    last day with events; default the last :data:`DEFAULT_FUNNEL_DAYS` days), each entrant given
    ``window_days`` from their first step: entrants per step, conversion, drop-off and median
    time to convert; with ``by`` (a utm column or ``device``) the same per value of the entry
    event. A window that is not a whole number shows the default; one out of range is brought
    within 1 – :data:`MAX_WINDOW_DAYS`; a date that is not one is ignored. Steps that are unknown
    or too few show an error and the default funnel. Results are remembered until the warehouse
    changes."""
    window_days = window_days_of(window)
    breakdown = by if by in BREAKDOWNS else None
    try:
        quick: int | None = int(days) if days else None
    except ValueError:
        quick = None
    with warehouse(request).read() as con:
        events = con.table("events")
        # The funnel reads events only: an import of orders, customers … keeps what it remembers.
        version = warehouse_db.warehouse_version(con, "events")
        duckdb = con.name == "duckdb"

        def facts(links: Any) -> funnel_cache.EventFacts:
            # The identity links (a scan of every event) change only with the events: found once
            # per version for every range, window and breakdown asked (DuckDB's path), kept on
            # disk for the first visit after a restart, grown from the kept ones after an import
            # that only added events (``links``).
            if links is None and duckdb:
                links = identity_links(events)
            return funnel_cache.EventFacts(event_types(events), _last_event_day(events), links)

        known = funnel_cache.remembered(
            request, version, ("funnel-events",),
            lambda: funnel_cache.event_facts(request.app.state.cfg.data_dir, con, facts),
        )
        present, last_day = known.types, known.last_day
        steps, error_key = funnel_steps_of(step or [], present)
        if quick is None and not start and not end:
            quick = DEFAULT_FUNNEL_DAYS
        first_day, last = funnel_range(parse_day(start), parse_day(end), quick,
                                       last_day or datetime.now(UTC).date())
        span = timedelta(days=window_days)

        def compute(split_by: str | None) -> Any:
            if split_by is None:
                return funnel_with_stops(events, steps, window=span, start=first_day, end=last,
                                         links=known.links)
            return funnel_frame(events, steps, window=span, start=first_day, end=last,
                                breakdown=split_by, links=known.links)

        question = (tuple(steps), window_days, first_day, last)
        frame, stops = funnel_cache.remembered(request, version, ("funnel", *question, None),
                                   lambda: compute(None))
        split = None
        if breakdown is not None and not frame.empty and frame["entrants"].iloc[0]:
            split = funnel_cache.remembered(request, version, ("funnel", *question, breakdown),
                                lambda: compute(breakdown))
    slots = [*steps, *[""] * max(0, min(MAX_FUNNEL_STEPS, len(steps) + 2) - len(steps))]
    carried = urlencode([("step", s) for s in steps] + [("window_days", window_days)]
                        + ([("by", breakdown)] if breakdown else []))
    base: dict[str, Any] = {
        "insight_tab": "funnel", "window_days": window_days, "error_key": error_key,
        "slots": slots, "present": present, "breakdown": breakdown or "",
        "breakdowns": [{"value": b, "key": BREAKDOWN_KEYS[b]} for b in BREAKDOWNS],
        "start": first_day.isoformat(), "end": last.isoformat(),
        "presets": [
            {"days": n, "href": f"/insight/funnel?days={n}&{carried}",
             "active": last == last_day and (last - first_day).days + 1 == n}
            for n in FUNNEL_PRESETS
        ],
    }
    if frame.empty or not frame["entrants"].iloc[0]:
        return render(request, "insight/funnel.html.j2", {**base, "rows": None}, user=user)
    t = page_translator(request)
    names = {e: t(k(f"event.{e}")) if e in EVENT_NAMES else e for e in steps}
    rows = funnel_rows(frame)
    for i, row in enumerate(rows):
        stopped = stops[i]
        label = (t(k("insight.funnel.drill_label"), step=names[row["event"]], start=first_day.isoformat(),
                   end=last.isoformat()) if i + 1 < len(steps) else
                 t(k("insight.funnel.drill_label_done"), start=first_day.isoformat(), end=last.isoformat()))
        row["stopped"] = format_count(stopped)
        row["stopped_href"] = drill.customers_href(
            drill.funnel_stop(steps, window_days, first_day, last, i + 1), last, label
        ) if stopped else None
    context = {
        **base,
        "rows": rows,
        "entrants": [int(n) for n in frame["entrants"]],
        "events": [str(e) for e in frame["event"]],
        "split": breakdown_rows(split, breakdown, len(steps)) if split is not None and breakdown else None,
        "breakdown_key": BREAKDOWN_KEYS[breakdown] if breakdown else None,
    }
    if context["split"]:
        top = context["split"][:CHART_BREAKDOWN_VALUES]
        context["split_chart"] = {
            "values": [row["value"] for row in top],
            "series": [[row["steps"][i]["count"] for row in top] for i in range(len(steps))],
            "more": len(context["split"]) > CHART_BREAKDOWN_VALUES,
        }
    return render(request, "insight/funnel.html.j2", context, user=user)


#: Cohort periods the page offers.
COHORT_BYS: tuple[str, ...] = ("month", "week")
#: What a cohort cell shows: the column of :func:`retention_frame`, its label and what it means.
COHORT_METRICS: dict[str, tuple[str, str, str]] = {
    "retention": ("retention", k("insight.cohorts.metric_retention"),
                  k("insight.cohorts.note_retention")),
    "first_return": ("first_return_rate", k("insight.cohorts.metric_first_return"),
                     k("insight.cohorts.note_first_return")),
    "recurring": ("recurring_rate", k("insight.cohorts.metric_recurring"),
                  k("insight.cohorts.note_recurring")),
    "revenue": ("revenue_per_customer", k("insight.cohorts.metric_revenue"),
                k("insight.cohorts.note_revenue")),
}
MODE_KEYS = {"calendar": k("insight.cohorts.mode_calendar"), "rolling": k("insight.cohorts.mode_rolling")}
#: Longest rolling period the cohorts page accepts (days).
MAX_ROLLING_DAYS = 365


def cohort_rows(frame: Any, by: str, metric: str = "retention", *, currency: str = "CNY",
                exponent: int = 2, drill_as_of: date | None = None) -> tuple[list[dict[str, Any]], int]:
    """The rows of :func:`retention_frame` (one channel at most) grouped per cohort: its label
    (``YYYY-MM`` for months, the Monday's date for weeks), size and one cell per period with the
    ``metric`` (a key of :data:`COHORT_METRICS`) as text, as a number for the heatmap (a
    percentage with one decimal, or major units for revenue) and whether the period is over; and
    the number of periods of the longest-lived cohort. With ``drill_as_of`` (calendar periods,
    all channels), the size and each cell link to the customers behind them (``href``)."""
    column = COHORT_METRICS[metric][0]
    cohorts: dict[Any, dict[str, Any]] = {}
    periods = 0
    for record in frame.to_dict(orient="records"):
        cohort = record["cohort"]
        label = cohort.strftime("%Y-%m") if by == "month" else cohort.isoformat()
        row = cohorts.setdefault(cohort, {
            "label": label, "size": format_count(record["cohort_size"]), "cells": [],
            "href": drill.customers_href(drill.cohort_cell(cohort, by), drill_as_of, label)
            if drill_as_of else None,
        })
        value = record[column]
        if metric == "revenue":
            text = "–" if value is None else format_money(value, currency, places=exponent)
            number = None if value is None else float(value)
        else:
            text, number = _pct(value), None if value is None else round(value * 100, 1)
        period = int(record["period"])
        row["cells"].append({
            "period": period, "text": text, "complete": bool(record["complete"]),
            "percent": number,
            "href": drill.customers_href(
                drill.cohort_cell(cohort, by, record["period_start"]), drill_as_of,
                f"{label} · {'M' if by == 'month' else 'W'}{period}")
            if drill_as_of and record["customers"] else None,
        })
        periods = max(periods, int(record["period"]) + 1)
    return list(cohorts.values()), periods


def _last_paid(request: Request) -> date | None:
    """The day the cohorts are computed up to (the last paid order's), for their drill-downs."""
    with warehouse(request).read() as con:
        try:
            return last_paid_day(con.table("orders"))
        except NoDataError:
            return None


def acquisition_channels(orders: Any) -> list[str]:
    """The acquisition channels of the shop's customers (the channel of each first paid order)."""
    first = acquisitions(orders)
    values = first.select("channel").distinct().to_pyarrow().column(0).to_pylist()
    return sorted(str(v) for v in values if v is not None)


def rolling_days_of(text: str | None) -> int | None:
    """The rolling period asked for (whole days, 1 – :data:`MAX_ROLLING_DAYS`, clamped); ``None``
    (the insight default: 7 days for weekly cohorts, 30 for monthly ones) when missing or not a
    number."""
    try:
        days = int(text or "")
    except ValueError:
        return None
    return max(1, min(MAX_ROLLING_DAYS, days))


@router.get("/insight/cohorts", response_class=HTMLResponse)
def cohorts_page(
    request: Request,
    user: PageUser,
    by: Annotated[str, Query(max_length=10)] = "month",
    mode: Annotated[str, Query(max_length=10)] = "calendar",
    window: Annotated[str | None, Query(alias="window_days", max_length=20)] = None,
    metric: Annotated[str, Query(max_length=20)] = "retention",
    channel: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Acquisition cohorts (by month, or by week with ``by=week``) × periods since: calendar
    periods, or with ``mode=rolling`` periods of ``window_days`` from each customer's first
    order; each cell shows the ``metric``: retention (share buying in the period), first-time
    return, recurring (bought in the previous period too) or cumulative revenue per customer;
    ``channel`` keeps the customers acquired through one channel. Heatmap and table."""
    by = by if by in COHORT_BYS else "month"
    mode = mode if mode in MODES else "calendar"
    metric = metric if metric in COHORT_METRICS else "retention"
    window_days = rolling_days_of(window) if mode == "rolling" else None
    currency: str = request.app.state.cfg.shop().currency
    exponent = currency_exponent(currency)
    with warehouse(request).read() as con:
        orders = con.table("orders")
        channels = acquisition_channels(orders)
        chosen = channel if channel in channels else None
        try:
            frame = retention_frame(orders, by=by, mode=mode, window_days=window_days,
                                    by_channel=chosen is not None, currency_exponent=exponent)
        except NoDataError:
            frame = None
    if frame is not None and chosen is not None:
        frame = frame[frame["channel"] == chosen]
    shown_days = window_days or (7 if by == "week" else 30)
    query = {"by": by, "mode": mode, "metric": metric, "channel": chosen or ""}
    if mode == "rolling":
        query["window_days"] = str(shown_days)

    def link(**changes: str) -> str:
        merged = {**query, **changes}
        return "/insight/cohorts?" + urlencode({key: v for key, v in merged.items() if v})

    base = {
        "insight_tab": "cohorts", "by": by, "bys": [{"value": b, "href": link(by=b)} for b in COHORT_BYS],
        "mode": mode, "modes": [{"value": m, "key": MODE_KEYS[m]} for m in MODES],
        "window_days": shown_days, "metric": metric, "metric_key": COHORT_METRICS[metric][1],
        "metric_note_key": COHORT_METRICS[metric][2],
        "metrics": [{"value": m, "key": COHORT_METRICS[m][1]} for m in COHORT_METRICS],
        "channels": channels, "channel": chosen or "", "is_money": metric == "revenue",
    }
    if frame is None or frame.empty:
        return render(request, "insight/cohorts.html.j2", {**base, "rows": None}, user=user)
    drillable = mode == "calendar" and chosen is None  # rolling periods: one window per customer
    drill_as_of = _last_paid(request) if drillable else None
    rows, periods = cohort_rows(frame, by, metric, currency=currency, exponent=exponent,
                                drill_as_of=drill_as_of)
    cells = [[cell["period"], y, cell["percent"]]
             for y, row in enumerate(rows) for cell in row["cells"] if cell["percent"] is not None]
    context = {**base, "rows": rows, "periods": periods, "cells": cells,
               "labels": [row["label"] for row in rows]}
    return render(request, "insight/cohorts.html.j2", context, user=user)


def transition_matrix(moves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The moves of :func:`lifecycle_report` as rows (``none`` then every stage, rows without any
    customer left out), each with its counts toward every stage in :data:`STAGES` order."""
    found = {(m["from_stage"], m["to_stage"]): int(m["customers"]) for m in moves}
    rows = []
    for origin in (NO_STAGE, *STAGES):
        counts = [found.get((origin, stage), 0) for stage in STAGES]
        if any(counts):
            rows.append({"stage": origin, "counts": [format_count(n) for n in counts],
                         "total": format_count(sum(counts))})
    return rows


@router.get("/insight/lifecycle", response_class=HTMLResponse)
def lifecycle_page(
    request: Request,
    user: PageUser,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
) -> HTMLResponse:
    """Customers per lifecycle stage as of a day (default: the last paid order's), with the
    thresholds learned from the shop's repeat gaps, and the moves between stages since ``from``
    (default: :data:`DEFAULT_MOVES_DAYS` days earlier; a ``from`` after ``as_of`` is ignored)."""
    base = {"insight_tab": "lifecycle"}
    with warehouse(request).read() as con:
        orders = con.table("orders")
        try:
            last = last_paid_day(orders)
        except NoDataError:
            return render(request, "insight/lifecycle.html.j2", {**base, "report": None}, user=user)
        day = parse_day(as_of) or last
        since = parse_day(start)
        if since is None or since > day:
            since = max(FIRST_DAY, day - timedelta(days=DEFAULT_MOVES_DAYS))
        th = thresholds_for(orders, end=day)
        t = page_translator(request)
        report = lifecycle_report(orders, day, thresholds=th, start=since)
    context = {
        **base,
        "report": report,
        "as_of": report["as_of"],
        "start": since.isoformat(),
        "customers": format_count(report["customers"]),
        "th": report["thresholds"],
        "stages": [{"stage": r["stage"], "customers": format_count(r["customers"]),
                    "share": _pct(r["share"]), "orders": format_count(r["orders"]),
                    "href": drill.customers_href(drill.lifecycle_stage(r["stage"]), report["as_of"],
                                                 t(k(f"insight.stage.{r['stage']}")))
                    if r["stage"] in STAGES and r["customers"] else None}
                   for r in report["stages"]],
        "counts": [int(r["customers"]) for r in report["stages"]],
        "stage_ids": list(STAGES),
        "matrix": transition_matrix(report["transitions"]["moves"]),
    }
    return render(request, "insight/lifecycle.html.j2", context, user=user)


# ---------------------------------------------------------------------------------------------
# Lifetime value
# ---------------------------------------------------------------------------------------------

#: Customers per page of the top-customers table.
CLV_PAGE_SIZE = 50
#: Bars of the CLV histogram below the 99th percentile (one more bar holds the customers above).
CLV_BINS = 20
#: Bars of the P(alive) histogram (tenths).
P_ALIVE_BINS = 10
#: Longest horizon the compute form accepts, per time unit.
MAX_HORIZON = {"day": 3650, "week": 520, "month": 120}
UNIT_KEYS = {"day": k("insight.clv.unit_day"), "week": k("insight.clv.unit_week"),
             "month": k("insight.clv.unit_month")}
MODEL_KEYS = {"bgnbd": k("insight.clv.model_bgnbd"), "paretonbd": k("insight.clv.model_paretonbd")}
#: Greek letters of the parameters as the literature writes them.
PARAM_SYMBOLS = {"alpha": "α", "beta": "β", "v": "γ"}


def can_score(user: Principal) -> bool:
    """Whether ``user`` may compute the scores from the console (operators and admins)."""
    return user.kind == "user" and user.role in ("admin", "operator")


def nice_width(raw: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at least ``raw`` (a bar width that reads well)."""
    if raw <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for step in (1.0, 2.0, 5.0, 10.0):
        if step * power >= raw * (1 - 1e-12):
            return step * power
    return 10.0 * power


def clv_histogram(table: Any, exponent: int, currency: str) -> dict[str, Any]:
    """Customers per CLV bar: :data:`CLV_BINS` bars of a round width (major units) up to the
    99th percentile and one bar for everyone above (so that a few whales do not squash the
    chart); labels are the bars' lower bounds. Computed in the warehouse."""
    scale = 10**exponent
    p99 = table.clv.quantile(0.99).to_pyarrow().as_py()
    width = nice_width(float(p99 or 0) / scale / CLV_BINS)
    width_minor = max(1, round(width * scale))
    index = ibis.least((table.clv // width_minor).cast("int64"), CLV_BINS)
    rows = table.group_by(_bin=index).aggregate(n=table.count()).to_pyarrow().to_pylist()
    counts = {int(r["_bin"]): int(r["n"]) for r in rows if r["_bin"] is not None}
    top = max(counts) if counts else 0
    bars = range(top + 1)
    labels = [format_money(Decimal(b * width_minor).scaleb(-exponent), currency, places=0 if width >= 1
                           else exponent) for b in bars]
    if top == CLV_BINS:
        labels[-1] = "≥ " + labels[-1]
    return {"labels": labels, "counts": [counts.get(b, 0) for b in bars]}


def p_alive_histogram(table: Any) -> dict[str, Any]:
    """Customers per tenth of P(alive) (0–0.1, …, 0.9–1; 1 falls in the last)."""
    index = ibis.least((table.p_alive * P_ALIVE_BINS).floor().cast("int64"), P_ALIVE_BINS - 1)
    rows = table.group_by(_bin=index).aggregate(n=table.count()).to_pyarrow().to_pylist()
    counts = {int(r["_bin"]): int(r["n"]) for r in rows if r["_bin"] is not None}
    return {"labels": [f"{b / P_ALIVE_BINS:.1f}–{(b + 1) / P_ALIVE_BINS:.1f}" for b in range(P_ALIVE_BINS)],
            "counts": [counts.get(b, 0) for b in range(P_ALIVE_BINS)]}


#: Parameters in the order the literature lists them.
PARAM_ORDER = ("r", "alpha", "a", "b", "s", "beta", "p", "q", "v")


def _param_text(params: dict[str, Any]) -> str:
    ordered = sorted(params, key=lambda n: PARAM_ORDER.index(n) if n in PARAM_ORDER else len(PARAM_ORDER))
    return ", ".join(f"{PARAM_SYMBOLS.get(name, name)} = {float(params[name]):.4g}" for name in ordered)


def _fit_of(con: BaseBackend, params_id: str) -> dict[str, Any] | None:
    if clv.FITS_TABLE not in con.list_tables():
        return None
    fits = con.table(clv.FITS_TABLE)
    rows = fits.filter(fits.params_id == params_id).select("fit").limit(1).to_pyarrow().to_pylist()
    if not rows:
        return None
    found: dict[str, Any] = json.loads(rows[0]["fit"])
    return found


def _minor_money(minor: int | Decimal, currency: str, exponent: int) -> str:
    amount = (Decimal(minor).scaleb(-exponent)).quantize(Decimal(1).scaleb(-exponent), ROUND_HALF_UP)
    return format_money(amount, currency, places=exponent)


def clv_view(con: BaseBackend, currency: str, page: int) -> dict[str, Any] | None:
    """What the CLV page shows from ``customer_scores``, or ``None`` when nobody is scored yet:
    the summary cards, both histograms and one page of the top customers (CLV, then id)."""
    if clv.SCORES_TABLE not in con.list_tables():
        return None
    table = con.table(clv.SCORES_TABLE)
    summary = table.aggregate(
        customers=table.count(), total=table.clv.sum(), purchases=table.expected_purchases.sum(),
        p_alive=table.p_alive.mean(), calibration_end=table.calibration_end.max(),
        scored_at=table.scored_at.max(), horizon=table.horizon.max(), time_unit=table.time_unit.max(),
        model=table.model.max(), params_id=table.params_id.max(), discount_rate=table.discount_rate.max(),
        currency=table.currency.max(),
    ).to_pyarrow().to_pylist()[0]
    n = int(summary["customers"] or 0)
    if not n:
        return None
    currency = str(summary["currency"] or currency)
    exponent = currency_exponent(currency)
    total = int(summary["total"] or 0)
    fit = _fit_of(con, str(summary["params_id"]))
    ranked = table.order_by([ibis.desc("clv"), "customer_id"])
    top = (ranked.limit(CLV_PAGE_SIZE + 1, offset=page * CLV_PAGE_SIZE)
           .select("customer_id", "frequency", "p_alive", "expected_purchases", "expected_spend", "clv")
           .to_pyarrow().to_pylist())
    unit = str(summary["time_unit"])
    return {
        "customers": format_count(n),
        "total": _minor_money(total, currency, exponent),
        "mean": _minor_money(Decimal(total) / n, currency, exponent),
        "purchases": f"{float(summary['purchases'] or 0):,.1f}",
        "p_alive": _pct(summary["p_alive"]),
        "as_of": summary["calibration_end"].isoformat() if summary["calibration_end"] else "–",
        "scored_at": summary["scored_at"].strftime("%Y-%m-%d %H:%M") if summary["scored_at"] else "–",
        "horizon": int(summary["horizon"] or 0),
        "unit_key": UNIT_KEYS.get(unit, k("insight.clv.unit_month")),
        "discount": f"{float(summary['discount_rate'] or 0):.1%}",
        "model_key": MODEL_KEYS.get(str(summary["model"]), k("insight.clv.model_bgnbd")),
        "purchase_params": _param_text(fit["purchases"]["params"]) if fit else "–",
        "spend_params": _param_text(fit["spend"]["params"]) if fit else "–",
        "histogram": clv_histogram(table, exponent, currency),
        "p_alive_histogram": p_alive_histogram(table),
        "top": [
            {"rank": page * CLV_PAGE_SIZE + i + 1, "customer_id": str(r["customer_id"]),
             "href": customer_href(str(r["customer_id"])), "frequency": format_count(r["frequency"]),
             "p_alive": f"{r['p_alive']:.3f}", "expected_purchases": f"{r['expected_purchases']:,.2f}",
             "expected_spend": _minor_money(int(r["expected_spend"]), currency, exponent),
             "clv": _minor_money(int(r["clv"]), currency, exponent)}
            for i, r in enumerate(top[:CLV_PAGE_SIZE])
        ],
        "next_href": f"/insight/clv?page={page + 1}" if len(top) > CLV_PAGE_SIZE else None,
        "previous_href": (f"/insight/clv?page={page - 1}" if page > 1 else "/insight/clv") if page else None,
    }


def _clv_context(request: Request, user: Principal, page: int, form: dict[str, str],
                 errors: dict[str, str], problem: dict[str, str] | None) -> dict[str, Any]:
    currency: str = request.app.state.cfg.shop().currency
    with warehouse(request).read() as con:
        view = clv_view(con, currency, page)
    return {
        "insight_tab": "clv", "view": view, "can_score": can_score(user), "page": page,
        "form": form, "errors": errors, "problem": problem, "refused": False,
        "units": [{"value": u, "key": UNIT_KEYS[u]} for u in TIME_UNITS],
        "models": [{"value": m, "key": MODEL_KEYS[m]} for m in clv.MODELS],
    }


DEFAULT_CLV_FORM = {"horizon": "12", "time_unit": "month", "model": "bgnbd"}


@router.get("/insight/clv", response_class=HTMLResponse)
def clv_page(
    request: Request,
    user: PageUser,
    page: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> HTMLResponse:
    """Predicted lifetime value from the stored scores: histograms of CLV and P(alive), summary
    cards (customers, total and mean CLV, expected purchases over the horizon, model and
    parameters, as-of day) and the customers by CLV, :data:`CLV_PAGE_SIZE` a page. Without
    scores, operators and admins get the form that computes them."""
    context = _clv_context(request, user, page, dict(DEFAULT_CLV_FORM), {}, None)
    return render(request, "insight/clv.html.j2", context, user=user)


def _clv_form_errors(form: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    unit = form["time_unit"]
    if unit not in TIME_UNITS:
        errors["time_unit"] = k("insight.clv.error_unit")
    if form["model"] not in clv.MODELS:
        errors["model"] = k("insight.clv.error_model")
    try:
        horizon = int(form["horizon"])
    except ValueError:
        horizon = 0
    if not 1 <= horizon <= MAX_HORIZON.get(unit, MAX_HORIZON["day"]):
        errors["horizon"] = k("insight.clv.error_horizon")
    return errors


def _score_and_store(request: Request, form: dict[str, str]) -> int:
    """Fit and score as ``growthwheel clv score`` does, then replace ``customer_scores`` on the
    warehouse writer thread. Returns the number of customers scored."""
    owner = warehouse(request)
    currency: str = request.app.state.cfg.shop().currency
    with owner.read() as con:
        scores = clv.compute_scores(con, horizon=int(form["horizon"]), time_unit=form["time_unit"],
                                    model=form["model"], currency=currency)
    stored: int = owner.run_write(lambda write: clv.write_scores(write, scores))
    return stored


@router.post("/insight/clv", response_class=HTMLResponse)
async def compute_clv(request: Request, user: PageUser) -> Response:
    """Compute the scores (operators and admins; the form carries the CSRF token): horizon,
    time unit and model as the CLI's ``clv score`` options. A shop whose data the models cannot
    fit (no repeat buyers, no positive spend) gets the reason on the page."""
    await check_csrf(request)
    if not can_score(user):
        context = await run_in_threadpool(_clv_context, request, user, 0, dict(DEFAULT_CLV_FORM), {}, None)
        context["refused"] = True
        return render(request, "insight/clv.html.j2", context, user=user, status=403)
    data = await request.form()
    form = {name: str(data.get(name) or "").strip()[:20] for name in DEFAULT_CLV_FORM}
    errors = _clv_form_errors(form)
    problem = None
    if not errors:
        try:
            await run_in_threadpool(_score_and_store, request, form)
        except GrowthwheelError as exc:
            title = k("insight.clv.cannot_fit") if isinstance(exc, CannotFitError | NoDataError) \
                else k("insight.clv.failed")
            problem = {"title_key": title, "reason": exc.message}
        else:
            return RedirectResponse("/insight/clv", status_code=303)
    context = await run_in_threadpool(_clv_context, request, user, 0, form, errors, problem)
    return render(request, "insight/clv.html.j2", context, user=user, status=422)
