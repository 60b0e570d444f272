"""REST endpoints of reviews and the service queue (``/api/v1/reviews``).

Reading (cases, feedback, analysing texts, templates) needs the ``read`` scope; capturing a review,
syncing and every move of a case need ``write``. Errors are problem+json naming the field (422), a
missing case (404) or a move someone made first (409).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, Field

from growthwheel.accounts.service import audit
from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import warehouse
from growthwheel.errors import InvalidArgumentError
from growthwheel.voice import feedback, service, templates
from growthwheel.voice.aspects import analyse
from growthwheel.warehouse.owner import WarehouseOwner
from growthwheel.warehouse.schema import REVIEWS

router = APIRouter(prefix="/api/v1/reviews", tags=["reviews"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Writer = Annotated[Principal, Depends(require_scope("write"))]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "No such review case (problem+json)."},
    409: {"description": "The case moved already (problem+json)."},
    422: {"description": "Invalid parameter, named in the problem (problem+json)."},
}
_Id = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")


class ReviewIn(BaseModel):
    """One review as the shop's systems send it."""

    review_id: str = _Id
    sku: str = _Id
    rating: int = Field(ge=1, le=5)
    created_at: AwareDatetime
    body: str = Field(default="", max_length=5000)
    title: str | None = Field(default=None, max_length=500)
    language: Literal["zh", "en"] | None = None
    order_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
    customer_id: str | None = Field(default=None, min_length=1, max_length=200,
                                    pattern=r"^[^\x00-\x1f]+$")
    replied: bool = Field(default=False, description="The shop has answered it already elsewhere.")


class AnalyseIn(BaseModel):
    """Texts to read."""

    texts: list[str] = Field(min_length=1, max_length=1000)
    lang: Literal["zh", "en", "auto"] = "auto"


class ReplyIn(BaseModel):
    """A reply as written, or a template's words."""

    text: str | None = Field(default=None, max_length=service.MAX_REPLY)
    template: str | None = Field(default=None, max_length=40)
    lang: Literal["zh", "en"] | None = None


def _analysis_out(a: Any) -> dict[str, Any]:
    return {"lang": a.lang, "score": round(a.score, 4), "label": a.label,
            "aspects": [{"aspect": m.aspect, "polarity": m.polarity, "clause": m.clause} for m in a.aspects]}


def _row(review: ReviewIn) -> dict[str, str | None]:
    return {"review_id": review.review_id, "sku": review.sku, "rating": str(review.rating),
            "created_at": review.created_at.isoformat(), "order_id": review.order_id,
            "customer_id": review.customer_id, "title": review.title, "body": review.body,
            "language": review.language}


@router.post("", summary="Capture a review", status_code=201, responses=_PROBLEMS)
async def capture(request: Request, body: ReviewIn, session: DbSession, principal: Writer,
                  owner: Annotated[WarehouseOwner, Depends(warehouse)]) -> dict[str, Any]:
    """The review goes into the warehouse's ``reviews`` through the one import path (a later import
    of the same ``review_id`` replaces it); a negative, unanswered one opens a case in the queue."""
    from growthwheel.warehouse import ingest

    cfg = request.app.state.cfg
    names = [c.name for c in REVIEWS.inputs]
    row = _row(body)
    rows = pa.table({n: pa.array([row[n]], pa.string()) for n in names})

    def work() -> Any:
        return ingest.import_rows("reviews", rows, "api", cfg=cfg)

    result = await run_in_threadpool(owner.run_serial, work)
    if result.rows_quarantined:
        raise InvalidArgumentError("review: refused by the warehouse's validation (see the quarantine)")
    analysis = analyse([" ".join(filter(None, [body.title or "", body.body]))])[0]
    opened = service.open_cases(session, [{**row, "rating": body.rating, "created_at": body.created_at,
                                           "replied": body.replied}])
    case = service.case_for_review(session, body.review_id)
    audit(session, principal, "review.capture", body.review_id, {"case_opened": bool(opened)})
    return {"review_id": body.review_id, **_analysis_out(analysis),
            "case": None if case is None else service.case_out(case)}


@router.post("/analyse", summary="Sentiment and aspects of texts", responses=_PROBLEMS)
def analyse_texts(body: AnalyseIn, principal: Reader) -> list[dict[str, Any]]:
    """Each text's language, probability of being positive, label and aspects with polarity."""
    return [_analysis_out(a) for a in analyse(body.texts, body.lang)]


@router.post("/sync", summary="Open cases for imported reviews", responses=_PROBLEMS)
async def sync(session: DbSession, principal: Writer,
               owner: Annotated[WarehouseOwner, Depends(warehouse)]) -> dict[str, int]:
    """Reads the warehouse's reviews written after the last sync and opens their cases."""

    def work() -> dict[str, int]:
        with owner.read() as con:
            return service.sync(session, con)

    out = await run_in_threadpool(work)
    audit(session, principal, "review.sync", "reviews", dict(out))
    return out


