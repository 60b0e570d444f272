"""Console pages of the segments domain: the list of saved segments, the segment builder with a live
count, and each segment's page (definition, members, refresh, membership history, CSV export).

* ``GET /segments``: saved segments (name, members, last refresh, tag).
* ``GET /segments/new`` (``?from=<id>`` starts from a saved segment's definition): the builder.
  ``static/segments.js`` draws nested all / any / none-of groups of conditions from the
  definition JSON the page carries and, as the form changes, posts the definition to
  ``POST /segments/preview`` (JSON with the ``X-CSRF-Token`` header), which runs
  :func:`growthwheel.segments.service.preview` and answers the count and a small sample (email and
  phone masked for analysts) or the definition's errors, each with the place in the definition
  (``all[1].window``) so that the builder shows it next to the field.
* ``POST /segments`` (form with CSRF token; operators and admins): save it
  (:func:`growthwheel.segments.service.create_segment`); errors come back next to their field.
* ``GET /segments/{id}``: the definition (the builder, read-only), its members after the last
  refresh, the membership history (entered / left per refresh) and the CSV export (the API's
  ``/api/v1/segments/{id}/members.csv``, masked for analysts).
* ``POST /segments/{id}/refresh`` (form; operators and admins): evaluate and materialise the
  membership on the warehouse writer thread, then back to the segment's page.

Every page needs a signed-in user; every visible string comes from the catalogues
(``i18n/<lang>/segments.json``), keys chosen here are marked with :func:`k`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Message

from growthwheel.api.deps import DbSession, PageUser, Principal, check_csrf
from growthwheel.api.warehouse import warehouse
from growthwheel.customers.pages import EVENT_KEYS, customer_href
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.segments import service
from growthwheel.segments.definition import ATTRIBUTE_OPS, ATTRIBUTES, SegmentDefinitionError
from growthwheel.segments.models import Segment
from growthwheel.segments.service import SegmentExistsError, SegmentNotFoundError
from growthwheel.warehouse.schema import STANDARD_EVENT_TYPES
from growthwheel.web.i18n import Translator, format_count, k
from growthwheel.web.pages import page_translator, render

router = APIRouter(include_in_schema=False)


#: Customers shown in the live preview's sample.
PREVIEW_SAMPLE = 10
#: Refreshes listed in a segment's membership history.
HISTORY_SHOWN = 50
#: Largest definition (bytes of JSON) the builder posts.
MAX_DEFINITION_BYTES = 200_000

#: Labels the builder script shows, by its own name → catalogue key.
BUILDER_KEYS: dict[str, str] = {
    "group_all": k("segments.group.all"),
    "group_any": k("segments.group.any"),
    "group_none": k("segments.group.none"),
    "add_condition": k("segments.builder.add_condition"),
    "add_group": k("segments.builder.add_group"),
    "remove": k("segments.builder.remove"),
    "condition_type": k("segments.builder.condition_type"),
    "type_attribute": k("segments.type.attribute"),
    "type_orders": k("segments.type.orders"),
    "type_events": k("segments.type.events"),
    "type_tag": k("segments.type.tag"),
    "type_score": k("segments.type.score"),
    "type_funnel": k("segments.type.funnel"),
    "funnel_exact": k("segments.builder.funnel_exact"),
    "funnel_at_least": k("segments.builder.funnel_at_least"),
    "field": k("segments.builder.field"),
    "op": k("segments.builder.op"),
    "value": k("segments.builder.value"),
    "list_hint": k("segments.builder.list_hint"),
    "from": k("segments.builder.from"),
    "to": k("segments.builder.to"),
    "op_equals": k("segments.op.equals"),
    "op_in": k("segments.op.in"),
    "op_contains": k("segments.op.contains"),
    "op_between": k("segments.op.between"),
    "op_within": k("segments.op.within"),
    "op_is_set": k("segments.op.is_set"),
    "measure": k("segments.builder.measure"),
    "measure_count": k("segments.measure.count"),
    "measure_amount": k("segments.measure.amount"),
    "measure_units": k("segments.measure.units"),
    "window": k("segments.builder.window"),
    "window_all": k("segments.window.all"),
    "window_last": k("segments.window.last"),
    "unit_days": k("segments.unit.days"),
    "unit_weeks": k("segments.unit.weeks"),
    "unit_months": k("segments.unit.months"),
    "category": k("segments.builder.category"),
    "channel": k("segments.builder.channel"),
    "event": k("segments.builder.event"),
    "tags": k("segments.builder.tags"),
    "match": k("segments.builder.match"),
    "match_any": k("segments.match.any"),
    "match_all": k("segments.match.all"),
    "yes": k("common.yes"),
    "no": k("common.no"),
    "count": k("segments.preview.count"),
    "checking": k("segments.preview.checking"),
    "invalid": k("segments.preview.invalid"),
    "sample": k("segments.preview.sample"),
    "col_customer": k("segments.col.customer"),
    "col_name": k("segments.col.name"),
    "col_email": k("segments.col.email"),
    "col_phone": k("segments.col.phone"),
    "col_city": k("segments.col.city"),
    "col_channel": k("segments.col.channel"),
}
#: Profile attributes, as the builder names them.
ATTRIBUTE_KEYS: dict[str, str] = {
    "customer_id": k("segments.attr.customer_id"),
    "name": k("segments.attr.name"),
    "gender": k("segments.attr.gender"),
    "city": k("segments.attr.city"),
    "province": k("segments.attr.province"),
    "country": k("segments.attr.country"),
    "channel": k("segments.attr.channel"),
    "utm_source": k("segments.attr.utm_source"),
    "utm_medium": k("segments.attr.utm_medium"),
    "utm_campaign": k("segments.attr.utm_campaign"),
    "birthday": k("segments.attr.birthday"),
    "signed_up_at": k("segments.attr.signed_up_at"),
    "accepts_marketing": k("segments.attr.accepts_marketing"),
    "email": k("segments.attr.email"),
    "phone": k("segments.attr.phone"),
}
#: Scores a condition may test, as the builder names them.
SCORE_KEYS: dict[str, str] = {
    "rfm_segment": k("segments.score.rfm_segment"),
    "rfm_class": k("segments.score.rfm_class"),
    "rfm_score": k("segments.score.rfm_score"),
    "r_score": k("segments.score.r_score"),
    "f_score": k("segments.score.f_score"),
    "m_score": k("segments.score.m_score"),
    "lifecycle_stage": k("segments.score.lifecycle_stage"),
    "clv": k("segments.score.clv"),
    "p_alive": k("segments.score.p_alive"),
}
_PROBLEM = re.compile(r"^(\S+): (.+)$")
_TAIL = re.compile(r" \(and \d+ more\)$")


def definition_errors(message: str) -> list[dict[str, str]]:
    """The problems of an ``invalid_segment`` message, each with the place in the definition
    (``all[1].window.last``; ``""`` for the whole definition) and what is wrong there."""
    text = _TAIL.sub("", message.removeprefix("invalid segment definition: "))
    found = []
    for part in text.split("; "):
        match = _PROBLEM.match(part)
        if match and (match.group(1) == "(top)" or re.fullmatch(r"[\w\[\]\.\-]+", match.group(1))):
            path = "" if match.group(1) == "(top)" else match.group(1)
            found.append({"path": path, "message": match.group(2)})
        else:
            found.append({"path": "", "message": part})
    return found


def _can_edit(user: Principal) -> bool:
    return "write" in user.scopes


def _builder_data(request: Request, t: Translator, definition: Any, *, readonly: bool,
                  errors: list[dict[str, str]]) -> dict[str, Any]:
    """What ``segments.js`` draws the builder from: the definition, labels, choices, errors."""
    with warehouse(request).read() as con:
        events = con.table("events")
        found = {str(v) for v in events.select("type").distinct().to_pyarrow().column(0).to_pylist()
                 if v is not None}
    event_types = [*STANDARD_EVENT_TYPES, *sorted(found - set(STANDARD_EVENT_TYPES))]
    return {
        "definition": definition,
        "readonly": readonly,
        "errors": errors,
        "labels": {name: t(key) for name, key in BUILDER_KEYS.items()},
        "attributes": [{"value": name, "label": t(ATTRIBUTE_KEYS[name]), "kind": kind}
                       for name, kind in ATTRIBUTES.items()],
        "attribute_ops": {kind: list(ops) for kind, ops in ATTRIBUTE_OPS.items()},
        "scores": [{"value": name, "label": t(key)} for name, key in SCORE_KEYS.items()],
        "events": [{"value": e, "label": t(EVENT_KEYS[e]) if e in EVENT_KEYS else e} for e in event_types],
        "preview_url": "/segments/preview",
    }


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.cfg.shop().timezone)


def segment_href(segment_id: str) -> str:
    """The console page of a saved segment."""
    return f"/segments/{segment_id}"


# ---------------------------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------------------------


@router.get("/segments", response_class=HTMLResponse)
def segments_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """Every saved segment by name: members and time of the last refresh, tag of a tag rule."""
    zone = _zone(request)
    rows = [
        {"id": s.id, "href": segment_href(s.id), "name": s.name, "tag": s.tag or "",
         "members": format_count(s.members) if s.members is not None else None,
         "refreshed": _local(s.refreshed_at, zone) if s.refreshed_at else None,
         "as_of": s.as_of.isoformat() if s.as_of else "", "created_by": s.created_by}
        for s in service.list_segments(session)
    ]
    return render(request, "segments/index.html.j2", {"segments": rows, "can_edit": _can_edit(user)},
                  user=user)


# ---------------------------------------------------------------------------------------------
# Builder, live count, save
# ---------------------------------------------------------------------------------------------


def _builder_page(request: Request, user: Principal, *, definition: Any, form: dict[str, str],
                  errors: dict[str, str], definition_problems: list[dict[str, str]],
                  status: int = 200) -> HTMLResponse:
    t = page_translator(request)
    context = {
        "form": form,
        "errors": errors,
        "can_edit": _can_edit(user),
        "builder": _builder_data(request, t, definition, readonly=False, errors=definition_problems),
    }
    return render(request, "segments/new.html.j2", context, user=user, status=status)


@router.get("/segments/new", response_class=HTMLResponse)
def new_segment_page(
    request: Request,
    user: PageUser,
    session: DbSession,
    start: Annotated[str | None, Query(alias="from", max_length=200)] = None,
) -> HTMLResponse:
    """The builder, empty (``all`` of nothing: every customer) or with the definition of the
    saved segment ``from``."""
    definition: Any = {"all": []}
    name = ""
    if start:
        try:
            seg = service.get_segment(session, start)
        except SegmentNotFoundError:
            seg = None
        if seg is not None:
            definition, name = seg.definition, seg.name
    form = {"name": name, "tag": "", "description": ""}
    return _builder_page(request, user, definition=definition, form=form, errors={}, definition_problems=[])


def _preview(request: Request, user: Principal, definition: Any) -> tuple[int, dict[str, Any]]:
    owner = warehouse(request)
    t = page_translator(request)
    try:
        with owner.read() as backend:
            ctx = service.context(request.app.state.cfg, backend)
            found = service.preview(backend, definition, ctx, sample=PREVIEW_SAMPLE,
                                    can_see_pii=user.can_see_pii)
    except SegmentDefinitionError as exc:
        return 200, {"ok": False, "errors": definition_errors(exc.message)}
    except GrowthwheelError as exc:
        return 200, {"ok": False, "errors": [{"path": "", "message": _reason(exc, t)}]}
    return 200, {
        "ok": True,
        "count": found.count,
        "text": t(k("segments.preview.count"), count=format_count(found.count),
                  as_of=found.as_of.isoformat()),
        "as_of": found.as_of.isoformat(),
        "masked": not user.can_see_pii,
        "sample": [
            {"customer_id": c.customer_id, "href": customer_href(c.customer_id), "name": c.name or "",
             "email": c.email or "", "phone": c.phone or "", "city": c.city or "",
             "channel": c.channel or ""}
            for c in found.sample
        ],
    }


async def _bounded_body(request: Request, limit: int) -> tuple[bytes | None, Request]:
    """The request body (``None`` past ``limit`` bytes, read no further) and a request that reads
    it again: the CSRF check parses a form body itself, and a stream can be read only once."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None, request
        chunks.append(chunk)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, Request(request.scope, replay)


