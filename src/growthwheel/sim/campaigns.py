"""The demo's Double 11 campaign and its influencers, with what is known about them (issue 14 item 6).

Acted after the rest of the living demo (so the warehouse holds every order, checkout orders too):

* **influencers** — :data:`INFLUENCERS`, two per follower tier (head, waist, tail, KOC). Each one
  *reaches* a known share of the paid orders of the campaign's peak phase: the orders are drawn
  without replacement (seeded), and the buyer of each gets one visit through the influencer's UTM
  link (``utm_medium=influencer``, ``utm_campaign`` = code) shortly before the order and after
  the buyer's previous order. Every order has one influencer touch at most, so what the influencer
  report credits under its convention (the last influencer touch in the look-back window) is known
  exactly: the orders, revenue (total − refunds) and new customers written to the truth. The fee
  of each influencer is set so that its **true ROI** (revenue / fee) is :data:`TRUE_ROI` of its
  tier — the pyramid the plans describe, cheap KOCs most efficient, head accounts least;
* **the campaign** — ``双11 <year>`` on the last Double 11 inside the history: 蓄水 warm-up 20–31 Oct,
  爆发 peak 1–11 Nov, 返场 after-glow 12–15 Nov (shares by last year's profile when the history
  holds last year's window, else by days); GMV target 115 % of what the shop sold in the window
  (attainment 1 / 1.15 when the review reads the same warehouse), new-buyer target the new buyers
  it had, ROI target 3; budget per paid channel 110 % of the ad spend in the window; the influencers
  and the ended Double 11 promotion attached. The simulator's **true festival demand multiplier**
  (acquisition, weekly pattern divided out) per phase goes to the truth: the after-glow has none
  (1.0) in this simulator, so any after-glow lift the review shows is repurchase, not festival.

Truth under ``campaigns`` in ``ground_truth.json``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from ibis import _

from growthwheel.config import Settings
from growthwheel.sim.living import ACTOR, MARKER_PROMOTION, Acted, Shop, truth
from growthwheel.store.db import session_scope
from growthwheel.warehouse.owner import WarehouseOwner
from growthwheel.warehouse.schema import PAID_STATUSES

#: code, name, platform, followers, share of the peak phase's paid orders reached.
INFLUENCERS = (
    ("DY_LIJIA", "李佳（抖音）", "douyin", 12_000_000, 0.060),
    ("XHS_MUMU", "木木（小红书）", "xiaohongshu", 1_800_000, 0.040),
    ("DY_XIAOMAN", "小满", "douyin", 620_000, 0.035),
    ("BILI_AKE", "阿柯", "bilibili", 180_000, 0.030),
    ("XHS_TANGTANG", "糖糖", "xiaohongshu", 56_000, 0.020),
    ("WB_LAOZHOU", "老周", "weibo", 23_000, 0.015),
    ("KOC_LINGLING", "玲玲", "xiaohongshu", 4_200, 0.010),
    ("KOC_AXIN", "阿鑫", "douyin", 1_300, 0.008),
)
#: True ROI (revenue / fee) by tier.
TRUE_ROI = {"head": 0.9, "waist": 2.2, "tail": 3.5, "koc": 6.0}
PHASES = (("warm_up", "蓄水", (10, 20), (10, 31)), ("peak", "爆发", (11, 1), (11, 11)),
          ("after_glow", "返场", (11, 12), (11, 15)))
GMV_TARGET_FACTOR = 1.15
BUDGET_FACTOR = 1.10


def _campaign_year(first: date, last: date) -> int | None:
    for year in range(last.year, first.year - 1, -1):
        if date(year, 10, 20) >= first and date(year, 11, 15) <= last:
            return year
    return None


def _utc_naive(value: datetime) -> datetime:
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def true_multipliers(year: int) -> dict[str, float]:
    """Mean festival demand multiplier (weekly pattern divided out) of each phase in ``year``."""
    from growthwheel.sim import seasons

    first = date(year, *PHASES[0][2])
    n = (date(year, *PHASES[-1][3]) - first).days + 1
    cal = seasons.make_calendar(first, n)
    festival = cal.demand / np.asarray(seasons.WEEKLY)[cal.weekday]
    out = {}
    for kind, _name, lo, hi in PHASES:
        a, b = (date(year, *lo) - first).days, (date(year, *hi) - first).days
        out[kind] = float(np.mean(festival[a:b + 1]))
    return out


def act(cfg: Settings, owner: WarehouseOwner, shop: Shop, seed: int, acted: Acted) -> None:
    """Register the influencers, give them their touches, save the campaign, write the truth."""
    from growthwheel.marketing.campaigns import service as campaigns
    from growthwheel.marketing.campaigns.schemas import CampaignIn, InfluencerIn
    from growthwheel.marketing.influencers import service as influencers
    from growthwheel.marketing.influencers.tiers import tier_of
    from growthwheel.promotions.models import Promotion
    from growthwheel.sim.acting_measures import import_rows

    with owner.read() as con:
        paid = con.table("orders").filter(_.status.isin(PAID_STATUSES) & _.customer_id.notnull())
        span = paid.aggregate(first=_.order_date.min(), last=_.order_date.max()).to_pyarrow().to_pylist()[0]
        if span["first"] is None:
            return
        year = _campaign_year(span["first"], span["last"])
        if year is None:
            return
        orders = paid.select("order_id", "customer_id", "ordered_at", "order_date", "total_amount",
                             "refunded_amount").to_pandas()
        spend = (con.table("ad_spend").filter((_.date >= date(year, 10, 20)) & (_.date <= date(year, 11, 15)))
                 .group_by("channel").aggregate(spend=_.spend.sum()).to_pyarrow().to_pylist())
    orders = orders.sort_values(["customer_id", "ordered_at", "order_id"], kind="stable")
    orders = orders.reset_index(drop=True)
    orders["order_date"] = pd.to_datetime(orders["order_date"]).dt.date
    orders["prev_at"] = orders.groupby("customer_id")["ordered_at"].shift(1)
    orders["nth"] = orders.groupby("customer_id").cumcount()
    orders["value"] = orders["total_amount"] - orders["refunded_amount"].fillna(0)
    start, end = date(year, *PHASES[0][2]), date(year, *PHASES[-1][3])
    peak_lo, peak_hi = date(year, *PHASES[1][2]), date(year, *PHASES[1][3])
    peak = orders[(orders["order_date"] >= peak_lo) & (orders["order_date"] <= peak_hi)]
    peak = peak.sort_values("order_id", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed + 1111)
    order_idx = rng.permutation(len(peak))
    events: list[dict[str, Any]] = []
    inf_truth: dict[str, Any] = {}
    cursor = 0
    ids: list[str] = []
    with session_scope(cfg) as session:
        for code, name, platform, followers, share in INFLUENCERS:
            n = round(share * len(peak))
            chosen = peak.iloc[order_idx[cursor:cursor + n]]
            cursor += n
            revenue = int(chosen["value"].sum())
            tier = tier_of(followers)
            fee = max(100, round(revenue / TRUE_ROI[tier]))
            inf = influencers.create(session, InfluencerIn(
                code=code, name=name, platform=platform, followers=followers, cost_per_deal=fee, deals=1,
                landing_url=f"https://shop.example.com/campaign/double11-{year}"), actor=ACTOR)
            ids.append(inf.id)
            for row in chosen.itertuples():
                at = _utc_naive(row.ordered_at)
                gap = timedelta(hours=6)
                if row.prev_at is not None and row.prev_at == row.prev_at:  # not NaT
                    gap = min(gap, (at - _utc_naive(row.prev_at)) / 2)
                seen = at - gap
                events.append({
                    "event_id": f"INF-{code}-{row.order_id}", "type": "view",
                    "occurred_at": seen.replace(tzinfo=UTC).isoformat(), "customer_id": row.customer_id,
                    "session_id": f"INF-{code}-{row.order_id}", "utm_source": platform,
                    "utm_medium": "influencer", "utm_campaign": code,
                    "url": f"https://shop.example.com/campaign/double11-{year}?utm_source={platform}"
                           f"&utm_medium=influencer&utm_campaign={code}",
                })
            inf_truth[code] = {"tier": tier, "orders": len(chosen), "revenue": revenue,
                               "new_customers": int((chosen["nth"] == 0).sum()), "fee": fee,
                               "true_roi": TRUE_ROI[tier]}
        window = orders[(orders["order_date"] >= start) & (orders["order_date"] <= end)]
        gmv = int(window["total_amount"].sum())
        first_days = orders[orders["nth"] == 0]
        new_buyers = int(((first_days["order_date"] >= start) & (first_days["order_date"] <= end)).sum())
        last_year = date(year - 1, 10, 20) >= span["first"]
        budget = {str(r["channel"]): round(BUDGET_FACTOR * int(r["spend"] or 0)) for r in spend}
        links: list[dict[str, str]] = [{"kind": "influencer", "ref_id": i} for i in ids]
        promo = session.query(Promotion).filter(Promotion.name == MARKER_PROMOTION).one_or_none()
        if promo is not None:
            links.append({"kind": "promotion", "ref_id": promo.id})
        body = CampaignIn.model_validate({
            "name": f"双11 {year}", "description": "演示店的双11大促：蓄水 → 爆发 → 返场",
            "target_gmv": round(GMV_TARGET_FACTOR * gmv), "target_new_buyers": new_buyers,
            "target_roi": 3.0, "budget": budget, "profile": "last_year" if last_year else "linear",
            "phases": [{"kind": kind, "name": nm, "starts_on": date(year, *lo).isoformat(),
                        "ends_on": date(year, *hi).isoformat()} for kind, nm, lo, hi in PHASES],
            "links": links,
        })
        campaign = campaigns.create(session, body, actor=ACTOR)
        campaign_id = campaign.id
    rows = pa.Table.from_pylist(events, schema=pa.schema([(c, pa.string()) for c in (
        "event_id", "type", "occurred_at", "customer_id", "session_id", "utm_source", "utm_medium",
        "utm_campaign", "url")]))
    if len(events):
        import_rows(owner, "events", rows)
    acted.add("influencers", len(INFLUENCERS))
    acted.add("influencer_touches", len(events))
    acted.add("campaigns", 1)
    truth(cfg, ["campaigns"], {
        "double11": {
            "campaign_id": campaign_id, "name": f"双11 {year}",
            "from": start.isoformat(), "to": end.isoformat(),
            "peak": [peak_lo.isoformat(), peak_hi.isoformat()],
            "gmv_when_set": gmv, "target_gmv_factor": GMV_TARGET_FACTOR, "new_buyers_when_set": new_buyers,
            "budget_factor": BUDGET_FACTOR,
            "true_festival_multiplier": true_multipliers(year),
        },
        "influencers": inf_truth,
        "influencer_convention": "last influencer touch within 30 days; one touch per reached order",
    })
