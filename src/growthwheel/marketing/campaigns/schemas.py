"""What the campaign and influencer routes take (pydantic). Money is integer minor units."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, HttpUrl, field_validator, model_validator

from growthwheel.marketing.schemas import MAX_MINOR

PhaseKind = Literal["warm_up", "peak", "after_glow"]
LinkKind = Literal["promotion", "coupon_batch", "segment", "journey", "influencer"]
Profile = Literal["linear", "last_year"]
MAX_DAYS = 366
#: Days a campaign, a pacing date or a report may name (dates a year either side stay computable).
MIN_DAY, MAX_DAY = date(2000, 1, 1), date(2100, 12, 31)


def check_day(value: date | None, field: str) -> date | None:
    """``value`` if between :data:`MIN_DAY` and :data:`MAX_DAY` (else a ValueError naming ``field``)."""
    if value is not None and not MIN_DAY <= value <= MAX_DAY:
        raise ValueError(f"{field}: between {MIN_DAY} and {MAX_DAY}")
    return value


class PhaseIn(BaseModel):
    """A phase: kind, name, first and last day (shop-local, inclusive), optional share of targets."""

    kind: PhaseKind
    name: str = Field(min_length=1, max_length=200)
    starts_on: date
    ends_on: date
    share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _days(self) -> PhaseIn:
        check_day(self.starts_on, "starts_on")
        check_day(self.ends_on, "ends_on")
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on: on or after starts_on")
        return self


class LinkIn(BaseModel):
    """Something attached to the campaign, by its id."""

    kind: LinkKind
    ref_id: str = Field(min_length=1, max_length=64)


class CampaignIn(BaseModel):
    """A campaign: goals, budget by channel, phases in order, attachments."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    target_gmv: int | None = Field(default=None, ge=0, le=MAX_MINOR, description="Minor units.")
    target_new_buyers: int | None = Field(default=None, ge=0, le=10**9)
    target_roi: float | None = Field(default=None, gt=0, le=10**6, allow_inf_nan=False,
                                     description="GMV / cost.")
    budget: dict[str, int] = Field(default_factory=dict, description="Channel → minor units.")
    profile: Profile = "linear"
    phases: list[PhaseIn] = Field(min_length=1, max_length=12)
    links: list[LinkIn] = Field(default_factory=list, max_length=500)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("name: not blank")
        return value

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: dict[str, int]) -> dict[str, int]:
        if len(value) > 100:
            raise ValueError("budget: at most 100 channels")
        out = {}
        for channel, amount in value.items():
            name = channel.strip().lower()
            if not name or len(name) > 64:
                raise ValueError("budget: channel names of 1 to 64 characters")
            if not 0 <= amount <= MAX_MINOR:
                raise ValueError(f"budget.{name}: between 0 and {MAX_MINOR} minor units")
            out[name] = amount
        return out

    @model_validator(mode="after")
    def _phases(self) -> CampaignIn:
        for i, (a, b) in enumerate(zip(self.phases, self.phases[1:], strict=False), start=1):
            if b.starts_on <= a.ends_on:
                raise ValueError(f"phases[{i}].starts_on: after the previous phase's last day")
        if (self.phases[-1].ends_on - self.phases[0].starts_on).days >= MAX_DAYS:
            raise ValueError(f"phases: a campaign lasts at most {MAX_DAYS} days")
        if sum(p.share or 0.0 for p in self.phases) > 1 + 1e-9:
            raise ValueError("phases: shares add up to more than 1")
        if len({(x.kind, x.ref_id) for x in self.links}) != len(self.links):
            raise ValueError("links: each attachment once")
        return self


class InfluencerIn(BaseModel):
    """An influencer: tracking code, name, platform, followers, cost per deal and deals booked."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$",
                      description="utm_campaign of their links and the coupon code of their fans.")
    name: str = Field(min_length=1, max_length=200)
    platform: str = Field(min_length=1, max_length=32, description="douyin, xiaohongshu, weibo, bilibili…")
    followers: int = Field(ge=0, le=10**10)
    cost_per_deal: int = Field(ge=0, le=MAX_MINOR, description="Minor units.")
    deals: int = Field(default=1, ge=0, le=10**6)
    landing_url: HttpUrl | None = Field(default=None, description="Page their UTM link points to.")

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        return value.strip().lower()
