"""Helpers of the promotions store tests (plain functions; the fixtures come from tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from growthwheel.config import Settings
from growthwheel.loyalty import repository
from growthwheel.loyalty.models import PointsAccount, PointsLedgerEntry, PointsLot
from growthwheel.store.db import session_scope


def at(text: str) -> datetime:
    """A UTC time from ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def points_state(cfg: Settings, customer_id: str) -> dict[str, Any]:
    """Balance, ledger sum and lots' remaining of one customer, read fresh."""
    with session_scope(cfg) as session:
        account = session.get(PointsAccount, customer_id)
        lots = session.scalars(sa.select(PointsLot).where(PointsLot.customer_id == customer_id)
                               .order_by(PointsLot.id)).all()
        kinds = session.execute(sa.select(PointsLedgerEntry.kind, sa.func.sum(PointsLedgerEntry.points))
                                .where(PointsLedgerEntry.customer_id == customer_id)
                                .group_by(PointsLedgerEntry.kind)).all()
        return {
            "balance": account.balance if account else 0,
            "ledger_sum": repository.ledger_sum(session, customer_id),
            "lots_remaining": sum(lot.remaining for lot in lots),
            "remaining": [lot.remaining for lot in lots],
            "by_kind": {str(k): int(v) for k, v in kinds},
        }
