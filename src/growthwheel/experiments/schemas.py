"""What the experiments API, CLI and console take and answer (pydantic).

A metric is a small declarative spec (:class:`MetricSpec`) computed from warehouse facts after each
unit's first exposure (see ``experiments/metrics.py`` for the exact definitions).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""An experiment key: a lower-case slug (letters, digits, ``-`` and ``_``), at most 64 characters."""
EVENT_PATTERN = r"^[a-z0-9_.:-]{1,64}$"
MAX_VARIANTS = 10
HOLDOUT_VARIANTS = ("holdout", "treated")
"""The two variants of a hold-out: the units held out (control) and everybody else."""

MetricKind = Literal["conversion", "revenue", "orders", "aov", "refund_rate", "retention"]
Kind = Literal["experiment", "holdout"]
Unit = Literal["customer", "anonymous"]
Method = Literal["fixed", "sequential"]

_KINDS_DOC = (
    "`conversion`: share of units that placed a paid order (or, with `event`, did that event); "
    "`revenue`: net paid revenue per unit (minor units; mean); `orders`: paid orders per unit; "
    "`aov`: net revenue / paid orders (ratio, delta method); `refund_rate`: refunded / paid amount "
    "(ratio; a guardrail); `retention`: share of units active (an event or a paid order) between "
    "`days_from` and `days_to` days after their first exposure."
)


class MetricSpec(BaseModel):
    """One metric of an experiment."""

    model_config = ConfigDict(extra="forbid")

    kind: MetricKind = Field(description=_KINDS_DOC)
    event: str | None = Field(
        default=None, pattern=EVENT_PATTERN,
        description="`conversion` only: the event type that counts (default: a paid order).",
    )
    window_days: int | None = Field(
        default=None, ge=1, le=365,
        description="Count outcomes only this many days after a unit's first exposure.",
    )
    cap: float | None = Field(default=None, gt=0.5, lt=1.0,
                              description="`revenue`, `orders`, `aov`: winsorise each unit's value at this "
                                          "percentile of the non-zero values (e.g. 0.99).")
    days_from: int | None = Field(default=None, ge=0, le=365, description="`retention`: first day counted.")
    days_to: int | None = Field(default=None, ge=1, le=366,
                                description="`retention`: day after the last counted.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.event is not None and self.kind != "conversion":
            raise ValueError(f"event: only a conversion metric counts an event (this one is {self.kind!r})")
        if self.cap is not None and self.kind not in ("revenue", "orders", "aov"):
            raise ValueError(f"cap: only revenue, orders and aov metrics are capped (not {self.kind!r})")
        if self.kind == "retention":
            if self.days_from is None or self.days_to is None:
                raise ValueError("days_from and days_to: a retention metric needs both")
            if self.days_to <= self.days_from:
                raise ValueError("days_to must be greater than days_from")
        elif self.days_from is not None or self.days_to is not None:
            raise ValueError("days_from/days_to: only a retention metric has them")
        return self

    @property
    def label(self) -> str:
        """A short stable name, e.g. ``conversion``, ``conversion:add_to_cart``, ``retention:7-14``."""
        if self.kind == "conversion" and self.event:
            return f"conversion:{self.event}"
        if self.kind == "retention":
            return f"retention:{self.days_from}-{self.days_to}"
        return self.kind


class VariantIn(BaseModel):
    """One variant and its share of the experiment's units."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    weight: float = Field(gt=0, le=1)


def check_variants(variants: list[VariantIn], field: str = "variants") -> None:
    """Refuse repeated names and weights that do not sum to 1."""
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"{field}: variant names must be different")
    total = math.fsum(v.weight for v in variants)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{field}: weights must sum to 1 (they sum to {total:.6g})")


class ExperimentCreate(BaseModel):
    """A new experiment (draft) or hold-out."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "key": "pdp-layout-2025", "name": "New product page", "hypothesis": "A larger gallery sells more",
        "variants": [{"name": "control", "weight": 0.5}, {"name": "gallery", "weight": 0.5}],
        "primary_metric": {"kind": "conversion"},
        "secondary_metrics": [{"kind": "revenue", "cap": 0.99}, {"kind": "aov"}],
        "guardrail_metrics": [{"kind": "refund_rate"}],
    }]})

    key: str = Field(pattern=KEY_PATTERN, description="Unique slug the shop's code uses.")
    name: str = Field(min_length=1, max_length=200)
    hypothesis: str | None = Field(default=None, max_length=4000)
    kind: Kind = "experiment"
    unit: Unit = Field(default="customer", description="What is randomised: customer ids or anonymous ids.")
    variants: list[VariantIn] | None = Field(
        default=None, min_length=2, max_length=MAX_VARIANTS,
        description="Control first; weights sum to 1. Not for a hold-out (use `holdout_share`).",
    )
    holdout_share: float | None = Field(default=None, gt=0, lt=1,
                                        description="Hold-out only: the share of units held out.")
    traffic: float = Field(default=1.0, gt=0, le=1,
                           description="Share of (targeted) units in the experiment.")
    layer: str | None = Field(default=None, pattern=KEY_PATTERN,
                              description="Experiments in the same layer never share a unit.")
    segment: str | None = Field(default=None, max_length=200,
                                description="Target segment (id or name): only its members take part.")
    primary_metric: MetricSpec = Field(default_factory=lambda: MetricSpec(kind="conversion"))
    secondary_metrics: list[MetricSpec] = Field(default_factory=list, max_length=10)
    guardrail_metrics: list[MetricSpec] = Field(default_factory=list, max_length=10)
    method: Method = Field(default="fixed",
                           description="`fixed` horizon or `sequential` (valid under peeking).")
    alpha: float = Field(default=0.05, ge=0.001, le=0.2)
    planned_units: int | None = Field(default=None, ge=2, le=1_000_000_000,
                                      description="Units a fixed-horizon test was planned for.")
    cuped_days: int = Field(default=14, ge=0, le=365,
                            description="Pre-exposure days used for CUPED variance reduction (0: off).")
    salt: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="Hashing salt (default: random). Reuse one only to reproduce "
                                         "an earlier split on purpose.")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if self.kind == "holdout":
            if self.variants is not None:
                raise ValueError("variants: a hold-out has no variants; give holdout_share")
            if self.holdout_share is None:
                raise ValueError("holdout_share: a hold-out needs the share of units held out")
        else:
            if self.holdout_share is not None:
                raise ValueError("holdout_share: only a hold-out has one")
            if self.variants is None:
                raise ValueError("variants: an experiment needs at least two variants")
            check_variants(self.variants)
        return self

    def variant_list(self) -> list[VariantIn]:
        """The variants, with a hold-out's two made from its share."""
        if self.variants is not None:
            return self.variants
        share = float(self.holdout_share or 0)
        return [VariantIn(name=HOLDOUT_VARIANTS[0], weight=share),
                VariantIn(name=HOLDOUT_VARIANTS[1], weight=1.0 - share)]


