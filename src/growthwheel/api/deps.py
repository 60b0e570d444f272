"""Request-time dependencies shared by every router: database session, who is calling, CSRF.

- ``db_session``: one SQLAlchemy session per request, committed when the endpoint returns (before
  the response is sent), rolled back when it raises.
- ``current_principal``: the caller from ``Authorization: Bearer <API key>`` or the ``gw_session``
  cookie; 401 problem+json otherwise. ``require_scope`` / ``require_role`` add 403.
- ``current_user_page``: the same for console pages, but anonymous visitors are redirected to
  ``/login?next=…`` (303) instead of getting 401 (``install(app)`` registers that redirect).
- ``csrf_token(request)`` for templates and ``check_csrf`` for every console form POST.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPBearer
from sqlalchemy import event
from sqlalchemy.orm import Session, object_session
from starlette.concurrency import run_in_threadpool

from growthwheel.accounts import service
from growthwheel.accounts.models import ApiKey
from growthwheel.accounts.schemas import Principal
from growthwheel.accounts.service import AuthenticationError, CsrfError, PermissionDeniedError
from growthwheel.config import Settings, settings
from growthwheel.store.db import session_scope, sessionmaker_for

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "CurrentPrincipal",
    "DbSession",
    "LoginRequiredError",
    "PageUser",
    "PageWriter",
    "Principal",
    "check_csrf",
    "client_ip",
    "csrf_token",
    "current_principal",
    "current_user_page",
    "db_session",
    "install",
    "page_writer",
    "require_role",
    "require_scope",
    "server_secret",
]

SESSION_COOKIE = "gw_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# Only documents the scheme in OpenAPI (the "Authorize" button); the header is parsed below.
_bearer_scheme = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer gw_…`")


def _cfg(request: Request) -> Settings:
    cfg = getattr(request.app.state, "cfg", None)
    return cfg if isinstance(cfg, Settings) else settings()


def server_secret(request: Request) -> bytes:
    """The server's signing key (``<data_dir>/secret.key``)."""
    return service.server_secret(_cfg(request).data_dir)


def client_ip(request: Request) -> str:
    """The client's address, as the login throttle and the audit log record it.

    The TCP peer, unless the peer is a trusted proxy (``GROWTHWHEEL_TRUSTED_PROXIES``, default
    none): then the right-most address of ``X-Forwarded-For`` that is not a trusted proxy (the one
    the nearest proxy saw; the addresses left of it are the client's word). A malformed entry stops
    the walk at the last proxy that handed the request on.
    """
    peer = request.client.host if request.client else "unknown"
    networks = _trusted_networks(tuple(_cfg(request).trusted_proxies))
    if not networks:
        return peer
    client = _address(peer)
    if client is None or not any(client in net for net in networks):
        return peer
    hops = ",".join(request.headers.getlist("x-forwarded-for")).split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        client = address
        if not any(address in net for net in networks):
            break
    return str(client)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _address(text: str) -> IPAddress | None:
    """An address of ``X-Forwarded-For`` (``1.2.3.4``, ``1.2.3.4:567``, ``[::1]:567``, ``::1``)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --------------------------------------------------------------------------------------------
# Database session
# --------------------------------------------------------------------------------------------


def _finish(session: Session) -> Callable[..., Any]:
    async def finish(
        exc_type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> bool:
        if session.in_transaction():  # else nothing to end, and no thread hop
            await run_in_threadpool(session.commit if exc_type is None else session.rollback)
        return False

    return finish


async def _close(session: Session, *, rollback: bool = False) -> None:
    if session.in_transaction():  # still holds a connection: give it back off the event loop
        await run_in_threadpool(session.rollback if rollback else session.close)
    session.close()


async def db_session(request: Request) -> AsyncIterator[Session]:
    """One session for the whole request: committed as the endpoint returns, rolled back on error.

    The commit happens before the response is sent (so a client that sees the answer sees the
    change, and a failing commit is an error answer, not a lost write), whatever ``scope`` the
    dependency is declared with; every dependency of the request gets the same session. Opening
    and closing it cost no worker thread unless it still holds a connection (an endpoint that
    commits itself, as the checkout does, needs none after it returns).
    """
    shared = getattr(request.state, "db_session", None)
    if isinstance(shared, Session):
        yield shared
        return
    session = sessionmaker_for(_cfg(request))()
    request.state.db_session = session
    stack = request.scope.get("fastapi_function_astack")  # exits when the endpoint returns
    if stack is not None:
        stack.push_async_exit(_finish(session))
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        await _close(session, rollback=True)
        raise
    finally:
        await _close(session)


DbSession = Annotated[Session, Depends(db_session)]


# --------------------------------------------------------------------------------------------
# Who is calling
# --------------------------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    """The API key of ``Authorization: Bearer``; ``""`` for any other Authorization header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _cross_site(request: Request) -> bool:
    """Whether the browser says the request comes from another site (Fetch Metadata)."""
    return request.headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site")


