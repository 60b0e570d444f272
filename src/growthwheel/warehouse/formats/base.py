"""What every import format produces: a staging relation of text columns.

``stage(con, table, paths, relation)`` creates a temporary DuckDB table ``relation`` with

* one ``VARCHAR`` column for every input column of ``table`` (``None`` where a file lacks it),
* ``_file`` (the file's path as given), ``_file_idx`` (its position in the command, 0-based) and
  ``_row`` (1-based data row within its file, header excluded).

Values stay as written (amounts as major-unit decimal text, times as ISO 8601 text); typing and
validation happen once, for every format, in ``warehouse.ingest``. An adapter that cannot translate
a value leaves it as written so that validation quarantines it with a reason; a problem with a whole
file (unreadable, not this format, required columns missing) raises ``ImportFileError``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from growthwheel.errors import ImportFileError, MissingColumnsError
from growthwheel.keys import k
from growthwheel.warehouse.file_checks import EmptyFileError, FileNotUtf8Error, UnreadableFileError
from growthwheel.warehouse.schema import Table

Record = tuple[int, dict[str, str | None]]
"""One translated row: its 1-based data row number in the file and its generic-column values."""


def stage_records(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    files: Sequence[tuple[Path, Iterable[Record]]],
    relation: str,
) -> int:
    """Create the staging relation from translated records; return the number of rows staged."""
    names = [c.name for c in table.inputs]
    columns: dict[str, list[str | None]] = {n: [] for n in names}
    file_col: list[str] = []
    idx_col: list[int] = []
    row_col: list[int] = []
    for file_idx, (path, records) in enumerate(files):
        for row, values in records:
            unknown = set(values) - set(columns)
            if unknown:
                raise ImportFileError(f"{path}: adapter produced unknown columns {sorted(unknown)}")
            for n in names:
                value = values.get(n)
                columns[n].append(None if value is None else str(value))
            file_col.append(str(path))
            idx_col.append(file_idx)
            row_col.append(row)
    arrays = {n: pa.array(v, type=pa.string()) for n, v in columns.items()}
    arrays["_file"] = pa.array(file_col, type=pa.string())
    arrays["_file_idx"] = pa.array(idx_col, type=pa.int32())
    arrays["_row"] = pa.array(row_col, type=pa.int64())
    arrow = pa.table(arrays)  # noqa: F841  (read by DuckDB's replacement scan below)
    con.execute(f'CREATE OR REPLACE TEMP TABLE "{relation}" AS SELECT * FROM arrow')
    return len(row_col)


def require_columns(path: Path, header: Sequence[str], required: Iterable[str]) -> None:
    """Raise ``ImportFileError`` naming the file and every required header it lacks."""
    present = {h.strip() for h in header}
    missing = [r for r in required if r not in present]
    if missing:
        raise MissingColumnsError(
            f"{path}: missing required column(s) {', '.join(missing)}; found {', '.join(header)}",
            str(path), missing, header)


Row = tuple[int, dict[str, str]]
"""One data row of a shop export: its 1-based number in the file and its values by header."""


def decode(data: bytes, path: Path) -> str:
    """Text of an export: UTF-8 with BOM, else UTF-8, else GB18030 (a superset of GBK)."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError:
            raise FileNotUtf8Error(f"{path}: starts with a UTF-8 BOM but is not UTF-8", path,
                                   k("import_file.bom_lies_somewhere")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise FileNotUtf8Error(f"{path}: not a text file in UTF-8 or GBK", path,
                               k("import_file.not_utf8_gbk")) from None


def read_rows(
    path: Path,
    header_name: Callable[[str], str] = str.strip,
    cell: Callable[[str], str] = lambda value: value,
) -> tuple[list[str], list[Row]]:
    """The header and the non-blank data rows of a CSV export (numbered from 1, header excluded).

    ``header_name`` normalises each header, ``cell`` each value (e.g. unwrapping ``="…"``).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read ({exc.strerror or exc})", path,
                                  k("import_file.cannot_open")) from None
    reader = csv.reader(io.StringIO(decode(data, path), newline=""))
    try:
        records = list(reader)
    except csv.Error as exc:
        raise UnreadableFileError(f"{path}: not a readable CSV file ({exc})", path,
                                  k("import_file.unreadable_at.csv"),
                                  row=max(reader.line_num - 1, 0), line=reader.line_num) from None
    if not records or not any(c.strip() for c in records[0]):
        raise EmptyFileError(f"{path}: the file is empty (no header row)", path, k("import_file.empty"))
    header = [header_name(h) for h in records[0]]
    rows: list[Row] = []
    for number, record in enumerate(records[1:], start=1):
        if not any(c.strip() for c in record):
            continue
        values = {h: cell(record[i]) if i < len(record) else "" for i, h in enumerate(header) if h}
        rows.append((number, values))
    return header, rows


def parse_quantity(text: str) -> int | None:
    """A whole number of at least 1, or ``None``."""
    text = text.strip()
    if not re.fullmatch(r"\d+", text):
        return None
    value = int(text)
    return value if value >= 1 else None
