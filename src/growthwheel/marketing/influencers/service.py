"""Influencer registry and what each influencer brought (no commits, no HTTP).

The report credits paid orders to influencers through the touchpoints of
:mod:`growthwheel.marketing.touchpoints` at the ``influencer`` level: a visit through an
influencer's UTM link (``utm_medium`` influencer / kol / koc, ``utm_campaign`` = the code) or an
order paid with the influencer's code as its coupon code. Only influencer touches count at that
level, so with the default ``last_touch`` model an order goes to the last influencer the buyer met
in the look-back window (other channels in between do not take it away). Revenue is the order's
total less refunds; a new customer is a buyer's first paid order ever. Cost = cost per deal × deals
booked; ROI = revenue / cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.errors import GrowthwheelError, InvalidArgumentError, NoDataError
from growthwheel.marketing.campaigns.schemas import InfluencerIn, check_day
from growthwheel.marketing.influencers.models import Influencer
from growthwheel.marketing.influencers.tiers import TIERS, tier_of

RANK_BY = ("roi", "revenue", "orders", "new_customers")


class InfluencerNotFoundError(GrowthwheelError):
    """No influencer with that id or code."""

    code = "influencer_not_found"
    status = 404


class InfluencerExistsError(GrowthwheelError):
    """An influencer with that tracking code exists already."""

    code = "influencer_exists"
    status = 409


class InfluencerInUseError(GrowthwheelError):
    """The influencer is attached to campaigns: removing it would leave them a dangling attachment
    (which a later save of the campaign refuses) and change their reviewed cost and ROI."""

    code = "influencer_in_use"
    status = 409


def utm_link(influencer: Influencer, base_url: str | None = None) -> str | None:
    """The influencer's tracking link: the landing page with ``utm_source`` = platform,
    ``utm_medium=influencer`` and ``utm_campaign`` = code (existing query parameters kept)."""
    url = influencer.landing_url or base_url
    if not url:
        return None
    parts = urlsplit(url)
    utm = urlencode({"utm_source": influencer.platform, "utm_medium": "influencer",
                     "utm_campaign": influencer.code})
    query = f"{parts.query}&{utm}" if parts.query else utm
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def influencer_out(inf: Influencer) -> dict[str, Any]:
    """An influencer as the API answers it (tier derived, cost, tracking link)."""
    return {"id": inf.id, "code": inf.code, "name": inf.name, "platform": inf.platform,
            "followers": inf.followers, "tier": tier_of(inf.followers), "cost_per_deal": inf.cost_per_deal,
            "deals": inf.deals, "cost": inf.cost_per_deal * inf.deals, "landing_url": inf.landing_url,
            "utm_link": utm_link(inf), "created_at": inf.created_at.isoformat() if inf.created_at else None}


def create(session: Session, data: InfluencerIn, *, actor: str) -> Influencer:
    """Register an influencer (409 when the code is taken)."""
    if session.scalar(select(Influencer.id).where(Influencer.code == data.code)) is not None:
        raise InfluencerExistsError(f"code: an influencer with code {data.code!r} exists already")
    inf = Influencer(code=data.code, name=data.name.strip(), platform=data.platform,
                     followers=data.followers, cost_per_deal=data.cost_per_deal, deals=data.deals,
                     landing_url=str(data.landing_url) if data.landing_url else None, created_by=actor)
    session.add(inf)
    session.flush()
    return inf


def update(session: Session, key: str, data: InfluencerIn) -> Influencer:
    """Replace an influencer's fields (the code may change if the new one is free)."""
    inf = get(session, key)
    other = session.scalar(select(Influencer.id).where(Influencer.code == data.code))
    if other is not None and other != inf.id:
        raise InfluencerExistsError(f"code: an influencer with code {data.code!r} exists already")
    inf.code, inf.name, inf.platform = data.code, data.name.strip(), data.platform
    inf.followers, inf.cost_per_deal, inf.deals = data.followers, data.cost_per_deal, data.deals
    inf.landing_url = str(data.landing_url) if data.landing_url else None
    session.flush()
    return inf


def get(session: Session, key: str) -> Influencer:
    """An influencer by id or tracking code."""
    inf = session.get(Influencer, key) or session.scalar(select(Influencer).where(Influencer.code == key))
    if inf is None:
        raise InfluencerNotFoundError(f"influencer {key!r} not found")
    return inf


