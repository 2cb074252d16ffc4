"""Chain registry (CRUD over ``chain_definitions``) and per chain instance (one trace) views:
events, analysis and critical path.

Chain instance IDs (``{instance_id}``) are the trace ID as a UUID or 32 hex digits
(:func:`chainotel.ids.parse_instance_id`); an unknown instance → 404, a malformed one → 422. With
``CHAINOTEL_JAEGER_UI_URL`` set, the per-instance responses carry ``jaeger_url``, the trace in
Jaeger UI (``<ui>/trace/<trace_id>``, Jaeger UI's trace page); otherwise ``jaeger_url`` is null.

Chain definitions are validated by :class:`chainotel.catalog.ChainDefinition` (422 names the
field); ``POST`` writes version 1 (or + 1 after a deletion), ``PUT`` version + 1, ``DELETE`` a
deletion marker (version + 1), through the :class:`~chainotel_analyzer.store.interfaces.ChainRegistry`
(which serialises them within this process; a write that another analyzer sharing the store got in
first answers 409: read again and retry).

Example::

    GET /api/v1/traces/3f2504e0-4f89-11d3-9a0c-0305e82c3301/critical-path
"""

from __future__ import annotations

import re
from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from chainotel_analyzer.analysis.bottlenecks import contributions, rank_bottlenecks
from chainotel_analyzer.analysis.critical_path import analyze_trace
from chainotel_analyzer.analysis.graph import dependency_graph
from chainotel_analyzer.api.models import (
    ChainRecord, CriticalPathResponse, EventsResponse, InstanceAnalysisResponse, OtlpTrace,
)
from chainotel_analyzer.api.discovery_models import PagedChainList
from chainotel_analyzer.model.otlp_trace import request_json, trace_request
from chainotel_analyzer.api.deps import get_reader, get_registry, get_settings
from chainotel_analyzer.api.errors import error_responses, invalid
from chainotel_analyzer.api.paths import INSTANCE_ID_PATTERN, ChainPath, InstancePath
from chainotel_analyzer.security.http import principal_of
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import ChainExists, ChainRegistry, RegistryConflict, TraceReader, UnknownChain
from chainotel.catalog import Category, ChainDefinition
from chainotel.ids import InvalidInstanceId, format_instance_id, parse_instance_id

router = APIRouter(prefix="/api/v1", tags=["chains"])

def jaeger_url(settings: AnalyzerSettings, trace_id: str) -> str | None:
    """Jaeger UI link to trace ``trace_id`` (32 hex): ``<jaeger_ui_url>/trace/<trace_id>``, or
    ``None`` when ``CHAINOTEL_JAEGER_UI_URL`` is not set.

    >>> jaeger_url(AnalyzerSettings(jaeger_ui_url="http://localhost:16686/"), "0af7651916cd43dd8448eb211c80319c")
    'http://localhost:16686/trace/0af7651916cd43dd8448eb211c80319c'
    """
    ui = settings.jaeger_ui_url
    return f"{ui.rstrip('/')}/trace/{trace_id}" if ui else None


def _trace_id(instance_id: str) -> str:
    try:
        return f"{parse_instance_id(instance_id):032x}"
    except InvalidInstanceId as exc:
        if re.fullmatch(INSTANCE_ID_PATTERN, instance_id):  # the all-zero ID: no trace has it
            raise HTTPException(404, f"unknown chain instance {instance_id!r}: {exc}") from None
        raise invalid(("path", "instance_id"), str(exc), instance_id) from None


def _spans(reader: TraceReader, instance_id: str):
    trace_id = _trace_id(instance_id)
    spans = reader.trace_spans(trace_id)
    if not spans:
        raise HTTPException(404, f"unknown chain instance {instance_id!r}")
    return trace_id, spans


