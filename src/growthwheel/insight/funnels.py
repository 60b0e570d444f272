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
from datetime import date, datetime, time, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from growthwheel.errors import InvalidArgumentError
from growthwheel.insight.kpis import NONE_LABEL

DEFAULT_STEPS: tuple[str, ...] = ("view", "add_to_cart", "checkout", "purchase")
DEFAULT_WINDOW = timedelta(days=14)
BREAKDOWNS: tuple[str, ...] = ("utm_source", "utm_medium", "utm_campaign", "device")
ANONYMOUS_PREFIX = "anon:"
#: Slack around a date range when picking the events that may take part (time zones, the window).
_MARGIN = timedelta(days=2)


def _check(steps: Sequence[str], window: timedelta, breakdown: str | None) -> None:
    if len(steps) < 2 or any(not s for s in steps):
        raise InvalidArgumentError("a funnel needs at least two non-empty steps")
    if window <= timedelta(0):
        raise InvalidArgumentError("the conversion window must be positive")
    if breakdown is not None and breakdown not in BREAKDOWNS:
        raise InvalidArgumentError(
            f"unknown breakdown {breakdown!r}; choose one of: {', '.join(BREAKDOWNS)}"
        )


def with_actor(events: ir.Table, rows: ir.Table | None = None) -> ir.Table:
    """``events`` (or ``rows``, a filtered ``events``) with an ``actor`` column: the person behind
    each event (see the module docstring). Identities are linked over all of ``events``."""
    links = events.filter(events.customer_id.notnull() & events.anonymous_id.notnull())
    if rows is not None:  # only the anonymous ids of those rows need their customer
        unknown = rows.filter(rows.customer_id.isnull())
        links = links.filter(links.anonymous_id.isin(unknown.anonymous_id))
    links = links.group_by("anonymous_id").aggregate(_linked=links.customer_id.min())
    links = links.rename(_anon="anonymous_id")
    base = events if rows is None else rows
    j = base.left_join(links, base.anonymous_id == links._anon)
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
    ev = _candidate_rows(events, steps, window, start, end)
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


def _backend_name(table: ir.Table) -> str:
    try:
        return str(table._find_backend().name)
    except Exception:  # an unbound table (memtable): the Ibis path
        return ""


def _shifted(day: date | None, *by: timedelta) -> datetime | None:
    """Midnight of ``day`` moved by each of ``by``; ``None`` (no bound) without a day or past the
    calendar's ends."""
    if day is None:
        return None
    try:
        for step in by:
            day = day + step
        return datetime.combine(day, time())
    except OverflowError:
        return None


def _candidate_rows(
    events: ir.Table, steps: Sequence[str], window: timedelta, start: date | None, end: date | None
) -> ir.Table:
    """The events that may fill a step, with their ``actor``: the steps' types, near the range."""
    rows = events.filter(events.type.isin(list(set(steps))))
    # Only events near the range can be a step: an anchor's shop-local date lies in the range and
    # later steps come within the window after it (the margin covers any UTC offset). Bounds on
    # the stored time let the warehouse skip the rest of the table.
    low = _shifted(start, -_MARGIN)
    high = _shifted(end, window, _MARGIN)
    if low is not None:
        rows = rows.filter(events.occurred_at >= low)
    if high is not None:
        rows = rows.filter(events.occurred_at < high)
    ev = with_actor(events, rows)
    return ev.filter(ev.actor.notnull() & ev.occurred_at.notnull())


def identity_links(events: ir.Table) -> pa.Table:
    """Every anonymous id seen with a customer id, with that customer (the smallest when several):
    an Arrow table (``anonymous_id``, ``customer_id``) over all of ``events``.

    It changes only when events are added, so a caller that knows the warehouse's version (the
    funnel page) computes it once per version and passes it to :func:`funnel_entrants_local`."""
    links = events.filter(events.customer_id.notnull() & events.anonymous_id.notnull())
    links = links.group_by("anonymous_id").aggregate(customer_id=links.customer_id.min())
    return links.to_pyarrow()


