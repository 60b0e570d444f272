"""Promotions: promotions, coupons, membership tiers, points ledger, committed orders and refunds.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Same types as ``promotions.models`` (constraint names follow ``store.db.NAMING``).
_TS = sa.DateTime(timezone=True)
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the tables of the promotions domain."""
    op.create_table(
        "promotions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("starts_at", _TS, nullable=True),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("budget_count", sa.Integer(), nullable=True),
        sa.Column("budget_amount", sa.BigInteger(), nullable=True),
        sa.Column("used_count", sa.Integer(), nullable=False),
        sa.Column("used_amount", sa.BigInteger(), nullable=False),
        sa.Column("stock_limit", sa.Integer(), nullable=True),
        sa.Column("stock_used", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('draft', 'active', 'paused', 'ended')", name="ck_promotions_status"),
        sa.CheckConstraint("budget_count IS NULL OR used_count <= budget_count",
                           name="ck_promotions_budget_count"),
        sa.CheckConstraint("budget_amount IS NULL OR used_amount <= budget_amount",
                           name="ck_promotions_budget_amount"),
        sa.CheckConstraint("stock_limit IS NULL OR stock_used <= stock_limit", name="ck_promotions_stock"),
        sa.CheckConstraint("used_count >= 0 AND used_amount >= 0 AND stock_used >= 0",
                           name="ck_promotions_used"),
        sa.PrimaryKeyConstraint("id", name="pk_promotions"),
    )
    op.create_index("ix_promotions_status", "promotions", ["status"])

    op.create_table(
        "coupon_batches",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("code_mode", sa.String(16), nullable=False),
        sa.Column("shared_code", sa.String(32), nullable=True),
        sa.Column("valid_from", _TS, nullable=False),
        sa.Column("valid_until", _TS, nullable=False),
        sa.Column("budget_count", sa.Integer(), nullable=True),
        sa.Column("budget_amount", sa.BigInteger(), nullable=True),
        sa.Column("used_count", sa.Integer(), nullable=False),
        sa.Column("used_amount", sa.BigInteger(), nullable=False),
        sa.Column("per_customer_limit", sa.Integer(), nullable=False),
        sa.Column("release_on_refund", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("issued_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("code_mode IN ('unique', 'shared')", name="ck_coupon_batches_code_mode"),
        sa.CheckConstraint(
            "release_on_refund IN ('never', 'full_refund', 'full_refund_within_validity')",
            name="ck_coupon_batches_release",
        ),
        sa.CheckConstraint("budget_count IS NULL OR used_count <= budget_count",
                           name="ck_coupon_batches_budget_count"),
        sa.CheckConstraint("budget_amount IS NULL OR used_amount <= budget_amount",
                           name="ck_coupon_batches_budget_amount"),
        sa.CheckConstraint("used_count >= 0 AND used_amount >= 0", name="ck_coupon_batches_used"),
        sa.CheckConstraint("per_customer_limit >= 1", name="ck_coupon_batches_per_customer"),
        sa.PrimaryKeyConstraint("id", name="pk_coupon_batches"),
        sa.UniqueConstraint("shared_code", name="uq_coupon_batches_shared_code"),
    )

    op.create_table(
        "coupon_codes",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("issue_key", sa.String(100), nullable=True),
        sa.Column("issued_at", _TS, nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="ck_coupon_codes_uses"),
        sa.CheckConstraint("uses >= 0", name="ck_coupon_codes_uses_positive"),
        sa.ForeignKeyConstraint(["batch_id"], ["coupon_batches.id"], ondelete="CASCADE",
                                name="fk_coupon_codes_batch_id_coupon_batches"),
        sa.PrimaryKeyConstraint("code", name="pk_coupon_codes"),
        sa.UniqueConstraint("batch_id", "customer_id", "issue_key", name="uq_coupon_codes_issue"),
    )
    op.create_index("ix_coupon_codes_batch_id", "coupon_codes", ["batch_id"])
    op.create_index("ix_coupon_codes_customer_id", "coupon_codes", ["customer_id"])

    op.create_table(
        "coupon_customer_uses",
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.CheckConstraint("used >= 0", name="ck_coupon_customer_uses_used"),
        sa.ForeignKeyConstraint(["batch_id"], ["coupon_batches.id"], ondelete="CASCADE",
                                name="fk_coupon_customer_uses_batch_id_coupon_batches"),
        sa.PrimaryKeyConstraint("batch_id", "customer_id", name="pk_coupon_customer_uses"),
    )

    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("redeemed_at", _TS, nullable=False),
        sa.Column("released_at", _TS, nullable=True),
        sa.CheckConstraint("status IN ('redeemed', 'released')", name="ck_coupon_redemptions_status"),
        sa.ForeignKeyConstraint(["batch_id"], ["coupon_batches.id"], ondelete="CASCADE",
                                name="fk_coupon_redemptions_batch_id_coupon_batches"),
        sa.PrimaryKeyConstraint("id", name="pk_coupon_redemptions"),
        sa.UniqueConstraint("order_id", "code", name="uq_coupon_redemptions_order_code"),
    )
    op.create_index("ix_coupon_redemptions_batch_id", "coupon_redemptions", ["batch_id"])
    op.create_index("ix_coupon_redemptions_code", "coupon_redemptions", ["code"])
    op.create_index("ix_coupon_redemptions_customer_id", "coupon_redemptions", ["customer_id"])

    op.create_table(
        "member_tiers",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("min_growth", sa.BigInteger(), nullable=False),
        sa.Column("points_multiplier_bp", sa.Integer(), nullable=False),
        sa.Column("free_shipping", sa.Boolean(), nullable=False),
        sa.Column("birthday_batch_id", sa.String(64), nullable=True),
        sa.CheckConstraint("points_multiplier_bp >= 0", name="ck_member_tiers_multiplier"),
        sa.ForeignKeyConstraint(["birthday_batch_id"], ["coupon_batches.id"], ondelete="SET NULL",
                                name="fk_member_tiers_birthday_batch_id_coupon_batches"),
        sa.PrimaryKeyConstraint("code", name="pk_member_tiers"),
        sa.UniqueConstraint("rank", name="uq_member_tiers_rank"),
        sa.UniqueConstraint("min_growth", name="uq_member_tiers_min_growth"),
    )

    op.create_table(
        "members",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("tier_code", sa.String(32), nullable=True),
        sa.Column("growth", sa.BigInteger(), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("joined_at", _TS, nullable=False),
        sa.Column("tier_since", _TS, nullable=True),
        sa.Column("evaluated_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["tier_code"], ["member_tiers.code"], ondelete="SET NULL",
                                name="fk_members_tier_code_member_tiers"),
        sa.PrimaryKeyConstraint("customer_id", name="pk_members"),
    )

    op.create_table(
        "growth_entries",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("effective_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_growth_entries"),
    )
    op.create_index("ix_growth_entries_customer_at", "growth_entries", ["customer_id", "effective_at"])
    op.create_index("ix_growth_entries_order_id", "growth_entries", ["order_id"])

    op.create_table(
        "points_accounts",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_points_accounts_balance"),
        sa.PrimaryKeyConstraint("customer_id", name="pk_points_accounts"),
    )

    op.create_table(
        "points_lots",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("earned_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.CheckConstraint("remaining >= 0 AND remaining <= points", name="ck_points_lots_remaining"),
        sa.PrimaryKeyConstraint("id", name="pk_points_lots"),
    )
    op.create_index("ix_points_lots_customer_expires", "points_lots", ["customer_id", "expires_at"])
    op.create_index("ix_points_lots_expires_at", "points_lots", ["expires_at"])

    op.create_table(
        "points_ledger",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", _SERIAL, nullable=True),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.CheckConstraint("kind IN ('earn', 'redeem', 'expire', 'adjust', 'clawback', 'return')",
                           name="ck_points_ledger_kind"),
        sa.CheckConstraint("points <> 0", name="ck_points_ledger_nonzero"),
        sa.ForeignKeyConstraint(["lot_id"], ["points_lots.id"], name="fk_points_ledger_lot_id_points_lots"),
        sa.PrimaryKeyConstraint("id", name="pk_points_ledger"),
    )
    op.create_index("ix_points_ledger_customer_id", "points_ledger", ["customer_id"])
    op.create_index("ix_points_ledger_order_id", "points_ledger", ["order_id"])

    op.create_table(
        "checkout_orders",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("shipping", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("points_used", sa.BigInteger(), nullable=False),
        sa.Column("points_earned", sa.BigInteger(), nullable=False),
        sa.Column("growth_earned", sa.BigInteger(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("points_returned", sa.BigInteger(), nullable=False),
        sa.Column("points_clawed", sa.BigInteger(), nullable=False),
        sa.Column("growth_clawed", sa.BigInteger(), nullable=False),
        sa.Column("priced", sa.JSON(), nullable=False),
        sa.Column("committed_at", _TS, nullable=False),
        sa.CheckConstraint("refunded_amount >= 0 AND refunded_amount <= total",
                           name="ck_checkout_orders_refunded"),
        sa.CheckConstraint("total >= 0", name="ck_checkout_orders_total"),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_orders"),
    )
    op.create_index("ix_checkout_orders_customer_id", "checkout_orders", ["customer_id"])

    op.create_table(
        "checkout_order_lines",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("line_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.BigInteger(), nullable=False),
        sa.Column("refunded_quantity", sa.Integer(), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("refunded_quantity >= 0 AND refunded_quantity <= quantity",
                           name="ck_checkout_order_lines_refunded_qty"),
        sa.CheckConstraint("refunded_amount >= 0 AND refunded_amount <= paid",
                           name="ck_checkout_order_lines_refunded_amount"),
        sa.ForeignKeyConstraint(["order_id"], ["checkout_orders.id"], ondelete="CASCADE",
                                name="fk_checkout_order_lines_order_id_checkout_orders"),
        sa.PrimaryKeyConstraint("order_id", "line_id", name="pk_checkout_order_lines"),
    )

    op.create_table(
        "checkout_refunds",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["checkout_orders.id"], ondelete="CASCADE",
                                name="fk_checkout_refunds_order_id_checkout_orders"),
        sa.PrimaryKeyConstraint("id", name="pk_checkout_refunds"),
    )
    op.create_index("ix_checkout_refunds_order_id", "checkout_refunds", ["order_id"])


def downgrade() -> None:
    """Drop the tables of the promotions domain."""
    for index, table in (
        ("ix_checkout_refunds_order_id", "checkout_refunds"),
        ("ix_checkout_orders_customer_id", "checkout_orders"),
        ("ix_points_ledger_order_id", "points_ledger"),
        ("ix_points_ledger_customer_id", "points_ledger"),
        ("ix_points_lots_expires_at", "points_lots"),
        ("ix_points_lots_customer_expires", "points_lots"),
        ("ix_growth_entries_order_id", "growth_entries"),
        ("ix_growth_entries_customer_at", "growth_entries"),
        ("ix_coupon_redemptions_customer_id", "coupon_redemptions"),
        ("ix_coupon_redemptions_code", "coupon_redemptions"),
        ("ix_coupon_redemptions_batch_id", "coupon_redemptions"),
        ("ix_coupon_codes_customer_id", "coupon_codes"),
        ("ix_coupon_codes_batch_id", "coupon_codes"),
        ("ix_promotions_status", "promotions"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "checkout_refunds", "checkout_order_lines", "checkout_orders", "points_ledger", "points_lots",
        "points_accounts", "growth_entries", "members", "member_tiers", "coupon_redemptions",
        "coupon_customer_uses", "coupon_codes", "coupon_batches", "promotions",
    ):
        op.drop_table(table)
