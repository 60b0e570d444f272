"""Experiments: A/B tests and hold-outs.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Same types as ``experiments.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the ``experiments`` table."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hypothesis", sa.String(4000), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("traffic", sa.Float(), nullable=False),
        sa.Column("layer", sa.String(64), nullable=True),
        sa.Column("bucket_start", sa.Integer(), nullable=True),
        sa.Column("bucket_end", sa.Integer(), nullable=True),
        sa.Column("segment_id", sa.String(32), nullable=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("primary_metric", sa.JSON(), nullable=False),
        sa.Column("secondary_metrics", sa.JSON(), nullable=False),
        sa.Column("guardrail_metrics", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("planned_units", sa.Integer(), nullable=True),
        sa.Column("cuped_days", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("stopped_at", _TS, nullable=True),
        sa.CheckConstraint("status IN ('draft', 'running', 'stopped')", name="ck_experiments_status"),
        sa.CheckConstraint("kind IN ('experiment', 'holdout')", name="ck_experiments_kind"),
        sa.CheckConstraint("unit IN ('customer', 'anonymous')", name="ck_experiments_unit"),
        sa.CheckConstraint("method IN ('fixed', 'sequential')", name="ck_experiments_method"),
        sa.CheckConstraint("traffic >= 0 AND traffic <= 1", name="ck_experiments_traffic"),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
        sa.UniqueConstraint("key", name="uq_experiments_key"),
    )
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_index("ix_experiments_layer", "experiments", ["layer"])


def downgrade() -> None:
    """Drop the ``experiments`` table."""
    op.drop_index("ix_experiments_layer", table_name="experiments")
    op.drop_index("ix_experiments_status", table_name="experiments")
    op.drop_table("experiments")
