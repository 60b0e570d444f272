"""The jobs that exist today, registered with the scheduler, and their default schedules.

Each job is idempotent, so a retry, or a run taken over after a worker died, only does what is
left: expiring what is due, issuing with a per-year issue key, refunding with a fixed refund id.

* ``loyalty.expire_points`` (daily 00:05 shop time): points lots past their expiry lose what is left;
* ``loyalty.sync_members`` (daily 00:10): members, growth and tiers from the imported orders,
  birthdays from the customers (``loyalty.history``);
* ``loyalty.review_tiers`` (daily 00:15): tiers re-evaluated over the rolling window;
* ``loyalty.birthday_coupons`` (daily 09:00): members whose birthday is today get their coupon;
* ``social.expire_groups`` (every minute): open groups past their deadline fail, and every paid
  member of a failed group is **refunded through the checkout's refund flow** (``promotions.orders
  .refund``, refund id ``group-<member id>``, so the money, points and coupons really go back,
  once); a member whose order was not committed through the checkout is reported as ``external``
  (the shop refunds it in its own system);
* ``social.expire_bargains`` (every minute): open bargains past their time expire;
* ``social.settle_referrals`` (every 10 minutes): referrals whose refund window passed are rewarded;
* ``segments.refresh`` (per saved segment, when an operator schedules it: ``growthwheel worker
  schedule-segment``): the segment's membership is refreshed;
* ``reports.review`` (daily 07:00, acting on Mondays for the week, on the 1st for the month): the
  periodic review is written to ``<data dir>/reports/review-<period>-<day>.html`` once;
* ``recs.refresh`` (daily 03:00): recommendations and also-bought lists recomputed from the
  warehouse and stored for serving (``recs.service``);
* ``alerts.evaluate`` (daily 06:30): the alert rules judge yesterday (``alerts.service``); new
  alerts land in the inbox and notify through the outbox;
* ``facts.drain`` (every 10 seconds): checkout orders and refunds, points moves, coupons and
  message statuses recorded in the fact outbox go into the warehouse (``facts.service``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.errors import GrowthwheelError, NoDataError
from growthwheel.jobs import warehouse_access
from growthwheel.jobs.models import JobSchedule
from growthwheel.jobs.scheduler import JobContext, ScheduleSpec, job

MINUTE = 60


def shop_timezone(ctx: JobContext) -> str:
    """The shop's IANA time zone."""
    return ctx.cfg.shop().timezone


# ---------------------------------------------------------------------------------------------
# Loyalty (called through the loyalty module's public functions)
# ---------------------------------------------------------------------------------------------


@job("loyalty.expire_points")
def expire_points(ctx: JobContext) -> dict[str, Any]:
    """Expire every lot of points whose expiry has passed."""
    from growthwheel.loyalty import service as loyalty

    # A batch of customers per transaction: checkouts never wait for the whole run (issue 10).
    result = loyalty.expire_points_batched(ctx.transaction, ctx.now)
    return {"customers": result.customers, "points": result.points}


@job("loyalty.sync_members")
def sync_members(ctx: JobContext) -> dict[str, Any]:
    """Members from the shop's history: imported paid orders' growth, tiers, birthdays."""
    return warehouse_access.sync_members(ctx.cfg, ctx.transaction)


@job("loyalty.review_tiers")
def review_tiers(ctx: JobContext) -> dict[str, Any]:
    """Re-evaluate every member's tier over the rolling window."""
    from growthwheel.loyalty import service as loyalty

    changes = loyalty.recompute_tiers_batched(ctx.transaction, ctx.now)
    moved = [{"customer_id": c.customer_id, "old": c.old, "new": c.new} for c in changes]
    return {"tier_changes": len(moved), "sample": moved[:20]}


