"""The experiments table on SQLite and PostgreSQL: the migration creates exactly what the model
declares, and the store enforces the rules that must hold whatever writes to it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from growthwheel.config import Settings
from growthwheel.experiments.models import Experiment
from growthwheel.store import db
from growthwheel.store.db import Base, session_scope


def _row(key: str, **extra: Any) -> Experiment:
    variants = [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}]
    return Experiment(key=key, name=key, variants=variants, salt="s", primary_metric={"kind": "conversion"},
                      created_by="test", **extra)


def test_the_migration_matches_the_model(store_cfg: Settings) -> None:
    with db.engine(store_cfg).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    ours = [d for d in diffs if "experiments" in repr(d)]
    assert ours == []
    inspector = sa.inspect(db.engine(store_cfg))
    assert {c["name"] for c in inspector.get_unique_constraints("experiments")} == {"uq_experiments_key"}


def test_keys_are_unique_and_statuses_checked(store_cfg: Settings) -> None:
    with session_scope(store_cfg) as session:
        session.add(_row("one"))
    with session_scope(store_cfg) as session:
        saved = session.scalars(sa.select(Experiment).where(Experiment.key == "one")).one()
        assert (saved.status, saved.kind, saved.traffic, saved.cuped_days) == ("draft", "experiment", 1.0, 14)
        assert saved.created_at.tzinfo is not None
        assert saved.secondary_metrics == []
    with pytest.raises(sa.exc.IntegrityError), session_scope(store_cfg) as session:
        session.add(_row("one"))
    with pytest.raises(sa.exc.IntegrityError), session_scope(store_cfg) as session:
        session.add(_row("two", status="paused"))
    with pytest.raises(sa.exc.IntegrityError), session_scope(store_cfg) as session:
        session.add(_row("three", traffic=1.5))
