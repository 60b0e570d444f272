"""Journeys: life cycle (create, change, activate, pause, end), the tick, audience preview.

**The tick** (:func:`tick`, run by the worker's ``journeys.tick`` job) does, for every active
journey, three things, each in short transactions of its own:

1. **enrol**: evaluate the trigger over ``(evaluated_until, now]`` (at the first activation
   ``backfill_days`` further back), apply the re-entry policy (``never``: the occurrence is
   ``once``, so the database itself refuses a second entry; ``after_days``: not within N days of
   the last entry; ``always``: every new occurrence), draw the hold-out (a fixed hash of journey
   and customer below ``holdout_share``: the enrolment is recorded as ``held_out`` and gets
   nothing), and insert with ``ON CONFLICT DO NOTHING`` on (journey, customer, occurrence) — two
   ticks finding the same occurrence enrol it once;
2. **goal**: for enrolments whose goal window is open, paid orders after entering (warehouse orders,
   plus checkout orders not in the warehouse yet) mark the conversion and the revenue of the
   window; an active enrolment that converts leaves the journey (``converted``);
3. **advance**: every due active enrolment is walked by :func:`engine.decide`; in **one**
   transaction: a conditional ``UPDATE … WHERE seq = :seen`` (the enrolment moves only if nobody
   moved it since it was read; it also locks the row), the step log, and every effect — outbox
   rows keyed ``outbox_key(journey, step, customer, occurrence)``, coupon codes issued under an
   issue key of the same four, tags and attributes. A second worker that read the same enrolment
   finds ``seq`` changed, rolls back and moves on, so no effect happens twice.

Services never commit except :func:`tick`, which owns its transactions (it is the job).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.jobs import outbox
from growthwheel.journeys import definition as d
from growthwheel.journeys import engine, repository, triggers
from growthwheel.journeys.models import Enrolment, Journey
from growthwheel.journeys.repository import OrderFact, WarehouseView
from growthwheel.store.db import session_scope

log = logging.getLogger(__name__)

TRANSITIONS = {
    "activate": ({"draft", "paused"}, "active"),
    "pause": ({"active"}, "paused"),
    "end": ({"draft", "active", "paused"}, "ended"),
}
GOAL_GRACE = timedelta(days=7)
"""Goal windows closed less than this long ago are still checked (orders imported late)."""


class JourneyNotFoundError(GrowthwheelError):
    """No journey with that id or name."""

    code = "journey_not_found"
    status = 404


class JourneyExistsError(GrowthwheelError):
    """A journey with that name exists."""

    code = "journey_exists"
    status = 409


class JourneyStateError(GrowthwheelError):
    """Not allowed in the journey's current status."""

    code = "journey_state"
    status = 409


class BudgetSpentError(GrowthwheelError):
    """A journey's coupon step found the batch's budget spent (the step is skipped, not failed)."""

    code = "coupon_budget_spent"
    status = 409


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# Life cycle
# ---------------------------------------------------------------------------------------------


def check_definition(data: Any) -> d.Definition:
    """Parse a definition and compile its templates (a syntax error is a 422 naming the step)."""
    from growthwheel.journeys.channels.templates import TemplateError, validate

    defn = d.parse(data)
    for index, step in enumerate(defn.steps):
        if isinstance(step, d.SendStep):
            try:
                validate(message_template(step))
            except TemplateError as exc:
                raise InvalidArgumentError(
                    f"definition.steps[{index}].template.{exc.field}: {exc.message}"
                ) from None
    return defn


def get_journey(session: Session, ref: str) -> Journey:
    """The journey ``ref`` (id or name), or 404."""
    found = repository.journey(session, ref)
    if found is None:
        raise JourneyNotFoundError(f"no journey {ref!r}")
    return found


