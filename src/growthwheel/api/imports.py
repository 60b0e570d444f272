"""REST endpoints for imports: upload files → a background import job; jobs; quarantined rows.

Uploads live only as long as their import (``warehouse/uploads.py``): results, quarantine entries
and errors name a file as the client did, never by its server path. Quarantined values are shown
with e-mail addresses and phone numbers masked to callers that may not see personal data
(analysts), raw rows included (:func:`shown_value`).

An upload is saved under ``<data_dir>/uploads/<upload id>/`` and handed to the server's warehouse
owner (``warehouse/owner.py``, reached through ``api/warehouse.py``), which runs the import in the
background (the server process owns the DuckDB warehouse while it runs). The request answers
``202`` with the job at once; clients poll ``GET /imports/{id}`` for its phase and fraction, then
its counts and quarantine report.

Uploads are limited in size (:data:`MAX_UPLOAD_BYTES`, ``413`` beyond): the limit is checked
against ``Content-Length`` before anything is read and again while the body streams in, so an
oversized upload is refused without being stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message

from growthwheel.accounts.service import audit, mask_contacts, mask_email, mask_phone
from growthwheel.api.deps import DbSession, Principal, check_csrf, require_scope
from growthwheel.api.errors import request_language
from growthwheel.api.warehouse import warehouse
from growthwheel.config import Settings
from growthwheel.errors import GrowthwheelError, InvalidArgumentError, NoDataError
from growthwheel.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode_cursor, paginate
from growthwheel.warehouse import uploads
from growthwheel.warehouse.db import QUARANTINE_TABLE
from growthwheel.warehouse.file_checks import FileTypeProblem
from growthwheel.warehouse.formats.generic import CSV_SUFFIXES, JSON_SUFFIXES, PARQUET_SUFFIXES
from growthwheel.warehouse.ingest import FORMATS
from growthwheel.warehouse.jobs import ImportJob
from growthwheel.warehouse.owner import WarehouseOwner
from growthwheel.warehouse.schema import TABLES, resolve_table
from growthwheel.web.i18n import DEFAULT_LANG, k, translator

router = APIRouter(prefix="/api/v1", tags=["imports"])

#: Largest request body an upload may have (all files together).
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
#: Files one upload may carry.
MAX_FILES = 20
#: Quarantined rows shown with a job (the rest through ``GET /quarantine``).
JOB_QUARANTINE_ROWS = 1000
UPLOADS_DIR = uploads.UPLOADS_DIR

_GENERIC_SUFFIXES = CSV_SUFFIXES | PARQUET_SUFFIXES | JSON_SUFFIXES


# --------------------------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------------------------


class TableCountsOut(BaseModel):
    """What an import did to one table."""

    inserted: int
    updated: int
    unchanged: int


class ImportResultOut(BaseModel):
    """The outcome of a finished import."""

    import_id: str = Field(description="The import run, as in `_imports` and `_quarantine`.")
    table: str
    format: str
    files: list[str]
    rows_read: int
    rows_quarantined: int
    superseded: int = Field(description="Valid rows replaced by a later row with the same key.")
    tables: dict[str, TableCountsOut]
    ignored_columns: dict[str, list[str]] = Field(default_factory=dict)
    seconds: float
    header_only: list[str] = Field(default_factory=list, description=(
        "Files with a header row and no data row: nothing was imported from them."))


class QuarantineRow(BaseModel):
    """A value an import refused, with where it was and why."""

    import_id: str
    table_name: str
    file: str
    row_number: int | None
    column_name: str | None
    value: str | None = Field(description=(
        "The value as written (a whole row when the CSV reader refused it); e-mail addresses and "
        "phone numbers masked unless the caller may see them."))
    reason: str | None
    quarantined_at: datetime | None


class ImportJobOut(BaseModel):
    """A background import: where it is, and its result once done."""

    id: str
    status: Literal["queued", "running", "done", "failed"]
    phase: str | None = Field(description="What the import is doing now.")
    fraction: float | None = Field(description="Share of the current phase done (0–1), null when unknown.")
    table: str
    format: str
    files: list[str] = Field(description="The files, named as they were uploaded.")
    error: str | None = Field(default=None, description="Why the import failed.")
    error_code: str | None = Field(default=None, description="Stable code of the failure.")
    error_file: str | None = Field(default=None, description="The file a failure is about, as uploaded.")
    error_row: int | None = Field(default=None, description=(
        "The data row a failure is about (1 = the first row after the header; 0 = the header)."))
    problem: dict[str, Any] | None = Field(default=None, description=(
        "A failure as RFC 9457 problem+json (`code`, `detail` in the client's `Accept-Language`, "
        "`file`, `row`)."))
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: ImportResultOut | None = Field(default=None, description="Counts, once done.")


class ImportJobDetail(ImportJobOut):
    """A job with its quarantine report."""

    quarantine: list[QuarantineRow] = Field(
        default_factory=list, description=f"Rows refused by this import (first {JOB_QUARANTINE_ROWS})."
    )
    quarantine_total: int = 0


class ImportJobList(BaseModel):
    """Recent import jobs, newest first."""

    items: list[ImportJobOut]


class QuarantinePage(Page[QuarantineRow]):
    """Quarantined rows, newest import first; follow ``next_cursor``."""


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def safe_filename(name: str | None, index: int) -> str:
    """An uploaded file's name made safe to store: no directories, no odd characters, extension kept."""
    return uploads.stored_name(name, index)


