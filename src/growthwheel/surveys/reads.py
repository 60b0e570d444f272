"""Survey reads that need the warehouse: NPS by saved segment, and NPS beside repurchase.

Both take the answers from the operational store and join them to warehouse tables through an
Ibis memtable (backend-neutral: DuckDB or Spark), so only the answering customers' rows leave the
warehouse.

* **By segment**: a saved segment's *current* members (``segment_members``, as of its last
  refresh) — an answer counts for every segment its customer is in now, not the segment they were
  in when they answered. Segments never refreshed have no members here.
* **Repurchase**: for each NPS group, the share of answers followed by a paid order
  (``PAID_STATUSES``) within ``days`` days after the answer (strictly after it, up to and
  including ``answered_at + days``). Only answers whose window has closed by the warehouse's
  last order are counted (``eligible``): a recent answer has had no chance to buy again yet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import pandas as pd
from ibis.backends import BaseBackend
from sqlalchemy.orm import Session

from growthwheel.errors import InvalidArgumentError
from growthwheel.segments.models import Segment
from growthwheel.segments.repository import MEMBERS_TABLE, has_table
from growthwheel.surveys import nps, service
from growthwheel.surveys.models import Survey
from growthwheel.warehouse.schema import PAID_STATUSES

MAX_DAYS = 730


def _utc(values: Any) -> pd.Series:
    series = pd.to_datetime(pd.Series(values))
    if series.dt.tz is None:
        return series.dt.tz_localize(UTC)
    return series.dt.tz_convert(UTC)


def by_segment(session: Session, backend: BaseBackend, survey: Survey, *, confidence: float = 0.95,
               method: str = "adjusted_wald", segment_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """NPS per saved segment (its current members who answered), largest segment first."""
    service.check_options("week", confidence, method)
    m: nps.Method = "wald" if method == "wald" else "adjusted_wald"
    rows = service.answers(session, survey.id)
    segments = {s.id: s.name for s in session.query(Segment).all()
                if segment_ids is None or s.id in segment_ids or s.name in segment_ids}
    if not rows or not segments or not has_table(backend, MEMBERS_TABLE):
        return []
    customers = sorted({a.customer_id for a in rows})
    who = ibis.memtable({"customer_id": customers})
    members = backend.table(MEMBERS_TABLE)
    members = members.filter(members.segment_id.isin(list(segments)))
    joined = members.join(who, members.customer_id == who.customer_id).select(
        members.segment_id, members.customer_id)
    found = joined.to_pandas()
    in_segments: dict[str, list[str]] = {}
    for sid, cid in zip(found["segment_id"], found["customer_id"], strict=True):
        in_segments.setdefault(str(cid), []).append(str(sid))
    pairs = [(sid, a.score) for a in rows for sid in in_segments.get(a.customer_id, [])]
    out = service.grouped(pairs, confidence, m)
    for row in out:
        row["segment_id"], row["group"] = row["group"], segments[row["group"]]
    return sorted(out, key=lambda r: (-int(r["n"]), str(r["group"])))


def repurchase(session: Session, backend: BaseBackend, survey: Survey, *, days: int = 90) -> dict[str, Any]:
    """For each NPS group: answers, those whose window closed, how many bought again, the share."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidArgumentError(f"days: from 1 to {MAX_DAYS} (天数须在 1 到 {MAX_DAYS} 之间)")
    rows = service.answers(session, survey.id)
    empty: dict[str, dict[str, Any]] = {
        g: {"group": g, "answers": 0, "eligible": 0, "repurchased": 0, "share": None}
        for g in nps.GROUPS}
    if not rows or not has_table(backend, "orders"):
        return {"days": days, "as_of": None, "groups": list(empty.values())}
    orders = backend.table("orders")
    paid = orders.filter(orders.status.isin(list(PAID_STATUSES)) & orders.customer_id.notnull())
    as_of_value = paid.ordered_at.max().to_pandas()
    if as_of_value is None or pd.isna(as_of_value):
        return {"days": days, "as_of": None, "groups": list(empty.values())}
    as_of = _utc([as_of_value]).iloc[0]
    frame = pd.DataFrame({"customer_id": [a.customer_id for a in rows],
                          "answered_at": _utc([a.answered_at for a in rows]),
                          "group": [nps.group_of(a.score) for a in rows]})
    frame["answer"] = range(len(frame))
    window = timedelta(days=days)
    frame["eligible"] = frame["answered_at"] + window <= as_of
    who = ibis.memtable({"customer_id": sorted(set(frame["customer_id"]))})
    bought = (paid.join(who, paid.customer_id == who.customer_id)
              .select(paid.customer_id, paid.ordered_at).to_pandas())
    repeat: set[int] = set()
    if len(bought):
        bought["ordered_at"] = _utc(bought["ordered_at"]).to_numpy()
        pairs = frame[frame["eligible"]].merge(bought, on="customer_id")
        hit = ((pairs["ordered_at"] > pairs["answered_at"])
               & (pairs["ordered_at"] <= pairs["answered_at"] + window))
        repeat = set(pairs.loc[hit, "answer"].tolist())
    frame["repurchased"] = frame["answer"].isin(repeat)
    for group, part in frame.groupby("group"):
        eligible = int(part["eligible"].sum())
        again = int((part["eligible"] & part["repurchased"]).sum())
        empty[str(group)] = {"group": str(group), "answers": len(part), "eligible": eligible,
                             "repurchased": again, "share": round(again / eligible, 4) if eligible else None}
    as_of_dt: datetime = as_of.to_pydatetime()
    return {"days": days, "as_of": as_of_dt.isoformat(), "groups": [empty[g] for g in nps.GROUPS]}