class ExperimentUpdate(BaseModel):
    """Changes to an experiment; fields left out stay. A running experiment may change its name,
    hypothesis, weights (same variants), traffic, metrics and analysis settings; a stopped one
    nothing."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    hypothesis: str | None = Field(default=None, max_length=4000)
    variants: list[VariantIn] | None = Field(default=None, min_length=2, max_length=MAX_VARIANTS)
    traffic: float | None = Field(default=None, gt=0, le=1)
    segment: str | None = Field(default=None, max_length=200,
                                description="Segment id or name; an empty string removes it.")
    primary_metric: MetricSpec | None = None
    secondary_metrics: list[MetricSpec] | None = Field(default=None, max_length=10)
    guardrail_metrics: list[MetricSpec] | None = Field(default=None, max_length=10)
    method: Method | None = None
    alpha: float | None = Field(default=None, ge=0.001, le=0.2)
    planned_units: int | None = Field(default=None, ge=2, le=1_000_000_000)
    cuped_days: int | None = Field(default=None, ge=0, le=365)

    @model_validator(mode="after")
    def _weights(self) -> Self:
        if self.variants is not None:
            check_variants(self.variants)
        return self


class ExperimentOut(BaseModel):
    """An experiment as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    name: str
    hypothesis: str | None
    kind: Kind
    status: Literal["draft", "running", "stopped"]
    unit: Unit
    variants: list[dict[str, Any]]
    traffic: float
    layer: str | None
    bucket_start: int | None = Field(description="First layer bucket owned while running (of 10,000).")
    bucket_end: int | None
    segment_id: str | None
    salt: str
    primary_metric: dict[str, Any]
    secondary_metrics: list[dict[str, Any]]
    guardrail_metrics: list[dict[str, Any]]
    method: Method
    alpha: float
    planned_units: int | None
    cuped_days: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class AssignmentOut(BaseModel):
    """The variant a unit gets (``null`` when not in the experiment) and why."""

    variant: str | None
    in_experiment: bool
    reason: Literal["assigned", "not_running", "not_targeted", "not_in_traffic"]
    experiment: str
    exposure_recorded: bool = Field(description="Whether an `experiment_exposure` event was recorded.")


_SLUG = re.compile(KEY_PATTERN)


def is_key(text: str) -> bool:
    """Whether ``text`` is a valid experiment key."""
    return bool(_SLUG.match(text))