@job("loyalty.birthday_coupons")
def birthday_coupons(ctx: JobContext) -> dict[str, Any]:
    """Issue birthday coupons to members born today (shop time zone), once a year."""
    from growthwheel.loyalty import service as loyalty

    issued = loyalty.issue_birthday_coupons_batched(ctx.transaction, ctx.now, shop_timezone(ctx))
    return {"issued": len(issued)}


# ---------------------------------------------------------------------------------------------
# Social selling
# ---------------------------------------------------------------------------------------------


def refund_failed_groups(session: Session, now: datetime) -> dict[str, Any]:
    """Refund, through the checkout's refund flow, every paid member of a failed group not refunded
    yet (idempotent: the refund id is ``group-<member id>``). Each refund runs in a savepoint, so a
    member whose refund cannot be made is reported without undoing the others."""
    from growthwheel.promotions import orders
    from growthwheel.promotions import repository as promotions_repository
    from growthwheel.promotions.models import CheckoutRefund
    from growthwheel.promotions.schemas import RefundIn, RefundLineIn
    from growthwheel.social.models import Group, GroupDeal, GroupMember

    members = session.execute(
        select(GroupMember, GroupDeal.sku)
        .join(Group, Group.id == GroupMember.group_id).join(GroupDeal, GroupDeal.id == Group.deal_id)
        .where(Group.status == "failed", GroupMember.status == "released", GroupMember.paid.is_(True),
               GroupMember.order_id.is_not(None))
        .order_by(GroupMember.released_at, GroupMember.id)
    ).all()
    wanted = {f"group-{member.id}": (member, sku) for member, sku in members}
    done = set(session.scalars(select(CheckoutRefund.id).where(CheckoutRefund.id.in_(list(wanted)))))
    refunded: list[dict[str, Any]] = []
    external: list[str] = []
    problems: list[dict[str, str]] = []
    for refund_id, (member, sku) in wanted.items():
        if refund_id in done:
            continue
        order_id = str(member.order_id)
        if promotions_repository.order(session, order_id) is None:
            external.append(order_id)
            continue
        lines = [RefundLineIn(line_id=line.line_id, quantity=line.quantity - line.refunded_quantity)
                 for line in promotions_repository.order_lines(session, order_id)
                 if line.sku == sku and line.quantity > line.refunded_quantity]
        try:
            with session.begin_nested():
                out = orders.refund(session, order_id, RefundIn(refund_id=refund_id, lines=lines or None),
                                    now=now)
        except GrowthwheelError as exc:
            problems.append({"order_id": order_id, "error": f"{exc.code}: {exc.message}"})
            continue
        refunded.append({"order_id": order_id, "customer_id": member.customer_id, "amount": out.amount})
    return {"refunded": refunded, "external_orders": external, "problems": problems}


@job("social.expire_groups")
def expire_groups(ctx: JobContext) -> dict[str, Any]:
    """Fail the groups past their deadline and refund their paid members through the checkout."""
    from growthwheel.social import deals

    with ctx.transaction() as session:
        failed = deals.expire_groups(session, ctx.now)
        refunds = refund_failed_groups(session, ctx.now)
    if refunds["problems"]:
        # The groups' expiry is committed; the refunds that could not be made fail the run so it
        # is retried (with backoff) and shows in the console.
        problems = refunds["problems"]
        raise GrowthwheelError(f"{len(problems)} group refund(s) failed: {problems[:5]}")
    return {"members_released_paid": len(failed), "refunded": len(refunds["refunded"]),
            "amount_refunded": sum(r["amount"] for r in refunds["refunded"]),
            "external_orders": refunds["external_orders"][:50]}


@job("social.expire_bargains")
def expire_bargains(ctx: JobContext) -> dict[str, Any]:
    """Mark the bargains past their time as expired."""
    from growthwheel.social import deals

    with ctx.transaction() as session:
        return {"expired": deals.expire_bargains(session, ctx.now)}


