"""REST endpoints: price a cart, commit and refund orders, promotions, coupons (tiers, members and
their points: ``loyalty.api``).

* ``POST /api/v1/carts/price`` (``read``): the priced cart, nothing taken.
* ``POST /api/v1/orders`` (``write``): commit, idempotent on ``order_id`` (201; a retry answers
  the stored order with 200 and ``Idempotent-Replayed: true``; another payload is 409).
* ``POST /api/v1/orders/{order_id}/refunds`` (``write``): refund, idempotent on ``refund_id``.
* promotions, coupon batches (generate, issue to customers or a saved segment): reading needs
  ``read``, changing needs ``write``.
* ``GET /api/v1/promotions/{id}/holdout-results`` (``read``): the report of a promotion's
  hold-out (the experiment's results: treated customers against held-out ones).

Pricing and committing place the customer in the hold-out of every promotion (or cart coupon)
that names one and record its exposure on the events spool, like the experiments' assignment
endpoint (see ``promotions.service``).

Limits reached under concurrency answer 409 problem+json with a stable code: ``coupon_used_up``,
``flash_sale_sold_out``, ``promotion_budget_exhausted``, ``insufficient_points``,
``price_changed``, ``order_conflict``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel

from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.errors import request_language
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.api.workers import RemoteWarehouse, checkout_warehouse
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.events import core as events_core
from growthwheel.events import service as events_service
from growthwheel.experiments import repository as experiments_repository
from growthwheel.promotions import coupons, issue_checks, orders, repository, service
from growthwheel.promotions.errors import CouponNotFoundError
from growthwheel.promotions.schemas import (
    BatchCreate,
    BatchOut,
    CartIn,
    CodesOut,
    GenerateIn,
    IssueIn,
    IssueOut,
    IssueWarningOut,
    OrderIn,
    OrderOut,
    PricedCartOut,
    PromotionCreate,
    PromotionOut,
    PromotionUpdate,
    RefundIn,
    RefundOut,
)
from growthwheel.promotions.texts import nudge_text, reason_text
from growthwheel.segments import service as segments_service
from growthwheel.web.i18n import DEFAULT_LANG, HTML_LANG, translator

router = APIRouter(prefix="/api/v1", tags=["promotions"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Writer = Annotated[Principal, Depends(require_scope("write"))]
Warehouse = Annotated[WarehouseOwner, Depends(warehouse)]
CheckoutWarehouse = Annotated[WarehouseOwner | RemoteWarehouse, Depends(checkout_warehouse)]
"""The checkout's hooks into the warehouse: local, or the owner's in a worker (``api/workers.py``)."""
RefId = Annotated[str, Path(min_length=1, max_length=64, description="An id.")]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json, code `forbidden`)."},
    422: {"description": "Invalid input; the message names the field (problem+json)."},
}
_CHECKOUT: dict[int | str, dict[str, Any]] = {
    **_PROBLEMS,
    404: {"description": "Unknown coupon or order (problem+json)."},
    409: {"description": "A limit was reached or the id is taken: `coupon_used_up`, `flash_sale_sold_out`, "
                         "`promotion_budget_exhausted`, `insufficient_points`, `price_changed`, "
                         "`order_conflict` (problem+json)."},
}
_REPLAYED = "A retry of an order already committed: the same answer, header `Idempotent-Replayed: true`."
_NOT_FOUND: dict[int | str, dict[str, Any]] = {**_PROBLEMS, 404: {"description": "Not found (problem+json)."}}


def _cfg(request: Request) -> Settings:
    cfg = request.app.state.cfg
    assert isinstance(cfg, Settings)
    return cfg


# _commit_here: the checkout endpoints commit their unit of work themselves, in the worker thread
# that took the row locks (coupon batch, promotion, points account, API key). Left to the request's
# session dependency, the commit would run after a hop back to the event loop and would need a
# free worker thread; under a stampede on one hot row every worker thread can be waiting for that
# row's lock, held by requests waiting for a thread to commit: a deadlock until pool timeouts.


def _answer(model: BaseModel, status_code: int = status.HTTP_200_OK,
            headers: dict[str, str] | None = None) -> Response:
    """The checkout's answer, serialised once: a model built here from checked values is not
    validated again against the route's ``response_model`` (which still documents it)."""
    return Response(model.model_dump_json(), status_code=status_code, headers=headers,
                    media_type="application/json")


