"""REST endpoints of recommendations, answered from the precomputed lists in the operational store.

* ``GET /api/v1/recommendations/{customer_id}?limit=10``: the customer's list (``read`` scope);
* ``GET /api/v1/products/{sku}/also-bought?limit=10``: products bought with it (``read``);
* ``GET /api/v1/recommendations/exclusions/list``, ``PUT``/``DELETE
  /api/v1/recommendations/exclusions/{sku}``: SKUs never recommended (out of stock, not for
  sale); changing them needs the ``write`` scope (admins and operators) and is audited.

Nothing here reads the warehouse: the worker's ``recs.refresh`` job computes the lists.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from growthwheel.accounts.models import utcnow
from growthwheel.accounts.service import audit
from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.recs import service

router = APIRouter(prefix="/api/v1", tags=["recommendations"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "Nothing computed for it (problem+json)."},
    422: {"description": "Invalid parameter, named in the problem (problem+json)."},
}

Limit = Annotated[int, Query(ge=1, le=service.STORED, description="How many items (1-20).")]
Sku = Annotated[str, Path(min_length=1, max_length=200, description="The product's SKU.")]


class ExclusionIn(BaseModel):
    """Why a SKU is not recommended."""

    reason: Literal["out_of_stock", "not_for_sale"]


@router.get("/recommendations/exclusions/list", summary="SKUs never recommended", responses=_PROBLEMS)
def get_exclusions(principal: Annotated[Principal, Depends(require_scope("read"))],
                   session: DbSession) -> dict[str, Any]:
    """Every excluded SKU with its reason."""
    return {"exclusions": service.exclusions(session)}


@router.put("/recommendations/exclusions/{sku}", summary="Never recommend a SKU", responses=_PROBLEMS)
def put_exclusion(body: ExclusionIn, principal: Annotated[Principal, Depends(require_scope("write"))],
                  session: DbSession, sku: Sku) -> dict[str, Any]:
    """Out of stock or not for sale: left out of every list from now on."""
    row = service.set_exclusion(session, sku, body.reason, principal.name, utcnow())
    audit(session, principal, "recs.exclude", f"sku:{sku}", {"reason": body.reason})
    return {"sku": row.sku, "reason": row.reason}


@router.delete("/recommendations/exclusions/{sku}", summary="Recommend a SKU again", responses=_PROBLEMS)
def delete_exclusion(principal: Annotated[Principal, Depends(require_scope("write"))], session: DbSession,
                     sku: Sku) -> dict[str, Any]:
    """Lift an exclusion (``removed`` is false when the SKU was not excluded)."""
    removed = service.clear_exclusion(session, sku)
    if removed:
        audit(session, principal, "recs.include", f"sku:{sku}", {})
    return {"sku": sku, "removed": removed}


@router.get("/recommendations/{customer_id}", summary="A customer's recommended products",
            responses=_PROBLEMS)
def get_recommendations(principal: Annotated[Principal, Depends(require_scope("read"))], session: DbSession,
                        customer_id: Annotated[str, Path(min_length=1, max_length=200)],
                        limit: Limit = 10) -> dict[str, Any]:
    """Ranked products (``reason``: replenish, bought_before, similar, popular); a customer without
    history gets the popular products (``source: popular``). Excluded SKUs are left out."""
    try:
        return service.for_customer(session, customer_id, limit)
    finally:
        session.rollback()  # read only: the connection goes back here, not in one more thread hop


@router.get("/products/{sku}/also-bought", summary="Products bought together with a SKU",
            responses=_PROBLEMS)
def get_also_bought(principal: Annotated[Principal, Depends(require_scope("read"))], session: DbSession,
                    sku: Sku, limit: Limit = 10) -> dict[str, Any]:
    """Co-purchased products with lift above 1, by confidence, with support and lift."""
    try:
        return service.also_bought(session, sku, limit)
    finally:
        session.rollback()  # read only (as above)
