"""Surveys: NPS surveys and their answers (unique per survey × customer × response key).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Same types as ``surveys.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``surveys`` and ``survey_answers``."""
    op.create_table(
        "surveys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("question_zh", sa.String(length=500), nullable=False),
        sa.Column("question_en", sa.String(length=500), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("journey", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_surveys"),
        sa.UniqueConstraint("name", name="uq_surveys_name"),
    )
    op.create_table(
        "survey_answers",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("survey_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("response_key", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(length=2000), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("message_key", sa.String(length=400), nullable=True),
        sa.Column("answered_at", _TS, nullable=False),
        sa.Column("sentiment", sa.Float(), nullable=True),
        sa.Column("aspects", sa.JSON(), nullable=True),
        sa.CheckConstraint("score >= 0 AND score <= 10", name="ck_survey_answers_score"),
        sa.CheckConstraint("source IN ('api', 'link')", name="ck_survey_answers_source"),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys.id"], name="fk_survey_answers_survey_id_surveys",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_survey_answers"),
        sa.UniqueConstraint("survey_id", "customer_id", "response_key", name="uq_survey_answers_survey_id"),
    )
    op.create_index("ix_survey_answers_survey_answered", "survey_answers", ["survey_id", "answered_at"])


def downgrade() -> None:
    """Drop the two tables."""
    op.drop_index("ix_survey_answers_survey_answered", table_name="survey_answers")
    op.drop_table("survey_answers")
    op.drop_table("surveys")
