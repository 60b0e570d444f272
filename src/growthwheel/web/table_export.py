"""``POST /export/table``: any table of a console page as CSV or Excel (.xlsx).

``static/app.js`` puts "CSV · Excel" links above every data table of a page; a click sends the
table as the reader sees it (header cells, then each row's cells, as text) with the CSRF token, and
saves the answer. The server writes it through the one export writer (``kit.export``: formula-like
text defused, in CSV and in the workbook alike); in the workbook, a cell that is only a number
(``1,234`` or ``-12.5``) becomes a number. Tables with their own export (the customer list) say so
with ``data-export="own"`` and get no links.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from growthwheel.api.deps import PageUser, check_csrf
from growthwheel.kit import export

router = APIRouter(include_in_schema=False)


#: Largest table a page may send (bytes of JSON), rows and columns.
MAX_BODY = 8_000_000
MAX_ROWS = 50_000
MAX_COLUMNS = 100
_NUMBER = re.compile(r"^-?\d{1,3}(,\d{3})*(\.\d+)?$|^-?\d+(\.\d+)?$")
_NAME = re.compile(r"[^\w\-]+")


def _problem(detail: str, field: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail,
                         "field": field}, status_code=400, media_type="application/problem+json")


def _cells(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_COLUMNS or not all(isinstance(v, str) for v in value):
        raise ValueError(field)
    return [v[:10_000] for v in value]


def _number(text: str) -> Any:
    """A cell that is only a number, as a number (for the workbook); other text as it is."""
    t = text.strip()
    if _NUMBER.match(t):
        plain = t.replace(",", "")
        return int(plain) if "." not in plain else float(plain)
    return text


@router.post("/export/table")
async def export_table(request: Request, user: PageUser) -> Response:
    """A page's table (JSON ``{"name", "format": "csv"|"xlsx", "header": [...], "rows": [[...]]}``,
    CSRF token in ``X-CSRF-Token``) as a file download; a 400 problem naming the field otherwise."""
    await check_csrf(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:  # refused unread
        return _problem("the table is too large to export here", "rows")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return _problem("the table is too large to export here", "rows")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return _problem("send JSON", "body")
    if not isinstance(data, dict):
        return _problem("send a JSON object", "body")
    kind = data.get("format")
    if kind not in ("csv", "xlsx"):
        return _problem("format: csv or xlsx", "format")
    try:
        header = _cells(data.get("header"), "header")
        raw_rows = data.get("rows")
        if not isinstance(raw_rows, list) or len(raw_rows) > MAX_ROWS:
            raise ValueError("rows")
        rows = [_cells(r, "rows") for r in raw_rows]
    except ValueError as exc:
        return _problem(f"{exc}: a list of text cells (at most {MAX_ROWS:,} rows, {MAX_COLUMNS} columns)",
                        str(exc))
    name = _NAME.sub("-", str(data.get("name") or "table"))[:60].strip("-") or "table"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{kind}"', "Cache-Control": "no-store"}
    if kind == "xlsx":
        content = export.xlsx_bytes(header, ([_number(c) for c in r] for r in rows), sheet=name)
        return Response(content, media_type=export.XLSX_MEDIA_TYPE, headers=headers)
    return Response("".join(export.csv_chunks(header, rows)), media_type="text/csv; charset=utf-8",
                    headers=headers)
