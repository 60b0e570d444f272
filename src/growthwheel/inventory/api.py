"""REST endpoints of inventory (``/api/v1/inventory``).

* ``GET /api/v1/inventory/plan``: every SKU's forecast, safety stock, reorder point, EOQ, cover,
  turnover, stock-out risk before ``until`` and clearance suggestion, with the backtest's MASE;
* ``GET /api/v1/inventory/at-risk``: the SKUs likely to run out before ``until`` (e.g. a
  campaign's peak, with its expected ``uplift``);
* ``GET /api/v1/inventory/slow-movers``: SKUs with more stock than ``target_cover_days`` of demand;
* ``POST /api/v1/inventory/clearance``: a draft percent-off promotion on slow movers, to open and
  start in the promotions console (``write`` scope, audited).

Quantities are units; costs integer minor units; dates shop-local ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, Field

from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import warehouse
from growthwheel.inventory import service
from growthwheel.promotions import service as promotions
from growthwheel.warehouse.owner import WarehouseOwner

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "No paid orders and no inventory in the warehouse (problem+json)."},
    422: {"description": "Invalid parameter, named in the problem (problem+json)."},
}

Reader = Annotated[Principal, Depends(require_scope("read"))]
Writer = Annotated[Principal, Depends(require_scope("write"))]
Owner = Annotated[WarehouseOwner, Depends(warehouse)]


class PlanQuery(BaseModel):
    """The plan's parameters (all optional)."""

    as_of: date | None = Field(None, description="Plan as of this day (default: the latest data).")
    until: date | None = Field(None, description="Stock-out risk up to this day (default: the horizon).")
    grain: Literal["day", "week"] = "day"
    horizon: int = Field(14, ge=1, le=90, description="Forecast periods.")
    service_level: float = Field(0.95, ge=0.5, lt=1, description="Cycle service level.")
    lead_time_days: float = Field(14, ge=0, le=365, description="Lead time where no receipt tells.")
    order_cost: int = Field(5_000, ge=0, le=10**10, description="Cost of one order, minor units.")
    holding_rate: float = Field(0.25, gt=0, le=5, description="Yearly holding cost / unit cost.")
    uplift: float = Field(1.0, gt=0, le=50, description="Demand multiplier up to `until`.")
    target_cover_days: float = Field(60, ge=1, le=1000, description="Cover beyond this is excess.")
    choose: Literal["sku", "overall"] = "sku"

    def options(self) -> service.PlanOptions:
        """As the service's options."""
        return service.PlanOptions(**self.model_dump())


def _plan(owner: WarehouseOwner, query: PlanQuery) -> dict[str, Any]:
    options = query.options()
    options.check()
    with owner.read() as con:
        return service.plan(con, options)


@router.get("/plan", summary="Forecasts, safety stock, reorder points and risks per SKU",
            responses=_PROBLEMS)
def get_plan(principal: Reader, owner: Owner, query: Annotated[PlanQuery, Query()]) -> dict[str, Any]:
    """The whole plan; items sorted by stock-out risk, highest first."""
    return _plan(owner, query)


@router.get("/at-risk", summary="SKUs likely to run out before a date", responses=_PROBLEMS)
def get_at_risk(principal: Reader, owner: Owner, query: Annotated[PlanQuery, Query()],
                threshold: Annotated[float, Query(ge=0, le=1)] = 0.5) -> dict[str, Any]:
    """Items whose probability of running out before ``until`` is at least ``threshold``."""
    report = _plan(owner, query)
    return {"as_of": report["as_of"], "until": report["until"], "threshold": threshold,
            "items": service.at_risk(report, threshold)}


@router.get("/slow-movers", summary="Slow movers with clearance suggestions", responses=_PROBLEMS)
def get_slow_movers(principal: Reader, owner: Owner,
                    query: Annotated[PlanQuery, Query()]) -> dict[str, Any]:
    """Items with more stock than ``target_cover_days`` of demand (or no sale in that time)."""
    report = _plan(owner, query)
    return {"as_of": report["as_of"], "target_cover_days": query.target_cover_days,
            "items": service.slow_movers(report)}


class ClearanceIn(BaseModel):
    """A clearance draft: percent off the given SKUs."""

    skus: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]],
                    Field(min_length=1, max_length=500)]
    discount_percent: int = Field(ge=1, le=90)
    name: str | None = Field(None, min_length=1, max_length=200)


@router.post("/clearance", summary="Draft a clearance promotion for slow movers",
             status_code=status.HTTP_201_CREATED, responses=_PROBLEMS)
def post_clearance(body: ClearanceIn, principal: Writer, session: DbSession) -> dict[str, Any]:
    """A draft percent-off promotion on ``skus``: nothing is discounted until an operator opens it
    in the promotions console (``console_url``) and starts it."""
    definition = service.clearance_definition(body.skus, body.discount_percent)
    count = len(definition["conditions"]["skus"])
    name = body.name or f"Clearance {body.discount_percent}% off ({count} SKUs)"
    row = promotions.create_promotion(session, name=name, definition=definition, status="draft",
                                      principal=principal)
    return {"promotion_id": row.id, "name": row.name, "status": row.status,
            "definition": definition, "console_url": f"/promotions/{row.id}"}