def _range_rows(
    events: ir.Table, steps: Sequence[str], window: timedelta, start: date | None, end: date | None,
    extra: Sequence[str],
) -> pa.Table:
    """The events that may fill a step (the steps' types, near the range, with a time and an id),
    as Arrow: ``customer_id``, ``anonymous_id``, ``type``, ``occurred_at``, ``event_date`` and
    ``extra``. The rows of :func:`_candidate_rows` that can take part, before identities are
    resolved (the first step's events outside the range are left out when no later step has their
    type: they start no attempt and fill no step)."""
    rows = events.filter(
        events.type.isin(list(set(steps))) & events.occurred_at.notnull()
        & (events.customer_id.notnull() | events.anonymous_id.notnull())
    )
    low = _shifted(start, -_MARGIN)
    high = _shifted(end, window, _MARGIN)
    if low is not None:
        rows = rows.filter(rows.occurred_at >= low)
    if high is not None:
        rows = rows.filter(rows.occurred_at < high)
    if steps[0] not in steps[1:] and (start is not None or end is not None):
        # The first step's events only start attempts: outside the range they fill nothing.
        entry = rows.type == steps[0]
        if start is not None:
            entry &= rows.event_date >= start
        if end is not None:
            entry &= rows.event_date <= end
        rows = rows.filter((rows.type != steps[0]) | entry)
    return rows.select("customer_id", "anonymous_id", "type", "occurred_at", "event_date",
                       *extra).to_pyarrow()


def _actors(table: pa.Table, links: pa.Table) -> pa.DictionaryArray:
    """The ``actor`` of each row (see the module docstring), resolved in memory from ``links``
    (:func:`identity_links`), dictionary-encoded (an integer code per row)."""
    anonymous = table.column("anonymous_id")
    customer = table.column("customer_id")
    value_set = links.column("anonymous_id").combine_chunks().cast(anonymous.type)
    linked = links.column("customer_id").combine_chunks().cast(customer.type).take(
        pc.index_in(anonymous, value_set=value_set)
    )
    own = pc.binary_join_element_wise(pa.scalar(ANONYMOUS_PREFIX), anonymous, "")
    return pc.dictionary_encode(pc.coalesce(customer, linked, own)).combine_chunks()


