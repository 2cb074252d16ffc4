"""FastAPI dependencies every router may use to reach the store.

Example (an analysis router)::

    from fastapi import APIRouter, Depends
    from chainotel_analyzer.api.deps import get_store
    from chainotel_analyzer.store.client import Store

    router = APIRouter(prefix="/api/v1")

    @router.get("/things")
    def things(store: Store = Depends(get_store)):
        return store.client.query("SELECT count() FROM chain_history").result_rows
"""

from __future__ import annotations

from typing import Protocol

from fastapi import Request

from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.client import Store


class Runtime(Protocol):
    """What the app serves (implemented by :class:`chainotel_analyzer.runtime.Runtime`)."""

    settings: AnalyzerSettings
    store: Store

    def close(self) -> None: ...


def get_runtime(request: Request) -> Runtime:
    """The process's :class:`Runtime` (settings, store, writer)."""
    return request.app.state.runtime


def get_store(request: Request) -> Store:
    """The open :class:`~chainotel_analyzer.store.client.Store`; ``store.client`` runs read queries."""
    return request.app.state.runtime.store


def get_settings(request: Request) -> AnalyzerSettings:
    """The process's :class:`~chainotel_analyzer.settings.AnalyzerSettings` (read once at start)."""
    return request.app.state.runtime.settings
