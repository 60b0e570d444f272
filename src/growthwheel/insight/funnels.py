"""Ordered funnels over behaviour events (转化漏斗), with a conversion window.

Who goes through a funnel (an *entrant*): a person, identified as

* the event's ``customer_id`` when it has one;
* else the customer its ``anonymous_id`` was seen with: any event carrying both ids links the
  anonymous id to that customer (the smallest ``customer_id`` when it was seen with several), so the
  browsing someone did before signing in counts toward the same funnel as their checkout;
* else the ``anonymous_id`` itself (as ``anon:<id>``). Events with neither are ignored.

Matching, per entrant. Every event of the first step whose shop-local ``event_date`` lies in
[``start``, ``end``] starts an *attempt* at its time ``t1``. Step k + 1 is the earliest event of
that type after step k's matched time (at the same time counts, except when the step repeats an
earlier step's event type, which must then be strictly later so one event never fills two steps),
and no later than ``t1 + window`` (inclusive; the window may run past ``end``). Each entrant counts
once, with the attempt that got furthest (ties: the earliest attempt), so an entrant who came back
and converted on a second visit counts as converted, and events recorded out of order (a purchase
timestamped before the cart) do not fill a step they precede.

Per step: entrants who reached it, conversion from the previous step and from the first, drop-off,
and the median time to reach it from the first step and from the previous one (whole seconds,
medians interpolated between the two middle values). The breakdown value (``utm_source``,
``utm_medium``, ``utm_campaign`` or ``device``; ``(none)`` when empty) is the one of the attempt's
first-step event: the channel through which the entrant came in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.kpis import NONE_LABEL

DEFAULT_STEPS: tuple[str, ...] = ("view", "add_to_cart", "checkout", "purchase")
DEFAULT_WINDOW = timedelta(days=14)
BREAKDOWNS: tuple[str, ...] = ("utm_source", "utm_medium", "utm_campaign", "device")
ANONYMOUS_PREFIX = "anon:"


def _check(steps: Sequence[str], window: timedelta, breakdown: str | None) -> None:
    if len(steps) < 2 or any(not s for s in steps):
        raise InvalidArgumentError("a funnel needs at least two non-empty steps")
    if window <= timedelta(0):
        raise InvalidArgumentError("the conversion window must be positive")
    if breakdown is not None and breakdown not in BREAKDOWNS:
        raise InvalidArgumentError(
            f"unknown breakdown {breakdown!r}; choose one of: {', '.join(BREAKDOWNS)}"
        )


def with_actor(events: ir.Table) -> ir.Table:
    """``events`` with an ``actor`` column: the person behind each event (see the module docstring)."""
    links = events.filter(events.customer_id.notnull() & events.anonymous_id.notnull())
    links = links.group_by("anonymous_id").aggregate(_linked=links.customer_id.min())
    links = links.rename(_anon="anonymous_id")
    j = events.left_join(links, events.anonymous_id == links._anon)
    actor = ibis.coalesce(
        j.customer_id, j._linked, ibis.literal(ANONYMOUS_PREFIX).concat(j.anonymous_id)
    )
    return j.mutate(actor=actor).drop("_anon", "_linked")


def funnel_entrants(
    events: ir.Table,
    steps: Sequence[str] = DEFAULT_STEPS,
    *,
    window: timedelta = DEFAULT_WINDOW,
    start: date | None = None,
    end: date | None = None,
    breakdown: str | None = None,
) -> ir.Table:
    """One row per entrant: its best attempt at the funnel.

    Columns: ``actor``, the ``breakdown`` column when asked, ``steps_reached`` (1 … len(steps)) and
    ``at_1`` … ``at_n``: the UTC time each step was reached (null past ``steps_reached``).
    """
    _check(steps, window, breakdown)
    ev = with_actor(events)
    ev = ev.filter(ev.type.isin(list(set(steps))) & ev.actor.notnull() & ev.occurred_at.notnull())
    anchors = ev.filter(ev.type == steps[0])
    if start is not None:
        anchors = anchors.filter(anchors.event_date >= start)
    if end is not None:
        anchors = anchors.filter(anchors.event_date <= end)
    carried: dict[str, Any] = {"actor": anchors.actor, "_anchor": anchors.event_id,
                               "at_1": anchors.occurred_at}
    if breakdown is not None:
        carried[breakdown] = anchors[breakdown].fill_null(NONE_LABEL)
    cur = anchors.select(**carried)
    limit = ibis.interval(seconds=int(window.total_seconds()))
    for k in range(1, len(steps)):
        s = ev.filter(ev.type == steps[k]).select(_a=ev.actor, _t=ev.occurred_at)
        previous = cur[f"at_{k}"]
        after = s._t > previous if steps[k] in steps[:k] else s._t >= previous
        j = cur.left_join(s, [cur.actor == s._a, after, s._t <= cur.at_1 + limit])
        cur = j.group_by(list(cur.columns)).aggregate(**{f"at_{k + 1}": j._t.min()})
    reached = ibis.literal(1)
    for k in range(2, len(steps) + 1):
        reached = reached + ibis.ifelse(cur[f"at_{k}"].notnull(), 1, 0)
    cur = cur.mutate(steps_reached=reached.cast("int64"))
    best = ibis.row_number().over(
        group_by=cur.actor,
        order_by=[ibis.desc(cur.steps_reached), cur.at_1, cur._anchor],
    )
    cur = cur.mutate(_best=best)
    cur = cur.filter(cur._best == 0)
    head = ["actor"] + ([breakdown] if breakdown else []) + ["steps_reached"]
    return cur.select(*head, *[f"at_{k}" for k in range(1, len(steps) + 1)])


def funnel_steps(entrants: ir.Table, n_steps: int, *, breakdown: str | None = None) -> ir.Table:
    """Per step (and breakdown value) with at least one entrant: ``step`` (1-based), ``entrants``,
    ``median_seconds_from_first`` and ``median_seconds_from_previous`` (float; 0 for step 1)."""
    keys = [breakdown] if breakdown else []
    pieces = []
    for k in range(1, n_steps + 1):
        t = entrants.filter(entrants.steps_reached >= k)
        at = t[f"at_{k}"]
        from_first = at.delta(t.at_1, unit="second").cast("float64")
        from_previous = at.delta(t[f"at_{max(k - 1, 1)}"], unit="second").cast("float64")
        measures = {
            "step": ibis.literal(k, type="int64"),
            "entrants": t.count(),
            "median_seconds_from_first": from_first.median(),
            "median_seconds_from_previous": from_previous.median(),
        }
        piece = t.group_by(keys).aggregate(**measures) if keys else t.aggregate(**measures)
        pieces.append(piece.select(*keys, *measures))
    return ibis.union(*pieces, distinct=False)


#: Columns of :func:`funnel_frame` (the breakdown column first when there is one).
FRAME_COLUMNS: tuple[str, ...] = (
    "step", "event", "entrants", "conversion_from_previous", "conversion_from_first",
    "drop_off", "drop_off_rate", "median_seconds_from_first", "median_seconds_from_previous",
)


def _float(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def funnel_frame(
    events: ir.Table,
    steps: Sequence[str] = DEFAULT_STEPS,
    *,
    window: timedelta = DEFAULT_WINDOW,
    start: date | None = None,
    end: date | None = None,
    breakdown: str | None = None,
) -> pd.DataFrame:
    """The funnel as a small table: one row per step (per breakdown value), dense.

    ``conversion_from_previous`` = entrants at this step / at the previous one, ``conversion_from_first``
    = / at the first; ``drop_off`` = entrants at the previous step who did not reach this one, and
    ``drop_off_rate`` = drop_off / previous (both null for step 1). Breakdown values are sorted by
    entrants, largest first.
    """
    steps = list(steps)
    entrants = funnel_entrants(
        events, steps, window=window, start=start, end=end, breakdown=breakdown
    )
    df = funnel_steps(entrants, len(steps), breakdown=breakdown).execute()
    groups: dict[Any, dict[int, dict[str, Any]]] = {}
    for record in df.to_dict(orient="records"):
        key = record[breakdown] if breakdown else None
        groups.setdefault(key, {})[int(record["step"])] = record
    order = sorted(groups, key=lambda g: (-int(groups[g][1]["entrants"]), str(g)))
    rows: list[dict[str, Any]] = []
    for key in order:
        first = int(groups[key][1]["entrants"])
        previous = first
        for k, event in enumerate(steps, start=1):
            record = groups[key].get(k, {})
            count = int(record.get("entrants", 0))
            row: dict[str, Any] = {breakdown: key} if breakdown else {}
            row.update({
                "step": k,
                "event": event,
                "entrants": count,
                "conversion_from_previous": (count / previous if previous else None) if k > 1 else None,
                "conversion_from_first": count / first if first else None,
                "drop_off": previous - count if k > 1 else None,
                "drop_off_rate": ((previous - count) / previous if previous else None) if k > 1 else None,
                "median_seconds_from_first": _float(record.get("median_seconds_from_first")),
                "median_seconds_from_previous": (
                    _float(record.get("median_seconds_from_previous")) if k > 1 else None
                ),
            })
            rows.append(row)
            previous = count
    columns = ([breakdown] if breakdown else []) + list(FRAME_COLUMNS)
    return pd.DataFrame(rows, columns=columns, dtype=object)
