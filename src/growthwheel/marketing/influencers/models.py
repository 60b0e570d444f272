"""The influencer registry in the operational store (table ``influencers``).

An influencer (达人: KOL or KOC) is known by a **tracking code**: the value of ``utm_campaign`` on
links with ``utm_medium=influencer`` (or ``kol`` / ``koc``) and the coupon code buyers type at
checkout. The follower tier is derived from ``followers`` (:mod:`.tiers`), never stored, so a new
follower count re-tiers the influencer at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from growthwheel.accounts.models import UTCDateTime, new_id, utcnow
from growthwheel.store.db import Base


class Influencer(Base):
    """One influencer: platform, followers, what a deal costs, the tracking code."""

    __tablename__ = "influencers"
    __table_args__ = (
        CheckConstraint("followers >= 0", name="followers"),
        CheckConstraint("cost_per_deal >= 0 AND deals >= 0", name="cost"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    """Tracking code: ``utm_campaign`` of the influencer's links and the coupon code of their fans."""
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(32))
    followers: Mapped[int] = mapped_column(BigInteger)
    cost_per_deal: Mapped[int] = mapped_column(BigInteger)
    """Fee of one deal (a post, a live stream), minor units of the shop currency."""
    deals: Mapped[int] = mapped_column(Integer, default=1)
    """Deals booked so far: cost = ``cost_per_deal × deals``."""
    landing_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
