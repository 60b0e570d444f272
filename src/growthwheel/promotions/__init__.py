"""Promotions: the pure cart-pricing core (rules.py), coupons, redemptions, membership and points."""
