"""Inventory: the stored plans (``inventory_plans``), one row per refresh.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# Same types as ``inventory.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``inventory_plans``."""
    op.create_table(
        "inventory_plans",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("computed_at", _TS, nullable=False),
        sa.Column("as_of", sa.String(length=10), nullable=False),
        sa.Column("skus", sa.BigInteger(), nullable=False),
        sa.Column("reorder", sa.BigInteger(), nullable=False),
        sa.Column("at_risk", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inventory_plans"),
    )
    op.create_index("ix_inventory_plans_computed_at", "inventory_plans", ["computed_at"])


def downgrade() -> None:
    """Drop ``inventory_plans``."""
    op.drop_index("ix_inventory_plans_computed_at", table_name="inventory_plans")
    op.drop_table("inventory_plans")
