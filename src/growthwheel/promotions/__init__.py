"""Promotions: the pure cart-pricing core (rules/), coupons, redemptions, checkout orders (membership and
points: ``growthwheel.loyalty``)."""
