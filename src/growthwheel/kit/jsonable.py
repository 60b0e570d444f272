"""Plain JSON values from what analytics return (dates, Decimal money, numpy scalars, NA)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd


def json_value(value: Any) -> Any:
    """A cell as the CLI's ``--json`` and the API print it: ISO dates, Decimal money as numbers,
    NA and non-finite floats as null."""
    if value is None or (not isinstance(value, str | list | dict | tuple) and pd.isna(value)):
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-ready dicts."""
    return [{str(k): json_value(v) for k, v in r.items()} for r in frame.to_dict(orient="records")]
