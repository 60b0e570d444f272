"""``/api/v1/social`` over a real store with real API keys: referral, group buying and bargain as
the shop's systems would call them, scopes, and problem+json refusals (on SQLite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from growthwheel.accounts.models import AuditEntry
from growthwheel.api.app import create_app
from growthwheel.config import Settings
from growthwheel.loyalty import service as loyalty
from growthwheel.social import bargain
from growthwheel.social.api import request_time
from growthwheel.social.api import router as social_router
from growthwheel.social.models import Bargain, ReferralAttempt
from growthwheel.store.db import session_scope

T0 = datetime(2026, 6, 18, 12, 0, tzinfo=UTC)
API = "/api/v1/social"
# The store's behaviour on both databases is covered by the service tests; here the HTTP face.
pytestmark = pytest.mark.parametrize("store_cfg", ["sqlite"], indirect=True)


class Clock:
    """The time the app acts at; tests move it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(store_cfg: Settings, make_api_key: Callable[..., str], clock: Clock) -> Iterator[TestClient]:
    app = create_app(store_cfg, routers=[social_router])
    app.dependency_overrides[request_time] = clock
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {make_api_key('read', 'write', name='shop')}"
        yield test_client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def test_referral_from_code_to_reward(client: TestClient, clock: Clock, store_cfg: Settings) -> None:
    alice_code = {"customer_id": "alice", "phone": "13800138000"}
    code = ok(client.post(f"{API}/referral/codes", json=alice_code))["code"]
    assert ok(client.post(f"{API}/referral/codes", json={"customer_id": "alice"}))["code"] == code
    bound = ok(client.post(f"{API}/referral/bindings", json={"invitee_id": "bob", "code": code.lower()}), 201)
    assert (bound["inviter_id"], bound["status"]) == ("alice", "bound")

    self_ref = refused(client.post(f"{API}/referral/bindings", json={
        "invitee_id": "alice2", "code": code, "phone": "+86 138 0013 8000"}), 409, "referral_refused")
    assert self_ref["reason"] == "same_phone"
    assert "phone" in self_ref["detail"]
    again = refused(client.post(f"{API}/referral/bindings", json={"invitee_id": "bob", "code": code}),
                    409, "referral_refused")
    assert again["reason"] == "already_bound"
    unknown = refused(client.post(f"{API}/referral/bindings", json={"invitee_id": "x", "code": "ZZZZ2222"}),
                      404, "not_found")
    assert unknown["reason"] == "unknown_code"
    bad = refused(client.post(f"{API}/referral/bindings", json={"invitee_id": "x", "code": "??"}),
                  422, "invalid_argument")
    assert bad["detail"].startswith("code:")
    with session_scope(store_cfg) as session:  # refused attempts are kept although the answer is an error
        reasons = sorted(str(a.reason) for a in session.scalars(select(ReferralAttempt)))
    assert reasons == ["None", "already_bound", "same_phone", "unknown_code"]

    paid_at = T0 + timedelta(days=1)
    hook = ok(client.post(f"{API}/referral/orders/paid", json={
        "order_id": "o-1", "customer_id": "bob", "paid_at": paid_at.isoformat()}))
    assert hook == {"referral": "pending"}
    clock.now = paid_at + timedelta(days=6)
    assert ok(client.post(f"{API}/jobs/settle-referrals"))["rewarded"] == []
    clock.now = paid_at + timedelta(days=7)
    settled = ok(client.post(f"{API}/jobs/settle-referrals"))
    assert sorted((r["customer_id"], r["points"], r["status"]) for r in settled["granted"]) == [
        ("alice", 500, "granted"), ("bob", 200, "granted")]
    assert settled["failed"] == []
    with session_scope(store_cfg) as session:  # credited to the points ledger of the promotions domain
        assert (loyalty.balance(session, "alice"), loyalty.balance(session, "bob")) == (500, 200)
    alice = ok(client.get(f"{API}/referral/customers/alice"))
    assert (alice["code"], [i["invitee_id"] for i in alice["invitees"]]) == (code, ["bob"])
    assert alice["invitees"][0]["status"] == "rewarded"
    assert [r["points"] for r in alice["rewards"]] == [500]
    bob = ok(client.get(f"{API}/referral/customers/bob"))
    assert (bob["invited_by"]["inviter_id"], bob["code"]) == ("alice", None)


