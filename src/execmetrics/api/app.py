"""The FastAPI application: API routes, dashboard pages, and the guards around them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from execmetrics import __version__
from execmetrics.accounts.jwt import JwtVerifier
from execmetrics.alerts.scheduler import start_scheduler
from execmetrics.api import problems
from execmetrics.api.deps import ServerState, read_in_aggregate
from execmetrics.api.middleware import RequestGuard
from execmetrics.api.routes import (
    admin,
    alerts,
    analytics,
    churn,
    events,
    health,
    kpis,
    metrics,
    segments,
)
from execmetrics.audit.writer import AuditWriter
from execmetrics.config import Settings
from execmetrics.logs import configure_json_logging
from execmetrics.metrics.cache import DocumentCache
from execmetrics.ratelimit import make_limiter
from execmetrics.store.database import open_database
from execmetrics.web import pages

DESCRIPTION = """Exact SaaS metrics of one subscription business: MRR, ARR and their movements,
churn, retention, LTV, CAC and cohorts (definitions in docs/metrics.md).

Authenticate with `Authorization: Bearer <token>`: an API token (`execmetrics tokens create`)
or a JWT carrying a role claim. Errors are RFC 9457 `application/problem+json`."""


log = logging.getLogger("execmetrics.server")


def load_ledger_now(state: ServerState) -> None:
    """Read the movement ledger into memory before the first request needs it."""
    try:
        with state.engine.begin() as connection:
            read_in_aggregate(connection)
            state.cache.current_ledger(connection)
    except Exception as error:  # the first request that needs it reads it instead
        log.warning("the movement ledger was not read at start-up: %s", error)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.server
    await to_thread.run_sync(load_ledger_now, state)
    running = None
    if state.settings.scheduler:
        running = start_scheduler(
            state.settings, state.engine, state.wake_scheduler, state.cache.ledger,
            state.wake_analytics,
        )  # fmt: skip
    yield
    if running is not None:
        await to_thread.run_sync(running.stop)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    app = FastAPI(
        lifespan=lifespan,
        title="execmetrics",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.server = ServerState(
        settings=settings,
        engine=engine or open_database(settings.database_url),
        limiter=make_limiter(settings.redis_url),
        jwt=JwtVerifier.from_settings(settings),
        cache=DocumentCache(settings.redis_url),
    )
    problems.install(app)
    for module in (health, metrics, kpis, alerts, analytics, churn, segments, events, admin):
        app.include_router(module.router)
    pages.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "Retry-After",
            ],
        )
    app.add_middleware(
        RequestGuard,
        audit=AuditWriter(app.state.server.engine),
        max_body_bytes=settings.max_body_bytes,
    )
    return app


def app_from_environment() -> FastAPI:
    """The app for `uvicorn --factory` and server worker processes: settings from the
    environment, refused outside development with a default secret."""
    settings = Settings()
    settings.check_for_serving()
    configure_json_logging()
    return create_app(settings)
