"""The application factory: one FastAPI app serving the REST API (``/api/v1``) and the console."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from growthwheel import __version__
from growthwheel.api import admission, deps, docs, errors
from growthwheel.api import warehouse as warehouse_api
from growthwheel.config import Settings, settings
from growthwheel.store.db import migrate

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"

#: Modules that expose ``router`` (an ``APIRouter``); mounted in this order.
ROUTER_MODULES: tuple[str, ...] = (
    "growthwheel.accounts.api",
    "growthwheel.api.warehouse",
    "growthwheel.events.api",
    "growthwheel.customers.api",
    "growthwheel.insight.api",
    "growthwheel.insight.reports_api",
    "growthwheel.api.imports",
    "growthwheel.segments.api",
    "growthwheel.social.api",
    "growthwheel.segments.pages",
    "growthwheel.promotions.api",
    "growthwheel.loyalty.api",
    "growthwheel.experiments.api",
    "growthwheel.experiments.pages",
    "growthwheel.jobs.internal",
    "growthwheel.jobs.pages",
    "growthwheel.promotions.pages",
    "growthwheel.loyalty.pages",
    "growthwheel.insight.pages",
    "growthwheel.journeys.api",
    "growthwheel.journeys.rest",
    "growthwheel.marketing.api",
    "growthwheel.marketing.campaigns.api",
    "growthwheel.marketing.influencers.api",
    "growthwheel.recs.api",
    "growthwheel.inventory.api",
    "growthwheel.inventory.pages",
    "growthwheel.products.api",
    "growthwheel.products.pages",
    "growthwheel.marketing.pages",
    "growthwheel.marketing.campaigns.pages",
    "growthwheel.alerts.api",
    "growthwheel.alerts.pages",
    "growthwheel.surveys.api",
    "growthwheel.surveys.pages",
    "growthwheel.surveys.public",
    "growthwheel.voice.api",
    "growthwheel.voice.pages",
    "growthwheel.journeys.pages",
    "growthwheel.customers.pages",
    "growthwheel.web.table_export",
    "growthwheel.api.imports_pages",
    "growthwheel.web.pages",
)


def default_routers() -> list[APIRouter]:
    """Every domain's router."""
    return [importlib.import_module(name).router for name in ROUTER_MODULES]


def create_app(cfg: Settings | None = None, routers: Sequence[APIRouter] | None = None, *,
               with_warehouse: bool = True) -> FastAPI:
    """Build the app for ``cfg``: on start-up it migrates the operational store and takes
    ownership of the warehouse (see ``warehouse/owner.py``); on shutdown it lets go."""
    cfg = cfg or settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate(cfg)
        yield

    app = FastAPI(
        title="Growthwheel",
        version=__version__,
        docs_url=None,  # /api/docs and /api/redoc from vendored assets: api/docs.py
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.cfg = cfg
    errors.install(app)
    deps.install(app)
    admission.install(app, cfg.server)
    health = APIRouter(prefix="/api/v1", tags=["health"])

    @health.get("/health", summary="Liveness: the server answers")
    async def get_health() -> dict[str, str]:
        """Answered on the event loop: no worker thread, no database connection, no admission."""
        return {"status": "ok", "version": __version__}

    app.include_router(health)
    for router in default_routers() if routers is None else routers:
        app.include_router(router)
    docs.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if with_warehouse:  # False: a worker of ``serve --workers`` that does not own it (api/workers.py)
        warehouse_api.install(app)  # the server owns the warehouse while it runs
    return app
