"""Social selling: referral (邀请有礼), group buying (拼团) and bargain (砍价) tables.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Same types as ``social.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the ``social_*`` tables."""
    op.create_table(
        "social_bargain_offers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_price", sa.BigInteger(), nullable=False),
        sa.Column("floor_price", sa.BigInteger(), nullable=False),
        sa.Column("cuts", sa.Integer(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("cuts >= 1", name="ck_social_bargain_offers_cuts"),
        sa.CheckConstraint(
            "floor_price >= 0 AND start_price - floor_price >= cuts", name="ck_social_bargain_offers_prices"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_social_bargain_offers"),
    )
    op.create_index("ix_social_bargain_offers_sku", "social_bargain_offers", ["sku"], unique=False)
    op.create_table(
        "social_fingerprints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("seen_at", _TS, nullable=False),
        sa.CheckConstraint("kind IN ('phone', 'address', 'device')", name="ck_social_fingerprints_kind"),
        sa.PrimaryKeyConstraint("id", name="pk_social_fingerprints"),
        sa.UniqueConstraint("customer_id", "kind", "digest", name="uq_social_fingerprints_value"),
    )
    op.create_index(
        "ix_social_fingerprints_customer_id", "social_fingerprints", ["customer_id"], unique=False
    )
    op.create_table(
        "social_group_deals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("list_price", sa.BigInteger(), nullable=True),
        sa.Column("group_price", sa.BigInteger(), nullable=False),
        sa.Column("group_size", sa.Integer(), nullable=False),
        sa.Column("time_limit_minutes", sa.Integer(), nullable=False),
        sa.Column("max_groups", sa.Integer(), nullable=True),
        sa.Column("groups_open", sa.Integer(), nullable=False),
        sa.Column("starts_at", _TS, nullable=True),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("group_price >= 0", name="ck_social_group_deals_group_price"),
        sa.CheckConstraint("group_size >= 2", name="ck_social_group_deals_group_size"),
        sa.CheckConstraint(
            "max_groups IS NULL OR groups_open <= max_groups", name="ck_social_group_deals_groups_open"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_social_group_deals"),
    )
    op.create_index("ix_social_group_deals_sku", "social_group_deals", ["sku"], unique=False)
    op.create_table(
        "social_invite_codes",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_social_invite_codes"),
        sa.UniqueConstraint("code", name="uq_social_invite_codes_code"),
    )
    op.create_table(
        "social_orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("paid_at", _TS, nullable=False),
        sa.Column("refunded_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("order_id", name="pk_social_orders"),
    )
    op.create_index("ix_social_orders_customer_id", "social_orders", ["customer_id"], unique=False)
    op.create_table(
        "social_referral_attempts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("invitee_id", sa.String(length=64), nullable=False),
        sa.Column("inviter_id", sa.String(length=64), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_social_referral_attempts"),
    )
    op.create_index("ix_social_referral_attempts_at", "social_referral_attempts", ["at"], unique=False)
    op.create_index(
        "ix_social_referral_attempts_invitee_id", "social_referral_attempts", ["invitee_id"], unique=False
    )
    op.create_table(
        "social_referral_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("refund_window_days", sa.Integer(), nullable=False),
        sa.Column("inviter_reward", sa.String(length=16), nullable=False),
        sa.Column("inviter_points", sa.Integer(), nullable=True),
        sa.Column("inviter_coupon_batch_id", sa.String(length=64), nullable=True),
        sa.Column("invitee_reward", sa.String(length=16), nullable=False),
        sa.Column("invitee_points", sa.Integer(), nullable=True),
        sa.Column("invitee_coupon_batch_id", sa.String(length=64), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_social_referral_policy"),
    )
    op.create_table(
        "social_referrals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("invitee_id", sa.String(length=64), nullable=False),
        sa.Column("inviter_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bound_at", _TS, nullable=False),
        sa.Column("first_order_id", sa.String(length=64), nullable=True),
        sa.Column("first_paid_at", _TS, nullable=True),
        sa.Column("eligible_at", _TS, nullable=True),
        sa.Column("settled_at", _TS, nullable=True),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.Column("cancel_reason", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('bound', 'pending', 'rewarded', 'cancelled')", name="ck_social_referrals_status"
        ),
        sa.CheckConstraint("inviter_id <> invitee_id", name="ck_social_referrals_not_self"),
        sa.PrimaryKeyConstraint("id", name="pk_social_referrals"),
        sa.UniqueConstraint("invitee_id", name="uq_social_referrals_invitee_id"),
    )
    op.create_index("ix_social_referrals_inviter_id", "social_referrals", ["inviter_id"], unique=False)
    op.create_index(
        "ix_social_referrals_status_eligible", "social_referrals", ["status", "eligible_at"], unique=False
    )
    op.create_table(
        "social_bargains",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("offer_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("start_price", sa.BigInteger(), nullable=False),
        sa.Column("floor_price", sa.BigInteger(), nullable=False),
        sa.Column("cuts_total", sa.Integer(), nullable=False),
        sa.Column("cuts_done", sa.Integer(), nullable=False),
        sa.Column("current_price", sa.BigInteger(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("reached_at", _TS, nullable=True),
        sa.CheckConstraint("status IN ('open', 'reached', 'expired')", name="ck_social_bargains_status"),
        sa.CheckConstraint("current_price >= floor_price", name="ck_social_bargains_above_floor"),
        sa.CheckConstraint("cuts_done >= 0 AND cuts_done <= cuts_total", name="ck_social_bargains_cuts_done"),
        sa.ForeignKeyConstraint(
            ["offer_id"],
            ["social_bargain_offers.id"],
            name="fk_social_bargains_offer_id_social_bargain_offers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_social_bargains"),
    )
    op.create_index("ix_social_bargains_customer_id", "social_bargains", ["customer_id"], unique=False)
    op.create_index("ix_social_bargains_offer_id", "social_bargains", ["offer_id"], unique=False)
    op.create_index(
        "ix_social_bargains_status_expires", "social_bargains", ["status", "expires_at"], unique=False
    )
    op.create_table(
        "social_groups",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deal_id", sa.String(length=32), nullable=False),
        sa.Column("leader_id", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("seats_taken", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("completed_at", _TS, nullable=True),
        sa.Column("failed_at", _TS, nullable=True),
        sa.CheckConstraint("status IN ('open', 'complete', 'failed')", name="ck_social_groups_status"),
        sa.CheckConstraint("seats_taken >= 0 AND seats_taken <= size", name="ck_social_groups_seats"),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["social_group_deals.id"],
            name="fk_social_groups_deal_id_social_group_deals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_social_groups"),
    )
    op.create_index("ix_social_groups_deal_id", "social_groups", ["deal_id"], unique=False)
    op.create_index(
        "ix_social_groups_status_expires", "social_groups", ["status", "expires_at"], unique=False
    )
    op.create_table(
        "social_referral_rewards",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("referral_id", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.Column("coupon_batch_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("granted_at", _TS, nullable=True),
        sa.Column("grant_ref", sa.String(length=128), nullable=True),
        sa.Column("grant_error", sa.String(length=255), nullable=True),
        sa.CheckConstraint("kind IN ('points', 'coupon')", name="ck_social_referral_rewards_kind"),
        sa.CheckConstraint("side IN ('inviter', 'invitee')", name="ck_social_referral_rewards_side"),
        sa.CheckConstraint("status IN ('pending', 'granted')", name="ck_social_referral_rewards_status"),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["social_referrals.id"],
            name="fk_social_referral_rewards_referral_id_social_referrals",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_social_referral_rewards"),
        sa.UniqueConstraint("referral_id", "side", name="uq_social_referral_rewards_side"),
    )
    op.create_index(
        "ix_social_referral_rewards_customer_id", "social_referral_rewards", ["customer_id"], unique=False
    )
    op.create_index("ix_social_referral_rewards_status", "social_referral_rewards", ["status"], unique=False)
    op.create_table(
        "social_bargain_cuts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("bargain_id", sa.String(length=32), nullable=False),
        sa.Column("helper_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("price_after", sa.BigInteger(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_social_bargain_cuts_amount"),
        sa.ForeignKeyConstraint(
            ["bargain_id"],
            ["social_bargains.id"],
            name="fk_social_bargain_cuts_bargain_id_social_bargains",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_social_bargain_cuts"),
        sa.UniqueConstraint("bargain_id", "helper_id", name="uq_social_bargain_cuts_helper"),
        sa.UniqueConstraint("bargain_id", "seq", name="uq_social_bargain_cuts_seq"),
    )
    op.create_table(
        "social_group_members",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.Boolean(), nullable=False),
        sa.Column("is_leader", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("joined_at", _TS, nullable=False),
        sa.Column("released_at", _TS, nullable=True),
        sa.Column("refund_amount", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("status IN ('held', 'released')", name="ck_social_group_members_status"),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["social_groups.id"],
            name="fk_social_group_members_group_id_social_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_social_group_members"),
        sa.UniqueConstraint("group_id", "customer_id", name="uq_social_group_members_customer"),
    )
    op.create_index("ix_social_group_members_group_id", "social_group_members", ["group_id"], unique=False)


def downgrade() -> None:
    """Drop the ``social_*`` tables."""
    op.drop_index("ix_social_group_members_group_id", table_name="social_group_members")
    op.drop_table("social_group_members")
    op.drop_table("social_bargain_cuts")
    op.drop_index("ix_social_referral_rewards_status", table_name="social_referral_rewards")
    op.drop_index("ix_social_referral_rewards_customer_id", table_name="social_referral_rewards")
    op.drop_table("social_referral_rewards")
    op.drop_index("ix_social_groups_status_expires", table_name="social_groups")
    op.drop_index("ix_social_groups_deal_id", table_name="social_groups")
    op.drop_table("social_groups")
    op.drop_index("ix_social_bargains_status_expires", table_name="social_bargains")
    op.drop_index("ix_social_bargains_offer_id", table_name="social_bargains")
    op.drop_index("ix_social_bargains_customer_id", table_name="social_bargains")
    op.drop_table("social_bargains")
    op.drop_index("ix_social_referrals_status_eligible", table_name="social_referrals")
    op.drop_index("ix_social_referrals_inviter_id", table_name="social_referrals")
    op.drop_table("social_referrals")
    op.drop_table("social_referral_policy")
    op.drop_index("ix_social_referral_attempts_invitee_id", table_name="social_referral_attempts")
    op.drop_index("ix_social_referral_attempts_at", table_name="social_referral_attempts")
    op.drop_table("social_referral_attempts")
    op.drop_index("ix_social_orders_customer_id", table_name="social_orders")
    op.drop_table("social_orders")
    op.drop_table("social_invite_codes")
    op.drop_index("ix_social_group_deals_sku", table_name="social_group_deals")
    op.drop_table("social_group_deals")
    op.drop_index("ix_social_fingerprints_customer_id", table_name="social_fingerprints")
    op.drop_table("social_fingerprints")
    op.drop_index("ix_social_bargain_offers_sku", table_name="social_bargain_offers")
    op.drop_table("social_bargain_offers")
