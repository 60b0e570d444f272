"""The inventory plan as a named read of :mod:`growthwheel.analyst` (``inventory_plan``), so the
CLI and the worker run it in the server when one owns the warehouse, else here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from growthwheel.errors import InvalidArgumentError
from growthwheel.inventory.service import PlanOptions
from growthwheel.inventory.service import plan as compute_plan

_NUMBERS: dict[str, type] = {
    "horizon": int, "history_days": int, "service_level": float, "lead_time_days": float,
    "order_cost": int, "holding_rate": float, "uplift": float, "target_cover_days": float,
    "turnover_days": int,
}


def options(params: Mapping[str, Any]) -> PlanOptions:
    """:class:`PlanOptions` from plain parameters (dates as ISO text), each bad one named."""
    values: dict[str, Any] = {}
    for key in ("as_of", "until"):
        raw = params.get(key)
        if raw in (None, ""):
            continue
        try:
            values[key] = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
        except ValueError:
            raise InvalidArgumentError(f"{key}: {raw!r} is not a date (YYYY-MM-DD)") from None
    for key, kind in _NUMBERS.items():
        raw = params.get(key)
        if raw is None:
            continue
        try:
            values[key] = kind(raw)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{key}: {raw!r} is not a number") from None
    for key in ("grain", "choose"):
        if params.get(key) is not None:
            values[key] = str(params[key])
    found = PlanOptions(**values)
    found.check()
    return found


def plan(con: Any, cfg: Any, params: Mapping[str, Any]) -> Any:
    """``inventory_plan``: see :func:`growthwheel.inventory.service.plan` for the parameters."""
    return compute_plan(con, options(params))
