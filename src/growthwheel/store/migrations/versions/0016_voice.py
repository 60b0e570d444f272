"""Voice of the customer: the review service queue (unique review id) and its sync state.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Same types as ``voice.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``review_cases`` and ``voice_state``."""
    op.create_table(
        "review_cases",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("review_id", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=True),
        sa.Column("order_id", sa.String(length=200), nullable=True),
        sa.Column("sentiment", sa.Float(), nullable=False),
        sa.Column("aspects", sa.JSON(), nullable=False),
        sa.Column("review_created_at", _TS, nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("claimed_at", _TS, nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("template", sa.String(length=40), nullable=True),
        sa.Column("replied_at", _TS, nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('open', 'claimed', 'replied', 'closed')",
                           name="ck_review_cases_status"),
        sa.PrimaryKeyConstraint("id", name="pk_review_cases"),
        sa.UniqueConstraint("review_id", name="uq_review_cases_review_id"),
    )
    op.create_index("ix_review_cases_status_due", "review_cases", ["status", "due_at"], unique=False)
    op.create_index("ix_review_cases_sku", "review_cases", ["sku", "review_created_at"], unique=False)
    op.create_table(
        "voice_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=400), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_voice_state"),
    )


def downgrade() -> None:
    """Drop ``voice_state`` and ``review_cases``."""
    op.drop_table("voice_state")
    op.drop_table("review_cases")
