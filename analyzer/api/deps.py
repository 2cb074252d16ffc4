"""What the routers are served, and the FastAPI dependencies that hand it to them.

Routers never see the store's client or the runtime: they declare the narrow interface they use
(:mod:`chainotel_analyzer.store.interfaces`) as a dependency. The app factory
(:func:`chainotel_analyzer.api.app.create_app`) puts one :class:`Services` on the app; tests can
serve fakes the same way.

Example (an analysis router)::

    from fastapi import APIRouter, Depends
    from chainotel_analyzer.api.deps import get_reader
    from chainotel_analyzer.store.interfaces import TraceReader

    router = APIRouter(prefix="/api/v1")

    @router.get("/things")
    def things(reader: TraceReader = Depends(get_reader)) -> ThingsResponse:
        ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from chainotel_analyzer.ingest.receive import Intake
from chainotel_analyzer.monitoring.service import Monitoring
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import ChainRegistry, TraceReader


class StoreProbe(Protocol):
    """Reachability of the store, for ``/health``."""

    url: str
    """The store URL (a password in it is redacted before it is shown)."""

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        ...


@dataclass
class Services:
    """Everything the app serves: ``settings``; the storage interfaces ``reader`` and ``registry``;
    the OTLP/HTTP receiver's ``intake``; ``store`` reachability and the bound ``grpc_port`` (None
    when gRPC is off) for ``/health``."""

    settings: AnalyzerSettings
    reader: TraceReader
    registry: ChainRegistry
    intake: Intake
    store: StoreProbe
    grpc_port: int | None = None
    monitoring: Monitoring | None = None
    """Alert evaluation, notification, metrics and probes (None: not running)."""


def get_services(request: Request) -> Services:
    """The app's :class:`Services`."""
    return request.app.state.services


def get_reader(request: Request) -> TraceReader:
    """The :class:`~chainotel_analyzer.store.interfaces.TraceReader` every analysis query goes through."""
    return request.app.state.services.reader


def get_registry(request: Request) -> ChainRegistry:
    """The :class:`~chainotel_analyzer.store.interfaces.ChainRegistry` of chain definitions."""
    return request.app.state.services.registry


def get_monitoring(request: Request) -> Monitoring:
    """The process's :class:`~chainotel_analyzer.monitoring.service.Monitoring`; 503 when it is not running."""
    monitoring = request.app.state.services.monitoring
    if monitoring is None:
        from fastapi import HTTPException

        raise HTTPException(503, "monitoring is not running in this analyzer process")
    return monitoring


def get_settings(request: Request) -> AnalyzerSettings:
    """The process's :class:`~chainotel_analyzer.settings.AnalyzerSettings` (read once at start)."""
    return request.app.state.services.settings
