"""REST endpoints of the loyalty domain: the tier ladder, members and their points (moved from
``promotions.api``; paths unchanged).

* ``GET /api/v1/tiers`` (``read``), ``PUT /api/v1/tiers`` (``write``): the ladder.
* ``GET /api/v1/members/{customer_id}`` (``read``): tier, growth value, birthday, points balance,
  lots and the latest ledger moves; ``PUT`` (``write``) sets the birthday.
* ``POST /api/v1/members/{customer_id}/points-adjustments`` (``write``): a manual correction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from growthwheel.accounts.models import utcnow
from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.loyalty import repository
from growthwheel.loyalty import service as loyalty
from growthwheel.loyalty.schemas import AdjustIn, MemberIn, MemberOut, TierIn, TierOut

router = APIRouter(prefix="/api/v1", tags=["loyalty"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Writer = Annotated[Principal, Depends(require_scope("write"))]
RefId = Annotated[str, Path(min_length=1, max_length=64, description="An id.")]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json, code `forbidden`)."},
    422: {"description": "Invalid input; the message names the field (problem+json)."},
}


# ---------------------------------------------------------------------------------------------
# Tiers and members
# ---------------------------------------------------------------------------------------------


@router.get("/tiers", summary="Membership tiers", response_model=list[TierOut], responses=_PROBLEMS)
def list_tiers(_who: Reader, session: DbSession) -> list[TierOut]:
    """The tier ladder, lowest first."""
    return [TierOut.model_validate(t) for t in repository.tiers(session)]


@router.put("/tiers", summary="Replace the tier ladder", response_model=list[TierOut], responses=_PROBLEMS)
def put_tiers(body: list[TierIn], principal: Writer, session: DbSession) -> list[TierOut]:
    """Set the ladder (thresholds strictly increasing) and re-evaluate every member."""
    specs = [loyalty.TierSpec(code=t.code, name=t.name, min_growth=t.min_growth,
                              points_multiplier_bp=t.points_multiplier_bp, free_shipping=t.free_shipping,
                              birthday_batch_id=t.birthday_batch_id) for t in body]
    return [TierOut.model_validate(t) for t in loyalty.set_tiers(session, specs, principal=principal)]


@router.get("/members/{customer_id}", summary="A member's tier and points", response_model=MemberOut,
            responses=_PROBLEMS)
def get_member(customer_id: RefId, _who: Reader, session: DbSession) -> MemberOut:
    """Tier, growth in the window, points balance, lots and the latest ledger moves."""
    return loyalty.member_out(session, customer_id)


@router.put("/members/{customer_id}", summary="Set a member's birthday", response_model=MemberOut,
            responses=_PROBLEMS)
def put_member(customer_id: RefId, body: MemberIn, _who: Writer, session: DbSession) -> MemberOut:
    """Record the birthday used by the birthday coupon job."""
    loyalty.set_birthday(session, customer_id, body.birthday)
    return loyalty.member_out(session, customer_id)


@router.post("/members/{customer_id}/points-adjustments", summary="Adjust points", response_model=MemberOut,
             responses={**_PROBLEMS, 409: {"description": "Would go below zero (`insufficient_points`)."}})
def adjust_points(customer_id: RefId, body: AdjustIn, principal: Writer, session: DbSession) -> MemberOut:
    """A manual correction (audited): positive adds a lot, negative takes soonest-to-expire first."""
    loyalty.adjust_points(session, customer_id, body.delta, utcnow(), note=body.note, principal=principal)
    return loyalty.member_out(session, customer_id)

