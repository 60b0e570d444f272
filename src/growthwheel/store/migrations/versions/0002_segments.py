"""Segments: saved segment definitions and tag rules.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Same types as ``segments.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the ``segments`` table."""
    op.create_table(
        "segments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("refreshed_at", _TS, nullable=True),
        sa.Column("members", sa.Integer(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_segments"),
        sa.UniqueConstraint("name", name="uq_segments_name"),
    )
    op.create_index("ix_segments_tag", "segments", ["tag"])


def downgrade() -> None:
    """Drop the ``segments`` table."""
    op.drop_index("ix_segments_tag", table_name="segments")
    op.drop_table("segments")
