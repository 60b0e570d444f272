"""Request and response bodies of event capture (``POST /api/v1/events``).

These models give the API its OpenAPI schema and a first check of shapes and lengths; the rules
that need more than a field at a time (timestamps, identity, attribution) are in ``events/core.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from growthwheel.events import core


class EventIn(BaseModel):
    """One behaviour event as the shop's site or app sends it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "event_id": "5f0c6d1e-7c1b-4a53-9c55-0e4b8f1d2a10", "type": "view",
            "timestamp": "2025-06-18T20:15:03+08:00", "anonymous_id": "dev-8f3a",
            "url": "https://shop.example.cn/p/sku-123?utm_source=douyin&utm_medium=social",
            "referrer": "https://www.douyin.com/", "sku": "sku-123", "properties": {"price": "129.00"},
        }]},
    )

    event_id: str = Field(min_length=1, max_length=core.ID_MAX,
                          description="Client-made unique id; re-sending it changes nothing.")
    type: str = Field(
        description="view, search, add_to_cart, checkout, purchase or a custom name (a-z 0-9 _ . : -)",
        min_length=1, max_length=64,
    )
    timestamp: str = Field(
        description="ISO 8601 date-time; without an offset it is taken as shop time.",
        json_schema_extra={"format": "date-time"}, max_length=40,
    )
    customer_id: str | None = Field(None, max_length=core.ID_MAX,
                                    description="The shop's customer id, once known.")
    anonymous_id: str | None = Field(None, max_length=core.ID_MAX,
                                     description="Device or cookie id before sign-in.")
    session_id: str | None = Field(None, max_length=core.ID_MAX)
    sku: str | None = Field(None, description="Product concerned.", max_length=core.ID_MAX)
    order_id: str | None = Field(None, description="Order concerned (purchase).", max_length=core.ID_MAX)
    url: str | None = Field(None, description="Page URL; UTM parameters are read from it.",
                            max_length=core.URL_MAX)
    referrer: str | None = Field(None, description="Referring URL.", max_length=core.URL_MAX)
    utm_source: str | None = Field(None, description="Overrides the URL's.", max_length=core.TEXT_MAX)
    utm_medium: str | None = Field(None, max_length=core.TEXT_MAX)
    utm_campaign: str | None = Field(None, max_length=core.TEXT_MAX)
    device: str | None = Field(None, description="e.g. mobile, desktop, mini_program", max_length=64)
    properties: dict[str, Any] | None = Field(None, description="Any other data, as a JSON object.")


class EventBatch(BaseModel):
    """A batch of 1 to 1,000 events."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventIn] = Field(min_length=1, max_length=core.MAX_EVENTS)


class EventsAccepted(BaseModel):
    """What the server took: events stored durably, and repeats of an ``event_id`` within the batch."""

    accepted: int = Field(description="Events accepted (each stored once in the warehouse).")
    duplicates: int = Field(description="Events dropped because the batch repeated their event_id.")
