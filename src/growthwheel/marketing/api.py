"""REST endpoints of marketing: ad spend imports, attribution and budget plans (``/api/v1/marketing``).

Money is integer minor units of the shop currency; attributed values are fractional minor units.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from growthwheel.accounts.service import audit
from growthwheel.api.deps import DbSession, Principal, check_csrf, require_scope
from growthwheel.api.imports import limited_form, upload_names
from growthwheel.api.warehouse import warehouse
from growthwheel.config import Settings
from growthwheel.errors import InvalidArgumentError
from growthwheel.marketing import mix, service
from growthwheel.marketing.schemas import ALL_MODELS, BudgetRequest, ModelName, PathsRequest
from growthwheel.marketing.spend import PLATFORMS
from growthwheel.warehouse import uploads
from growthwheel.warehouse.owner import WarehouseOwner

router = APIRouter(prefix="/api/v1/marketing", tags=["marketing"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    422: {"description": "Invalid parameter, named in the problem (problem+json)."},
}

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["platform", "files"],
            "properties": {
                "platform": {"type": "string", "enum": list(PLATFORMS)},
                "channel": {"type": "string", "description": "Channel name (default per platform)."},
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
            },
        }}},
    }
}


@router.post("/spend/imports", summary="Import ad platform report exports into ad_spend",
             openapi_extra=_UPLOAD_BODY, responses=_PROBLEMS)
async def import_spend(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("ingest"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    session: DbSession,
) -> dict[str, Any]:
    """Google Ads, Meta Ads Manager or 巨量引擎 report files (``examples/marketing``) are read,
    translated and imported like any import (validated, quarantined, idempotent), then answered."""
    cfg: Settings = request.app.state.cfg
    limited = await limited_form(request)
    try:
        await check_csrf(limited)
        form = await limited.form()
        platform = form.get("platform")
        channel = form.get("channel") or None
        if not isinstance(platform, str) or platform not in PLATFORMS:
            raise InvalidArgumentError(f"platform: one of {', '.join(PLATFORMS)}")
        if channel is not None and not isinstance(channel, str):
            raise InvalidArgumentError("channel: text")
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise InvalidArgumentError("files: attach at least one file")
        names = upload_names(files)
        folder = await run_in_threadpool(uploads.new_folder, cfg.data_dir)
        try:
            paths = [await run_in_threadpool(uploads.save, f.file, folder, f.filename, i)
                     for i, f in enumerate(files, start=1)]
            result = await run_in_threadpool(owner.run_serial, lambda: service.import_spend(
                platform, paths, cfg=cfg, channel=channel, names=names))
        finally:
            uploads.discard(folder)
    finally:
        await limited.close()
    audit(session, principal, "marketing.spend_import", f"import:{result.import_id}",
          {"platform": platform, "files": names})
    return result.to_dict()


@router.get("/spend", summary="Ad spend per channel", responses=_PROBLEMS)
def get_spend(
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    start: Annotated[date, Query(alias="from", description="First day (YYYY-MM-DD).")],
    end: Annotated[date, Query(alias="to", description="Last day (YYYY-MM-DD).")],
    level: Annotated[Literal["channel", "campaign"], Query()] = "channel",
) -> dict[str, Any]:
    """Spend (minor units) per channel or channel / campaign over the days given."""
    from growthwheel.marketing.touchpoints import spend_by_channel

    if end < start:
        raise InvalidArgumentError("to: must be on or after from")
    with owner.read() as con:
        spend = spend_by_channel(con, start=start, end=end, level=level)
    return {"from": start.isoformat(), "to": end.isoformat(), "level": level,
            "rows": [{"channel": k, "spend": v} for k, v in sorted(spend.items())]}


@router.get("/attribution", summary="Attribution of paid orders, every model side by side",
            responses={**_PROBLEMS, 404: {"description": "No paid orders in the period (problem+json)."}})
def get_attribution(
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    start: Annotated[date, Query(alias="from", description="First day of conversions (YYYY-MM-DD).")],
    end: Annotated[date, Query(alias="to", description="Last day of conversions (YYYY-MM-DD).")],
    lookback_days: Annotated[int, Query(ge=1, le=service.MAX_LOOKBACK_DAYS)] = 30,
    level: Annotated[Literal["channel", "campaign", "influencer"], Query()] = "channel",
    models: Annotated[list[ModelName] | None, Query(description="Models (default all).")] = None,
    half_life_days: Annotated[float, Query(gt=0, le=3650)] = 7.0,
    markov_order: Annotated[int, Query(ge=1, le=4)] = 1,
) -> dict[str, Any]:
    """Conversions and value credited per channel by each model, with spend, CAC (spend per
    attributed new customer), ROAS and new-customer share; conventions in ``docs/attribution.md``."""
    with owner.read() as con:
        return service.attribution_report(
            con, start=start, end=end, lookback_days=lookback_days, level=level,
            models=list(models or ALL_MODELS), half_life_days=half_life_days, markov_order=markov_order)


@router.post("/attribution/paths", summary="Attribution of paths given in the request",
             responses=_PROBLEMS)
def post_attribution_paths(
    body: PathsRequest,
    principal: Annotated[Principal, Depends(require_scope("read"))],
) -> dict[str, Any]:
    """Every model over paths sent by the client (e.g. ChannelAttribution's path data)."""
    return service.paths_report(body)


@router.post("/budget/allocate", summary="Split a budget over channels with response curves",
             responses=_PROBLEMS)
def post_budget(
    body: BudgetRequest,
    principal: Annotated[Principal, Depends(require_scope("read"))],
) -> dict[str, Any]:
    """The split that maximises the expected outcome: total hit exactly, reserve held back, bounds
    honoured, equal marginal returns elsewhere; deterministic."""
    return service.budget_plan(body)


class MixBound(BaseModel):
    """Spend bounds of one channel in a plan (minor units)."""

    model_config = ConfigDict(extra="forbid")

    lower: int = Field(0, ge=0, le=10**15)
    upper: int | None = Field(None, ge=0, le=10**15)


class MixPlanRequest(BaseModel):
    """A budget plan on the marketing-mix model fitted over ``from``–``to``."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: date = Field(alias="from", description="First day of the history the model is fitted to.")
    end: date = Field(alias="to", description="Last day of that history.")
    outcome: Literal["new_customers", "revenue"] = "new_customers"
    grain: Literal["day", "week"] = "day"
    total: int = Field(gt=0, le=10**15, description="Budget to split, minor units.")
    reserve_share: float = Field(0.0, ge=0.0, lt=1.0, description="Share held back (机动预算).")
    period_days: int | None = Field(None, ge=1, le=mix.MAX_DAYS,
                                    description="Length of the planned period (default: the history's).")
    bounds: dict[str, MixBound] = Field(default_factory=dict, description="Per channel spend bounds.")
    exclude: list[str] = Field(default_factory=list, max_length=mix.MAX_EXCLUSIONS,
                               description="Days left out of the fit: [channel:]YYYY-MM-DD..YYYY-MM-DD.")


@router.get("/mmm", summary="Marketing-mix model: response per channel with intervals",
            responses={**_PROBLEMS, 404: {"description": "No ad spend or outcome in the period."}})
def get_mmm(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    start: Annotated[date, Query(alias="from", description="First day (YYYY-MM-DD), at least 56 days.")],
    end: Annotated[date, Query(alias="to", description="Last day (YYYY-MM-DD).")],
    outcome: Annotated[Literal["new_customers", "revenue"], Query()] = "new_customers",
    grain: Annotated[Literal["day", "week"], Query(description="Fit days, or whole weeks.")] = "day",
    exclude: Annotated[list[str] | None, Query(
        description="Days left out of the fit (a known incident, e.g. a bidding mistake): "
                    "[channel:]YYYY-MM-DD..YYYY-MM-DD, repeatable.")] = None,
) -> dict[str, Any]:
    """Adstock, saturation, contribution, ROAS, spend elasticity and marginal ROAS per channel, with
    90 % intervals, and each channel's response curve; the model is ``stats/mmm.py``."""
    cfg: Settings = request.app.state.cfg
    with owner.read() as con:
        return mix.report(con, start=start, end=end, outcome=outcome, timezone=cfg.shop().timezone,
                          grain=grain, exclude=[mix.parse_exclusion(e) for e in exclude or ()])


@router.post("/mmm/plan", summary="Budget plan on the marketing-mix model's response curves",
             responses={**_PROBLEMS, 404: {"description": "No ad spend or outcome in the period."}})
def post_mmm_plan(
    request: Request,
    body: MixPlanRequest,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
) -> dict[str, Any]:
    """The allocator (total exact, reserve, bounds, equal marginal returns) on the fitted curves,
    next to the history's own split scaled to the same total."""
    cfg: Settings = request.app.state.cfg
    bounds = {ch: (b.lower, b.upper) for ch, b in body.bounds.items()}
    with owner.read() as con:
        return mix.plan(con, start=body.start, end=body.end, total=body.total, outcome=body.outcome,
                        reserve_share=body.reserve_share, period_days=body.period_days, bounds=bounds,
                        timezone=cfg.shop().timezone, grain=body.grain,
                        exclude=[mix.parse_exclusion(e) for e in body.exclude])
