"""The ``segments`` table of the operational store: its migration matches the model, both ways."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from growthwheel.config import Settings
from growthwheel.store import db


def _about_segments(diff: object) -> bool:
    return "segments" in repr(diff)


def test_migration_0002_matches_the_model_and_downgrades(tmp_path: Path) -> None:
    cfg = Settings(data_dir=tmp_path, database_url=None)
    db.migrate(cfg)
    try:
        with db.engine(cfg).connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, db.Base.metadata)
            assert [d for d in diffs if _about_segments(d)] == []
            inspector = sa.inspect(conn)
            assert [i["name"] for i in inspector.get_indexes("segments")] == ["ix_segments_tag"]
            assert [u["name"] for u in inspector.get_unique_constraints("segments")] == ["uq_segments_name"]
        config = Config()
        config.set_main_option("script_location", str(db.MIGRATIONS))
        with db.engine(cfg).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0001")
        with db.engine(cfg).connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert "segments" not in tables
        assert "users" in tables
        db.migrate(cfg)
    finally:
        db.engine(cfg).dispose()
