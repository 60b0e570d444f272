"""The worker's ``journeys.tick`` job: evaluate triggers, check goals, advance due enrolments; and
its daily ``journeys.learn`` job: today's learned lifecycle thresholds and product cycles
(:mod:`growthwheel.journeys.learning`), so that no tick learns them.

The warehouse is read the way every worker job reads it (``jobs.warehouse_access``): through the
server when one owns the warehouse (``POST /api/v1/internal/jobs/journeys/tick`` runs the tick
there, on the server's reader), else directly for the length of the tick.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime
from typing import Any

from growthwheel.jobs.scheduler import JobContext
from growthwheel.journeys import learning, service
from growthwheel.journeys.repository import WarehouseView


def run_tick(ctx: JobContext) -> dict[str, Any]:
    """The job: one tick as of ``ctx.now`` (fenced by the job's lease when run here)."""
    from growthwheel.jobs import warehouse_access

    server = warehouse_access._server(ctx.cfg)
    if server is not None:
        found: dict[str, Any] = warehouse_access._call(server, "POST", "/journeys/tick",
                                                       {"now": ctx.now.isoformat()})
        return found
    if ctx.cfg.warehouse == "spark":
        from growthwheel.warehouse.db import connect

        reader: AbstractContextManager[Any] = nullcontext(connect(ctx.cfg))
        return _tick(ctx, reader)
    from ibis import duckdb as ibis_duckdb

    with warehouse_access._direct(ctx.cfg) as con:
        return _tick(ctx, nullcontext(ibis_duckdb.from_connection(con)))


def _tick(ctx: JobContext, reader: AbstractContextManager[Any]) -> dict[str, Any]:
    with reader as backend:
        view = WarehouseView(backend, cache_key=str(ctx.cfg.data_dir))
        return service.tick(ctx.cfg, view, now=ctx.now, check_lease=ctx.check_lease).as_dict()


def tick_on_owner(owner: Any, now: datetime | None) -> dict[str, Any]:
    """The tick run by the server that owns the warehouse (for a worker that asked)."""
    with owner.read() as backend:
        view = WarehouseView(backend, cache_key=str(owner.cfg.data_dir))
        return service.tick(owner.cfg, view, now=now).as_dict()


def _today(cfg: Any, now: datetime | None) -> date:
    """The shop-local day of ``now`` (the day a tick at ``now`` learns for)."""
    from growthwheel.journeys.triggers import Window

    moment = now or datetime.now(UTC)
    return Window(moment, moment, cfg.shop().timezone or "UTC").today


def run_learn(ctx: JobContext) -> dict[str, Any]:
    """The daily job: learn what the triggers learn, once, where the warehouse is read."""
    from growthwheel.jobs import warehouse_access

    server = warehouse_access._server(ctx.cfg)
    if server is not None:
        found: dict[str, Any] = warehouse_access._call(server, "POST", "/journeys/learn",
                                                       {"now": ctx.now.isoformat()})
        return found
    if ctx.cfg.warehouse == "spark":
        from growthwheel.warehouse.db import connect

        return learning.learn_all(connect(ctx.cfg), _today(ctx.cfg, ctx.now), str(ctx.cfg.data_dir))
    from ibis import duckdb as ibis_duckdb

    with warehouse_access._direct(ctx.cfg) as con:
        return learning.learn_all(ibis_duckdb.from_connection(con), _today(ctx.cfg, ctx.now),
                                  str(ctx.cfg.data_dir))


def learn_on_owner(owner: Any, now: datetime | None) -> dict[str, Any]:
    """The daily learning run by the server that owns the warehouse (for a worker that asked)."""
    with owner.read() as backend:
        return learning.learn_all(backend, _today(owner.cfg, now), str(owner.cfg.data_dir))
