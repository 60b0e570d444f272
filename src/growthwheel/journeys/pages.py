"""Console pages of the journeys, and the public pages of message links.

* ``GET /journeys``: every journey with its status, trigger, entrants and conversions.
* ``GET /journeys/new`` and ``POST /journeys/new`` (operators and admins; form with CSRF token):
  the **builder** — name, description and the JSON definition beside its drawing as a flow
  (steps and branches as boxes in rows, see :func:`build_flow`); ``action=check`` draws and validates,
  ``preview`` also counts the audience the trigger hit over the last ``days``, ``save`` creates the
  journey (draft). A definition that does not validate is drawn as far as it can be, with the
  error inside the box of the step it names and under the editor with its field path.
* ``GET /journeys/{ref}``: the journey — status and activate / pause / end buttons, the flow with
  how many enrolments passed each step, the report (entered, per step, converted, revenue, uplift
  against the hold-out with its 95 % interval, in plain words), the audience preview
  (``?preview=<days>``, read-only, for everyone) and, for editors, the definition editor
  (``POST /journeys/{ref}/definition``: a new version) — ``POST /journeys/{ref}/status``.
* Analysts see everything and change nothing (no forms; a POST answers 403).

The public pages (no login, ``api.py``): :func:`unsubscribe_page`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from growthwheel.api.deps import DbSession, PageUser, PageWriter, Principal
from growthwheel.errors import GrowthwheelError
from growthwheel.journeys import definition as d
from growthwheel.journeys import repository, service
from growthwheel.journeys.models import Enrolment, Journey
from growthwheel.journeys.report import MESSAGE_COUNTS, journey_report
from growthwheel.journeys.repository import WarehouseView
from growthwheel.kit.money import currency_exponent
from growthwheel.segments import repository as segments_repository
from growthwheel.web.i18n import format_count, format_money, k
from growthwheel.web.pages import page_language, render

router = APIRouter(include_in_schema=False)
#: The journey report's message columns, as headings.
MESSAGE_KEYS = {
    "queued": k("journeys.report.msg.queued"), "sent": k("journeys.report.msg.sent"),
    "delivered": k("journeys.report.msg.delivered"), "opened": k("journeys.report.msg.opened"),
    "clicked": k("journeys.report.msg.clicked"), "bounced": k("journeys.report.msg.bounced"),
    "unsubscribed": k("journeys.report.msg.unsubscribed"), "skipped": k("journeys.report.msg.skipped"),
    "failed": k("journeys.report.msg.failed"),
}
Ref = Annotated[str, Path(min_length=1, max_length=200)]

CHANNEL_KEYS = {
    "email": k("journeys.channel.email"),
    "sms": k("journeys.channel.sms"),
    "wecom": k("journeys.channel.wecom"),
    "webhook": k("journeys.channel.webhook"),
}
TITLES = {
    "confirm": k("journeys.unsubscribe.title"),
    "done": k("journeys.unsubscribe.done_title"),
    "invalid": k("journeys.link.invalid_title"),
}
STATUS_KEYS = {"draft": k("journeys.status.draft"), "active": k("journeys.status.active"),
               "paused": k("journeys.status.paused"), "ended": k("journeys.status.ended")}
ACTION_KEYS = {"activate": k("journeys.action.activate"), "pause": k("journeys.action.pause"),
               "end": k("journeys.action.end")}
NOTICE_KEYS = {"activate": k("journeys.notice.activate"), "pause": k("journeys.notice.pause"),
               "end": k("journeys.notice.end"), "saved": k("journeys.notice.saved")}
ENROLMENT_KEYS = {"active": k("journeys.enrolment.active"), "held_out": k("journeys.enrolment.held_out"),
                  "completed": k("journeys.enrolment.completed"), "exited": k("journeys.enrolment.exited"),
                  "converted": k("journeys.enrolment.converted"), "failed": k("journeys.enrolment.failed")}
MAX_DEFINITION = 400_000
PREVIEW_DAYS = (7, 30, 90)

#: A win-back journey to start from (the builder's first text).
EXAMPLE: dict[str, Any] = {
    "trigger": {"kind": "lifecycle", "stage": "dormant"},
    "start": "mail",
    "steps": [
        {"id": "mail", "type": "send", "channel": "email", "next": "wait",
         "template": {"texts": {
             "zh": {"subject": "{{ customer.name }}，好久不见", "text": "我们想念您。{{ unsubscribe_url }}"},
             "en": {"subject": "We miss you, {{ customer.name }}",
                    "text": "Come back soon. {{ unsubscribe_url }}"},
         }}},
        {"id": "wait", "type": "wait", "hours": 72, "next": "check"},
        {"id": "check", "type": "condition", "condition": {"kind": "ordered"}, "then": "done", "else": "tag"},
        {"id": "tag", "type": "tag", "tag": "winback-no-reply", "next": "done"},
        {"id": "done", "type": "exit"},
    ],
    "holdout_share": 0.1,
    "reentry": {"policy": "after_days", "days": 90},
    "goal": {"kind": "order", "within_days": 30},
}


def unsubscribe_page(request: Request, state: str, channel: str = "email", status: int = 200) -> HTMLResponse:
    """The page for ``state``: ``confirm`` (a one-button form), ``done`` or ``invalid``."""
    context = {"state": state, "title_key": TITLES[state], "body_class": "login-page",
               "channel_key": CHANNEL_KEYS.get(channel, CHANNEL_KEYS["webhook"]),
               "action": request.url.path}
    response = render(request, "journeys/unsubscribe.html.j2", context, status=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


# ---------------------------------------------------------------------------------------------
# The flow drawing
# ---------------------------------------------------------------------------------------------

# A journey definition drawn as a flow: rows of step boxes, each with what it does and where it
# leads, for the console's builder (``pages.py``). Pure: plain data in, plain data out.
#
# The drawing is made from the raw JSON, so a definition that does not validate is still drawn
# as far as it can be, with the validation error inside the box of the step it names. Rows are
# the longest distance from ``start`` (so an exit shared by several branches sits below all of
# them); steps that cannot be reached come last, marked.

TYPE_KEYS = {
    "wait": k("journeys.step.wait"), "condition": k("journeys.step.condition"),
    "split": k("journeys.step.split"), "send": k("journeys.step.send"), "coupon": k("journeys.step.coupon"),
    "tag": k("journeys.step.tag"), "attribute": k("journeys.step.attribute"),
    "webhook": k("journeys.step.webhook"), "exit": k("journeys.step.exit"),
}
TRIGGER_KEYS = {
    "segment": k("journeys.trigger.segment"), "event": k("journeys.trigger.event"),
    "date": k("journeys.trigger.date"), "lifecycle": k("journeys.trigger.lifecycle"),
    "replenishment": k("journeys.trigger.replenishment"),
    "purchase_count": k("journeys.trigger.purchase_count"),
    "tier_change": k("journeys.trigger.tier_change"),
    "points_expiring": k("journeys.trigger.points_expiring"),
    "coupon_expiring": k("journeys.trigger.coupon_expiring"),
}
CONDITION_KEYS = {
    "ordered": k("journeys.cond.ordered"), "has_tag": k("journeys.cond.has_tag"),
    "attribute": k("journeys.cond.attribute"), "clicked": k("journeys.cond.clicked"),
    "in_segment": k("journeys.cond.in_segment"),
}
_STEP_FIELD = re.compile(r"^definition\.steps\[(\d+)\]")

#: What happened at a step (the step log's outcome), as the report shows it.
OUTCOME_KEYS = {
    "waited": k("journeys.outcome.waited"),
    "exit": k("journeys.outcome.exit"),
    "then": k("journeys.outcome.then"),
    "else": k("journeys.outcome.else"),
    "branch": k("journeys.outcome.branch"),
    "queued": k("journeys.outcome.queued"),
    "issued": k("journeys.outcome.issued"),
    "tagged": k("journeys.outcome.tagged"),
    "untagged": k("journeys.outcome.untagged"),
    "set": k("journeys.outcome.set"),
    "cleared": k("journeys.outcome.cleared"),
    "no_address": k("journeys.outcome.no_address"),
    "coupon_unavailable": k("journeys.outcome.coupon_unavailable"),
    "template_error": k("journeys.outcome.template_error"),
}
#: A send step by its channel.
SEND_KEYS = {"email": k("journeys.flow.send_email"), "sms": k("journeys.flow.send_sms"),
             "wecom": k("journeys.flow.send_wecom"), "webhook": k("journeys.flow.send_webhook")}


@dataclass
class Line:
    """A line of text in a box: a catalogue key and its values (the template translates it)."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Edge:
    """A way out of a box: where to, and its label (``then`` / ``else`` / a branch's share)."""

    target: str
    label: Line | None = None
    known: bool = True