@router.get("/chains/events/{instance_id}", response_model=EventsResponse, responses=error_responses(404))
def events(instance_id: InstancePath, reader: TraceReader = Depends(get_reader), settings: AnalyzerSettings = Depends(get_settings)):
    """The stored spans of one chain instance in time order."""
    trace_id = _trace_id(instance_id)
    rows = reader.trace_events(trace_id)
    if not rows:
        raise HTTPException(404, f"unknown chain instance {instance_id!r}")
    return {"instance_id": format_instance_id(int(trace_id, 16)), "jaeger_url": jaeger_url(settings, trace_id), "events": rows}


@router.get("/traces/{trace_id}", response_model=OtlpTrace, responses=error_responses(404))
def trace(trace_id: InstancePath, reader: TraceReader = Depends(get_reader)):
    """The whole stored trace ``trace_id`` (32 hex digits, or the chain instance UUID) as OTLP/JSON,
    every field each span arrived with (events, links, trace_state, flags, typed attributes, scope and
    resource); 404 for an unknown trace, 422 for a malformed ID."""
    # returned as built: the OTLP/JSON mapping is already JSON-ready (non-finite doubles as strings)
    return JSONResponse(trace_document(trace_id, reader))


def trace_document(trace_id: str, reader: TraceReader) -> dict:
    """What ``GET /api/v1/traces/{trace_id}`` answers: the whole stored trace as an OTLP/JSON
    ``ExportTraceServiceRequest`` dict. Raises ``HTTPException`` 404 (unknown) or 422 (malformed ID)."""
    rows = reader.trace_otlp(_trace_id(trace_id))
    if not rows:
        raise HTTPException(404, f"unknown trace {trace_id!r}: no span of it is stored")
    return request_json(trace_request(rows))


@router.get("/chains/analysis/{instance_id}", response_model=InstanceAnalysisResponse, responses=error_responses(404))
def analysis(instance_id: InstancePath, reader: TraceReader = Depends(get_reader), settings: AnalyzerSettings = Depends(get_settings)):
    """Summary of one chain instance: duration, services, share of error-free spans, services by
    critical time, its service graph and its critical path."""
    trace_id, spans = _spans(reader, instance_id)
    r = analyze_trace(spans)
    main = r.roots[0]
    root = r.spans[main.root_span_id]
    ranking = rank_bottlenecks(contributions([r]))
    return {
        "instance_id": format_instance_id(int(trace_id, 16)),
        "jaeger_url": jaeger_url(settings, trace_id),
        "duration_ms": root.duration_ns / 1e6,
        "service_count": len({s.service for s in spans}),
        "error_free_span_share": sum(1 for s in r.spans.values() if not s.is_error) / len(r.spans),
        "bottlenecks": [
            {"service": e.service, "critical_ms": e.critical_ms_per_trace, "share": e.share} for e in ranking.ranking
        ],
        "dependency_graph": asdict(dependency_graph([list(r.spans.values())])),
        "critical_path": [_section(r, s) for s in main.sections],
    }


def _section(r, sec) -> dict:
    span = r.spans[sec.span_id]
    return {"span_id": sec.span_id, "service": span.service, "operation": span.operation,
            "start_unix_nano": sec.start_ns, "end_unix_nano": sec.end_ns}  # fmt: skip