def create_journey(
    session: Session,
    name: str,
    definition: Any,
    *,
    description: str | None = None,
    principal: Principal | None = None,
    actor_name: str | None = None,
    now: datetime | None = None,
) -> Journey:
    """A new journey in ``draft`` (audited)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidArgumentError("name: 1 to 200 characters")
    defn = check_definition(definition)
    if repository.journey(session, name) is not None:
        raise JourneyExistsError(f"name: a journey called {name!r} exists")
    when = now or _now()
    data = defn.model_dump(mode="json", by_alias=True)
    row = Journey(
        name=name,
        description=description,
        status="draft",
        version=1,
        definition=data,
        created_by=principal.name if principal else (actor_name or "system"),
        created_at=when,
        updated_at=when,
    )
    session.add(row)
    session.flush()
    repository.add_version(session, row.id, 1, data, when)
    audit(session, principal, "journey.create", f"journey:{row.id}", {"name": name}, actor_name=actor_name)
    session.flush()
    return row


def update_definition(
    session: Session,
    ref: str,
    definition: Any,
    *,
    principal: Principal | None = None,
    actor_name: str | None = None,
    now: datetime | None = None,
) -> Journey:
    """A new version of the definition; enrolments already in keep the version they entered with."""
    row = get_journey(session, ref)
    if row.status == "ended":
        raise JourneyStateError("the journey has ended; create a new one")
    defn = check_definition(definition)
    when = now or _now()
    row.version += 1
    row.definition = defn.model_dump(mode="json", by_alias=True)
    row.updated_at = when
    repository.add_version(session, row.id, row.version, row.definition, when)
    audit(
        session,
        principal,
        "journey.update",
        f"journey:{row.id}",
        {"version": row.version},
        actor_name=actor_name,
    )
    session.flush()
    return row


def change_status(
    session: Session,
    ref: str,
    action: str,
    *,
    principal: Principal | None = None,
    actor_name: str | None = None,
    now: datetime | None = None,
) -> Journey:
    """``activate`` / ``pause`` / ``end`` (409 when the status does not allow it)."""
    if action not in TRANSITIONS:
        raise InvalidArgumentError(f"action: one of {', '.join(TRANSITIONS)}")
    row = get_journey(session, ref)
    allowed, target = TRANSITIONS[action]
    if row.status not in allowed:
        raise JourneyStateError(f"cannot {action} a journey that is {row.status}")
    when = now or _now()
    if action == "activate" and row.activated_at is None:
        row.activated_at = when
        backfill = d.parse(row.definition).backfill_days
        row.evaluated_until = when - timedelta(days=backfill)
    if action == "end":
        row.ended_at = when
    row.status = target
    row.updated_at = when
    audit(
        session,
        principal,
        f"journey.{action}",
        f"journey:{row.id}",
        {"status": target},
        actor_name=actor_name,
    )
    session.flush()
    return row


# ---------------------------------------------------------------------------------------------
# Audience
# ---------------------------------------------------------------------------------------------


def candidates(
    session: Session, view: WarehouseView, trig: Any, window: triggers.Window
) -> list[triggers.Candidate]:
    """Customers the trigger hit in ``window`` (warehouse or operational store)."""
    if trig.kind in d.STORE_TRIGGERS:
        return triggers.evaluate_store(session, trig, window)
    return view.candidates(trig, window)


def preview(
    session: Session,
    view: WarehouseView,
    definition: Any,
    *,
    timezone: str,
    now: datetime | None = None,
    days: int = 30,
    sample: int = 20,
) -> dict[str, Any]:
    """Who the trigger would have hit over the last ``days`` days: count, hold-out size, a sample."""
    defn = check_definition(definition)
    when = now or _now()
    found = candidates(
        session, view, defn.trigger, triggers.Window(when - timedelta(days=days), when, timezone)
    )
    customers = sorted({c.customer_id for c in found})
    held = sum(engine.held_out("preview", c, defn.holdout_share) for c in customers)
    return {
        "days": days,
        "occurrences": len(found),
        "customers": len(customers),
        "expected_holdout": round(len(customers) * defn.holdout_share),
        "held_out_if_now": held,
        "sample": customers[:sample],
    }


# ---------------------------------------------------------------------------------------------
# The tick
# ---------------------------------------------------------------------------------------------


@dataclass
class TickStats:
    """What one tick did."""

    enrolled: int = 0
    held_out: int = 0
    converted: int = 0
    advanced: int = 0
    lost_races: int = 0
    effects: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Counts (and up to 20 errors)."""
        return {
            "enrolled": self.enrolled,
            "held_out": self.held_out,
            "converted": self.converted,
            "advanced": self.advanced,
            "lost_races": self.lost_races,
            "effects": self.effects,
            "errors": self.errors[:20],
        }


