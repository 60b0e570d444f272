"""REST endpoints of campaigns (``/api/v1/marketing/campaigns``): CRUD, pacing, review, report."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import HTMLResponse

from growthwheel.accounts.service import audit
from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import warehouse
from growthwheel.config import Settings
from growthwheel.marketing.campaigns import report as html_report
from growthwheel.marketing.campaigns import review, service
from growthwheel.marketing.campaigns.pacing import DEFAULT_TOLERANCE
from growthwheel.marketing.campaigns.schemas import CampaignIn
from growthwheel.warehouse.owner import WarehouseOwner

router = APIRouter(prefix="/api/v1/marketing/campaigns", tags=["marketing"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Editor = Annotated[Principal, Depends(require_scope("write"))]
Owner = Annotated[WarehouseOwner, Depends(warehouse)]
Key = Annotated[str, Path(min_length=1, max_length=200, description="Campaign id or name.")]
AsOf = Annotated[date | None, Query(description="Day to read on (default: last day with a paid order).")]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "No such campaign (problem+json)."},
    409: {"description": "Name taken (problem+json)."},
    422: {"description": "Invalid field, named in the problem (problem+json)."},
}


@router.get("", summary="Campaigns", responses=_PROBLEMS)
def list_campaigns(principal: Reader, session: DbSession) -> dict[str, Any]:
    """Every campaign with its phases and attachments, newest first."""
    return {"campaigns": [service.campaign_out(session, c) for c in service.list_all(session)]}


@router.post("", summary="Create a campaign", status_code=status.HTTP_201_CREATED, responses=_PROBLEMS)
def create_campaign(body: CampaignIn, principal: Editor, session: DbSession) -> dict[str, Any]:
    """Goals, budget by channel, phases (warm_up → peak → after_glow) and attachments."""
    campaign = service.create(session, body, actor=principal.name)
    audit(session, principal, "marketing.campaign_create", f"campaign:{campaign.id}", {"name": campaign.name})
    return service.campaign_out(session, campaign)


@router.get("/signals/behind", summary="Campaigns behind their target pace", responses=_PROBLEMS)
def get_behind(principal: Reader, session: DbSession, owner: Owner, as_of: AsOf = None,
               tolerance: Annotated[float, Query(gt=0, lt=1)] = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Running campaigns whose GMV or new buyers are below ``1 − tolerance`` of the expected pace,
    in the current phase or overall (the signal the alerts domain can use)."""
    from growthwheel.marketing.campaigns import signals

    with owner.read() as con:
        return {"signals": signals.behind_pace(session, con, as_of=as_of, tolerance=tolerance)}


@router.get("/{key}", summary="One campaign", responses=_PROBLEMS)
def get_campaign(key: Key, principal: Reader, session: DbSession) -> dict[str, Any]:
    """A campaign by id or name."""
    return service.campaign_out(session, service.get(session, key))


@router.put("/{key}", summary="Replace a campaign", responses=_PROBLEMS)
def put_campaign(key: Key, body: CampaignIn, principal: Editor, session: DbSession) -> dict[str, Any]:
    """Replace goals, budget, phases and attachments."""
    campaign = service.replace(session, key, body)
    audit(session, principal, "marketing.campaign_update", f"campaign:{campaign.id}", {"name": campaign.name})
    return service.campaign_out(session, campaign)


@router.delete("/{key}", summary="Delete a campaign", status_code=status.HTTP_204_NO_CONTENT,
               responses=_PROBLEMS)
def delete_campaign(key: Key, principal: Editor, session: DbSession) -> None:
    """Delete a campaign with its phases and attachments."""
    campaign = service.get(session, key)
    audit(session, principal, "marketing.campaign_delete", f"campaign:{campaign.id}", {"name": campaign.name})
    service.delete(session, campaign.id)


@router.get("/{key}/pacing", summary="Live pacing against target per phase", responses=_PROBLEMS)
def get_pacing(key: Key, principal: Reader, session: DbSession, owner: Owner, as_of: AsOf = None,
               tolerance: Annotated[float, Query(gt=0, lt=1)] = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """GMV and new buyers per phase: target, expected to date (linear or last year's profile),
    actual, pace, projection and status (behind / on_track / ahead / met / missed)."""
    campaign = service.get(session, key)
    phases = service.plan_phases(service.phases(session, campaign))
    with owner.read() as con:
        return review.pace(con, campaign, phases, as_of=as_of, tolerance=tolerance)


@router.get("/{key}/review", summary="Three-axis review: customers, products, operations",
            responses=_PROBLEMS)
def get_review(key: Key, principal: Reader, session: DbSession, owner: Owner, as_of: AsOf = None
               ) -> dict[str, Any]:
    """New share, repurchase and value of the acquired; hero contribution and active-SKU rate;
    ROI, CAC, cost per order and spend against budget."""
    campaign = service.get(session, key)
    phases = service.plan_phases(service.phases(session, campaign))
    inputs = service.review_inputs(session, campaign)
    with owner.read() as con:
        return review.review(con, campaign, phases, as_of=as_of, **inputs)


@router.get("/{key}/report.html", summary="The review as one self-contained HTML page",
            response_class=HTMLResponse, responses=_PROBLEMS)
def get_report(key: Key, request: Request, principal: Reader, session: DbSession, owner: Owner,
               as_of: AsOf = None) -> HTMLResponse:
    """The review and the pacing, with charts inlined (opens without a network)."""
    cfg: Settings = request.app.state.cfg
    campaign = service.get(session, key)
    phases = service.plan_phases(service.phases(session, campaign))
    inputs = service.review_inputs(session, campaign)
    with owner.read() as con:
        body = review.review(con, campaign, phases, as_of=as_of, **inputs)
        pace = review.pace(con, campaign, phases, as_of=as_of)
    shop = cfg.shop()
    return HTMLResponse(html_report.render(body, pace, currency=shop.currency, shop_name=shop.name))