@router.get("/cases", summary="The service queue", responses=_PROBLEMS)
def list_cases(session: DbSession, principal: Reader,
               status: Annotated[Literal["open", "claimed", "replied", "closed"] | None, Query()] = None,
               owner: Annotated[str | None, Query(max_length=320)] = None,
               sku: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200,
               offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """Cases (due first), with the counts per status, overdue and answered late."""
    cases = service.list_cases(session, status=status, owner=owner, sku=sku, limit=limit, offset=offset)
    return {"summary": service.summary(session), "cases": [service.case_out(c) for c in cases]}


@router.get("/cases/{case_id}", summary="One case", responses=_PROBLEMS)
def get_case(case_id: str, session: DbSession, principal: Reader) -> dict[str, Any]:
    """The case with its time left and suggested template."""
    return service.case_out(service.get_case(session, case_id))


@router.post("/cases/claim-next", summary="Take the case due first", responses=_PROBLEMS)
def claim_next(session: DbSession, principal: Writer) -> dict[str, Any]:
    """The open case due first becomes yours (``case: null`` when the queue is empty)."""
    case = service.claim_next(session, principal.name)
    if case is not None:
        audit(session, principal, "review_case.claim", case.id)
    return {"case": None if case is None else service.case_out(case)}


@router.post("/cases/{case_id}/claim", summary="Take a case", responses=_PROBLEMS)
def claim(case_id: str, session: DbSession, principal: Writer) -> dict[str, Any]:
    """``open`` → ``claimed`` by you; 409 when someone was first."""
    case = service.claim(session, case_id, principal.name)
    audit(session, principal, "review_case.claim", case_id)
    return service.case_out(case)


@router.post("/cases/{case_id}/release", summary="Give a case back", responses=_PROBLEMS)
def release(case_id: str, session: DbSession, principal: Writer) -> dict[str, Any]:
    """``claimed`` → ``open`` (yours, or any for an admin)."""
    case = service.release(session, case_id, principal.name, admin=principal.role == "admin")
    audit(session, principal, "review_case.release", case_id)
    return service.case_out(case)


@router.post("/cases/{case_id}/reply", summary="Answer a case", responses=_PROBLEMS)
def reply(case_id: str, body: ReplyIn, session: DbSession, principal: Writer) -> dict[str, Any]:
    """Your reply to a case you hold (``text``, or a ``template`` in the review's language)."""
    case = service.reply(session, case_id, principal.name, text=body.text, template=body.template,
                         lang=body.lang)
    audit(session, principal, "review_case.reply", case_id, {"template": body.template})
    return service.case_out(case)


@router.post("/cases/{case_id}/close", summary="Close a case without a reply", responses=_PROBLEMS)
def close(case_id: str, session: DbSession, principal: Writer) -> dict[str, Any]:
    """``open`` (or ``claimed`` by you) → ``closed``."""
    case = service.close(session, case_id, principal.name)
    audit(session, principal, "review_case.close", case_id)
    return service.case_out(case)


@router.get("/templates", summary="Reply templates", responses=_PROBLEMS)
def list_templates(principal: Reader) -> dict[str, dict[str, str]]:
    """Every template's words in zh and en."""
    return templates.TEMPLATES


def period(start: date | None, end: date | None, days: int, today: date) -> tuple[date, date]:
    """``[start, end]``: by default the ``days`` days up to yesterday; 422 when reversed or too long."""
    end = end or today - timedelta(days=1)
    start = start or end - timedelta(days=days - 1)
    if start > end:
        raise InvalidArgumentError("start: after end")
    if (end - start).days > 366:
        raise InvalidArgumentError("start: at most 366 days before end")
    return start, end


@router.get("/feedback", summary="Aspects getting worse per SKU", responses=_PROBLEMS)
async def product_feedback(request: Request, principal: Reader,
                           owner: Annotated[WarehouseOwner, Depends(warehouse)],
                           start: Annotated[date | None, Query()] = None,
                           end: Annotated[date | None, Query()] = None,
                           days: Annotated[int, Query(ge=1, le=366)] = 28,
                           sku: Annotated[str | None, Query(max_length=200)] = None) -> dict[str, Any]:
    """For ``[start, end]`` against the period of the same length before: per SKU, the aspects whose
    negative share rose, with quotes; and the SKUs' review counts."""
    from growthwheel.alerts.service import shop_today

    first, last = period(start, end, days, shop_today(request.app.state.cfg))

    def work() -> dict[str, Any]:
        with owner.read() as con:
            rows = feedback.load(con, first, last, sku)
            skus = feedback.sku_summary(con, first, last, sku)
        return {"start": first.isoformat(), "end": last.isoformat(), "skus": skus,
                "worse": [t.as_dict() for t in feedback.trends(rows, first, last)]}

    return await run_in_threadpool(work)
