"""Quarantine reasons in the reader's language.

The ingest writes a row's reason in English words (``warehouse/ingest_validate.py``,
``warehouse/rules.py``, the CSV reader's refusals); the console, the API and the CLI show it in
their reader's language through the catalogue keys below (``web/i18n/<lang>/core.json``,
``imports.reason.*``), with the values the words name as placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from growthwheel.keys import k

#: Quarantine reasons explained in the reader's language: the ingest's reason text
#: (``warehouse/ingest.py``) → catalogue key, with the values the text names as placeholders.
QUARANTINE_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"not a plain decimal number in major units \(e\.g\. 12\.30\)"),
     k("imports.reason.not_decimal")),
    (re.compile(r"amount too large"), k("imports.reason.amount_too_large")),
    (re.compile(r"more than (?P<places>\d+) decimal places for (?P<currency>\w+)"),
     k("imports.reason.decimal_places")),
    (re.compile(r"must not be negative"), k("imports.reason.negative")),
    (re.compile(r"not a whole number"), k("imports.reason.not_whole")),
    (re.compile(r"number too large"), k("imports.reason.number_too_large")),
    (re.compile(r"must be at least (?P<min>-?\d+)"), k("imports.reason.at_least")),
    (re.compile(r"must be at most (?P<max>-?\d+)"), k("imports.reason.at_most")),
    (re.compile(r"not an ISO 8601 date or date-time.*"), k("imports.reason.not_datetime")),
    (re.compile(r"year out of range 1970–2100"), k("imports.reason.year_range")),
    (re.compile(r"not an ISO date \(YYYY-MM-DD\)"), k("imports.reason.not_date")),
    (re.compile(r"not true/false \(or yes/no, 1/0\)"), k("imports.reason.not_bool")),
    (re.compile(r"not one of (?P<values>.+)"), k("imports.reason.not_one_of")),
    (re.compile(r"not valid JSON"), k("imports.reason.not_json")),
    (re.compile(r"must be a JSON object"), k("imports.reason.not_object")),
    (re.compile(r"currency differs from the shop currency (?P<currency>\w+)"), k("imports.reason.currency")),
    (re.compile(r"required value is missing"), k("imports.reason.missing")),
    (re.compile(r"contains a control or invisible character"), k("imports.reason.control_char")),
    (re.compile(r"either customer_id or anonymous_id is required"),
     k("imports.reason.customer_or_anonymous")),
    (re.compile(r"refunded_amount exceeds line_total"), k("imports.reason.refund_line")),
    (re.compile(r"refunded_amount exceeds total \+ shipping"), k("imports.reason.refund_order")),
    (re.compile(r"order (?P<order>.+) held back: its row (?P<row>\d+) was refused"),
     k("imports.reason.order_held")),
    # Rows the CSV reader refused (``formats/generic.py``): DuckDB's words after the prefix.
    (re.compile(r"unreadable row: Expected Number of Columns: (?P<expected>\d+) Found: (?P<found>\d+).*",
                re.DOTALL), k("imports.reason.row_fields")),
    (re.compile(r"unreadable row: .*", re.DOTALL), k("imports.reason.unreadable_row")),
)


def reason_text(t: Callable[..., str], reason: str | None) -> tuple[str, bool]:
    """A quarantine reason in the reader's language, and whether it was translated (an unknown
    reason is shown as the ingest wrote it, marked as English)."""
    text = (reason or "").strip()
    for pattern, key in QUARANTINE_REASONS:
        found = pattern.fullmatch(text)
        if found:
            return t(key, **found.groupdict()), True
    return text, False
