"""``GET /health``: store reachability and write-queue depth (200 when the store answers, else 503)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from chainotel_analyzer.api.deps import Services, get_services
from chainotel_analyzer.store.interfaces import STORE_UNAVAILABLE_REASON

router = APIRouter(tags=["health"])


class StoreHealth(BaseModel):
    url: str = Field(description="Store URL, password redacted; for chDB only chdb:// (the directory is in the start-up log).")
    reachable: bool
    error: str = Field(description="Why writes fail while unreachable (the store's own error is logged), else ''.")


class WriteQueue(BaseModel):
    depth_spans: int = Field(description="Spans waiting for their INSERT.")
    max_spans: int = Field(description="Past this many waiting spans receivers answer 503 / UNAVAILABLE.")
    depth_bytes: int = Field(description="Bytes of decoded spans waiting (resource attributes counted per span).")
    max_bytes: int = Field(description="Past this many waiting bytes receivers answer 503 / UNAVAILABLE.")
    inserts: int
    spans_written: int
    insert_seconds: float = Field(description="Seconds spent in INSERTs since start.")


class Decoders(BaseModel):
    pending_bytes: int = Field(description="Request bytes waiting for a decoder process.")
    max_pending_bytes: int


class HealthResponse(BaseModel):
    status: str = Field(description="'ok' or 'unavailable'.")
    store: StoreHealth
    write_queue: WriteQueue
    decoders: Decoders
    grpc_port: int | None = Field(description="Bound OTLP/gRPC port, null when gRPC is off.")


def _redact(url: str) -> str:
    """``url`` without its password, and for an embedded chDB store without its directory: /health
    answers unauthenticated, and a server path is for the log (the start-up line names it)."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return "chdb://"
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@router.get("/health", summary="Store reachability and write-queue depth", response_model=HealthResponse,
            responses={503: {"model": HealthResponse, "description": "The store does not answer"}})  # fmt: skip
def health(services: Services = Depends(get_services)) -> JSONResponse:
    """The analyzer's health: 200 with ``status`` ``ok`` when the store answers and takes writes,
    else 503 (with ``Retry-After``) with ``unavailable`` and the last error. Needs no token."""
    sink, settings = services.intake.sink, services.settings
    reachable = services.store.ping() and sink.healthy
    body = HealthResponse(
        status="ok" if reachable else "unavailable",
        store=StoreHealth(url=_redact(services.store.url), reachable=reachable, error="" if reachable else STORE_UNAVAILABLE_REASON),
        write_queue=WriteQueue(depth_spans=sink.queue_depth, max_spans=settings.queue_max_spans,
                               depth_bytes=sink.queue_bytes, max_bytes=settings.queue_max_bytes, inserts=sink.inserts,
                               spans_written=sink.spans_written, insert_seconds=round(sink.insert_seconds, 3)),
        decoders=Decoders(pending_bytes=services.intake.decoders.pending_bytes,
                          max_pending_bytes=settings.decode_max_pending_bytes),
        grpc_port=services.grpc_port,
    )  # fmt: skip
    if reachable:
        return JSONResponse(body.model_dump())
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": str(settings.retry_after_s)})
