"""REST endpoints of the influencer registry and report (``/api/v1/marketing/influencers``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status

from growthwheel.accounts.service import audit
from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import warehouse
from growthwheel.marketing import service as mkt
from growthwheel.marketing.campaigns.schemas import InfluencerIn
from growthwheel.marketing.influencers import service
from growthwheel.warehouse.owner import WarehouseOwner

router = APIRouter(prefix="/api/v1/marketing/influencers", tags=["marketing"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Editor = Annotated[Principal, Depends(require_scope("write"))]
Key = Annotated[str, Path(min_length=1, max_length=64, description="Influencer id or tracking code.")]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "No such influencer (problem+json)."},
    409: {"description": "Tracking code taken, or (delete) attached to a campaign (problem+json)."},
    422: {"description": "Invalid field, named in the problem (problem+json)."},
}


@router.get("", summary="The influencer registry", responses=_PROBLEMS)
def list_influencers(principal: Reader, session: DbSession) -> dict[str, Any]:
    """Every influencer with tier, cost and tracking link, by followers."""
    return {"influencers": [service.influencer_out(i) for i in service.list_all(session)]}


@router.post("", summary="Register an influencer", status_code=status.HTTP_201_CREATED, responses=_PROBLEMS)
def create_influencer(body: InfluencerIn, principal: Editor, session: DbSession) -> dict[str, Any]:
    """Register an influencer; the tier follows from the followers."""
    inf = service.create(session, body, actor=principal.name)
    audit(session, principal, "marketing.influencer_create", f"influencer:{inf.id}", {"code": inf.code})
    return service.influencer_out(inf)


@router.get("/report", summary="Orders, revenue, new customers and ROI per influencer and tier",
            responses=_PROBLEMS)
def influencer_report(
    principal: Reader,
    session: DbSession,
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    start: Annotated[date, Query(alias="from", description="First day of orders (YYYY-MM-DD).")],
    end: Annotated[date, Query(alias="to", description="Last day of orders (YYYY-MM-DD).")],
    lookback_days: Annotated[int, Query(ge=1, le=mkt.MAX_LOOKBACK_DAYS)] = 30,
    model: Annotated[Literal["first_touch", "last_touch", "linear", "time_decay", "position_based"],
                     Query(description="Attribution model over influencer touches.")] = "last_touch",
    rank_by: Annotated[Literal["roi", "revenue", "orders", "new_customers"], Query()] = "roi",
) -> dict[str, Any]:
    """Each influencer's attributed orders, revenue (minor units), new customers, cost, ROI, CAC
    and rank; the pyramid sums them per tier."""
    infs = service.list_all(session)
    with owner.read() as con:
        return service.report(con, infs, start=start, end=end, lookback_days=lookback_days, model=model,
                              rank_by=rank_by)


@router.get("/{key}", summary="One influencer", responses=_PROBLEMS)
def get_influencer(key: Key, principal: Reader, session: DbSession) -> dict[str, Any]:
    """An influencer by id or tracking code."""
    return service.influencer_out(service.get(session, key))


@router.put("/{key}", summary="Replace an influencer's fields", responses=_PROBLEMS)
def put_influencer(key: Key, body: InfluencerIn, principal: Editor, session: DbSession) -> dict[str, Any]:
    """Replace every field (followers re-tier the influencer at once)."""
    inf = service.update(session, key, body)
    audit(session, principal, "marketing.influencer_update", f"influencer:{inf.id}", {"code": inf.code})
    return service.influencer_out(inf)


@router.delete("/{key}", summary="Remove an influencer", status_code=status.HTTP_204_NO_CONTENT,
               responses=_PROBLEMS)
def delete_influencer(key: Key, principal: Editor, session: DbSession) -> None:
    """Remove an influencer from the registry."""
    inf = service.get(session, key)
    service.delete(session, inf.id)
    audit(session, principal, "marketing.influencer_delete", f"influencer:{inf.id}", {"code": inf.code})
