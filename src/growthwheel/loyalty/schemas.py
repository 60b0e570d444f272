"""What the loyalty API takes and answers (pydantic): tiers, members, points lots and moves."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------------
# Membership and points
# ---------------------------------------------------------------------------------------------


class TierIn(_In):
    """One tier of the ladder."""

    code: Annotated[str, Field(min_length=1, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    min_growth: Annotated[int, Field(ge=0, le=10**12)]
    points_multiplier_bp: Annotated[int, Field(ge=0, le=100_000)] = 10_000
    free_shipping: bool = False
    birthday_batch_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class TierOut(BaseModel):
    """A tier as stored."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    rank: int
    min_growth: int
    points_multiplier_bp: int
    free_shipping: bool
    birthday_batch_id: str | None


class LotOut(BaseModel):
    """A lot of points."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    earned_at: datetime
    expires_at: datetime
    points: int
    remaining: int
    source: str
    order_id: str | None


class LedgerOut(BaseModel):
    """One ledger move."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    kind: str
    points: int
    lot_id: int | None
    order_id: str | None
    note: str | None


class MemberOut(BaseModel):
    """A customer's membership and points."""

    customer_id: str
    tier: str | None
    growth: int
    birthday: date | None
    points_balance: int
    points_spendable: int
    lots: list[LotOut]
    ledger: list[LedgerOut]


class MemberIn(_In):
    """Set a member's birthday."""

    birthday: date | None


class AdjustIn(_In):
    """A manual points correction."""

    delta: Annotated[int, Field(ge=-(10**12), le=10**12)]
    note: Annotated[str, Field(min_length=1, max_length=500)]
