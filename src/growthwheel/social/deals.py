"""Group buying (拼团) and bargain (砍价) over the operational store. Never commits.

Whoever owns the unit of work (request, CLI command, job) commits. Every contended counter moves
by one atomic conditional ``UPDATE`` (see :mod:`growthwheel.social.service`, which holds referrals
and the checkout's hooks): the last seat of a group goes to exactly one buyer, and two helpers
cutting at once take cuts n and n + 1, never the same one. The rules themselves (prices, cuts,
expiry) are the pure cores :mod:`growthwheel.social.groups` and :mod:`growthwheel.social.bargain`.

Jobs: :func:`expire_groups` (``social.groups.expire(now)``), :func:`expire_bargains`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from growthwheel.accounts.models import UTCDateTime
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.kit.ids import canonical_id
from growthwheel.kit.money import currency_exponent
from growthwheel.social import bargain as bargain_core
from growthwheel.social import groups as groups_core
from growthwheel.social.models import Bargain, BargainCut, BargainOffer, Group, GroupDeal, GroupMember
from growthwheel.social.service import SocialNotFoundError, check_aware


class GroupFullError(GrowthwheelError):
    """Every seat of the group is taken."""

    code = "group_full"
    status = 409


class GroupClosedError(GrowthwheelError):
    """The group failed or its time ran out; it takes no more members."""

    code = "group_closed"
    status = 409


class AlreadyJoinedError(GrowthwheelError):
    """The customer already holds a seat in this group."""

    code = "already_joined"
    status = 409


class DealUnavailableError(GrowthwheelError):
    """The deal is inactive, outside its dates, or has no group slot left (``max_groups``)."""

    code = "deal_unavailable"
    status = 409


class BargainClosedError(GrowthwheelError):
    """The bargain reached its floor or expired; it takes no more cuts."""

    code = "bargain_closed"
    status = 409


class AlreadyCutError(GrowthwheelError):
    """This helper already cut this bargain (one cut per helper)."""

    code = "already_cut"
    status = 409


class BargainExistsError(GrowthwheelError):
    """The customer already has an open bargain on this offer."""

    code = "bargain_exists"
    status = 409


def _currency(currency: str) -> str:
    try:
        currency_exponent(currency)
    except ValueError:
        raise InvalidArgumentError(f"currency: unknown currency code {currency!r}") from None
    return currency.upper()


# --------------------------------------------------------------------------------------------
# Group buying (拼团)
# --------------------------------------------------------------------------------------------


def create_deal(
    session: Session, *, name: str, sku: str, currency: str, group_price: int, group_size: int,
    time_limit_minutes: int, list_price: int | None = None, max_groups: int | None = None,
    starts_at: datetime | None = None, ends_at: datetime | None = None, principal: Principal | None,
) -> GroupDeal:
    """A new group-buying deal (validated by ``groups.validate_deal``)."""
    for field, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None:
            check_aware(value, field)
    groups_core.validate_deal(group_price, group_size, time_limit_minutes, list_price, max_groups,
                              starts_at, ends_at)
    deal = GroupDeal(name=name, sku=sku, currency=_currency(currency), list_price=list_price,
                     group_price=group_price, group_size=group_size, time_limit_minutes=time_limit_minutes,
                     max_groups=max_groups, groups_open=0, starts_at=starts_at, ends_at=ends_at,
                     active=True, created_by=principal.name if principal else "system")
    session.add(deal)
    session.flush()
    audit(session, principal, "social.group_deal.create", f"group_deal:{deal.id}",
          {"sku": sku, "group_price": group_price, "group_size": group_size})
    return deal


def get_deal(session: Session, deal_id: str) -> GroupDeal:
    """The deal, or ``SocialNotFoundError``."""
    deal = session.get(GroupDeal, deal_id)
    if deal is None:
        raise SocialNotFoundError(f"no group deal {deal_id!r}")
    return deal


def get_group(session: Session, group_id: str) -> Group:
    """The group, or ``SocialNotFoundError``."""
    group = session.get(Group, group_id)
    if group is None:
        raise SocialNotFoundError(f"no group {group_id!r}")
    return group


def group_members(session: Session, group_id: str) -> list[GroupMember]:
    """The group's members, leader first, then in joining order."""
    return list(session.scalars(
        select(GroupMember).where(GroupMember.group_id == group_id)
        .order_by(GroupMember.is_leader.desc(), GroupMember.joined_at, GroupMember.id)
    ))


