"""Taking load without jamming: admission, thread and connection pools, and 503 instead of 500.

A request that uses the operational store holds a connection from its first query until it ends,
and runs its synchronous parts on the worker-thread pool. If more requests hold connections than
there are threads, the request holding a row lock can wait for a thread while every thread waits
for that lock or for a connection: the server jams until pool time-outs turn into 500s. So:

* **Admission** (:class:`Admission`, pure ASGI): at most ``server.concurrency`` requests run at
  once; the others wait in a FIFO queue of at most ``server.queue``, each for at most
  ``server.queue_timeout`` seconds. Past either limit the answer is ``503`` problem+json
  (``server_busy``, in the caller's language) with ``Retry-After: server.retry_after``.
  ``/api/v1/health`` and ``/static/`` are not admitted through it: they never touch the store.
* **Pools tied to that number**: the thread pool gets ``concurrency + 8`` threads (set on the event
  loop at the first request) and the connection pool ``concurrency + 4`` (``store/db.py``), so an
  admitted request always finds a connection and the lock holder always finds a thread.
* **503, never 500, for a busy store**: :class:`~growthwheel.store.db.StoreBusyError` (SQLite's one
  writer busy past ``server.write_timeout``), a pool time-out, and "database is locked" or other
  operational errors of the driver answer ``503`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from growthwheel.api.errors import PROBLEM
from growthwheel.config import ServerSettings
from growthwheel.store.db import StoreBusyError
from growthwheel.web.i18n import COOKIE, choose_language, k, translator

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The catalogue keys of the 503 bodies (``server.<code>.title`` / ``.detail``).
BUSY_KEYS = (k("server.server_busy.title"), k("server.server_busy.detail"),
             k("server.store_busy.title"), k("server.store_busy.detail"))

#: Paths answered without admission: they never use the operational store.
EXEMPT = ("/api/v1/health", "/static/")


def _language(headers: list[tuple[bytes, bytes]]) -> str:
    cookie = accept = None
    for name, value in headers:
        if name == b"accept-language":
            accept = value.decode("latin-1")
        elif name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header only loses the language choice
                continue
            if COOKIE in jar:
                cookie = jar[COOKIE].value
    return choose_language(cookie, accept)


def busy_body(code: str, lang: str, retry_after: int) -> dict[str, Any]:
    """The problem+json body of a 503 (``server_busy`` or ``store_busy``) in ``lang``."""
    t = translator(lang)
    return {"type": f"/problems/{code}", "title": t(f"server.{code}.title"), "status": 503, "code": code,
            "detail": t(f"server.{code}.detail", seconds=retry_after), "retry_after": retry_after}


class Admission:
    """ASGI middleware: at most ``limit`` requests at once, a bounded FIFO queue, 503 beyond."""

    def __init__(self, app: ASGIApp, server: ServerSettings) -> None:
        self.app = app
        self.limit = server.concurrency
        self.queue = server.queue
        self.timeout = server.queue_timeout
        self.retry_after = server.retry_after
        self.threads = server.threads
        self.active = 0
        self.waiting = 0
        self.refused = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _prepare(self) -> asyncio.Semaphore:
        """The semaphore of this event loop; the loop's thread pool sized to match (once per loop)."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.limit)
            self.active = self.waiting = 0
            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = max(limiter.total_tokens, self.threads)
        return self._semaphore

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Admit the request, queue it, or answer 503."""
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        semaphore = self._prepare()
        if semaphore.locked() or self.waiting:
            if self.waiting >= self.queue:
                await self._refuse(scope, send)
                return
            self.waiting += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await semaphore.acquire()
            except TimeoutError:
                await self._refuse(scope, send)
                return
            finally:
                self.waiting -= 1
        else:
            await semaphore.acquire()
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            semaphore.release()

    async def _refuse(self, scope: Scope, send: Send) -> None:
        self.refused += 1
        body = busy_body("server_busy", _language(scope.get("headers", [])), self.retry_after)
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", PROBLEM.encode()), (b"retry-after", str(self.retry_after).encode()),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body",
                    "body": json.dumps(body, ensure_ascii=False).encode("utf-8")})


def _busy_response(request: Request, retry_after: int) -> JSONResponse:
    lang = choose_language(request.cookies.get(COOKIE), request.headers.get("accept-language"))
    return JSONResponse(busy_body("store_busy", lang, retry_after), status_code=503, media_type=PROBLEM,
                        headers={"Retry-After": str(retry_after), "Cache-Control": "no-store"})


def install(app: FastAPI, server: ServerSettings) -> None:
    """Add the admission middleware and the 503 handlers for a busy or unreachable store."""
    app.add_middleware(Admission, server=server)
    retry_after = server.retry_after

    async def store_busy(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store busy on %s %s: %s", request.method, request.url.path, exc)
        return _busy_response(request, retry_after)

    # Most specific class wins: these leave IntegrityError and other errors to their own handlers.
    for kind in (StoreBusyError, sa_exc.TimeoutError, sa_exc.OperationalError):
        app.add_exception_handler(kind, store_busy)
