"""Tables of campaigns in the operational store.

* ``campaigns``: name, goal targets (GMV in minor units, new buyers, ROI = GMV / cost), the budget
  by channel (JSON ``{channel: minor units}``) and the pacing profile (``linear`` or
  ``last_year``);
* ``campaign_phases``: the phases in order (``warm_up`` 蓄水/预热, ``peak`` 爆发/正式,
  ``after_glow`` 余热/返场), each with its days (shop-local, inclusive) and an optional share of the
  campaign's targets;
* ``campaign_links``: what is attached (promotions, coupon batches, segments, journeys,
  influencers), by id.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base

PHASE_KINDS = ("warm_up", "peak", "after_glow")
LINK_KINDS = ("promotion", "coupon_batch", "segment", "journey", "influencer")
PROFILES = ("linear", "last_year")
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")


class Campaign(Base):
    """A campaign: goals, budget by channel, pacing profile."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("profile IN ('linear', 'last_year')", name="profile"),
        CheckConstraint("target_gmv IS NULL OR target_gmv >= 0", name="target_gmv"),
        CheckConstraint("target_new_buyers IS NULL OR target_new_buyers >= 0", name="target_new_buyers"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(String(2000), default=None)
    target_gmv: Mapped[int | None] = mapped_column(BigInteger, default=None)
    target_new_buyers: Mapped[int | None] = mapped_column(Integer, default=None)
    target_roi: Mapped[float | None] = mapped_column(Float, default=None)
    budget: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    profile: Mapped[str] = mapped_column(String(16), default="linear")
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignPhase(Base):
    """One phase of a campaign, its days and its share of the targets."""

    __tablename__ = "campaign_phases"
    __table_args__ = (
        CheckConstraint("kind IN ('warm_up', 'peak', 'after_glow')", name="kind"),
        CheckConstraint("ends_on >= starts_on", name="days"),
        CheckConstraint("share IS NULL OR (share >= 0 AND share <= 1)", name="share"),
        UniqueConstraint("campaign_id", "position", name="uq_campaign_phases_position"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    share: Mapped[float | None] = mapped_column(Float, default=None)
    """Share of the campaign's targets this phase carries (``None``: by its days, see pacing)."""


class CampaignLink(Base):
    """Something attached to a campaign (a promotion, coupon batch, segment, journey, influencer)."""

    __tablename__ = "campaign_links"
    __table_args__ = (
        CheckConstraint("kind IN ('promotion', 'coupon_batch', 'segment', 'journey', 'influencer')",
                        name="kind"),
    )

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    ref_id: Mapped[str] = mapped_column(String(64), primary_key=True)