#: What a failure the server did not foresee says to clients (the details are in the server's log).
INTERNAL_FAILURE = "the import failed on the server (see the server's log); nothing was written"


def job_error(job: ImportJob) -> str | None:
    """A failed job's error as clients see it: files named as uploaded, no server path, and an
    unforeseen failure reduced to :data:`INTERNAL_FAILURE`."""
    if job.error is None:
        return None
    if job.error_code == "internal_error":
        return INTERNAL_FAILURE
    message = job.error
    shown = job.shown_files
    for path, name in sorted(zip(job.files, shown, strict=False), key=lambda p: len(p[0]), reverse=True):
        message = message.replace(path, name)
    return message


def shown_value(column: str | None, value: str | None, can_see_pii: bool) -> str | None:
    """A quarantined value as a caller sees it: as written, or for callers that may not see
    personal data with e-mail addresses and phone numbers masked (a raw row's too)."""
    if can_see_pii or value is None:
        return value
    if column == "email":
        return mask_email(value)
    if column == "phone":
        return mask_phone(value)
    return mask_contacts(value)


def job_error_in(job: ImportJob, lang: str) -> str | None:
    """A failed job's error in ``lang``: English as :func:`job_error` (``file: reason``), another
    language from the catalogues when the failure's words are there (files named as uploaded)."""
    if lang != DEFAULT_LANG:
        translated = job.error_in(translator(lang))
        if translated is not None:
            return translated
    return job_error(job)


def _problem_of(job: ImportJob, lang: str) -> dict[str, Any] | None:
    """A failed job's problem+json object (``detail`` in ``lang``)."""
    if job.status != "failed" or job.error is None:
        return None
    code = job.error_code or "import_failed"
    row = job.error_values.get("row")
    return {"type": f"/problems/{code}", "title": code.replace("_", " ").capitalize(),
            "status": job.error_status or 422, "code": code, "detail": job_error_in(job, lang),
            "file": job.error_file_shown, "row": int(row) if row is not None else None}


def _job_out(job: ImportJob, cfg: Settings, lang: str = DEFAULT_LANG) -> dict[str, Any]:
    """The public fields of an owner's job (files named as uploaded, never by server path; a
    failure in ``lang``)."""
    shown = job.shown_files
    result = None
    if job.result is not None:
        data = job.result.to_dict()
        result = {**data, "files": shown,
                  "ignored_columns": {Path(k).name: v for k, v in job.result.ignored_columns.items()},
                  "header_only": [Path(n).name for n in job.result.header_only]}
    row = job.error_values.get("row") if job.status == "failed" else None
    return {
        "id": job.id,
        "status": job.status,
        "phase": job.phase,
        "fraction": job.fraction,
        "table": job.table,
        "format": job.format,
        "files": shown,
        "error": job_error_in(job, lang),
        "error_code": job.error_code,
        "error_file": job.error_file_shown if job.status == "failed" else None,
        "error_row": int(row) if row is not None else None,
        "problem": _problem_of(job, lang),
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "result": result,
    }


class JobNotFoundError(NoDataError):
    """No import job with that id on this server (jobs are kept until it restarts)."""

    code = "import_not_found"
    status = 404


def _job(owner: WarehouseOwner, job_id: str) -> ImportJob:
    job = owner.job(job_id)
    if job is None:
        raise JobNotFoundError(f"no import job {job_id!r} (jobs are kept until the server restarts)")
    return job


def _quarantine_row(row: dict[str, Any], can_see_pii: bool) -> QuarantineRow:
    when = row.get("quarantined_at")
    if isinstance(when, datetime) and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return QuarantineRow(**{**row, "file": Path(str(row["file"])).name, "quarantined_at": when,
                            "value": shown_value(row["column_name"], row["value"], can_see_pii)})


_QUARANTINE_KEY_TYPES = (str, str, str, int, str, str)


