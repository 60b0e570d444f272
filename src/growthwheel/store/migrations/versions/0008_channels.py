"""Message channels: consent, suppression list, send log and counters for the caps, clicks.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Same types as ``journeys.channels.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the ``channel_*`` tables."""
    op.create_table(
        "channel_consents",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("message_key", sa.String(length=400), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('granted', 'revoked')", name="ck_channel_consents_status"),
        sa.PrimaryKeyConstraint("customer_id", "channel", name="pk_channel_consents"),
    )
    op.create_table(
        "channel_suppressions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("reason IN ('unsubscribed', 'bounced', 'complained', 'manual', 'imported')",
                           name="ck_channel_suppressions_reason"),
        sa.PrimaryKeyConstraint("id", name="pk_channel_suppressions"),
        sa.UniqueConstraint("channel", "address", name="uq_channel_suppressions_address"),
    )
    op.create_table(
        "channel_sends",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("sent_at", _TS, nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("counted_daily", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.CheckConstraint("status IN ('reserved', 'released')", name="ck_channel_sends_status"),
        sa.PrimaryKeyConstraint("key", name="pk_channel_sends"),
    )
    op.create_index("ix_channel_sends_customer_at", "channel_sends", ["customer_id", "sent_at"], unique=False)
    op.create_table(
        "channel_customer_locks",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("touched_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_channel_customer_locks"),
    )
    op.create_table(
        "channel_daily_counts",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.CheckConstraint("sent >= 0", name="ck_channel_daily_counts_sent"),
        sa.PrimaryKeyConstraint("channel", "day", name="pk_channel_daily_counts"),
    )
    op.create_table(
        "channel_clicks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("message_key", sa.String(length=400), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicked_at", _TS, nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_channel_clicks"),
    )
    op.create_index("ix_channel_clicks_message_key", "channel_clicks", ["message_key"], unique=False)
    op.create_index("ix_channel_clicks_customer_id", "channel_clicks", ["customer_id"], unique=False)


def downgrade() -> None:
    """Drop the ``channel_*`` tables."""
    for table in ("channel_clicks", "channel_daily_counts", "channel_customer_locks", "channel_sends",
                  "channel_suppressions", "channel_consents"):
        op.drop_table(table)
