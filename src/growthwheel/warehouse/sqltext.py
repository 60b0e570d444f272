"""Small helpers of the SQL the import writes: quoted identifiers and literals, a count."""

from __future__ import annotations

import duckdb


def q(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The first column of the first row ``sql`` answers, as an integer (0 for no row)."""
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0
