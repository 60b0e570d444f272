"""Every error leaves the API as RFC 9457 problem+json with a stable machine ``code``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from growthwheel.errors import GrowthwheelError
from growthwheel.web.i18n import COOKIE, DEFAULT_LANG, Translator, choose_language, k, translator

PROBLEM = "application/problem+json"
log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "validation_error", 429: "too_many_requests",
}


#: Request validation errors a person reads in their language: pydantic's error type → key
#: (placeholders from the error's context, e.g. ``{max_length}``).
VALIDATION_KEYS = {
    "missing": k("validation.missing"),
    "extra_forbidden": k("validation.extra_forbidden"),
    "decimal_parsing": k("validation.decimal_parsing"),
    "decimal_type": k("validation.decimal_type"),
    "int_parsing": k("validation.int_parsing"),
    "int_type": k("validation.int_type"),
    "int_from_float": k("validation.int_from_float"),
    "float_parsing": k("validation.float_parsing"),
    "float_type": k("validation.float_type"),
    "bool_parsing": k("validation.bool_parsing"),
    "bool_type": k("validation.bool_type"),
    "string_type": k("validation.string_type"),
    "string_too_short": k("validation.string_too_short"),
    "string_too_long": k("validation.string_too_long"),
    "string_pattern_mismatch": k("validation.string_pattern_mismatch"),
    "too_short": k("validation.too_short"),
    "too_long": k("validation.too_long"),
    "greater_than": k("validation.greater_than"),
    "greater_than_equal": k("validation.greater_than_equal"),
    "less_than": k("validation.less_than"),
    "less_than_equal": k("validation.less_than_equal"),
    "datetime_parsing": k("validation.datetime_parsing"),
    "datetime_from_date_parsing": k("validation.datetime_from_date_parsing"),
    "date_parsing": k("validation.date_parsing"),
    "date_from_datetime_parsing": k("validation.date_from_datetime_parsing"),
    "literal_error": k("validation.literal_error"),
    "enum": k("validation.enum"),
    "list_type": k("validation.list_type"),
    "dict_type": k("validation.dict_type"),
    "model_type": k("validation.model_type"),
    "model_attributes_type": k("validation.model_attributes_type"),
    "json_invalid": k("validation.json_invalid"),
    "finite_number": k("validation.finite_number"),
}


def validation_message(t: Translator, error: Mapping[str, Any]) -> str:
    """One pydantic error's message in ``t``'s language (an unknown type, or a check of our own
    with its own words, keeps pydantic's message)."""
    key = VALIDATION_KEYS.get(str(error.get("type", "")))
    if key is None:
        return str(error.get("msg", ""))
    context = {name: str(value) for name, value in (error.get("ctx") or {}).items()}
    try:
        return t(key, **context)
    except (KeyError, IndexError):
        return str(error.get("msg", ""))


def request_language(request: Request) -> str:
    """The language of an API client: its ``Accept-Language`` (or the console's cookie); English
    by default."""
    return choose_language(request.cookies.get(COOKIE), request.headers.get("accept-language"))


#: An absolute file-system path inside a message (not part of a URL): ``/srv/gw/data/shop.json``.
_ABS_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/]+/)+([^\s'\"/]+)")


def public_detail(status: int, message: str) -> str:
    """The message a client may see: a server error names files by their name, never their path.

    Server errors (5xx) are logged with the full message; the answer keeps the file's name so the
    operator still knows which file is at fault, but not where the server keeps its data.
    """
    if status < 500:
        return message
    return _ABS_PATH.sub(lambda m: m.group(1), message)


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(GrowthwheelError)
    async def _domain(request: Request, exc: GrowthwheelError) -> Response:
        if exc.status >= 500:
            log.warning("%s answered %d: %s", exc.code, exc.status, exc.message)
        if exc.key is None:
            detail = public_detail(exc.status, exc.message)
            extra: dict[str, Any] = {}
        else:
            # Words from the catalogues: in the client's language, with the field they are about.
            detail = public_detail(exc.status, exc.text(translator(request_language(request))))
            extra = {"field": exc.field} if exc.field else {}
        if wants_page(request):
            return problem_page(request, exc.status, exc.code, detail)
        return problem(exc.status, exc.code, detail, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        lang = request_language(request)
        t = translator(lang)
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())),
             "message": e.get("msg", "") if lang == DEFAULT_LANG else validation_message(t, e)}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"location": "", "message": "invalid request"}
        return problem(422, "validation_error", f"{first['location']}: {first['message']}", errors=errors)

    @app.exception_handler(IntegrityError)
    async def _integrity(_request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique or check rule of the database refused the write (two requests raced for the
        # same row): the request's transaction is rolled back; the client may read and retry.
        log.info("integrity conflict answered 409: %s", exc.orig)
        return problem(409, "conflict", "the request conflicts with the current state of the data "
                       "(another request changed it at the same moment); read it again and retry")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and is_console_path(request.url.path):
            return not_found_page(request)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail))


def is_console_path(path: str) -> bool:
    """A path a person opens in the browser: anything but the API (``/api``) and static files."""
    return not any(path == p or path.startswith(p + "/") for p in ("/api", "/static"))


def wants_page(request: Request) -> bool:
    """A browser opening a console page (not the API, a static file or a script's fetch)."""
    return is_console_path(request.url.path) and "text/html" in request.headers.get("accept", "")


def problem_page(request: Request, status: int, code: str, detail: str) -> Response:
    """A refused console request as an HTML page in the reader's language (never raw JSON)."""
    from growthwheel.web.pages import render  # the console shell imports the API's dependencies

    return render(request, "problem.html.j2", {"status": status, "code": code, "detail": detail},
                  status=status)


def not_found_page(request: Request) -> Response:
    """The console's HTML 404 page in the reader's language, with a way back to the overview."""
    from growthwheel.web.pages import render  # the console shell imports the API's dependencies

    return render(request, "not_found.html.j2", {"path": request.url.path}, status=404)
