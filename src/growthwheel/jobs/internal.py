"""Routes through which a worker hands warehouse work to the server that owns the warehouse.

Loopback only, and only for a caller holding the token of the server's ``server.json`` (the same
rule as the warehouse's other internal routes); not in the OpenAPI document.

* ``POST /api/v1/internal/jobs/segments/{segment_id}/refresh``: refresh a saved segment on the
  server's warehouse writer (after any import under way);
* ``GET /api/v1/internal/jobs/review?period=week&as_of=YYYY-MM-DD``: render the periodic review;
* ``POST /api/v1/internal/jobs/journeys/tick?now=…``: one journeys tick on the server's reader;
* ``POST /api/v1/internal/jobs/journeys/learn?now=…``: the day's learning of the journeys' triggers;
* ``POST /api/v1/internal/jobs/facts/drain``: the pending acting facts into the warehouse, on the
  server's writer thread;
* ``POST /api/v1/internal/jobs/loyalty/sync``: members from the shop's history (``loyalty.history``).
"""

from __future__ import annotations

import hmac
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from growthwheel.store.db import session_scope

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def local_owner(request: Request) -> Any:
    """The server's warehouse owner, for a local caller holding its token (else 401 / 403)."""
    owner = getattr(request.app.state, "warehouse", None)
    if owner is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the warehouse is not open in this server")
    supplied = request.headers.get("authorization", "")
    if not hmac.compare_digest(supplied.encode(), f"Bearer {owner.token}".encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong server token")
    client = request.client.host if request.client else ""
    address = getattr(owner, "address", None)
    if client not in _LOOPBACK | ({address[0]} if address else set()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "internal routes answer local processes only")
    return owner


Owner = Annotated[Any, Depends(local_owner)]
router = APIRouter(prefix="/api/v1/internal/jobs", include_in_schema=False)


@router.post("/segments/{segment_id}/refresh")
def refresh_segment(segment_id: str, owner: Owner) -> dict[str, Any]:
    """Refresh one saved segment as the worker's scheduled job."""
    from growthwheel.segments import service

    with session_scope(owner.cfg) as session:
        seg = service.get_segment(session, segment_id)
        with owner.read() as backend:
            ctx = service.context(owner.cfg, backend)
        out = service.refresh_segment(session, seg, ctx, owner.run_write, principal=None, actor_name="worker")
    result: dict[str, Any] = out.model_dump(mode="json")
    return result


@router.get("/review")
def review(owner: Owner, period: Annotated[str, Query(pattern="^(week|month|quarter)$")] = "week",
           as_of: date | None = None) -> dict[str, str]:
    """The periodic review as HTML, for the worker's scheduled report."""
    from growthwheel.reports.review import render_review

    shop = owner.cfg.shop()
    with owner.read() as con:
        return {"html": render_review(con, period=period, as_of=as_of, shop_name=shop.name,
                                      currency=shop.currency, cfg=owner.cfg)}


@router.post("/facts/drain")
def facts_drain(owner: Owner) -> dict[str, Any]:
    """Drain the fact outbox into the warehouse (the worker's ``facts.drain`` job)."""
    from growthwheel.facts import service

    def run() -> Any:
        return service.drain_all(lambda: session_scope(owner.cfg), service.direct_importer(owner.cfg))

    done = owner.run_serial(run)
    return {"facts": done.facts, "orders": done.orders, "events": done.events}


@router.post("/loyalty/sync")
def loyalty_sync(owner: Owner) -> dict[str, Any]:
    """Members, growth value, tiers and birthdays from the imported customers and orders."""
    from dataclasses import asdict

    from growthwheel.loyalty import history

    with owner.read() as backend:
        return asdict(history.sync_from_warehouse(lambda: session_scope(owner.cfg), backend))


@router.post("/journeys/learn")
def journeys_learn(owner: Owner, now: datetime | None = None) -> dict[str, Any]:
    """Learn today's lifecycle thresholds and product cycles (the worker's daily job)."""
    from growthwheel.journeys.jobs import learn_on_owner

    return learn_on_owner(owner, now)


@router.post("/journeys/tick")
def journeys_tick(owner: Owner, now: datetime | None = None) -> dict[str, Any]:
    """One journeys tick (triggers, goals, due enrolments) as the worker's scheduled job."""
    from growthwheel.journeys.jobs import tick_on_owner

    return tick_on_owner(owner, now)
