"""Several server processes (``growthwheel serve --workers N``) over one data directory.

uvicorn starts ``N`` processes that accept connections on the same socket; each builds its app
with :func:`app_factory`. DuckDB lets one process hold the warehouse, so:

* **One owner.** The first process to lock ``<data_dir>/warehouse.owner.lock`` (``flock``, released
  when the process ends) builds the full app, owns the warehouse and also listens on a private
  loopback port that it announces in ``server.json`` — where CLI imports and the other workers
  find it (:func:`~growthwheel.warehouse.server.find_server`).
* **The others serve the checkout themselves** — ``/api/v1/carts/price``, ``/api/v1/orders…``,
  ``/api/v1/health`` and ``/static/`` — with their own connection pool on the shared PostgreSQL,
  and forward every other request, unchanged, to the owner (:class:`Forwarder`). The checkout's
  few warehouse needs (a customer's segments, a hold-out segment's members, exposure events)
  go to the owner through token-protected internal routes (:class:`RemoteWarehouse`).
* The owner believes the client address a worker forwards only with the server's token
  (:class:`ForwardedClient`), so the login throttle and the audit log see the real client.

SQLite has one writer per database and its in-process writer queue works within one process:
``serve`` refuses ``--workers`` above 1 on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import json
import socket
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import IO, Annotated, Any

import httpx
import uvicorn
from fastapi import APIRouter, Body, Depends, FastAPI, Request

from growthwheel.api.admission import ASGIApp, Receive, Scope, Send, busy_body
from growthwheel.api.errors import PROBLEM
from growthwheel.api.warehouse import Owner, WarehouseOwner, internal_caller
from growthwheel.config import Settings, settings
from growthwheel.errors import ConfigError
from growthwheel.warehouse.server import ServerInfo, read_server_file

OWNER_LOCK = "warehouse.owner.lock"
FORWARD_TOKEN = "x-growthwheel-forward-token"
FORWARDED_FOR = "x-growthwheel-forwarded-for"
#: What a worker that does not own the warehouse answers itself; the rest goes to the owner.
LOCAL = ("/api/v1/health", "/api/v1/carts/price", "/api/v1/orders", "/static/")
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
        b"proxy-authorization", b"proxy-connection", b"content-length", b"host"}

_lock_file: IO[str] | None = None


def take_owner_lock(cfg: Settings) -> bool:
    """Whether this process now owns the data directory's warehouse (kept until it exits)."""
    global _lock_file
    if _lock_file is not None:
        return True
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(cfg.data_dir / OWNER_LOCK, "a+", encoding="utf-8")  # held while the process lives
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _lock_file = handle
    return True


# ---------------------------------------------------------------------------------------------
# The owner's side: a private listener, internal routes, forwarded client addresses
# ---------------------------------------------------------------------------------------------


class ForwardedClient:
    """ASGI middleware of the owner: a request forwarded by a worker (loopback peer, the server's
    token) is seen as coming from the address the worker received it from."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite ``scope["client"]`` for forwarded requests; strip the forwarding headers."""
        if scope["type"] == "http":
            headers = dict(scope.get("headers", []))
            token = headers.get(FORWARD_TOKEN.encode())
            if token is not None:
                owner = getattr(self.fastapi_app.state, "warehouse", None)
                peer = (scope.get("client") or ("", 0))[0]
                forwarded = headers.get(FORWARDED_FOR.encode(), b"").decode("latin-1")
                if (owner is not None and peer in ("127.0.0.1", "::1") and forwarded
                        and hmac.compare_digest(token, owner.token.encode())):
                    scope = {**scope, "client": (forwarded, 0)}
                scope["headers"] = [(k, v) for k, v in scope["headers"]
                                    if k not in (FORWARD_TOKEN.encode(), FORWARDED_FOR.encode())]
        await self.app(scope, receive, send)