# Verified API keys, by hash: (trusted until, principal). A key revoked in this process leaves at
# once (``_forget_revoked``); one revoked elsewhere (another worker, the CLI) within the TTL
# (``server.api_key_cache_seconds``). The lookup of a key not cached runs in a short session of
# its own (committed at once), so no request holds a connection while it waits for a thread.
_verified_keys: dict[str, tuple[float, Principal]] = {}
_KEY_CACHE_MAX = 10_000


def _forget_keys(*_args: Any) -> None:
    _verified_keys.clear()


@event.listens_for(ApiKey.revoked, "set")
def _forget_revoked(target: ApiKey, value: Any, _old: Any, _initiator: Any) -> None:
    if value:
        _forget_keys()
        session = object_session(target)
        if session is not None:  # and again once the revocation is committed
            event.listen(session, "after_commit", _forget_keys, once=True)


def _lookup_api_key(cfg: Settings, key: str, ip: str) -> Principal | None:
    with session_scope(cfg) as session:
        return service.api_key_principal(session, key, ip=ip)


async def _api_key_principal(request: Request, key: str, ip: str) -> Principal | None:
    cfg = _cfg(request)
    ttl = cfg.server.api_key_cache_seconds
    digest = service.token_hash(key)
    now = time.monotonic()
    cached = _verified_keys.get(digest)
    if cached is not None and cached[0] > now:
        return cached[1].model_copy(update={"ip": ip})
    principal = await run_in_threadpool(_lookup_api_key, cfg, key, ip)
    if principal is not None and ttl > 0:
        if len(_verified_keys) >= _KEY_CACHE_MAX:
            _verified_keys.clear()
        _verified_keys[digest] = (now + ttl, principal)
    return principal


async def current_principal(
    request: Request,
    session: DbSession,
    _doc: Annotated[Any, Depends(_bearer_scheme)] = None,
) -> Principal:
    """The caller: an API key (``Authorization: Bearer``) or a logged-in user (session cookie).

    Raises 401 when there is neither or it is unknown, expired or revoked. A state-changing
    request carried by the cookie that the browser marks cross-site is refused (403). A key
    verified in the last ``server.api_key_cache_seconds`` is not looked up again.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    ip = client_ip(request)
    key = _bearer(request)
    if key is not None:
        principal = await _api_key_principal(request, key, ip) if key else None
        if principal is None:
            raise AuthenticationError("invalid or revoked API key")
    else:
        token = request.cookies.get(SESSION_COOKIE)
        principal = (await run_in_threadpool(service.session_principal, session, token, ip=ip)
                     if token else None)
        if principal is None:
            raise AuthenticationError("not logged in: log in or send Authorization: Bearer <API key>")
        if request.method in _UNSAFE and _cross_site(request):
            raise CsrfError("cross-site request refused")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scope(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the Principal if it holds every scope in ``scopes`` (403 otherwise)."""
    needed = frozenset(scopes)

    async def dependency(principal: CurrentPrincipal) -> Principal:  # no I/O: no thread hop
        missing = needed - principal.scopes
        if missing:
            raise PermissionDeniedError(f"this needs the {', '.join(sorted(missing))} scope")
        return principal

    return dependency


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the Principal if it is a user with one of ``roles`` (403 otherwise)."""
    allowed = frozenset(roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:  # no I/O: no thread hop
        if principal.role not in allowed:
            raise PermissionDeniedError(f"this needs the role {' or '.join(sorted(allowed))}")
        return principal

    return dependency


class LoginRequiredError(Exception):
    """A console page was asked for without a valid session: send the browser to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url

    @property
    def location(self) -> str:
        """The login page, coming back to ``next_url`` afterwards."""
        return f"/login?next={quote(self.next_url, safe='/')}"


