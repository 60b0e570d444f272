"""The one writer for every CSV export (console downloads, API exports, CLI ``--out`` files).

Data in an export comes from outside (customer ids, coupon issue keys, names in imported files),
and a spreadsheet opening the file runs any cell that starts like a formula (``=HYPERLINK(…)``,
``+cmd|…``, ``@SUM(…)``): CSV injection (OWASP). Every text cell therefore goes through
:func:`cell`, which puts a ``'`` before text that a spreadsheet would read as a formula — the
usual defence, shown by spreadsheets as plain text. Numbers stay numbers; text that is only a
signed number or a phone number (``-12.50``, ``+86 138-****-5678``) is left as written, since a
spreadsheet reads it as a number at worst, never as a call.

Write CSV with :class:`CsvWriter` / :func:`csv_chunks` (streaming) or :func:`write_csv` /
:func:`write_frame` (files). Excel workbooks (.xlsx, through openpyxl's write-only mode) come from
:func:`xlsx_bytes` / :func:`write_xlsx`: text cells go through the same :func:`cell` (so a
formula-like text is stored as the same defused string, never as a formula), numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

#: First characters that make a spreadsheet evaluate a cell (full-width forms included: some
#: spreadsheet input methods turn them into their ASCII twins).
FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
#: Signed numbers and phone numbers (some digits masked): read as numbers at worst, kept as written.
_NUMBER_OR_PHONE = re.compile(r"^[+\-\uff0b\uff0d]?[0-9][0-9 ()*.\-]*$")


def cell(value: Any) -> str:
    """``value`` as the text of one CSV cell, defused: text a spreadsheet would run as a formula
    gets a leading ``'``. ``None`` is empty; booleans are ``true`` / ``false``; times are written
    as ISO 8601: an aware time with its offset (``2024-03-05 22:07:11+08:00``, as the console
    shows it when the caller converted it to shop time), a naive one without (the caller says
    which zone in the header)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if text[:1] in FORMULA_START and not _NUMBER_OR_PHONE.match(text):
        return "'" + text
    return text


def is_defused(text: str) -> bool:
    """Whether a written cell is safe to open in a spreadsheet (what :func:`cell` guarantees)."""
    return text[:1] not in FORMULA_START or bool(_NUMBER_OR_PHONE.match(text))


class CsvWriter:
    """``csv.writer`` whose every cell goes through :func:`cell` (``\\n`` line ends, minimal quoting)."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, each value defused by :func:`cell`."""
        self._writer.writerow([cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write many rows."""
        for row in rows:
            self.writerow(row)


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], *, chunk: int = 5000) -> Iterator[str]:
    """CSV text of ``header`` then ``rows``, in pieces of about ``chunk`` rows (for streaming)."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow(header)
    pending = 0
    for row in rows:
        writer.writerow(row)
        pending += 1
        if pending >= chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.tell():
        yield buffer.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write ``header`` and ``rows`` to ``path`` (UTF-8), every cell defused; returns ``path``."""
    with path.open("w", encoding="utf-8", newline="") as out:
        for piece in csv_chunks(header, rows):
            out.write(piece)
    return path


def write_frame(frame: Any, path: Path) -> Path:
    """Write a pandas DataFrame to ``path`` as CSV (no index), every cell defused."""
    columns = [str(c) for c in frame.columns]
    rows = (
        [None if _missing(v) else v for v in row]
        for row in frame.itertuples(index=False, name=None)
    )
    return write_csv(path, columns, rows)


def _missing(value: Any) -> bool:
    """pandas' missing markers (NaN, NaT, NA) as ``None``."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and NaT are the only values unequal to themselves
    except (TypeError, ValueError):  # pandas.NA refuses bool()
        return True


# ---------------------------------------------------------------------------------------------
# Excel (.xlsx)
# ---------------------------------------------------------------------------------------------

#: Rows a worksheet holds (Excel's limit), the header included.
XLSX_MAX_ROWS = 1_048_576
#: Characters XML 1.0 cannot carry (openpyxl refuses them): dropped from text cells.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class TooManyRowsError(ValueError):
    """More rows than one worksheet holds (:data:`XLSX_MAX_ROWS`)."""


def xlsx_value(value: Any) -> Any:
    """``value`` as one worksheet cell: integers and finite floats stay numbers (a ``Decimal``
    becomes an exact-enough float only when it is whole or short; otherwise text), everything else
    is the text :func:`cell` writes to CSV (formula-like text defused), without the control
    characters XML cannot carry. ``None`` is an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return cell(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal) and value.is_finite() and len(value.as_tuple().digits) <= 15:
        return int(value) if value == value.to_integral_value() else float(value)
    text = cell(value)
    return _XML_ILLEGAL.sub("", text) or None


def _workbook(header: Sequence[str], rows: Iterable[Sequence[Any]], sheet: str) -> Any:
    from openpyxl import Workbook  # imported on use: the CLI starts without it

    book = Workbook(write_only=True)
    ws = book.create_sheet(title=_sheet_title(sheet))
    ws.append([xlsx_value(h) for h in header])
    written = 1
    for row in rows:
        written += 1
        if written > XLSX_MAX_ROWS:
            raise TooManyRowsError(f"more than {XLSX_MAX_ROWS - 1:,} rows: export CSV instead")
        ws.append([xlsx_value(v) for v in row])
    return book


def _sheet_title(name: str) -> str:
    """A worksheet title Excel accepts: 1–31 characters, none of ``[]:*?/\\``."""
    title = re.sub(r"[\[\]:*?/\\]", " ", name).strip()[:31]
    return title or "Sheet1"


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], *, sheet: str = "Sheet1") -> bytes:
    """An .xlsx workbook of one worksheet (``header`` then ``rows``), every cell through
    :func:`xlsx_value`. Raises :class:`TooManyRowsError` past Excel's row limit."""
    out = io.BytesIO()
    _workbook(header, rows, sheet).save(out)
    return out.getvalue()


def write_xlsx(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]], *,
               sheet: str = "Sheet1") -> Path:
    """Write ``header`` and ``rows`` to ``path`` as an .xlsx workbook; returns ``path``."""
    _workbook(header, rows, sheet).save(path)
    return path


#: Media type of an .xlsx download.
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
