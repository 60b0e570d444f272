"""The recommendations' part of the console: the product block of a customer's profile
(``customers/pages.py`` puts :func:`customer_block` in its context; template
``web/templates/recs/_customer_block.html.j2``), read from the stored lists like the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from growthwheel.recs import service
from growthwheel.web.i18n import k
from growthwheel.web.pages import local_time

REASON_KEYS = {"replenish": k("recs.reason.replenish"), "bought_before": k("recs.reason.bought_before"),
               "similar": k("recs.reason.similar"), "popular": k("recs.reason.popular")}
BLOCK_SIZE = 8


def customer_block(session: Session, customer_id: str, zone: ZoneInfo) -> dict[str, Any]:
    """What the profile shows: up to eight products with the reason for each, when they were
    computed, and whether they are the popular list (no history) or nothing is computed yet."""
    try:
        body = service.for_customer(session, customer_id[:service.MAX_ID], BLOCK_SIZE)
    except service.NoRecommendationsError:
        return {"missing": True, "items": [], "computed_at": "–", "popular": False}
    items = [{"sku": i["sku"], "name": i["name"] or i["sku"],
              "reason_key": REASON_KEYS.get(i["reason"], k("recs.reason.similar"))} for i in body["items"]]
    return {"missing": False, "items": items, "popular": body["source"] == "popular",
            "computed_at": local_time(datetime.fromisoformat(body["computed_at"]), zone)}