def _segments_of(owner: WarehouseOwner | RemoteWarehouse) -> service.SegmentsOf:
    if isinstance(owner, RemoteWarehouse):  # a worker of ``serve --workers`` asks the owner
        return owner.customer_segments

    def lookup(customer_id: str) -> frozenset[str]:
        with owner.read() as backend:
            return service.warehouse_segments(backend, customer_id)

    return lookup


_TZ_SECONDS = 10.0
_tz_cache: dict[str, tuple[float, ZoneInfo]] = {}


def _shop_timezone(cfg: Settings) -> ZoneInfo:
    """The shop's time zone (the exposure events' shop-local date), re-read every 10 s at most."""
    now = time.monotonic()
    key = str(cfg.data_dir)
    cached = _tz_cache.get(key)
    if cached is None or cached[0] < now:
        cached = (now + _TZ_SECONDS, ZoneInfo(cfg.shop().timezone))
        _tz_cache[key] = cached
    return cached[1]


def _holdout_hooks(cfg: Settings, owner: WarehouseOwner | RemoteWarehouse) -> service.HoldoutHooks:
    """Targeted hold-outs read their segment's members from the warehouse (cached per refresh);
    exposures go to the events spool, as from ``GET /api/v1/experiments/{key}/assignment``."""
    if isinstance(owner, RemoteWarehouse):  # a worker of ``serve --workers``: the owner spools them
        remote = owner

        def send(events: list[dict[str, Any]]) -> None:
            remote.append_events(events_core.validate_batch(events, _shop_timezone(cfg)).rows)

        return service.HoldoutHooks(read_members=remote.segment_members, record=send,
                                    scope=str(cfg.warehouse_path))
    local = owner

    def read(segment_id: str) -> frozenset[str]:
        with local.read() as backend:
            return experiments_repository.segment_member_ids(backend, segment_id)

    def record(events: list[dict[str, Any]]) -> None:
        events_service.record_events(local, events, _shop_timezone(cfg))

    return service.HoldoutHooks(read_members=read, record=record, scope=str(cfg.warehouse_path))


# ---------------------------------------------------------------------------------------------
# Checkout
# ---------------------------------------------------------------------------------------------


@router.post("/carts/price", summary="Price a cart", response_model=PricedCartOut, responses=_CHECKOUT)
def price_cart(
    body: CartIn, request: Request, _who: Reader, session: DbSession, owner: CheckoutWarehouse,
) -> Response:
    """Lines with allocated discounts, totals, applied promotions and near misses (the nudge to
    show at checkout), points used and points to earn. Nothing is taken."""
    cfg = _cfg(request)
    quote = service.quote(session, body, currency=cfg.shop().currency, segments_of=_segments_of(owner),
                          holdouts=_holdout_hooks(cfg, owner))
    session.commit()  # in this thread: see _commit_here
    out = quote.to_out(body.customer_id)
    headers = {"Vary": "Accept-Language"}
    lang = request_language(request)
    if lang != DEFAULT_LANG:  # nudges and reasons in the client's language (English: the core's own)
        t = translator(lang)
        for nudge in out.nudges:
            nudge.message = nudge_text(t, nudge, cfg.shop().currency)
        for missed in out.not_applied:
            missed.reason = reason_text(t, missed.code)
            if missed.nudge is not None:
                missed.nudge.message = nudge_text(t, missed.nudge, cfg.shop().currency)
        headers["Content-Language"] = HTML_LANG[lang]
    return _answer(out, headers=headers)


@router.post("/orders", summary="Commit an order", status_code=status.HTTP_201_CREATED,
             response_model=OrderOut, responses={**_CHECKOUT, 200: {"description": _REPLAYED}})
