"""Dependency graph (service graph) of a set of traces: caller → callee with counts and latency.

An edge is a parent span and a child span in different services (a call hop, as in Jaeger's
service graph and the OpenTelemetry Collector's ``servicegraph`` connector). Its latency is the
caller-side duration of the call — the parent (client) span's — so network time is included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chainotel_analyzer.model.span import Span
from chainotel_analyzer.analysis.stats import percentiles


@dataclass(frozen=True, slots=True)
class GraphNode:
    """A service: its ``spans`` and how many of them failed (``errors``)."""

    service: str
    spans: int
    errors: int


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """Calls from ``caller`` to ``callee``: ``calls``, ``errors`` (failed callee spans) and the
    caller-side latency (**ms**)."""

    caller: str
    callee: str
    calls: int
    errors: int
    avg_ms: float
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class DependencyGraph:
    """Nodes sorted by service, edges by calls descending."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


def dependency_graph(traces: Iterable[Sequence[Span]]) -> DependencyGraph:
    """The service graph of the given traces (see the module docstring)."""
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
        out_edges.append(GraphEdge(caller, callee, calls, errors, sum(lat) / len(lat), p["p50"], p["p95"]))
    return DependencyGraph([GraphNode(k, v[0], v[1]) for k, v in sorted(nodes.items())], out_edges)
