"""What the segments API takes and answers (pydantic)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_DEFINITION = "A segment definition (JSON Schema: `GET /api/v1/segments/schema`; docs/segments.md)."
_AS_OF = "Evaluate as of this shop-local day (default: today; the last order day in the demo shop)."
MAX_SAMPLE = 100
MAX_TAG_IDS = 10_000


class SegmentCreate(BaseModel):
    """A new saved segment; with ``tag`` it is a tag rule."""

    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any] = Field(description=_DEFINITION)
    description: str | None = Field(default=None, max_length=2000)
    tag: str | None = Field(
        default=None, max_length=64,
        description="Makes it a tag rule: refreshing sets this tag on the members.",
    )


class SegmentOut(BaseModel):
    """A saved segment as listed, with what its last refresh found."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str | None
    definition: dict[str, Any]
    tag: str | None = Field(description="Set for a tag rule.")
    created_by: str
    created_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None = Field(description="Last refresh (UTC); null if never refreshed.")
    members: int | None = Field(description="Members found by the last refresh.")
    as_of: date | None = Field(description="The day the last refresh evaluated the definition as of.")


class PreviewRequest(BaseModel):
    """A definition to count, without saving it."""

    definition: dict[str, Any] = Field(description=_DEFINITION)
    sample: int = Field(default=20, ge=0, le=MAX_SAMPLE, description="How many matching customers to show.")
    as_of: date | None = Field(default=None, description=_AS_OF)


class CustomerSample(BaseModel):
    """One matching customer (email and phone masked for roles without PII access)."""

    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    city: str | None
    channel: str | None
    signed_up_at: datetime | None


class PreviewOut(BaseModel):
    """How many customers match, and a sample of them."""

    count: int
    as_of: date
    sample: list[CustomerSample] = Field(
        description="Up to `sample` matching customers in a stable pseudo-random order."
    )


class RefreshRequest(BaseModel):
    """Options of a refresh."""

    as_of: date | None = Field(default=None, description=_AS_OF)


class RefreshOut(BaseModel):
    """What a refresh changed."""

    segment_id: str
    name: str
    as_of: date
    members: int
    entered: int = Field(description="Customers who were not members before.")
    left: int = Field(description="Former members who no longer match.")
    tagged: int = Field(description="Tag rule: customers who got the tag.")
    untagged: int = Field(description="Tag rule: customers whose tag was removed.")
    seconds: float


class HistoryEntry(BaseModel):
    """One refresh that changed a segment's membership."""

    at: datetime
    entered: int
    left: int


class TagOut(BaseModel):
    """A tag and how many customers carry it, by source."""

    tag: str
    customers: int
    manual: int
    rule: int
    imported: int


class TagChange(BaseModel):
    """Customers to give a manual tag to, and to take it from."""

    add: list[str] = Field(default_factory=list, max_length=MAX_TAG_IDS)
    remove: list[str] = Field(default_factory=list, max_length=MAX_TAG_IDS)


class TagChangeOut(BaseModel):
    """How many customers got the manual tag and how many lost it."""

    tag: str
    added: int
    removed: int
