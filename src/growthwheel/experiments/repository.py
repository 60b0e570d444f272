"""Every query of the experiments domain outside the metrics: experiments in the operational store
and the members of a target segment in the warehouse."""

from __future__ import annotations

from ibis.backends import BaseBackend
from sqlalchemy import select
from sqlalchemy.orm import Session

from growthwheel.experiments.models import Experiment
from growthwheel.segments.repository import MEMBERS_TABLE, has_table


def by_key(session: Session, key: str) -> Experiment | None:
    """The experiment with this key, or ``None``."""
    return session.scalars(select(Experiment).where(Experiment.key == key)).first()


def all_experiments(session: Session, status: str | None = None) -> list[Experiment]:
    """Every experiment (optionally of one status), newest first."""
    query = select(Experiment).order_by(Experiment.created_at.desc(), Experiment.key)
    if status is not None:
        query = query.where(Experiment.status == status)
    return list(session.scalars(query))


def running_in_layer(session: Session, layer: str, *, excluding: str | None = None) -> list[Experiment]:
    """The running experiments of ``layer`` (optionally leaving one out)."""
    query = select(Experiment).where(Experiment.layer == layer, Experiment.status == "running")
    if excluding is not None:
        query = query.where(Experiment.id != excluding)
    return list(session.scalars(query))


def segment_member_ids(backend: BaseBackend, segment_id: str) -> frozenset[str]:
    """The customer ids in a saved segment as of its last refresh (empty if never refreshed)."""
    if not has_table(backend, MEMBERS_TABLE):
        return frozenset()
    members = backend.table(MEMBERS_TABLE)
    ids = members.filter(members.segment_id == segment_id).customer_id
    return frozenset(str(v) for v in ids.to_pyarrow().to_pylist())
