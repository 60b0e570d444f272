"""Console pages for customer insight: ``/insight/rfm`` (R × F heatmap and the two segment tables)
, ``/insight/funnel`` (the view → cart → checkout → purchase funnel with conversion and drop-off)
, ``/insight/cohorts`` (monthly or weekly acquisition cohorts: retention heatmap and table) and
``/insight/lifecycle`` (customers per lifecycle stage and the moves between stages).

Every page needs a signed-in user (``current_user_page`` redirects anonymous visitors to the login
form) and reads the warehouse through the server's warehouse owner on a worker thread (sync
routes). The figures are those of :func:`growthwheel.insight.rfm.rfm_report` and
:func:`growthwheel.insight.funnels.funnel_frame`, :func:`growthwheel.insight.cohorts.retention_frame`,
:func:`growthwheel.insight.lifecycle.lifecycle_report`, the same as the CLI's ``--json``;
segment names come from the report in both languages, every other visible string from the
catalogues (the templates call ``t(...)``). Charts are drawn by
``static/app.js`` from a ``<script type="application/json">`` block (no inline script runs).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from growthwheel.api.deps import Principal, current_user_page
from growthwheel.errors import NoDataError
from growthwheel.insight.cohorts import retention_frame
from growthwheel.insight.funnels import DEFAULT_STEPS, funnel_frame
from growthwheel.insight.kpis import FIRST_DAY, LAST_DAY
from growthwheel.insight.lifecycle import NO_STAGE, STAGES, lifecycle_report, thresholds_for
from growthwheel.insight.rfm import last_paid_day, rfm_report
from growthwheel.kit.money import currency_exponent
from growthwheel.warehouse.owner import warehouse
from growthwheel.web.i18n import COOKIE, LANGS, choose_language, format_count, format_money
from growthwheel.web.pages import render

router = APIRouter(include_in_schema=False)

User = Annotated[Principal, Depends(current_user_page)]

#: Conversion window of the funnel page: default and longest (days).
DEFAULT_WINDOW_DAYS = 14
MAX_WINDOW_DAYS = 365
#: Days before ``as_of`` the lifecycle page's moves start from by default.
DEFAULT_MOVES_DAYS = 30


def _lang(request: Request) -> str:
    """The page's language, chosen as :func:`growthwheel.web.pages.render` chooses it."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return str(asked)
    return choose_language(request.cookies.get(COOKIE), request.headers.get("accept-language"))


