"""Live pacing of a campaign against its targets, per phase (pure: plain values in and out).

Each phase carries a share of the campaign's targets: its own ``share`` when set; the rest of the
targets is split over the phases without one in proportion to their **weight** — the sum of their
days' profile weights. Within a phase the target is spread over its days by the same weights, so
the **expected** value on a day is the target × the weight of the phase's days up to that day /
the phase's weight.

Profiles:

* ``linear`` — every day weighs 1;
* ``last_year`` — a day weighs what the shop sold (GMV) 364 days before (the same weekday a year
  earlier, so a Double 11 peak day lines up with last year's 11.11 give or take a day); if the
  shop sold nothing in a phase's window a year ago, that phase falls back to ``linear``.

The **pace** is actual / expected to date; ``behind`` when below ``1 − tolerance``, ``ahead`` when
above ``1 + tolerance``, ``on_track`` between. A phase not started yet is ``not_started``; a phase
that has ended is ``met`` or ``missed`` (actual ≥ target). The projection of a running phase is
actual / (expected share of the phase elapsed): what the phase ends at if it keeps its pace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

DEFAULT_TOLERANCE = 0.1
LAST_YEAR_SHIFT = timedelta(days=364)


@dataclass(frozen=True)
class Phase:
    """A phase as pacing needs it."""

    kind: str
    name: str
    starts_on: date
    ends_on: date
    share: float | None = None

    def days(self) -> list[date]:
        """The phase's days, first to last."""
        return [self.starts_on + timedelta(days=i) for i in range((self.ends_on - self.starts_on).days + 1)]


@dataclass(frozen=True)
class MetricPace:
    """One metric of one phase (or of the whole campaign)."""

    target: float | None
    expected: float | None
    actual: float
    pace: float | None
    projected: float | None
    status: str


@dataclass(frozen=True)
class PhasePace:
    """The pacing of one phase: its share of the targets, elapsed days, GMV and new buyers."""

    kind: str
    name: str
    starts_on: date
    ends_on: date
    share: float
    days_elapsed: int
    days: int
    gmv: MetricPace
    new_buyers: MetricPace


def day_weights(phase: Phase, profile: str, history: Mapping[date, float] | None) -> dict[date, float]:
    """Weight of each day of ``phase`` under ``profile`` (``history``: daily GMV, for last_year)."""
    days = phase.days()
    if profile == "last_year" and history is not None:
        weights = {d: max(0.0, float(history.get(d - LAST_YEAR_SHIFT, 0.0))) for d in days}
        if sum(weights.values()) > 0:
            return weights
    elif profile not in ("linear", "last_year"):
        raise ValueError("profile: linear or last_year")
    return dict.fromkeys(days, 1.0)


def phase_shares(phases: Sequence[Phase], weights: Sequence[Mapping[date, float]]) -> list[float]:
    """Each phase's share of the targets (explicit shares kept, the rest by weight; sums to 1)."""
    fixed = sum(p.share for p in phases if p.share is not None)
    if fixed > 1 + 1e-9:
        raise ValueError("phases: shares add up to more than 1")
    free = [i for i, p in enumerate(phases) if p.share is None]
    total = sum(sum(weights[i].values()) for i in free)
    shares = []
    for i, p in enumerate(phases):
        if p.share is not None:
            shares.append(float(p.share))
        elif total > 0:
            shares.append((1.0 - fixed) * sum(weights[i].values()) / total)
        else:
            shares.append((1.0 - fixed) / len(free))
    return shares


def _status(phase: Phase, as_of: date, target: float | None, actual: float, pace: float | None,
            tolerance: float) -> str:
    if as_of < phase.starts_on:
        return "not_started"
    if target is None:
        return "no_target"
    if as_of >= phase.ends_on:
        return "met" if actual >= target else "missed"
    if pace is None:
        return "on_track"
    if pace < 1 - tolerance:
        return "behind"
    return "ahead" if pace > 1 + tolerance else "on_track"


def _metric(phase: Phase, weights: Mapping[date, float], target: float | None,
            actual_by_day: Mapping[date, float], as_of: date, tolerance: float) -> MetricPace:
    total_w = sum(weights.values())
    done_w = sum(w for d, w in weights.items() if d <= as_of)
    elapsed = done_w / total_w if total_w > 0 else 0.0
    last = min(as_of, phase.ends_on)
    actual = float(sum(v for d, v in actual_by_day.items() if phase.starts_on <= d <= last))
    expected = None if target is None else target * elapsed
    pace = actual / expected if expected else None
    projected = actual / elapsed if elapsed > 0 else None
    return MetricPace(target=target, expected=expected, actual=actual, pace=pace, projected=projected,
                      status=_status(phase, as_of, target, actual, pace, tolerance))


def pace_phases(
    phases: Sequence[Phase],
    *,
    as_of: date,
    target_gmv: float | None,
    target_new_buyers: float | None,
    gmv_by_day: Mapping[date, float],
    new_buyers_by_day: Mapping[date, float],
    profile: str = "linear",
    history: Mapping[date, float] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[PhasePace]:
    """Pacing of every phase on ``as_of`` (end of that day) against the campaign's targets."""
    if not phases:
        raise ValueError("phases: at least one")
    if not 0 < tolerance < 1:
        raise ValueError("tolerance: between 0 and 1")
    weights = [day_weights(p, profile, history) for p in phases]
    shares = phase_shares(phases, weights)
    out = []
    for p, w, s in zip(phases, weights, shares, strict=True):
        gmv_target = None if target_gmv is None else target_gmv * s
        nb_target = None if target_new_buyers is None else target_new_buyers * s
        n_days = len(w)
        elapsed = max(0, min(n_days, (as_of - p.starts_on).days + 1))
        out.append(PhasePace(
            kind=p.kind, name=p.name, starts_on=p.starts_on, ends_on=p.ends_on, share=s,
            days_elapsed=elapsed, days=n_days,
            gmv=_metric(p, w, gmv_target, gmv_by_day, as_of, tolerance),
            new_buyers=_metric(p, w, nb_target, new_buyers_by_day, as_of, tolerance),
        ))
    return out


def overall(paces: Sequence[PhasePace], metric: str, tolerance: float = DEFAULT_TOLERANCE) -> MetricPace:
    """The whole campaign's pace on one metric (``gmv`` or ``new_buyers``): sums over phases."""
    parts = [getattr(p, metric) for p in paces]
    targets = [m.target for m in parts]
    target = None if any(t is None for t in targets) else float(sum(t for t in targets if t is not None))
    actual = float(sum(m.actual for m in parts))
    expected = None if target is None else float(sum(m.expected or 0.0 for m in parts))
    pace = actual / expected if expected else None
    started = [p for p in paces if p.days_elapsed > 0]
    ended = all(p.days_elapsed == p.days for p in paces)
    if not started:
        status = "not_started"
    elif target is None:
        status = "no_target"
    elif ended:
        status = "met" if actual >= target else "missed"
    elif pace is None:
        status = "on_track"
    else:
        status = "behind" if pace < 1 - tolerance else ("ahead" if pace > 1 + tolerance else "on_track")
    share_done = (expected / target) if (target and expected is not None) else None
    projected = actual / share_done if share_done else None
    return MetricPace(target=target, expected=expected, actual=actual, pace=pace, projected=projected,
                      status=status)
