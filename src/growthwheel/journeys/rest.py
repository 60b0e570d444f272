"""REST endpoints under ``/api/v1/journeys``: create, list, get, change the definition, activate,
pause, end, audience preview (with a count) and the report.

Reading needs the ``read`` scope, changing needs ``write`` (audited). A bad definition is a 422
problem+json naming the field (``definition.steps[2].next: …``); a status change the journey's
status does not allow is a 409 (``journey_state``); an unknown journey a 404
(``journey_not_found``). (``journeys/api.py`` holds the public, signed message-link routes.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.config import Settings
from growthwheel.journeys import repository, service
from growthwheel.journeys.models import Journey
from growthwheel.journeys.report import journey_report
from growthwheel.journeys.repository import WarehouseView

router = APIRouter(prefix="/api/v1/journeys", tags=["journeys"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Editor = Annotated[Principal, Depends(require_scope("write"))]
Warehouse = Annotated[WarehouseOwner, Depends(warehouse)]
Ref = Annotated[str, Path(min_length=1, max_length=200, description="The journey's id or name.")]


class JourneyIn(BaseModel):
    """A new journey."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    definition: dict[str, Any]


class DefinitionIn(BaseModel):
    """A definition (a new version, or one to preview)."""

    model_config = ConfigDict(extra="forbid")

    definition: dict[str, Any]
    days: int = Field(default=30, ge=1, le=365, description="preview: look this many days back")


class JourneyOut(BaseModel):
    """A journey."""

    id: str
    name: str
    description: str | None
    status: str
    version: int
    definition: dict[str, Any]
    activated_at: datetime | None
    ended_at: datetime | None
    evaluated_until: datetime | None
    created_by: str
    created_at: datetime


def _out(row: Journey) -> JourneyOut:
    return JourneyOut(
        id=row.id,
        name=row.name,
        description=row.description,
        status=row.status,
        version=row.version,
        definition=dict(row.definition),
        activated_at=row.activated_at,
        ended_at=row.ended_at,
        evaluated_until=row.evaluated_until,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _cfg(request: Request) -> Settings:
    cfg: Settings = request.app.state.cfg
    return cfg


@router.get("", summary="List journeys")
def list_journeys(
    _: Reader,
    session: DbSession,
    status_: Annotated[str | None, Query(alias="status", pattern="^(draft|active|paused|ended)$")] = None,
) -> list[JourneyOut]:
    """Every journey (of one status when given), newest first."""
    return [_out(j) for j in repository.journeys(session, status_)]


@router.post("", summary="Create a journey (draft)", status_code=status.HTTP_201_CREATED)
def create_journey(body: JourneyIn, principal: Editor, session: DbSession) -> JourneyOut:
    """Create a journey in ``draft``."""
    row = service.create_journey(
        session, body.name, body.definition, description=body.description, principal=principal
    )
    return _out(row)


@router.post("/preview", summary="Audience preview: who the trigger hit over the last days")
def preview(
    body: DefinitionIn, request: Request, _: Reader, session: DbSession, owner: Warehouse
) -> dict[str, Any]:
    """The count (and a sample) of customers the definition's trigger would have enrolled."""
    with owner.read() as backend:
        return service.preview(
            session,
            WarehouseView(backend),
            body.definition,
            timezone=_cfg(request).shop().timezone,
            days=body.days,
        )


@router.get("/{ref}", summary="Get a journey")
def get_journey(ref: Ref, _: Reader, session: DbSession) -> JourneyOut:
    """One journey."""
    return _out(service.get_journey(session, ref))


@router.put("/{ref}/definition", summary="Change the definition (a new version)")
def put_definition(ref: Ref, body: DefinitionIn, principal: Editor, session: DbSession) -> JourneyOut:
    """A new version; enrolments already in keep theirs."""
    return _out(service.update_definition(session, ref, body.definition, principal=principal))


@router.post("/{ref}/activate", summary="Activate")
def activate(ref: Ref, principal: Editor, session: DbSession) -> JourneyOut:
    """Start enrolling (and advancing)."""
    return _out(service.change_status(session, ref, "activate", principal=principal))


@router.post("/{ref}/pause", summary="Pause")
def pause(ref: Ref, principal: Editor, session: DbSession) -> JourneyOut:
    """Stop enrolling and advancing until activated again."""
    return _out(service.change_status(session, ref, "pause", principal=principal))


@router.post("/{ref}/end", summary="End")
def end(ref: Ref, principal: Editor, session: DbSession) -> JourneyOut:
    """End the journey for good."""
    return _out(service.change_status(session, ref, "end", principal=principal))


@router.get("/{ref}/report", summary="Report: entered, per step, converted, revenue, uplift vs hold-out")
def report(ref: Ref, request: Request, _: Reader, session: DbSession) -> dict[str, Any]:
    """The journey's report, with the uplift in plain zh and en words."""
    return journey_report(session, service.get_journey(session, ref), currency=_cfg(request).shop().currency)
