"""Experiments and hold-outs: set-up, life cycle, assignment with exposures, live status, results.

The service never commits (the request or CLI command owns the session) and writes an audit entry
for every change. Assignment is cheap: it reads the experiment from the operational store and,
for a targeted experiment, the target segment's members from a process cache that is refilled
only when the segment is refreshed (its ``refreshed_at`` changes) — no warehouse read on the hot
path otherwise. Exposures are recorded through a ``record`` callback (the API passes the event
service's ``record_events`` over the server's warehouse owner), as events of type
``experiment_exposure`` with ``properties = {"experiment": key, "variant": name}``.

Journeys and promotions reserve hold-outs through :func:`in_holdout` (the same assignment).
"""

from __future__ import annotations

import math
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ibis.backends import BaseBackend
from sqlalchemy.orm import Session

from growthwheel.accounts.models import utcnow
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import audit
from growthwheel.errors import GrowthwheelError, InvalidArgumentError
from growthwheel.experiments import repository
from growthwheel.experiments.assignment import (
    LAYER_BUCKETS,
    Assignment,
    Plan,
    assign,
    buckets_for,
    free_range,
)
from growthwheel.experiments.models import Experiment
from growthwheel.experiments.schemas import ExperimentCreate, ExperimentUpdate, MetricSpec, VariantIn
from growthwheel.segments import repository as segments_repository

if TYPE_CHECKING:  # imported where used: the statistics bring scipy, which listing does not need
    from growthwheel.experiments import metrics
    from growthwheel.stats import ab

#: Reads the customer ids of a segment from the warehouse (called on a cache miss only).
MemberReader = Callable[[str], frozenset[str]]
#: Records exposure events (dicts in the events API's shape).
Recorder = Callable[[list[dict[str, Any]]], Any]

ROLES = ("primary", "secondary", "guardrail")


class ExperimentNotFoundError(GrowthwheelError):
    """No experiment with that key."""

    code = "experiment_not_found"
    status = 404


class ExperimentExistsError(GrowthwheelError):
    """An experiment with that key exists already."""

    code = "experiment_exists"
    status = 409


class ExperimentStateError(GrowthwheelError):
    """The change is not allowed in the experiment's current status."""

    code = "experiment_state"
    status = 409


class PlannedUnitsRequiredError(GrowthwheelError):
    """A fixed-horizon test asked to start without its planned sample size."""

    code = "planned_units_required"
    status = 422


def needs_planned_units(exp: Experiment) -> bool:
    """Whether ``exp`` is a fixed-horizon A/B test without a planned sample size (it cannot start:
    a fixed-horizon result is read once, at the planned size; a hold-out has none)."""
    return exp.kind == "experiment" and exp.method == "fixed" and not exp.planned_units


class LayerFullError(GrowthwheelError):
    """The layer has no free range of buckets for the experiment's traffic."""

    code = "layer_full"
    status = 409


# ---------------------------------------------------------------------------------------------
# Set-up and life cycle
# ---------------------------------------------------------------------------------------------


def _variants_json(variants: Sequence[VariantIn]) -> list[dict[str, Any]]:
    return [{"name": v.name, "weight": float(v.weight)} for v in variants]


def _metrics_json(specs: Sequence[MetricSpec]) -> list[dict[str, Any]]:
    return [s.model_dump(exclude_none=True) for s in specs]


def _segment_id(session: Session, ref: str | None) -> str | None:
    if not ref:
        return None
    found = segments_repository.segment_by_id(session, ref) or segments_repository.segment_by_name(
        session, ref.strip()
    )
    if found is None:
        raise InvalidArgumentError.coded("experiments.error.no_segment", field="segment", ref=ref)
    return found.id


def _check_metrics(
    primary: MetricSpec, secondary: Sequence[MetricSpec], guardrails: Sequence[MetricSpec]
) -> None:
    labels = [m.label for m in (primary, *secondary, *guardrails)]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise InvalidArgumentError.coded("experiments.error.metrics_repeated", field="metrics",
                                         metrics=", ".join(repeated))


