"""Integrity constraints found missing under concurrency (issue 10).

Revision ID: 0006
Revises: 0005
"""

from alembic import op  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the constraints (filled in by the races work of issue 10)."""


def downgrade() -> None:
    """Drop them again."""
