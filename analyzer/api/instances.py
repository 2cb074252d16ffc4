"""Instance search: the chain instances (traces) of one chain definition worth looking at — the
slowest, the failed, the most recent, one user's — with deterministic cursor paging; and the seed
scripts' per-instance analysis URL.

``GET /api/v1/chains/{chain}/instances?since&until&status&min_duration_ms&service&user_id&order&limit&cursor``

- the window (``since``/``until``: RFC 3339 or Unix seconds, default the last hour) holds the instances
  whose first span starts in it;
- ``order=duration_desc`` (default) or ``start_desc``, ties broken by ``trace_id``: a total order;
- ``next_cursor`` (``null`` on the last page) is opaque; pass it back as ``cursor`` with the same
  filters. It carries the resolved window, so "the last hour" does not slide between pages, and the
  sort key of the page's last instance (keyset paging: no instance twice, none skipped, whatever the
  page size). A cursor used with other filters than it was made for answers 422.

Reads go through :meth:`~chainotel_analyzer.store.interfaces.TraceReader.chain_instances`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from chainotel.ids import format_instance_id

from chainotel_analyzer.api.analytics import window
from chainotel_analyzer.api.common import known_chain, window_doc
from chainotel_analyzer.api.chains import analysis
from chainotel_analyzer.api.deps import get_reader, get_registry
from chainotel_analyzer.api.errors import error_responses, invalid
from chainotel_analyzer.api.paths import ChainPath
from chainotel_analyzer.api.time_params import TimeQuery
from chainotel_analyzer.api.models import InstanceAnalysisResponse, Window
from chainotel_analyzer.store.interfaces import ChainRegistry, InstanceQuery, TraceReader

router = APIRouter(prefix="/api/v1", tags=["chains"])

DEFAULT_WINDOW_S = 3600
MAX_LIMIT = 500


class InstanceEntry(BaseModel):
    instance_id: str = Field(description="The chain instance: the trace ID as a UUID.")
    trace_id: str = Field(description="The same ID as 32 lowercase hex digits.")
    start_unix_nano: int = Field(description="Start of the instance's first span.")
    duration_ms: float = Field(description="First span start to last span end.")
    root_service: str
    root_operation: str
    error: bool = Field(description="Some span of the instance has status ERROR.")
    services: list[str] = Field(description="Every service.name with a span in the instance, sorted.")


class InstancesResponse(BaseModel):
    chain: str
    window: Window
    order: str
    instances: list[InstanceEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` (same filters) for the next page; null on the last.")


class InstanceFilters(BaseModel):
    """The filters a cursor is bound to (everything but the window, which it carries, and the page size)."""

    chain: str
    status: str
    min_duration_ms: float
    service: str | None
    user_id: str | None
    order: str

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def encode_cursor(since_ns: int, until_ns: int, key: tuple[int, str], filters: InstanceFilters) -> str:
    """An opaque cursor (URL-safe base64 of JSON) for the page after sort key ``key``."""
    doc = {"s": since_ns, "u": until_ns, "k": key[0], "t": key[1], "f": filters.fingerprint()}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, filters: InstanceFilters) -> tuple[int, int, tuple[int, str]]:
    """``(since_ns, until_ns, after key)`` of ``cursor``; 422 when it is malformed or made for other filters."""
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        since_ns, until_ns, key, trace_id, fp = int(doc["s"]), int(doc["u"]), int(doc["k"]), str(doc["t"]), doc["f"]
    except (ValueError, KeyError, TypeError):
        raise invalid(("query", "cursor"), "not a cursor from this endpoint; drop it to start at the first page") from None
    if fp != filters.fingerprint():
        raise invalid(("query", "cursor"), "it was made for other filters; keep the filters while paging, "
                                           "or drop the cursor to start again")  # fmt: skip
    return since_ns, until_ns, (key, trace_id)


@router.get("/chains/{chain}/instances", response_model=InstancesResponse, responses=error_responses(404))
def chain_instances(
    chain: ChainPath,
    since: TimeQuery = None,
    until: TimeQuery = None,
    status: Literal["error", "ok", "any"] = Query("any", description="error: some span failed; ok: none did."),
    min_duration_ms: float = Query(0.0, ge=0, le=10**12),
    service: str | None = Query(None, max_length=256, description="Has a span of this service.name."),
    user_id: str | None = Query(None, max_length=256, description="Has a span with this enduser.id."),
    order: Literal["duration_desc", "start_desc"] = "duration_desc",
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(None, max_length=512, description="`next_cursor` of the previous page."),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
):
    """Instances of chain definition ``chain`` (404 if unknown) whose first span starts in the window,
    filtered and ordered as asked, one page of ``limit`` at a time."""
    known_chain(registry, chain)
    filters = InstanceFilters(chain=chain, status=status, min_duration_ms=min_duration_ms, service=service,
                              user_id=user_id, order=order)  # fmt: skip
    if cursor:
        since_ns, until_ns, after = decode_cursor(cursor, filters)
    else:
        (since_ns, until_ns), after = window(since, until, DEFAULT_WINDOW_S), None
    query = InstanceQuery(chain, since_ns, until_ns, status, int(min_duration_ms * 1e6), service, user_id, order,
                          after, limit + 1)  # fmt: skip
    found = reader.chain_instances(query)
    page = found[:limit]
    next_cursor = encode_cursor(since_ns, until_ns, page[-1].sort_key(order), filters) if len(found) > limit else None
    return {
        "chain": chain,
        "window": window_doc(since_ns, until_ns),
        "order": order,
        "instances": [
            {"instance_id": format_instance_id(int(i.trace_id, 16)), "trace_id": i.trace_id, "start_unix_nano": i.start_ns,
             "duration_ms": i.duration_ns / 1e6, "root_service": i.root_service, "root_operation": i.root_operation,
             "error": i.error, "services": list(i.services)}
            for i in page
        ],  # fmt: skip
        "next_cursor": next_cursor,
    }


router.add_api_route(
    "/analytics/chains/trace/{instance_id}", analysis, methods=["GET"], response_model=InstanceAnalysisResponse, responses=error_responses(404),
    summary="Analysis of one chain instance (the seed scripts' URL)",
    description="The same answer as `GET /api/v1/chains/analysis/{instance_id}`, under the URL the seed "
    "design's scripts call.",
)
