"""Campaigns in the operational store: create, read, replace, delete (no commits, no HTTP).

Attachments are checked when saved: each ``ref_id`` must name an existing promotion, coupon batch,
segment, journey or influencer (422 naming ``links[i].ref_id`` otherwise).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.marketing.campaigns.models import Campaign, CampaignLink, CampaignPhase
from growthwheel.marketing.campaigns.pacing import Phase
from growthwheel.marketing.campaigns.schemas import CampaignIn


class CampaignNotFoundError(GrowthwheelError):
    """No campaign with that id or name."""

    code = "campaign_not_found"
    status = 404


class CampaignExistsError(GrowthwheelError):
    """A campaign with that name exists already."""

    code = "campaign_exists"
    status = 409


def _link_model(kind: str) -> Any:
    if kind == "promotion":
        from growthwheel.promotions.models import Promotion
        return Promotion
    if kind == "coupon_batch":
        from growthwheel.promotions.models import CouponBatch
        return CouponBatch
    if kind == "segment":
        from growthwheel.segments.models import Segment
        return Segment
    if kind == "journey":
        from growthwheel.journeys.models import Journey
        return Journey
    from growthwheel.marketing.influencers.models import Influencer
    return Influencer


def _check_links(session: Session, data: CampaignIn) -> None:
    for i, link in enumerate(data.links):
        if session.get(_link_model(link.kind), link.ref_id) is None:
            raise InvalidArgumentError(f"links[{i}].ref_id: no {link.kind} with id {link.ref_id!r}")


def _write_children(session: Session, campaign: Campaign, data: CampaignIn) -> None:
    session.execute(sa_delete(CampaignPhase).where(CampaignPhase.campaign_id == campaign.id))
    session.execute(sa_delete(CampaignLink).where(CampaignLink.campaign_id == campaign.id))
    session.flush()
    for pos, p in enumerate(data.phases, start=1):
        session.add(CampaignPhase(campaign_id=campaign.id, position=pos, kind=p.kind, name=p.name.strip(),
                                  starts_on=p.starts_on, ends_on=p.ends_on, share=p.share))
    for link in data.links:
        session.add(CampaignLink(campaign_id=campaign.id, kind=link.kind, ref_id=link.ref_id))
    session.flush()


def _name_taken(session: Session, name: str, but: str | None = None) -> bool:
    other = session.scalar(select(Campaign.id).where(Campaign.name == name))
    return other is not None and other != but


def create(session: Session, data: CampaignIn, *, actor: str) -> Campaign:
    """Save a new campaign with its phases and attachments."""
    if _name_taken(session, data.name):
        raise CampaignExistsError(f"name: a campaign named {data.name!r} exists already")
    _check_links(session, data)
    campaign = Campaign(name=data.name, description=data.description, target_gmv=data.target_gmv,
                        target_new_buyers=data.target_new_buyers, target_roi=data.target_roi,
                        budget=dict(data.budget), profile=data.profile, created_by=actor)
    session.add(campaign)
    session.flush()
    _write_children(session, campaign, data)
    return campaign


def replace(session: Session, key: str, data: CampaignIn) -> Campaign:
    """Replace a campaign's goals, budget, phases and attachments."""
    campaign = get(session, key)
    if _name_taken(session, data.name, but=campaign.id):
        raise CampaignExistsError(f"name: a campaign named {data.name!r} exists already")
    _check_links(session, data)
    campaign.name, campaign.description = data.name, data.description
    campaign.target_gmv, campaign.target_new_buyers = data.target_gmv, data.target_new_buyers
    campaign.target_roi, campaign.budget, campaign.profile = data.target_roi, dict(data.budget), data.profile
    _write_children(session, campaign, data)
    return campaign


def get(session: Session, key: str) -> Campaign:
    """A campaign by id or name."""
    campaign = session.get(Campaign, key) or session.scalar(select(Campaign).where(Campaign.name == key))
    if campaign is None:
        raise CampaignNotFoundError(f"campaign {key!r} not found")
    return campaign


