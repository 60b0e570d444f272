"""The generic format: CSV, Parquet or JSON Lines with the columns named in ``schema.py``.

DuckDB reads the files (every column as text). Staging only defines a view over the files, so the
validation pass reads each file exactly once, at DuckDB's own reading speed. Header names are
matched case-insensitively; unknown columns are ignored and reported. Rows that CSV parsing itself
rejects (wrong number of fields, bad quoting) are not dropped: once the file has been read,
``after_scan`` returns them as quarantine entries with their row number and renumbers the rows
read around them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from growthwheel.errors import MissingColumnsError
from growthwheel.keys import k
from growthwheel.warehouse.file_checks import (
    UNREADABLE,
    UNREADABLE_AT,
    FileNotUtf8Error,
    FileTypeProblem,
    UnreadableFileError,
)
from growthwheel.warehouse.schema import Table

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}


@dataclass
class Staged:
    """What staging found besides the rows: ignored columns and rows the reader refused."""

    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[tuple[str, int, str, str]] = field(default_factory=list)
    """(file, row, raw line, reason) for rows the CSV reader could not parse (after the scan)."""
    csv_files: list[tuple[Path, int]] = field(default_factory=list)
    """CSV files read with a rejects table: (path, file index)."""
    unnumbered: list[int] = field(default_factory=list)
    """Files (by index) whose rows are numbered after the scan, from their order of arrival."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source(path: Path, file_idx: int) -> tuple[str, str]:
    """The DuckDB table function reading ``path`` and the kind of file."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return (
            f"read_csv({_literal(str(path))}, all_varchar = true, header = true, "
            f"store_rejects = true, rejects_table = 'gw_rejects_{file_idx}', "
            f"rejects_scan = 'gw_reject_scans_{file_idx}')",
            "csv",
        )
    if suffix in PARQUET_SUFFIXES:
        return f"read_parquet({_literal(str(path))}, file_row_number = true)", "parquet"
    if suffix in JSON_SUFFIXES:
        return (
            f"read_json({_literal(str(path))}, format = 'newline_delimited', records = true, "
            "maximum_depth = 1)",
            "json",
        )
    raise FileTypeProblem(
        f"{path}: unknown file type {suffix or '(none)'}; use .csv, .parquet or .jsonl", path,
        k("import_file.file_type"), suffix=suffix or "–")


def stage(
    con: duckdb.DuckDBPyConnection, table: Table, paths: Sequence[Path], relation: str
) -> Staged:
    """Define the staging view ``relation`` over generic files (see ``formats/base.py``)."""
    staged = Staged()
    parts = [_stage_file(con, table, path, file_idx, staged) for file_idx, path in enumerate(paths)]
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(relation)} AS {' UNION ALL '.join(parts)}")
    return staged


def _stage_file(
    con: duckdb.DuckDBPyConnection, table: Table, path: Path, file_idx: int, staged: Staged
) -> str:
    """The SELECT reading one file as the staging columns."""
    source, kind = _source(path, file_idx)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        if "unicode" in str(exc).lower():
            raise FileNotUtf8Error(
                f"{path}: cannot read as {kind}: {_first_line(exc)} (generic CSV must be UTF-8; "
                "Taobao exports in GBK: --format taobao)", path, k("import_file.not_utf8_somewhere"),
            ) from exc
        found = re.search(r"\bline (\d+)", str(exc))
        line = _first_bad_json_line(path) if kind == "json" else int(found.group(1)) if found else None
        if line is None:
            raise UnreadableFileError(f"{path}: cannot read as {kind}: {_first_line(exc)}", path,
                                      UNREADABLE[kind]) from exc
        raise UnreadableFileError(  # JSON Lines have no header: line n is row n
            f"{path}: cannot read as {kind} (at line {line}): {_first_line(exc)}", path,
            UNREADABLE_AT[kind], row=line if kind == "json" else line - 1, line=line) from exc
    header = [str(row[0]) for row in described if row[0] != "file_row_number"]
    by_lower = {_header_key(h): h for h in header}
    missing = [c for c in table.required if c not in by_lower]
    if missing:
        raise MissingColumnsError(
            f"{path}: missing required column(s) {', '.join(missing)} for table "
            f"{table.name}; found {', '.join(header) or 'no columns'}", str(path), missing, header)
    known = {c.name for c in table.inputs}
    ignored = [h for h in header if _header_key(h) not in known]
    if ignored:
        staged.ignored_columns[str(path)] = ignored
    cols = []
    for column in table.inputs:
        if column.name not in by_lower:
            cols.append(f"NULL::VARCHAR AS {_quote(column.name)}")
            continue
        src = _quote(by_lower[column.name])
        if kind == "json":
            # Nested values (e.g. ``properties``) keep their JSON text; scalars become plain text.
            expr = (
                f"CASE WHEN json_type({src}) IN ('OBJECT', 'ARRAY') "
                f"THEN {src}::VARCHAR ELSE {src}->>'$' END"
            )
        else:
            expr = f"{src}::VARCHAR"
        cols.append(f"{expr} AS {_quote(column.name)}")
    # Parquet knows its row numbers. For CSV and JSON a row_number() window would hold the whole
    # file in memory before anything else happens; rows are numbered after the scan instead, from
    # the order they were stored in (DuckDB preserves insertion order).
    seq = "file_row_number + 1" if kind == "parquet" else "NULL"
    if kind != "parquet":
        staged.unnumbered.append(file_idx)
    if kind == "csv":
        con.execute(f"DROP TABLE IF EXISTS gw_rejects_{file_idx}")
        con.execute(f"DROP TABLE IF EXISTS gw_reject_scans_{file_idx}")
        staged.csv_files.append((path, file_idx))
    return (
        f"SELECT {', '.join(cols)}, {_literal(str(path))} AS _file, {file_idx}::INTEGER AS _file_idx, "
        f"({seq})::BIGINT AS _row FROM {source}"
    )


def after_scan(con: duckdb.DuckDBPyConnection, staged: Staged, scanned: str) -> None:
    """Once the files have been read into ``scanned``: collect the rows the CSV reader refused and
    give every row read its own number in its file.

    Rows are first numbered 1, 2, … per file in the order they were read; the k-th row read is
    then data row ``k + #{j : r_j - j < k}`` where ``r_1 < r_2 < ...`` are the refused rows' numbers.
    """
    if staged.unnumbered:
        files = ", ".join(str(i) for i in staged.unnumbered)
        firsts = con.execute(
            f"SELECT _file_idx, min(rowid) FROM {_quote(scanned)} WHERE _file_idx IN ({files}) GROUP BY 1"
        ).fetchall()
        if firsts:
            first = " ".join(f"WHEN {idx} THEN {start}" for idx, start in firsts)
            con.execute(
                f"UPDATE {_quote(scanned)} SET _row = rowid + 1 - (CASE _file_idx {first} END) "
                f"WHERE _file_idx IN ({files})"
            )
    for path, file_idx in staged.csv_files:
        rejects_table = f"gw_rejects_{file_idx}"
        if not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [rejects_table]
        ).fetchone()[0]:  # type: ignore[index]
            continue
        encoding = con.execute(
            f"SELECT min(line) - 1 FROM {rejects_table} WHERE error_type = 'INVALID ENCODING'"
        ).fetchone()
        if encoding and encoding[0] is not None:
            raise FileNotUtf8Error(
                f"{path}: not UTF-8 text (first at row {encoding[0]}); save it as UTF-8, "
                "or import a Taobao export (GBK) with --format taobao", path,
                k("import_file.not_utf8"), row=int(encoding[0]))
        rejects = con.execute(
            f"SELECT line - 1 AS row, any_value(csv_line), list(error_message)[1] "
            f"FROM {rejects_table} GROUP BY line ORDER BY line"
        ).fetchall()
        if not rejects:
            continue
        for row, line, message in rejects:
            staged.rejected.append((str(path), int(row), str(line), f"unreadable row: {message}"))
        offsets = [int(row) - j for j, (row, _, _) in enumerate(rejects, start=1)]
        con.execute("CREATE OR REPLACE TEMP TABLE gw_offsets (o BIGINT)")
        con.executemany("INSERT INTO gw_offsets VALUES (?)", [[o] for o in offsets])
        con.execute(
            f"UPDATE {_quote(scanned)} SET _row = _row + "
            f"(SELECT count(*) FROM gw_offsets WHERE o < {_quote(scanned)}._row) "
            f"WHERE _file_idx = {file_idx}"
        )


def _first_bad_json_line(path: Path) -> int | None:
    """The first line of a JSON Lines file that is not one JSON object (1-based), if any (DuckDB's
    own count is one off)."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError:
                    return number
                if not isinstance(value, dict):
                    return number
    except OSError:
        return None
    return None


def _header_key(name: str) -> str:
    """A header as matched against the table's columns: blanks, any stray byte-order mark
    (a file saved twice with one) and case ignored."""
    return name.replace("\ufeff", "").strip().lower()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
