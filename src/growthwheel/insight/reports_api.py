"""REST endpoints for the customer-insight reports: the same JSON as the CLI's ``--json``.

``GET /api/v1/rfm``, ``/lifecycle``, ``/cohorts`` and ``/funnel`` answer exactly what
``growthwheel rfm | lifecycle | cohorts | funnel --json`` print for the same arguments (money in
major units of the shop currency); ``GET /api/v1/clv/scores`` pages through the warehouse table
``customer_scores`` (written by ``growthwheel clv score``), highest CLV first. Every route needs
the ``read`` scope and reads through the server-owned warehouse on a worker thread (sync routes).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

import ibis
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from growthwheel.api.deps import Principal, require_scope
from growthwheel.api.errors import problem
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.clv import SCORES_TABLE
from growthwheel.insight.kpis import FIRST_DAY, LAST_DAY
from growthwheel.kit.jsonable import json_records
from growthwheel.kit.money import currency_exponent
from growthwheel.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, paginate

router = APIRouter(prefix="/api/v1", tags=["insight"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Owner = Annotated[WarehouseOwner, Depends(warehouse)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "The key lacks the read scope (problem+json)."},
    404: {"description": "No data to report on (problem+json)."},
    422: {"description": "Invalid parameter (problem+json)."},
}
MAX_STEPS = 20
MAX_WINDOW_DAYS = 3650


def _check_days(**days: date | None) -> None:
    for name, day in days.items():
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidArgumentError(f"{name}: give a date between {FIRST_DAY} and {LAST_DAY}")


def _currency(request: Request) -> tuple[str, int]:
    currency: str = request.app.state.cfg.shop().currency
    return currency, currency_exponent(currency)


@router.get("/rfm", summary="RFM segments and value classes", responses=ERRORS)
def get_rfm(
    request: Request,
    _principal: Reader,
    owner: Owner,
    as_of: Annotated[date | None, Query(description="Score as of this day (default: last order).")] = None,
    cut: Annotated[Literal["mean", "median"], Query(description="High/low split of the 8 classes.")] = "mean",
) -> dict[str, Any]:
    """RFM quintile scores summarised into the 11 classic segments, the 8 value classes and the
    R × F grid: the JSON of ``growthwheel rfm --json``."""
    from growthwheel.insight.rfm import last_paid_day, rfm_report

    _check_days(as_of=as_of)
    currency, exponent = _currency(request)
    with owner.read() as con:
        orders = con.table("orders")
        report = rfm_report(orders, as_of or last_paid_day(orders), cut=cut, currency_exponent=exponent)
    return {"currency": currency, **report}


@router.get("/lifecycle", summary="Lifecycle stages and moves", responses=ERRORS)
def get_lifecycle(
    _principal: Reader,
    owner: Owner,
    as_of: Annotated[date | None, Query(description="Stages as of this day (default: last order).")] = None,
    start: Annotated[date | None, Query(description="Also report moves since this day.")] = None,
) -> dict[str, Any]:
    """Lifecycle stages (thresholds learned from the shop's repeat gaps) and, with ``start``, the
    moves between stages since then: the JSON of ``growthwheel lifecycle --json``."""
    from growthwheel.insight.lifecycle import lifecycle_report, thresholds_for
    from growthwheel.insight.rfm import last_paid_day

    _check_days(as_of=as_of, start=start)
    with owner.read() as con:
        orders = con.table("orders")
        day = as_of or last_paid_day(orders)
        if start is not None and start > day:
            raise InvalidArgumentError(f"start: {start} is after as_of {day}")
        th = thresholds_for(orders, end=day)
        return lifecycle_report(orders, day, thresholds=th, start=start)


@router.get("/cohorts", summary="Acquisition cohorts × periods", responses=ERRORS)
def get_cohorts(
    request: Request,
    _principal: Reader,
    owner: Owner,
    by: Annotated[Literal["week", "month"], Query(description="Cohort period.")] = "month",
    mode: Annotated[
        Literal["calendar", "rolling"], Query(description="rolling: periods from each first order.")
    ] = "calendar",
    window_days: Annotated[
        int | None, Query(ge=1, le=MAX_WINDOW_DAYS, description="Rolling period length (7 / 30).")
    ] = None,
    start: Annotated[date | None, Query(alias="from", description="Cohorts acquired from this day.")] = None,
    end: Annotated[date | None, Query(alias="to", description="Ignore orders after this day.")] = None,
    by_channel: Annotated[bool, Query(description="Split cohorts by acquisition channel.")] = False,
) -> dict[str, Any]:
    """Every cohort cell (retention, recurring customers, revenue in major units): the JSON of
    ``growthwheel cohorts --json``."""
    from growthwheel.insight.cohorts import retention_frame

    _check_days(**{"from": start, "to": end})
    currency, exponent = _currency(request)
    with owner.read() as con:
        frame = retention_frame(
            con.table("orders"), by=by, mode=mode, window_days=window_days, start=start, end=end,
            by_channel=by_channel, currency_exponent=exponent,
        )
    return {"currency": currency, "by": by, "mode": mode, "cells": json_records(frame)}


@router.get("/funnel", summary="An ordered funnel over events", responses=ERRORS)
def get_funnel(
    _principal: Reader,
    owner: Owner,
    steps: Annotated[
        str, Query(max_length=2000, description="Event types in order, comma-separated.")
    ] = "view,add_to_cart,checkout,purchase",
    window_days: Annotated[
        float, Query(gt=0, le=MAX_WINDOW_DAYS, description="Conversion window from the first step.")
    ] = 14,
    start: Annotated[date | None, Query(alias="from", description="First day of entries.")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day of entries.")] = None,
    breakdown: Annotated[
        Literal["utm_source", "utm_medium", "utm_campaign", "device"] | None,
        Query(description="Break down by this attribute of the entry event."),
    ] = None,
) -> dict[str, Any]:
    """Entrants per step, conversion, drop-off and time to convert: the JSON of
    ``growthwheel funnel --json`` (``breakdown`` is the CLI's ``--by``)."""
    from growthwheel.insight.funnels import funnel_frame

    _check_days(**{"from": start, "to": end})
    names = [s.strip() for s in steps.split(",") if s.strip()]
    if len(names) > MAX_STEPS:
        raise InvalidArgumentError(f"steps: at most {MAX_STEPS} steps")
    with owner.read() as con:
        frame = funnel_frame(con.table("events"), names, window=timedelta(days=window_days),
                             start=start, end=end, breakdown=breakdown)
    return {"steps": names, "window_days": window_days, "breakdown": breakdown,
            "rows": json_records(frame)}


_MONEY = ("expected_spend", "clv")


@router.get("/clv/scores", summary="Customers by lifetime value", responses=ERRORS, response_model=None)
def get_clv_scores(
    _principal: Reader,
    owner: Owner,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1000, description="next_cursor of the previous page.")
    ] = None,
) -> dict[str, Any] | JSONResponse:
    """The scores of ``growthwheel clv score`` (table ``customer_scores``), highest CLV first
    (ties by customer id); money (``expected_spend``, ``clv``) in major units of ``currency``.
    404 ``no_scores`` until customers have been scored."""
    after = decode_cursor(cursor, (int, str)) if cursor is not None else None
    with owner.read() as con:
        if SCORES_TABLE not in con.list_tables():
            return problem(404, "no_scores", "no customer has been scored yet",
                           hint="run `growthwheel clv score` (with the server stopped)")
        table = con.table(SCORES_TABLE)
        if after is not None:
            top, customer = after
            table = table.filter((table.clv < top) | ((table.clv == top) & (table.customer_id > customer)))
        frame = (table.order_by([ibis.desc("clv"), "customer_id"]).limit(limit + 1)
                 .drop("scored_at").execute())
    rows = json_records(frame)
    items, next_cursor = paginate(rows, limit, key=lambda r: (int(r["clv"]), str(r["customer_id"])))
    for item in items:
        exponent = currency_exponent(item["currency"])
        for name in _MONEY:
            item[name] = round(item[name] / 10**exponent, exponent)
    return {"items": items, "next_cursor": next_cursor}
