"""Login and logout (console form posts with CSRF) and ``GET /api/v1/me``.

The login *page* (``GET /login``) belongs to the console; it posts ``email``, ``password``,
``next`` and ``csrf_token`` here. A wrong password sends the browser back to
``/login?error=invalid_credentials&next=…``; too many failures answer 429 with ``Retry-After``
(problem+json, or the login page with the message when the client asks for HTML).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from growthwheel.accounts import service
from growthwheel.accounts.schemas import MeOut
from growthwheel.api.deps import SESSION_COOKIE, CurrentPrincipal, DbSession, check_csrf, client_ip
from growthwheel.api.errors import problem
from growthwheel.errors import GrowthwheelError

router = APIRouter(tags=["accounts"])


def safe_next(url: str | None) -> str:
    """``url`` if it is a path on this site, else ``/`` (no open redirects)."""
    if not url or not url.startswith("/") or url.startswith(("//", "/\\")) or any(c in url for c in "\r\n\\"):
        return "/"
    return url


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _refused(request: Request, exc: GrowthwheelError, next_path: str, **extra: int) -> Response:
    """A refused login: the login page again with the error for browsers, problem+json otherwise."""
    if "text/html" in request.headers.get("accept", ""):
        from growthwheel.web.pages import render_login  # the console's page (imports this module)

        return render_login(request, next_path=next_path, error=exc.code, status=exc.status)
    return problem(exc.status, exc.code, exc.message, **extra)


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    session: DbSession,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=service.MAX_PASSWORD_LENGTH)],
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/",
) -> Response:
    """Check the password, open a session (cookie ``gw_session``) and go to ``next``.

    Refusals: wrong CSRF token 403 ``csrf_failed``; too many failures 429 ``too_many_requests``
    with ``Retry-After`` (browsers get the login page with the message, others problem+json);
    wrong e-mail or password: back to ``/login?error=invalid_credentials&next=…`` (303).
    """
    target = safe_next(next_url)
    try:
        await check_csrf(request)
    except service.CsrfError as exc:
        return _refused(request, exc, target)
    try:
        token, _user = await run_in_threadpool(
            service.log_in, session, email, password, ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
    except service.TooManyAttemptsError as exc:
        response = _refused(request, exc, target, retry_after=exc.retry_after)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except service.LoginFailedError as exc:
        query = urlencode({"error": exc.code, "next": target})
        return RedirectResponse(f"/login?{query}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(service.SESSION_MAX_AGE.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@router.post("/logout", include_in_schema=False, dependencies=[Depends(check_csrf)])
def logout(request: Request, session: DbSession) -> Response:
    """End the session and go to the login page."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        principal = service.session_principal(session, token, ip=client_ip(request))
        service.log_out(session, token, principal)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response


@router.get("/api/v1/me", response_model=MeOut, summary="Who is calling and what they may do")
def me(principal: CurrentPrincipal) -> MeOut:
    """The authenticated user or API key, its role, scopes and whether it sees personal data."""
    return MeOut(kind=principal.kind, id=principal.id, name=principal.name, role=principal.role,
                 scopes=sorted(principal.scopes), can_see_pii=principal.can_see_pii)