def commit_order(
    body: OrderIn, request: Request, _who: Writer, session: DbSession, owner: CheckoutWarehouse,
) -> Response:
    """Re-price the cart and take what it uses — promotion budgets, flash-sale stock, coupons,
    points — atomically; earn points and growth value. Idempotent on ``order_id``."""
    cfg = _cfg(request)
    done = orders.commit(session, body, currency=cfg.shop().currency, segments_of=_segments_of(owner),
                         holdouts=_holdout_hooks(cfg, owner))
    session.commit()  # in this thread: see _commit_here
    if done.replayed:
        return _answer(done.order, status.HTTP_200_OK, {"Idempotent-Replayed": "true"})
    return _answer(done.order, status.HTTP_201_CREATED)


@router.get("/orders/{order_id}", summary="A committed order", response_model=OrderOut, responses=_NOT_FOUND)
def get_order(order_id: RefId, _who: Reader, session: DbSession) -> OrderOut:
    """The order as committed, with its current status and refunded amount."""
    return orders.get_order(session, order_id)


@router.post("/orders/{order_id}/refunds", summary="Refund an order", status_code=status.HTTP_201_CREATED,
             response_model=RefundOut, responses=_CHECKOUT)
def refund_order(order_id: RefId, body: RefundIn, _who: Writer, session: DbSession) -> RefundOut:
    """Refund units of lines (all that is left without ``lines``): the exact paid amount of those
    units, coupons released by their batch rule, points and growth value reversed in proportion.
    Idempotent on ``refund_id``."""
    answer = orders.refund(session, order_id, body)
    session.commit()  # in this thread: see _commit_here
    return answer


# ---------------------------------------------------------------------------------------------
# Promotions
# ---------------------------------------------------------------------------------------------


@router.get("/promotions", summary="Promotions", response_model=list[PromotionOut], responses=_PROBLEMS)
def list_promotions(_who: Reader, session: DbSession) -> list[PromotionOut]:
    """Every promotion with its budget burn and flash-sale stock, newest first."""
    return [PromotionOut.model_validate(p) for p in repository.all_promotions(session)]


@router.post("/promotions", summary="Create a promotion", status_code=status.HTTP_201_CREATED,
             response_model=PromotionOut, responses=_PROBLEMS)
def create_promotion(body: PromotionCreate, principal: Writer, session: DbSession) -> PromotionOut:
    """Store a promotion (see docs/promotions.md for the definition)."""
    row = service.create_promotion(
        session, name=body.name, definition=body.definition, status=body.status, starts_at=body.starts_at,
        ends_at=body.ends_at, budget_count=body.budget_count, budget_amount=body.budget_amount,
        stock=body.stock, principal=principal)
    return PromotionOut.model_validate(row)


@router.get("/promotions/{promotion_id}", summary="A promotion", response_model=PromotionOut,
            responses=_NOT_FOUND)
def get_promotion(promotion_id: RefId, _who: Reader, session: DbSession) -> PromotionOut:
    """One promotion."""
    return PromotionOut.model_validate(service.get_promotion(session, promotion_id))


@router.patch("/promotions/{promotion_id}", summary="Change status or schedule", response_model=PromotionOut,
              responses=_NOT_FOUND)
def update_promotion(promotion_id: RefId, body: PromotionUpdate, principal: Writer,
                     session: DbSession) -> PromotionOut:
    """Activate, pause or end a promotion, or move its schedule."""
    row = service.get_promotion(session, promotion_id)
    return PromotionOut.model_validate(service.update_promotion(
        session, row, status=body.status, starts_at=body.starts_at, ends_at=body.ends_at,
        principal=principal))


@router.get("/promotions/{promotion_id}/holdout-results", summary="A promotion's hold-out report",
            response_model=dict[str, Any], responses=_NOT_FOUND)
def promotion_holdout_results(
    promotion_id: RefId, _who: Reader, session: DbSession, owner: Warehouse,
    as_of: Annotated[datetime | None, Query(description="End of the window (default: now, or the stop).")]
    = None,
) -> dict[str, Any]:
    """The promotion's hold-out analysed by the statistics engine: per metric of its hold-out
    experiment (conversion, revenue per customer, …) the treated customers against the held-out
    ones — effects with confidence intervals, adjusted p-values, chance to win — and the warnings
    to read first (sample-ratio mismatch, peeking). 422 when the promotion names no hold-out or
    the hold-out has not started."""
    row = service.get_promotion(session, promotion_id)
    when = None if as_of is None else (as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of)
    with owner.read() as backend:
        return service.holdout_results(session, backend, row, as_of=when)