@job("social.settle_referrals")
def settle_referrals(ctx: JobContext) -> dict[str, Any]:
    """Reward the referrals whose refund window has passed."""
    from growthwheel.social import service
    from growthwheel.social.grants import promotions_granter

    with ctx.transaction() as session:
        result = service.settle_referrals(session, ctx.now, granter=promotions_granter)
        return {"rewarded": len(result.rewarded), "granted": len(result.granted),
                "failed": len(result.failed)}


# ---------------------------------------------------------------------------------------------
# Warehouse jobs
# ---------------------------------------------------------------------------------------------


@job("segments.refresh")
def refresh_segment(ctx: JobContext) -> dict[str, Any]:
    """Refresh a saved segment's membership (params: ``segment_id``)."""
    from growthwheel.segments.service import SegmentNotFoundError

    segment_id = str(ctx.params.get("segment_id") or "")
    with ctx.transaction() as session:
        try:
            return warehouse_access.refresh_segment(ctx.cfg, session, segment_id)
        except SegmentNotFoundError:
            row = session.get(JobSchedule, ctx.schedule)
            if row is not None:
                row.enabled = False  # the segment was deleted: stop refreshing it
            return {"disabled": f"segment {segment_id!r} no longer exists"}


@job("reports.review")
def review_report(ctx: JobContext) -> dict[str, Any]:
    """Write the periodic review once per period (params: ``period`` week/month/quarter)."""
    period = str(ctx.params.get("period") or "week")
    today = ctx.now.astimezone(ZoneInfo(shop_timezone(ctx))).date()
    starts = {"week": today.weekday() == 0, "month": today.day == 1,
              "quarter": today.day == 1 and today.month in (1, 4, 7, 10)}
    if period not in starts:
        raise GrowthwheelError(f"period: {period!r} is not week, month or quarter")
    if not starts[period] and not ctx.params.get("every_day"):
        return {"skipped": f"a {period} review is written when the {period} starts"}
    target = ctx.cfg.data_dir / "reports" / f"review-{period}-{today.isoformat()}.html"
    if target.exists():
        return {"path": str(target), "written": False}
    try:
        html = warehouse_access.review_html(ctx.cfg, period, today)
    except NoDataError as exc:  # a shop with nothing to review yet: not a failure
        return {"skipped": exc.message}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".html.part")
    partial.write_text(html, encoding="utf-8")
    partial.replace(target)  # atomic: a crash never leaves half a report
    return {"path": str(target), "written": True}


# ---------------------------------------------------------------------------------------------
# Journeys
# ---------------------------------------------------------------------------------------------


@job("facts.drain")
def facts_drain(ctx: JobContext) -> dict[str, Any]:
    """Move the acting facts (orders, refunds, points, coupons, messages) into the warehouse."""
    return warehouse_access.drain_facts(ctx.cfg, ctx.transaction)


@job("journeys.tick")
def journeys_tick(ctx: JobContext) -> dict[str, Any]:
    """Evaluate journey triggers, check goals and advance the due enrolments."""
    from growthwheel.journeys.jobs import run_tick

    return run_tick(ctx)


@job("journeys.learn")
def journeys_learn(ctx: JobContext) -> dict[str, Any]:
    """Learn today's lifecycle thresholds and product cycles once, ahead of the day's ticks."""
    from growthwheel.journeys.jobs import run_learn

    return run_learn(ctx)


# ---------------------------------------------------------------------------------------------
# Recommendations
# ---------------------------------------------------------------------------------------------


