"""A journey as data (pydantic): its trigger, its steps as a graph, re-entry, hold-out, goal.

A definition is JSON that an operator (the API, later the console's builder) writes::

    {"trigger": {"kind": "lifecycle", "stage": "dormant"},
     "start": "coupon",
     "steps": [
        {"id": "coupon", "type": "coupon", "batch_id": "…", "next": "mail"},
        {"id": "mail", "type": "send", "channel": "email", "template": {"texts": {"zh": {…}}},
         "next": "wait"},
        {"id": "wait", "type": "wait", "hours": 72, "next": "check"},
        {"id": "check", "type": "condition", "condition": {"kind": "ordered"},
         "then": "done", "else": "sms"},
        …
        {"id": "done", "type": "exit"}],
     "reentry": {"policy": "after_days", "days": 90},
     "holdout_share": 0.1,
     "goal": {"kind": "order", "within_days": 30}}

Rules checked here (each violation is a 422 naming the field): step ids unique and made of
``[a-z0-9_-]``; every ``next`` / branch names an existing step; the graph has no cycle (so an
enrolment visits each step at most once and a step's effect key is unique); every step is
reachable from ``start``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from growthwheel.errors import InvalidArgumentError

STEP_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_STEPS = 100


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Triggers
# ---------------------------------------------------------------------------------------------


class SegmentTrigger(_Strict):
    """Entering (or leaving) a saved segment, as its refreshes record it."""

    kind: Literal["segment"]
    segment_id: str = Field(min_length=1, max_length=64)
    on: Literal["enter", "leave"] = "enter"


class EventTrigger(_Strict):
    """An event (e.g. ``add_to_cart``) not followed by another (``purchase``) within ``within_hours``."""

    kind: Literal["event"]
    event: str = Field(min_length=1, max_length=64)
    without: str | None = Field(default=None, max_length=64)
    within_hours: int = Field(default=0, ge=0, le=24 * 90)


class DateTrigger(_Strict):
    """A date attribute's anniversary in the shop's time zone (birthday), ``days_before`` it."""

    kind: Literal["date"]
    attribute: Literal["birthday", "signed_up_at"] = "birthday"
    days_before: int = Field(default=0, ge=0, le=60)


class LifecycleTrigger(_Strict):
    """Reaching a lapsed lifecycle stage (the day the days since the last order cross its threshold)."""

    kind: Literal["lifecycle"]
    stage: Literal["at_risk", "dormant", "churned"]


class ReplenishmentTrigger(_Strict):
    """A product bought is about to run out: its last purchase + the cycle − ``days_before``.

    The cycle is ``cycle_days`` when given, else the product's ``consumption_cycle_days``, else the
    median interval between repeat purchases of that product learned from the orders.
    """

    kind: Literal["replenishment"]
    skus: list[str] | None = Field(default=None, max_length=500)
    cycle_days: int | None = Field(default=None, ge=1, le=3650)
    days_before: int = Field(default=0, ge=0, le=365)
    min_repeats: int = Field(default=5, ge=1, description="fewest repeat intervals to learn a cycle from")


class PurchaseCountTrigger(_Strict):
    """The customer's ``n``-th paid order (1 = first purchase, 3 = the third)."""

    kind: Literal["purchase_count"]
    n: int = Field(ge=1, le=1000)


class TierChangeTrigger(_Strict):
    """A member's tier changed (to ``to_tier`` when given)."""

    kind: Literal["tier_change"]
    to_tier: str | None = Field(default=None, max_length=32)


class PointsExpiringTrigger(_Strict):
    """Points that expire within ``within_days`` (at least ``min_points`` of them)."""

    kind: Literal["points_expiring"]
    within_days: int = Field(ge=1, le=365)
    min_points: int = Field(default=1, ge=1)


class CouponExpiringTrigger(_Strict):
    """An issued coupon, still unused, expiring within ``within_days`` (of ``batch_id`` if given)."""

    kind: Literal["coupon_expiring"]
    within_days: int = Field(ge=1, le=365)
    batch_id: str | None = Field(default=None, max_length=64)


Trigger = Annotated[
    SegmentTrigger | EventTrigger | DateTrigger | LifecycleTrigger | ReplenishmentTrigger
    | PurchaseCountTrigger | TierChangeTrigger | PointsExpiringTrigger | CouponExpiringTrigger,
    Field(discriminator="kind"),
]
WAREHOUSE_TRIGGERS = frozenset({"segment", "event", "date", "lifecycle", "replenishment", "purchase_count"})
STORE_TRIGGERS = frozenset({"tier_change", "points_expiring", "coupon_expiring"})


# ---------------------------------------------------------------------------------------------
# Conditions (of a condition step)
# ---------------------------------------------------------------------------------------------


