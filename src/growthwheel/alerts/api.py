"""REST endpoints of alerts (``/api/v1/alerts``): the inbox, its moves, the rules, an evaluation.

Reading needs the ``read`` scope; acknowledging, resolving, editing rules and evaluating need
``write``. Errors are problem+json naming the field (422), a missing id (404) or a move someone
made first (409).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from growthwheel.accounts.service import audit
from growthwheel.alerts import inbox, rules, service
from growthwheel.api.deps import DbSession, Principal, require_scope
from growthwheel.api.warehouse import warehouse
from growthwheel.warehouse.owner import WarehouseOwner

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

Reader = Annotated[Principal, Depends(require_scope("read"))]
Writer = Annotated[Principal, Depends(require_scope("write"))]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated (problem+json)."},
    403: {"description": "Missing scope (problem+json)."},
    404: {"description": "No such alert or rule (problem+json)."},
    409: {"description": "The alert moved already, or the rule name is taken (problem+json)."},
    422: {"description": "Invalid parameter, named in the problem (problem+json)."},
}


class Target(BaseModel):
    """Where a rule notifies."""

    channel: Literal["email", "wecom", "webhook", "sms"]
    recipient: str = Field(min_length=1, max_length=320)


class RuleIn(BaseModel):
    """A rule as written (see ``alerts.service`` for the kinds and their parameters)."""

    name: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=40)
    kind: Literal["threshold", "change", "anomaly"]
    dimension: Literal["channel", "category", "sku"] | None = None
    period: Literal["day", "week", "month"] = "day"
    params: dict[str, float | str] = Field(default_factory=dict, max_length=8)
    notify: list[Target] = Field(default_factory=list, max_length=rules.MAX_NOTIFY)
    cooldown_hours: int = Field(default=24, ge=0, le=24 * 90)
    enabled: bool = True

    def spec(self) -> rules.RuleSpec:
        """The service's spec."""
        return rules.RuleSpec(name=self.name, metric=self.metric, kind=self.kind, dimension=self.dimension,
                              period=self.period, params=dict(self.params),
                              notify=[t.model_dump() for t in self.notify],
                              cooldown_hours=self.cooldown_hours, enabled=self.enabled)


class ResolveIn(BaseModel):
    """An optional note on how the alert was handled."""

    note: str | None = Field(default=None, max_length=2000)


class EvaluateIn(BaseModel):
    """Judge the periods that ended since ``since`` (default: yesterday) up to yesterday."""

    since: str | None = Field(default=None, max_length=10, description="YYYY-MM-DD")
    lang: Literal["zh", "en"] = "zh"


@router.get("", summary="The alert inbox", responses=_PROBLEMS)
def list_alerts(session: DbSession, principal: Reader,
                status: Annotated[Literal["open", "acknowledged", "resolved"] | None, Query()] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    """Alerts, newest period first, with how many are in each status."""
    names = inbox.rule_names(session)
    return {"counts": inbox.counts(session),
            "alerts": [inbox.alert_out(a, names.get(a.rule_id))
                       for a in inbox.list_alerts(session, status=status, limit=limit)]}


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an open alert", responses=_PROBLEMS)
def acknowledge(alert_id: str, session: DbSession, principal: Writer) -> dict[str, Any]:
    """``open`` → ``acknowledged``; 409 when someone moved it first."""
    alert = inbox.acknowledge(session, alert_id, actor=principal.name)
    audit(session, principal, "alert.acknowledge", alert_id)
    return inbox.alert_out(alert)


@router.post("/{alert_id}/resolve", summary="Resolve an alert", responses=_PROBLEMS)
def resolve(alert_id: str, body: ResolveIn, session: DbSession, principal: Writer) -> dict[str, Any]:
    """``open`` / ``acknowledged`` → ``resolved`` with a note; 409 when it is resolved already."""
    alert = inbox.resolve(session, alert_id, actor=principal.name, note=body.note)
    audit(session, principal, "alert.resolve", alert_id)
    return inbox.alert_out(alert)


@router.get("/rules", summary="Alert rules", responses=_PROBLEMS)
def list_rules(session: DbSession, principal: Reader) -> list[dict[str, Any]]:
    """Every rule (the built-in ones are added on the first evaluation)."""
    return [service.rule_out(r) for r in service.list_rules(session)]


@router.post("/rules", summary="Create an alert rule", status_code=201, responses=_PROBLEMS)
def create_rule(body: RuleIn, session: DbSession, principal: Writer) -> dict[str, Any]:
    """A threshold, change or anomaly rule on a KPI (optionally by dimension)."""
    rule = service.create_rule(session, body.spec(), actor=principal.name)
    audit(session, principal, "alert_rule.create", rule.id, {"name": rule.name})
    return service.rule_out(rule)


@router.put("/rules/{rule_id}", summary="Replace an alert rule", responses=_PROBLEMS)
def update_rule(rule_id: str, body: RuleIn, session: DbSession, principal: Writer) -> dict[str, Any]:
    """The rule's new definition (its past alerts stay)."""
    rule = service.update_rule(session, rule_id, body.spec())
    audit(session, principal, "alert_rule.update", rule.id, {"name": rule.name})
    return service.rule_out(rule)


@router.delete("/rules/{rule_id}", summary="Delete an alert rule and its alerts", status_code=204,
               responses=_PROBLEMS)
def delete_rule(rule_id: str, session: DbSession, principal: Writer) -> None:
    """Gone, with its alerts."""
    service.delete_rule(session, rule_id)
    audit(session, principal, "alert_rule.delete", rule_id)


@router.post("/evaluate", summary="Judge the rules now", responses=_PROBLEMS)
async def evaluate(request: Request, body: EvaluateIn, principal: Writer,
                   owner: Annotated[WarehouseOwner, Depends(warehouse)]) -> dict[str, Any]:
    """What the worker's daily ``alerts.evaluate`` job does, now (``since`` back-fills)."""
    cfg = request.app.state.cfg

    def work() -> dict[str, Any]:
        with owner.read() as con:
            return service.evaluate_shop(con, cfg, {"since": body.since, "lang": body.lang})

    return await run_in_threadpool(work)