def create_experiment(
    session: Session, body: ExperimentCreate, *, principal: Principal | None, actor_name: str | None = None
) -> Experiment:
    """Save a new experiment (or hold-out) as a draft; keys are unique."""
    if repository.by_key(session, body.key) is not None:
        raise ExperimentExistsError.coded("experiments.error.exists", field="key", exp=body.key)
    _check_metrics(body.primary_metric, body.secondary_metrics, body.guardrail_metrics)
    row = Experiment(
        key=body.key, name=body.name.strip(), hypothesis=body.hypothesis or None, kind=body.kind,
        status="draft", unit=body.unit, variants=_variants_json(body.variant_list()), traffic=body.traffic,
        layer=body.layer, segment_id=_segment_id(session, body.segment),
        salt=body.salt or secrets.token_hex(8),
        primary_metric=body.primary_metric.model_dump(exclude_none=True),
        secondary_metrics=_metrics_json(body.secondary_metrics),
        guardrail_metrics=_metrics_json(body.guardrail_metrics),
        method=body.method, alpha=body.alpha, planned_units=body.planned_units, cuped_days=body.cuped_days,
        created_by=actor_name or (principal.name if principal else "system"),
    )
    session.add(row)
    session.flush()
    audit(session, principal, "experiment.create", f"experiment:{row.key}",
          {"name": row.name, "kind": row.kind, "variants": row.variants, "traffic": row.traffic,
           "layer": row.layer}, actor_name=actor_name)
    return row


def get_experiment(session: Session, key: str) -> Experiment:
    """The experiment with this key."""
    found = repository.by_key(session, key)
    if found is None:
        raise ExperimentNotFoundError(f"no experiment {key!r}")
    return found


def list_experiments(session: Session, status: str | None = None) -> list[Experiment]:
    """Every experiment, newest first (optionally of one status)."""
    return repository.all_experiments(session, status)


def _claim_range(session: Session, exp: Experiment, traffic: float) -> None:
    """Give a layered experiment a free range of its layer's buckets for ``traffic``."""
    assert exp.layer is not None
    others = repository.running_in_layer(session, exp.layer, excluding=exp.id)
    taken = [(o.bucket_start or 0, o.bucket_end or 0) for o in others]
    keep = None
    if exp.bucket_start is not None and exp.bucket_end is not None:
        keep = (exp.bucket_start, exp.bucket_end)
    found = free_range(taken, buckets_for(traffic), keep=keep)
    if found is None:
        used = sum(hi - lo for lo, hi in taken) / LAYER_BUCKETS
        raise LayerFullError.coded("experiments.error.layer_full", field="traffic", layer=exp.layer,
                                   traffic=f"{traffic:.1%}", used=f"{used:.1%}")
    exp.bucket_start, exp.bucket_end = found


def update_experiment(
    session: Session, exp: Experiment, body: ExperimentUpdate, *, principal: Principal | None,
    actor_name: str | None = None,
) -> Experiment:
    """Change an experiment. A running one keeps its variants (names and number: only weights may
    change, see ``assignment``), unit and layer; a stopped one cannot change."""
    if exp.status == "stopped":
        raise ExperimentStateError(f"experiment {exp.key!r} is stopped: it can no longer change")
    changes = body.model_dump(exclude_unset=True)
    if body.variants is not None:
        if exp.kind == "holdout" and [v.name for v in body.variants] != [v["name"] for v in exp.variants]:
            raise InvalidArgumentError("variants: a hold-out keeps its two variants (holdout, treated)")
        if exp.status == "running" and [v.name for v in body.variants] != [v["name"] for v in exp.variants]:
            raise ExperimentStateError("variants: a running experiment may change weights, not variants")
        exp.variants = _variants_json(body.variants)
    if body.traffic is not None and body.traffic != exp.traffic:
        if exp.status == "running" and exp.layer is not None:
            _claim_range(session, exp, body.traffic)
        exp.traffic = body.traffic
    if "segment" in changes:
        exp.segment_id = _segment_id(session, body.segment)
    primary = body.primary_metric or MetricSpec.model_validate(exp.primary_metric)
    secondary = body.secondary_metrics if body.secondary_metrics is not None else [
        MetricSpec.model_validate(m) for m in exp.secondary_metrics]
    guardrails = body.guardrail_metrics if body.guardrail_metrics is not None else [
        MetricSpec.model_validate(m) for m in exp.guardrail_metrics]
    _check_metrics(primary, secondary, guardrails)
    exp.primary_metric = primary.model_dump(exclude_none=True)
    exp.secondary_metrics = _metrics_json(secondary)
    exp.guardrail_metrics = _metrics_json(guardrails)
    for name in ("name", "hypothesis", "method", "alpha", "planned_units", "cuped_days"):
        if name in changes and changes[name] is not None:
            setattr(exp, name, changes[name])
    exp.updated_at = utcnow()
    audit(session, principal, "experiment.update", f"experiment:{exp.key}",
          {k: v for k, v in changes.items() if k not in ("hypothesis",)}, actor_name=actor_name)
    return exp


