"""Advancing one enrolment: pure decisions, no I/O.

:func:`decide` takes where an enrolment stands (:class:`Position`), what is known about the
customer now (:class:`Facts`) and the time, and walks the step graph from the current step until
it reaches a wait that has not ended or the end of the journey. It returns the steps visited
(each with its outcome, for the step log), the outgoing effects in order (send, coupon, tag,
attribute, webhook — carried out by the service in the same transaction as the move) and the new
position. Since the graph has no cycle, a walk visits each step at most once, and an effect is
identified by (journey, step, customer, occurrence).

* **wait**: reached at ``t``, it ends at ``t + hours/minutes``, or at the next ``until`` (HH:MM in
  the shop's zone; DST-safe: a wall time skipped by the spring change is read as the instant one
  hour later, a repeated one as its first occurrence);
* **condition**: ``then`` or ``else`` from :func:`holds`;
* **split**: a branch drawn from a hash of (journey, step, customer, occurrence) with the
  branches' weights — the same enrolment always takes the same branch;
* **exit**: the enrolment is ``completed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from growthwheel.experiments.assignment import pick_variant, unit_hash
from growthwheel.jobs.scheduler import next_run
from growthwheel.journeys import definition as d

EffectKind = Literal["send", "coupon", "tag", "attribute", "webhook"]


@dataclass(frozen=True)
class Position:
    """Where an enrolment stands: its current step and whether that step's wait has started."""

    step_id: str
    waiting: bool = False
    due_at: datetime | None = None


@dataclass(frozen=True)
class Facts:
    """What is known about the customer when the enrolment moves."""

    ordered: bool = False
    """A paid order since entering."""
    tags: frozenset[str] = frozenset()
    attributes: Mapping[str, str | None] = field(default_factory=dict)
    clicked: frozenset[str] = frozenset()
    """Send steps of this enrolment whose message had a link clicked."""
    segments: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Visit:
    """A step visited by a walk, and what it decided."""

    step_id: str
    outcome: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Effect:
    """An outgoing effect of a step, carried out by the service."""

    kind: EffectKind
    step: Any


@dataclass(frozen=True)
class Decision:
    """The result of one walk."""

    visits: tuple[Visit, ...]
    effects: tuple[Effect, ...]
    status: Literal["active", "completed"]
    step_id: str | None
    waiting: bool
    due_at: datetime | None


def wait_end(step: d.WaitStep, start: datetime, timezone: str) -> datetime:
    """When a wait reached at ``start`` ends."""
    if step.until is not None:
        return next_run(None, step.until, start, timezone)
    return start + timedelta(hours=step.hours, minutes=step.minutes)


def split_branch(step: d.SplitStep, journey_id: str, customer_id: str, occurrence: str) -> str:
    """The branch this enrolment takes (deterministic)."""
    draw = unit_hash(f"journey-split:{journey_id}:{step.id}", f"{customer_id}|{occurrence}")
    total = sum(b.weight for b in step.branches)
    return step.branches[pick_variant([b.weight / total for b in step.branches], draw)].next


def holds(condition: d.Condition, facts: Facts) -> bool:
    """Whether ``condition`` holds for ``facts``."""
    if condition.kind == "ordered":
        return facts.ordered
    if condition.kind == "has_tag":
        return condition.tag in facts.tags
    if condition.kind == "attribute":
        value = facts.attributes.get(condition.name or "")
        return (value == condition.value) == (condition.op == "eq")
    if condition.kind == "clicked":
        return condition.step in facts.clicked
    return condition.segment_id in facts.segments


def held_out(journey_id: str, customer_id: str, share: float) -> bool:
    """Whether the customer is in the journey's hold-out (the same customer always is or is not)."""
    return share > 0 and unit_hash(f"journey-holdout:{journey_id}", customer_id) < share


_EFFECTS: dict[type, EffectKind] = {d.SendStep: "send", d.CouponStep: "coupon", d.TagStep: "tag",
                                    d.AttributeStep: "attribute", d.WebhookStep: "webhook"}


def decide(defn: d.Definition, *, journey_id: str, customer_id: str, occurrence: str, position: Position,
           facts: Facts, now: datetime, timezone: str) -> Decision:
    """Walk from ``position`` at ``now`` (see the module docstring)."""
    visits: list[Visit] = []
    effects: list[Effect] = []
    current = position.step_id
    waiting = position.waiting
    for _guard in range(len(defn.steps) + 1):
        step = defn.step(current)
        if isinstance(step, d.WaitStep):
            if waiting:
                if position.due_at is not None and position.due_at > now:
                    return Decision(tuple(visits), tuple(effects), "active", current, True, position.due_at)
                visits.append(Visit(current, "waited"))
                current, waiting = step.next, False
                continue
            end = wait_end(step, now, timezone)
            if end <= now:
                visits.append(Visit(current, "waited"))
                current = step.next
                continue
            return Decision(tuple(visits), tuple(effects), "active", current, True, end)
        if isinstance(step, d.ExitStep):
            visits.append(Visit(current, "exit"))
            return Decision(tuple(visits), tuple(effects), "completed", None, False, None)
        if isinstance(step, d.ConditionStep):
            result = holds(step.condition, facts)
            visits.append(Visit(current, "then" if result else "else"))
            current = step.then if result else step.otherwise
            continue
        if isinstance(step, d.SplitStep):
            target = split_branch(step, journey_id, customer_id, occurrence)
            visits.append(Visit(current, "branch", {"next": target}))
            current = target
            continue
        effects.append(Effect(_EFFECTS[type(step)], step))
        visits.append(Visit(current, _EFFECTS[type(step)]))
        current = step.next
    raise AssertionError("unreachable: the step graph has no cycle")
