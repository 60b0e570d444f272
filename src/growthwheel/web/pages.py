"""The console's shell: rendering with the shared context (language, user, CSRF token,
navigation), the one way a page learns its language (:func:`page_language`,
:func:`page_translator`), the error page, and ``/login`` (the form; the POST handlers of
``/login`` and ``/logout`` belong to accounts).

Each domain keeps its own pages in ``<domain>/pages.py`` (a ``pages/`` package when it serves
several things) with its templates under ``templates/<domain>/``; pages that front a router of
``api/`` sit beside it (``api/imports_pages.py``). They all render through :func:`render`.

Every page needs a signed-in user (``current_user_page`` redirects anonymous visitors to the login
form); every form POST carries the CSRF token. Every visible string comes from the catalogues
(``i18n/*.json``); keys chosen in Python are marked with :func:`growthwheel.web.i18n.k`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from growthwheel import __version__
from growthwheel.accounts.api import safe_next
from growthwheel.api.deps import Principal, csrf_token
from growthwheel.api.warehouse import warehouse
from growthwheel.config import Settings, ShopSettings
from growthwheel.web.i18n import (
    COOKIE,
    HTML_LANG,
    LANGS,
    Translator,
    choose_language,
    k,
    translator,
)

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

LANG_COOKIE_SECONDS = 365 * 24 * 3600

#: Content-Security-Policy of every page: scripts only from this server (no inline script runs).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

#: The console's pages in the top bar: ``(href, label key, menu key)``. Pages with a menu key are
#: grouped under that menu (hover or focus opens it); ``None`` is a link of its own. A page is
#: active when the path starts with its href ("/" only exactly); "/insight/…" pages are one link.
NAV: tuple[tuple[str, str, str | None], ...] = (
    ("/", k("nav.overview"), None),
    ("/insight/rfm", k("nav.insight"), None),
    ("/customers", k("nav.customers"), k("nav.group.customers")),
    ("/segments", k("nav.segments"), k("nav.group.customers")),
    ("/loyalty", k("nav.loyalty"), k("nav.group.customers")),
    ("/promotions", k("nav.promotions"), k("nav.group.growth")),
    ("/coupons", k("nav.coupons"), k("nav.group.growth")),
    ("/journeys", k("nav.journeys"), k("nav.group.growth")),
    ("/marketing", k("nav.marketing"), k("nav.group.growth")),
    ("/experiments", k("nav.experiments"), k("nav.group.growth")),
    ("/products/roles", k("nav.products"), k("nav.group.merchandise")),
    ("/inventory", k("nav.inventory"), k("nav.group.merchandise")),
    ("/reviews", k("nav.reviews"), k("nav.group.voice")),
    ("/surveys", k("nav.surveys"), k("nav.group.voice")),
    ("/alerts", k("nav.alerts"), k("nav.group.voice")),
    ("/imports", k("nav.imports"), k("nav.group.data")),
    ("/jobs", k("nav.jobs"), k("nav.group.data")),
)


def _nav_active(path: str, href: str) -> bool:
    if href == "/":
        return path == "/"
    if href.startswith("/insight/"):
        return path.startswith("/insight/")
    return path.startswith(href)


def nav_entries(path: str) -> list[dict[str, Any]]:
    """The top bar for ``path``: links and menus (``{"key", "links", "active"}``) in NAV order."""
    out: list[dict[str, Any]] = []
    menus: dict[str, dict[str, Any]] = {}
    for href, key, menu in NAV:
        item = {"href": href, "key": key, "active": _nav_active(path, href)}
        if menu is None:
            out.append(item)
            continue
        if menu not in menus:
            menus[menu] = {"key": menu, "links": [], "active": False}
            out.append(menus[menu])
        menus[menu]["links"].append(item)
        menus[menu]["active"] = menus[menu]["active"] or item["active"]
    return out


ROLE_KEYS = {"admin": k("role.admin"), "operator": k("role.operator"), "analyst": k("role.analyst")}
LANG_KEYS = {"zh": k("lang.zh"), "en": k("lang.en")}
#: ``/login?error=<code>``: the accounts error codes a failed sign-in comes back with.
LOGIN_ERRORS = {
    "invalid_credentials": k("login.error.invalid"),
    "too_many_requests": k("login.error.throttled"),
    "csrf_failed": k("login.error.csrf"),
}


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def chosen_language(request: Request) -> tuple[str, bool]:
    """The page language and whether it was just chosen with ``?lang=`` (then remembered)."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return str(asked), True
    return choose_language(request.cookies.get(COOKIE), request.headers.get("accept-language")), False


