"""Console page of the product matrix: ``GET /products/roles?period=…``.

Counts per role, a quadrant chart (revenue against margin rate, one point per product coloured by
its role; ``static/products.js`` draws it from a JSON island), one table of every product with its
figures and why it has its role (CSV / Excel links come with every console table), and per role:
a button that saves its buyers in the period as a segment (posted to the segments page's own
``POST /segments``, so the usual rights, audit and errors apply) and its SKUs to paste into a
promotion's scope. The figures are the named read ``products_roles``, as in the API and the CLI.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from growthwheel import analyst
from growthwheel.api.deps import PageUser
from growthwheel.errors import GrowthwheelError, InvalidArgumentError, NoDataError
from growthwheel.kit.money import currency_exponent
from growthwheel.products.roles import ROLES
from growthwheel.web.i18n import format_money, format_ratio, k
from growthwheel.web.pages import backend, page_language, page_translator, render

router = APIRouter(include_in_schema=False)

ROLE_KEYS = {
    "traffic_driver": k("products.role.traffic_driver"), "profit_maker": k("products.role.profit_maker"),
    "potential": k("products.role.potential"), "slow_mover": k("products.role.slow_mover"),
    "long_tail": k("products.role.long_tail"), "core": k("products.role.core")}
HINT_KEYS = {
    "traffic_driver": k("products.hint.traffic_driver"), "profit_maker": k("products.hint.profit_maker"),
    "potential": k("products.hint.potential"), "slow_mover": k("products.hint.slow_mover"),
    "long_tail": k("products.hint.long_tail"), "core": k("products.hint.core")}
SEGMENT_NAME_KEYS = {"traffic_driver": k("products.segment_name.traffic_driver"),
                     "profit_maker": k("products.segment_name.profit_maker"),
                     "potential": k("products.segment_name.potential"),
                     "slow_mover": k("products.segment_name.slow_mover")}
COLORS = {"traffic_driver": "#ee6666", "profit_maker": "#5470c6", "potential": "#91cc75",
          "slow_mover": "#9a60b4", "long_tail": "#c0c4cc", "core": "#fac858"}
TABLE_ROWS = 500


def _pct(value: float | None) -> str:
    return format_ratio(value, percent=True)


@router.get("/products/roles", response_class=HTMLResponse)
def roles_page(request: Request, user: PageUser,
               period: str = Query(default="last90", max_length=20)) -> HTMLResponse:
    """The product matrix of a period."""
    cfg = request.app.state.cfg
    currency = cfg.shop().currency
    unit = 10 ** currency_exponent(currency)
    lang = page_language(request)
    answer: dict[str, Any] | None = None
    error_key: str | None = None
    error_detail = ""
    try:
        with backend(request) as con:
            answer = analyst.compute("products_roles", con, cfg, {"period": period})
    except InvalidArgumentError as exc:
        error_key, error_detail = k("products.error.period"), exc.message
    except NoDataError:
        error_key = k("products.error.no_data")
    except GrowthwheelError as exc:
        error_key, error_detail = k("products.error.other"), exc.message
    context: dict[str, Any] = {"period": period, "error_key": error_key, "error_detail": error_detail,
                               "answer": None, "role_keys": ROLE_KEYS, "hint_keys": HINT_KEYS}
    if answer is None:
        return render(request, "products/roles.html.j2", context, user=user,
                      status=422 if error_key == k("products.error.period") else 200)

    def money(minor: float | None) -> str:
        return "–" if minor is None else format_money(round(minor) / unit, currency)

    items = answer["items"]
    rows = [{"sku": i["sku"], "name": i["name"] or i["sku"], "category": i["category"] or "–",
             "role": i["role"], "role_key": ROLE_KEYS[i["role"]],
             "also": [ROLE_KEYS[r] for r in i["roles"] if r != i["role"]],
             "orders": f"{i['orders']:,}", "revenue": money(i["revenue"]),
             "margin_rate": _pct(i["margin_rate"]),
             "entry_share": _pct(i["entry_share"]), "pull_through": _pct(i["pull_through"]),
             "conversion_low": _pct(i["conversion_low"]), "growth": _pct(i["growth"]),
             "why": i["explanation"]["zh" if lang == "zh" else "en"]} for i in items[:TABLE_ROWS]]
    points = {role: [] for role in ROLES}  # type: dict[str, list[list[Any]]]
    for i in items:
        if i["revenue"] > 0 and i["margin_rate"] is not None:
            points[i["role"]].append([i["revenue"] / unit, round(100 * i["margin_rate"], 2), i["sku"],
                                      i["name"] or i["sku"]])
    refs = answer["references"]
    shop_margin = refs["shop_margin_rate"]
    t = page_translator(request)
    chart = {"series": [{"role": r, "name": t(ROLE_KEYS[r]), "color": COLORS[r], "points": points[r]}
                        for r in ROLES if points[r]],
             "shop_margin": None if shop_margin is None else round(100 * shop_margin, 2),
             "shop_margin_label": t("products.chart.shop_margin"),
             "x": t("products.chart.x", currency=currency), "y": t("products.chart.y")}
    p = answer["period"]
    roles = []
    for role in ROLES:
        skus = answer["skus"][role]
        definition = answer["segments"].get(role)
        roles.append({"role": role, "key": ROLE_KEYS[role], "hint": HINT_KEYS[role], "count": len(skus),
                      "skus": "\n".join(skus),
                      "segment": json.dumps(definition, ensure_ascii=False) if definition else None,
                      "segment_name_key": SEGMENT_NAME_KEYS.get(role)})
    context.update({
        "answer": answer, "rows": rows, "more": max(0, len(items) - TABLE_ROWS), "roles": roles,
        "chart": chart, "start": p["start"], "end": p["end"], "label": p["label"],
        "refs": {"first_orders": f"{refs['first_orders']:,}", "shop_margin": _pct(refs["shop_margin_rate"]),
                 "shop_conversion": _pct(refs["shop_conversion"]), "selling": f"{refs['selling_skus']:,}"},
        "can_save": "write" in user.scopes,
        "role_names": {r: ROLE_KEYS[r] for r in ROLES},
    })
    return render(request, "products/roles.html.j2", context, user=user)
