"""REST endpoints under ``/api/v1/segments``: schema, preview, saved segments, members, tags.

Reading (schema, preview, list, members export, history, tags) needs the ``read`` scope; saving,
refreshing, deleting and tagging need ``write``. Email and phone are masked in previews and
exports for roles that may not see them (analysts). Refreshes and tag changes run on the server's
warehouse writer thread, after any import already under way.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.segments import service
from growthwheel.segments.definition import definition_json_schema
from growthwheel.segments.schemas import (
    HistoryEntry,
    PreviewOut,
    PreviewRequest,
    RefreshOut,
    RefreshRequest,
    SegmentCreate,
    SegmentOut,
    TagChange,
    TagChangeOut,
    TagOut,
)

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Editor = Annotated[Principal, Depends(require_scope("write"))]
Warehouse = Annotated[WarehouseOwner, Depends(warehouse)]
SegmentId = Annotated[str, Path(max_length=200, description="The segment's id (or its name).")]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json, code `forbidden`)."},
    422: {"description": "Invalid definition or parameter (problem+json, code `invalid_segment` "
                         "or `invalid_argument`)."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **_PROBLEMS, 404: {"description": "Unknown segment (problem+json, code `segment_not_found`)."},
}


def _cfg(request: Request) -> Any:
    return request.app.state.cfg


def _context(request: Request, owner: WarehouseOwner, as_of: date | None) -> Any:
    with owner.read() as backend:
        return service.context(_cfg(request), backend, as_of)


@router.get("/schema", summary="JSON Schema of a segment definition")
def get_schema(_who: Reader) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that definitions follow (see docs/segments.md)."""
    return definition_json_schema()


@router.post("/preview", summary="Count a definition", response_model=PreviewOut, responses=_PROBLEMS)
def post_preview(body: PreviewRequest, request: Request, principal: Reader, owner: Warehouse) -> PreviewOut:
    """How many customers a definition matches and a sample of them, without saving anything."""
    with owner.read() as backend:
        ctx = service.context(_cfg(request), backend, body.as_of)
        return service.preview(backend, body.definition, ctx, sample=body.sample,
                               can_see_pii=principal.can_see_pii)


@router.get("", summary="Saved segments", response_model=list[SegmentOut], responses=_PROBLEMS)
def list_segments(_who: Reader, session: DbSession) -> list[SegmentOut]:
    """Every saved segment (and tag rule), by name, with what its last refresh found."""
    return [SegmentOut.model_validate(s) for s in service.list_segments(session)]


@router.post("", summary="Save a segment", status_code=status.HTTP_201_CREATED, response_model=SegmentOut,
             responses={**_PROBLEMS, 409: {"description": "Name taken (code `segment_exists`)."}})
def create_segment(body: SegmentCreate, principal: Editor, session: DbSession) -> SegmentOut:
    """Save a definition under a unique name; with ``tag`` it is a tag rule. Refresh it to
    materialise its members."""
    row = service.create_segment(session, body.name, body.definition, principal=principal,
                                 description=body.description, tag=body.tag)
    return SegmentOut.model_validate(row)


@router.get("/tags", summary="Tags", response_model=list[TagOut], responses=_PROBLEMS)
def list_tags(_who: Reader, owner: Warehouse) -> list[TagOut]:
    """Every tag with the number of customers carrying it, by source (manual, rule, imported)."""
    with owner.read() as backend:
        return [TagOut(**row) for row in service.list_tags(backend)]


@router.post("/tags/{tag:path}", summary="Add or remove a manual tag", response_model=TagChangeOut,
             responses=_PROBLEMS)
def change_tag(
    tag: Annotated[str, Path(max_length=64, description="The tag.")],
    body: TagChange, principal: Editor, session: DbSession, owner: Warehouse,
) -> TagChangeOut:
    """Give the manual tag to the customers in ``add`` and take it from those in ``remove``
    (all must be known customers, else nothing changes)."""
    return service.change_tag(session, tag, owner.run_write, add=body.add, remove=body.remove,
                              principal=principal)


@router.get("/{segment_id}", summary="A saved segment", response_model=SegmentOut, responses=_NOT_FOUND)
def get_segment(segment_id: SegmentId, _who: Reader, session: DbSession) -> SegmentOut:
    """One saved segment."""
    return SegmentOut.model_validate(service.get_segment(session, segment_id))


@router.delete("/{segment_id}", summary="Delete a saved segment", status_code=status.HTTP_204_NO_CONTENT,
               responses=_NOT_FOUND)
def delete_segment(
    segment_id: SegmentId, principal: Editor, session: DbSession, owner: Warehouse
) -> Response:
    """Delete the segment, its current membership and the tags it set as a rule (its membership
    history stays in the warehouse)."""
    seg = service.get_segment(session, segment_id)
    service.delete_segment(session, seg, owner.run_write, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{segment_id}/refresh", summary="Refresh a segment's membership", response_model=RefreshOut,
             responses=_NOT_FOUND)
def refresh_segment(
    segment_id: SegmentId, request: Request, principal: Editor, session: DbSession, owner: Warehouse,
    body: RefreshRequest | None = None,
) -> RefreshOut:
    """Evaluate the definition now and store who entered and who left (and, for a tag rule, set
    and remove its tag)."""
    seg = service.get_segment(session, segment_id)
    ctx = _context(request, owner, body.as_of if body else None)
    return service.refresh_segment(session, seg, ctx, owner.run_write, principal=principal)


@router.get(
    "/{segment_id}/members.csv", summary="Export the members as CSV",
    response_class=StreamingResponse,
    responses={**_NOT_FOUND, 200: {"content": {"text/csv": {}}, "description": "UTF-8 CSV with a header."}},
)
def export_members(segment_id: SegmentId, principal: Reader, session: DbSession, owner: Warehouse) -> Any:
    """The members of the last refresh with their profile, sorted by id (email and phone masked
    for roles without PII access)."""
    seg = service.get_segment(session, segment_id)
    with owner.read() as backend:
        rows = service.member_rows(backend, seg)
    return StreamingResponse(
        service.csv_chunks(rows, can_see_pii=principal.can_see_pii, zone=ZoneInfo(owner.cfg.shop().timezone)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{seg.id}.csv"'},
    )


@router.get("/{segment_id}/history", summary="Membership changes", response_model=list[HistoryEntry],
            responses=_NOT_FOUND)
def get_history(
    segment_id: SegmentId, _who: Reader, session: DbSession, owner: Warehouse,
    limit: Annotated[int, Query(ge=1, le=500, description="Latest refreshes to show.")] = 50,
) -> list[HistoryEntry]:
    """The refreshes that changed the membership, newest first, with how many entered and left."""
    seg = service.get_segment(session, segment_id)
    with owner.read() as backend:
        return [HistoryEntry(**row) for row in service.history(backend, seg, limit)]