def page_language(request: Request) -> str:
    """The page's language (``zh`` or ``en``): ``?lang=``, then the cookie, then the browser."""
    return chosen_language(request)[0]


def page_translator(request: Request) -> Translator:
    """``t(key, **values)`` in the page's language: the one translator every page module uses."""
    return translator(page_language(request))


def code_translator(t: Translator) -> Callable[..., Markup]:
    """``tc(key, values, code)``: the text of ``key`` with ``values`` filled in, those named in
    ``code`` shown as identifiers (``<code>``: a step, a tag, a key — not words to translate)."""

    def tc(key: str, values: Mapping[str, Any] | None = None, code: Iterable[str] = ()) -> Markup:
        marked = set(code)
        filled = {name: Markup("<code>{}</code>").format(value) if name in marked else value
                  for name, value in (values or {}).items()}
        return Markup(escape(t(key))).format(**filled) if filled else Markup(escape(t(key)))

    return tc


def _static(path: str) -> str:
    return f"/static/{path}?v={__version__}"


def with_query(request: Request, **params: str | None) -> str:
    """The current path with ``params`` set in its query (``None`` removes one)."""
    query = {key: value for key, value in request.query_params.items() if key not in params}
    query.update({key: value for key, value in params.items() if value is not None})
    return request.url.path + ("?" + urlencode(query) if query else "")


def shop_of(request: Request) -> ShopSettings:
    """The shop's settings (name, currency, time zone)."""
    cfg: Settings = request.app.state.cfg
    return cfg.shop()


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    user: Principal | None = None,
    status: int = 200,
) -> HTMLResponse:
    """Render a console template with the shared context (language, user, CSRF token, navigation)."""
    lang, chosen = chosen_language(request)
    t = translator(lang)
    path = request.url.path
    shared: dict[str, Any] = {
        "t": t,
        "tc": code_translator(t),
        "lang": lang,
        "html_lang": HTML_LANG[lang],
        "static": _static,
        "lang_links": [
            {"code": code, "key": LANG_KEYS[code], "html_lang": HTML_LANG[code],
             "href": with_query(request, lang=code), "active": code == lang}
            for code in LANGS
        ],
        "csrf": csrf_token(request),
        "user": user,
        "role_key": ROLE_KEYS.get(user.role or "", k("role.api_key")) if user else "",
        "nav": nav_entries(path),
        "shop_name": shop_of(request).name,
    }
    html = _ENV.get_template(template).render({**shared, **context})
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Vary"] = "Cookie, Accept-Language, HX-Request"
    if chosen:
        response.set_cookie(COOKIE, lang, max_age=LANG_COOKIE_SECONDS, path="/", samesite="lax",
                            httponly=True)
    return response


def is_fragment(request: Request) -> bool:
    """An HTMX request that wants only the part of the page it swaps."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")


def error_page(request: Request, user: Principal, status: int, title: str, message: str,
               back: str) -> HTMLResponse:
    """The error page: a title and a message (catalogue keys) and a link back."""
    return render(request, "error.html.j2",
                  {"title_key": title, "message_key": message, "back_href": back},
                  user=user, status=status)


@contextmanager
def backend(request: Request) -> Iterator[Any]:
    """An Ibis backend over the warehouse, from the server's warehouse owner (a read waits for no
    import, only for a ``COMMIT`` statement: ``warehouse.gate``)."""
    with warehouse(request).read() as con:
        yield con


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    """A UTC time in the shop's zone as ``2025-03-01 14:05``; ``–`` when unknown."""
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------------------------------
# Login
# ---------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request,
    next_path: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """The sign-in form (it posts ``email``, ``password``, ``next`` and ``csrf_token`` to ``/login``)."""
    return render_login(request, next_path=next_path, error=error)


def render_login(request: Request, *, next_path: str | None = None, error: str | None = None,
                 email: str = "", status: int = 200) -> HTMLResponse:
    """The sign-in page, optionally with an error (a code of :data:`LOGIN_ERRORS`), e.g. for the
    accounts POST handler to answer a failed attempt with."""
    context = {"next": safe_next(next_path), "error_key": LOGIN_ERRORS.get(error or ""),
               "email": email, "body_class": "login-page"}
    response = render(request, "login.html.j2", context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response

