"""Social selling under a crowd and against what other records know (issue 10, items 5 and 6),
on SQLite and PostgreSQL: every caller is a thread with its own session released by a barrier,
bounded in time.

* Two bargain starts for one customer and offer at once: one bargain (a partial unique index).
* One customer joining a group (or one helper cutting a bargain) many times at once: one seat (one
  cut), whatever the callers commit; nor do spellings of one id (blanks, Unicode forms: item 7).
* A customer with paid orders imported into the warehouse is not a new customer.
* Two customers cannot refer each other (A → B then B → A, a longer cycle, or both at once).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ibis
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crowds import crowd
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.social import deals, service
from growthwheel.social.api import request_time
from growthwheel.social.api import router as social_router
from growthwheel.social.models import Bargain, Referral
from growthwheel.store.db import session_scope
from growthwheel.warehouse import connect, ingest

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Bargain starts
# ---------------------------------------------------------------------------------------------


def make_offer(cfg: Settings) -> str:
    with session_scope(cfg) as session:
        return deals.create_offer(session, name="Teapot 砍价", sku="POT-1", currency="CNY",
                                    start_price=19900, floor_price=9900, cuts=5, duration_minutes=60,
                                    principal=None).id


def start(cfg: Settings, offer_id: str, customer: str, now: datetime = T0) -> str:
    with session_scope(cfg) as session:
        return deals.start_bargain(session, offer_id, customer, now=now).id


def open_bargains(cfg: Settings, offer_id: str) -> list[str]:
    with session_scope(cfg) as session:
        return sorted(session.scalars(select(Bargain.customer_id)
                                      .where(Bargain.offer_id == offer_id, Bargain.status == "open")))


def test_a_crowd_starting_one_bargain_gets_one(store_cfg: Settings) -> None:
    offer_id = make_offer(store_cfg)
    results = crowd(16, lambda i: start(store_cfg, offer_id, "alice" if i % 2 else "bob"))
    assert sorted(r for r in results if r == "bargain_exists") == ["bargain_exists"] * 14, results
    assert open_bargains(store_cfg, offer_id) == ["alice", "bob"]


def test_a_bargain_whose_time_ran_out_does_not_block_a_new_one(store_cfg: Settings) -> None:
    offer_id = make_offer(store_cfg)
    first = start(store_cfg, offer_id, "alice")
    with pytest.raises(deals.BargainExistsError):
        start(store_cfg, offer_id, "alice", T0 + timedelta(minutes=59))
    second = start(store_cfg, offer_id, "alice", T0 + timedelta(minutes=61))  # the job has not run yet
    with session_scope(store_cfg) as session:
        assert session.get(Bargain, first).status == "expired"  # type: ignore[union-attr]
        assert session.get(Bargain, second).status == "open"  # type: ignore[union-attr]


def test_one_customer_joining_a_group_many_times_at_once_takes_one_seat(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        deal = deals.create_deal(session, name="拼团", sku="TEA", currency="CNY", group_price=100,
                                   group_size=5, time_limit_minutes=60, principal=None)
        group_id = deals.open_group(session, deal.id, "leader", now=T0).id

    def join(_i: int) -> str:
        # a caller that records the refusal and commits its unit of work anyway
        with session_scope(store_cfg) as session:
            try:
                deals.join_group(session, group_id, "alice", now=T0)
            except deals.AlreadyJoinedError as exc:
                return exc.code
            return "joined"

    results = crowd(8, join)
    assert sorted(results) == ["already_joined"] * 7 + ["joined"], results
    with session_scope(store_cfg) as session:
        group = deals.get_group(session, group_id)
        assert (group.seats_taken, len(deals.group_members(session, group_id))) == (2, 2)


def test_one_helper_cutting_many_times_at_once_takes_one_cut(store_cfg: Settings) -> None:
    offer_id = make_offer(store_cfg)
    bargain_id = start(store_cfg, offer_id, "alice")

    def cut(_i: int) -> str:
        with session_scope(store_cfg) as session:  # commits even after a refusal
            try:
                deals.cut(session, bargain_id, "helper", now=T0)
            except deals.AlreadyCutError as exc:
                return exc.code
            return "cut"

    results = crowd(8, cut)
    assert sorted(results) == ["already_cut"] * 7 + ["cut"], results
    with session_scope(store_cfg) as session:
        bargain = deals.get_bargain(session, bargain_id)
        assert bargain.cuts_done == len(deals.bargain_cuts(session, bargain_id)) == 1
        assert bargain.current_price == deals.bargain_cuts(session, bargain_id)[0].price_after


def test_spellings_of_one_id_joining_at_once_take_one_seat(store_cfg: Settings) -> None:
    # the shop's rule for ids (kit.ids): blanks around an id and its Unicode form are not the id
    spellings = ["C0000031", " C0000031", "C0000031\u3000", "\u00a0C0000031\t", "\ufeffC0000031",
                 "C0000031 ", "\u3000C0000031", "C0000031\u00a0"]
    with session_scope(store_cfg) as session:
        deal = deals.create_deal(session, name="拼团", sku="TEA", currency="CNY", group_price=100,
                                   group_size=20, time_limit_minutes=60, principal=None)
        group_id = deals.open_group(session, deal.id, "leader", now=T0).id

    def join(i: int) -> str:
        with session_scope(store_cfg) as session:
            return deals.join_group(session, group_id, spellings[i], now=T0).customer_id

    results = crowd(len(spellings), join)
    assert sorted(results) == ["C0000031"] + ["already_joined"] * 7, results
    with session_scope(store_cfg) as session:
        members = [m.customer_id for m in deals.group_members(session, group_id)]
        assert members == ["leader", "C0000031"]


# ---------------------------------------------------------------------------------------------
# Referral: who is new, and no cycles
# ---------------------------------------------------------------------------------------------


def code_of(cfg: Settings, customer: str) -> str:
    with session_scope(cfg) as session:
        return service.invite_code(session, customer, now=T0).code


def bind(cfg: Settings, invitee: str, code: str, prior: service.PriorOrders | None = None) -> str:
    """``bound`` or the refusal reason."""
    with session_scope(cfg) as session:
        outcome = service.bind(session, invitee, code, now=T0 + timedelta(hours=1), prior_orders=prior)
        return "bound" if outcome.bound else str(outcome.reason)


def import_orders(cfg: Settings, tmp_path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Import ``(order_id, customer_id, status)`` orders into the warehouse, as a shop would."""
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,ordered_at,total,status\n"
                    + "".join(f"{o},{c},2026-03-01T10:00:00+08:00,199.00,{s}\n" for o, c, s in rows),
                    encoding="utf-8")
    result = ingest.import_files("orders", [path], cfg=cfg)
    assert result.rows_quarantined == 0