def _quarantine_query(con: Any, *, table: str | None = None, import_id: str | None = None) -> Any:
    """``_quarantine`` filtered, with its sort key made null-free (the time as fixed-width text)."""
    q = con.table(QUARANTINE_TABLE)
    if table is not None:
        q = q.filter(q.table_name == table)
    if import_id is not None:
        q = q.filter(q.import_id == import_id)
    return q.mutate(
        _k_time=q.quarantined_at.strftime("%Y-%m-%d %H:%M:%S.%f").fill_null(""),
        _k_import=q.import_id.fill_null(""),
        _k_file=q.file.fill_null(""),
        _k_row=q.row_number.fill_null(-1),
        _k_col=q.column_name.fill_null(""),
        _k_reason=q.reason.fill_null(""),
    )


def _after(q: Any, key: Sequence[str | int]) -> Any:
    """Rows after ``key`` in the order time and import DESC (newest first), then file, row,
    column and reason ASC."""
    when, imp, file, row, col, reason = key
    rest = (
        (q._k_file > file)
        | ((q._k_file == file) & (q._k_row > row))
        | ((q._k_file == file) & (q._k_row == row) & (q._k_col > col))
        | ((q._k_file == file) & (q._k_row == row) & (q._k_col == col) & (q._k_reason > reason))
    )
    older = (q._k_time < when) | ((q._k_time == when) & (q._k_import < imp))
    return q.filter(older | ((q._k_time == when) & (q._k_import == imp) & rest))


def _quarantine_rows(q: Any, limit: int) -> list[dict[str, Any]]:
    ordered = q.order_by([q._k_time.desc(), q._k_import.desc(), "_k_file", "_k_row", "_k_col", "_k_reason"])
    result: list[dict[str, Any]] = ordered.limit(limit).to_pyarrow().to_pylist()
    return result


def _quarantine_key(row: dict[str, Any]) -> tuple[str | int, ...]:
    return tuple(row[k] for k in ("_k_time", "_k_import", "_k_file", "_k_row", "_k_col", "_k_reason"))


class UploadTooLargeError(GrowthwheelError):
    """An upload larger than the server accepts (413; its words in the client's language)."""

    code = "too_large"
    status = 413


async def limited_form(request: Request, limit: int | None = None) -> Request:
    """``request`` with its multipart form read, refusing (413) a body larger than ``limit`` bytes.

    The returned request holds the parsed form (``await it.form()``), for the CSRF check too.
    ``limit`` defaults to the app's ``max_upload_bytes`` (tests lower it), else 200 MB. Used by the
    API's and the console's upload alike.
    """
    if limit is None:
        limit = int(getattr(request.app.state, "max_upload_bytes", MAX_UPLOAD_BYTES))
    length = request.headers.get("content-length")
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} B"
    too_large = UploadTooLargeError.coded(k("import_file.too_large"), size=size)
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    received = 0
    receive = request.receive

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large
        return message

    limited = Request(request.scope, counting_receive)
    await limited.form(max_files=MAX_FILES, max_fields=20)
    return limited


def _save(files: list[UploadFile], folder: Path) -> list[Path]:
    return [uploads.save(upload.file, folder, upload.filename, index)
            for index, upload in enumerate(files, start=1)]


def upload_names(files: list[UploadFile]) -> list[str]:
    """The names results and errors give the uploaded files: as the client named them, a repeated
    name numbered (``orders.csv``, ``orders (2).csv``)."""
    names: list[str] = []
    for index, upload in enumerate(files, start=1):
        name = uploads.display_name(upload.filename, index)
        stem, dot, suffix = name.rpartition(".")
        candidate, n = name, 1
        while candidate in names:
            n += 1
            candidate = f"{stem} ({n}).{suffix}" if dot and stem else f"{name} ({n})"
        names.append(candidate)
    return names