def test_a_refund_reported_inside_the_window_cancels(client: TestClient, clock: Clock) -> None:
    assert ok(client.put(f"{API}/referral/policy", json={
        "refund_window_days": 10, "inviter": {"kind": "points", "points": 300},
        "invitee": {"kind": "coupon", "coupon_batch_id": "welcome-10"}}))["refund_window_days"] == 10
    code = ok(client.post(f"{API}/referral/codes", json={"customer_id": "alice"}))["code"]
    ok(client.post(f"{API}/referral/bindings", json={"invitee_id": "bob", "code": code}), 201)
    ok(client.post(f"{API}/referral/orders/paid", json={
        "order_id": "o-1", "customer_id": "bob", "paid_at": T0.isoformat()}))
    cancelled = ok(client.post(f"{API}/referral/orders/o-1/refunds",
                               json={"refunded_at": (T0 + timedelta(days=9)).isoformat()}))
    assert cancelled == {"referral": "cancelled"}
    clock.now = T0 + timedelta(days=30)
    assert ok(client.post(f"{API}/jobs/settle-referrals"))["rewarded"] == []
    bob = ok(client.get(f"{API}/referral/customers/bob"))["invited_by"]
    assert (bob["status"], bob["cancel_reason"]) == ("cancelled", "refunded_in_window")
    naive = refused(client.post(f"{API}/referral/orders/paid", json={
        "order_id": "o-2", "customer_id": "bob", "paid_at": "2026-06-18T12:00:00"}), 422, "validation_error")
    assert "paid_at" in naive["detail"]


def test_group_buying_over_the_api(client: TestClient, clock: Clock, store_cfg: Settings) -> None:
    deal = ok(client.post(f"{API}/group-deals", json={
        "name": "Oolong 3 人团", "sku": "TEA-1", "currency": "cny", "list_price": 9900, "group_price": 6900,
        "group_size": 3, "time_limit_minutes": 60}), 201)
    assert (deal["currency"], deal["created_by"]) == ("CNY", "shop")
    group = ok(client.post(f"{API}/group-deals/{deal['id']}/groups",
                           json={"customer_id": "leader", "order_id": "o-l", "paid": True}), 201)
    assert (group["status"], group["seats_left"], group["group_price"]) == ("open", 2, 6900)
    assert group["expires_at"] == "2026-06-18T13:00:00Z"
    gid = group["id"]
    refused(client.post(f"{API}/groups/{gid}/members", json={"customer_id": "leader"}), 409, "already_joined")
    after = ok(client.post(f"{API}/groups/{gid}/members", json={"customer_id": "b", "order_id": "o-b",
                                                                  "paid": True}), 201)
    assert (after["seats_taken"], after["seats_left"]) == (2, 1)
    clock.now = T0 + timedelta(minutes=61)
    assert ok(client.get(f"{API}/groups/{gid}"))["status"] == "expired"
    refused(client.post(f"{API}/groups/{gid}/members", json={"customer_id": "c"}), 409, "group_closed")
    refunds = ok(client.post(f"{API}/jobs/expire-groups"))["refunds"]
    assert sorted((r["customer_id"], r["order_id"], r["amount"]) for r in refunds) == [
        ("b", "o-b", 6900), ("leader", "o-l", 6900)]
    failed = ok(client.get(f"{API}/groups/{gid}"))
    assert failed["status"] == "failed"
    assert {m["status"] for m in failed["members"]} == {"released"}

    second = ok(client.post(f"{API}/group-deals/{deal['id']}/groups", json={"customer_id": "x"}), 201)
    for buyer in ("y", "z"):
        done = ok(client.post(f"{API}/groups/{second['id']}/members", json={"customer_id": buyer}), 201)
    assert (done["status"], done["seats_left"]) == ("complete", 0)
    full = refused(client.post(f"{API}/groups/{second['id']}/members", json={"customer_id": "w"}),
                   409, "group_full")
    assert "full" in full["detail"]
    refused(client.get(f"{API}/groups/nope"), 404, "not_found")
    bad = refused(client.post(f"{API}/group-deals", json={
        "name": "x", "sku": "s", "currency": "CNY", "group_price": 100, "list_price": 50, "group_size": 2,
        "time_limit_minutes": 5}), 422, "invalid_argument")
    assert bad["detail"].startswith("list_price:")
    with session_scope(store_cfg) as session:
        assert session.scalar(select(AuditEntry.actor_name).where(
            AuditEntry.action == "social.group_deal.create")) == "shop"


