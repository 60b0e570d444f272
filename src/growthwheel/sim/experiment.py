"""A known treatment effect for experiment tests: extra paid orders for the treated units.

The demo shop's own orders are what every variant would have bought anyway; :func:`lift_orders`
adds, for each treated customer independently with probability ``probability``, one extra paid
order of exactly ``amount`` minor units at a uniformly random time of ``[start, start + days)``.
The true effect on *revenue per unit* is therefore ``probability × amount`` and on *orders per
unit* ``probability`` (in expectation, over the randomisation of who is treated and who buys);
the orders come out in the generic import format and go in through the normal import path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Lift:
    """The injected effect: the extra orders and the true effects they stand for."""

    orders: pa.Table
    probability: float
    amount: int

    @property
    def revenue_per_unit(self) -> float:
        """True effect on net revenue per unit (minor units)."""
        return self.probability * self.amount

    @property
    def orders_per_unit(self) -> float:
        """True effect on paid orders per unit."""
        return self.probability


def lift_orders(
    customers: Sequence[str], *, start: datetime, days: int, probability: float, amount: int, seed: int,
    currency: str = "CNY", exponent: int = 2, prefix: str = "lift",
) -> Lift:
    """Extra paid orders for ``customers`` (see the module docstring); ``amount`` in minor units."""
    if not 0 <= probability <= 1:
        raise ValueError("probability must be between 0 and 1")
    rng = np.random.default_rng(seed)
    chosen = [c for c, hit in zip(customers, rng.random(len(customers)) < probability, strict=True) if hit]
    offsets = rng.random(len(chosen)) * days * 86_400
    begin = start.astimezone(UTC)
    total = str(Decimal(amount).scaleb(-exponent))
    times = [(begin + timedelta(seconds=float(s))).isoformat() for s in offsets]
    table = pa.table({
        "order_id": [f"{prefix}-{i:06d}" for i in range(len(chosen))],
        "customer_id": chosen,
        "ordered_at": times,
        "paid_at": times,
        "total": [total] * len(chosen),
        "status": ["paid"] * len(chosen),
        "currency": [currency] * len(chosen),
        "item_count": ["1"] * len(chosen),
    })
    return Lift(table, probability, amount)