# --------------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------------

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["table", "files"],
                    "properties": {
                        "table": {"type": "string", "enum": sorted(TABLES), "description": "Target table."},
                        "format": {"type": "string", "enum": list(FORMATS), "default": "generic"},
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more files (CSV, Parquet or JSON Lines for `generic`).",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/imports",
    summary="Upload files to import",
    status_code=202,
    response_model=ImportJobOut,
    openapi_extra=_UPLOAD_BODY,
    responses={
        401: {"description": "Not authenticated (problem+json)."},
        403: {"description": "Missing the `ingest` scope (problem+json)."},
        413: {"description": f"Upload larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB (problem+json)."},
        422: {"description": "Unknown table or format, no files, unsupported file type (problem+json)."},
    },
)
async def create_import(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("ingest"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    session: DbSession,
) -> dict[str, Any]:
    """Save the uploaded files and start a background import; answers the job at once (202).

    Called from the console with the session cookie, the CSRF token goes in the ``X-CSRF-Token``
    header or the form's ``csrf_token`` field; API keys need none.
    """
    cfg: Settings = request.app.state.cfg
    limited = await limited_form(request)
    try:
        await check_csrf(limited)  # a browser session must send its token; API keys need none
        table, fmt, files = _upload_fields(await limited.form())
        names = upload_names(files)
        folder = await run_in_threadpool(uploads.new_folder, cfg.data_dir)
        try:
            paths = await run_in_threadpool(_save, files, folder)
            # The folder goes when the import ends, done or failed (the quarantine keeps its values).
            job_id = owner.submit_import(table, paths, fmt, names=names,
                                         on_done=lambda _job: uploads.discard(folder))
        except BaseException:
            uploads.discard(folder)
            raise
    finally:
        await limited.close()  # the parsed form's temporary files
    audit(session, principal, "import.submit", f"import:{job_id}",
          {"table": table, "format": fmt, "files": names})
    return _job_out(_job(owner, job_id), cfg, request_language(request))


def _upload_fields(form: FormData) -> tuple[str, str, list[UploadFile]]:
    """The table, format and files of an upload form, checked (422 when unusable)."""
    table_name = form.get("table")
    fmt = form.get("format") or "generic"
    if not isinstance(table_name, str) or not table_name:
        raise InvalidArgumentError.coded("import_file.need_table", field="table")
    try:
        table = resolve_table(table_name).name
    except KeyError:
        raise InvalidArgumentError.coded("import_file.unknown_table", field="table", table=table_name,
                                         tables=", ".join(TABLES)) from None
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise InvalidArgumentError.coded("import_file.unknown_format", field="format",
                                         formats=", ".join(FORMATS))
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise InvalidArgumentError.coded("import_file.no_files", field="files")
    if fmt == "generic":
        for upload in files:
            suffix = Path(upload.filename or "").suffix.lower()
            if suffix not in _GENERIC_SUFFIXES:
                raise FileTypeProblem(
                    f"files: {upload.filename!r} is not a .csv, .parquet or .jsonl file",
                    uploads.display_name(upload.filename, 1), k("import_file.file_type"),
                    suffix=suffix or "–")
    return table, fmt, files


@router.get("/imports", summary="Recent import jobs", response_model=ImportJobList)
def list_imports(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The import jobs this server ran or is running, newest first."""
    cfg: Settings = request.app.state.cfg
    lang = request_language(request)
    return {"items": [_job_out(job, cfg, lang) for job in owner.jobs()[:limit]]}


@router.get(
    "/imports/{job_id}",
    summary="An import job with its result and quarantine report",
    response_model=ImportJobDetail,
    responses={404: {"description": "Unknown job (problem+json, code `import_not_found`)."}},
)
def get_import(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    job_id: str,
) -> dict[str, Any]:
    """The job's status, phase and fraction; once done its counts and the rows it quarantined."""
    cfg: Settings = request.app.state.cfg
    out = _job_out(_job(owner, job_id), cfg, request_language(request))
    result = out["result"]
    if result is not None:
        with owner.read() as con:
            q = _quarantine_query(con, import_id=result["import_id"])
            out["quarantine_total"] = int(q.count().execute())
            out["quarantine"] = [_quarantine_row(r, principal.can_see_pii)
                                 for r in _quarantine_rows(q, JOB_QUARANTINE_ROWS)]
    return out


@router.get("/quarantine", summary="Quarantined rows", response_model=QuarantinePage)
def list_quarantine(
    request: Request,
    principal: Annotated[Principal, Depends(require_scope("read"))],
    owner: Annotated[WarehouseOwner, Depends(warehouse)],
    table: Annotated[str | None, Query(description="Only rows meant for this table.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> QuarantinePage:
    """Rows refused by imports, newest import first, then by file, row and column."""
    table_name = None
    if table:
        try:
            table_name = resolve_table(table).name
        except KeyError as exc:
            raise InvalidArgumentError(f"table: {exc.args[0]}") from None
    key = decode_cursor(cursor, _QUARANTINE_KEY_TYPES) if cursor else None
    with owner.read() as con:
        q = _quarantine_query(con, table=table_name)
        if key is not None:
            q = _after(q, key)
        fetched = _quarantine_rows(q, limit + 1)
    page, next_cursor = paginate(fetched, limit, _quarantine_key)
    return QuarantinePage(items=[_quarantine_row(r, principal.can_see_pii) for r in page],
                          next_cursor=next_cursor)