def current_user_page(request: Request, session: DbSession) -> Principal:
    """The logged-in user of a console page; anonymous visitors go to ``/login?next=…`` (303)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal) and cached.kind == "user":
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    principal = service.session_principal(session, token, ip=client_ip(request)) if token else None
    if principal is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequiredError(path if request.method == "GET" else "/")
    if request.method in _UNSAFE and _cross_site(request):
        raise CsrfError("cross-site request refused")
    request.state.principal = principal
    return principal


#: The logged-in user of a console page (anonymous visitors are sent to the login page).
PageUser = Annotated[Principal, Depends(current_user_page)]


# --------------------------------------------------------------------------------------------
# CSRF
# --------------------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The CSRF token to put in a form's hidden ``csrf_token`` field (or ``X-CSRF-Token`` header).

    Tied to the session cookie when there is one; before login, a signed token with a time stamp.
    """
    secret = server_secret(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return service.session_csrf_token(secret, cookie)
    token = getattr(request.state, "anonymous_csrf", None)
    if not isinstance(token, str):
        token = service.anonymous_csrf_token(secret)
        request.state.anonymous_csrf = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403 ``csrf_failed``) a console POST whose CSRF token is missing or wrong, or that
    the browser marks as coming from another site (``Sec-Fetch-Site``).

    Requests authenticated by ``Authorization: Bearer`` (and carrying no session cookie) are not
    subject to CSRF and pass. The header is checked first, so a streamed upload that sends
    ``X-CSRF-Token`` is not parsed here.
    """
    if _bearer(request) and SESSION_COOKIE not in request.cookies:
        return
    if _cross_site(request):  # Fetch Metadata: every form, logout and login included
        raise CsrfError("cross-site request refused")
    token: Any = request.headers.get(CSRF_HEADER)
    if not token and request.headers.get("content-type", "").lower().startswith(_FORMS):
        token = (await request.form()).get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        raise CsrfError("the form has no CSRF token: reload the page and try again")
    secret = server_secret(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        valid = hmac.compare_digest(token.encode(), service.session_csrf_token(secret, cookie).encode())
    else:
        valid = service.valid_anonymous_csrf_token(secret, token)
    if not valid:
        raise CsrfError("the form's CSRF token is wrong or expired: reload the page and try again")


async def page_writer(request: Request, user: PageUser) -> Principal:
    """The user of a console form that changes something: the CSRF check has passed and the user
    may write (an analyst gets the 403 page)."""
    await check_csrf(request)
    if "write" not in user.scopes:
        raise PermissionDeniedError("analysts can read this page but not change it")
    return user


#: The logged-in user of a console form that changes something (:func:`page_writer`).
PageWriter = Annotated[Principal, Depends(page_writer)]


# --------------------------------------------------------------------------------------------
# App wiring
# --------------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Register the handler that turns ``LoginRequiredError`` into a redirect to the login page.

    HTMX requests get ``HX-Redirect`` (a 303 would be followed inside the XHR and swap the login
    page into a fragment).
    """

    async def _login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequiredError)
        if request.headers.get("hx-request"):
            return JSONResponse({"code": "unauthenticated", "detail": "log in"}, status_code=401,
                                headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)

    app.add_exception_handler(LoginRequiredError, _login_required)
