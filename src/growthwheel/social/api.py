"""REST endpoints under ``/api/v1/social``: referral, group buying, bargain, and their jobs.

Reading needs the ``read`` scope, everything that changes state ``write`` (the shop's own
systems call these with an API key on behalf of their customers). Times are the server's clock
(``request_time``). A refused referral binding is answered as problem+json (409, or 404 for an
unknown code) with a machine ``reason`` — and the attempt is still recorded, so the request's
session commits rather than rolls back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.errors import problem
from growthwheel.api.warehouse import warehouse
from growthwheel.social import deals, groups, service
from growthwheel.social.grants import promotions_granter
from growthwheel.social.models import Bargain, Group
from growthwheel.social.referral import ReferralPolicy, Reward
from growthwheel.social.schemas import (
    BargainOfferCreate,
    BargainOfferOut,
    BargainOut,
    BargainStart,
    BindRequest,
    CutOut,
    CutRequest,
    CutResult,
    ExpireBargainsOut,
    ExpireGroupsOut,
    GroupDealCreate,
    GroupDealOut,
    GroupOut,
    GroupRefundOut,
    HookOut,
    InviteCodeOut,
    InviteCodeRequest,
    MemberOut,
    OrderPaid,
    OrderRefunded,
    PolicyIO,
    ReferralCustomerOut,
    ReferralOut,
    RewardIn,
    RewardOut,
    SeatRequest,
    SettleOut,
)
from growthwheel.warehouse.owner import WarehouseOwner

router = APIRouter(prefix="/api/v1/social", tags=["social"])


def request_time() -> datetime:
    """The time a request acts at (UTC); tests override this dependency to travel in time."""
    return utcnow()


Reader = Annotated[Principal, Depends(require_scope("read"))]
Editor = Annotated[Principal, Depends(require_scope("write"))]
Now = Annotated[datetime, Depends(request_time)]
Warehouse = Annotated[WarehouseOwner, Depends(warehouse)]
_Id = Annotated[str, Path(max_length=64)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json, code `forbidden`)."},
    422: {"description": "Invalid input, naming the field (problem+json)."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **_PROBLEMS, 404: {"description": "Unknown id (code `not_found`)."},
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"description": "Refused by the state of things: `group_full`, `group_closed`, `already_joined`, "
                         "`deal_unavailable`, `bargain_closed`, `already_cut`, `bargain_exists` or "
                         "`referral_refused` (with `reason`)."},
}


# --------------------------------------------------------------------------------------------
# Referral
# --------------------------------------------------------------------------------------------


@router.post("/referral/codes", summary="A customer's invite code", response_model=InviteCodeOut,
             responses=_PROBLEMS)
def post_invite_code(body: InviteCodeRequest, _who: Editor, session: DbSession, now: Now) -> InviteCodeOut:
    """The customer's invite code, created on the first request. Contact signals given here are
    kept (as digests) to catch invitees who are the same person."""
    row = service.invite_code(session, body.customer_id, now=now, phone=body.phone, address=body.address,
                              device=body.device)
    return InviteCodeOut(customer_id=row.customer_id, code=row.code)


@router.post("/referral/bindings", summary="Bind an invitee to an inviter",
             status_code=status.HTTP_201_CREATED, response_model=ReferralOut, responses=_CONFLICT)
def post_binding(body: BindRequest, _who: Editor, session: DbSession, now: Now, owner: Warehouse) -> Any:
    """Bind the invitee to the owner of the code, once per invitee and only for a customer with no
    paid order (reported, committed at checkout, or imported into the warehouse). Self-referral
    (same phone, address or device as the inviter), a second binding, one's own code or a cycle
    (the inviter was invited by the invitee, directly or through others) are refused with a
    ``reason``; every attempt is recorded."""
    def prior_orders(customer_id: str) -> bool:
        with owner.read() as backend:
            return service.warehouse_prior_orders(backend)(customer_id)

    outcome = service.bind(session, body.invitee_id, body.code, now=now, phone=body.phone,
                           address=body.address, device=body.device, prior_orders=prior_orders)
    if outcome.referral is None:
        reason = outcome.reason or "refused"
        if reason == "unknown_code":
            return problem(404, "not_found", service.bind_reason_text(reason), reason=reason)
        return problem(409, "referral_refused", service.bind_reason_text(reason), reason=reason)
    return ReferralOut.model_validate(outcome.referral)


@router.get("/referral/customers/{customer_id}", summary="A customer's referrals",
            response_model=ReferralCustomerOut, responses=_PROBLEMS)
def get_referral_customer(customer_id: _Id, _who: Reader, session: DbSession) -> ReferralCustomerOut:
    """The customer's code, who invited them, whom they invited (with each reward's state) and the
    rewards they are owed or were granted."""
    view = service.referral_view(session, customer_id)
    return ReferralCustomerOut(
        customer_id=view.customer_id, code=view.code,
        invited_by=ReferralOut.model_validate(view.inviter) if view.inviter else None,
        invitees=[ReferralOut.model_validate(r) for r in view.invitees],
        rewards=[RewardOut.model_validate(r) for r in view.rewards],
    )


@router.post("/referral/orders/paid", summary="Report a paid order", response_model=HookOut,
             responses=_PROBLEMS)
def post_order_paid(body: OrderPaid, _who: Editor, session: DbSession) -> HookOut:
    """The ``on_order_paid`` hook for order systems outside Growthwheel (idempotent on the order id)."""
    return HookOut(referral=service.on_order_paid(session, body.order_id, body.customer_id, body.paid_at,
                                                  body.phone, body.address, body.device))


@router.post("/referral/orders/{order_id}/refunds", summary="Report a refund", response_model=HookOut,
             responses=_PROBLEMS)
def post_order_refunded(order_id: _Id, body: OrderRefunded, _who: Editor, session: DbSession) -> HookOut:
    """The ``on_order_refunded`` hook: a refund inside the window cancels the referral."""
    return HookOut(referral=service.on_order_refunded(session, order_id, body.refunded_at))


def _policy_out(policy: ReferralPolicy) -> PolicyIO:
    def side(reward: Reward) -> RewardIn:
        return RewardIn(kind=reward.kind, points=reward.points, coupon_batch_id=reward.coupon_batch_id)

    return PolicyIO(refund_window_days=policy.refund_window_days, inviter=side(policy.inviter),
                    invitee=side(policy.invitee))


@router.get("/referral/policy", summary="The referral programme", response_model=PolicyIO,
            responses=_PROBLEMS)
def get_policy(_who: Reader, session: DbSession) -> PolicyIO:
    """The refund window and the rewards of each side."""
    return _policy_out(service.get_policy(session))


@router.put("/referral/policy", summary="Change the referral programme", response_model=PolicyIO,
            responses=_PROBLEMS)
def put_policy(body: PolicyIO, principal: Editor, session: DbSession) -> PolicyIO:
    """Set the refund window (for orders paid from now on) and the rewards (for referrals settled
    from now on)."""
    policy = ReferralPolicy(
        refund_window_days=body.refund_window_days,
        inviter=Reward(body.inviter.kind, body.inviter.points, body.inviter.coupon_batch_id),
        invitee=Reward(body.invitee.kind, body.invitee.points, body.invitee.coupon_batch_id),
    )
    return _policy_out(service.set_policy(session, policy, principal=principal))


@router.post("/jobs/settle-referrals", summary="Settle referrals whose window has passed",
             response_model=SettleOut, responses=_PROBLEMS)
def post_settle(_who: Editor, session: DbSession, now: Now) -> SettleOut:
    """Run ``social.referral.settle(now)``: write the rewards of every referral whose first order
    has survived its refund window, and grant every pending reward (points credited to the ledger,
    coupon codes issued) through the promotions domain."""
    result = service.settle_referrals(session, now, granter=promotions_granter)
    return SettleOut(rewarded=result.rewarded,
                     rewards=[RewardOut.model_validate(r) for r in result.rewards],
                     granted=[RewardOut.model_validate(r) for r in result.granted],
                     failed=[RewardOut.model_validate(r) for r in result.failed])


# --------------------------------------------------------------------------------------------
# Group buying
# --------------------------------------------------------------------------------------------


def _group_out(session: Session, group: Group, now: datetime) -> GroupOut:
    deal = deals.get_deal(session, group.deal_id)
    return GroupOut(
        id=group.id, deal_id=group.deal_id, sku=deal.sku, currency=deal.currency,
        group_price=deal.group_price,
        size=group.size, seats_taken=group.seats_taken, seats_left=group.size - group.seats_taken,
        status=groups.shown_status(group.status, group.expires_at, now),
        opened_at=group.opened_at, expires_at=group.expires_at, completed_at=group.completed_at,
        failed_at=group.failed_at,
        members=[MemberOut.model_validate(m) for m in deals.group_members(session, group.id)],
    )


@router.post("/group-deals", summary="Create a group-buying deal", status_code=status.HTTP_201_CREATED,
             response_model=GroupDealOut, responses=_PROBLEMS)
def post_deal(body: GroupDealCreate, principal: Editor, session: DbSession) -> GroupDealOut:
    """A deal: ``group_size`` buyers within ``time_limit_minutes`` get ``group_price``."""
    deal = deals.create_deal(session, principal=principal, **body.model_dump())
    return GroupDealOut.model_validate(deal)


@router.get("/group-deals/{deal_id}", summary="A group-buying deal", response_model=GroupDealOut,
            responses=_NOT_FOUND)
def get_deal(deal_id: _Id, _who: Reader, session: DbSession) -> GroupDealOut:
    """The deal, with how many of its groups are open or complete."""
    return GroupDealOut.model_validate(deals.get_deal(session, deal_id))


@router.post("/group-deals/{deal_id}/groups", summary="Open a group", status_code=status.HTTP_201_CREATED,
             response_model=GroupOut, responses=_CONFLICT)
def post_group(deal_id: _Id, body: SeatRequest, _who: Editor, session: DbSession, now: Now) -> GroupOut:
    """The leader opens a group and takes its first seat."""
    group = deals.open_group(session, deal_id, body.customer_id, now=now, order_id=body.order_id,
                               paid=body.paid)
    return _group_out(session, group, now)


@router.get("/groups/{group_id}", summary="A group's status", response_model=GroupOut, responses=_NOT_FOUND)
def get_group(group_id: _Id, _who: Reader, session: DbSession, now: Now) -> GroupOut:
    """Seats taken and left, the deadline and the members."""
    return _group_out(session, deals.get_group(session, group_id), now)


@router.post("/groups/{group_id}/members", summary="Join a group", status_code=status.HTTP_201_CREATED,
             response_model=GroupOut, responses=_CONFLICT)
def post_member(group_id: _Id, body: SeatRequest, _who: Editor, session: DbSession, now: Now) -> GroupOut:
    """Take a seat; the last seat goes to exactly one buyer and completes the group (others get
    409 ``group_full``)."""
    deals.join_group(session, group_id, body.customer_id, now=now, order_id=body.order_id, paid=body.paid)
    return _group_out(session, deals.get_group(session, group_id), now)


@router.post("/jobs/expire-groups", summary="Fail the groups whose time ran out",
             response_model=ExpireGroupsOut, responses=_PROBLEMS)
def post_expire_groups(_who: Editor, session: DbSession, now: Now) -> ExpireGroupsOut:
    """Run ``social.groups.expire(now)``: release the seats of every group past its deadline and
    list the refunds to issue to its paid members."""
    refunds = deals.expire_groups(session, now)
    return ExpireGroupsOut(refunds=[GroupRefundOut(**r.__dict__) for r in refunds])


# --------------------------------------------------------------------------------------------
# Bargain
# --------------------------------------------------------------------------------------------


def _bargain_out(session: Session, row: Bargain, now: datetime) -> BargainOut:
    return BargainOut(
        id=row.id, offer_id=row.offer_id, customer_id=row.customer_id, currency=row.currency,
        start_price=row.start_price, floor_price=row.floor_price, current_price=row.current_price,
        cuts_total=row.cuts_total, cuts_done=row.cuts_done,
        status=deals.shown_bargain_status(row, now),
        started_at=row.started_at, expires_at=row.expires_at, reached_at=row.reached_at,
        cuts=[CutOut.model_validate(c) for c in deals.bargain_cuts(session, row.id)],
    )


@router.post("/bargain-offers", summary="Create a bargain offer", status_code=status.HTTP_201_CREATED,
             response_model=BargainOfferOut, responses=_PROBLEMS)
def post_offer(body: BargainOfferCreate, principal: Editor, session: DbSession) -> BargainOfferOut:
    """An offer: helpers cut ``start_price`` down to ``floor_price`` in exactly ``cuts`` cuts."""
    offer = deals.create_offer(session, principal=principal, **body.model_dump())
    return BargainOfferOut.model_validate(offer)


@router.get("/bargain-offers/{offer_id}", summary="A bargain offer", response_model=BargainOfferOut,
            responses=_NOT_FOUND)
def get_offer(offer_id: _Id, _who: Reader, session: DbSession) -> BargainOfferOut:
    """The offer."""
    return BargainOfferOut.model_validate(deals.get_offer(session, offer_id))


@router.post("/bargain-offers/{offer_id}/bargains", summary="Start a bargain",
             status_code=status.HTTP_201_CREATED, response_model=BargainOut, responses=_CONFLICT)
def post_bargain(offer_id: _Id, body: BargainStart, _who: Editor, session: DbSession, now: Now) -> BargainOut:
    """The customer starts a bargain at the offer's start price (one open bargain per offer)."""
    return _bargain_out(session, deals.start_bargain(session, offer_id, body.customer_id, now=now), now)


