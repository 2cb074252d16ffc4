"""Discovery and drift routes: ``POST /api/v1/discovery/scan`` (proposed chains from the traces that
carry none) and ``GET /api/v1/chains/{chain}/drift`` (a chain's observed topology against its
definition). The computing is in :mod:`chainotel_analyzer.analysis.discovery` and
:mod:`chainotel_analyzer.analysis.drift`; the method is described in ``docs/discovery.md``.

Times are RFC 3339 or Unix seconds, as for the analysis endpoints; the default window is the last hour.

Example::

    POST /api/v1/discovery/scan  {"since": "2026-12-01T12:00:00Z", "min_traces": 10}
    GET  /api/v1/chains/B3/drift?since=1764590400
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Query

from chainotel_analyzer.analysis.discovery import HTTP_ATTRIBUTES, chain_shapes, propose
from chainotel_analyzer.analysis.drift import topology_drift
from chainotel_analyzer.api.analytics import IncludeSynthetic
from chainotel_analyzer.api.common import known_chain, window_doc
from chainotel_analyzer.api.analytics import window
from chainotel_analyzer.api.catalog import registered_catalog
from chainotel_analyzer.api.deps import get_reader, get_registry
from chainotel_analyzer.api.errors import error_responses
from chainotel_analyzer.api.paths import ChainPath
from chainotel_analyzer.api.time_params import TimeQuery
from chainotel_analyzer.api.discovery_models import DriftResponse, ScanRequest, ScanResponse
from chainotel_analyzer.store.interfaces import DEFAULT_MAX_TRACES, ChainRegistry, TraceReader

router = APIRouter(prefix="/api/v1", tags=["discovery"])


@router.post("/discovery/scan", response_model=ScanResponse)
def scan(body: ScanRequest | None = None, reader: TraceReader = Depends(get_reader),
         registry: ChainRegistry = Depends(get_registry)):  # fmt: skip
    """Proposed chains from the window's traces that carry no chain, grouped by entry point (each
    with a definition ready for ``POST /api/v1/chains``, its confidence and evidence), and the tagged
    chains whose traces fall into clearly different shapes. Nothing is stored."""
    body = body or ScanRequest()
    s, u = window(body.since, body.until, 3600, where="body")
    total, traces = reader.window_traces(s, u, None, body.max_traces)
    untagged = {t: spans for t, spans in traces.items() if not any(sp.chain for sp in spans)}
    attributes = reader.span_attributes(list(untagged), HTTP_ATTRIBUTES)
    catalog = registered_catalog(registry)
    proposals = propose(untagged, attributes, [c.id for c in catalog.chains], body.min_traces, body.min_share)
    out = []
    for p in proposals:
        entry = p.entry
        attrs = {"http.route": entry.route} if entry.route else {}
        if entry.method:
            attrs["http.request.method"] = entry.method
        matched = catalog.match(service=entry.service, span_name=entry.span_name, attributes=attrs)
        evidence = {**p.evidence, "matches_registered_chain": matched.id if matched else None}
        out.append({"definition": p.definition, "confidence": p.confidence, "evidence": evidence,
                    "services": p.services, "traces": p.traces})  # fmt: skip
    return {
        "window": window_doc(s, u),
        "traces": total,
        "analysed_traces": len(traces),
        "untagged_traces": len(untagged),
        "proposals": out,
        "shapes": [asdict(c) for c in chain_shapes(traces)],
    }


def _edge_pairs(edges: list) -> list[tuple[str, str]]:
    """A stored definition's edges (``{"caller", "callee"}`` or ``"a -> b"``) as pairs."""
    out = []
    for e in edges:
        if isinstance(e, str) and "->" in e:
            a, b = (x.strip() for x in e.split("->", 1))
            out.append((a, b))
        elif isinstance(e, dict):
            out.append((e.get("caller", ""), e.get("callee", "")))
    return out


def chain_drift(reader: TraceReader, chain: str, definition: dict, since_ns: int, until_ns: int,
                max_traces: int = DEFAULT_MAX_TRACES, include_synthetic: bool = False) -> dict:
    """The :class:`DriftResponse` document of ``chain`` (its stored ``definition``) over the traces
    starting in ``[since_ns, until_ns)`` (at most ``max_traces``, sampled by trace-ID hash; synthetic
    probe traces only with ``include_synthetic``)."""
    total, traces = reader.window_traces(since_ns, until_ns, chain, max_traces, include_synthetic)
    d = topology_drift(traces.values(), definition.get("expected_services", []), _edge_pairs(definition.get("edges", [])))
    return {"chain": chain, "window": window_doc(since_ns, until_ns), "traces": total, "analysed_traces": len(traces),
            "drifted": d.drifted, **asdict(d)}  # fmt: skip


@router.get("/chains/{chain}/drift", response_model=DriftResponse, responses=error_responses(404))
def drift(
    chain: ChainPath,
    since: TimeQuery = None,
    until: TimeQuery = None,
    max_traces: int = Query(DEFAULT_MAX_TRACES, ge=1, le=100_000),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
    include_synthetic: IncludeSynthetic = False,
):
    """Topology drift of a registered chain over the window (default: last hour): services seen but
    not expected (with trace counts), expected but not seen, and edges seen but not in the definition
    (compared only when the definition declares edges). 404 for an unknown chain."""
    definition = known_chain(registry, chain)
    s, u = window(since, until, 3600)
    return chain_drift(reader, chain, definition, s, u, max_traces, include_synthetic)
