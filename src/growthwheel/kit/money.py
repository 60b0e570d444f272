"""Money as integer minor units (分 / cents), never a float.

Rounding is written down once here: half-up (away from zero) to the minor unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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


def to_minor(amount: str | Decimal | int, currency: str) -> int:
    """Convert a major-unit amount given as text (``"12.30"``) to integer minor units exactly.

    Raises ``ValueError`` if the text is not a plain decimal number or has more digits after the
    point than the currency allows (``"1.005"`` in CNY): such a value is an input error, not
    something to round silently.
    """
    exponent = currency_exponent(currency)
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {amount!r}")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount!r} has more than {exponent} decimal places for {currency}")
    return int(scaled)


def round_half_up(value: Decimal) -> int:
    """Round a Decimal number of minor units half-up (away from zero) to an integer."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_major(minor: int, currency: str) -> Decimal:
    """Integer minor units back to an exact Decimal in major units (``1230`` → ``12.30``)."""
    exponent = currency_exponent(currency)
    return Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_money(minor: int, currency: str) -> str:
    """Human text for an amount: ``12,345.60 CNY``."""
    exponent = currency_exponent(currency)
    return f"{to_major(minor, currency):,.{exponent}f} {currency}"


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
