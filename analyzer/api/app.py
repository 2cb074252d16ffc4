"""The analyzer's FastAPI app factory.

Mounted routers are listed in :func:`routers` — the one place to register a router (analysis routers
are appended there). Every router reaches the store through :mod:`chainotel_analyzer.api.deps`.

Run it the way ``chainotel-analyzer serve`` does (one uvicorn worker: the process owns the chDB
directory)::

    from chainotel_analyzer.api.app import create_app
    app = create_app()                 # opens the store at startup, closes it at shutdown
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from chainotel_analyzer.api.serving import ConcurrencyLimit
from chainotel_analyzer.runtime import Runtime, start_runtime
from chainotel_analyzer.security.http import AuthMiddleware
from chainotel_analyzer.settings import AnalyzerSettings


def routers() -> list[APIRouter]:
    """Every router of the app, in mount order. Register new routers here."""
    from chainotel_analyzer.api.analytics import router as analytics_router
    from chainotel_analyzer.api.chains import router as chains_router
    from chainotel_analyzer.api.health import router as health_router
    from chainotel_analyzer.ingest.http import router as otlp_router

    return [
        otlp_router,  # POST /v1/traces (OTLP/HTTP)
        health_router,  # GET /health
        # analysis routers (issue 4) go below this line
        chains_router,  # /api/v1/chains..., /api/v1/traces/{chain_id}/critical-path
        analytics_router,  # /api/v1/analytics/..., /api/v1/chains/{chain}/bottlenecks|dependency-graph
    ]


def create_app(settings: AnalyzerSettings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. The app serves ``runtime`` if given (already started, e.g. by the CLI to report a
    locked data directory before uvicorn starts), else starts one from ``settings`` (default: the
    environment) at startup. Either way the runtime is closed at shutdown — in the lifespan, because
    uvicorn re-raises SIGTERM/SIGINT after shutdown and code after ``uvicorn.run`` may never run.
    """
    settings = runtime.settings if runtime is not None else (settings or AnalyzerSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.runtime = runtime if runtime is not None else start_runtime(settings)
        try:
            yield
        finally:
            app.state.runtime.close()

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
    # outermost last: CORS (only with configured origins) answers preflights before authentication
    app.add_middleware(AuthMiddleware, tokens=lambda: app.state.runtime.tokens)
    app.add_middleware(ConcurrencyLimit, limit=settings.http_max_concurrency, retry_after_s=settings.retry_after)
    origins = settings.cors_origins()
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "content-encoding"],
        )  # fmt: skip
    return app
