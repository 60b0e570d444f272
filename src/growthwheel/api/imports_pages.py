"""Console pages of imports, beside the imports API they front (``api/imports.py``): ``/imports``
(upload form and the latest imports) and ``/imports/{job}`` (progress, polled every second by HTMX
until the job is done, then its counts and quarantined rows). Templates under
``templates/imports/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import ibis
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from growthwheel.api.deps import PageUser, Principal, check_csrf
from growthwheel.api.imports import job_error, limited_form, shown_value, upload_names
from growthwheel.api.warehouse import warehouse
from growthwheel.config import Settings
from growthwheel.errors import ImportFileError, InvalidArgumentError
from growthwheel.warehouse import db as warehouse_db
from growthwheel.warehouse import uploads
from growthwheel.warehouse.ingest import FORMATS
from growthwheel.warehouse.jobs import ImportJob
from growthwheel.warehouse.reasons import reason_text
from growthwheel.warehouse.schema import resolve_table
from growthwheel.web.i18n import format_count, k
from growthwheel.web.pages import (
    backend,
    error_page,
    is_fragment,
    local_time,
    page_translator,
    render,
    shop_of,
)

router = APIRouter(include_in_schema=False)


#: Quarantined rows listed under a finished import.
QUARANTINE_SHOWN = 200
#: Imports listed on the imports page.
RECENT_IMPORTS = 20
TABLE_KEYS = {
    "order_lines": k("table.order_lines"),
    "orders": k("table.orders"),
    "customers": k("table.customers"),
    "products": k("table.products"),
    "events": k("table.events"),
    "ad_spend": k("table.ad_spend"),
    "reviews": k("table.reviews"),
    "inventory": k("table.inventory"),
}
FORMAT_KEYS = {
    "generic": k("format.generic"),
    "shopify": k("format.shopify"),
    "taobao": k("format.taobao"),
}
JOB_STATE_KEYS = {
    "queued": k("job.queued"),
    "running": k("job.running"),
    "done": k("job.done"),
    "failed": k("job.failed"),
}
COUNT_KEYS = {
    "rows_read": k("imports.count.read"),
    "inserted": k("imports.count.inserted"),
    "updated": k("imports.count.updated"),
    "unchanged": k("imports.count.unchanged"),
    "superseded": k("imports.count.superseded"),
    "rows_quarantined": k("imports.count.quarantined"),
}
#: An order-lines import reads lines and counts orders: every count says which.
LINE_COUNT_KEYS = {
    "rows_read": k("imports.count.lines_read"),
    "lines_imported": k("imports.count.lines_imported"),
    "rows_quarantined": k("imports.count.lines_quarantined"),
    "inserted": k("imports.count.orders_new"),
    "updated": k("imports.count.orders_updated"),
    "unchanged": k("imports.count.orders_unchanged"),
    "superseded": k("imports.count.superseded"),
}


#: Tables offered in the upload form, most common first.
UPLOAD_TABLES: tuple[str, ...] = tuple(TABLE_KEYS)
#: Failures the console explains in the reader's language: error code → catalogue key ({file}).
IMPORT_ERROR_KEYS = {
    "file_not_text": k("imports.error.not_text"),
    "file_not_utf8": k("imports.error.not_utf8"),
    "missing_columns": k("imports.error.missing_columns"),
}

def _table_key(name: str | None) -> str | None:
    """The catalogue key of a table's name (aliases such as ``lines`` included)."""
    try:
        return TABLE_KEYS.get(resolve_table(name or "").name)
    except KeyError:
        return None


def _can_import(user: Principal) -> bool:
    return "ingest" in user.scopes


#: Rows the server imports itself (``facts.service``), named by where they come from.
ORIGIN_KEYS = {"checkout": k("imports.origin.checkout"), "acting facts": k("imports.origin.acting_facts")}


def _recent_imports(con: Any, zone: ZoneInfo, t: Any) -> list[dict[str, Any]]:
    table = con.table(warehouse_db.IMPORTS_TABLE)
    recent: list[dict[str, Any]] = (
        table.order_by(ibis.desc("finished_at")).limit(RECENT_IMPORTS).to_pyarrow().to_pylist()
    )

    def unit(r: dict[str, Any], key: str, value: int | None) -> str:
        """Order-lines imports read lines and count orders: say so beside the number."""
        return t(key, n=format_count(value)) if r["table_name"] == "order_lines" else format_count(value)

    return [
        {
            "finished": local_time(r["finished_at"], zone),
            "table": r["table_name"],
            "table_key": _table_key(r["table_name"]),
            "files": ", ".join(t(ORIGIN_KEYS[f]) if f in ORIGIN_KEYS else Path(f).name
                               for f in (r["files"] or "").split(";") if f),
            "rows_read": unit(r, k("imports.n_lines"), r["rows_read"]),
            "inserted": unit(r, k("imports.n_orders"), r["inserted"]),
            "updated": unit(r, k("imports.n_orders"), r["updated"]),
            "quarantined": format_count(r["quarantined"]) if r["quarantined"] else 0,
        }
        for r in recent
    ]


