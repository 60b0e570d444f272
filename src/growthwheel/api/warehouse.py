"""The warehouse in the FastAPI app: the owner in the app's life cycle, the ``warehouse``
dependency, the internal routes other local processes use, and ``GET /warehouse/counts``.

The owner itself (``warehouse/owner.py``) knows nothing of HTTP; the client side of the internal
routes is ``warehouse/server.py``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from growthwheel.api.deps import Principal, require_scope
from growthwheel.errors import ConfigError
from growthwheel.warehouse.jobs import JobNotFoundError
from growthwheel.warehouse.owner import WarehouseOwner

__all__ = ["Owner", "WarehouseOwner", "install", "lifespan", "read_scope", "router", "warehouse"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start a :class:`WarehouseOwner` for ``app.state.cfg`` and stop it on shutdown.

    Does nothing if ``app.state.warehouse`` is already set (the app's own lifespan started one).
    ``app.state.server_address = (host, port)``, set by the command that runs the server, makes
    the owner announce itself in ``server.json``; ``app.state.warehouse_options`` (a dict) is passed
    to the owner (e.g. ``flush_seconds``).
    """
    if getattr(app.state, "warehouse", None) is not None:
        yield
        return
    owner = WarehouseOwner(app.state.cfg, **getattr(app.state, "warehouse_options", {}))
    address = getattr(app.state, "server_address", None)
    host, port = (address if address else (None, None))
    await owner.astart(host, port)
    app.state.warehouse = owner
    try:
        yield
    finally:
        app.state.warehouse = None
        await owner.astop()


def install(app: FastAPI) -> FastAPI:
    """Run :func:`lifespan` inside the app's own lifespan (idempotent); returns ``app``."""
    if getattr(app.state, "warehouse_installed", False):
        return app
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def both(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state, lifespan(a):
            yield state

    app.router.lifespan_context = both
    app.state.warehouse_installed = True
    return app


def warehouse(request: Request) -> WarehouseOwner:
    """FastAPI dependency: the app's :class:`WarehouseOwner`."""
    owner: WarehouseOwner | None = getattr(request.app.state, "warehouse", None)
    if owner is None:
        raise ConfigError("the warehouse is not open in this server")
    return owner


Owner = Annotated[WarehouseOwner, Depends(warehouse)]
read_scope = require_scope("read")
"""The dependency guarding warehouse reads (module-level so tests can override it)."""

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def internal_caller(request: Request, owner: Owner) -> None:
    """Only another local process holding the token of ``server.json`` may use internal routes."""
    client = request.client.host if request.client else ""
    allowed = _LOOPBACK | ({owner.address[0]} if owner.address else set())
    supplied = request.headers.get("authorization", "")
    expected = f"Bearer {owner.token}"
    if not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong server token")
    if client not in allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "internal routes answer local processes only")


class ImportRequest(BaseModel):
    """An import handed over by another local process."""

    table: str = Field(description="target table")
    paths: list[str] = Field(min_length=1, max_length=1000, description="absolute paths")
    format: str = "generic"


router = APIRouter(prefix="/api/v1")
internal = APIRouter(prefix="/internal", dependencies=[Depends(internal_caller)],
                     include_in_schema=False)


@internal.get("/ping")
def ping() -> dict[str, int]:
    """Proves to a local process that this server owns its data directory."""
    return {"pid": os.getpid()}


@internal.post("/imports", status_code=status.HTTP_202_ACCEPTED)
def post_import(body: ImportRequest, owner: Owner) -> dict[str, Any]:
    """Queue an import of files on this machine; poll the job it returns."""
    return _job_dict(owner, owner.submit_import(body.table, [Path(p) for p in body.paths], body.format))


@internal.get("/imports/{job_id}")
def get_import(job_id: str, owner: Owner) -> dict[str, Any]:
    """An import job's status, progress and result."""
    return _job_dict(owner, job_id)


@internal.get("/kpis")
def internal_kpis(
    owner: Owner, by: str = "month",
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    dimension: str | None = None,
) -> list[dict[str, Any]]:
    """``growthwheel kpi --json`` for a shell while this server owns the warehouse."""
    from growthwheel.insight.kpis import kpi_frame, kpi_records
    from growthwheel.kit.money import currency_exponent

    exponent = currency_exponent(owner.cfg.shop().currency)
    with owner.read() as con:
        return kpi_records(kpi_frame(con, by=by, start=start, end=end, dimension=dimension,
                                     currency_exponent=exponent))


@internal.get("/report")
def internal_report(owner: Owner, period: str = "week", as_of: date | None = None) -> dict[str, str]:
    """``growthwheel report`` for a shell while this server owns the warehouse."""
    from growthwheel.reports.review import render_review

    shop = owner.cfg.shop()
    with owner.read() as con:
        return {"html": render_review(con, period=period, as_of=as_of, shop_name=shop.name,
                                      currency=shop.currency, cfg=owner.cfg)}


class ReadRequest(BaseModel):
    """The parameters of a named read (``growthwheel.analyst.READS``), as plain JSON."""

    params: dict[str, Any] = Field(default_factory=dict)


@internal.post("/reads/{name}")
def internal_read(name: str, body: ReadRequest, owner: Owner) -> dict[str, Any]:
    """The CLI's insight commands and ``growthwheel.open(...)`` while this server owns the
    warehouse: the same computation (``analyst.compute``) on this server's read snapshot."""
    from growthwheel import analyst

    with owner.read() as con:
        return {"answer": analyst.compute(name, con, owner.cfg, body.params)}


def _job_dict(owner: WarehouseOwner, job_id: str) -> dict[str, Any]:
    job = owner.job(job_id)
    if job is None:
        raise JobNotFoundError(f"no import job {job_id!r} on this server")
    return job.to_dict()


router.include_router(internal)


class WarehouseCounts(BaseModel):
    """Rows per fact table, and events accepted but not yet flushed into ``events``."""

    tables: dict[str, int]
    events_pending: int


@router.get("/warehouse/counts", tags=["warehouse"], response_model=WarehouseCounts)
def get_counts(owner: Owner, _who: Annotated[Principal, Depends(read_scope)]) -> WarehouseCounts:
    """Rows in each warehouse table (a cheap read that waits for no running import, only for a
    ``COMMIT`` statement)."""
    return WarehouseCounts(tables=owner.counts(), events_pending=owner.pending_events())