def private_listener(app: FastAPI) -> None:
    """Listen on a private loopback port too (announced in ``server.json`` by the owner)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see run_workers
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    app.state.server_address = ("127.0.0.1", sock.getsockname()[1])
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def both(a: FastAPI) -> AsyncIterator[Any]:
        config = uvicorn.Config(a, lifespan="off", log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        async with inner(a) as state:
            task = asyncio.create_task(server._serve([sock]))  # the main server owns the signals
            try:
                yield state
            finally:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10)
                sock.close()

    app.router.lifespan_context = both


internal = APIRouter(prefix="/api/v1/internal", dependencies=[Depends(internal_caller)],
                     include_in_schema=False)


@internal.get("/customer-segments/{customer_id}")
def customer_segments(customer_id: str, owner: Owner) -> list[str]:
    """The saved segments a customer belongs to (the checkout's segment conditions)."""
    from growthwheel.promotions import service

    with owner.read() as backend:
        return sorted(service.warehouse_segments(backend, customer_id))


@internal.get("/segment-members/{segment_id}")
def segment_members(segment_id: str, owner: Owner) -> list[str]:
    """The current members of a saved segment (targeted hold-outs)."""
    from growthwheel.experiments import repository

    with owner.read() as backend:
        return sorted(repository.segment_member_ids(backend, segment_id))


@internal.post("/event-rows", status_code=204)
def event_rows(rows: Annotated[list[dict[str, Any]], Body(max_length=10_000)], owner: Owner) -> None:
    """Spool event rows already validated by a worker (durable when this answers)."""
    owner.append_events(rows)


# ---------------------------------------------------------------------------------------------
# The other workers' side
# ---------------------------------------------------------------------------------------------


class RemoteWarehouse:
    """What the checkout needs of the warehouse, asked of the owning process over loopback."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg
        self._client = httpx.Client(timeout=30.0)
        self._info: ServerInfo | None = None
        self._lock = threading.Lock()

    def owner(self, refresh: bool = False) -> ServerInfo:
        """The owner's address and token from ``server.json`` (503 ``store_busy`` while absent)."""
        with self._lock:
            if refresh or self._info is None:
                self._info = read_server_file(self.cfg)
            if self._info is None:
                from growthwheel.store.db import StoreBusyError

                raise StoreBusyError("the process owning the warehouse is starting; try again shortly")
            return self._info

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in (0, 1):
            info = self.owner(refresh=attempt == 1)
            try:
                response = self._client.request(method, info.url + path, json=body,
                                                headers={"Authorization": f"Bearer {info.token}"})
            except httpx.TransportError:
                if attempt:
                    raise
                continue
            if response.status_code == 401 and not attempt:
                continue  # a new owner: read server.json again
            response.raise_for_status()
            return response.json() if response.content else None
        return None

    def customer_segments(self, customer_id: str) -> frozenset[str]:
        """The customer's saved segments."""
        return frozenset(self._call("GET", f"/api/v1/internal/customer-segments/{customer_id}"))

    def segment_members(self, segment_id: str) -> frozenset[str]:
        """A saved segment's members."""
        return frozenset(self._call("GET", f"/api/v1/internal/segment-members/{segment_id}"))

    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Spool validated event rows on the owner."""
        self._call("POST", "/api/v1/internal/event-rows", json.loads(json.dumps(list(rows), default=str)))


class Forwarder:
    """ASGI middleware of a worker that does not own the warehouse: requests outside :data:`LOCAL`
    go to the owner as they came (method, path, headers, streamed body) and its answer comes back
    as it is. While no owner answers, 503 problem+json with ``Retry-After``."""

    def __init__(self, app: ASGIApp, remote: RemoteWarehouse, retry_after: int = 2) -> None:
        self.app = app
        self.remote = remote
        self.retry_after = retry_after
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve :data:`LOCAL` paths here; forward the others."""
        if scope["type"] != "http" or scope["path"].startswith(LOCAL):
            await self.app(scope, receive, send)
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=5.0))
        try:
            info = self.remote.owner()
        except Exception:
            await self._unavailable(send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _HOP]
        client = (scope.get("client") or ("", 0))[0]
        headers += [(FORWARD_TOKEN.encode(), info.token.encode()), (FORWARDED_FOR.encode(), client.encode())]
        url = info.url + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        request = self._client.build_request(scope["method"], url, headers=headers, content=body())
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError:
            self.remote.owner(refresh=True)
            await self._unavailable(send)
            return
        try:
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def _unavailable(self, send: Send) -> None:
        body = busy_body("server_busy", "en", self.retry_after)
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", PROBLEM.encode()), (b"retry-after", str(self.retry_after).encode())]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


# ---------------------------------------------------------------------------------------------
# The factory uvicorn calls in each worker process
# ---------------------------------------------------------------------------------------------


async def checkout_warehouse(request: Request) -> WarehouseOwner | RemoteWarehouse:
    """The checkout's warehouse: the owner in the owning process, else a :class:`RemoteWarehouse`."""
    local = getattr(request.app.state, "warehouse", None)
    remote = getattr(request.app.state, "remote_warehouse", None)
    if isinstance(local, WarehouseOwner):
        return local
    if isinstance(remote, RemoteWarehouse):
        return remote
    raise ConfigError("the warehouse is not open in this server")


def app_factory() -> FastAPI:
    """Build this worker's app (``uvicorn --factory``): the owner's, or a forwarding worker's."""
    from growthwheel.api.app import create_app
    from growthwheel.kit.runtime import tune_interpreter

    cfg = settings()
    if take_owner_lock(cfg):
        app = create_app(cfg)
        app.add_middleware(ForwardedClient, fastapi_app=app)
        app.include_router(internal)
        private_listener(app)
        app.state.role = "owner"
        # the application is loaded (kit/runtime.py)
        tune_interpreter(cfg.server.switch_interval, gc_tuning=cfg.server.gc_tuning)
        return app
    app = create_app(cfg, with_warehouse=False)
    remote = RemoteWarehouse(cfg)
    app.state.remote_warehouse = remote
    app.add_middleware(Forwarder, remote=remote, retry_after=cfg.server.retry_after)
    app.state.role = "worker"
    tune_interpreter(cfg.server.switch_interval, gc_tuning=cfg.server.gc_tuning)
    return app


def run_workers(host: str, port: int, count: int) -> None:
    """Run ``count`` server processes on ``host:port`` (each app from :func:`app_factory`).

    As ``uvicorn.run(..., workers=count)``, except that the listening socket gets ``TCP_NODELAY``,
    which the connections it accepts inherit: uvicorn's worker processes receive the socket by
    file descriptor and asyncio then leaves Nagle's algorithm on, adding about 40 ms to answers
    written in two parts.
    """
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("growthwheel.api.workers:app_factory", factory=True, workers=count, host=host,
                            port=port, log_level="warning", proxy_headers=False, access_log=False)
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()
