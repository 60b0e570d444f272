"""Vectorised text for the generic import format: money, timestamps, ids (as Arrow strings)."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from growthwheel.sim.seasons import DAY

Array = npt.NDArray[Any]

#: The shop's UTC offset. Asia/Shanghai has kept +08:00 all year since 1991.
OFFSET = "+08:00"


def _two_digits() -> Any:
    return pa.array([f"{i:02d}" for i in range(100)], type=pa.string())


@lru_cache(maxsize=1)
def _times_of_day() -> Any:
    sec = np.arange(DAY)
    two = _two_digits()
    return pc.binary_join_element_wise(
        "T", two.take(pa.array(sec // 3600)), ":", two.take(pa.array(sec // 60 % 60)), ":",
        two.take(pa.array(sec % 60)), OFFSET, "",
    )


def timestamps(start: date, seconds: Array, valid: Array | None = None) -> Any:
    """ISO 8601 shop-local timestamps with offset (``2025-06-18T00:12:03+08:00``).

    ``seconds`` counts from local midnight of ``start``; entries where ``valid`` is false are null.
    """
    seconds = np.asarray(seconds, dtype=np.int64)
    day = seconds // DAY
    first = int(day.min()) if len(day) else 0
    last = int(day.max()) if len(day) else 0
    dates = pa.array(
        [(start + timedelta(days=d)).isoformat() for d in range(first, last + 1)], type=pa.string()
    )
    out = pc.binary_join_element_wise(
        dates.take(pa.array(day - first)), _times_of_day().take(pa.array(seconds % DAY)), ""
    )
    return out if valid is None else pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))


def dates(start: date, days: Array) -> Any:
    """ISO dates for day indices counted from ``start``."""
    days = np.asarray(days, dtype=np.int64)
    if not len(days):
        return pa.array([], type=pa.string())
    first = int(days.min())
    table = pa.array(
        [(start + timedelta(days=d)).isoformat() for d in range(first, int(days.max()) + 1)],
        type=pa.string(),
    )
    return table.take(pa.array(days - first))


def money(minor: Array, valid: Array | None = None) -> Any:
    """Integer fen as major-unit text with two decimals (``1234`` -> ``"12.34"``); non-negative."""
    minor = np.asarray(minor, dtype=np.int64)
    if (minor < 0).any():
        raise ValueError("money amounts must not be negative")
    whole = pc.cast(pa.array(minor // 100), pa.string())
    cents = _two_digits().take(pa.array(minor % 100))
    out = pc.binary_join_element_wise(whole, cents, ".")
    return out if valid is None else pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))


def ids(prefix: str, numbers: Array, width: int, valid: Array | None = None) -> Any:
    """``prefix`` + zero-padded number (``C0000042``); null where ``valid`` is false."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()),
                          width, "0")
    out = pc.binary_join_element_wise(prefix, digits, "")
    return out if valid is None else pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))


def scrambled_hex(numbers: Array, digits: int = 12) -> list[str]:
    """Distinct random-looking hex ids for distinct numbers (a bijection modulo 16**digits)."""
    if not 0 < digits < 16:
        raise ValueError("between 1 and 15 hex digits")
    # Arithmetic modulo 2**64 wraps; 16**digits divides 2**64, so the result is exact.
    x = np.asarray(numbers, dtype=np.uint64)
    mixed = (x * np.uint64(0x9E3779B97F4B) + np.uint64(0x5DEECE66D)) % np.uint64(16**digits)
    return [f"{x:0{digits}x}" for x in mixed.tolist()]


def pick(values: list[str | None], index: Array) -> Any:
    """``values[index]`` as an Arrow string array (nulls where the value is ``None``)."""
    return pa.array(values, type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))


def integers(values: Array) -> Any:
    """Integers as text."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
