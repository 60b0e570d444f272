"""The promotions tables: the hand-written migration 0004 creates exactly what the models declare,
on SQLite and PostgreSQL, and downgrades cleanly."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from growthwheel.config import Settings
from growthwheel.store import db
from growthwheel.store.db import Base

TABLES = {
    "promotions", "coupon_batches", "coupon_codes", "coupon_customer_uses", "coupon_redemptions",
    "member_tiers", "members", "growth_entries", "points_accounts", "points_lots", "points_ledger",
    "checkout_orders", "checkout_order_lines", "checkout_refunds",
}


def _table_of(diff: Any) -> str | None:
    op = diff[0] if isinstance(diff, list) else diff
    for item in op[1:]:
        if isinstance(item, sa.Table):
            return str(item.name)
        if isinstance(item, sa.Index | sa.Constraint) and item.table is not None:
            return str(item.table.name)
    if op[0] in ("add_column", "remove_column") or op[0].startswith("modify_"):
        return str(op[2])
    return None


def test_migration_matches_the_models_and_downgrades(store_cfg: Settings) -> None:
    with db.engine(store_cfg).connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) >= TABLES
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, Base.metadata) if _table_of(d) in TABLES]
    assert diffs == []
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    with db.engine(store_cfg).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004@0002")
    with db.engine(store_cfg).connect() as conn:
        assert not set(sa.inspect(conn).get_table_names()) & TABLES
    db.migrate(store_cfg)
    with db.engine(store_cfg).connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) >= TABLES
