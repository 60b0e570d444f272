"""The generic format: CSV, Parquet or JSON Lines with the columns named in ``schema.py``.

DuckDB reads the files (every column as text), so staging runs at DuckDB's own reading speed.
Header names are matched case-insensitively; unknown columns are ignored and reported.
Rows that CSV parsing itself rejects (wrong number of fields, bad quoting) are not dropped: they
are returned as quarantine entries with their row number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from growthwheel.errors import ImportFileError
from growthwheel.warehouse.schema import Table

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}


@dataclass
class Staged:
    """What staging found besides the rows: ignored columns and rows the reader refused."""

    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[tuple[str, int, str, str]] = field(default_factory=list)
    """(file, row, raw line, reason) for rows the CSV reader could not parse."""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _source(path: Path) -> tuple[str, str]:
    """The DuckDB table function reading ``path`` and the kind of file."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return (
            f"read_csv({_literal(str(path))}, all_varchar = true, header = true, "
            "store_rejects = true, rejects_table = 'gw_rejects', rejects_scan = 'gw_reject_scans')",
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
    raise ImportFileError(
        f"{path}: unknown file type {suffix or '(none)'}; use .csv, .parquet or .jsonl"
    )


def stage(
    con: duckdb.DuckDBPyConnection, table: Table, paths: Sequence[Path], relation: str
) -> Staged:
    """Create the staging relation from generic files (see ``formats/base.py``)."""
    staged = Staged()
    if len(paths) == 1:
        _stage_file(con, table, paths[0], 0, relation, staged)
        return staged
    parts: list[str] = []
    for file_idx, path in enumerate(paths):
        part = f"{relation}_{file_idx}"
        _stage_file(con, table, path, file_idx, part, staged)
        parts.append(f"SELECT * FROM {_quote(part)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_quote(relation)} AS {' UNION ALL '.join(parts)}")
    for file_idx in range(len(paths)):
        con.execute(f"DROP TABLE {_quote(f'{relation}_{file_idx}')}")
    return staged


def _stage_file(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    path: Path,
    file_idx: int,
    part: str,
    staged: Staged,
) -> None:
    source, kind = _source(path)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        hint = " (generic CSV must be UTF-8; Taobao exports in GBK: --format taobao)" if (
            "unicode" in str(exc).lower()
        ) else ""
        raise ImportFileError(f"{path}: cannot read as {kind}: {_first_line(exc)}{hint}") from exc
    header = [str(row[0]) for row in described if row[0] != "file_row_number"]
    by_lower = {h.strip().lower(): h for h in header}
    missing = [c for c in table.required if c not in by_lower]
    if missing:
        raise ImportFileError(
            f"{path}: missing required column(s) {', '.join(missing)} for table "
            f"{table.name}; found {', '.join(header) or 'no columns'}"
        )
    known = {c.name for c in table.inputs}
    ignored = [h for h in header if h.strip().lower() not in known]
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
    seq = "file_row_number + 1" if kind == "parquet" else "row_number() OVER ()"
    if kind == "csv":
        con.execute("DROP TABLE IF EXISTS gw_rejects")
        con.execute("DROP TABLE IF EXISTS gw_reject_scans")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_quote(part)} AS SELECT {', '.join(cols)}, "
            f"{_literal(str(path))} AS _file, {file_idx}::INTEGER AS _file_idx, "
            f"({seq})::BIGINT AS _row FROM {source}"
        )
    except duckdb.Error as exc:
        raise ImportFileError(f"{path}: cannot read as {kind}: {_first_line(exc)}") from exc
    if kind == "csv":
        _renumber_around_rejects(con, path, part, staged)


def _renumber_around_rejects(
    con: duckdb.DuckDBPyConnection, path: Path, part: str, staged: Staged
) -> None:
    """Keep every row's own number when the CSV reader refused some rows.

    ``row_number()`` counts only the rows read; the k-th row read is data row
    ``k + #{j : r_j - j < k}`` where ``r_1 < r_2 < ...`` are the refused rows' numbers.
    """
    encoding = con.execute(
        "SELECT min(line) - 1 FROM gw_rejects WHERE error_type = 'INVALID ENCODING'"
    ).fetchone()
    if encoding and encoding[0] is not None:
        raise ImportFileError(
            f"{path}: not UTF-8 text (first at row {encoding[0]}); save it as UTF-8, "
            "or import a Taobao export (GBK) with --format taobao"
        )
    rejects = con.execute(
        "SELECT line - 1 AS row, any_value(csv_line), list(error_message)[1] "
        "FROM gw_rejects GROUP BY line ORDER BY line"
    ).fetchall()
    if not rejects:
        return
    for row, line, message in rejects:
        staged.rejected.append((str(path), int(row), str(line), f"unreadable row: {message}"))
    offsets = [int(row) - j for j, (row, _, _) in enumerate(rejects, start=1)]
    con.execute("CREATE OR REPLACE TEMP TABLE gw_offsets (o BIGINT)")
    con.executemany("INSERT INTO gw_offsets VALUES (?)", [[o] for o in offsets])
    con.execute(
        f"UPDATE {_quote(part)} SET _row = _row + "
        f"(SELECT count(*) FROM gw_offsets WHERE o < {_quote(part)}._row)"
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