@router.post("/segments/preview")
async def preview_segment(request: Request, user: PageUser) -> Response:
    """Count a definition (JSON ``{"definition": ...}``, CSRF token in ``X-CSRF-Token``): the count,
    the day it is as of and a sample (masked for analysts), or (``"ok": false``) the errors of the
    definition as drafted so far, each with its place. A body that is not such JSON is a 422."""
    body, request = await _bounded_body(request, MAX_DEFINITION_BYTES)
    problem: dict[str, Any] | None = None
    if body is None:  # refused unread (a preview changes nothing, so before the CSRF check)
        problem = {"ok": False, "errors": [{"path": "", "message": "the definition is too large"}]}
    else:
        await check_csrf(request)  # a form body is parsed from the copy read above
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        if not isinstance(data, dict) or "definition" not in data:
            problem = {"ok": False, "errors": [{"path": "", "message": 'send {"definition": ...}'}]}
    if problem is not None:
        return JSONResponse(problem, status_code=422)
    status, answer = await run_in_threadpool(_preview, request, user, data["definition"])
    return JSONResponse(answer, status_code=status, headers={"Cache-Control": "no-store"})


def _reason(exc: GrowthwheelError, t: Translator) -> str:
    """What went wrong, in the page's language when the error is coded (without the field name:
    the page shows it next to its field)."""
    return t(exc.key, **exc.params) if exc.key else exc.message


