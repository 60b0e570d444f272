"""REST endpoints for customers: search with cursor pagination, and the profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from growthwheel.api.deps import Principal, require_scope
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.customers import service
from growthwheel.customers.schemas import CustomerPage, CustomerProfile
from growthwheel.errors import InvalidArgumentError
from growthwheel.kit.ids import canonical_id
from growthwheel.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/v1", tags=["customers"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Warehouse = Annotated[WarehouseOwner, Depends(warehouse)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json, code `unauthenticated`)."},
    403: {"description": "Missing the `read` scope (problem+json, code `forbidden`)."},
    422: {"description": "Invalid parameter or cursor (problem+json)."},
}


@router.get(
    "/customers",
    summary="Search customers",
    response_model=CustomerPage,
    responses=_PROBLEMS,
)
def list_customers(
    request: Request,
    principal: Reader,
    owner: Warehouse,
    q: Annotated[
        str,
        Query(
            max_length=200,
            description="Case-insensitive substring of the id, name, email or phone "
            "(email and phone only for roles that may see them).",
        ),
    ] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1000, description="`next_cursor` of the previous page.")
    ] = None,
) -> CustomerPage:
    """Customers sorted by id, each with paid orders, net revenue and last order date.

    Email and phone are masked for analysts.
    """
    currency = request.app.state.cfg.shop().currency
    with owner.read() as con:
        return service.search_customers(
            con, query=q, limit=limit, cursor=cursor,
            can_see_pii=principal.can_see_pii, currency=currency,
        )


@router.get(
    "/customers/{customer_id:path}",
    summary="A customer's profile",
    response_model=CustomerProfile,
    responses={
        **_PROBLEMS,
        404: {"description": "Unknown customer (problem+json, code `customer_not_found`)."},
    },
)
def get_customer(
    request: Request,
    principal: Reader,
    owner: Warehouse,
    customer_id: Annotated[str, Path(max_length=200, description="The shop's customer id.")],
    orders: Annotated[int, Query(ge=0, le=MAX_LIMIT, description="Latest orders to include.")] = (
        service.DEFAULT_TIMELINE
    ),
    events: Annotated[int, Query(ge=0, le=MAX_LIMIT, description="Latest events to include.")] = (
        service.DEFAULT_TIMELINE
    ),
) -> CustomerProfile:
    """Attributes, KPIs (orders, GMV, net revenue, AOV, first/last order, refunds, favourite
    category, channel), the latest orders with their lines and the latest events."""
    try:  # the shop's rule for ids (kit.ids); an id it refuses is no stored customer's
        customer_id = canonical_id(customer_id, "customer_id", 200)
    except InvalidArgumentError:
        raise service.CustomerNotFoundError(f"no customer with id {customer_id!r}") from None
    currency = request.app.state.cfg.shop().currency
    with owner.read() as con:
        return service.customer_profile(
            con, customer_id, can_see_pii=principal.can_see_pii, currency=currency,
            order_limit=orders, event_limit=events,
        )
