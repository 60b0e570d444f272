"""``GET /api/v1/products/roles?period=…``: the product matrix (traffic drivers, profit makers,
potential products, slow movers, long tail) of a period, as JSON or as a CSV / Excel download.

(``/products/roles`` cannot be mistaken for recommendations' ``/products/{sku}/also-bought``:
the paths differ in length.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from growthwheel import analyst
from growthwheel.api.deps import Principal, require_scope
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.config import Settings
from growthwheel.kit import export
from growthwheel.kit.money import currency_exponent
from growthwheel.products.reads import EXPORT_HEADER, export_rows

router = APIRouter(prefix="/api/v1", tags=["products"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "No orders in the warehouse (problem+json)."},
    422: {"description": "Invalid period or threshold, named in the problem (problem+json)."},
}


@router.get("/products/roles", summary="Product roles: traffic drivers, profit makers, potential…",
            responses=_PROBLEMS)
def get_roles(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    period: Annotated[str, Query(min_length=1, max_length=20,
                                 description="YYYY-MM, YYYY-Qn, YYYY or lastN (N days to the last order).")
                      ] = "last90",
    traffic_entry_lift: Annotated[float | None, Query(gt=0, le=1e6)] = None,
    traffic_min_first_orders: Annotated[int | None, Query(ge=0, le=10**9)] = None,
    profit_margin_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    potential_conversion_lift: Annotated[float | None, Query(gt=0, le=1e6)] = None,
    format: Annotated[Literal["json", "csv", "xlsx"], Query(description="json, csv or xlsx.")] = "json",
) -> Any:
    """Every product of the catalogue (or sold in the period) with its figures (money in minor
    units), its role and every role it meets, why (``explanation.en`` / ``.zh``), the shop-level
    references and thresholds, the SKUs per role (usable as a promotion's ``skus``) and, per role, a
    segment definition of their buyers in the period (for ``POST /api/v1/segments``)."""
    cfg: Settings = request.app.state.cfg
    params: dict[str, Any] = {"period": period, "traffic_entry_lift": traffic_entry_lift,
                              "traffic_min_first_orders": traffic_min_first_orders,
                              "profit_margin_share": profit_margin_share,
                              "potential_conversion_lift": potential_conversion_lift}
    with owner.read() as con:
        answer = analyst.compute("products_roles", con, cfg, params)
    if format == "json":
        return answer
    rows = export_rows(answer, currency_exponent(answer["currency"]))
    name = f"product-roles-{answer['period']['label']}".replace(" ", "-")
    if format == "csv":
        body = "".join(export.csv_chunks(EXPORT_HEADER, rows)).encode("utf-8")
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return Response(export.xlsx_bytes(EXPORT_HEADER, rows, sheet="roles"),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
