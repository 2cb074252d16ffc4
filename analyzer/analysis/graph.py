"""Dependency graph (service graph) of a set of traces: caller → callee with counts and latency.

An edge is a parent span and a child span in different services (a call hop, as in Jaeger's
service graph and the OpenTelemetry Collector's ``servicegraph`` connector). Its latency is the
caller-side duration of the call — the parent (client) span's — so network time is included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chainotel_analyzer.model.span import Span
from chainotel_analyzer.analysis.stats import percentiles


def dependency_graph(traces: Iterable[Sequence[Span]]) -> dict:
    """``{"nodes": [...], "edges": [...]}`` for the given traces.

    nodes: ``{"service", "spans", "errors"}``; edges: ``{"caller", "callee", "calls", "errors",
    "avg_ms", "p50_ms", "p95_ms"}`` (**ms**; ``errors`` counts failed callee spans), sorted by
    calls descending.
    """
    nodes: dict[str, list[int]] = {}
    edges: dict[tuple[str, str], list] = {}
    for spans in traces:
        by_id = {s.span_id: s for s in spans}
        for s in spans:
            node = nodes.setdefault(s.service, [0, 0])
            node[0] += 1
            node[1] += s.is_error
            parent = by_id.get(s.parent_span_id)
            if parent is None or parent.service == s.service:
                continue
            edge = edges.setdefault((parent.service, s.service), [0, 0, []])
            edge[0] += 1
            edge[1] += s.is_error
            edge[2].append(parent.duration_ns / 1e6)
    out_edges = []
    for (caller, callee), (calls, errors, lat) in sorted(edges.items(), key=lambda kv: (-kv[1][0], kv[0])):
        p = percentiles(lat, (50, 95))
        out_edges.append({
            "caller": caller, "callee": callee, "calls": calls, "errors": errors,
            "avg_ms": sum(lat) / len(lat), "p50_ms": p["p50"], "p95_ms": p["p95"],
        })  # fmt: skip
    return {
        "nodes": [{"service": k, "spans": v[0], "errors": v[1]} for k, v in sorted(nodes.items())],
        "edges": out_edges,
    }
