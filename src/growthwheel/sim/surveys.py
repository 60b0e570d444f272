"""The demo's NPS survey: customers answer with a known true NPS per latent class, so every saved
segment's true NPS is known exactly and the console's interval can be checked against it.

Every customer belongs to one latent class, in this order of precedence:

* in the saved segment ``高价值客户`` (high value) → promoters 70%, passives 22%, detractors 8%
  (true NPS +62);
* else in ``沉睡客户`` (dormant) → 15% / 35% / 50% (true NPS −35);
* else → 40% / 35% / 25% (true NPS +15).

About 35% of the customers (at most 3,000) answer, once each, at a random moment in the history's
last 150 days, through a survey link sent by email (60%) or SMS (40%) — the channel is independent of the
answer, so every channel's true NPS is the mix of its respondents. Scores are drawn per group
(promoter 9–10, passive 7–8, detractor 0–6); a third of the answers carry a comment in Chinese
that fits the score.

The truth written to ``ground_truth.json`` under ``surveys`` is the expected NPS **of the customers
who answered**: for a segment, the mean over its respondents of (p_promoter − p_detractor) of
their class. An interval computed from the answers should cover it (95% of the time at 95%).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from growthwheel.config import Settings
from growthwheel.sim.living import ACTOR, SEGMENT_HIGH_VALUE, Acted, Shop, moment, truth
from growthwheel.store.db import session_scope
from growthwheel.warehouse.owner import WarehouseOwner

SURVEY_NAME = "客户推荐度调研（NPS）"
DORMANT_SEGMENT = "沉睡客户"
#: (promoters, passives, detractors) per latent class.
CLASSES: dict[str, tuple[float, float, float]] = {
    "high_value": (0.70, 0.22, 0.08),
    "dormant": (0.15, 0.35, 0.50),
    "other": (0.40, 0.35, 0.25),
}
RESPONSE_RATE = 0.35
#: At most this many answers (a 50,000-customer demo would otherwise record ~17,500 one by one).
MAX_RESPONDENTS = 3_000
ANSWER_DAYS = 150
COMMENT_SHARE = 1 / 3
COMMENTS = {
    "promoter": ["质量很好，物流也快，会推荐给朋友", "客服态度好，包装也很用心",
                 "性价比高，已经回购好几次了"],
    "passive": ["东西还行，就是发货有点慢", "价格可以再优惠一点", "整体满意，包装一般"],
    "detractor": ["包装破损，客服回复很慢", "质量不如预期，退货麻烦", "物流太慢了，等了一个星期"],
}


def _members(cfg: Settings, owner: WarehouseOwner) -> dict[str, set[str]]:
    """Saved segment name → its current members."""
    from growthwheel.segments.models import Segment
    from growthwheel.segments.repository import MEMBERS_TABLE, has_table

    with session_scope(cfg) as session:
        names = {s.id: s.name for s in session.scalars(select(Segment))}
    out: dict[str, set[str]] = {name: set() for name in names.values()}
    with owner.read() as backend:
        if not has_table(backend, MEMBERS_TABLE):
            return out
        rows = backend.table(MEMBERS_TABLE).select("segment_id", "customer_id").to_pyarrow().to_pylist()
    for row in rows:
        name = names.get(str(row["segment_id"]))
        if name is not None:
            out[name].add(str(row["customer_id"]))
    return out


def _class_of(customer: str, members: dict[str, set[str]]) -> str:
    if customer in members.get(SEGMENT_HIGH_VALUE, set()):
        return "high_value"
    if customer in members.get(DORMANT_SEGMENT, set()):
        return "dormant"
    return "other"


def _true_nps(classes: list[str]) -> float | None:
    if not classes:
        return None
    return round(100 * sum(CLASSES[c][0] - CLASSES[c][2] for c in classes) / len(classes), 3)


def answer(cfg: Settings, owner: WarehouseOwner, shop: Shop, seed: int, acted: Acted) -> None:
    """Create the demo survey, record the answers through the survey service, write the truth."""
    from growthwheel.surveys import service
    from growthwheel.surveys.nps import group_of

    rng = np.random.default_rng(seed + 2000)
    members = _members(cfg, owner)
    respondents = [c for c in shop.customers if rng.random() < RESPONSE_RATE]
    if len(respondents) > MAX_RESPONDENTS:
        respondents = sorted(str(c) for c in rng.choice(respondents, MAX_RESPONDENTS, replace=False))
    start = shop.end - timedelta(days=ANSWER_DAYS)
    classes: dict[str, str] = {}
    with session_scope(cfg) as session:
        survey = service.create_survey(session, service.SurveySpec(name=SURVEY_NAME, channel="email",
                                                                   journey="售后关怀"), actor=ACTOR)
        for customer in respondents:
            latent = _class_of(customer, members)
            classes[customer] = latent
            group = int(rng.choice(3, p=CLASSES[latent]))
            score = int(rng.integers(9, 11) if group == 0 else rng.integers(7, 9) if group == 1
                        else rng.integers(0, 7))
            comment = None
            if rng.random() < COMMENT_SHARE:
                pool = COMMENTS[group_of(score)]
                comment = pool[int(rng.integers(len(pool)))]
            channel = "email" if rng.random() < 0.6 else "sms"
            key = f"demo-nps:{customer}"
            service.record_answer(session, survey, service.AnswerIn(
                customer_id=customer, score=score, comment=comment, response_key=key, source="link",
                channel=channel, message_key=key, answered_at=moment(rng, start, shop.end)))
    segments: dict[str, Any] = {}
    for name, who in sorted(members.items()):
        answered = [classes[c] for c in who if c in classes]
        segments[name] = {"respondents": len(answered), "true_nps": _true_nps(answered)}
    truth(cfg, ["surveys"], {
        "survey": SURVEY_NAME,
        "classes": {name: {"promoters": p, "passives": pa, "detractors": d,
                           "true_nps": round(100 * (p - d), 3)} for name, (p, pa, d) in CLASSES.items()},
        "overall": {"respondents": len(classes), "true_nps": _true_nps(list(classes.values()))},
        "segments": segments,
        "meaning": "each customer answers from the distribution of their latent class (high value, else "
                   "dormant, else other); true_nps of a segment is the expected NPS of its respondents "
                   "(the mean of p_promoter − p_detractor over them), which the console's interval "
                   "should cover",
    })
    acted.add("survey_answers", len(classes))