@dataclass(frozen=True)
class Env:
    """What effects need besides the store: the shop and how links are signed."""

    timezone: str
    currency: str = "CNY"
    shop_name: str = ""
    secret: bytes = b""
    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def of(cls, cfg: Settings) -> Env:
        """The environment of ``cfg``'s data directory."""
        from growthwheel.accounts.service import server_secret
        from growthwheel.journeys.channels import config as channels_config

        shop = cfg.shop()
        try:
            public = channels_config.load(cfg).public_url
        except GrowthwheelError:
            public = "http://127.0.0.1:8000"
        return cls(
            timezone=shop.timezone,
            currency=shop.currency,
            shop_name=shop.name,
            secret=server_secret(cfg.data_dir),
            public_url=public,
        )


def _occurrence(policy: d.Reentry, occurrence: str) -> str:
    return "once" if policy.policy == "never" else occurrence[:200]


def enrol(
    session: Session,
    row: Journey,
    defn: d.Definition,
    found: Sequence[triggers.Candidate],
    now: datetime,
    stats: TickStats,
) -> None:
    """Enrol the candidates (re-entry policy, hold-out; the database refuses duplicates)."""
    if not found:
        return
    latest: dict[str, triggers.Candidate] = {}
    for cand in sorted(found, key=lambda c: c.occurred_at):
        latest[cand.customer_id] = cand  # one entry per customer per tick: the latest occurrence
    last = repository.last_entries(session, row.id, list(latest)) if defn.reentry.policy != "always" else {}
    rows: list[dict[str, Any]] = []
    for customer, cand in latest.items():
        before = last.get(customer)
        if before is not None and defn.reentry.policy == "never":
            continue
        if (
            before is not None
            and defn.reentry.days is not None
            and now - before < timedelta(days=defn.reentry.days)
        ):
            continue
        held = engine.held_out(row.id, customer, defn.holdout_share)
        rows.append(
            {
                "id": _new_id(),
                "journey_id": row.id,
                "version": row.version,
                "customer_id": customer,
                "occurrence": _occurrence(defn.reentry, cand.occurrence),
                "held_out": held,
                "status": "held_out" if held else "active",
                "step_id": None if held else defn.start,
                "waiting": False,
                "due_at": None if held else now,
                "seq": 0,
                "context": {},
                "entered_at": now,
                "triggered_at": cand.occurred_at,
                "goal_until": now + timedelta(days=defn.goal.within_days),
            }
        )
    added = repository.insert_enrolments(session, rows)
    stats.enrolled += added
    stats.held_out += sum(1 for r in rows if r["held_out"]) if added == len(rows) else 0


def _new_id() -> str:
    from growthwheel.accounts.models import new_id

    return new_id()