@dataclass
class Box:
    """One step as drawn."""

    id: str
    type: str
    type_key: str
    lines: list[Line]
    edges: list[Edge]
    index: int
    error: str | None = None
    reachable: bool = True
    count: int | None = None


@dataclass
class Flow:
    """The drawing: the trigger box, rows of step boxes, and an error no box holds."""

    trigger: list[Line]
    trigger_error: str | None
    rows: list[list[Box]]
    error: str | None = None

    @property
    def boxes(self) -> list[Box]:
        """Every box, row by row."""
        return [b for row in self.rows for b in row]


def _text(value: Any, limit: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trigger_lines(trigger: Any) -> list[Line]:
    """What the trigger does, in catalogue lines."""
    if not isinstance(trigger, dict):
        return [Line(k("journeys.trigger.missing"))]
    kind = str(trigger.get("kind") or "")
    if kind not in TRIGGER_KEYS:
        return [Line(k("journeys.trigger.unknown"), {"kind": _text(kind)})]
    lines = [Line(TRIGGER_KEYS[kind])]
    shown = ", ".join(f"{name}={_text(value)}" for name, value in sorted(trigger.items())
                      if name != "kind" and value is not None)
    if shown:
        lines.append(Line(k("journeys.flow.params"), {"params": shown}))
    return lines


def _condition(cond: Any) -> Line:
    if not isinstance(cond, dict) or cond.get("kind") not in CONDITION_KEYS:
        return Line(k("journeys.cond.unknown"))
    values = {"tag": _text(cond.get("tag")), "name": _text(cond.get("name")),
              "op": "≠" if cond.get("op") == "ne" else "=", "value": _text(cond.get("value")),
              "step": _text(cond.get("step")), "segment": _text(cond.get("segment_id"))}
    return Line(CONDITION_KEYS[str(cond["kind"])], values)


def _describe(step: dict[str, Any]) -> tuple[list[Line], list[tuple[str, Line | None]]]:
    kind = step.get("type")
    Outs = list[tuple[str, Line | None]]
    nxt: Outs = [(str(step["next"]), None)] if isinstance(step.get("next"), str) else []
    if kind == "wait":
        if step.get("until"):
            return [Line(k("journeys.flow.wait_until"), {"time": _text(step["until"])})], nxt
        hours, minutes = int(step.get("hours") or 0), int(step.get("minutes") or 0)
        return [Line(k("journeys.flow.wait_for"), {"hours": hours, "minutes": minutes})], nxt
    if kind == "condition":
        outs: list[tuple[str, Line | None]] = [(str(step.get("then")), Line(k("journeys.flow.yes"))),
                (str(step.get("else")), Line(k("journeys.flow.no")))]
        return [_condition(step.get("condition"))], outs
    if kind == "split":
        branches = [b for b in step.get("branches") or [] if isinstance(b, dict)]
        total = sum(float(b.get("weight") or 0) for b in branches) or 1.0
        outs = [(str(b.get("next")), Line(k("journeys.flow.share"),
                                          {"share": f"{float(b.get('weight') or 0) / total:.0%}"}))
                for b in branches]
        return [Line(k("journeys.flow.split"))], outs
    if kind == "send":
        texts = (step.get("template") or {}).get("texts") or {}
        first: Any = next(iter(texts.values()), {}) if isinstance(texts, dict) else {}
        subject = first.get("subject") if isinstance(first, dict) else ""
        channel = step.get("channel")
        lines = ([Line(SEND_KEYS[channel])] if isinstance(channel, str) and channel in SEND_KEYS
                 else [Line(k("journeys.flow.send"), {"channel": _text(channel)})])
        if subject:
            lines.append(Line(k("journeys.flow.subject"), {"subject": _text(subject)}))
        if step.get("on_quiet_hours") == "drop":
            lines.append(Line(k("journeys.flow.quiet_drop")))
        return lines, nxt
    if kind == "coupon":
        return [Line(k("journeys.flow.coupon"), {"batch": _text(step.get("batch_id"))})], nxt
    if kind == "tag":
        key = k("journeys.flow.untag") if step.get("action") == "remove" else k("journeys.flow.tag")
        return [Line(key, {"tag": _text(step.get("tag"))})], nxt
    if kind == "attribute":
        if step.get("value") is None:
            return [Line(k("journeys.flow.clear"), {"name": _text(step.get("name"))})], nxt
        return [Line(k("journeys.flow.set"), {"name": _text(step.get("name")),
                                              "value": _text(step.get("value"))})], nxt
    if kind == "webhook":
        return [Line(k("journeys.flow.webhook"), {"event": _text(step.get("event"))})], nxt
    if kind == "exit":
        return [Line(k("journeys.flow.exit"))], []
    return [Line(k("journeys.flow.unknown_type"), {"type": _text(kind)})], nxt


def build_flow(definition: Any, *, error_field: str | None = None, error: str | None = None,
          counts: dict[str, int] | None = None) -> Flow:
    """The drawing of ``definition`` (raw JSON), with ``error`` placed in the box ``error_field``
    names (``definition.steps[2]…``), on the trigger (``definition.trigger…``) or left over."""
    data = definition if isinstance(definition, dict) else {}
    steps = data.get("steps")
    raw = [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
    boxes: dict[str, Box] = {}
    order: list[str] = []
    for index, step in enumerate(raw):
        sid = str(step.get("id") or f"#{index}")
        lines, outs = _describe(step)
        kind = str(step.get("type") or "")
        box = Box(sid, kind, TYPE_KEYS.get(kind, k("journeys.step.unknown")), lines,
                  [Edge(target, label) for target, label in outs], index,
                  count=(counts or {}).get(sid))
        if sid not in boxes:
            boxes[sid] = box
            order.append(sid)
    for box in boxes.values():
        for edge in box.edges:
            edge.known = edge.target in boxes
    # rows: the longest distance from start (bounded, so a cycle cannot loop forever)
    start = str(data.get("start") or "")
    depth: dict[str, int] = {start: 0} if start in boxes else {}
    for _ in range(len(boxes)):
        changed = False
        for sid in list(depth):
            for edge in boxes[sid].edges:
                if edge.known and depth.get(edge.target, -1) < depth[sid] + 1 <= len(boxes):
                    depth[edge.target] = depth[sid] + 1
                    changed = True
        if not changed:
            break
    rows: list[list[Box]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for sid in order:
        if sid in depth:
            rows[depth[sid]].append(boxes[sid])
    lost = [boxes[sid] for sid in order if sid not in depth]
    for box in lost:
        box.reachable = False
    if lost:
        rows.append(lost)
    flow = Flow(trigger_lines(data.get("trigger")), None, [r for r in rows if r])
    if error is not None:
        where = error_field or ""
        found = _STEP_FIELD.match(where)
        target = next((b for b in flow.boxes if found and b.index == int(found.group(1))), None)
        if target is not None:
            target.error = error
        elif where.startswith("definition.trigger"):
            flow.trigger_error = error
        else:
            flow.error = error
    return flow


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _can_edit(user: Principal) -> bool:
    return "write" in user.scopes


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.cfg.shop().timezone)


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return "–"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _currency(request: Request) -> str:
    return str(request.app.state.cfg.shop().currency)


def _money(request: Request, minor: float | int | None) -> str:
    if minor is None:
        return "–"
    currency = _currency(request)
    return format_money(float(minor) / 10 ** currency_exponent(currency), currency,
                        currency_exponent(currency))


def journey_href(row: Journey) -> str:
    """The console page of a journey."""
    return f"/journeys/{row.id}"


def _parse_text(text: str) -> tuple[Any, str | None]:
    """The JSON of the editor, or the error to show under it."""
    if len(text) > MAX_DEFINITION:
        return None, "definition: too long"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"definition: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"


def _preview(request: Request, session: Session, definition: Any, days: int) -> dict[str, Any]:
    owner = getattr(request.app.state, "warehouse", None)
    if owner is None:
        return service.preview(session, WarehouseView(None), definition,
                               timezone=request.app.state.cfg.shop().timezone, days=days)
    with owner.read() as backend:
        return service.preview(session, WarehouseView(backend), definition,
                               timezone=request.app.state.cfg.shop().timezone, days=days)


def _editor(request: Request, session: Session, text: str, action: str, days: int,
            counts: dict[str, int] | None = None) -> dict[str, Any]:
    """Validate (and preview) the editor's text: the flow, the error, the preview."""
    data, error = _parse_text(text)
    field: str | None = "definition" if error else None
    preview: dict[str, Any] | None = None
    if error is None:
        try:
            service.check_definition(data)
            if action == "preview":
                preview = _preview(request, session, data, days)
        except d.DefinitionError as exc:
            field, error = exc.field, exc.reason
        except GrowthwheelError as exc:
            field, error = "definition", exc.message
    drawn = build_flow(data, error_field=field, error=error, counts=counts)
    return {"text": text, "flow": drawn, "error": error, "error_field": field, "preview": preview,
            "valid": error is None, "data": data}


def _dump(definition: Any) -> str:
    return json.dumps(definition, ensure_ascii=False, indent=2)


def _days(value: Any) -> int:
    try:
        days = int(str(value))
    except ValueError:
        return 30
    return min(max(days, 1), 365)


# ---------------------------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------------------------


def _tallies(session: Session) -> dict[str, tuple[int, int]]:
    q = (select(Enrolment.journey_id, func.count(),
                func.sum(case((Enrolment.converted_at.is_not(None), 1), else_=0)))
         .group_by(Enrolment.journey_id))
    return {j: (int(n or 0), int(c or 0)) for j, n, c in session.execute(q)}


@router.get("/journeys", response_class=HTMLResponse)
def journeys_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """Every journey, newest first."""
    zone = _zone(request)
    tallies = _tallies(session)
    rows = []
    for j in repository.journeys(session):
        entered, converted = tallies.get(j.id, (0, 0))
        kind = str((j.definition or {}).get("trigger", {}).get("kind", ""))
        rows.append({"id": j.id, "href": journey_href(j), "name": j.name, "status": j.status,
                     "status_key": STATUS_KEYS[j.status], "version": j.version,
                     "trigger_key": TRIGGER_KEYS.get(kind, k("journeys.trigger.unknown")),
                     "entered": format_count(entered), "converted": format_count(converted),
                     "activated": _local(j.activated_at, zone)})
    context = {"journeys": rows, "can_edit": _can_edit(user)}
    return render(request, "journeys/index.html.j2", context, user=user)


# ---------------------------------------------------------------------------------------------
# Builder (new journey)
# ---------------------------------------------------------------------------------------------


def _builder(request: Request, user: Principal, form: dict[str, Any], editor: dict[str, Any],
             errors: dict[str, str], status: int = 200) -> HTMLResponse:
    context = {"form": form, "editor": editor, "errors": errors, "can_edit": _can_edit(user),
               "preview_days": PREVIEW_DAYS}
    return render(request, "journeys/new.html.j2", context, user=user, status=status)


@router.get("/journeys/new", response_class=HTMLResponse)
def new_journey_page(request: Request, user: PageUser, session: DbSession) -> HTMLResponse:
    """The builder, starting from a win-back example; with ``?segment=<id>`` of a saved segment
    (the customer list's "enrol them in a journey"), triggered by entering that segment."""
    example = EXAMPLE
    seg_id = str(request.query_params.get("segment") or "")[:64]
    if seg_id and segments_repository.segment_by_id(session, seg_id) is not None:
        example = {**EXAMPLE, "trigger": {"kind": "segment", "segment_id": seg_id, "on": "enter"}}
    editor = _editor(request, session, _dump(example), "check", 30)
    return _builder(request, user, {"name": "", "description": "", "days": 30}, editor, {})


@router.post("/journeys/new", response_class=HTMLResponse)
async def new_journey(request: Request, user: PageWriter, session: DbSession) -> Response:
    """Check, preview or save the builder's journey."""
    raw = await request.form()
    name = str(raw.get("name") or "").strip()
    description = str(raw.get("description") or "")
    days = _days(raw.get("days") or 30)
    form: dict[str, Any] = {"name": name, "description": description, "days": days}
    action = str(raw.get("action") or "check")
    text = str(raw.get("definition") or "")

    def work() -> Response:
        editor = _editor(request, session, text, action, days)
        errors: dict[str, str] = {}
        if action == "save" and editor["valid"]:
            if not name or len(name) > 200:
                errors["name"] = k("journeys.error.name")
            else:
                try:
                    row = service.create_journey(session, name, editor["data"],
                                                 description=description or None, principal=user)
                except service.JourneyExistsError:
                    errors["name"] = k("journeys.error.name_taken")
                else:
                    return RedirectResponse(journey_href(row), status_code=303)
        refused = action == "save" and (bool(errors) or not editor["valid"])  # a check answers 200
        return _builder(request, user, form, editor, errors, status=422 if refused else 200)

    return await run_in_threadpool(work)


# ---------------------------------------------------------------------------------------------
# One journey
# ---------------------------------------------------------------------------------------------


def _points(value: Any) -> str:
    """A difference of proportions in percentage points (``+2.5``); ``–`` when there is none."""
    if value is None or value != value:
        return "–"
    return f"{float(value) * 100:+.1f}"


def _report_view(request: Request, report: dict[str, Any]) -> dict[str, Any]:
    lang = page_language(request)

    def side(s: dict[str, Any]) -> dict[str, Any]:
        rate = s["conversion_rate"]
        return {"entered": format_count(s["entered"]), "converted": format_count(s["converted"]),
                "rate": "–" if rate is None else f"{rate:.1%}", "revenue": _money(request, s["revenue"]),
                "per_entrant": _money(request, s["revenue_per_entrant"])}

    uplift = report.get("uplift")
    words: list[str] = []
    numbers: dict[str, Any] = {}
    if uplift:
        words = [uplift["conversion"]["words"][lang], uplift["revenue_per_entrant"]["words"][lang]]
        conv = uplift["conversion"]
        numbers = {"estimate": _points(conv.get("estimate")), "lower": _points(conv.get("ci_lower")),
                   "upper": _points(conv.get("ci_upper")), "significant": bool(conv.get("significant"))}
    else:
        words = [report["uplift_words"][lang]]
    steps = [{"step": s["step"], "outcome": s["outcome"], "outcome_key": OUTCOME_KEYS.get(s["outcome"]),
              "count": format_count(s["enrolments"])}
             for s in report["steps"]]
    statuses = [{"key": ENROLMENT_KEYS.get(name, name), "status": name, "count": format_count(n)}
                for name, n in sorted(report["statuses"].items())]
    groups = [{"name": "treatment", "key": k("journeys.report.group_treatment"), **side(report["treatment"])},
              {"name": "holdout", "key": k("journeys.report.group_holdout"), **side(report["holdout"])}]
    return {"entered": format_count(report["entered"]), "treatment": side(report["treatment"]),
            "holdout": side(report["holdout"]), "groups": groups, "words": words, "uplift": numbers,
            "steps": steps, "statuses": statuses, "message_columns": MESSAGE_COUNTS,
            "message_keys": MESSAGE_KEYS,
            "messages": [{**m, **{name: format_count(m[name]) for name in MESSAGE_COUNTS}}
                         for m in report.get("messages") or []]}


def _step_counts(report: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in report["steps"]:
        counts[s["step"]] = counts.get(s["step"], 0) + int(s["enrolments"])
    return counts


def _detail(request: Request, user: Principal, session: Session, row: Journey, *,
            editor: dict[str, Any] | None = None, preview: dict[str, Any] | None = None,
            preview_days: int = 30, status: int = 200, notice: str | None = None) -> HTMLResponse:
    zone = _zone(request)
    report = journey_report(session, row, currency=_currency(request))
    counts = _step_counts(report)
    if editor is None:
        editor = _editor(request, session, _dump(row.definition), "check", preview_days, counts)
    allowed = [a for a, (sources, _target) in service.TRANSITIONS.items() if row.status in sources]
    context = {
        "j": {"id": row.id, "name": row.name, "description": row.description or "", "status": row.status,
              "status_key": STATUS_KEYS[row.status], "version": row.version,
              "activated": _local(row.activated_at, zone), "ended": _local(row.ended_at, zone),
              "evaluated": _local(row.evaluated_until, zone), "created_by": row.created_by,
              "holdout": f"{float(row.definition.get('holdout_share', 0)):.0%}",
              "goal_days": (row.definition.get("goal") or {}).get("within_days", 30)},
        "actions": [{"action": a, "key": ACTION_KEYS[a]} for a in allowed],
        "report": _report_view(request, report), "editor": editor, "preview": preview,
        "preview_days": preview_days, "preview_choices": PREVIEW_DAYS, "can_edit": _can_edit(user),
        "notice": notice,
    }
    return render(request, "journeys/detail.html.j2", context, user=user, status=status)


@router.get("/journeys/{ref}", response_class=HTMLResponse)
def journey_page(request: Request, ref: Ref, user: PageUser, session: DbSession) -> HTMLResponse:
    """A journey: status, flow with per-step counts, report, audience preview (``?preview=days``)."""
    row = service.get_journey(session, ref)
    asked = request.query_params.get("preview")
    preview = None
    days = 30
    if asked is not None:
        days = _days(asked)
        preview = _preview(request, session, dict(row.definition), days)
    return _detail(request, user, session, row, preview=preview, preview_days=days,
                   notice=NOTICE_KEYS.get(request.query_params.get("done") or ""))


@router.post("/journeys/{ref}/status", response_class=HTMLResponse)
async def change_status(request: Request, ref: Ref, user: PageWriter, session: DbSession) -> Response:
    """Activate, pause or end (409 page when the status does not allow it)."""
    action = str((await request.form()).get("action") or "")

    def work() -> Response:
        row = service.change_status(session, ref, action, principal=user)
        return RedirectResponse(f"{journey_href(row)}?done={action}", status_code=303)

    return await run_in_threadpool(work)


@router.post("/journeys/{ref}/definition", response_class=HTMLResponse)
async def change_definition(request: Request, ref: Ref, user: PageWriter, session: DbSession) -> Response:
    """Check, preview or save (a new version) the edited definition."""
    raw = await request.form()
    action = str(raw.get("action") or "check")
    text = str(raw.get("definition") or "")
    days = _days(raw.get("days") or 30)

    def work() -> Response:
        row = service.get_journey(session, ref)
        editor = _editor(request, session, text, action, days)
        if action == "save" and editor["valid"]:
            service.update_definition(session, ref, editor["data"], principal=user)
            return RedirectResponse(f"{journey_href(row)}?done=saved", status_code=303)
        return _detail(request, user, session, row, editor=editor, preview=editor["preview"],
                       preview_days=days, status=422 if action == "save" else 200)

    return await run_in_threadpool(work)
