"""Group buying (拼团) on SQLite and PostgreSQL: the last seat under a stampede, expiry and refunds,
slots of ``max_groups``, and joining closed groups."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.social import deals, service
from growthwheel.social.models import Group, GroupDeal, GroupMember
from growthwheel.store.db import session_scope

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)


def make_deal(cfg: Settings, **overrides: object) -> str:
    fields: dict[str, object] = {
        "name": "Oolong 拼团", "sku": "TEA-OOLONG", "currency": "CNY", "list_price": 9900,
        "group_price": 6900, "group_size": 5, "time_limit_minutes": 24 * 60, **overrides,
    }
    with session_scope(cfg) as session:
        return deals.create_deal(session, principal=None, **fields).id  # type: ignore[arg-type]


def test_last_seat_goes_to_exactly_one_of_50_concurrent_joiners(store_cfg: Settings) -> None:
    deal_id = make_deal(store_cfg)
    with session_scope(store_cfg) as session:
        group_id = deals.open_group(session, deal_id, "leader", now=T0, order_id="o-leader", paid=True).id
    for i in range(1, 4):
        with session_scope(store_cfg) as session:
            deals.join_group(session, group_id, f"early-{i}", now=T0 + timedelta(minutes=i))
    with session_scope(store_cfg) as session:
        assert deals.get_group(session, group_id).seats_taken == 4

    racers = 50
    barrier = threading.Barrier(racers)
    winners: list[str] = []
    refusals: list[str] = []
    other: list[BaseException] = []
    lock = threading.Lock()

    def join(n: int) -> None:
        barrier.wait()
        try:
            with session_scope(store_cfg) as session:
                deals.join_group(session, group_id, f"racer-{n}", now=T0 + timedelta(hours=1),
                                   order_id=f"o-{n}", paid=True)
            with lock:
                winners.append(f"racer-{n}")
        except deals.GroupFullError as exc:
            with lock:
                refusals.append(exc.code)
        except BaseException as exc:  # anything else is a defect the test must show
            with lock:
                other.append(exc)

    threads = [threading.Thread(target=join, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert other == []
    assert len(winners) == 1
    assert refusals == ["group_full"] * (racers - 1)
    with session_scope(store_cfg) as session:
        group = deals.get_group(session, group_id)
        assert (group.status, group.seats_taken) == ("complete", 5)
        assert group.completed_at == T0 + timedelta(hours=1)
        members = deals.group_members(session, group_id)
        assert members[0].customer_id == "leader"
        assert sorted(m.customer_id for m in members) == sorted(
            ["leader", "early-1", "early-2", "early-3", winners[0]])
        assert {m.amount for m in members} == {6900}


def test_a_timed_out_group_fails_releases_members_and_lists_refunds(store_cfg: Settings) -> None:
    deal_id = make_deal(store_cfg, group_size=3, time_limit_minutes=60, max_groups=1)
    with session_scope(store_cfg) as session:
        group_id = deals.open_group(session, deal_id, "leader", now=T0, order_id="o-1", paid=True).id
        deals.join_group(session, group_id, "friend", now=T0 + timedelta(minutes=10))  # held, not paid
    with session_scope(store_cfg) as session:  # the only slot is taken
        with pytest.raises(deals.DealUnavailableError, match="max_groups"):
            deals.open_group(session, deal_id, "someone", now=T0 + timedelta(minutes=20))

    with session_scope(store_cfg) as session:  # before the deadline nothing expires
        assert deals.expire_groups(session, T0 + timedelta(minutes=59)) == []
    late = T0 + timedelta(minutes=61)
    with session_scope(store_cfg) as session:  # past it, but before the job: joiners are refused
        with pytest.raises(deals.GroupClosedError, match="is expired"):
            deals.join_group(session, group_id, "latecomer", now=late)
    with session_scope(store_cfg) as session:
        refunds = deals.expire_groups(session, late)
    assert [(r.customer_id, r.order_id, r.amount, r.currency) for r in refunds] == [
        ("leader", "o-1", 6900, "CNY")]  # the friend only held a seat: nothing to refund
    with session_scope(store_cfg) as session:
        group = deals.get_group(session, group_id)
        assert (group.status, group.failed_at) == ("failed", late)
        members = {m.customer_id: m for m in deals.group_members(session, group_id)}
        assert {c: (m.status, m.refund_amount) for c, m in members.items()} == {
            "leader": ("released", 6900), "friend": ("released", 0)}
        assert deals.get_deal(session, deal_id).groups_open == 0  # the slot came back
    with session_scope(store_cfg) as session:
        with pytest.raises(deals.GroupClosedError, match="is failed"):
            deals.join_group(session, group_id, "latecomer", now=late)
    with session_scope(store_cfg) as session:  # a second run finds nothing more to do
        assert deals.expire_groups(session, late + timedelta(hours=1)) == []
        assert deals.open_group(session, deal_id, "someone", now=late).status == "open"


def test_a_complete_group_does_not_expire_and_refuses_more(store_cfg: Settings) -> None:
    deal_id = make_deal(store_cfg, group_size=2, time_limit_minutes=30)
    with session_scope(store_cfg) as session:
        group_id = deals.open_group(session, deal_id, "a", now=T0).id
        deals.join_group(session, group_id, "b", now=T0 + timedelta(minutes=5))
    with session_scope(store_cfg) as session:
        assert deals.expire_groups(session, T0 + timedelta(days=1)) == []
        assert deals.get_group(session, group_id).status == "complete"
        with pytest.raises(deals.GroupFullError):
            deals.join_group(session, group_id, "c", now=T0 + timedelta(minutes=6))


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_one_seat_per_customer_and_unknown_groups(store_cfg: Settings) -> None:
    deal_id = make_deal(store_cfg)
    with session_scope(store_cfg) as session:
        group_id = deals.open_group(session, deal_id, "leader", now=T0).id
    with session_scope(store_cfg) as session:
        with pytest.raises(deals.AlreadyJoinedError):
            deals.join_group(session, group_id, "leader", now=T0)
    with session_scope(store_cfg) as session:
        with pytest.raises(service.SocialNotFoundError):
            deals.join_group(session, "nope", "x", now=T0)
        assert session.scalar(select(func.count()).select_from(GroupMember)) == 1
        assert session.scalar(select(Group.seats_taken)) == 1


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_deal_window_and_group_deadline_capped_by_the_deal_end(store_cfg: Settings) -> None:
    deal_id = make_deal(store_cfg, starts_at=T0, ends_at=T0 + timedelta(hours=2), time_limit_minutes=24 * 60)
    with session_scope(store_cfg) as session:
        with pytest.raises(deals.DealUnavailableError, match="not running"):
            deals.open_group(session, deal_id, "early", now=T0 - timedelta(seconds=1))
        group = deals.open_group(session, deal_id, "leader", now=T0 + timedelta(hours=1))
        assert group.expires_at == T0 + timedelta(hours=2)  # not 24 h: the deal ends first
        assert session.get(GroupDeal, deal_id).groups_open == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("field", "value"), [
    ("group_size", 1), ("group_price", -1), ("list_price", 100), ("time_limit_minutes", 0),
    ("max_groups", 0), ("currency", "XXX"),
])
def test_bad_deals_are_refused_naming_the_field(store_cfg: Settings, field: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"^{field}:"):
        make_deal(store_cfg, **{field: value})
    with session_scope(store_cfg) as session:
        assert session.scalar(select(func.count()).select_from(GroupDeal)) == 0


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)
def test_naive_times_are_refused(store_cfg: Settings) -> None:
    deal_id = make_deal(store_cfg)
    with session_scope(store_cfg) as session, pytest.raises(GrowthwheelError, match=r"^now:"):
        deals.open_group(session, deal_id, "x", now=datetime(2026, 1, 1))  # noqa: DTZ001
