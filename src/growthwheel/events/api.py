"""``POST /api/v1/events``: batch capture of behaviour events (API key with the ``ingest`` scope)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse

from growthwheel.api.deps import Principal, require_scope
from growthwheel.api.errors import PROBLEM, problem
from growthwheel.api.warehouse import Owner
from growthwheel.config import Settings
from growthwheel.events import core, service
from growthwheel.events.schemas import EventBatch, EventsAccepted

ingest_scope = require_scope("ingest")
"""The dependency guarding capture (module-level so tests can override it)."""

_PROBLEM_DOC: dict[int | str, dict[str, Any]] = {
    422: {"description": "A bad event: the whole batch is refused; `errors` names each "
                         "`body.events.<index>.<field>`.", "content": {PROBLEM: {}}},
}

router = APIRouter(prefix="/api/v1", tags=["events"])

_TZ_SECONDS = 10.0
_tz_cache: dict[Path, tuple[float, ZoneInfo]] = {}


def _shop_timezone(cfg: Settings) -> ZoneInfo:
    """The shop's time zone, re-read from ``shop.json`` at most every 10 seconds."""
    now = time.monotonic()
    cached = _tz_cache.get(cfg.data_dir)
    if cached is None or cached[0] < now:
        cached = (now + _TZ_SECONDS, ZoneInfo(cfg.shop().timezone))
        _tz_cache[cfg.data_dir] = cached
    return cached[1]


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EventsAccepted,
    responses=_PROBLEM_DOC,
    summary="Capture a batch of 1 to 1,000 events",
)
def post_events(
    batch: EventBatch,
    request: Request,
    owner: Owner,
    _who: Annotated[Principal, Depends(ingest_scope)],
) -> Any:
    """Accept a batch whole or not at all.

    The events are durable when the answer comes (written to the event spool and synced to disk)
    and reach the warehouse about a second later. Re-sending an ``event_id`` never stores it
    twice; ``duplicates`` counts repeats within this batch. UTM parameters come from the event,
    else the page URL, else the referrer (its UTM parameters, else its host: a search engine is
    ``organic``, another site ``referral``).
    """
    events = batch.model_dump(exclude_none=True)["events"]
    shop_tz = _shop_timezone(request.app.state.cfg)
    try:
        accepted = service.record_events(owner, events, shop_tz)
    except core.InvalidEventsError as exc:
        return problem(
            exc.status, exc.code, exc.message,
            errors=[{"location": p.location, "message": p.message} for p in exc.problems],
        )
    return JSONResponse(
        {"accepted": accepted.accepted, "duplicates": accepted.duplicates},
        status_code=status.HTTP_202_ACCEPTED,
    )