def open_group(
    session: Session, deal_id: str, leader_id: str, *, now: datetime,
    order_id: str | None = None, paid: bool = False,
) -> Group:
    """The leader opens a group of the deal and takes its first seat (holding the group price)."""
    check_aware(now, "now")
    leader_id = canonical_id(leader_id, "customer_id")
    deal = get_deal(session, deal_id)
    if not deal.active or (deal.starts_at and now < deal.starts_at) or (deal.ends_at and now >= deal.ends_at):
        raise DealUnavailableError(f"group deal {deal_id!r} is not running now")
    slot = session.execute(
        update(GroupDeal)
        .where(GroupDeal.id == deal_id,
               GroupDeal.max_groups.is_(None) | (GroupDeal.groups_open < GroupDeal.max_groups))
        .values(groups_open=GroupDeal.groups_open + 1).execution_options(synchronize_session=False)
    )
    if slot.rowcount != 1:  # type: ignore[attr-defined]
        raise DealUnavailableError(f"group deal {deal_id!r} has no group left to open (max_groups reached)")
    group = Group(deal_id=deal_id, leader_id=leader_id, size=deal.group_size, seats_taken=1, status="open",
                  opened_at=now,
                  expires_at=groups_core.group_deadline(now, deal.time_limit_minutes, deal.ends_at))
    session.add(group)
    session.flush()
    session.add(GroupMember(group_id=group.id, customer_id=leader_id, order_id=order_id,
                            amount=deal.group_price, paid=paid, is_leader=True, status="held", joined_at=now))
    session.flush()
    session.expire(deal)
    return group


def join_group(
    session: Session, group_id: str, customer_id: str, *, now: datetime,
    order_id: str | None = None, paid: bool = False,
) -> GroupMember:
    """Take a seat in an open group. The seat is claimed by one conditional UPDATE, so when many
    buyers race for the last seat exactly one gets it and the others get ``GroupFullError``.
    Taking the last seat completes the group in the same statement."""
    check_aware(now, "now")
    customer_id = canonical_id(customer_id)
    group = get_group(session, group_id)
    if session.scalar(select(GroupMember.id).where(GroupMember.group_id == group_id,
                                                   GroupMember.customer_id == customer_id)):
        raise AlreadyJoinedError(f"customer {customer_id!r} is already in group {group_id!r}")
    deal = get_deal(session, group.deal_id)
    member = GroupMember(group_id=group_id, customer_id=customer_id, order_id=order_id,
                         amount=deal.group_price, paid=paid, is_leader=False, status="held", joined_at=now)
    # The member row first, in a savepoint: the unique (group, customer) decides a race of one
    # customer joining twice before any seat is taken, and a seat that cannot be claimed takes the
    # row back with it, so the seat count and the members never disagree.
    savepoint = session.begin_nested()
    try:
        session.add(member)
        session.flush()
    except IntegrityError:
        savepoint.rollback()
        raise AlreadyJoinedError(f"customer {customer_id!r} is already in group {group_id!r}") from None
    claimed = session.execute(
        update(Group)
        .where(Group.id == group_id, Group.status == "open", Group.seats_taken < Group.size,
               Group.expires_at > now)
        .values(seats_taken=Group.seats_taken + 1,
                status=_case_complete(),
                completed_at=_case_completed_at(now))
        .execution_options(synchronize_session=False)
    )
    session.expire(group)
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        savepoint.rollback()
        session.refresh(group)
        if group.status == "complete" or group.seats_taken >= group.size:
            raise GroupFullError(f"group {group_id!r} is full")
        state = groups_core.shown_status(group.status, group.expires_at, now)
        raise GroupClosedError(f"group {group_id!r} is {state} and takes no more members")
    savepoint.commit()
    return member


def _case_complete() -> Any:
    """``status`` after taking a seat: ``complete`` when it was the last one."""
    return case((Group.seats_taken + 1 >= Group.size, "complete"), else_=Group.status)


def _case_completed_at(now: datetime) -> Any:
    """``completed_at`` after taking a seat: ``now`` when it was the last one."""
    return case((Group.seats_taken + 1 >= Group.size, literal(now, UTCDateTime())), else_=Group.completed_at)


