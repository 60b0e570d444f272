"""Console page of inventory: ``GET /inventory`` and ``POST /inventory/clearance``.

The page shows the plan (the named read ``inventory_plan``, as in the API and the CLI) for the
form's service level, risk date and campaign uplift: counts (SKUs, reorder now, at risk, slow
movers), the backtest's MASE and RMSSE per method against seasonal naive, the SKUs by stock-out
risk with their forecast, safety stock, reorder point, EOQ, cover and turnover, and the slow movers
with a clearance suggestion. Operators and admins can draft a clearance promotion from the slow
movers: it is stored as a draft and the browser goes to its page in the promotions console.

Every visible string comes from ``i18n/<lang>/inventory.json``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from growthwheel import analyst
from growthwheel.api.deps import DbSession, PageUser, PageWriter
from growthwheel.errors import GrowthwheelError, InvalidArgumentError, NoDataError
from growthwheel.inventory import service
from growthwheel.promotions import service as promotions
from growthwheel.web.i18n import format_ratio, k
from growthwheel.web.pages import backend, page_translator, render

router = APIRouter(include_in_schema=False)

METHOD_KEYS = {
    "seasonal_naive": k("inventory.method.seasonal_naive"), "ses": k("inventory.method.ses"),
    "ets_seasonal": k("inventory.method.ets_seasonal"),
    "ets_seasonal_fast": k("inventory.method.ets_seasonal_fast"),
    "croston": k("inventory.method.croston"), "sba": k("inventory.method.sba"),
    "tsb": k("inventory.method.tsb"),
}
REASON_KEYS = {"excess_cover": k("inventory.reason.excess_cover"), "no_sales": k("inventory.reason.no_sales")}
TABLE_ROWS = 200


def _n(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


@router.get("/inventory", response_class=HTMLResponse)
def inventory_page(request: Request, user: PageUser,
                   service_level: str = Query(default="0.95", max_length=10),
                   until: str = Query(default="", max_length=10),
                   uplift: str = Query(default="1", max_length=10),
                   notice: str = Query(default="", max_length=40)) -> HTMLResponse:
    """The inventory plan for the form's parameters."""
    cfg = request.app.state.cfg
    report: dict[str, Any] | None = None
    error_key: str | None = None
    error_detail = ""
    params = {"service_level": service_level, "until": until or None, "uplift": uplift}
    try:
        with backend(request) as con:
            report = analyst.compute("inventory_plan", con, cfg, params)
    except InvalidArgumentError as exc:
        error_key, error_detail = k("inventory.error.params"), exc.message
    except NoDataError:
        error_key = k("inventory.error.no_data")
    except GrowthwheelError as exc:
        error_key, error_detail = k("inventory.error.other"), exc.message
    context: dict[str, Any] = {
        "service_level": service_level, "until": until, "uplift": uplift, "error_key": error_key,
        "error_detail": error_detail, "report": None,
        "notice_key": k("inventory.notice.no_skus") if notice == "no_skus" else None,
    }
    if report is None:
        return render(request, "inventory/index.html.j2", context, user=user,
                      status=422 if error_key == k("inventory.error.params") else 200)
    t = page_translator(request)
    items = report["items"]
    rows = [{
        "sku": it["sku"], "name": it["name"] or it["sku"], "method": t(METHOD_KEYS[it["method"]]),
        "daily": _n(it["daily_demand"], 2), "on_hand": _n(it["on_hand"], 0), "inbound": _n(it["inbound"], 0),
        "safety": _n(it["safety_stock"]), "rop": _n(it["reorder_point"]), "eoq": _n(it["eoq"], 0),
        "lead": _n(it["lead_time_days"]), "cover": _n(it["days_of_cover"]), "turnover": _n(it["turnover"], 2),
        "risk": format_ratio(it["stockout_risk"], percent=True), "reorder": it["reorder_now"],
    } for it in items[:TABLE_ROWS]]
    slow = [{"sku": it["sku"], "name": it["name"] or it["sku"], "on_hand": _n(it["on_hand"], 0),
             "cover": _n(it["days_of_cover"]), "excess": f"{it['clearance']['excess_units']:,}",
             "discount": it["clearance"]["discount_percent"],
             "reason_key": REASON_KEYS[it["clearance"]["reason"]]} for it in service.slow_movers(report)]
    backtest = report["backtest"]
    methods: list[dict[str, str]] = []
    if backtest:
        for name, key in METHOD_KEYS.items():
            if name in backtest["mase"]:
                methods.append({"name": t(key), "mase": _n(backtest["mase"][name], 3),
                                "rmsse": _n(backtest["rmsse"][name], 3),
                                "chosen": f"{backtest['chosen'].get(name, 0):,}"})
    suggested = max((s["discount"] for s in slow), default=20)
    context.update({
        "report": report, "rows": rows, "more": max(0, len(items) - TABLE_ROWS), "slow": slow,
        "methods": methods, "backtest": backtest, "suggested": suggested,
        "counts": {"skus": f"{report['skus']:,}",
                   "reorder": f"{sum(1 for it in items if it['reorder_now']):,}",
                   "at_risk": f"{len(service.at_risk(report)):,}", "slow": f"{len(slow):,}"},
        "holdout": None if not backtest else {
            "mase": _n(backtest["mase"]["selected_holdout"], 3),
            "mase_base": _n(backtest["mase"]["baseline_holdout"], 3),
            "rmsse": _n(backtest["rmsse"]["selected_holdout"], 3),
            "rmsse_base": _n(backtest["rmsse"]["baseline_holdout"], 3)},
        "can_write": "write" in user.scopes,
    })
    return render(request, "inventory/index.html.j2", context, user=user)


@router.post("/inventory/clearance", response_class=HTMLResponse)
async def draft_clearance(request: Request, user: PageWriter, session: DbSession) -> Response:
    """A draft percent-off promotion on the ticked slow movers; goes to its promotions page."""
    form = await request.form()
    skus = [str(s) for s in form.getlist("sku") if str(s).strip()]
    if not skus:
        return RedirectResponse("/inventory?notice=no_skus", status_code=303)
    try:
        percent = int(str(form.get("discount_percent") or "20"))
    except ValueError:
        percent = 0
    t = page_translator(request)

    def work() -> Response:
        definition = service.clearance_definition(skus, percent)
        row = promotions.create_promotion(
            session, name=t("inventory.clearance.name", percent=percent, count=len(set(skus))),
            definition=definition, status="draft", principal=user)
        return RedirectResponse(f"/promotions/{row.id}", status_code=303)

    return await run_in_threadpool(work)