def test_a_customer_with_imported_paid_orders_is_not_new(store_cfg: Settings, tmp_path: Path) -> None:
    import_orders(store_cfg, tmp_path, [("T1", "old-buyer", "completed"), ("T2", "refunder", "refunded"),
                                        ("T3", "never-paid", "cancelled")])
    code = code_of(store_cfg, "alice")
    backend = connect(store_cfg)
    try:
        prior = service.warehouse_prior_orders(backend)
        assert bind(store_cfg, "old-buyer", code, prior) == "not_new_customer"
        assert bind(store_cfg, "refunder", code, prior) == "not_new_customer"  # bought, then refunded
        assert bind(store_cfg, "never-paid", code, prior) == "bound"  # a cancelled order is no purchase
        assert bind(store_cfg, "fresh", code, prior) == "bound"
    finally:
        backend.disconnect()


@pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)  # the service test covers PostgreSQL
def test_the_api_asks_the_warehouse_who_is_new(store_cfg: Settings, tmp_path: Path,
                                               make_api_key: Callable[..., str]) -> None:
    import_orders(store_cfg, tmp_path, [("T1", "old-buyer", "completed")])
    code = code_of(store_cfg, "alice")
    app = create_app(store_cfg, routers=[social_router])
    app.dependency_overrides[request_time] = lambda: T0 + timedelta(hours=1)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {make_api_key('read', 'write')}"
        old = client.post("/api/v1/social/referral/bindings", json={"invitee_id": "old-buyer", "code": code})
        assert old.status_code == 409, old.text
        assert old.json()["reason"] == "not_new_customer"
        fresh = client.post("/api/v1/social/referral/bindings", json={"invitee_id": "fresh", "code": code})
        assert fresh.status_code == 201, fresh.text


def test_a_checkout_order_makes_a_customer_not_new(store_cfg: Settings) -> None:
    from growthwheel.promotions import orders
    from growthwheel.promotions.schemas import OrderIn

    with session_scope(store_cfg) as session:
        orders.commit(session, OrderIn(order_id="o1", customer_id="buyer", lines=[
            {"line_id": "1", "sku": "TEA", "unit_price": 1000, "quantity": 1}]), currency="CNY")
    assert bind(store_cfg, "buyer", code_of(store_cfg, "alice")) == "not_new_customer"


def test_two_customers_cannot_refer_each_other(store_cfg: Settings) -> None:
    a, b, c = (code_of(store_cfg, x) for x in ("a", "b", "c"))
    assert bind(store_cfg, "b", a) == "bound"  # a invited b
    assert bind(store_cfg, "a", b) == "referral_cycle"  # b cannot invite a back
    assert bind(store_cfg, "c", b) == "bound"  # b invited c
    assert bind(store_cfg, "a", c) == "referral_cycle"  # a → b → c → a
    assert bind(store_cfg, "d", c) == "bound"  # chains are fine


def test_mutual_binds_at_the_same_moment_bind_one_way(store_cfg: Settings) -> None:
    pairs = [(f"x{i}", f"y{i}") for i in range(8)]
    codes = {c: code_of(store_cfg, c) for pair in pairs for c in pair}
    # each pair binds both ways at once: x with y's code and y with x's code
    jobs = [(x, codes[y]) for x, y in pairs] + [(y, codes[x]) for x, y in pairs]
    results = crowd(len(jobs), lambda i: bind(store_cfg, *jobs[i]))
    assert not [r for r in results if r not in ("bound", "referral_cycle")], results
    with session_scope(store_cfg) as session:
        edges = set(session.execute(select(Referral.inviter_id, Referral.invitee_id)).all())
        assert session.scalar(select(func.count()).select_from(Referral)) == len(pairs)
    for x, y in pairs:
        assert ((x, y) in edges) != ((y, x) in edges)  # exactly one direction per pair


def test_a_warehouse_without_orders_knows_no_prior_orders(tmp_path: Path) -> None:
    backend = ibis.duckdb.connect(str(tmp_path / "empty.duckdb"))
    try:
        assert service.warehouse_prior_orders(backend)("anyone") is False
    finally:
        backend.disconnect()
