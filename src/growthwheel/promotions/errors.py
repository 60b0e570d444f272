"""Errors of the promotions domain (each with a stable code; the API answers problem+json)."""

from __future__ import annotations

from growthwheel.errors import GrowthwheelError


class PromotionNotFoundError(GrowthwheelError):
    """No promotion with that id."""

    code = "promotion_not_found"
    status = 404


class CouponNotFoundError(GrowthwheelError):
    """No coupon code or batch with that name."""

    code = "coupon_not_found"
    status = 404


class CouponNotApplicableError(GrowthwheelError):
    """The coupon exists but cannot be used here: outside its validity, someone else's, disabled."""

    code = "coupon_not_applicable"
    status = 422


class CouponUsedUpError(GrowthwheelError):
    """The coupon (its code, its batch budget or the customer's allowance) has no use left."""

    code = "coupon_used_up"
    status = 409


class PromotionBudgetExhaustedError(GrowthwheelError):
    """A promotion's budget was spent by other orders between pricing and commit."""

    code = "promotion_budget_exhausted"
    status = 409


class FlashSaleSoldOutError(GrowthwheelError):
    """The flash sale's stock was taken by other buyers."""

    code = "flash_sale_sold_out"
    status = 409


class OrderConflictError(GrowthwheelError):
    """An order (or refund) with this id exists already with a different payload."""

    code = "order_conflict"
    status = 409


class PriceChangedError(GrowthwheelError):
    """The order re-priced to a total other than the one the customer confirmed."""

    code = "price_changed"
    status = 409


class OrderNotFoundError(GrowthwheelError):
    """No committed order with that id."""

    code = "order_not_found"
    status = 404


class RefundError(GrowthwheelError):
    """The refund asks for more than is left to refund, or names unknown lines."""

    code = "invalid_refund"
    status = 422
