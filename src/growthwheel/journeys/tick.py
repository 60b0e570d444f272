"""The tick of the journeys: enrol, check goals, advance (run by the worker's ``journeys.tick``).

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

:func:`tick` owns its transactions (it is the job); the effects themselves are carried out by
:mod:`growthwheel.journeys.effects` inside the enrolment's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError
from growthwheel.jobs import outbox
from growthwheel.journeys import definition as d
from growthwheel.journeys import engine, repository, triggers
from growthwheel.journeys.effects import Env, carry_out
from growthwheel.journeys.models import Enrolment, Journey
from growthwheel.journeys.repository import OrderFact, WarehouseView
from growthwheel.store.db import session_scope

__all__ = ["GOAL_GRACE", "Env", "TickStats", "advance_due", "advance_one", "candidates", "check_goals",
           "enrol", "facts_for", "tick"]

log = logging.getLogger(__name__)

GOAL_GRACE = timedelta(days=7)
"""Goal windows closed less than this long ago are still checked (orders imported late)."""


def _now() -> datetime:
    return datetime.now(UTC)


def candidates(
    session: Session, view: WarehouseView, trig: Any, window: triggers.Window
) -> list[triggers.Candidate]:
    """Customers the trigger hit in ``window`` (warehouse or operational store)."""
    if trig.kind in d.STORE_TRIGGERS:
        return triggers.evaluate_store(session, trig, window)
    return view.candidates(trig, window)



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
            outcome, detail = carry_out(session, effect, e, journey_name, context, contact, now, env)
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


