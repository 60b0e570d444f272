"""The "campaign behind its target pace" signal, for the alerts domain and the console.

The alerts rules of :mod:`growthwheel.alerts.service` judge KPI series read from the warehouse
alone; a campaign's targets and phases live in the operational store, so the signal is computed
here (store + warehouse) and handed over as plain values: one per running campaign whose GMV or
new buyers are below ``1 − tolerance`` of the pace expected on ``as_of`` — in the phase running on
that day, or overall.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from growthwheel.marketing.campaigns import pacing, review, service


def behind_pace(session: Session, con: Any, *, as_of: date | None = None,
                tolerance: float = pacing.DEFAULT_TOLERANCE) -> list[dict[str, Any]]:
    """Every campaign running on ``as_of`` (default: the last day with a paid order) that is behind
    its target pace, with the phase, the metric, expected and actual to date and the pace."""
    day = as_of or review.last_order_day(con)
    if day is None:
        return []
    out: list[dict[str, Any]] = []
    for campaign in service.list_all(session):
        phases = service.plan_phases(service.phases(session, campaign))
        if not phases or not phases[0].starts_on <= day <= phases[-1].ends_on:
            continue
        pace = review.pace(con, campaign, phases, as_of=day, tolerance=tolerance)
        current = next((p for p in pace["phases"] if p["starts_on"] <= day.isoformat() <= p["ends_on"]), None)
        for metric in ("gmv", "new_buyers"):
            scopes = (("phase", current[metric] if current else None), ("campaign", pace[metric]))
            for scope, figures in scopes:
                if figures is None or figures["status"] != "behind":
                    continue
                out.append({"campaign_id": campaign.id, "campaign": campaign.name, "as_of": day.isoformat(),
                            "scope": scope,
                            "phase": current["name"] if current and scope == "phase" else None,
                            "metric": metric, "target": figures["target"], "expected": figures["expected"],
                            "actual": figures["actual"], "pace": figures["pace"],
                            "projected": figures["projected"]})
    return out
