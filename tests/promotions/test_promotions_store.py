"""The promotions tables: the hand-written migration 0004 creates exactly what the models declare,
on SQLite and PostgreSQL, and downgrades cleanly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from growthwheel.config import Settings
from growthwheel.store import db

TABLES = {
    "promotions", "coupon_batches", "coupon_codes", "coupon_customer_uses", "coupon_redemptions",
    "member_tiers", "members", "growth_entries", "points_accounts", "points_lots", "points_ledger",
    "checkout_orders", "checkout_order_lines", "checkout_refunds",
}


def test_migration_creates_the_tables_and_downgrades(store_cfg: Settings) -> None:
    with db.engine(store_cfg).connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) >= TABLES
        # (that the tables match the models is checked for every domain in tests/platform/test_store.py)
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