def check_goals(
    session: Session, view: WarehouseView, row: Journey, defn: d.Definition, now: datetime, stats: TickStats
) -> None:
    """Mark conversions and window revenue of the enrolments whose goal window is open."""
    open_ = repository.open_goals(session, row.id, now - GOAL_GRACE)
    if not open_:
        return
    since = min(e.entered_at for e in open_)
    by_customer: dict[str, list[OrderFact]] = {}
    for order in repository.all_orders(session, view, sorted({e.customer_id for e in open_}), since):
        by_customer.setdefault(order.customer_id, []).append(order)
    for e in open_:
        inside = sorted(
            (
                o
                for o in by_customer.get(e.customer_id, ())
                if _aware(e.entered_at) < o.ordered_at <= _aware(e.goal_until)
                and o.ordered_at <= now
                and o.amount >= defn.goal.min_amount
            ),
            key=lambda o: o.ordered_at,
        )
        if not inside:
            continue
        revenue = sum(o.amount for o in inside)
        values: dict[str, Any] = {"conversion_amount": revenue}
        first = e.converted_at is None
        if first:
            values |= {"converted_at": inside[0].ordered_at, "conversion_order_id": inside[0].order_id}
        if e.status == "active" and defn.exit_on_goal:
            if not repository.take_turn(
                session, e.id, e.seq, {**values, "status": "converted", "finished_at": now, "due_at": None}
            ):
                continue
        elif values != {"conversion_amount": e.conversion_amount} or first:
            session.execute(
                update(Enrolment)
                .where(Enrolment.id == e.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        stats.converted += int(first)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def facts_for(
    session: Session,
    view: WarehouseView,
    defn: d.Definition,
    due: Sequence[Enrolment],
    orders: Sequence[OrderFact],
) -> dict[str, engine.Facts]:
    """What conditions may ask about the due enrolments."""
    conditions = [s.condition for s in defn.steps if isinstance(s, d.ConditionStep)]
    customers = sorted({e.customer_id for e in due})
    ordered = {
        e.id
        for e in due
        for o in orders
        if o.customer_id == e.customer_id and o.ordered_at > _aware(e.entered_at)
    }
    kinds = {c.kind for c in conditions}
    traits = repository.traits(session, customers) if kinds & {"has_tag", "attribute"} else {}
    wtags = view.tags(customers) if "has_tag" in kinds else {}
    segments: dict[str, set[str]] = {}
    for c in conditions:
        if c.kind == "in_segment" and c.segment_id:
            for member in view.segment_members(c.segment_id, customers):
                segments.setdefault(member, set()).add(c.segment_id)
    clicked: dict[str, set[str]] = {}
    if "clicked" in kinds:
        keys = {
            outbox.outbox_key(e.journey_id, c.step or "", e.customer_id, e.occurrence): (e.id, c.step or "")
            for e in due
            for c in conditions
            if c.kind == "clicked"
        }
        for key in repository.clicked_keys(session, list(keys)):
            enrolment_id, step = keys[key]
            clicked.setdefault(enrolment_id, set()).add(step)
    out: dict[str, engine.Facts] = {}
    for e in due:
        tags, attrs = traits.get(e.customer_id, (set(), {}))
        out[e.id] = engine.Facts(
            ordered=e.id in ordered,
            tags=frozenset(tags | wtags.get(e.customer_id, set())),
            attributes=dict(attrs),
            clicked=frozenset(clicked.get(e.id, set())),
            segments=frozenset(segments.get(e.customer_id, set())),
        )
    return out


def tick(
    cfg: Settings,
    view: WarehouseView,
    *,
    now: datetime | None = None,
    batch: int = 500,
    env: Env | None = None,
    check_lease: Callable[[Session], None] | None = None,
) -> TickStats:
    """One pass over every active journey (see the module docstring); commits its own transactions.
    ``check_lease`` (the job's lease fence) runs inside each transaction before it commits."""
    when = now or _now()
    env = env or Env.of(cfg)
    fence = check_lease or (lambda _s: None)
    stats = TickStats()
    with session_scope(cfg) as session:
        active = [(j.id, j.version) for j in repository.journeys(session, "active")]
    for journey_id, _version in active:
        try:
            with session_scope(cfg) as session:
                outbox.begin_immediate(session)
                row = session.get(Journey, journey_id)
                if row is None or row.status != "active":
                    continue
                defn = d.parse(row.definition)
                since = _aware(row.evaluated_until or row.activated_at or when)
                if since < when:
                    found = candidates(
                        session, view, defn.trigger, triggers.Window(since, when, env.timezone)
                    )
                    enrol(session, row, defn, found, when, stats)
                    row.evaluated_until = when
                fence(session)
            with session_scope(cfg) as session:
                outbox.begin_immediate(session)
                row = session.get(Journey, journey_id)
                if row is not None:
                    check_goals(session, view, row, d.parse(row.definition), when, stats)
                fence(session)
        except GrowthwheelError:
            raise
        except Exception as exc:  # one journey's trouble does not stop the others
            log.exception("journey %s: enrolment failed", journey_id)
            stats.errors.append(f"{journey_id}: {type(exc).__name__}: {exc}"[:500])
    advance_due(cfg, view, [j for j, _v in active], now=when, batch=batch, env=env, stats=stats, fence=fence)
    return stats


def advance_due(
    cfg: Settings,
    view: WarehouseView,
    journey_ids: Sequence[str],
    *,
    now: datetime,
    batch: int,
    env: Env,
    stats: TickStats,
    fence: Callable[[Session], None] = lambda _s: None,
) -> None:
    """Advance every due enrolment of these journeys (one transaction per enrolment)."""
    if not journey_ids:
        return
    seen: set[str] = set()
    while True:
        with session_scope(cfg) as session:
            due = [e for e in repository.due_enrolments(session, now, batch, journey_ids) if e.id not in seen]
            session.expunge_all()
        if not due:
            return
        seen |= {e.id for e in due}
        by_version: dict[tuple[str, int], list[Enrolment]] = {}
        for e in due:
            by_version.setdefault((e.journey_id, e.version), []).append(e)
        for (journey_id, version), group in by_version.items():
            with session_scope(cfg) as session:
                data = repository.version_definition(session, journey_id, version)
                jrow = session.get(Journey, journey_id)
                name = jrow.name if jrow else journey_id
                if data is None or jrow is None or jrow.status != "active":
                    continue
                defn = d.parse(data)
                orders = repository.all_orders(
                    session,
                    view,
                    sorted({e.customer_id for e in group}),
                    min(_aware(e.entered_at) for e in group),
                )
                facts = facts_for(session, view, defn, group, orders)
            contacts = view.contacts(sorted({e.customer_id for e in group})) if _sends(defn) else {}
            for e in group:
                advance_one(
                    cfg,
                    defn,
                    name,
                    e,
                    facts[e.id],
                    contacts.get(e.customer_id, {}),
                    now=now,
                    env=env,
                    stats=stats,
                    fence=fence,
                )


def _sends(defn: d.Definition) -> bool:
    return any(isinstance(s, d.SendStep) for s in defn.steps)


def advance_one(
    cfg: Settings,
    defn: d.Definition,
    journey_name: str,
    e: Enrolment,
    facts: engine.Facts,
    contact: dict[str, Any],
    *,
    now: datetime,
    env: Env,
    stats: TickStats,
    fence: Callable[[Session], None] = lambda _s: None,
) -> bool:
    """Walk one enrolment and carry out its effects in one transaction; False when another worker
    moved it first (then nothing of ours is committed)."""
    decision = engine.decide(
        defn,
        journey_id=e.journey_id,
        customer_id=e.customer_id,
        occurrence=e.occurrence,
        position=engine.Position(e.step_id or defn.start, e.waiting, _aware(e.due_at) if e.due_at else None),
        facts=facts,
        now=now,
        timezone=env.timezone,
    )
    context = dict(e.context or {})
    with session_scope(cfg) as session:
        outbox.begin_immediate(session)
        values: dict[str, Any] = {
            "step_id": decision.step_id,
            "waiting": decision.waiting,
            "due_at": decision.due_at,
            "status": decision.status,
        }
        if decision.status != "active":
            values["finished_at"] = now
        if not repository.take_turn(session, e.id, e.seq, values):
            stats.lost_races += 1
            return False
        outcomes: dict[str, tuple[str, dict[str, Any]]] = {}
        for effect in decision.effects:
            outcome, detail = _carry_out(session, effect, e, journey_name, context, contact, now, env)
            outcomes[effect.step.id] = (outcome, detail)
            stats.effects += int(outcome in ("queued", "issued", "tagged", "untagged", "set", "cleared"))
        for visit in decision.visits:
            outcome, detail = outcomes.get(visit.step_id, (visit.outcome, dict(visit.detail)))
            repository.log_step(session, e, visit.step_id, outcome, detail, now)
        if context != (e.context or {}):
            session.execute(
                update(Enrolment)
                .where(Enrolment.id == e.id)
                .values(context=context)
                .execution_options(synchronize_session=False)
            )
        fence(session)
    stats.advanced += 1
    return True


def message_template(step: d.SendStep) -> Any:
    """The channels' :class:`MessageTemplate` of a send step."""
    from growthwheel.journeys.channels.templates import MessageTemplate, TemplateText

    texts: dict[str, TemplateText] = {
        lang: TemplateText(subject=t.subject, text=t.text, html=t.html, sms_params=dict(t.sms_params))
        for lang, t in step.template.texts.items()
    }
    return MessageTemplate(
        name=step.id,
        channel=step.channel,
        texts=texts,
        sms_template_code=step.template.sms_template_code,
        wecom_msgtype=step.template.wecom_msgtype,
    )


def _issue_key(e: Enrolment, step_id: str) -> str:
    digest = hashlib.sha256(f"{e.journey_id}|{step_id}|{e.occurrence}".encode()).hexdigest()[:40]
    return f"journey:{digest}"


def _carry_out(
    session: Session,
    effect: engine.Effect,
    e: Enrolment,
    journey_name: str,
    context: dict[str, Any],
    contact: dict[str, Any],
    now: datetime,
    env: Env,
) -> tuple[str, dict[str, Any]]:
    """One effect, in the enrolment's transaction; returns (outcome, detail) for the step log."""
    step = effect.step
    if effect.kind == "coupon":
        return _issue_coupon(session, step, e, context, now)
    if effect.kind == "tag":
        if step.action == "add":
            repository.set_trait(
                session, e.customer_id, "tag", step.tag, None, f"journey:{e.journey_id}", now
            )
            return "tagged", {"tag": step.tag}
        repository.remove_trait(session, e.customer_id, "tag", step.tag)
        return "untagged", {"tag": step.tag}
    if effect.kind == "attribute":
        if step.value is None:
            repository.remove_trait(session, e.customer_id, "attribute", step.name)
            return "cleared", {"name": step.name}
        repository.set_trait(
            session, e.customer_id, "attribute", step.name, step.value, f"journey:{e.journey_id}", now
        )
        return "set", {"name": step.name, "value": step.value}
    key = outbox.outbox_key(e.journey_id, step.id, e.customer_id, e.occurrence)
    if effect.kind == "webhook":
        data = {
            "event": step.event,
            "customer_id": e.customer_id,
            "journey": journey_name,
            "journey_id": e.journey_id,
            "step": step.id,
            **step.data,
            **context,
        }
        outbox.enqueue(
            session,
            key=key,
            channel="webhook",
            recipient="",
            customer_id=e.customer_id,
            journey_id=e.journey_id,
            step_id=step.id,
            occurrence=e.occurrence,
            now=now,
            payload={
                "subject": step.event,
                "text": "",
                "html": None,
                "lang": "zh",
                "headers": {},
                "data": data,
            },
        )
        return "queued", {"key": key}
    return _send(session, step, e, key, journey_name, context, contact, now, env)


def _issue_coupon(
    session: Session, step: d.CouponStep, e: Enrolment, context: dict[str, Any], now: datetime
) -> tuple[str, dict[str, Any]]:
    from growthwheel.promotions import coupons
    from growthwheel.promotions.models import CouponCode

    key = _issue_key(e, step.id)
    try:
        with session.begin_nested():
            batch = coupons.get_batch(session, step.batch_id)
            result = coupons.issue(
                session, batch, [e.customer_id], issue_key=key, now=now, actor_name="journey"
            )
            code = (
                result.issued.get(e.customer_id)
                or session.scalars(
                    select(CouponCode.code).where(
                        CouponCode.batch_id == batch.id,
                        CouponCode.customer_id == e.customer_id,
                        CouponCode.issue_key == key,
                    )
                ).first()
            )
            valid_until = batch.valid_until.isoformat()
            if batch.budget_count is not None:
                # ``issue`` raised issued_count in SQL (locking the batch row until commit; SQLite:
                # the write lock), so this read sees every concurrent issue that committed first.
                session.refresh(batch, ["issued_count", "used_count"])
                if batch.issued_count > batch.budget_count or batch.used_count >= batch.budget_count:
                    raise BudgetSpentError(
                        f"the budget of {batch.budget_count} codes of {batch.name!r} is spent"
                    )
    except GrowthwheelError as exc:
        context["coupon"] = {}  # templates read {{ coupon.code }} as empty; a condition can branch on it
        return "coupon_unavailable", {"batch_id": step.batch_id, "reason": f"{exc.code}: {exc.message}"[:500]}
    context.setdefault("coupons", {})[step.id] = {"code": code, "valid_until": valid_until}
    context["coupon"] = {"code": code, "valid_until": valid_until}
    return "issued", {"batch_id": step.batch_id, "code": code}


_ADDRESS = {"email": "email", "sms": "phone"}


def _send(
    session: Session,
    step: d.SendStep,
    e: Enrolment,
    key: str,
    journey_name: str,
    context: dict[str, Any],
    contact: dict[str, Any],
    now: datetime,
    env: Env,
) -> tuple[str, dict[str, Any]]:
    from growthwheel.journeys.channels.guard import payload_of
    from growthwheel.journeys.channels.links import LinkMaker, Utm
    from growthwheel.journeys.channels.templates import Recipient, TemplateError, render

    field_name = _ADDRESS.get(step.channel)
    address = str(contact.get(field_name) or "") if field_name else e.customer_id
    if step.channel == "webhook":
        address = ""
    if field_name and not address:
        return "no_address", {"channel": step.channel}
    lang = str(context.get("lang") or contact.get("lang") or "zh")
    links = LinkMaker(
        secret=env.secret,
        base_url=env.public_url,
        customer_id=e.customer_id,
        channel=step.channel,
        message_key=key,
        utm=Utm("growthwheel", step.channel, journey_name[:100]),
    )
    extra = {**context, "journey": journey_name}
    if step.link:
        extra["shop_link"] = links.click(step.link, content=step.id)
    try:
        message = render(
            message_template(step),
            Recipient(e.customer_id, address, lang, {"name": contact.get("name"), "id": e.customer_id}),
            currency=env.currency,
            links=links,
            context=extra,
            shop={"name": env.shop_name},
        )
    except TemplateError as exc:
        return "template_error", {"error": exc.message[:500]}
    payload = {**payload_of(message), "on_quiet_hours": step.on_quiet_hours}
    outbox.enqueue(
        session,
        key=key,
        channel=step.channel,
        recipient=address,
        payload=payload,
        customer_id=e.customer_id,
        journey_id=e.journey_id,
        step_id=step.id,
        occurrence=e.occurrence,
        now=now,
    )
    return "queued", {"key": key, "channel": step.channel}