class Condition(_Strict):
    """What a condition step tests about the customer at the moment it is reached.

    ``ordered``: a paid order since entering; ``has_tag``: the tag (set by a journey or in the
    warehouse); ``attribute``: an attribute set by a journey equals (``eq``) or differs from
    (``ne``) ``value``; ``clicked``: a link of the message sent by step ``step`` was clicked;
    ``in_segment``: currently a member of ``segment_id``.
    """

    kind: Literal["ordered", "has_tag", "attribute", "clicked", "in_segment"]
    tag: str | None = Field(default=None, max_length=64)
    name: str | None = Field(default=None, max_length=64)
    op: Literal["eq", "ne"] = "eq"
    value: str | None = Field(default=None, max_length=500)
    step: str | None = Field(default=None, pattern=STEP_ID)
    segment_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _needs(self) -> Condition:
        need = {"has_tag": "tag", "attribute": "name", "clicked": "step", "in_segment": "segment_id"}
        wanted = need.get(self.kind)
        if wanted is not None and getattr(self, wanted) is None:
            raise ValueError(f"a {self.kind!r} condition needs {wanted!r}")
        return self


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


class _Step(_Strict):
    id: str = Field(pattern=STEP_ID)


class WaitStep(_Step):
    """Wait a duration (``hours`` / ``minutes``), or until the next ``until`` (HH:MM, shop time)."""

    type: Literal["wait"]
    hours: int = Field(default=0, ge=0, le=24 * 365)
    minutes: int = Field(default=0, ge=0, le=60 * 24 * 365)
    until: str | None = None
    next: str

    @field_validator("until")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not _TIME.match(value):
            raise ValueError("until: HH:MM (24 h, shop time)")
        return value

    @model_validator(mode="after")
    def _one(self) -> WaitStep:
        if (self.until is None) == (self.hours == 0 and self.minutes == 0):
            raise ValueError("a wait needs a duration (hours/minutes) or a time of day (until), not both")
        return self