@dataclass(frozen=True)
class GroupRefund:
    """Money the shop must give back to a member of a failed group."""

    group_id: str
    customer_id: str
    order_id: str | None
    amount: int
    currency: str


def expire_groups(session: Session, now: datetime) -> list[GroupRefund]:
    """Job ``social.groups.expire(now)``: every open group past its deadline fails; its members'
    holds are released and the paid ones listed as refunds to issue; the deal gets the slot back."""
    check_aware(now, "now")
    due = session.scalars(
        select(Group.id).where(Group.status == "open", Group.expires_at <= now)
        .order_by(Group.expires_at, Group.id)
    ).all()
    refunds: list[GroupRefund] = []
    for group_id in due:
        failed = session.execute(
            update(Group).where(Group.id == group_id, Group.status == "open", Group.expires_at <= now)
            .values(status="failed", failed_at=now).execution_options(synchronize_session=False)
        )
        if failed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # filled or failed by someone else meanwhile
        group = session.get(Group, group_id)
        assert group is not None
        session.refresh(group)
        deal = get_deal(session, group.deal_id)
        session.execute(
            update(GroupDeal).where(GroupDeal.id == deal.id, GroupDeal.groups_open > 0)
            .values(groups_open=GroupDeal.groups_open - 1).execution_options(synchronize_session=False)
        )
        for member in group_members(session, group_id):
            if member.status != "held":
                continue
            member.status, member.released_at = "released", now
            member.refund_amount = member.amount if member.paid else 0
            if member.paid:
                refunds.append(GroupRefund(group_id=group_id, customer_id=member.customer_id,
                                           order_id=member.order_id, amount=member.amount,
                                           currency=deal.currency))
    session.flush()
    return refunds


# --------------------------------------------------------------------------------------------
# Bargain (砍价)
# --------------------------------------------------------------------------------------------

MAX_BARGAIN_MINUTES = 30 * 24 * 60


def create_offer(
    session: Session, *, name: str, sku: str, currency: str, start_price: int, floor_price: int, cuts: int,
    duration_minutes: int, principal: Principal | None,
) -> BargainOffer:
    """A new bargain offer (validated by ``bargain.validate``)."""
    bargain_core.validate(start_price, floor_price, cuts)
    if not 1 <= duration_minutes <= MAX_BARGAIN_MINUTES:
        raise InvalidArgumentError(f"duration_minutes: must be between 1 and {MAX_BARGAIN_MINUTES}")
    offer = BargainOffer(name=name, sku=sku, currency=_currency(currency), start_price=start_price,
                         floor_price=floor_price, cuts=cuts, duration_minutes=duration_minutes, active=True,
                         created_by=principal.name if principal else "system")
    session.add(offer)
    session.flush()
    audit(session, principal, "social.bargain_offer.create", f"bargain_offer:{offer.id}",
          {"sku": sku, "start_price": start_price, "floor_price": floor_price, "cuts": cuts})
    return offer


def get_offer(session: Session, offer_id: str) -> BargainOffer:
    """The offer, or ``SocialNotFoundError``."""
    offer = session.get(BargainOffer, offer_id)
    if offer is None:
        raise SocialNotFoundError(f"no bargain offer {offer_id!r}")
    return offer


def get_bargain(session: Session, bargain_id: str) -> Bargain:
    """The bargain, or ``SocialNotFoundError``."""
    found = session.get(Bargain, bargain_id)
    if found is None:
        raise SocialNotFoundError(f"no bargain {bargain_id!r}")
    return found


def bargain_cuts(session: Session, bargain_id: str) -> list[BargainCut]:
    """The bargain's cuts in order."""
    return list(session.scalars(select(BargainCut).where(BargainCut.bargain_id == bargain_id)
                                .order_by(BargainCut.seq)))


