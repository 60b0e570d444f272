"""What every CLI module shares: consoles, date options, JSON output."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

from rich.console import Console

from growthwheel.errors import InvalidArgumentError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def parse_date(value: str | None, option: str) -> date | None:
    """``YYYY-MM-DD`` from a command-line option, or a one-line error naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError(f"{option}: {value!r} is not a date (YYYY-MM-DD)") from None


def print_json(value: Any) -> None:
    """Print ``value`` as indented UTF-8 JSON on stdout."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
