"""Campaigns with phases and attachments; the influencer registry (issue 14).

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Same types as ``marketing.campaigns.models`` / ``marketing.influencers.models``.
_TS = sa.DateTime(timezone=True)
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``influencers``, ``campaigns``, ``campaign_phases`` and ``campaign_links``."""
    op.create_table(
        "influencers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("followers", sa.BigInteger(), nullable=False),
        sa.Column("cost_per_deal", sa.BigInteger(), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.Column("landing_url", sa.String(length=2000), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("followers >= 0", name="ck_influencers_followers"),
        sa.CheckConstraint("cost_per_deal >= 0 AND deals >= 0", name="ck_influencers_cost"),
        sa.PrimaryKeyConstraint("id", name="pk_influencers"),
        sa.UniqueConstraint("code", name="uq_influencers_code"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("target_gmv", sa.BigInteger(), nullable=True),
        sa.Column("target_new_buyers", sa.Integer(), nullable=True),
        sa.Column("target_roi", sa.Float(), nullable=True),
        sa.Column("budget", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("profile IN ('linear', 'last_year')", name="ck_campaigns_profile"),
        sa.CheckConstraint("target_gmv IS NULL OR target_gmv >= 0", name="ck_campaigns_target_gmv"),
        sa.CheckConstraint("target_new_buyers IS NULL OR target_new_buyers >= 0",
                           name="ck_campaigns_target_new_buyers"),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.UniqueConstraint("name", name="uq_campaigns_name"),
    )
    op.create_table(
        "campaign_phases",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("share", sa.Float(), nullable=True),
        sa.CheckConstraint("kind IN ('warm_up', 'peak', 'after_glow')", name="ck_campaign_phases_kind"),
        sa.CheckConstraint("ends_on >= starts_on", name="ck_campaign_phases_days"),
        sa.CheckConstraint("share IS NULL OR (share >= 0 AND share <= 1)", name="ck_campaign_phases_share"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
                                name="fk_campaign_phases_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_phases"),
        sa.UniqueConstraint("campaign_id", "position", name="uq_campaign_phases_position"),
    )
    op.create_index("ix_campaign_phases_campaign_id", "campaign_phases", ["campaign_id"])
    op.create_table(
        "campaign_links",
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint("kind IN ('promotion', 'coupon_batch', 'segment', 'journey', 'influencer')",
                           name="ck_campaign_links_kind"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE",
                                name="fk_campaign_links_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("campaign_id", "kind", "ref_id", name="pk_campaign_links"),
    )


def downgrade() -> None:
    """Drop the four tables."""
    op.drop_index("ix_campaign_phases_campaign_id", table_name="campaign_phases")
    for name in ("campaign_links", "campaign_phases", "campaigns", "influencers"):
        op.drop_table(name)