def list_all(session: Session) -> list[Campaign]:
    """Every campaign, newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.name)))


def delete(session: Session, key: str) -> None:
    """Delete a campaign with its phases and attachments."""
    campaign = get(session, key)
    session.execute(sa_delete(CampaignPhase).where(CampaignPhase.campaign_id == campaign.id))
    session.execute(sa_delete(CampaignLink).where(CampaignLink.campaign_id == campaign.id))
    session.delete(campaign)
    session.flush()


def phases(session: Session, campaign: Campaign) -> list[CampaignPhase]:
    """The campaign's phases in order."""
    return list(session.scalars(select(CampaignPhase).where(CampaignPhase.campaign_id == campaign.id)
                                .order_by(CampaignPhase.position)))


def links(session: Session, campaign: Campaign) -> list[CampaignLink]:
    """The campaign's attachments (by kind, then id)."""
    return list(session.scalars(select(CampaignLink).where(CampaignLink.campaign_id == campaign.id)
                                .order_by(CampaignLink.kind, CampaignLink.ref_id)))


def plan_phases(rows: list[CampaignPhase]) -> list[Phase]:
    """The phases as :mod:`.pacing` takes them."""
    return [Phase(kind=r.kind, name=r.name, starts_on=r.starts_on, ends_on=r.ends_on, share=r.share)
            for r in rows]


def campaign_out(session: Session, campaign: Campaign) -> dict[str, Any]:
    """A campaign as the API answers it."""
    ph = phases(session, campaign)
    return {
        "id": campaign.id, "name": campaign.name, "description": campaign.description,
        "target_gmv": campaign.target_gmv, "target_new_buyers": campaign.target_new_buyers,
        "target_roi": campaign.target_roi, "budget": dict(campaign.budget or {}),
        "budget_total": sum((campaign.budget or {}).values()), "profile": campaign.profile,
        "starts_on": ph[0].starts_on.isoformat() if ph else None,
        "ends_on": ph[-1].ends_on.isoformat() if ph else None,
        "phases": [{"kind": p.kind, "name": p.name, "starts_on": p.starts_on.isoformat(),
                    "ends_on": p.ends_on.isoformat(), "share": p.share} for p in ph],
        "links": [{"kind": x.kind, "ref_id": x.ref_id} for x in links(session, campaign)],
        "created_by": campaign.created_by,
    }


def influencer_cost(session: Session, campaign: Campaign) -> int:
    """Cost of the influencers attached to the campaign (cost per deal × deals), minor units."""
    from growthwheel.marketing.influencers.models import Influencer

    ids = [x.ref_id for x in links(session, campaign) if x.kind == "influencer"]
    if not ids:
        return 0
    return int(sum(i.cost_per_deal * i.deals for i in session.scalars(select(Influencer)
                                                                      .where(Influencer.id.in_(ids)))))


def attached_promotions(session: Session, campaign: Campaign) -> list[tuple[str, str]]:
    """The attached promotions as (id, name), by name."""
    from growthwheel.promotions.models import Promotion

    ids = [x.ref_id for x in links(session, campaign) if x.kind == "promotion"]
    if not ids:
        return []
    rows = session.scalars(select(Promotion).where(Promotion.id.in_(ids)).order_by(Promotion.name))
    return [(p.id, p.name) for p in rows]


def attached_coupon_batches(session: Session, campaign: Campaign) -> list[dict[str, Any]]:
    """The attached coupon batches with their counters (issued, redeemed, discount given)."""
    from growthwheel.promotions.models import CouponBatch

    ids = [x.ref_id for x in links(session, campaign) if x.kind == "coupon_batch"]
    if not ids:
        return []
    rows = session.scalars(select(CouponBatch).where(CouponBatch.id.in_(ids)).order_by(CouponBatch.name))
    return [{"id": b.id, "name": b.name, "issued": b.issued_count, "redeemed": b.used_count,
             "discount": b.used_amount} for b in rows]


def review_inputs(session: Session, campaign: Campaign) -> dict[str, Any]:
    """What :func:`.review.review` needs from the store besides the campaign and its phases."""
    return {"influencer_cost": influencer_cost(session, campaign),
            "promotions": attached_promotions(session, campaign),
            "coupon_batches": attached_coupon_batches(session, campaign)}