def start_experiment(
    session: Session, exp: Experiment, *, principal: Principal | None, actor_name: str | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Start a draft: from now on units are assigned (a layered one claims its buckets)."""
    if exp.status != "draft":
        raise ExperimentStateError(f"experiment {exp.key!r} is {exp.status}: only a draft can start")
    if needs_planned_units(exp):
        raise PlannedUnitsRequiredError.coded("experiments.error.planned_units_required",
                                              field="planned_units")
    if exp.layer is not None:
        _claim_range(session, exp, exp.traffic)
    exp.status = "running"
    exp.started_at = at or utcnow()
    exp.updated_at = utcnow()
    audit(session, principal, "experiment.start", f"experiment:{exp.key}",
          {"bucket_start": exp.bucket_start, "bucket_end": exp.bucket_end}, actor_name=actor_name)
    return exp


def stop_experiment(
    session: Session, exp: Experiment, *, principal: Principal | None, actor_name: str | None = None,
    at: datetime | None = None,
) -> Experiment:
    """Stop a running experiment: nobody is assigned any more; results cover start → stop."""
    if exp.status != "running":
        raise ExperimentStateError(f"experiment {exp.key!r} is {exp.status}: only a running one can stop")
    exp.status = "stopped"
    exp.stopped_at = at or utcnow()
    exp.updated_at = utcnow()
    audit(session, principal, "experiment.stop", f"experiment:{exp.key}", {}, actor_name=actor_name)
    return exp


# ---------------------------------------------------------------------------------------------
# Assignment
# ---------------------------------------------------------------------------------------------


def plan_of(exp: Experiment) -> Plan:
    """The pure assignment plan of an experiment."""
    return Plan(
        salt=exp.salt,
        variants=tuple(str(v["name"]) for v in exp.variants),
        weights=tuple(float(v["weight"]) for v in exp.variants),
        traffic=float(exp.traffic),
        layer=exp.layer,
        bucket_start=exp.bucket_start or 0,
        bucket_end=exp.bucket_end or 0,
        running=exp.status == "running",
    )


class MembershipCache:
    """Segment members per (warehouse, segment, refresh): read once per refresh, then from memory."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._sets: OrderedDict[tuple[str, str, str], frozenset[str]] = OrderedDict()
        self.reads = 0

    def members(self, scope: str, segment_id: str, refreshed_at: datetime | None, read: MemberReader
                ) -> frozenset[str]:
        """The members of ``segment_id``, read with ``read`` only when not cached for this refresh."""
        key = (scope, segment_id, refreshed_at.isoformat() if refreshed_at else "")
        with self._lock:
            found = self._sets.get(key)
            if found is not None:
                self._sets.move_to_end(key)
                return found
        found = read(segment_id)
        with self._lock:
            self.reads += 1
            self._sets[key] = found
            while len(self._sets) > self._size:
                self._sets.popitem(last=False)
        return found


MEMBERS = MembershipCache()
"""The process's cache of target-segment members."""


def _unit_of(exp: Experiment, customer_id: str | None, anonymous_id: str | None) -> str:
    unit_id = customer_id if exp.unit == "customer" else anonymous_id
    if not unit_id:
        field = "customer_id" if exp.unit == "customer" else "anonymous_id"
        raise InvalidArgumentError(f"{field}: experiment {exp.key!r} randomises by {field}; give one")
    return unit_id


def assign_unit(
    session: Session, exp: Experiment, *, customer_id: str | None = None, anonymous_id: str | None = None,
    read_members: MemberReader | None = None, scope: str = "",
) -> Assignment:
    """The variant of a unit (the id that matches the experiment's ``unit``). With a target
    segment, ``customer_id`` must be a member (as of the segment's last refresh); members are
    read with ``read_members`` on a cache miss (``scope`` names the warehouse)."""
    unit_id = _unit_of(exp, customer_id, anonymous_id)
    targeted = True
    if exp.segment_id is not None and exp.status == "running":
        seg = segments_repository.segment_by_id(session, exp.segment_id)
        if seg is None or customer_id is None:
            targeted = False
        else:
            if read_members is None:
                raise InvalidArgumentError(f"experiment {exp.key!r} targets a segment: membership is needed")
            targeted = customer_id in MEMBERS.members(scope, seg.id, seg.refreshed_at, read_members)
    return assign(plan_of(exp), unit_id, targeted=targeted)


def exposure_event(exp: Experiment, variant: str, *, customer_id: str | None, anonymous_id: str | None,
                   at: datetime | None = None) -> dict[str, Any]:
    """An ``experiment_exposure`` event (the events API's shape) for a unit shown ``variant``."""
    from growthwheel.experiments import metrics

    when = (at or utcnow()).astimezone(UTC)
    event: dict[str, Any] = {
        "event_id": f"exposure-{uuid.uuid4().hex}",
        "type": metrics.EXPOSURE_EVENT,
        "timestamp": when.isoformat(),
        "properties": {"experiment": exp.key, "variant": variant},
    }
    if customer_id:
        event["customer_id"] = customer_id
    if anonymous_id:
        event["anonymous_id"] = anonymous_id
    return event


def assign_and_expose(
    session: Session, exp: Experiment, *, customer_id: str | None = None, anonymous_id: str | None = None,
    record: Recorder | None = None, read_members: MemberReader | None = None, scope: str = "",
    at: datetime | None = None,
) -> tuple[Assignment, bool]:
    """Assign a unit and, when it is in the experiment and ``record`` is given, record its
    exposure. Returns the assignment and whether an exposure was recorded."""
    found = assign_unit(session, exp, customer_id=customer_id, anonymous_id=anonymous_id,
                        read_members=read_members, scope=scope)
    if found.variant is None or record is None:
        return found, False
    record([exposure_event(exp, found.variant, customer_id=customer_id, anonymous_id=anonymous_id, at=at)])
    return found, True


def in_holdout(session: Session, key: str, unit_id: str, *, read_members: MemberReader | None = None,
               scope: str = "") -> bool:
    """Whether ``unit_id`` is held out by the running hold-out ``key`` (journeys and promotions
    call this before acting on a customer; the same hashing as every experiment). A hold-out that
    is not running holds nobody out."""
    exp = get_experiment(session, key)
    if exp.kind != "holdout":
        raise InvalidArgumentError(f"experiment {key!r} is not a hold-out")
    ids: dict[str, str | None] = {"customer_id": unit_id, "anonymous_id": None}
    if exp.unit == "anonymous":
        ids = {"customer_id": None, "anonymous_id": unit_id}
    found = assign_unit(session, exp, read_members=read_members, scope=scope, **ids)
    return found.variant is not None and found.variant == str(exp.variants[0]["name"])


# ---------------------------------------------------------------------------------------------
# Status and results
# ---------------------------------------------------------------------------------------------


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def window_of(exp: Experiment, as_of: datetime | None = None) -> metrics.Window:
    """Start → stop (or ``as_of``, default now) in naive UTC."""
    from growthwheel.experiments import metrics

    if exp.started_at is None:
        raise InvalidArgumentError(f"experiment {exp.key!r} has not started: no results yet")
    end = exp.stopped_at or as_of or utcnow()
    if as_of is not None and as_of < end:
        end = as_of
    return metrics.Window(_naive(exp.started_at), _naive(end))


def specs_of(exp: Experiment) -> list[tuple[str, MetricSpec]]:
    """(role, spec) of every metric: the primary, the secondaries, the guardrails."""
    found = [("primary", MetricSpec.model_validate(exp.primary_metric))]
    found += [("secondary", MetricSpec.model_validate(m)) for m in exp.secondary_metrics]
    found += [("guardrail", MetricSpec.model_validate(m)) for m in exp.guardrail_metrics]
    return found


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def live_status(backend: BaseBackend, exp: Experiment, *, as_of: datetime | None = None,
                first: Any = None) -> dict[str, Any]:
    """Exposed units per variant against the planned split, and the sample-ratio check
    (``first``: the experiment's ``metrics.first_exposures`` when the caller has them)."""
    from growthwheel.experiments import metrics
    from growthwheel.stats import ab

    window = window_of(exp, as_of)
    if first is None:
        first = metrics.first_exposures(backend, exp.key, exp.unit, window)
    seen = metrics.exposure_counts(first)
    names = [str(v["name"]) for v in exp.variants]
    weights = [float(v["weight"]) for v in exp.variants]
    observed = [seen.units.get(n, 0) for n in names]
    total = sum(observed)
    srm: dict[str, Any] | None = None
    if total > 0:
        check = ab.srm_check(observed, weights)
        srm = {"chi_square": _finite(check.chi_square), "p_value": _finite(check.p_value),
               "mismatch": bool(check.mismatch)}
    unknown = sorted(set(seen.units) - set(names))
    return {
        "experiment": exp.key,
        "status": exp.status,
        "window": {"start": window.start.replace(tzinfo=UTC).isoformat(),
                   "end": window.end.replace(tzinfo=UTC).isoformat()},
        "variants": [
            {"name": n, "weight": w, "units": u, "share": (u / total) if total else None}
            for n, w, u in zip(names, weights, observed, strict=True)
        ],
        "units": total,
        "multiple_exposures": seen.multiple,
        "unknown_variants": {name: seen.units[name] for name in unknown},
        "srm": srm,
        "planned_units": exp.planned_units,
    }


def _worse(spec: MetricSpec, estimate: float) -> bool:
    """Whether an effect moves a guardrail the wrong way (refund rate up; anything else down)."""
    return estimate > 0 if spec.kind == "refund_rate" else estimate < 0


def _effect_view(effect: ab.Effect | None) -> dict[str, Any] | None:
    if effect is None:
        return None
    return {"estimate": _finite(effect.estimate), "se": _finite(effect.se),
            "ci_lower": _finite(effect.ci_lower), "ci_upper": _finite(effect.ci_upper),
            "p_value": _finite(effect.p_value), "p_adjusted": _finite(effect.p_adjusted)}


def _decisive(c: ab.Comparison) -> ab.Effect:
    """The effect whose adjusted p-value decides significance in ``stats.ab`` (relative, else absolute)."""
    relative = c.primary_relative
    return relative if math.isfinite(relative.p_adjusted) else c.primary_absolute


def _comparison_view(c: ab.Comparison, spec: MetricSpec) -> dict[str, Any]:
    """The headline of one comparison: the effects of the experiment's method (the always-valid
    ones for a sequential test), significance as ``stats.ab`` defines it (adjusted p < alpha),
    and the Bayesian read-out of the relative effect. For a metric where lower is better (the
    refund rate) the chance to win is that of a *decrease*, and no expected loss is given."""
    chance = _finite(c.bayes.chance_to_win) if c.bayes else None
    loss = _finite(c.bayes.expected_loss) if c.bayes else None
    if spec.kind == "refund_rate":
        chance, loss = (None if chance is None else 1.0 - chance), None
    return {
        "variant": c.treatment,
        "control_mean": _finite(c.control_mean),
        "treatment_mean": _finite(c.treatment_mean),
        "absolute": _effect_view(c.primary_absolute),
        "relative": _effect_view(c.primary_relative),
        "significant": c.significant(),
        "p_adjusted": _finite(_decisive(c).p_adjusted),
        "chance_to_win": chance,
        "expected_loss": loss,
    }


def results(backend: BaseBackend, exp: Experiment, *, as_of: datetime | None = None) -> dict[str, Any]:
    """Every metric's analysis (``growthwheel.stats.ab.analyse``) with the live status, p-values
    adjusted (Holm) across variants × primary and secondary metrics (guardrails as their own
    family), and the warnings a reader must see first (SRM, peeking, guardrails)."""
    from growthwheel.experiments import metrics
    from growthwheel.stats import ab

    window = window_of(exp, as_of)
    first = metrics.first_exposures(backend, exp.key, exp.unit, window).cache()  # read once, used twice
    try:
        status = live_status(backend, exp, as_of=as_of, first=first)
        roles_specs = specs_of(exp)
        names = [str(v["name"]) for v in exp.variants]
        specs = [s for _r, s in roles_specs]
        stats = metrics.metric_stats(backend, exp.key, exp.unit, window, names, specs,
                                     cuped_days=exp.cuped_days, first=first)
    finally:
        first.release()
    weights = [float(v["weight"]) for v in exp.variants]
    method: ab.Method = "sequential" if exp.method == "sequential" else "fixed"
    tuning = float(exp.planned_units or ab.DEFAULT_TUNING)
    entries: list[dict[str, Any]] = []
    analyses: dict[int, ab.Analysis] = {}
    for i, ((role, spec), variant_stats) in enumerate(zip(roles_specs, stats, strict=True)):
        entry: dict[str, Any] = {
            "role": role, "label": spec.label, "spec": spec.model_dump(exclude_none=True),
            "cuped": exp.cuped_days > 0 and spec.kind in ("conversion", "revenue", "orders", "aov"),
        }
        small = [s.name for s in variant_stats if s.n < 2]
        if small:
            entry["error"] = f"not enough units yet in {', '.join(small)} (at least 2 per variant)"
            entry["error_code"] = "too_few_units"
            entry["error_values"] = {"variants": ", ".join(small)}
        else:
            try:
                analyses[i] = ab.analyse(variant_stats, weights=weights, alpha=exp.alpha, correction="holm",
                                         method=method, tuning=tuning)
            except GrowthwheelError as exc:
                entry["error"] = exc.message
        entries.append(entry)
    for family in (("primary", "secondary"), ("guardrail",)):
        members = [i for i in analyses if roles_specs[i][0] in family]
        corrected = ab.correct_analyses([analyses[i] for i in members], "holm") if len(members) > 1 else [
            analyses[i] for i in members]
        analyses.update(zip(members, corrected, strict=True))
    warnings: list[dict[str, Any]] = []
    if status["srm"] and status["srm"]["mismatch"]:
        warnings.append({"code": "srm", "p_value": status["srm"]["p_value"]})
    if status["multiple_exposures"]:
        warnings.append({"code": "multiple_exposures", "units": status["multiple_exposures"]})
    if exp.method == "fixed" and exp.status == "running":
        if exp.planned_units is None:
            warnings.append({"code": "peeking_unplanned"})
        elif status["units"] < exp.planned_units:
            warnings.append({"code": "peeking", "units": status["units"], "planned_units": exp.planned_units})
    for i, entry in enumerate(entries):
        analysis = analyses.get(i)
        if analysis is None:
            continue
        entry["analysis"] = analysis.as_dict()
        entry["variants"] = [{"name": v.name, "n": v.n, "mean": _finite(v.mean)} for v in analysis.variants]
        spec = roles_specs[i][1]
        entry["comparisons"] = [_comparison_view(c, spec) for c in analysis.comparisons]
        if entry["role"] == "guardrail":
            for comp in entry["comparisons"]:
                est = comp["absolute"]["estimate"] if comp["absolute"] else None
                if comp["significant"] and est is not None and _worse(spec, est):
                    warnings.append({"code": "guardrail", "metric": spec.label, "variant": comp["variant"]})
    return {
        "experiment": {"key": exp.key, "name": exp.name, "kind": exp.kind, "status": exp.status,
                       "method": exp.method, "alpha": exp.alpha, "unit": exp.unit,
                       "planned_units": exp.planned_units, "cuped_days": exp.cuped_days},
        "status": status,
        "metrics": entries,
        "warnings": warnings,
    }


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC (a naive value is taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def summary(exp: Experiment) -> Mapping[str, Any]:
    """A short view of an experiment for lists (CLI)."""
    return {"key": exp.key, "name": exp.name, "kind": exp.kind, "status": exp.status,
            "variants": ", ".join(f"{v['name']} {float(v['weight']):.0%}" for v in exp.variants),
            "traffic": exp.traffic, "layer": exp.layer, "started_at": exp.started_at}
