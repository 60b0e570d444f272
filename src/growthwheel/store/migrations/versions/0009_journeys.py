"""Journeys: journeys and their versions, enrolments (unique per occurrence), step log, customer traits.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Same types as ``journeys.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the ``journey*`` tables and ``customer_traits``."""
    op.create_table(
        "journeys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("evaluated_until", _TS, nullable=True),
        sa.Column("activated_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('draft', 'active', 'paused', 'ended')", name="ck_journeys_status"),
        sa.PrimaryKeyConstraint("id", name="pk_journeys"),
        sa.UniqueConstraint("name", name="uq_journeys_name"),
    )
    op.create_table(
        "journey_versions",
        sa.Column("journey_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], ondelete="CASCADE",
                                name="fk_journey_versions_journey_id_journeys"),
        sa.PrimaryKeyConstraint("journey_id", "version", name="pk_journey_versions"),
    )
    op.create_table(
        "journey_enrolments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("journey_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.String(length=200), nullable=False),
        sa.Column("held_out", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step_id", sa.String(length=40), nullable=True),
        sa.Column("waiting", sa.Boolean(), nullable=False),
        sa.Column("due_at", _TS, nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("entered_at", _TS, nullable=False),
        sa.Column("triggered_at", _TS, nullable=False),
        sa.Column("goal_until", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("converted_at", _TS, nullable=True),
        sa.Column("conversion_order_id", sa.String(length=64), nullable=True),
        sa.Column("conversion_amount", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.CheckConstraint("status IN ('active', 'held_out', 'completed', 'exited', 'converted', 'failed')",
                           name="ck_journey_enrolments_status"),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], ondelete="CASCADE",
                                name="fk_journey_enrolments_journey_id_journeys"),
        sa.PrimaryKeyConstraint("id", name="pk_journey_enrolments"),
        sa.UniqueConstraint("journey_id", "customer_id", "occurrence",
                            name="uq_journey_enrolments_occurrence"),
    )
    op.create_index("ix_journey_enrolments_due", "journey_enrolments", ["status", "due_at"], unique=False)
    op.create_index("ix_journey_enrolments_customer", "journey_enrolments", ["journey_id", "customer_id"],
                    unique=False)
    op.create_table(
        "journey_step_log",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("enrolment_id", sa.String(length=32), nullable=False),
        sa.Column("journey_id", sa.String(length=32), nullable=False),
        sa.Column("step_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["enrolment_id"], ["journey_enrolments.id"], ondelete="CASCADE",
                                name="fk_journey_step_log_enrolment_id_journey_enrolments"),
        sa.PrimaryKeyConstraint("id", name="pk_journey_step_log"),
        sa.UniqueConstraint("enrolment_id", "step_id", name="uq_journey_step_log_step"),
    )
    op.create_index("ix_journey_step_log_journey", "journey_step_log", ["journey_id", "step_id"],
                    unique=False)
    op.create_table(
        "customer_traits",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("kind IN ('tag', 'attribute')", name="ck_customer_traits_kind"),
        sa.PrimaryKeyConstraint("customer_id", "kind", "name", name="pk_customer_traits"),
    )


def downgrade() -> None:
    """Drop the journey tables."""
    for table in ("customer_traits", "journey_step_log", "journey_enrolments", "journey_versions",
                  "journeys"):
        op.drop_table(table)
