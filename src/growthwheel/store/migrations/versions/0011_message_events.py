"""Message statuses reported after the send: delivered, opened, bounced, unsubscribed.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``channel_message_events`` (one row per message and status)."""
    op.create_table(
        "channel_message_events",
        sa.Column("message_key", sa.String(length=400), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.CheckConstraint("kind IN ('delivered', 'opened', 'bounced', 'unsubscribed')",
                           name="ck_channel_message_events_kind"),
        sa.PrimaryKeyConstraint("message_key", "kind", name="pk_channel_message_events"),
    )
    op.create_index("ix_channel_message_events_at", "channel_message_events", ["at"], unique=False)


def downgrade() -> None:
    """Drop ``channel_message_events``."""
    op.drop_table("channel_message_events")
