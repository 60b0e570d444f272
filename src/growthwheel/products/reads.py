"""The product matrix as a named read of :mod:`growthwheel.analyst` (``products_roles``), so the API,
the console, the CLI and a notebook compute it the same way (in the server when one owns the
warehouse), and its table rows for CSV / Excel exports."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from growthwheel.errors import InvalidArgumentError
from growthwheel.products import roles as pr

#: Roles whose SKUs come with a ready segment definition (the long tail and the core are too broad).
SEGMENT_ROLES = ("traffic_driver", "profit_maker", "potential", "slow_mover")
RULE_FIELDS = tuple(f.name for f in dataclasses.fields(pr.RoleRules))


def rules_from(params: Mapping[str, Any]) -> pr.RoleRules:
    """Thresholds from ``params`` (any :class:`RoleRules` field; the rest keep their defaults)."""
    values: dict[str, Any] = {}
    for name in RULE_FIELDS:
        raw = params.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[name] = int(raw) if name == "traffic_min_first_orders" else float(raw)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{name}: {raw!r} is not a number / 不是数字") from None
    rules = pr.RoleRules(**values)
    rules.check()
    return rules


def product_roles(con: Any, cfg: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """``products_roles``: params ``period`` (``YYYY-MM``, ``YYYY-Qn``, ``YYYY``, ``lastN``; default
    ``last90``) and any threshold of :class:`RoleRules`. Adds ``segments``: per role with SKUs (of
    :data:`SEGMENT_ROLES`), a segment definition of their buyers in the period, and ``currency``."""
    from growthwheel.kit.money import currency_exponent

    period = str(params.get("period") or "last90")
    if len(period) > 20:
        raise InvalidArgumentError("period: at most 20 characters / 周期过长")
    currency = cfg.shop().currency
    answer = pr.roles(con, period, rules_from(params), currency_exponent(currency))
    answer["currency"] = currency
    answer["segments"] = {
        role: pr.segment_definition(answer["skus"][role], answer["period"])
        for role in SEGMENT_ROLES if 0 < len(answer["skus"][role]) <= 1000
    }
    return answer


#: Columns of an export (money in major units).
EXPORT_HEADER = ("sku", "name", "category", "role", "roles", "orders", "buyers", "units", "revenue",
                 "gross_margin", "margin_rate", "first_orders", "entry_share", "new_buyer_ratio",
                 "pull_through", "views", "carts", "conversion", "conversion_lower_bound",
                 "orders_before", "growth", "why_en", "why_zh")


def export_rows(answer: Mapping[str, Any], exponent: int = 2) -> list[list[Any]]:
    """One row per product for CSV / Excel (:data:`EXPORT_HEADER`; money in major units)."""
    unit = 10 ** exponent

    def major(v: Any) -> Any:
        return None if v is None else round(v / unit, exponent)

    return [[i["sku"], i["name"], i["category"], i["role"], ";".join(i["roles"]), i["orders"], i["buyers"],
             i["units"], major(i["revenue"]), major(i["margin"]), i["margin_rate"], i["first_orders"],
             i["entry_share"], i["new_buyer_ratio"], i["pull_through"], i["views"], i["carts"],
             i["conversion"], i["conversion_low"], i["orders_before"], i["growth"],
             i["explanation"]["en"], i["explanation"]["zh"]] for i in answer["items"]]
