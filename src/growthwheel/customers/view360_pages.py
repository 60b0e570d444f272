"""The customer 360 sections of the profile page, formatted for ``customers/profile.html.j2``
(names in the reader's language, money in the shop currency, times in shop time)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from growthwheel.customers.view360 import StoreFacts, WarehouseFacts
from growthwheel.insight.rfm import CLASSIC_SEGMENTS, VALUE_CLASSES
from growthwheel.kit.money import currency_exponent
from growthwheel.web.i18n import Translator, format_count, format_money, k
from growthwheel.web.pages import local_time

_SEGMENT_ZH = {s.name: s.label_zh for s in CLASSIC_SEGMENTS}
_CLASS_EN = dict(VALUE_CLASSES.values())
MESSAGE_STATUS_KEYS = {
    "pending": k("customer360.message.pending"), "claimed": k("customer360.message.claimed"),
    "sending": k("customer360.message.sending"), "sent": k("customer360.message.sent"),
    "skipped": k("customer360.message.skipped"), "dead": k("customer360.message.dead"),
}
CHANNEL_KEYS = {
    "email": k("customer360.channel.email"), "sms": k("customer360.channel.sms"),
    "wecom": k("customer360.channel.wecom"), "webhook": k("customer360.channel.webhook"),
    "push": k("customer360.channel.push"),
}


def _mask(code: str) -> str:
    """A bearer code shown to a role that may not use it: its last four characters."""
    return "••••" + code[-4:]


def view360_context(t: Translator, w: WarehouseFacts, s: StoreFacts, currency: str, zone: ZoneInfo, *,
                    lang: str, can_edit: bool) -> dict[str, Any]:
    """The 360 sections: ``cards`` (RFM, value class, lifecycle stage, CLV, P(alive), tier,
    points), ``history``, ``tags``, ``segments``, ``coupons``, ``messages``."""
    exponent = currency_exponent(currency)
    zh = lang == "zh"
    rfm = w.rfm
    if rfm:
        name = str(rfm["segment"])
        segment = (_SEGMENT_ZH.get(name, name), name) if zh else (name, _SEGMENT_ZH.get(name, ""))
        vclass = str(rfm["value_class"])
        value = (vclass, _CLASS_EN.get(vclass, "")) if zh else (_CLASS_EN.get(vclass, vclass), vclass)
    cards = [
        {"name": "rfm_segment", "label": t(k("customer360.rfm_segment")),
         "value": segment[0] if rfm else "–", "gloss": segment[1] if rfm else "",
         "gloss_lang": "en" if zh else "zh-CN",
         "note": t(k("customer360.rfm_scores"), rfm=rfm["rfm"]) if rfm else ""},
        {"name": "rfm_class", "label": t(k("customer360.rfm_class")),
         "value": value[0] if rfm else "–", "gloss": value[1] if rfm else "",
         "gloss_lang": "en" if zh else "zh-CN", "note": ""},
        {"name": "lifecycle_stage", "label": t(k("customer360.stage")),
         "value": t(k(f"insight.stage.{w.stage}")) if w.stage else t(k("insight.stage.none")),
         "gloss": "", "gloss_lang": "", "note": t(k("customer360.as_of"), as_of=w.as_of.isoformat())},
        {"name": "clv", "label": t(k("customer360.clv")),
         "value": format_money(Decimal(w.clv).scaleb(-exponent), currency, places=exponent)
         if w.clv is not None else "–", "gloss": "", "gloss_lang": "",
         "note": t(k("customer360.scored"), day=str(w.scored_at)) if w.scored_at else
         t(k("customer360.not_scored"))},
        {"name": "p_alive", "label": t(k("customer360.p_alive")),
         "value": f"{w.p_alive:.1%}" if w.p_alive is not None else "–", "gloss": "", "gloss_lang": "",
         "note": ""},
        {"name": "tier", "label": t(k("customer360.tier")), "value": s.tier_name or "–", "gloss": "",
         "gloss_lang": "", "note": t(k("customer360.growth"), growth=format_count(s.growth))},
        {"name": "points", "label": t(k("customer360.points")), "value": format_count(s.points_balance),
         "gloss": "", "gloss_lang": "",
         "note": t(k("customer360.spendable"), points=format_count(s.points_spendable))},
    ]
    history = [{"day": h["day"].isoformat(),
                "stage": t(k(f"insight.stage.{h['stage']}")) if h["stage"] else t(k("insight.stage.none")),
                "code": h["stage"] or "none"} for h in w.history]
    coupons = [{"code": c["code"] if can_edit else _mask(c["code"]), "batch": c["batch"],
                "href": f"/coupons/{c['batch_id']}",
                "issued": local_time(c["issued_at"], zone) if isinstance(c["issued_at"], datetime) else "–",
                "uses": format_count(int(c["uses"])),
                "max_uses": format_count(c["max_uses"]) if c["max_uses"] is not None else "∞",
                "state": t(k("customer360.coupon.used")) if c["uses"] else t(k("customer360.coupon.held")),
                "used": bool(c["uses"])} for c in s.coupons]
    messages = [{"channel": t(CHANNEL_KEYS[m["channel"]]) if m["channel"] in CHANNEL_KEYS else m["channel"],
                 "status": t(MESSAGE_STATUS_KEYS[m["status"]]) if m["status"] in MESSAGE_STATUS_KEYS
                 else m["status"], "journey": m["journey"] or "–",
                 "href": f"/journeys/{m['journey_id']}" if m["journey_id"] else "",
                 "when": local_time(m["sent_at"] or m["created_at"], zone)} for m in s.messages]
    return {
        "cards": cards, "history": history, "tags": w.tags,
        "segments": [{"name": s.segment_names.get(i, i), "href": f"/customers?segment={i}"}
                     for i in w.segment_ids],
        "coupons": coupons, "coupons_used": sum(1 for c in coupons if c["used"]), "messages": messages,
    }
