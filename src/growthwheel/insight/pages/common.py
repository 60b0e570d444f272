"""Small formatting helpers shared by the insight pages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from growthwheel.insight.kpis import FIRST_DAY, LAST_DAY
from growthwheel.web.i18n import format_money


def parse_day(text: str | None) -> date | None:
    """An ISO date within the warehouse's supported range, else ``None``."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if FIRST_DAY <= day <= LAST_DAY else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _money(value: float | None, currency: str, exponent: int) -> str:
    return "–" if value is None else format_money(Decimal(str(value)), currency, places=exponent)
