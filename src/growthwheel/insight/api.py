"""REST endpoint for the KPI catalogue: the same rows as ``growthwheel kpi --json``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, create_model

from growthwheel.api.deps import Principal, require_scope
from growthwheel.api.warehouse import WarehouseOwner, warehouse
from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.kpis import DIMENSIONS, FIRST_DAY, LAST_DAY, METRICS, kpi_frame, kpi_records
from growthwheel.kit.money import currency_exponent

router = APIRouter(prefix="/api/v1", tags=["kpis"])



def _row_model() -> type[BaseModel]:
    """One KPI row: period, the dimension value (when broken down), every metric and its change."""
    fields: dict[str, Any] = {
        "period": (str, Field(description="First day of the period (ISO date).")),
        **{dim: (str | None, Field(default=None, description=f"The {dim} (with `dimension={dim}`)."))
           for dim in DIMENSIONS},
    }
    for name, metric in METRICS.items():
        kind = "major units" if metric.unit == "money" else metric.unit
        doc = f"{metric.label_en} ({metric.label_zh}; {kind}): {metric.formula}"
        fields[name] = (int | float | None, Field(default=None, description=doc))
    for name in METRICS:
        fields[f"{name}_change"] = (
            float | None,
            Field(default=None, description=f"Relative change of {name} against the previous period."),
        )
    model: type[BaseModel] = create_model(
        "KpiRow", __config__=ConfigDict(extra="allow"), **fields
    )
    return model


KpiRow = _row_model()


class KpiResponse(BaseModel):
    """The KPI rows, exactly as ``growthwheel kpi --json`` prints them, with the shop currency."""

    currency: str = Field(description="Money metrics are in major units of this currency.")
    by: str
    dimension: str | None
    start: date | None = Field(alias="from", serialization_alias="from")
    end: date | None = Field(alias="to", serialization_alias="to")
    rows: list[KpiRow]  # type: ignore[valid-type]

    model_config = ConfigDict(populate_by_name=True)


@router.get(
    "/kpis",
    summary="KPIs by period",
    response_model=KpiResponse,
    response_model_exclude_unset=True,
    response_model_by_alias=True,
    responses={
        401: {"description": "Not authenticated (problem+json)."},
        422: {"description": "Invalid period, dimension or dates (problem+json)."},
    },
)
def get_kpis(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    by: Annotated[Literal["day", "week", "month", "quarter"], Query(description="Period.")] = "month",
    start: Annotated[date | None, Query(alias="from", description="First day (YYYY-MM-DD).")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (YYYY-MM-DD).")] = None,
    dimension: Annotated[
        Literal["channel", "category"] | None, Query(description="Break down by.")
    ] = None,
) -> dict[str, Any]:
    """Every KPI of the catalogue by period (and dimension), with period-over-period change.

    Money in major units of the shop currency; the rows are those of ``growthwheel kpi --json``.
    """
    for name, day in (("from", start), ("to", end)):
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidArgumentError(f"{name}: give a date between {FIRST_DAY} and {LAST_DAY}")
    currency = request.app.state.cfg.shop().currency
    with owner.read() as con:
        frame = kpi_frame(con, by=by, start=start, end=end, dimension=dimension,
                          currency_exponent=currency_exponent(currency))
    return {
        "currency": currency, "by": by, "dimension": dimension,
        "from": start, "to": end, "rows": kpi_records(frame),
    }