def _imports_context(request: Request, user: Principal, form: Mapping[str, str],
                     errors: Mapping[str, str]) -> dict[str, Any]:
    zone = ZoneInfo(shop_of(request).timezone)
    with backend(request) as con:
        recent = _recent_imports(con, zone, page_translator(request))
    active = [
        {"href": import_href(job.id), "state_key": JOB_STATE_KEYS[job.status], "state": job.status,
         "table": job.table, "table_key": _table_key(job.table),
         "files": ", ".join(job.shown_files)}
        for job in warehouse(request).jobs()
        if job.status in ("queued", "running")
    ]
    return {
        "active": active,
        "problem": None,
        "can_import": _can_import(user),
        "table_options": [{"value": name, "key": TABLE_KEYS[name]} for name in UPLOAD_TABLES],
        "format_options": [{"value": name, "key": FORMAT_KEYS[name]} for name in FORMATS],
        "form": {"table": form.get("table", "order_lines"), "format": form.get("format", "generic")},
        "errors": errors,
        "recent": recent,
    }


@router.get("/imports", response_class=HTMLResponse)
def imports_page(request: Request, user: PageUser) -> HTMLResponse:
    """The upload form and the latest imports."""
    return render(request, "imports/index.html.j2", _imports_context(request, user, {}, {}), user=user)


def _save_uploads(files: list[UploadFile], folder: Path) -> list[Path]:
    return [uploads.save(upload.file, folder, upload.filename, index)
            for index, upload in enumerate(files, start=1)]


@router.post("/imports", response_class=HTMLResponse)
async def submit_import(request: Request, user: PageUser) -> Response:
    """Save the uploaded files in a folder of their own under ``<data dir>/uploads/``, hand them
    to the warehouse owner as a background import (named as uploaded; the folder goes when the
    import ends) and redirect to the job's progress page.

    The body is read under the same size limit as the API's upload (413 beyond), then the CSRF
    token is checked."""
    request = await limited_form(request)
    await check_csrf(request)
    if not _can_import(user):
        return await run_in_threadpool(
            error_page, request, user, 403, k("error.forbidden"), k("imports.not_allowed"), "/imports"
        )
    form = await request.form()
    table = str(form.get("table") or "")
    fmt = str(form.get("format") or "")
    files = [
        f for f in form.getlist("files")
        if isinstance(f, UploadFile) and (f.filename or f.size)
    ]
    errors: dict[str, str] = {}
    if table not in TABLE_KEYS:
        errors["table"] = k("imports.error.table")
    if fmt not in FORMAT_KEYS:
        errors["format"] = k("imports.error.format")
    if not files:
        errors["files"] = k("imports.error.files")
    if errors:
        context = await run_in_threadpool(
            _imports_context, request, user, {"table": table, "format": fmt}, errors
        )
        return render(request, "imports/index.html.j2", context, user=user, status=422)
    cfg: Settings = request.app.state.cfg
    names = upload_names(files)
    folder = await run_in_threadpool(uploads.new_folder, cfg.data_dir)
    try:
        paths = await run_in_threadpool(_save_uploads, files, folder)
        job_id = await run_in_threadpool(
            lambda: warehouse(request).submit_import(table, paths, fmt, names=names,
                                                     on_done=lambda _job: uploads.discard(folder)))
    except (InvalidArgumentError, ImportFileError) as exc:
        uploads.discard(folder)
        context = await run_in_threadpool(
            _imports_context, request, user, {"table": table, "format": fmt}, {}
        )
        context["problem"] = exc.text(page_translator(request))
        return render(request, "imports/index.html.j2", context, user=user, status=422)
    except BaseException:
        uploads.discard(folder)
        raise
    return RedirectResponse(import_href(job_id), status_code=303)


def import_href(job_id: str) -> str:
    """The progress page of an import job."""
    return "/imports/" + quote(job_id, safe="")


