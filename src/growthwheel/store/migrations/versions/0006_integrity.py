"""Integrity constraints found missing under concurrency (issue 10).

* ``uq_coupon_codes_unkeyed``: one code per customer and batch among codes issued without an
  ``issue_key`` (the unique constraint ``(batch_id, customer_id, issue_key)`` lets NULL keys
  repeat). Existing duplicates are kept usable, not deleted: every such code but the first issued
  gets the key ``dedup-0006:<code>``, so the customer keeps the codes they were given.
* ``uq_social_bargains_open``: one ``open`` bargain per customer and offer. Of existing duplicates
  the one with the most cuts (then the newest) stays open; the others are marked ``expired``.
* ``coupon_batches.issued_count`` is recounted from the codes (concurrent issues could lose
  updates of the old ``issued_count += n``).

Whatever was changed is logged (``alembic.runtime.migration``). The downgrade drops the two
indexes; the deduplicated rows stay as they are.

Revision ID: 0006
Revises: 0005
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

_UNKEYED = "issue_key IS NULL AND customer_id IS NOT NULL"
_DUPLICATE_CODES = f"""
    SELECT code FROM (
        SELECT code, ROW_NUMBER() OVER (PARTITION BY batch_id, customer_id ORDER BY created_at, code) AS n
        FROM coupon_codes WHERE {_UNKEYED}
    ) ranked WHERE n > 1
"""
_DUPLICATE_BARGAINS = """
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (PARTITION BY offer_id, customer_id
                                      ORDER BY cuts_done DESC, started_at DESC, id) AS n
        FROM social_bargains WHERE status = 'open'
    ) ranked WHERE n > 1
"""


def upgrade() -> None:
    """Deduplicate what the new rules forbid, then add the two partial unique indexes."""
    bind = op.get_bind()
    codes = [row[0] for row in bind.execute(sa.text(_DUPLICATE_CODES))]
    if codes:
        log.warning("0006: %d coupon code(s) were a second unkeyed code of one customer in one batch; "
                    "kept usable under issue_key 'dedup-0006:<code>': %s", len(codes), ", ".join(codes[:20]))
        op.execute(f"UPDATE coupon_codes SET issue_key = 'dedup-0006:' || code "
                   f"WHERE {_UNKEYED} AND code IN ({_DUPLICATE_CODES})")
    bargains = [row[0] for row in bind.execute(sa.text(_DUPLICATE_BARGAINS))]
    if bargains:
        log.warning("0006: %d duplicate open bargain(s) of one customer on one offer marked expired: %s",
                    len(bargains), ", ".join(bargains[:20]))
        op.execute(f"UPDATE social_bargains SET status = 'expired' WHERE id IN ({_DUPLICATE_BARGAINS})")
    op.execute("UPDATE coupon_batches SET issued_count = (SELECT count(*) FROM coupon_codes "
               "WHERE coupon_codes.batch_id = coupon_batches.id AND coupon_codes.customer_id IS NOT NULL)")
    op.create_index("uq_coupon_codes_unkeyed", "coupon_codes", ["batch_id", "customer_id"], unique=True,
                    sqlite_where=sa.text(_UNKEYED), postgresql_where=sa.text(_UNKEYED))
    op.create_index("uq_social_bargains_open", "social_bargains", ["offer_id", "customer_id"], unique=True,
                    sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    """Drop the two indexes (deduplicated rows are not put back)."""
    op.drop_index("uq_social_bargains_open", table_name="social_bargains")
    op.drop_index("uq_coupon_codes_unkeyed", table_name="coupon_codes")
