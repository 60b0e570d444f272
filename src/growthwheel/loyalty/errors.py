"""Errors of the loyalty domain (each with a stable code; the API answers problem+json)."""

from __future__ import annotations

from growthwheel.errors import GrowthwheelError


class InsufficientPointsError(GrowthwheelError):
    """The customer has fewer (unexpired) points than asked for."""

    code = "insufficient_points"
    status = 409


class TierConfigError(GrowthwheelError):
    """The membership tiers given are not a valid ladder."""

    code = "invalid_tiers"
    status = 422
