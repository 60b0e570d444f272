"""A win-back journey with a known true effect, for the demo and for checking the journey report.

The world reacts to what the journey did: each enrolled customer independently places one paid
order of ``amount`` minor units within ``days`` of entering with probability ``base_rate``
(held out: nobody contacted them) or ``base_rate + effect`` (they got the win-back coupon and
message). The true effect on 30-day reactivation is therefore ``effect`` (absolute, in expectation)
and on revenue per entrant ``effect × amount``; :func:`write_truth` records both in
``ground_truth.json`` under ``journeys.winback``. The orders come out as warehouse ``orders`` rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WinbackTruth:
    """The true parameters of the simulated reaction to the win-back journey."""

    base_rate: float = 0.10
    effect: float = 0.08
    amount: int = 12_000
    days: int = 30

    def __post_init__(self) -> None:
        if not (0 <= self.base_rate <= 1 and 0 <= self.base_rate + self.effect <= 1):
            raise ValueError("base_rate and base_rate + effect must be probabilities")

    @property
    def revenue_per_entrant(self) -> float:
        """True effect on revenue per entrant within the window (minor units)."""
        return self.effect * self.amount


@dataclass(frozen=True)
class Entrant:
    """An enrolment as the simulator sees it."""

    customer_id: str
    held_out: bool
    entered_at: datetime


def reactivation_orders(
    entrants: Sequence[Entrant], truth: WinbackTruth, *, seed: int, prefix: str = "winback"
) -> list[dict[str, Any]]:
    """The paid orders the entrants place in reaction (warehouse ``orders`` columns, naive UTC)."""
    rng = np.random.default_rng(seed)
    draws = rng.random(len(entrants))
    offsets = rng.random(len(entrants)) * truth.days * 86_400
    out: list[dict[str, Any]] = []
    for n, (who, draw, offset) in enumerate(zip(entrants, draws, offsets, strict=True)):
        rate = truth.base_rate + (0.0 if who.held_out else truth.effect)
        if draw >= rate:
            continue
        at = (who.entered_at.astimezone(UTC) + timedelta(seconds=float(offset))).replace(tzinfo=None)
        out.append(
            {
                "order_id": f"{prefix}-{n:06d}",
                "customer_id": who.customer_id,
                "ordered_at": at,
                "order_date": at.date(),
                "status": "paid",
                "total_amount": truth.amount,
            }
        )
    return out


def write_truth(path: Path, truth: WinbackTruth, *, journey: str = "win-back") -> None:
    """Add (or replace) ``journeys.winback`` in ``ground_truth.json`` at ``path``."""
    data: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.exists() else {}
    data.setdefault("journeys", {})["winback"] = {
        "journey": journey,
        **asdict(truth),
        "true_effect_on_reactivation": truth.effect,
        "true_effect_on_revenue_per_entrant": truth.revenue_per_entrant,
        "meaning": "each entrant orders once within `days` of entering with probability base_rate "
        "(held out) or base_rate + effect (treated)",
    }
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")