@router.get("/bargains/{bargain_id}", summary="A bargain's status", response_model=BargainOut,
            responses=_NOT_FOUND)
def get_bargain(bargain_id: _Id, _who: Reader, session: DbSession, now: Now) -> BargainOut:
    """The current price, the cuts so far and the deadline."""
    return _bargain_out(session, deals.get_bargain(session, bargain_id), now)


@router.post("/bargains/{bargain_id}/cuts", summary="Cut a bargain", status_code=status.HTTP_201_CREATED,
             response_model=CutResult, responses=_CONFLICT)
def post_cut(bargain_id: _Id, body: CutRequest, _who: Editor, session: DbSession, now: Now) -> CutResult:
    """A helper cuts once; the amount is the next one of the bargain's sequence, so the floor is
    reached exactly at the last cut."""
    done = deals.cut(session, bargain_id, body.helper_id, now=now)
    row = deals.get_bargain(session, bargain_id)
    session.refresh(row)
    return CutResult(cut=CutOut.model_validate(done), bargain=_bargain_out(session, row, now))


@router.post("/jobs/expire-bargains", summary="Expire bargains whose time ran out",
             response_model=ExpireBargainsOut, responses=_PROBLEMS)
def post_expire_bargains(_who: Editor, session: DbSession, now: Now) -> ExpireBargainsOut:
    """Mark every open bargain past its deadline ``expired``."""
    return ExpireBargainsOut(expired=deals.expire_bargains(session, now))
