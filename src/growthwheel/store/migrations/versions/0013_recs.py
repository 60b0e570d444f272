"""Recommendations: precomputed lists per customer and per product, exclusions, refresh runs.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Same types as ``recs.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``rec_customers``, ``rec_products``, ``rec_exclusions`` and ``rec_runs``."""
    for name, key in (("rec_customers", "customer_id"), ("rec_products", "sku")):
        op.create_table(
            name,
            sa.Column(key, sa.String(length=200), nullable=False),
            sa.Column("items", sa.JSON(), nullable=False),
            sa.Column("run_id", sa.BigInteger(), nullable=False),
            sa.Column("computed_at", _TS, nullable=False),
            sa.PrimaryKeyConstraint(key, name=f"pk_{name}"),
        )
    op.create_table(
        "rec_exclusions",
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("reason IN ('out_of_stock', 'not_for_sale')", name="ck_rec_exclusions_reason"),
        sa.PrimaryKeyConstraint("sku", name="pk_rec_exclusions"),
    )
    op.create_table(
        "rec_runs",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("computed_at", _TS, nullable=False),
        sa.Column("customers", sa.BigInteger(), nullable=False),
        sa.Column("products", sa.BigInteger(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("evaluation", sa.JSON(), nullable=False),
        sa.Column("popular", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rec_runs"),
    )


def downgrade() -> None:
    """Drop the four tables."""
    for name in ("rec_runs", "rec_exclusions", "rec_products", "rec_customers"):
        op.drop_table(name)
