"""Money as integer minor units (分 / cents), never a float.

Amounts are parsed exactly from decimal text and split over lines by largest remainder.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies shops commonly sell in.
_EXPONENTS: dict[str, int] = {
    "CNY": 2, "USD": 2, "EUR": 2, "GBP": 2, "HKD": 2, "TWD": 2, "SGD": 2, "AUD": 2, "CAD": 2,
    "NZD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "MXN": 2, "BRL": 2,
    "INR": 2, "MYR": 2, "THB": 2, "PHP": 2, "IDR": 2, "AED": 2, "SAR": 2, "ZAR": 2, "TRY": 2,
    "RUB": 2, "ILS": 2, "MOP": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2,
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3,
}


def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits of ``currency`` (2 for CNY and USD, 0 for JPY)."""
    try:
        return _EXPONENTS[currency.upper()]
    except KeyError:
        raise ValueError(f"unknown currency code {currency!r}") from None


def parse_major(text: str, exponent: int) -> int | None:
    """A non-negative amount written in major units (``"12.30"``) as integer minor units, exactly.

    Empty text is 0. Returns ``None`` for anything that is not such an amount, including a value
    with more digits after the point than ``exponent`` allows (``"1.005"`` for 2): an input error
    to report, never something to round silently.
    """
    text = text.strip()
    if not text:
        return 0
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def major_text(minor: int, exponent: int) -> str:
    """Integer minor units as major-unit decimal text (``1230`` → ``"12.30"`` for exponent 2)."""
    return str(Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


def grouped_major(minor: int, exponent: int) -> str:
    """Integer minor units as major units with grouped thousands, the one display format
    (``123456789`` → ``"1,234,567.89"`` for exponent 2, ``"123,456,789"`` for 0)."""
    return f"{Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)):,}"


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split integer ``total`` over ``weights`` by largest remainder; parts sum to ``total`` exactly.

    Used to spread an order-level discount or refund over its lines so that a partial refund of
    one line returns exactly what that line was charged. Ties go to the earlier line.
    """
    if not weights:
        if total:
            raise ValueError("cannot allocate a non-zero amount over no lines")
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights = [1] * len(weights)
        weight_sum = len(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    floors = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    left = magnitude - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        floors[i] += 1
    return [sign * part for part in floors]
