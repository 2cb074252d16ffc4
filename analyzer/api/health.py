"""``GET /health``: store reachability and write-queue depth (200 when the store answers, else 503)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@router.get("/health", summary="Store reachability and write-queue depth")
def health(request: Request) -> JSONResponse:
    """``{"status": "ok"|"unavailable", "store": {"url", "reachable", "error"}, "write_queue": {...},
    "decoders": {...}, "grpc_port"}``.

    ``write_queue.depth_spans`` counts spans waiting for their INSERT; ``max_spans`` is the bound past
    which receivers answer 503 / UNAVAILABLE (as past ``max_bytes`` of ``depth_bytes``). A 503 carries
    ``Retry-After``.
    """
    runtime = request.app.state.runtime
    writer = runtime.writer
    reachable = runtime.store.ping() and writer.healthy
    body = {
        "status": "ok" if reachable else "unavailable",
        "store": {
            "url": _redact(runtime.store.url),
            "reachable": reachable,
            "error": "" if reachable else writer.last_error,
        },
        "write_queue": {
            "depth_spans": writer.queue_depth,
            "max_spans": runtime.settings.queue_max_spans,
            "depth_bytes": writer.queue_bytes,
            "max_bytes": runtime.settings.queue_max_bytes,
            "inserts": writer.inserts,
            "spans_written": writer.spans_written,
            "insert_seconds": round(writer.insert_seconds, 3),
        },
        "decoders": {
            "pending_bytes": runtime.decoders.pending_bytes,
            "max_pending_bytes": runtime.settings.decode_max_pending_bytes,
        },
        "grpc_port": runtime.grpc_port,
    }
    if reachable:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(runtime.settings.retry_after)})
