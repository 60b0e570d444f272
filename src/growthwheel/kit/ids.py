"""The shop's rule for ids from source systems (customer, order, SKU ids): one function for every
entry point — imports (as SQL, :func:`canonical_id_sql`), the API (:data:`Id` in the
schemas), the CLI, the console and the services (:func:`canonical_id`).

**The rule.** An id is the source system's text, compared exactly — **case is part of the id** —
after two normalisations that never make two different ids of a real source system equal:

1. surrounding whitespace is removed (:data:`WHITESPACE`: spaces, tabs, line breaks, the
   no-break and full-width spaces, a byte-order mark), and
2. Unicode NFC (a letter typed as base + combining accent equals the precomposed letter; they
   are one id to any person, and the same glyphs).

An id must then be 1 to :data:`MAX_LENGTH` characters without control, invisible-format or
line-separator characters (:func:`unusable_reason`): a zero-width space inside ``C0000031`` is
refused, not silently kept as a second customer.

**Why case is kept.** The sources Growthwheel reads write each id the same way every time:
Shopify's numeric ids and ``gid://shopify/Customer/…`` (the Shopify adapter derives ids from
e-mail addresses and lower-cases those itself), Taobao's 买家会员名 as registered, the demo's
``C0000031``; and many systems issue ids where case carries information (Stripe ``cus_…``,
Salesforce 15-character ids, base-62 short ids), where folding would merge two real customers —
a worse fault than keeping apart two spellings a caller chose to send. Folding would also rewrite
every stored id in both stores. So ``c0000031`` and ``C0000031`` are two customers, exactly as
in those systems; a per-customer limit is per id. Operators looking someone up in the console
search case-insensitively (``customers.repository``), which finds either spelling.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from growthwheel.errors import InvalidArgumentError

MAX_LENGTH = 64
"""Longest id the operational store keeps (its id columns are ``VARCHAR(64)``)."""

WHITESPACE = (
    " \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
"""Characters removed around an id (Python's ``str.isspace`` set, plus the byte-order mark)."""

_UNUSABLE = {"Cc": "a control character", "Cf": "an invisible formatting character",
             "Cs": "a lone surrogate", "Co": "a private-use character", "Zl": "a line separator",
             "Zp": "a paragraph separator"}
_UNUSABLE_RE = "[\\p{Cc}\\p{Cf}\\p{Cs}\\p{Co}\\p{Zl}\\p{Zp}]"


def unusable_reason(value: str, max_length: int = MAX_LENGTH) -> str | None:
    """Why ``value`` (already normalised) cannot be an id, or ``None`` when it can."""
    if not value:
        return "must not be empty"
    if len(value) > max_length:
        return f"at most {max_length} characters"
    for char in value:
        kind = _UNUSABLE.get(unicodedata.category(char))
        if kind is not None:
            return f"contains {kind} (U+{ord(char):04X})"
    return None


def canonical_id(value: str, field: str = "customer_id", max_length: int = MAX_LENGTH) -> str:
    """``value`` as the id it stands for (trimmed, NFC); raises :class:`InvalidArgumentError`
    naming ``field`` when it cannot be an id (empty, longer than ``max_length``, control or
    invisible characters). ``max_length`` is larger only where the warehouse is read (ids the
    operational store does not keep: long anonymous ids, say)."""
    text = unicodedata.normalize("NFC", value.strip(WHITESPACE))
    reason = unusable_reason(text, max_length)
    if reason is not None:
        raise InvalidArgumentError(f"{field}: {reason}")
    return text


def _validated(value: str) -> str:
    text = unicodedata.normalize("NFC", value.strip(WHITESPACE))
    reason = unusable_reason(text)
    if reason is not None:
        raise ValueError(reason)
    return text


Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LENGTH), AfterValidator(_validated)]
"""A pydantic field holding an id under the rule (a customer, order, line or SKU id; the 422 names
the field)."""
CustomerId = Id
"""The same, for a customer id."""


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_PLAIN = "'[!-~]+'"
"""Printable ASCII without blanks: such an id is already canonical (the fast path of imports)."""
_BLANK_CODES = ", ".join(str(ord(c)) for c in WHITESPACE)


def canonical_id_sql(column: str) -> str:
    """DuckDB SQL for :func:`canonical_id`'s normalisation of ``column`` (trim, NFC; empty → NULL).
    Evaluate it once per row (as a helper column): ids of printable ASCII, most of them, are taken
    as they are; others are NFC-normalised, and trimmed only when they start or end with a blank."""
    blank_end = f"ord(left({column}, 1)) IN ({_BLANK_CODES}) OR ord(right({column}, 1)) IN ({_BLANK_CODES})"
    return (f"CASE WHEN regexp_full_match({column}, {_PLAIN}) THEN {column} "
            f"WHEN {blank_end} THEN NULLIF(nfc_normalize(trim({column}, {_sql_text(WHITESPACE)})), '') "
            f"ELSE nfc_normalize({column}) END")


def unusable_sql(column: str) -> str:
    """DuckDB SQL condition: the normalised ``column`` holds a character :func:`unusable_reason`
    refuses (length is not checked here: the warehouse keeps longer ids than the store acts on)."""
    return (f"(NOT regexp_full_match({column}, {_PLAIN}) "
            f"AND regexp_matches({column}, {_sql_text(_UNUSABLE_RE)}))")