def start_bargain(session: Session, offer_id: str, customer_id: str, *, now: datetime) -> Bargain:
    """The customer starts a bargain on the offer (one open bargain per customer and offer)."""
    check_aware(now, "now")
    customer_id = canonical_id(customer_id)
    offer = get_offer(session, offer_id)
    if not offer.active:
        raise DealUnavailableError(f"bargain offer {offer_id!r} is not active")
    exists = BargainExistsError(f"customer {customer_id!r} already has an open bargain on {offer_id!r}")
    if session.scalar(select(Bargain.id).where(
        Bargain.offer_id == offer_id, Bargain.customer_id == customer_id, Bargain.status == "open",
        Bargain.expires_at > now,
    )):
        raise exists
    # The partial unique index (offer, customer) WHERE status = 'open' is what holds under a race:
    # an earlier bargain whose time ran out is closed first so that it does not count.
    session.execute(
        update(Bargain).where(Bargain.offer_id == offer_id, Bargain.customer_id == customer_id,
                              Bargain.status == "open", Bargain.expires_at <= now)
        .values(status="expired").execution_options(synchronize_session=False)
    )
    row = Bargain(offer_id=offer_id, customer_id=customer_id, currency=offer.currency,
                  start_price=offer.start_price, floor_price=offer.floor_price, cuts_total=offer.cuts,
                  cuts_done=0, current_price=offer.start_price, seed=secrets.randbits(62), status="open",
                  started_at=now, expires_at=now + timedelta(minutes=offer.duration_minutes))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent start for the same customer and offer won
        raise exists from None
    return row


def cut(session: Session, bargain_id: str, helper_id: str, *, now: datetime) -> BargainCut:
    """A helper cuts the bargain once. The cut number is claimed by a conditional UPDATE
    (``cuts_done + 1 … WHERE cuts_done < cuts_total``), so concurrent helpers get distinct
    numbers and the amounts of ``cut_sequence`` never take the price below the floor."""
    check_aware(now, "now")
    helper_id = canonical_id(helper_id, "helper_id")
    target = get_bargain(session, bargain_id)
    if helper_id == target.customer_id:
        raise InvalidArgumentError("helper_id: customers cannot cut their own bargain")
    if session.scalar(select(BargainCut.id).where(BargainCut.bargain_id == bargain_id,
                                                  BargainCut.helper_id == helper_id)):
        raise AlreadyCutError(f"helper {helper_id!r} already cut bargain {bargain_id!r}")
    # The claim of the cut number and the cut row share one savepoint: a helper refused by the
    # unique (bargain, helper) gives the number back, even if the caller then commits.
    savepoint = session.begin_nested()
    seq = session.scalar(
        update(Bargain)
        .where(Bargain.id == bargain_id, Bargain.status == "open", Bargain.cuts_done < Bargain.cuts_total,
               Bargain.expires_at > now)
        .values(cuts_done=Bargain.cuts_done + 1).returning(Bargain.cuts_done)
        .execution_options(synchronize_session=False)
    )
    session.expire(target)
    if seq is None:
        savepoint.rollback()
        session.refresh(target)
        state = "expired" if target.status == "open" and target.expires_at <= now else target.status
        raise BargainClosedError(f"bargain {bargain_id!r} is {state} and takes no more cuts")
    sequence = bargain_core.cut_sequence(target.start_price, target.floor_price, target.cuts_total,
                                         target.seed)
    price = bargain_core.price_after(target.start_price, sequence, seq)
    row = BargainCut(bargain_id=bargain_id, helper_id=helper_id, seq=seq, amount=sequence[seq - 1],
                     price_after=price, at=now)
    try:
        session.add(row)
        session.flush()
    except IntegrityError:
        savepoint.rollback()
        raise AlreadyCutError(f"helper {helper_id!r} already cut bargain {bargain_id!r}") from None
    savepoint.commit()
    # The row stays locked (PostgreSQL) / the database write-locked (SQLite) until commit, so the
    # price written here is the one for the latest cut: a later cut waits for this transaction.
    reached = seq == target.cuts_total
    session.execute(
        update(Bargain).where(Bargain.id == bargain_id, Bargain.cuts_done == seq)
        .values(current_price=price, status="reached" if reached else "open",
                reached_at=now if reached else None)
        .execution_options(synchronize_session=False)
    )
    session.expire(target)
    return row


def expire_bargains(session: Session, now: datetime) -> int:
    """Job: open bargains past their time are marked ``expired``; returns how many."""
    check_aware(now, "now")
    done = session.execute(
        update(Bargain).where(Bargain.status == "open", Bargain.expires_at <= now)
        .values(status="expired").execution_options(synchronize_session=False)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def shown_bargain_status(row: Bargain, now: datetime) -> str:
    """``open`` / ``reached`` / ``expired`` (an open bargain past its time counts as expired)."""
    return "expired" if row.status == "open" and row.expires_at <= now else row.status