def test_bargain_over_the_api(client: TestClient, clock: Clock, store_cfg: Settings) -> None:
    offer = ok(client.post(f"{API}/bargain-offers", json={
        "name": "Teapot", "sku": "POT-1", "currency": "CNY", "start_price": 5000, "floor_price": 1000,
        "cuts": 3, "duration_minutes": 1440}), 201)
    started = ok(client.post(f"{API}/bargain-offers/{offer['id']}/bargains", json={"customer_id": "me"}), 201)
    assert (started["current_price"], started["status"], started["cuts"]) == (5000, "open", [])
    bid = started["id"]
    with session_scope(store_cfg) as session:
        row = session.get(Bargain, bid)
        assert row is not None
        expected = bargain.cut_sequence(5000, 1000, 3, row.seed)
    first = ok(client.post(f"{API}/bargains/{bid}/cuts", json={"helper_id": "f1"}), 201)
    assert first["cut"]["amount"] == expected[0]
    assert first["bargain"]["current_price"] == 5000 - expected[0]
    refused(client.post(f"{API}/bargains/{bid}/cuts", json={"helper_id": "f1"}), 409, "already_cut")
    own = refused(client.post(f"{API}/bargains/{bid}/cuts", json={"helper_id": "me"}),
                  422, "invalid_argument")
    assert own["detail"].startswith("helper_id:")
    ok(client.post(f"{API}/bargains/{bid}/cuts", json={"helper_id": "f2"}), 201)
    last = ok(client.post(f"{API}/bargains/{bid}/cuts", json={"helper_id": "f3"}), 201)
    assert (last["bargain"]["status"], last["bargain"]["current_price"]) == ("reached", 1000)
    assert [c["amount"] for c in last["bargain"]["cuts"]] == expected
    refused(client.post(f"{API}/bargains/{bid}/cuts", json={"helper_id": "f4"}), 409, "bargain_closed")

    other = ok(client.post(f"{API}/bargain-offers/{offer['id']}/bargains", json={"customer_id": "you"}), 201)
    refused(client.post(f"{API}/bargain-offers/{offer['id']}/bargains", json={"customer_id": "you"}),
            409, "bargain_exists")
    clock.now = T0 + timedelta(days=1)
    assert ok(client.get(f"{API}/bargains/{other['id']}"))["status"] == "expired"
    assert ok(client.post(f"{API}/jobs/expire-bargains")) == {"expired": 1}
    bad = refused(client.post(f"{API}/bargain-offers", json={
        "name": "x", "sku": "s", "currency": "CNY", "start_price": 100, "floor_price": 99, "cuts": 2,
        "duration_minutes": 10}), 422, "invalid_argument")
    assert bad["detail"].startswith("cuts:")


def test_reading_needs_read_and_changing_needs_write(
    store_cfg: Settings, make_api_key: Callable[..., str]
) -> None:
    with TestClient(create_app(store_cfg, routers=[social_router])) as anonymous:
        refused(anonymous.get(f"{API}/referral/policy"), 401, "unauthenticated")
        anonymous.headers["Authorization"] = f"Bearer {make_api_key('read')}"
        policy = ok(anonymous.get(f"{API}/referral/policy"))
        assert policy["refund_window_days"] == 7
        refused(anonymous.post(f"{API}/referral/codes", json={"customer_id": "a"}), 403, "forbidden")
        refused(anonymous.post(f"{API}/jobs/expire-groups"), 403, "forbidden")
