"""A tiny shop around a campaign (1–7 Nov 2024), with figures worked out by hand in the tests.

Orders (shop time +08:00): o0 c2 10 Oct ¥100 (so c2 is not new); o1 c1 1 Nov P1×2 ¥200 (warm-up);
o2 c2 4 Nov P2 ¥300, o3 c3 4 Nov P1 ¥100 (came through KOL_A's UTM link on 3 Nov), o4 c4 5 Nov
P3×3 ¥600 with coupon code KOC_B (peak); o5 c5 6 Nov P2 ¥300 (after-glow); o6 c1 20 Nov P1 ¥100
(a repurchase after the campaign); o2 and o4 had the promotion D11PROMO
(¥30 and ¥60 off). Catalogue P1–P4 (P4 never sells). Ad spend: douyin ¥100 on
1 Nov and ¥200 on 4 Nov, baidu ¥50 on 2 Nov.
"""

from __future__ import annotations

from pathlib import Path

from growthwheel.config import Settings
from growthwheel.warehouse import ingest

PRODUCTS = """sku,name,price
P1,Face cream,100.00
P2,Serum,300.00
P3,Toner,200.00
P4,Mask,50.00
"""
LINES = """order_id,customer_id,ordered_at,sku,quantity,line_total,coupon_code,discount,promotion_ids
o0,c2,2024-10-10T12:00:00+08:00,P1,1,100.00,,,
o1,c1,2024-11-01T12:00:00+08:00,P1,2,200.00,,,
o2,c2,2024-11-04T12:00:00+08:00,P2,1,300.00,,30.00,D11PROMO
o3,c3,2024-11-04T13:00:00+08:00,P1,1,100.00,,,
o4,c4,2024-11-05T12:00:00+08:00,P3,3,600.00,KOC_B,60.00,D11PROMO;OTHER
o5,c5,2024-11-06T12:00:00+08:00,P2,1,300.00,,,
o6,c1,2024-11-20T12:00:00+08:00,P1,1,100.00,,,
"""
EVENTS = """event_id,type,occurred_at,customer_id,session_id,utm_source,utm_medium,utm_campaign
e1,view,2024-11-03T20:00:00+08:00,c3,s1,douyin,influencer,KOL_A
e2,view,2024-11-01T10:00:00+08:00,c1,s2,douyin,cpc,double11
"""
SPEND = """date,channel,spend,utm_campaign
2024-11-01,douyin,100.00,double11
2024-11-04,douyin,200.00,double11
2024-11-02,baidu,50.00,brand
"""
# Stock: P1 10 and P2 4 on hand on 31 Oct, one P2 received on 3 Nov; P3 and P4 never counted.
INVENTORY = """sku,date,on_hand,received,lead_time_days,unit_cost,location
P1,2024-10-31,10,,,,
P2,2024-10-31,4,,,,
P2,2024-11-03,,1,7,150.00,
"""


def load(cfg: Settings, folder: Path) -> None:
    """Import the tiny shop into ``cfg``'s warehouse."""
    for name, text in (("products", PRODUCTS), ("order_lines", LINES), ("events", EVENTS),
                       ("ad_spend", SPEND), ("inventory", INVENTORY)):
        path = folder / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        result = ingest.import_files(name, [path], cfg=cfg)
        assert result.rows_quarantined == 0, (name, result)


KOL_A = {"code": "KOL_A", "name": "Ms A", "platform": "Douyin", "followers": 1_500_000,
         "cost_per_deal": 20_000, "landing_url": "https://shop.example.com/p/P1?ref=x"}
KOC_B = {"code": "KOC_B", "name": "B", "platform": "xiaohongshu", "followers": 5_000,
         "cost_per_deal": 1_000, "deals": 2}


def campaign_body(influencer_ids: list[str]) -> dict[str, object]:
    """Double 11: targets ¥2,000 GMV and 10 new buyers; warm-up 20 %, peak 60 %, after-glow the rest."""
    return {
        "name": "Double 11 2024", "target_gmv": 200_000, "target_new_buyers": 10, "target_roi": 2.0,
        "budget": {"Douyin": 50_000},
        "phases": [
            {"kind": "warm_up", "name": "蓄水", "starts_on": "2024-11-01", "ends_on": "2024-11-03",
             "share": 0.2},
            {"kind": "peak", "name": "爆发", "starts_on": "2024-11-04", "ends_on": "2024-11-05",
             "share": 0.6},
            {"kind": "after_glow", "name": "返场", "starts_on": "2024-11-06", "ends_on": "2024-11-07"},
        ],
        "links": [{"kind": "influencer", "ref_id": i} for i in influencer_ids],
    }
