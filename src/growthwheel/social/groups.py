"""Group buying (拼团), the pure part: deal rules and what a group's state means.

A deal sells ``sku`` at ``group_price`` to groups of ``group_size`` buyers (the leader included)
that fill within ``time_limit_minutes`` of opening. A group's deadline is the earlier of
``opened_at + time limit`` and the deal's ``ends_at``: a group never outlives its deal. Until the
``expire`` job marks it ``failed``, an open group past its deadline is shown as ``expired`` and
refuses joiners already.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from growthwheel.errors import InvalidArgumentError

MAX_GROUP_SIZE = 100
MAX_TIME_LIMIT_MINUTES = 30 * 24 * 60


def validate_deal(
    group_price: int, group_size: int, time_limit_minutes: int, list_price: int | None,
    max_groups: int | None, starts_at: datetime | None, ends_at: datetime | None,
) -> None:
    """Raise ``InvalidArgumentError`` naming the field unless the deal makes sense."""
    if group_price < 0:
        raise InvalidArgumentError("group_price: must not be negative")
    if list_price is not None and list_price < group_price:
        raise InvalidArgumentError("list_price: must not be below group_price")
    if not 2 <= group_size <= MAX_GROUP_SIZE:
        raise InvalidArgumentError(f"group_size: must be between 2 and {MAX_GROUP_SIZE}")
    if not 1 <= time_limit_minutes <= MAX_TIME_LIMIT_MINUTES:
        raise InvalidArgumentError(f"time_limit_minutes: must be between 1 and {MAX_TIME_LIMIT_MINUTES}")
    if max_groups is not None and max_groups < 1:
        raise InvalidArgumentError("max_groups: must be at least 1")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidArgumentError("ends_at: must be after starts_at")


def group_deadline(opened_at: datetime, time_limit_minutes: int, deal_ends_at: datetime | None) -> datetime:
    """When a group opened at ``opened_at`` fails unless full."""
    deadline = opened_at + timedelta(minutes=time_limit_minutes)
    return min(deadline, deal_ends_at) if deal_ends_at is not None else deadline


def shown_status(status: str, expires_at: datetime, now: datetime) -> str:
    """``open`` / ``complete`` / ``failed`` as stored, or ``expired`` for an open group past its
    deadline that the expire job has not failed yet."""
    return "expired" if status == "open" and expires_at <= now else status