class ConditionStep(_Step):
    """Go to ``then`` when the condition holds, else to ``else``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["condition"]
    condition: Condition
    then: str
    otherwise: str = Field(alias="else")


class Branch(_Strict):
    """One way out of a random split."""

    weight: float = Field(gt=0)
    next: str


class SplitStep(_Step):
    """Send each enrolment down one branch at random, deterministically per (customer, occurrence)."""

    type: Literal["split"]
    branches: list[Branch] = Field(min_length=2, max_length=10)


class TemplateTextIn(_Strict):
    """One language of a message template."""

    subject: str = Field(default="", max_length=500)
    text: str = Field(default="", max_length=50_000)
    html: str | None = Field(default=None, max_length=200_000)
    sms_params: dict[str, str] = Field(default_factory=dict)


class TemplateIn(_Strict):
    """A message template inline in a send step (zh and/or en)."""

    texts: dict[Literal["zh", "en"], TemplateTextIn] = Field(min_length=1)
    sms_template_code: str | None = Field(default=None, max_length=64)
    wecom_msgtype: Literal["text", "markdown"] = "text"


class SendStep(_Step):
    """Send a message on ``channel`` (through the outbox; consent, caps and quiet hours apply)."""

    type: Literal["send"]
    channel: Literal["email", "sms", "wecom", "webhook"]
    template: TemplateIn
    on_quiet_hours: Literal["defer", "drop"] = "defer"
    link: str | None = Field(default=None, max_length=2000, description="target of {{ shop_link }}")
    next: str


class CouponStep(_Step):
    """Issue the customer a code of a ``unique`` coupon batch (its budget and validity apply)."""

    type: Literal["coupon"]
    batch_id: str = Field(min_length=1, max_length=64)
    next: str


class TagStep(_Step):
    """Add or remove a tag on the customer."""

    type: Literal["tag"]
    tag: str = Field(min_length=1, max_length=64)
    action: Literal["add", "remove"] = "add"
    next: str


class AttributeStep(_Step):
    """Set (or, with ``value`` null, clear) a customer attribute."""

    type: Literal["attribute"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    value: str | None = Field(default=None, max_length=500)
    next: str


class WebhookStep(_Step):
    """Call the configured webhook with ``event`` and the customer (through the outbox, signed)."""

    type: Literal["webhook"]
    event: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)
    next: str


class ExitStep(_Step):
    """Leave the journey."""

    type: Literal["exit"]


Step = Annotated[
    WaitStep | ConditionStep | SplitStep | SendStep | CouponStep | TagStep | AttributeStep | WebhookStep
    | ExitStep,
    Field(discriminator="type"),
]


def successors(step: Any) -> list[str]:
    """The ids a step can lead to."""
    if isinstance(step, ConditionStep):
        return [step.then, step.otherwise]
    if isinstance(step, SplitStep):
        return [b.next for b in step.branches]
    if isinstance(step, ExitStep):
        return []
    return [str(step.next)]


# ---------------------------------------------------------------------------------------------
# The journey
# ---------------------------------------------------------------------------------------------


class Reentry(_Strict):
    """May a customer enter again? ``never``; ``after_days`` (N days after their last entry);
    ``always`` (each new occurrence of the trigger)."""

    policy: Literal["never", "after_days", "always"] = "never"
    days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _days(self) -> Reentry:
        if (self.policy == "after_days") != (self.days is not None):
            raise ValueError("days: give it with policy 'after_days' (and only then)")
        return self


class Goal(_Strict):
    """What counts as a conversion: a paid order within ``within_days`` of entering (at least
    ``min_amount`` minor units). It ends an active enrolment as converted."""

    kind: Literal["order"] = "order"
    within_days: int = Field(default=30, ge=1, le=365)
    min_amount: int = Field(default=0, ge=0)


class Definition(_Strict):
    """A journey's definition (one version)."""

    trigger: Trigger
    start: str = Field(pattern=STEP_ID)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    reentry: Reentry = Reentry()
    holdout_share: float = Field(default=0.1, ge=0.0, le=0.5)
    goal: Goal = Goal()
    backfill_days: int = Field(default=0, ge=0, le=3650,
                               description="at activation, also enrol those hit up to N days back")
    exit_on_goal: bool = True

    @model_validator(mode="after")
    def _graph(self) -> Definition:
        ids: dict[str, Any] = {}
        for index, step in enumerate(self.steps):
            if step.id in ids:
                raise ValueError(f"steps[{index}].id: {step.id!r} is used twice")
            ids[step.id] = step
        if self.start not in ids:
            raise ValueError(f"start: no step {self.start!r}")
        for index, step in enumerate(self.steps):
            for target in successors(step):
                if target not in ids:
                    raise ValueError(f"steps[{index}]: {step.id!r} leads to unknown step {target!r}")
            if isinstance(step, ConditionStep) and step.condition.kind == "clicked":
                sent = ids.get(step.condition.step or "")
                if not isinstance(sent, SendStep):
                    raise ValueError(f"steps[{index}].condition.step: {step.condition.step!r} "
                                     "is not a send step")
        # no cycle, everything reachable (iterative DFS with colours)
        colour: dict[str, int] = {}
        stack: list[tuple[str, int]] = [(self.start, 0)]
        while stack:
            node, child = stack.pop()
            if child == 0:
                colour[node] = 1
            outs = successors(ids[node])
            if child < len(outs):
                stack.append((node, child + 1))
                target = outs[child]
                state = colour.get(target, 0)
                if state == 1:
                    raise ValueError(f"steps: a cycle through {target!r} (a journey goes forward only)")
                if state == 0:
                    stack.append((target, 0))
            else:
                colour[node] = 2
        unreachable = [s for s in ids if s not in colour]
        if unreachable:
            raise ValueError(f"steps: {', '.join(unreachable)} cannot be reached from {self.start!r}")
        return self

    def step(self, step_id: str) -> Any:
        """The step called ``step_id`` (``KeyError`` when none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


class DefinitionError(InvalidArgumentError):
    """A definition that does not validate: ``field`` is where (``definition.steps[2].next``),
    ``reason`` what is wrong; the message is both (``definition.steps[2].next: …``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


_STEP_TYPES = frozenset({"wait", "condition", "split", "send", "coupon", "tag", "attribute", "webhook",
                         "exit"})
_TRIGGER_KINDS = WAREHOUSE_TRIGGERS | STORE_TRIGGERS
_PREFIX = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.+)$", re.S)


def error_field(loc: tuple[Any, ...], message: str) -> tuple[str, str]:
    """``(field, reason)`` of one pydantic error: the location written ``steps[2].next`` (without the
    union tags pydantic puts in it), refined by a ``field: reason`` prefix of the message (the
    whole-definition checks name their field that way)."""
    parts: list[str] = []
    previous: Any = None
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif not ((previous == "trigger" and item in _TRIGGER_KINDS)
                  or (isinstance(previous, int) and item in _STEP_TYPES)):
            parts.append(str(item))
        previous = item
    reason = message.removeprefix("Value error, ")
    found = _PREFIX.match(reason)
    if found:
        named, reason = found.group(1), found.group(2)
        if not parts or not parts[-1].split("[")[0] == named.split("[")[0]:
            parts.append(named)
    return ".".join(["definition", *parts]), reason


def parse(data: Any) -> Definition:
    """Validate a definition; a problem becomes :class:`DefinitionError` (a 422) naming the field."""
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field, reason = error_field(tuple(first["loc"]), str(first["msg"]))
        raise DefinitionError(field, reason) from None