@router.get("/traces/{instance_id}/critical-path", response_model=CriticalPathResponse, responses=error_responses(404))
def critical_path(instance_id: InstancePath, reader: TraceReader = Depends(get_reader), settings: AnalyzerSettings = Depends(get_settings)):
    """Critical path of one chain instance (Jaeger UI's semantics; orphan subtrees as extra roots
    after the main root), with self and critical time per span and ``jaeger_url``. Integers are
    exact **ns**."""
    trace_id, spans = _spans(reader, instance_id)
    r = analyze_trace(spans)
    main = r.spans[r.roots[0].root_span_id]
    roots = []
    for root in r.roots:
        per: dict[str, int] = {}
        for sec in root.sections:
            svc = r.spans[sec.span_id].service
            per[svc] = per.get(svc, 0) + sec.end_ns - sec.start_ns
        total = sum(per.values())
        roots.append({
            "root_span_id": root.root_span_id,
            "sections": [_section(r, s) for s in root.sections],
            "by_service": [{"service": k, "critical_ms": v / 1e6, "share": v / total if total else 0.0}
                           for k, v in sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))],
        })  # fmt: skip
    return {
        "instance_id": format_instance_id(int(trace_id, 16)),
        "trace_id": trace_id,
        "jaeger_url": jaeger_url(settings, trace_id),
        "chain": max((s.chain for s in spans), default=""),
        "duration_ms": main.duration_ns / 1e6,
        "roots": roots,
        "spans": [
            {"span_id": s.span_id, "parent_span_id": s.parent_span_id, "service": s.service, "operation": s.operation,
             "start_unix_nano": s.start_ns, "duration_ns": s.duration_ns, "self_time_ns": r.self_time_ns[s.span_id],
             "critical_time_ns": r.critical_time_ns[s.span_id]}
            for s in sorted(r.spans.values(), key=lambda s: (s.start_ns, s.span_id))
        ],  # fmt: skip
    }


# --- registry ----------------------------------------------------------------------------------


@router.get("/chains", response_model=PagedChainList)
def list_chains(
    category: Category | None = None,
    limit: int | None = Query(None, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
    registry: ChainRegistry = Depends(get_registry),
):
    """Current chain definitions ordered by ID, optionally of one ``category``, paged by ``limit``
    and ``offset``: ``{"chains": [{"id", "version", "source", "updated_at", "definition"}], "total"
    (matching chains before paging), "limit", "offset"}``."""
    chains = [c for c in registry.list() if category is None or c["definition"].get("category") == category.value]
    page = chains[offset:] if limit is None else chains[offset:offset + limit]
    return {"chains": page, "total": len(chains), "limit": limit, "offset": offset}


@router.get("/chains/{chain}", response_model=ChainRecord, responses=error_responses(404))
def get_chain(chain: ChainPath, registry: ChainRegistry = Depends(get_registry)):
    """One chain definition (404 if unknown or deleted)."""
    found = registry.get(chain)
    if found is None:
        raise HTTPException(404, f"unknown chain {chain!r}")
    return found


@router.post("/chains", status_code=201, response_model=ChainRecord, responses=error_responses(409))
def create_chain(body: ChainDefinition, request: Request, registry: ChainRegistry = Depends(get_registry)):
    """Register a new chain definition (409 if the ID exists; a deleted ID may be re-created)."""
    try:
        return registry.create(body.model_dump(mode="json"), changed_by=principal_of(request).name)
    except (ChainExists, RegistryConflict) as exc:
        raise HTTPException(409, str(exc)) from None


@router.put("/chains/{chain}", response_model=ChainRecord, responses=error_responses(404, 409))
def update_chain(
    chain: ChainPath, body: ChainDefinition, request: Request, registry: ChainRegistry = Depends(get_registry)
):
    """Replace a chain definition: version + 1 (404 if unknown; 422 if the body's ``id`` differs)."""
    if body.id != chain:
        raise invalid(("body", "id"), f"body id {body.id!r} does not match the path {chain!r}", body.id)
    try:
        return registry.put(body.model_dump(mode="json"), changed_by=principal_of(request).name)
    except UnknownChain as exc:
        raise HTTPException(404, str(exc)) from None
    except RegistryConflict as exc:
        raise HTTPException(409, str(exc)) from None


@router.delete("/chains/{chain}", status_code=204, response_class=Response, responses=error_responses(404, 409))
def delete_chain(chain: ChainPath, request: Request, registry: ChainRegistry = Depends(get_registry)):
    """Delete a chain definition (a deletion marker with version + 1; 404 if unknown)."""
    try:
        registry.delete(chain, changed_by=principal_of(request).name)
    except UnknownChain as exc:
        raise HTTPException(404, str(exc)) from None
    except RegistryConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return Response(status_code=204)
