"""Promotions: the pure cart-pricing core (rules/), coupons, redemptions, membership and points."""
