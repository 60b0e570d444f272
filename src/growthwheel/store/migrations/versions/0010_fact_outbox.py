"""Facts: the fact outbox (checkout orders and refunds, points moves, coupons, messages → warehouse).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``fact_outbox`` (a partial index on the rows not yet drained) and ``fact_cursors``."""
    op.create_table(
        "fact_outbox",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("done_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_fact_outbox"),
    )
    op.create_index("ix_fact_outbox_pending", "fact_outbox", ["id"], unique=False,
                    sqlite_where=sa.text("done_at IS NULL"), postgresql_where=sa.text("done_at IS NULL"))
    op.create_index("ix_fact_outbox_key", "fact_outbox", ["key"], unique=False)
    op.create_table(
        "fact_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_fact_cursors"),
    )


def downgrade() -> None:
    """Drop ``fact_outbox`` and ``fact_cursors``."""
    op.drop_table("fact_cursors")
    op.drop_index("ix_fact_outbox_key", table_name="fact_outbox")
    op.drop_index("ix_fact_outbox_pending", table_name="fact_outbox")
    op.drop_table("fact_outbox")
