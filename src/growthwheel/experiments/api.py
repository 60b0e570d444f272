"""REST endpoints under ``/api/v1/experiments``: set-up, life cycle, assignment, status, results.

Reading (list, get, assignment, status, results) needs the ``read`` scope (an API key with it is
what a shop's site uses to ask for a variant); creating, changing, starting and stopping need
``write`` and are audited. ``GET /{key}/assignment`` records an ``experiment_exposure`` event
(``properties = {"experiment": key, "variant": name}``) for every unit it places in a variant,
unless ``expose=false``; the event reaches the warehouse about a second later, like any captured
event.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, status

from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.config import Settings
from growthwheel.events import core
from growthwheel.events import service as events_service
from growthwheel.experiments import repository, service
from growthwheel.experiments.schemas import (
    KEY_PATTERN,
    AssignmentOut,
    ExperimentCreate,
    ExperimentOut,
    ExperimentUpdate,
)
from growthwheel.kit.ids import canonical_id

router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Editor = Annotated[Principal, Depends(require_scope("write"))]
Warehouse = Annotated[WarehouseOwner, Depends(warehouse)]
Key = Annotated[str, Path(pattern=KEY_PATTERN, max_length=64, description="The experiment's key.")]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json, code `forbidden`)."},
    422: {"description": "Invalid field (problem+json, code `validation_error` or `invalid_argument`)."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **_PROBLEMS, 404: {"description": "Unknown experiment (problem+json, code `experiment_not_found`)."},
}
_STATE: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"description": "Not allowed in the current status (`experiment_state`) or no room in the layer "
                         "(`layer_full`)."},
}

AsOf = Annotated[datetime | None, Query(description="End of the window (default: now, or the stop).")]

_TZ_SECONDS = 10.0
_tz_cache: dict[FilePath, tuple[float, ZoneInfo]] = {}


def _cfg(request: Request) -> Settings:
    cfg: Settings = request.app.state.cfg
    return cfg


def _shop_timezone(cfg: Settings) -> ZoneInfo:
    """The shop's time zone (for the exposure events' shop-local date), re-read every 10 s at most."""
    now = time.monotonic()
    cached = _tz_cache.get(cfg.data_dir)
    if cached is None or cached[0] < now:
        cached = (now + _TZ_SECONDS, ZoneInfo(cfg.shop().timezone))
        _tz_cache[cfg.data_dir] = cached
    return cached[1]


def _members_reader(owner: WarehouseOwner) -> service.MemberReader:
    def read(segment_id: str) -> frozenset[str]:
        with owner.read() as backend:
            return repository.segment_member_ids(backend, segment_id)

    return read


@router.get("", summary="Experiments", response_model=list[ExperimentOut], responses=_PROBLEMS)
def list_experiments(
    _who: Reader, session: DbSession,
    status_filter: Annotated[Literal["draft", "running", "stopped"] | None,
                             Query(alias="status", description="Only this status.")] = None,
) -> list[ExperimentOut]:
    """Every experiment and hold-out, newest first."""
    return [ExperimentOut.model_validate(e) for e in service.list_experiments(session, status_filter)]


@router.post("", summary="Create an experiment", status_code=status.HTTP_201_CREATED,
             response_model=ExperimentOut,
             responses={**_PROBLEMS, 409: {"description": "Key taken (code `experiment_exists`)."}})
def create_experiment(body: ExperimentCreate, principal: Editor, session: DbSession) -> ExperimentOut:
    """Save a draft experiment (or a hold-out with ``kind = "holdout"`` and ``holdout_share``)."""
    return ExperimentOut.model_validate(service.create_experiment(session, body, principal=principal))


@router.get("/{key}", summary="An experiment", response_model=ExperimentOut, responses=_NOT_FOUND)
def get_experiment(key: Key, _who: Reader, session: DbSession) -> ExperimentOut:
    """One experiment."""
    return ExperimentOut.model_validate(service.get_experiment(session, key))


@router.patch("/{key}", summary="Change an experiment", response_model=ExperimentOut, responses=_STATE)
def update_experiment(
    key: Key, body: ExperimentUpdate, principal: Editor, session: DbSession
) -> ExperimentOut:
    """Change a draft freely; a running experiment only its name, hypothesis, weights, traffic,
    target, metrics and analysis settings (see docs: changing weights moves some units)."""
    exp = service.get_experiment(session, key)
    return ExperimentOut.model_validate(service.update_experiment(session, exp, body, principal=principal))


@router.post("/{key}/start", summary="Start an experiment", response_model=ExperimentOut, responses=_STATE)
def start_experiment(key: Key, principal: Editor, session: DbSession) -> ExperimentOut:
    """Start a draft: units are assigned from now on."""
    exp = service.get_experiment(session, key)
    return ExperimentOut.model_validate(service.start_experiment(session, exp, principal=principal))


@router.post("/{key}/stop", summary="Stop an experiment", response_model=ExperimentOut, responses=_STATE)
def stop_experiment(key: Key, principal: Editor, session: DbSession) -> ExperimentOut:
    """Stop a running experiment: nobody is assigned any more."""
    exp = service.get_experiment(session, key)
    return ExperimentOut.model_validate(service.stop_experiment(session, exp, principal=principal))


@router.get("/{key}/assignment", summary="The variant of a unit", response_model=AssignmentOut,
            responses=_NOT_FOUND)
def get_assignment(
    key: Key, request: Request, _who: Reader, session: DbSession, owner: Warehouse,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=core.ID_MAX)] = None,
    anonymous_id: Annotated[str | None, Query(min_length=1, max_length=core.ID_MAX)] = None,
    expose: Annotated[bool, Query(description="Record the exposure (default); false only asks.")] = True,
) -> AssignmentOut:
    """The unit's variant (``null`` when it is not in the experiment) and why: ``assigned``,
    ``not_running``, ``not_targeted`` (not in the target segment) or ``not_in_traffic``.

    Give the id the experiment randomises (``customer_id`` or ``anonymous_id``; for a targeted
    experiment also ``customer_id``). The answer never changes for a unit while the set-up stays.
    """
    exp = service.get_experiment(session, key)
    cfg = _cfg(request)
    # the shop's rule for ids (kit.ids), as the events carrying the exposure will get at import
    if customer_id is not None:
        customer_id = canonical_id(customer_id, "customer_id", core.ID_MAX)
    if anonymous_id is not None:
        anonymous_id = canonical_id(anonymous_id, "anonymous_id", core.ID_MAX)

    def record(events: list[dict[str, Any]]) -> None:
        events_service.record_events(owner, events, _shop_timezone(cfg))

    found, recorded = service.assign_and_expose(
        session, exp, customer_id=customer_id, anonymous_id=anonymous_id,
        record=record if expose else None, read_members=_members_reader(owner),
        scope=str(cfg.warehouse_path),
    )
    return AssignmentOut(variant=found.variant, in_experiment=found.in_experiment, reason=found.reason,
                         experiment=exp.key, exposure_recorded=recorded)


def _as_of(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get("/{key}/status", summary="Exposures per variant and the SRM check", responses=_NOT_FOUND)
def get_status(
    key: Key, _who: Reader, session: DbSession, owner: Warehouse,
    as_of: AsOf = None,
) -> dict[str, Any]:
    """Units exposed per variant against the planned split, and the sample-ratio-mismatch test."""
    exp = service.get_experiment(session, key)
    with owner.read() as backend:
        return service.live_status(backend, exp, as_of=_as_of(as_of))


@router.get("/{key}/results", summary="Results of every metric", responses=_NOT_FOUND)
def get_results(
    key: Key, _who: Reader, session: DbSession, owner: Warehouse,
    as_of: AsOf = None,
) -> dict[str, Any]:
    """Per metric: variants (units, mean), comparisons with the control (absolute and relative
    effect, CI, p-value adjusted across metrics, Bayesian chance to win) and the warnings to read
    first (SRM, peeking at a fixed-horizon test, guardrails, units in several variants)."""
    exp = service.get_experiment(session, key)
    with owner.read() as backend:
        return service.results(backend, exp, as_of=_as_of(as_of))