def parse_day(text: str | None) -> date | None:
    """An ISO date within the warehouse's supported range, else ``None``."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _money(value: float | None, currency: str, exponent: int) -> str:
    return "–" if value is None else format_money(Decimal(str(value)), currency, places=exponent)


def segment_rows(rows: list[dict[str, Any]], *, scheme: str, lang: str, currency: str,
                 exponent: int) -> list[dict[str, Any]]:
    """The rows of a segment table of :func:`rfm_report` as the page shows them: the segment's
    name in the page's language (``classic``: English name / ``label_zh``; ``value``:
    ``label_en`` / Chinese name) with the other language beside it, and formatted figures."""
    shown = []
    for row in rows:
        english = row["segment"] if scheme == "classic" else row["label_en"]
        chinese = row["label_zh"] if scheme == "classic" else row["segment"]
        name, other = (chinese, english) if lang == "zh" else (english, chinese)
        shown.append({
            "key": row["segment"], "name": name, "other": other, "empty": not row["customers"],
            "customers": format_count(row["customers"]), "share": _pct(row["share"]),
            "orders": format_count(row["orders"]),
            "monetary": _money(row["monetary"], currency, exponent),
            "avg_recency_days": _num(row["avg_recency_days"], 1),
            "avg_frequency": _num(row["avg_frequency"], 2),
            "avg_monetary": _money(row["avg_monetary"], currency, exponent),
        })
    return shown


@router.get("/insight/rfm", response_class=HTMLResponse)
def rfm_page(
    request: Request,
    user: User,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """RFM as of a day (default: the last paid order's): customers per R × F cell as a heatmap,
    the 11 classic segments and the 8 value classes (客户价值分类)."""
    lang = _lang(request)
    currency: str = request.app.state.cfg.shop().currency
    exponent = currency_exponent(currency)
    with warehouse(request).read() as con:
        orders = con.table("orders")
        try:
            last = last_paid_day(orders)
        except NoDataError:
            return render(request, "insight_rfm.html.j2", {"report": None, "insight_tab": "rfm"},
                          user=user)
        day = parse_day(as_of) or last
        report = rfm_report(orders, day, currency_exponent=exponent)
    context = {
        "insight_tab": "rfm",
        "report": report,
        "as_of": report["as_of"],
        "customers": format_count(report["customers"]),
        "classic": segment_rows(report["segments"], scheme="classic", lang=lang,
                                currency=currency, exponent=exponent),
        "value": segment_rows(report["value_classes"], scheme="value", lang=lang,
                              currency=currency, exponent=exponent),
        # [F − 1, R − 1, customers]: ECharts heatmap cells (x = F, y = R).
        "cells": [[c["f_score"] - 1, c["r_score"] - 1, c["customers"]] for c in report["grid"]],
    }
    return render(request, "insight_rfm.html.j2", context, user=user)


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


@router.get("/insight/funnel", response_class=HTMLResponse)
def funnel_page(
    request: Request,
    user: User,
    window: Annotated[str | None, Query(alias="window_days", max_length=20)] = None,
) -> HTMLResponse:
    """The shopping funnel (view → add to cart → checkout → purchase) over every event, each
    entrant given ``window_days`` from their first view: entrants per step, conversion, drop-off.
    A window that is not a whole number shows the default; one out of range is brought within
    1 – :data:`MAX_WINDOW_DAYS`."""
    window_days = window_days_of(window)
    with warehouse(request).read() as con:
        frame = funnel_frame(con.table("events"), DEFAULT_STEPS,
                             window=timedelta(days=window_days))
    if frame.empty or not frame["entrants"].iloc[0]:
        return render(request, "insight_funnel.html.j2",
                      {"insight_tab": "funnel", "rows": None, "window_days": window_days}, user=user)
    context = {
        "insight_tab": "funnel",
        "window_days": window_days,
        "rows": funnel_rows(frame),
        "entrants": [int(n) for n in frame["entrants"]],
        "events": [str(e) for e in frame["event"]],
    }
    return render(request, "insight_funnel.html.j2", context, user=user)


#: Cohort periods the page offers.
COHORT_BYS: tuple[str, ...] = ("month", "week")


def cohort_rows(frame: Any, by: str) -> tuple[list[dict[str, Any]], int]:
    """The rows of :func:`retention_frame` (calendar, no channel) grouped per cohort: its label
    (``YYYY-MM`` for months, the Monday's date for weeks), size and one cell per period with the
    retention as text, as a percentage (one decimal) for the heatmap and whether the period is over;
    and the number of periods of the longest-lived cohort."""
    cohorts: dict[Any, dict[str, Any]] = {}
    periods = 0
    for record in frame.to_dict(orient="records"):
        cohort = record["cohort"]
        row = cohorts.setdefault(cohort, {
            "label": cohort.strftime("%Y-%m") if by == "month" else cohort.isoformat(),
            "size": format_count(record["cohort_size"]), "cells": [],
        })
        rate = record["retention"]
        row["cells"].append({
            "period": int(record["period"]), "text": _pct(rate), "complete": bool(record["complete"]),
            "percent": None if rate is None else round(rate * 100, 1),
        })
        periods = max(periods, int(record["period"]) + 1)
    return list(cohorts.values()), periods


@router.get("/insight/cohorts", response_class=HTMLResponse)
def cohorts_page(
    request: Request,
    user: User,
    by: Annotated[str, Query(max_length=10)] = "month",
) -> HTMLResponse:
    """Acquisition cohorts (by month, or by week with ``by=week``) × calendar periods since:
    the share of each cohort buying again in each period, as a heatmap and a table."""
    by = by if by in COHORT_BYS else "month"
    exponent = currency_exponent(request.app.state.cfg.shop().currency)
    with warehouse(request).read() as con:
        try:
            frame = retention_frame(con.table("orders"), by=by, currency_exponent=exponent)
        except NoDataError:
            frame = None
    base = {"insight_tab": "cohorts", "by": by, "bys": list(COHORT_BYS)}
    if frame is None or frame.empty:
        return render(request, "insight_cohorts.html.j2", {**base, "rows": None}, user=user)
    rows, periods = cohort_rows(frame, by)
    cells = [[cell["period"], y, cell["percent"]]
             for y, row in enumerate(rows) for cell in row["cells"] if cell["percent"] is not None]
    context = {**base, "rows": rows, "periods": periods, "cells": cells,
               "labels": [row["label"] for row in rows]}
    return render(request, "insight_cohorts.html.j2", context, user=user)


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
    user: User,
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
            return render(request, "insight_lifecycle.html.j2", {**base, "report": None}, user=user)
        day = parse_day(as_of) or last
        since = parse_day(start)
        if since is None or since > day:
            since = max(FIRST_DAY, day - timedelta(days=DEFAULT_MOVES_DAYS))
        th = thresholds_for(orders, end=day)
        report = lifecycle_report(orders, day, thresholds=th, start=since)
    context = {
        **base,
        "report": report,
        "as_of": report["as_of"],
        "start": since.isoformat(),
        "customers": format_count(report["customers"]),
        "th": report["thresholds"],
        "stages": [{"stage": r["stage"], "customers": format_count(r["customers"]),
                    "share": _pct(r["share"]), "orders": format_count(r["orders"])}
                   for r in report["stages"]],
        "counts": [int(r["customers"]) for r in report["stages"]],
        "stage_ids": list(STAGES),
        "matrix": transition_matrix(report["transitions"]["moves"]),
    }
    return render(request, "insight_lifecycle.html.j2", context, user=user)
