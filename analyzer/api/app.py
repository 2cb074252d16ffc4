"""The analyzer's FastAPI app factory.

Mounted routers are listed in :func:`routers` — the one place to register a router (analysis routers
are appended there). Every router reaches storage through the dependencies of
:mod:`chainotel_analyzer.api.deps`.

Run it the way ``chainotel-analyzer serve`` does (one uvicorn worker: the process owns the chDB
directory)::

    from chainotel_analyzer.api.app import create_app
    from chainotel_analyzer.runtime import start_runtime
    app = create_app(start_runtime(settings))   # closes the runtime at shutdown
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from chainotel_analyzer.api.console.auth import ConsoleAuthMiddleware
from chainotel_analyzer.api.deps import Services
from chainotel_analyzer.api.errors import MethodNotAllowed, install_errors
from chainotel_analyzer.api.serving import ConcurrencyLimit
from chainotel_analyzer.security.openapi import document_security


class Served(Protocol):
    """A started runtime (:class:`chainotel_analyzer.runtime.Runtime`): its :class:`Services`, and
    ``close()`` to stop it."""

    def services(self) -> Services: ...

    def close(self) -> None: ...


def routers() -> list[APIRouter]:
    """Every router of the app, in mount order. Register new routers here."""
    from chainotel_analyzer.api.analytics import router as analytics_router
    from chainotel_analyzer.api.catalog import router as catalog_router
    from chainotel_analyzer.api.chains import router as chains_router
    from chainotel_analyzer.api.console.alerts import router as console_alerts_router
    from chainotel_analyzer.api.console.auth import router as console_auth_router
    from chainotel_analyzer.api.console.pages import router as console_router
    from chainotel_analyzer.api.discovery import router as discovery_router
    from chainotel_analyzer.api.health import router as health_router
    from chainotel_analyzer.api.instances import router as instances_router
    from chainotel_analyzer.api.monitoring import router as monitoring_router
    from chainotel_analyzer.ingest.http import router as otlp_router

    return [
        otlp_router,  # POST /v1/traces (OTLP/HTTP)
        health_router,  # GET /health
        # analysis routers below this line
        chains_router,  # /api/v1/chains..., /api/v1/traces/{instance_id}/critical-path
        analytics_router,  # /api/v1/analytics/..., /api/v1/chains/{chain}/bottlenecks|dependency-graph
        instances_router,  # /api/v1/chains/{chain}/instances, /api/v1/analytics/chains/trace/{instance_id}
        console_router,  # / -> /ui/, the console's pages
        console_alerts_router,  # /ui/alerts
        console_auth_router,  # /ui/login, /ui/logout
        monitoring_router,  # /api/v1/alerts..., /api/v1/chains/{chain}/health, /metrics
        discovery_router,  # /api/v1/discovery/scan, /api/v1/chains/{chain}/drift
        catalog_router,  # /api/v1/catalog (the registry as a catalog, polled by services)
    ]


def create_app(runtime: Served) -> FastAPI:
    """Build the app serving ``runtime`` (already started: :func:`chainotel_analyzer.runtime.start_runtime`,
    so that a locked data directory is reported before uvicorn starts). The runtime is closed at
    shutdown — in the lifespan, because uvicorn re-raises SIGTERM/SIGINT after shutdown and code
    after ``uvicorn.run`` may never run.

    Middleware, outermost first: CORS (only with ``cors_allow_origins``), the in-flight request
    limit (:class:`~chainotel_analyzer.api.serving.ConcurrencyLimit`), authentication before any
    body is read (:class:`~chainotel_analyzer.api.console.auth.ConsoleAuthMiddleware`: bearer tokens
    by :class:`~chainotel_analyzer.security.http.AuthMiddleware`, browser sessions for the console),
    405 for a method the path does not have (:class:`~chainotel_analyzer.api.errors.MethodNotAllowed`).
    Error bodies: :mod:`chainotel_analyzer.api.errors`.
    """
    services = runtime.services()
    settings = services.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.services = services
        app.state.intake = services.intake  # the OTLP/HTTP receiver's dependency
        try:
            yield
        finally:
            runtime.close()

    app = FastAPI(
        title="chainotel analyzer",
        summary="OTLP intake into ClickHouse and chain analysis",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    for router in routers():
        app.include_router(router)
    install_errors(app)
    document_security(app, services.tokens is not None)
    # add_middleware wraps: the last added is outermost
    app.add_middleware(MethodNotAllowed, paths=lambda: app.openapi()["paths"])
    app.add_middleware(ConsoleAuthMiddleware, tokens=lambda: services.tokens)
    app.add_middleware(ConcurrencyLimit, limit=settings.http_max_concurrency, retry_after_s=settings.retry_after_s,
                       max_body_bytes=settings.http_max_body_bytes)  # fmt: skip
    origins = settings.cors_origins()
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "content-encoding"],
        )  # fmt: skip
    return app