def _create(session: Session, user: Principal, form: dict[str, str], definition: Any,
            t: Translator) -> tuple[Segment | None, dict[str, str], list[dict[str, str]]]:
    """Save the segment, or say what is wrong: ``(segment, {}, [])`` or ``(None, {field: message},
    definition problems)``; messages in the language of ``t``."""
    try:
        seg = service.create_segment(session, form["name"], definition, principal=user,
                                     description=form["description"] or None, tag=form["tag"] or None)
    except SegmentDefinitionError as exc:
        return None, {"definition": exc.message}, definition_errors(exc.message)
    except SegmentExistsError as exc:
        return None, {"name": _reason(exc, t)}, []
    except InvalidArgumentError as exc:
        return None, {"tag" if exc.field == "tag" else "name": _reason(exc, t)}, []
    return seg, {}, []


@router.post("/segments", response_class=HTMLResponse)
async def save_segment(request: Request, user: PageUser, session: DbSession) -> Response:
    """Save the builder's definition under a name (operators and admins); with a tag it is a tag
    rule. Back to the builder with the errors next to their fields when it cannot be saved."""
    await check_csrf(request)
    data = await request.form()
    form = {name: str(data.get(name) or "") for name in ("name", "tag", "description")}
    raw = str(data.get("definition") or "")
    if not _can_edit(user):
        return await run_in_threadpool(
            lambda: _builder_page(request, user, definition={"all": []}, form=form,
                                  errors={"save": k("segments.builder.not_allowed")},
                                  definition_problems=[], status=403))
    try:
        definition = json.loads(raw) if len(raw) <= MAX_DEFINITION_BYTES else None
    except ValueError:
        definition = None
    if definition is None:
        return await run_in_threadpool(
            lambda: _builder_page(request, user, definition={"all": []}, form=form,
                                  errors={"definition": k("segments.error.json")},
                                  definition_problems=[], status=422))
    seg, errors, problems = await run_in_threadpool(_create, session, user, form, definition,
                                                    page_translator(request))
    if seg is not None:
        return RedirectResponse(segment_href(seg.id), status_code=303)
    return await run_in_threadpool(
        lambda: _builder_page(request, user, definition=definition, form=form, errors=errors,
                              definition_problems=problems, status=422))