@job("recs.refresh")
def recs_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recompute every customer's recommendations and every product's also-bought list from the
    warehouse (read in the server when one owns it) and replace the stored ones in one transaction."""
    from growthwheel import analyst
    from growthwheel.recs import service

    try:
        built = analyst.run("recs_build", {"evaluate": bool(ctx.params.get("evaluate", True))}, ctx.cfg)
    except NoDataError as exc:  # nothing bought yet: not a failure
        return {"skipped": exc.message}
    with ctx.transaction() as session:
        run = service.save(session, built, ctx.now)
        return {"run": run.id, "customers": run.customers, "products": run.products, "weights": run.weights}


# ---------------------------------------------------------------------------------------------
# Inventory
# ---------------------------------------------------------------------------------------------


@job("inventory.refresh")
def inventory_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recompute the inventory plan (forecasts, safety stock, reorder points, risks, slow movers)
    from the warehouse (read in the server when one owns it) and store it for the console."""
    from growthwheel import analyst
    from growthwheel.inventory import service

    try:
        report = analyst.run("inventory_plan", dict(ctx.params), ctx.cfg)
    except NoDataError as exc:  # nothing sold or stocked yet: not a failure
        return {"skipped": exc.message}
    with ctx.transaction() as session:
        row = service.save(session, report, ctx.now)
        return {"plan": row.id, "as_of": row.as_of, "skus": row.skus, "reorder": row.reorder,
                "at_risk": row.at_risk}


# ---------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------


@job("alerts.evaluate")
def alerts_evaluate(ctx: JobContext) -> dict[str, Any]:
    """Judge every enabled alert rule over yesterday (params: ``since`` to back-fill)."""
    from growthwheel import analyst

    today = ctx.now.astimezone(ZoneInfo(shop_timezone(ctx))).date()
    found: dict[str, Any] = analyst.run("alerts_evaluate", {"today": today.isoformat(),
                                                            "since": ctx.params.get("since")}, ctx.cfg)
    return found


# ---------------------------------------------------------------------------------------------
# Voice of the customer
# ---------------------------------------------------------------------------------------------


@job("voice.sync")
def voice_sync(ctx: JobContext) -> dict[str, Any]:
    """Open service-queue cases for the reviews imported since the last sync (negative, unanswered)."""
    from growthwheel import analyst

    done: dict[str, Any] = analyst.run("voice_sync", {}, ctx.cfg)
    return done


DEFAULT_SCHEDULES: list[ScheduleSpec] = [
    ScheduleSpec("loyalty.expire_points", "loyalty.expire_points", daily_at="00:05"),
    ScheduleSpec("loyalty.sync_members", "loyalty.sync_members", daily_at="00:10"),
    ScheduleSpec("loyalty.review_tiers", "loyalty.review_tiers", daily_at="00:15"),
    ScheduleSpec("loyalty.birthday_coupons", "loyalty.birthday_coupons", daily_at="09:00"),
    ScheduleSpec("social.expire_groups", "social.expire_groups", every_seconds=MINUTE),
    ScheduleSpec("social.expire_bargains", "social.expire_bargains", every_seconds=MINUTE),
    ScheduleSpec("social.settle_referrals", "social.settle_referrals", every_seconds=10 * MINUTE),
    ScheduleSpec("journeys.tick", "journeys.tick", every_seconds=MINUTE),
    ScheduleSpec("journeys.learn", "journeys.learn", daily_at="00:20"),
    ScheduleSpec("facts.drain", "facts.drain", every_seconds=10),
    ScheduleSpec("recs.refresh", "recs.refresh", daily_at="03:00"),
    ScheduleSpec("inventory.refresh", "inventory.refresh", daily_at="03:30"),
    ScheduleSpec("alerts.evaluate", "alerts.evaluate", daily_at="06:30"),
    ScheduleSpec("voice.sync", "voice.sync", every_seconds=5 * MINUTE),
    ScheduleSpec("reports.review:week", "reports.review", daily_at="07:00", params={"period": "week"}),
    ScheduleSpec("reports.review:month", "reports.review", daily_at="07:00", params={"period": "month"}),
]
"""Added to the store by the worker when missing (an operator's changes to them are kept)."""


def segment_schedule(segment_id: str, every_seconds: int) -> ScheduleSpec:
    """The schedule that refreshes one saved segment."""
    return ScheduleSpec(f"segments.refresh:{segment_id}", "segments.refresh", every_seconds=every_seconds,
                        params={"segment_id": segment_id})
