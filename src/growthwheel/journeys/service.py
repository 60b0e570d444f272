"""Journeys: life cycle (create, change, activate, pause, end) and the audience preview.

The tick (enrolling, goals, advancing) lives in :mod:`growthwheel.journeys.tick` and the effects
of steps in :mod:`growthwheel.journeys.effects`; :func:`tick`, :class:`Env` and
:class:`TickStats` are re-exported here for callers that know the service only.

Services never commit: the request, job or CLI command owns the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.journeys import definition as d
from growthwheel.journeys import engine, repository, triggers
from growthwheel.journeys.effects import BudgetSpentError, message_template
from growthwheel.journeys.models import Journey
from growthwheel.journeys.repository import WarehouseView
from growthwheel.journeys.tick import Env, TickStats, candidates, tick

__all__ = [
    "BudgetSpentError",
    "Env",
    "JourneyExistsError",
    "JourneyNotFoundError",
    "JourneyStateError",
    "TickStats",
    "candidates",
    "change_status",
    "check_definition",
    "create_journey",
    "get_journey",
    "preview",
    "tick",
    "update_definition",
]

TRANSITIONS = {
    "activate": ({"draft", "paused"}, "active"),
    "pause": ({"active"}, "paused"),
    "end": ({"draft", "active", "paused"}, "ended"),
}


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
                raise d.DefinitionError(
                    f"definition.steps[{index}].template.{exc.field}", exc.message
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