def _fast_actors(table: pa.Table, links: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each row's actor as an integer code (the same grouping as :func:`_actors`, other numbers)
    and, per code, whether the actor is anonymous: without building an ``anon:<id>`` string per
    row (customers' codes first, then the anonymous ids')."""
    anonymous = table.column("anonymous_id")
    customer = table.column("customer_id")
    value_set = links.column("anonymous_id").combine_chunks().cast(anonymous.type)
    linked = links.column("customer_id").combine_chunks().cast(customer.type).take(
        pc.index_in(anonymous, value_set=value_set)
    )
    known = pc.dictionary_encode(pc.coalesce(customer, linked)).combine_chunks()
    n_known = len(known.dictionary)
    code = np.asarray(known.indices.fill_null(-1), dtype=np.int64)
    unknown = np.flatnonzero(code < 0)
    n_anonymous = 0
    if len(unknown):
        anon = pc.dictionary_encode(anonymous.take(pa.array(unknown))).combine_chunks()
        n_anonymous = len(anon.dictionary)
        code[unknown] = n_known + np.asarray(anon.indices, dtype=np.int64)
    is_anonymous = np.zeros(n_known + n_anonymous, dtype=bool)
    is_anonymous[n_known:] = True
    return code, is_anonymous


def _match(table: pa.Table, code: np.ndarray, steps: Sequence[str], window: timedelta,
           start: date | None, end: date | None, breakdown: str | None) -> tuple[Any, ...]:
    """The matching of :func:`funnel_entrants_local` over candidate rows ``table`` whose actors
    are ``code``: per entrant (in code order) its anchor row (``idx[pick]``), code, steps reached
    and the times (µs, -1 for none) of each step. Returns ``(idx, pick, a_code, reached, at)``."""
    n_steps = len(steps)
    t = np.asarray(table.column("occurred_at").cast(pa.timestamp("us")).cast(pa.int64()),
                   dtype=np.int64)
    types = pc.dictionary_encode(table.column("type")).combine_chunks()
    type_names = types.dictionary.to_pylist()
    type_code = np.asarray(types.indices, dtype=np.int64)

    def of_type(name: str) -> Any:
        return type_code == type_names.index(name) if name in type_names else type_code < 0
    rank_of_time = np.unique(t, return_inverse=True)[1].astype(np.int64)
    span = int(rank_of_time.max()) + 2 if len(t) else 1
    key = code * span + rank_of_time
    anchor = of_type(steps[0])
    day = table.column("event_date")
    if start is not None:
        anchor &= np.asarray(pc.fill_null(pc.greater_equal(day, pa.scalar(start)), False))
    if end is not None:
        anchor &= np.asarray(pc.fill_null(pc.less_equal(day, pa.scalar(end)), False))
    idx = np.flatnonzero(anchor)
    # Attempts in (actor, time) order: the first step's searches then go in ascending order
    # (numpy narrows each search from the previous one), the later ones nearly so.
    idx = idx[np.argsort(key[idx], kind="stable")]
    a_code = code[idx]
    at = np.full((n_steps, len(idx)), -1, dtype=np.int64)  # microseconds, -1 none
    at[0] = t[idx]
    prev_rank = rank_of_time[idx]
    going = np.arange(len(idx))  # the attempts that reached step k so far
    limit = at[0] + min(int(window.total_seconds()) * 1_000_000, 2**62)  # no int64 overflow
    for k in range(1, n_steps):
        m = np.flatnonzero(of_type(steps[k]))
        if not len(m) or not len(going):
            break
        order = np.argsort(key[m], kind="stable")
        s_key, s_t = key[m][order], t[m][order]
        g_code = a_code[going]
        q = g_code * span + prev_rank[going]
        pos = np.searchsorted(s_key, q, side="right" if steps[k] in steps[:k] else "left")
        ok = pos < len(s_key)
        pos = np.minimum(pos, len(s_key) - 1)
        ok &= (s_key[pos] < (g_code + 1) * span) & (s_t[pos] <= limit[going])
        going, pos = going[ok], pos[ok]
        at[k, going] = s_t[pos]
        prev_rank[going] = s_key[pos] - a_code[going] * span
    reached = (at >= 0).sum(axis=0)
    # Attempts of one actor starting at the same time reach the same steps at the same times;
    # the anchor's event id only decides which one's breakdown value counts.
    if breakdown:
        ids = table.column("event_id").take(pa.array(idx))
        id_rank = np.asarray(pc.rank(ids, sort_keys="ascending", tiebreaker="first"))
        best = np.lexsort((id_rank, at[0], -reached, a_code))
        first = np.ones(len(best), dtype=bool)
        first[1:] = a_code[best][1:] != a_code[best][:-1]
        return idx, best[first], a_code, reached, at
    # Per actor the attempt that got furthest, then the earliest: the smallest score (an
    # attempt's time as its rank among the rows' times), without sorting the attempts again.
    score = (n_steps - reached) * span + rank_of_time[idx]
    smallest = np.full(int(a_code.max()) + 1 if len(a_code) else 0, np.iinfo(np.int64).max)
    np.minimum.at(smallest, a_code, score)
    chosen = np.flatnonzero(score == smallest[a_code])
    _codes, first_of = np.unique(a_code[chosen], return_index=True)
    return idx, chosen[first_of], a_code, reached, at


def funnel_entrants_local(
    events: ir.Table,
    steps: Sequence[str] = DEFAULT_STEPS,
    *,
    window: timedelta = DEFAULT_WINDOW,
    start: date | None = None,
    end: date | None = None,
    breakdown: str | None = None,
    links: pa.Table | None = None,
) -> pd.DataFrame:
    """:func:`funnel_entrants` computed in memory: the same rows (as a DataFrame, ``at_k`` as
    ``datetime64[us]``), in actor order.

    The backend only picks the candidate events (and, unless ``links`` from
    :func:`identity_links` is given, the identity links); identities are resolved and steps
    matched in memory: a sorted search per step (the earliest event of the step's type at or after
    the previous step, per actor) for the attempts still going, so it costs O(n log n) in the
    events instead of a range join per step. This is what :func:`funnel_frame` uses on DuckDB,
    where the warehouse is on the same machine."""
    _check(steps, window, breakdown)
    steps = list(steps)
    if links is None:
        links = identity_links(events)
    table = _range_rows(events, steps, window, start, end, ["event_id", breakdown] if breakdown else [])
    n_steps = len(steps)
    actor_dict = _actors(table, links)
    code = np.asarray(actor_dict.indices, dtype=np.int64)
    idx, pick, a_code, reached, at = _match(table, code, steps, window, start, end, breakdown)
    out: dict[str, Any] = {"actor": actor_dict.dictionary.take(pa.array(a_code[pick])).to_pylist()}
    if breakdown:
        values = table.column(breakdown).take(pa.array(idx[pick]))
        out[breakdown] = pc.fill_null(values, NONE_LABEL).to_pylist()
    out["steps_reached"] = reached[pick].astype(np.int64)
    for k in range(n_steps):
        col = at[k][pick]
        out[f"at_{k + 1}"] = pd.array(
            np.where(col >= 0, col, np.iinfo(np.int64).min).astype("datetime64[us]")
        )
    return pd.DataFrame(out)


def _median(values: Any) -> float | None:
    return float(np.median(values)) if len(values) else None


def _step_table(
    events: ir.Table,
    steps: Sequence[str],
    *,
    window: timedelta,
    start: date | None,
    end: date | None,
    breakdown: str | None,
    links: pa.Table | None = None,
) -> pd.DataFrame:
    """What ``funnel_steps(funnel_entrants(...)).execute()`` returns, from
    :func:`funnel_entrants_local`: per step (and breakdown value) with entrants, their count and
    the median seconds from the first and the previous step (whole seconds crossed, as the
    warehouse's ``date_diff('second', …)`` counts them)."""
    people = funnel_entrants_local(
        events, steps, window=window, start=start, end=end, breakdown=breakdown, links=links
    )
    return _step_table_of(people, steps, breakdown)


def _step_table_of_arrays(reached: np.ndarray, at: np.ndarray) -> pd.DataFrame:
    """:func:`_step_table_of` without a breakdown, from the entrants' steps reached and step
    times (µs, one row per step, as :func:`_match` gives them)."""
    n = len(at)
    secs = np.floor_divide(at, 1_000_000)
    records: list[dict[str, Any]] = []
    for k in range(1, n + 1):
        m = reached >= k
        records.append({
            "step": k,
            "entrants": int(m.sum()),
            "median_seconds_from_first": _median(secs[k - 1][m] - secs[0][m]),
            "median_seconds_from_previous": _median(secs[k - 1][m] - secs[max(k - 2, 0)][m]),
        })
    return pd.DataFrame(records, columns=["step", "entrants", "median_seconds_from_first",
                                          "median_seconds_from_previous"])


def _step_table_of(people: pd.DataFrame, steps: Sequence[str], breakdown: str | None) -> pd.DataFrame:
    """:func:`_step_table` from the entrants already found."""
    n = len(steps)
    secs = {
        k: np.floor_divide(people[f"at_{k}"].to_numpy().astype("datetime64[us]").astype(np.int64),
                           1_000_000)
        for k in range(1, n + 1)
    }
    groups: dict[Any, Any] = (
        dict(people.groupby(breakdown, sort=False).indices) if breakdown
        else {None: np.arange(len(people))}
    )
    reached = people["steps_reached"].to_numpy()
    records: list[dict[str, Any]] = []
    for value, members in groups.items():
        for k in range(1, n + 1):
            m = np.asarray(members)[reached[members] >= k]
            if not len(m) and breakdown:
                continue
            entry: dict[str, Any] = {breakdown: value} if breakdown else {}
            entry.update({
                "step": k,
                "entrants": len(m),
                "median_seconds_from_first": _median(secs[k][m] - secs[1][m]),
                "median_seconds_from_previous": _median(secs[k][m] - secs[max(k - 1, 1)][m]),
            })
            records.append(entry)
    keys = [breakdown] if breakdown else []
    return pd.DataFrame(records, columns=[*keys, "step", "entrants", "median_seconds_from_first",
                                          "median_seconds_from_previous"])


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
    links: pa.Table | None = None,
) -> pd.DataFrame:
    """The funnel as a small table: one row per step (per breakdown value), dense.

    ``conversion_from_previous`` = entrants at this step / at the previous one, ``conversion_from_first``
    = / at the first; ``drop_off`` = entrants at the previous step who did not reach this one, and
    ``drop_off_rate`` = drop_off / previous (both null for step 1). Breakdown values are sorted by
    entrants, largest first. ``links`` (:func:`identity_links` of the same ``events``) saves
    the DuckDB path from recomputing them; other engines ignore it.
    """
    steps = list(steps)
    if _backend_name(events) == "duckdb":
        df = _step_table(events, steps, window=window, start=start, end=end, breakdown=breakdown,
                         links=links)
    else:
        entrants = funnel_entrants(
            events, steps, window=window, start=start, end=end, breakdown=breakdown
        )
        df = funnel_steps(entrants, len(steps), breakdown=breakdown).execute()
    return _dense(df, steps, breakdown)


def _dense(df: pd.DataFrame, steps: Sequence[str], breakdown: str | None) -> pd.DataFrame:
    """The per-step table of :func:`funnel_frame` from the steps found (with rates, dense)."""
    groups: dict[Any, dict[int, dict[str, Any]]] = {}
    for found in df.to_dict(orient="records"):
        key = found[breakdown] if breakdown else None
        groups.setdefault(key, {})[int(found["step"])] = {str(c): v for c, v in found.items()}
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


def _is_customer(actor: ir.StringValue) -> ir.BooleanValue:
    return ~actor.startswith(ANONYMOUS_PREFIX)


def funnel_with_stops(
    events: ir.Table,
    steps: Sequence[str] = DEFAULT_STEPS,
    *,
    window: timedelta = DEFAULT_WINDOW,
    start: date | None = None,
    end: date | None = None,
    links: pa.Table | None = None,
) -> tuple[pd.DataFrame, list[int]]:
    """:func:`funnel_frame` (no breakdown) and, per step k, how many entrants known as customers
    got exactly as far as step k (reached it and not step k + 1; for the last step: completed the
    funnel): the customers :func:`funnel_members` lists with ``exact=True``. Anonymous entrants
    (``anon:<id>``) are in the frame's counts but cannot be listed. On DuckDB the entrants are
    found once for both."""
    steps = list(steps)
    n = len(steps)
    if _backend_name(events) == "duckdb":
        # The entrants' actors are only grouped and told apart (anonymous or not): integer codes,
        # no actor strings and no DataFrame of entrants.
        _check(steps, window, None)
        if links is None:
            links = identity_links(events)
        table = _range_rows(events, steps, window, start, end, [])
        code, is_anonymous = _fast_actors(table, links)
        _idx, pick, a_code, reached, at = _match(table, code, steps, window, start, end, None)
        reached, at = reached[pick], at[:, pick]
        frame = _dense(_step_table_of_arrays(reached, at), steps, None)
        counts = np.bincount(reached[~is_anonymous[a_code[pick]]], minlength=n + 1)
        return frame, [int(counts[k]) for k in range(1, n + 1)]
    frame = funnel_frame(events, steps, window=window, start=start, end=end)
    entrants = funnel_entrants(events, steps, window=window, start=start, end=end)
    entrants = entrants.filter(_is_customer(entrants.actor))
    per = entrants.group_by("steps_reached").aggregate(n=entrants.count()).to_pyarrow().to_pylist()
    found = {int(r["steps_reached"]): int(r["n"]) for r in per}
    return frame, [found.get(k, 0) for k in range(1, n + 1)]


def funnel_members(
    events: ir.Table,
    steps: Sequence[str],
    *,
    reached: int,
    exact: bool = True,
    window: timedelta = DEFAULT_WINDOW,
    start: date | None = None,
    end: date | None = None,
    links: pa.Table | None = None,
) -> ir.Table:
    """``customer_id`` of the entrants known as customers who reached step ``reached`` (1-based)
    and, with ``exact``, no further: the customers behind a count of the funnel page (anonymous
    entrants are left out: there is nobody to list). On DuckDB the entrants are found in memory
    (:func:`funnel_entrants_local`) and the ids come back as a small in-memory table; other engines
    get the Ibis expression (:func:`funnel_entrants`)."""
    _check(steps, window, None)
    if not 1 <= reached <= len(steps):
        raise InvalidArgumentError(f"reached must be a step number, 1 to {len(steps)}")
    if _backend_name(events) == "duckdb":
        people = funnel_entrants_local(events, steps, window=window, start=start, end=end,
                                       links=links)
        at = people["steps_reached"]
        chosen = people[(at == reached) if exact else (at >= reached)]
        ids = sorted(a for a in chosen["actor"] if not str(a).startswith(ANONYMOUS_PREFIX))
        return ibis.memtable(pa.table({"customer_id": pa.array(ids, type=pa.string())}))
    e = funnel_entrants(events, steps, window=window, start=start, end=end)
    e = e.filter(((e.steps_reached == reached) if exact else (e.steps_reached >= reached))
                 & _is_customer(e.actor))
    return e.select(customer_id=e.actor)