def list_all(session: Session) -> list[Influencer]:
    """Every influencer, by followers (largest first) then code."""
    return list(session.scalars(select(Influencer).order_by(Influencer.followers.desc(), Influencer.code)))


def campaigns_of(session: Session, inf: Influencer) -> list[str]:
    """Names of the campaigns the influencer is attached to, sorted."""
    from growthwheel.marketing.campaigns.models import Campaign, CampaignLink

    rows = session.scalars(select(Campaign.name).join(CampaignLink, CampaignLink.campaign_id == Campaign.id)
                           .where(CampaignLink.kind == "influencer", CampaignLink.ref_id == inf.id))
    return sorted(set(rows))


def delete(session: Session, key: str) -> None:
    """Remove an influencer from the registry (facts already credited stay in the warehouse).

    Refused (409 ``influencer_in_use``) while a campaign has it attached: detach it there first."""
    inf = get(session, key)
    names = campaigns_of(session, inf)
    if names:
        raise InfluencerInUseError(f"influencer {inf.code!r} is attached to campaigns: {', '.join(names)}; "
                                   "detach it there first")
    session.delete(inf)
    session.flush()


@dataclass(frozen=True)
class InfluencerRow:
    """What one influencer brought over the period."""

    id: str
    code: str
    name: str
    platform: str
    tier: str
    followers: int
    cost: int
    orders: float
    revenue: float
    new_customers: float
    roi: float | None
    cost_per_order: float | None
    cac: float | None
    rank: int = 0


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def report(con: Any, influencers: Sequence[Influencer], *, start: date, end: date,
           lookback_days: int = 30, model: str = "last_touch", rank_by: str = "roi") -> dict[str, Any]:
    """Attributed orders, revenue, new customers and ROI per influencer and per tier (the
    pyramid), with a ranking, for paid orders placed in ``[start, end]``."""
    from growthwheel.marketing import service as mkt

    if rank_by not in RANK_BY:
        raise InvalidArgumentError(f"rank_by: one of {', '.join(RANK_BY)}")
    if end < start:
        raise InvalidArgumentError("to: must be on or after from")
    for value, name in ((start, "from"), (end, "to")):
        try:
            check_day(value, name)
        except ValueError as exc:
            raise InvalidArgumentError(str(exc)) from None
    credited: dict[str, dict[str, Any]] = {}
    if influencers:
        codes = {inf.code: inf.code for inf in influencers}
        try:
            body = mkt.attribution_report(con, start=start, end=end, lookback_days=lookback_days,
                                          level="influencer", models=[model], influencer_codes=codes)
            credited = {r["channel"]: r for r in body["rows"] if r["model"] == model}
        except NoDataError:
            credited = {}
    rows = []
    for inf in influencers:
        got = credited.get(inf.code, {})
        cost = inf.cost_per_deal * inf.deals
        orders = float(got.get("conversions") or 0.0)
        revenue = float(got.get("value") or 0.0)
        new = float(got.get("new_customers") or 0.0)
        rows.append(InfluencerRow(id=inf.id, code=inf.code, name=inf.name, platform=inf.platform,
                                  tier=tier_of(inf.followers), followers=inf.followers, cost=cost,
                                  orders=orders, revenue=revenue, new_customers=new,
                                  roi=_ratio(revenue, cost), cost_per_order=_ratio(cost, orders),
                                  cac=_ratio(cost, new)))
    def key(r: InfluencerRow) -> tuple[float, str]:
        value = getattr(r, rank_by)
        return (-(value if value is not None else float("-inf")), r.code)
    ranked = [InfluencerRow(**{**asdict(r), "rank": i}) for i, r in enumerate(sorted(rows, key=key), start=1)]
    pyramid = []
    for tier in TIERS:
        part = [r for r in ranked if r.tier == tier]
        cost = sum(r.cost for r in part)
        revenue = sum(r.revenue for r in part)
        orders = sum(r.orders for r in part)
        new = sum(r.new_customers for r in part)
        pyramid.append({"tier": tier, "influencers": len(part), "followers": sum(r.followers for r in part),
                        "cost": cost, "orders": orders, "revenue": revenue, "new_customers": new,
                        "roi": _ratio(revenue, cost), "cac": _ratio(cost, new)})
    return {"from": start.isoformat(), "to": end.isoformat(), "lookback_days": lookback_days, "model": model,
            "rank_by": rank_by, "rows": [asdict(r) for r in ranked], "pyramid": pyramid}