# ---------------------------------------------------------------------------------------------
# One segment: definition, members, refresh, history, export
# ---------------------------------------------------------------------------------------------


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
def segment_page(request: Request, user: PageUser, session: DbSession, segment_id: str) -> HTMLResponse:
    """A saved segment: its definition (read-only builder), members after the last refresh, the
    refreshes that changed them (entered / left) and the CSV export."""
    t = page_translator(request)
    zone = _zone(request)
    try:
        seg = service.get_segment(session, segment_id[:200])
    except SegmentNotFoundError:
        return render(request, "error.html.j2",
                      {"title_key": k("segments.not_found"), "message_key": k("segments.not_found_body"),
                       "back_href": "/segments"}, user=user, status=404)
    view = {
        "id": seg.id, "name": seg.name, "description": seg.description or "", "tag": seg.tag or "",
        "created_by": seg.created_by, "created": _local(seg.created_at, zone),
        "members": format_count(seg.members) if seg.members is not None else None,
        "refreshed": _local(seg.refreshed_at, zone) if seg.refreshed_at else None,
        "as_of": seg.as_of.isoformat() if seg.as_of else "",
        "export_href": f"/api/v1/segments/{seg.id}/members.csv",
        "copy_href": f"/segments/new?from={seg.id}",
    }
    definition = seg.definition
    with warehouse(request).read() as backend:
        history = service.history(backend, seg, HISTORY_SHOWN)
    rows = [{"at": _local(h["at"], zone), "entered": format_count(int(h["entered"])),
             "left": format_count(int(h["left"]))} for h in history]
    context = {
        "segment": view,
        "history": rows,
        "can_edit": _can_edit(user),
        "builder": _builder_data(request, t, definition, readonly=True, errors=[]),
    }
    return render(request, "segments/detail.html.j2", context, user=user)


