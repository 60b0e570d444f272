"""Loyalty: membership tiers by growth value (成长值), the points ledger (积分), members from the
shop's history."""
