"""Cursor pagination: opaque cursors over a stable sort key, and the page envelope of list answers.

A cursor is the sort key of the last item a page returned, as URL-safe base64 of a small JSON
array. Clients treat it as opaque and send it back to get the next page; the next page holds the
items whose key sorts after it. Because the key is unique and the order stable, walking the pages
returns every item exactly once, even while new items arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from growthwheel.errors import InvalidArgumentError

T = TypeVar("T")

#: Page size when the client does not say.
DEFAULT_LIMIT = 50
#: Largest page size a client may ask for.
MAX_LIMIT = 500

Key = tuple[str | int, ...]


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and the cursor of the next page (``null`` on the last)."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page."
    )


def encode_cursor(key: Sequence[str | int]) -> str:
    """The opaque cursor for a sort key (a tuple of strings and integers)."""
    raw = json.dumps(list(key), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def decode_cursor(cursor: str, types: Sequence[type[str] | type[int]]) -> Key:
    """The sort key inside ``cursor``, whose parts must have ``types`` (``str`` or ``int``).

    Raises :class:`InvalidArgumentError` (422) for anything that is not a cursor this server made
    for this list.
    """
    invalid = InvalidArgumentError("cursor is not valid: pass back the next_cursor of a page")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (binascii.Error, UnicodeError, ValueError):
        raise invalid from None
    if not isinstance(value, list) or len(value) != len(types):
        raise invalid
    for part, kind in zip(value, types, strict=True):
        if type(part) is not kind:
            raise invalid
        if isinstance(part, str) and ("\x00" in part or _has_surrogate(part)):
            raise invalid  # never in a key this server wrote, and not valid in a query
        if isinstance(part, int) and not -(2**63) <= part < 2**63:
            raise invalid
    return tuple(value)


def paginate(
    rows: Sequence[T], limit: int, key: Callable[[T], Sequence[str | int]]
) -> tuple[list[T], str | None]:
    """Split rows fetched with ``limit + 1`` into the page and the cursor of the next page.

    Queries fetch one row more than the page size to learn whether a next page exists without
    counting; the cursor is the key of the last row returned (``None`` on the last page).
    """
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    return items, encode_cursor(key(items[-1]))
