"""The triggers the first journeys tests left out, through real stores and the tick:

* ``tier_change`` (members' ``tier_since`` in the window; to a given tier or any; each change its
  own occurrence, so a customer who moves up twice may enter twice under ``reentry: always``);
* ``points_expiring`` (lots with points left whose expiry minus ``within_days`` falls in the window,
  at least ``min_points`` of them, used-up lots not counted);
* ``coupon_expiring`` (issued codes never used whose batch ends within ``within_days``; used codes,
  other batches and codes expiring later are not hit);
* ``segment`` enter / leave from the membership history that real refreshes write
  (``segments.repository.materialise``).

Operational-store triggers run on SQLite and PostgreSQL (``store_cfg``), the segment trigger on DuckDB.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import ibis
from sqlalchemy import select

from growthwheel.config import Settings
from growthwheel.journeys import definition as d
from growthwheel.journeys import service, triggers
from growthwheel.journeys.models import Enrolment
from growthwheel.journeys.repository import WarehouseView
from growthwheel.loyalty.models import Member, MemberTier, PointsLot
from growthwheel.promotions import coupons
from growthwheel.promotions.models import CouponCode
from growthwheel.segments import repository as segments_repo
from growthwheel.store.db import session_scope

NOW = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
TZ = "Asia/Shanghai"
ENV = service.Env(timezone=TZ, secret=b"s" * 32)


def window(hours: float, end: datetime = NOW) -> triggers.Window:
    return triggers.Window(end - timedelta(hours=hours), end, TZ)


def store_hits(cfg: Settings, trig: Any, w: triggers.Window) -> set[tuple[str, str]]:
    with session_scope(cfg) as session:
        return {(c.customer_id, c.occurrence) for c in triggers.evaluate_store(session, trig, w)}


def tagging(trigger: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"trigger": trigger, "start": "tag",
            "steps": [{"id": "tag", "type": "tag", "tag": "hit", "next": "out"},
                      {"id": "out", "type": "exit"}],
            "holdout_share": 0.0, **extra}


def activate(cfg: Settings, name: str, definition: dict[str, Any], at: datetime) -> str:
    with session_scope(cfg) as session:
        row = service.create_journey(session, name, definition, actor_name="t", now=at)
        service.change_status(session, row.id, "activate", actor_name="t", now=at)
        return row.id


def entered(cfg: Settings, journey_id: str) -> list[tuple[str, str]]:
    with session_scope(cfg) as session:
        q = select(Enrolment.customer_id, Enrolment.occurrence).where(Enrolment.journey_id == journey_id)
        return sorted((str(c), str(o)) for c, o in session.execute(q))


def test_tier_change_trigger(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        session.add_all([MemberTier(code="silver", name="银卡", rank=1, min_growth=1000),
                         MemberTier(code="gold", name="金卡", rank=2, min_growth=5000)])
        session.flush()
        session.add_all([
            Member(customer_id="up", tier_code="gold", tier_since=NOW - timedelta(hours=2)),
            Member(customer_id="silver", tier_code="silver", tier_since=NOW - timedelta(hours=1)),
            Member(customer_id="old", tier_code="gold", tier_since=NOW - timedelta(days=3)),
            Member(customer_id="none", tier_code=None, tier_since=NOW - timedelta(hours=1)),
        ])
    since = (NOW - timedelta(hours=2)).isoformat()
    any_tier = store_hits(store_cfg, d.TierChangeTrigger(kind="tier_change"), window(6))
    assert any_tier == {("up", f"tier:gold:{since}"),
                        ("silver", f"tier:silver:{(NOW - timedelta(hours=1)).isoformat()}")}
    to_gold = store_hits(store_cfg, d.TierChangeTrigger(kind="tier_change", to_tier="gold"), window(6))
    assert to_gold == {("up", f"tier:gold:{since}")}
    # the window is (since, now]: a change exactly at ``since`` belongs to the previous tick
    assert store_hits(store_cfg, d.TierChangeTrigger(kind="tier_change", to_tier="gold"), window(2)) == set()

    # through the tick: entering once per change; a second change is a new occurrence
    journey = activate(store_cfg, "gold", tagging({"kind": "tier_change", "to_tier": "gold"},
                                                  reentry={"policy": "always"}, backfill_days=1), NOW)
    view = WarehouseView(None)
    assert service.tick(store_cfg, view, now=NOW, env=ENV).enrolled == 1  # up (2 h ago); old: 3 days ago
    assert entered(store_cfg, journey) == [("up", f"tier:gold:{since}")]
    later = NOW + timedelta(hours=5)
    with session_scope(store_cfg) as session:
        member = session.get(Member, "silver")
        assert member is not None
        member.tier_code, member.tier_since = "gold", later - timedelta(hours=1)
        again = session.get(Member, "up")  # down and back up to gold: a new change
        assert again is not None
        again.tier_since = later - timedelta(hours=2)
    assert service.tick(store_cfg, view, now=later, env=ENV).enrolled == 2
    assert service.tick(store_cfg, view, now=later, env=ENV).enrolled == 0  # the same changes: once
    assert [c for c, _o in entered(store_cfg, journey)] == ["silver", "up", "up"]


def test_points_expiring_trigger(store_cfg: Settings) -> None:
    soon = NOW + timedelta(days=7) - timedelta(hours=1)  # expires 7 days from an instant in the window
    with session_scope(store_cfg) as session:
        session.add_all([
            PointsLot(customer_id="a", earned_at=NOW - timedelta(days=300), expires_at=soon, points=500,
                      remaining=300, source="order"),
            PointsLot(customer_id="a", earned_at=NOW - timedelta(days=200), expires_at=soon, points=100,
                      remaining=100, source="order"),  # same expiry: summed (400)
            PointsLot(customer_id="few", earned_at=NOW - timedelta(days=300), expires_at=soon, points=50,
                      remaining=20, source="order"),
            PointsLot(customer_id="spent", earned_at=NOW - timedelta(days=300), expires_at=soon, points=500,
                      remaining=0, source="order"),
            PointsLot(customer_id="later", earned_at=NOW - timedelta(days=10),
                      expires_at=NOW + timedelta(days=30), points=500, remaining=500, source="order"),
        ])
    trig = d.PointsExpiringTrigger(kind="points_expiring", within_days=7, min_points=100)
    day = soon.astimezone(triggers.ZoneInfo(TZ)).date()
    assert store_hits(store_cfg, trig, window(24)) == {("a", f"points:{day}")}
    low = d.PointsExpiringTrigger(kind="points_expiring", within_days=7)
    assert store_hits(store_cfg, low, window(24)) == {("a", f"points:{day}"), ("few", f"points:{day}")}
    assert store_hits(store_cfg, trig, window(24, NOW - timedelta(days=2))) == set()  # too early

    journey = activate(store_cfg, "points", tagging(trig.model_dump(), backfill_days=1), NOW)
    assert service.tick(store_cfg, WarehouseView(None), now=NOW, env=ENV).enrolled == 1
    assert entered(store_cfg, journey) == [("a", "once")]


def test_coupon_expiring_unused_trigger(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        reward = {"reward": {"type": "order_amount_off", "amount": 500}}
        start = NOW - timedelta(days=30)
        ending = coupons.create_batch(session, name="ending", definition=reward, valid_from=start,
                                      valid_until=NOW + timedelta(days=3, hours=-2), actor_name="t")
        lasting = coupons.create_batch(session, name="lasting", definition=reward, valid_from=start,
                                       valid_until=NOW + timedelta(days=60), actor_name="t")
        earlier = NOW - timedelta(days=20)
        issued = coupons.issue(session, ending, ["keeper", "user"], now=earlier, actor_name="t")
        coupons.issue(session, lasting, ["keeper"], now=earlier, actor_name="t")
        used = session.scalars(select(CouponCode).where(CouponCode.code == issued.issued["user"])).one()
        used.uses = 1
        ending_id = ending.id
    code = issued.issued["keeper"]
    trig = d.CouponExpiringTrigger(kind="coupon_expiring", within_days=3)
    assert store_hits(store_cfg, trig, window(24)) == {("keeper", f"coupon:{code}")}
    only = d.CouponExpiringTrigger(kind="coupon_expiring", within_days=3, batch_id="nope")
    assert store_hits(store_cfg, only, window(24)) == set()
    mine = d.CouponExpiringTrigger(kind="coupon_expiring", within_days=3, batch_id=ending_id)
    assert store_hits(store_cfg, mine, window(24)) == {("keeper", f"coupon:{code}")}

    journey = activate(store_cfg, "coupon", tagging(mine.model_dump(), reentry={"policy": "always"},
                                                    backfill_days=1), NOW)
    assert service.tick(store_cfg, WarehouseView(None), now=NOW, env=ENV).enrolled == 1
    assert entered(store_cfg, journey) == [("keeper", f"coupon:{code}")]


def test_segment_enter_and_leave_triggers(store_cfg: Settings) -> None:
    con = duckdb.connect()
    backend = ibis.duckdb.from_connection(con)
    first, second = NOW - timedelta(days=2), NOW - timedelta(hours=3)

    def refresh(members: list[str], at: datetime) -> None:
        frame = ibis.memtable({"customer_id": members})
        segments_repo.materialise(con, "vip", lambda _b: frame, at.replace(tzinfo=None))

    refresh(["a", "b"], first)
    refresh(["b", "c"], second)  # a left, c entered
    view = WarehouseView(backend)
    enter = d.SegmentTrigger(kind="segment", segment_id="vip")
    leave = d.SegmentTrigger(kind="segment", segment_id="vip", on="leave")
    stamp = second.replace(tzinfo=None).isoformat(sep=" ")
    def found(trig: d.SegmentTrigger, hours: float) -> set[tuple[str, str]]:
        return {(c.customer_id, c.occurrence) for c in view.candidates(trig, window(hours))}

    assert found(enter, 24) == {("c", f"enter:{stamp}")}
    assert found(leave, 24) == {("a", f"leave:{stamp}")}
    assert {c.customer_id for c in view.candidates(enter, window(72))} == {"a", "b", "c"}
    other = d.SegmentTrigger(kind="segment", segment_id="other")
    assert view.candidates(other, window(72)) == []

    journey = activate(store_cfg, "left vip", tagging(leave.model_dump(), backfill_days=1), NOW)
    assert service.tick(store_cfg, view, now=NOW, env=ENV).enrolled == 1
    assert [c for c, _o in entered(store_cfg, journey)] == ["a"]
    refresh(["b", "c"], NOW + timedelta(minutes=5))  # nothing changed: no new events, no entry
    assert service.tick(store_cfg, view, now=NOW + timedelta(minutes=10), env=ENV).enrolled == 0