# ---------------------------------------------------------------------------------------------
# Coupons
# ---------------------------------------------------------------------------------------------


@router.get("/coupon-batches", summary="Coupon batches", response_model=list[BatchOut], responses=_PROBLEMS)
def list_batches(_who: Reader, session: DbSession) -> list[BatchOut]:
    """Every batch with its budget burn."""
    return [BatchOut.model_validate(b) for b in repository.all_batches(session)]


@router.post("/coupon-batches", summary="Create a coupon batch", status_code=status.HTTP_201_CREATED,
             response_model=BatchOut, responses=_PROBLEMS)
def create_batch(body: BatchCreate, principal: Writer, session: DbSession) -> BatchOut:
    """A batch of generated codes (``unique``) or one shared code."""
    row = coupons.create_batch(
        session, name=body.name, definition=body.definition, valid_from=body.valid_from,
        valid_until=body.valid_until, code_mode=body.code_mode, shared_code=body.shared_code,
        budget_count=body.budget_count, budget_amount=body.budget_amount,
        per_customer_limit=body.per_customer_limit, release_on_refund=body.release_on_refund,
        principal=principal)
    return BatchOut.model_validate(row)


@router.get("/coupon-batches/{batch_id}", summary="A coupon batch", response_model=BatchOut,
            responses=_NOT_FOUND)
def get_batch(batch_id: RefId, _who: Reader, session: DbSession) -> BatchOut:
    """One batch."""
    return BatchOut.model_validate(coupons.get_batch(session, batch_id))


@router.post("/coupon-batches/{batch_id}/codes", summary="Generate codes",
             status_code=status.HTTP_201_CREATED, response_model=CodesOut, responses=_NOT_FOUND)
def generate_codes(batch_id: RefId, body: GenerateIn, principal: Writer, session: DbSession) -> CodesOut:
    """Generate single-use bearer codes for a ``unique`` batch."""
    batch = coupons.get_batch(session, batch_id)
    return CodesOut(codes=coupons.generate_codes(session, batch, body.count, principal=principal))


@router.post("/coupon-batches/{batch_id}/issue", summary="Issue codes to customers or a segment",
             response_model=IssueOut, responses=_NOT_FOUND)
def issue_codes(batch_id: RefId, body: IssueIn, principal: Writer, session: DbSession,
                owner: Warehouse, request: Request) -> IssueOut:
    """Give each customer (``customer_ids``) or each current member of a saved segment
    (``segment_id``, as of its last refresh) their own code; once per ``issue_key``."""
    batch = coupons.get_batch(session, batch_id)
    if (body.customer_ids is None) == (body.segment_id is None):
        raise InvalidArgumentError("customer_ids / segment_id: give exactly one of them")
    key = body.issue_key
    if body.segment_id is not None:
        seg = segments_service.get_segment(session, body.segment_id)
        with owner.read() as backend:
            customer_ids = service.segment_member_ids(backend, seg.id)
        key = key or f"segment:{seg.id}"
    else:
        customer_ids = body.customer_ids or []
    with owner.read() as backend:
        fresh, found = issue_checks.issue_warnings(session, backend, batch, customer_ids, issue_key=key)
    t = translator(request_language(request) or DEFAULT_LANG)
    warnings = [IssueWarningOut(message=issue_checks.warning_text(t, w), **w.as_dict()) for w in found]
    if body.dry_run:
        return IssueOut(issued={}, already=[], would_issue=fresh, warnings=warnings)
    result = coupons.issue(session, batch, customer_ids, issue_key=key, principal=principal)
    return IssueOut(issued=result.issued, already=result.already, warnings=warnings)



@router.get("/coupons/{code}", summary="A coupon code", response_model=dict[str, Any], responses=_NOT_FOUND)
def get_code(code: Annotated[str, Path(min_length=1, max_length=40)], _who: Reader,
             session: DbSession) -> dict[str, Any]:
    """A code: its batch, holder, uses and redemptions."""
    row = repository.coupon_code(session, coupons.normalize_code(code))
    if row is None:
        raise CouponNotFoundError(f"code: no coupon {code!r}")
    return service.code_summary(session, row)