@dataclass
class _JobView:
    """An import job as the progress fragment shows it."""

    href: str
    state: str
    state_key: str
    finished: bool
    succeeded: bool
    table: str
    table_key: str | None
    files: str
    percent: int | None
    phase: str
    error: str | None
    counts: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    quarantine_more: bool = False
    notices: list[str] = field(default_factory=list)


def _quarantine_of(con: Any, import_id: str) -> list[dict[str, Any]]:
    q = con.table(warehouse_db.QUARANTINE_TABLE)
    q = q.filter(q.import_id == import_id).order_by(["file", "row_number", "column_name"])
    found: list[dict[str, Any]] = q.limit(QUARANTINE_SHOWN + 1).to_pyarrow().to_pylist()
    return found


def _job_error(request: Request, job: ImportJob) -> str | None:
    """A failed job's reason: in the reader's language for failures the console knows, else the
    import's own message (files named as uploaded, never a server path)."""
    translated = job.error_in(page_translator(request))
    if translated is not None:
        return translated
    key = IMPORT_ERROR_KEYS.get(job.error_code or "")
    if key is not None and job.error_file:
        shown = dict(zip(job.files, job.shown_files, strict=False))  # a server path → its upload's name
        file = shown.get(job.error_file, Path(job.error_file).name)
        return page_translator(request)(key, file=file, **job.error_values)
    return job_error(job)


def _job_view(request: Request, job: ImportJob, can_see_pii: bool) -> _JobView:
    finished = job.status in ("done", "failed")
    result = job.result
    fraction = job.fraction
    view = _JobView(
        href=import_href(job.id),
        state=job.status,
        state_key=JOB_STATE_KEYS[job.status],
        finished=finished,
        succeeded=job.status == "done" and result is not None,
        table=job.table,
        table_key=_table_key(job.table),
        files=", ".join(job.shown_files),
        percent=None if fraction is None else max(0, min(100, round(fraction * 100))),
        phase=job.phase or "" if job.status == "running" else "",
        error=_job_error(request, job),
    )
    if result is not None:
        view.notices = [page_translator(request)(k("import_file.header_only"), file=Path(name).name)
                        for name in result.header_only]
        main = result.tables.get("orders" if result.table == "order_lines" else result.table)
        counts = {
            "rows_read": result.rows_read,
            "inserted": main.inserted if main else 0,
            "updated": main.updated if main else 0,
            "unchanged": main.unchanged if main else 0,
            "superseded": result.superseded,
            "rows_quarantined": result.rows_quarantined,
        }
        keys = COUNT_KEYS
        if result.table == "order_lines":  # lines read, imported and quarantined; then the orders
            keys = LINE_COUNT_KEYS
            imported = result.rows_read - result.rows_quarantined
            counts = {"rows_read": result.rows_read, "lines_imported": imported,
                      "rows_quarantined": result.rows_quarantined,
                      **{name: counts[name] for name in ("inserted", "updated", "unchanged", "superseded")}}
        view.counts = [
            {"name": name, "label_key": keys[name], "value": format_count(value),
             "warn": name == "rows_quarantined" and value > 0}
            for name, value in counts.items()
            if name != "superseded" or value
        ]
        if counts["rows_quarantined"]:
            t = page_translator(request)
            with backend(request) as con:
                rows = _quarantine_of(con, result.import_id)
            view.quarantine_more = len(rows) > QUARANTINE_SHOWN
            view.quarantine = [
                {"file": Path(str(r["file"])).name, "row": r["row_number"],
                 "column": r["column_name"],
                 "value": shown_value(r["column_name"], r["value"], can_see_pii) or "",
                 "reason": reason, "reason_translated": translated}
                for r in rows[:QUARANTINE_SHOWN]
                for reason, translated in [reason_text(t, r["reason"])]
            ]
    return view


@router.get("/imports/{job_id}", response_class=HTMLResponse)
def import_job_page(request: Request, user: PageUser, job_id: str) -> HTMLResponse:
    """An import's progress (HTMX polls the fragment every second until the job is finished),
    then its counts and quarantined rows."""
    job = warehouse(request).job(job_id[:200])
    if job is None:
        return error_page(request, user, 404, k("imports.job_not_found"),
                           k("imports.job_not_found_body"), "/imports")
    view = _job_view(request, job, user.can_see_pii)
    template = "imports/_progress.html.j2" if is_fragment(request) else "imports/job.html.j2"
    return render(request, template, {"job": view}, user=user)