def _refresh(request: Request, session: Session, user: Principal, segment_id: str) -> str | None:
    """Refresh the segment on the warehouse writer thread; its id, or ``None`` if unknown."""
    owner = warehouse(request)
    try:
        seg = service.get_segment(session, segment_id)
    except SegmentNotFoundError:
        return None
    with owner.read() as backend:
        ctx = service.context(request.app.state.cfg, backend)
    service.refresh_segment(session, seg, ctx, owner.run_write, principal=user)
    return seg.id


@router.post("/segments/{segment_id}/refresh", response_class=HTMLResponse)
async def refresh_segment(request: Request, user: PageUser, session: DbSession, segment_id: str) -> Response:
    """Evaluate the segment now and store who entered and who left (operators and admins)."""
    await check_csrf(request)
    if not _can_edit(user):
        return render(request, "error.html.j2",
                      {"title_key": k("error.forbidden"), "message_key": k("segments.refresh_not_allowed"),
                       "back_href": segment_href(segment_id[:200])}, user=user, status=403)
    found = await run_in_threadpool(_refresh, request, session, user, segment_id[:200])
    if found is None:
        return render(request, "error.html.j2",
                      {"title_key": k("segments.not_found"), "message_key": k("segments.not_found_body"),
                       "back_href": "/segments"}, user=user, status=404)
    return RedirectResponse(segment_href(found), status_code=303)

