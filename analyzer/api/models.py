"""Response models of every API route (they make the OpenAPI document exact).

Vocabulary: ``chain`` is a chain *definition* (``"B3"``); ``instance_id`` a chain *instance* — the
trace ID as a UUID (``trace_id`` is the same ID as 32 hex digits); ``span_id`` a span. Units are in
the field names: ``*_ns`` / ``*_unix_nano`` integers in nanoseconds (exact), ``*_ms`` floats in
milliseconds, ``*_per_min`` per minute; ``share`` and ``*_rate`` are 0–1. ``success_rate`` is always
the share of *traces* without an error; ``error_free_span_share`` counts spans.
"""

from __future__ import annotations

from typing import get_type_hints

from pydantic import BaseModel, Field, create_model

from chainotel_analyzer.analysis.aggregate import CallPathTime, OperationTime
from chainotel_analyzer.analysis.anomalies import Anomaly
from chainotel_analyzer.analysis.graph import GraphEdge, GraphNode
from chainotel_analyzer.analysis.health import ChainHealth
from chainotel_analyzer.analysis.impact import ChainImpact


class Window(BaseModel):
    """A time window: RFC 3339 and Unix ns bounds, ``[since, until)``; trace counts where the route gives them."""

    since: str
    until: str
    since_unix_nano: int
    until_unix_nano: int
    traces: int | None = None
    analysed_traces: int | None = None


class Section(BaseModel):
    """A piece of critical path: span ``span_id`` is what the trace waits on from ``start_unix_nano`` to ``end_unix_nano``."""

    span_id: str
    service: str
    operation: str
    start_unix_nano: int
    end_unix_nano: int


class ServiceShare(BaseModel):
    """A service's critical time in one root's path (ms) and its share of it."""

    service: str
    critical_ms: float
    share: float


class RootPath(BaseModel):
    """The critical path of one root span (the main root first, then orphan subtrees)."""

    root_span_id: str
    sections: list[Section]
    by_service: list[ServiceShare]


class SpanTimes(BaseModel):
    """One span with its self time and critical time (exact ns)."""

    span_id: str
    parent_span_id: str
    service: str
    operation: str
    start_unix_nano: int
    duration_ns: int
    self_time_ns: int
    critical_time_ns: int


class CriticalPathResponse(BaseModel):
    """The critical path of one chain instance."""

    instance_id: str
    trace_id: str
    jaeger_url: str | None = None
    chain: str
    duration_ms: float
    roots: list[RootPath]
    spans: list[SpanTimes]


class RankingEntry(BaseModel):
    """One ranked service (``operation`` null) or operation; ms per trace."""

    service: str
    operation: str | None = None
    critical_ms_per_trace: float
    share: float
    p95_ms: float
    delta_ms_per_trace: float | None
    score: float


class BottlenecksResponse(BaseModel):
    """Bottleneck ranking over a window, optionally against a baseline window."""

    window: Window
    baseline: Window | None
    traces: int
    chain: str | None
    group_by: str
    ranking: list[RankingEntry]


ChainHealthEntry = create_model(
    "ChainHealthEntry",
    name=(str, ...),
    **{field: (hint, ...) for field, hint in get_type_hints(ChainHealth).items()},
)
"""A registered chain's name and its :class:`~chainotel_analyzer.analysis.health.ChainHealth`."""


class HealthOverviewResponse(BaseModel):
    """Health of every registered chain over a window, with a count per status."""

    window: Window
    summary: dict[str, int]
    chains: list[ChainHealthEntry]


class AnomaliesResponse(BaseModel):
    """Anomalies of the last window against the baseline windows before it."""

    window: Window
    baseline: Window
    anomalies: list[Anomaly]


class ChainRecord(BaseModel):
    """One version of a chain definition in the registry."""

    id: str = Field(description="The chain definition ID (A1..E7).")
    version: int
    source: str = Field(description="'catalog' (seeded) or 'api' (written through this API).")
    updated_at: str = Field(description="RFC 3339 time of this version.")
    definition: dict = Field(description="The definition (chainotel.catalog.ChainDefinition as JSON).")


class ChainList(BaseModel):
    """Every current chain definition."""

    chains: list[ChainRecord]


class Event(BaseModel):
    """One stored span of a chain instance (``chain_history`` columns by their served names)."""

    instance_id: str
    trace_id: str
    span_id: str
    parent_span_id: str
    service_name: str
    operation: str
    span_kind: str
    event_type: str = Field(description="'error' for status ERROR, else 'complete'.")
    timestamp: str = Field(description="Span start, RFC 3339 with nanoseconds.")
    start_unix_nano: int
    duration_ns: int
    endpoint: str
    user_id: str
    chain: str
    category: str
    status_code: str
    status_message: str
    error_context: str
    peer_service: str
    span_attributes: dict[str, str]
    resource_attributes: dict[str, str]


class EventsResponse(BaseModel):
    """The stored spans of one chain instance in time order."""

    instance_id: str
    jaeger_url: str | None = None
    events: list[Event]


class ServiceCritical(BaseModel):
    """A service's critical time in one trace (ms) and its share of the path."""

    service: str
    critical_ms: float
    share: float


class GraphResponse(BaseModel):
    """A service graph: nodes and caller → callee edges."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


class InstanceAnalysisResponse(BaseModel):
    """Summary of one chain instance."""

    instance_id: str
    jaeger_url: str | None = None
    duration_ms: float = Field(description="Duration of the main root span.")
    service_count: int
    error_free_span_share: float = Field(description="Share of the instance's spans without error status.")
    bottlenecks: list[ServiceCritical]
    dependency_graph: GraphResponse
    critical_path: list[Section]


class AggregatedCriticalPathResponse(BaseModel):
    """The critical path aggregated over a window's traces (CRISP)."""

    window: Window
    chain: str | None
    traces: int
    by_call_path: list[CallPathTime]
    by_operation: list[OperationTime]


class DependencyGraphResponse(BaseModel):
    """The service graph of a chain's traces in a window."""

    chain: str
    window: Window
    traces: int
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class ChainTraffic(BaseModel):
    """One chain's traffic in the window."""

    chain: str = Field(description="The chain definition, '' for traces without a chain.")
    traces: int
    throughput_per_min: float
    avg_duration_ms: float
    p95_ms: float
    error_rate: float


class PerformanceResponse(BaseModel):
    """Traffic over the window (default: the last 5 minutes), in all and per chain."""

    window: Window
    active_chains: int = Field(description="Chain definitions with traces in the window.")
    traces: int
    throughput_per_min: float
    avg_duration_ms: float
    error_rate: float
    chains: list[ChainTraffic]


class ImpactResponse(BaseModel):
    """The chains a service takes part in and its share of their critical path."""

    service: str
    window: Window
    chains: list[ChainImpact]


class RecommendationEntry(BaseModel):
    """One recommendation for one chain (rules: docs/analysis-method.md)."""

    chain: str
    type: str = Field(description="The rule: parallelize, n_plus_one or sla_breach.")
    service: str
    operation: str | None
    message: str
    evidence: dict


class RecommendationsResponse(BaseModel):
    """Recommendations with evidence per chain over a window."""

    window: Window
    recommendations: list[RecommendationEntry]
