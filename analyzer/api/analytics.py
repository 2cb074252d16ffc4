"""Analysis endpoints over a time window: bottlenecks, health, performance, anomalies, impact,
recommendations and the dependency graph of a chain.

Where the HTTP layer of the analysis lives; the computing is in :mod:`chainotel_analyzer.analysis` and the
reads behind :class:`~chainotel_analyzer.store.interfaces.TraceReader`. Times (``since``/``until``/``baseline_*``) are RFC 3339
(``2022-08-22T04:27:03Z``) or Unix seconds (``1661142423``, decimals allowed); traces of any date
work (imported history). Bad parameters → 422 with the reason.

Example::

    GET /api/v1/analytics/bottlenecks?since=1661142423&until=1661142603&baseline_since=1661273940&baseline_until=1661274000
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse

from chainotel_analyzer.analysis import anomalies as anomaly_rules
from chainotel_analyzer.analysis.aggregate import chain_critical_path
from chainotel_analyzer.analysis.bottlenecks import contributions, rank_bottlenecks
from chainotel_analyzer.analysis.critical_path import analyze_trace
from chainotel_analyzer.analysis.graph import dependency_graph
from chainotel_analyzer.analysis.health import chain_health
from chainotel_analyzer.analysis.impact import service_impact
from chainotel_analyzer.analysis.recommendations import recommend
from chainotel_analyzer.api import time_params
from chainotel_analyzer.api.common import known_chain, window_doc
from chainotel_analyzer.api.errors import error_responses, invalid
from chainotel_analyzer.api.paths import ChainPath
from chainotel_analyzer.api.time_params import TimeQuery
from chainotel_analyzer.api.models import (
    AggregatedCriticalPathResponse, AnomaliesResponse, BottlenecksResponse, DependencyGraphResponse,
    HealthOverviewResponse, ImpactResponse, PerformanceResponse, RecommendationsResponse,
)
from chainotel_analyzer.api.deps import get_reader, get_registry
from chainotel_analyzer.store.interfaces import DEFAULT_MAX_TRACES, ChainRegistry, TraceReader
from chainotel.catalog.models import CHAIN_ID_PATTERN

router = APIRouter(prefix="/api/v1", tags=["analysis"])

IncludeSynthetic = Annotated[bool, Query(description="Count the traces of synthetic probes (chain.synthetic=true) "
                                                    "too; by default the figures are of real traffic only.")]
"""The opt-in of every window endpoint (default False, also when a route function is called directly):
synthetic probe traces are left out unless it is true."""

_ALIASES = {
    "/analytics/chains/performance/real-time": "/analytics/performance/real-time",
    "/analytics/chains/anomalies/detect": "/analytics/anomalies/detect",
    "/analytics/chains/services/{service}/impact": "/analytics/services/{service}/impact",
    "/analytics/chains/optimization/recommendations": "/analytics/optimization/recommendations",
}
"""Older spellings of four window endpoints under the health overview's ``/analytics/chains/`` prefix;
they answer 308 Permanent Redirect to the endpoint (query string kept), hidden from the OpenAPI document."""


def _redirect(target: str):
    def redirect(request: Request) -> RedirectResponse:
        path = "/api/v1" + target.format(**request.path_params)
        query = request.url.query
        return RedirectResponse(path + ("?" + query if query else ""), status_code=308)

    return redirect


for _alias, _target in _ALIASES.items():
    router.add_api_route(_alias, _redirect(_target), methods=["GET"], include_in_schema=False)


def parse_time_ns(value: str, name: str, where: str = "query") -> int:
    """:func:`chainotel_analyzer.api.time_params.parse_time_ns` with 422 (the reason, ``loc``
    ``[where, name]``) for a bad value."""
    try:
        return time_params.parse_time_ns(value, name)
    except time_params.TimeParamError as exc:
        raise invalid((where, name), str(exc), value) from None


def window(since: str | None, until: str | None, default_s: int, prefix: str = "", where: str = "query") -> tuple[int, int]:
    """``(since_ns, until_ns)``; missing ``until`` = now, missing ``since`` = ``until - default_s``;
    422 naming the parameter (in ``where``: ``query`` or ``body``) when one is bad or the window is empty."""
    until_ns = parse_time_ns(until, f"{prefix}until", where) if until else time.time_ns()
    since_ns = parse_time_ns(since, f"{prefix}since", where) if since else until_ns - default_s * 10**9
    if since_ns >= until_ns:
        raise invalid((where, f"{prefix}since"), f"{prefix}since must be before {prefix}until", since)
    return since_ns, until_ns


class RankingQuery:
    """Query parameters of the two bottleneck endpoints (a FastAPI class dependency); times are
    parsed here (422 naming the parameter), into Unix **ns**."""

    def __init__(
        self,
        since: TimeQuery = None,
        until: TimeQuery = None,
        group_by: Literal["service", "operation"] = "service",
        baseline_since: TimeQuery = None,
        baseline_until: TimeQuery = None,
        limit: int = Query(20, ge=1, le=1000),
        max_traces: int = Query(DEFAULT_MAX_TRACES, ge=1, le=100_000),
        include_synthetic: IncludeSynthetic = False,
    ):
        if bool(baseline_since) != bool(baseline_until):  # empty is the same as absent, as for since/until
            raise invalid(("query", "baseline_since"), "baseline_since and baseline_until go together")
        self.window = window(since, until, 3600)
        self.baseline = window(baseline_since, baseline_until, 3600, "baseline_") if baseline_since else None
        self.group_by, self.limit, self.max_traces = group_by, limit, max_traces
        self.include_synthetic = include_synthetic


def _bottlenecks(reader: TraceReader, chain: str | None, q: RankingQuery) -> dict:
    s, u = q.window
    total, traces = reader.window_traces(s, u, chain, q.max_traces, q.include_synthetic)
    cur = contributions((analyze_trace(t) for t in traces.values()), q.group_by)
    base_doc = None
    base = None
    if q.baseline is not None:
        bs, bu = q.baseline
        btotal, btraces = reader.window_traces(bs, bu, chain, q.max_traces, q.include_synthetic)
        base = contributions((analyze_trace(t) for t in btraces.values()), q.group_by)
        base_doc = {**window_doc(bs, bu), "traces": btotal, "analysed_traces": len(btraces)}
    ranking = rank_bottlenecks(cur, base, q.group_by, q.limit)
    entries = []
    for e in ranking.ranking:
        d = {"service": e.service}
        if q.group_by == "operation":
            d["operation"] = e.operation
        d.update(critical_ms_per_trace=e.critical_ms_per_trace, share=e.share, p95_ms=e.p95_ms,
                 delta_ms_per_trace=e.delta_ms_per_trace, score=e.score)  # fmt: skip
        entries.append(d)
    return {
        "window": {**window_doc(s, u), "analysed_traces": len(traces)},
        "baseline": base_doc,
        "traces": total,
        "chain": chain,
        "group_by": q.group_by,
        "ranking": entries,
    }


@router.get("/analytics/bottlenecks", response_model=BottlenecksResponse, response_model_exclude_unset=True)
def bottlenecks(
    chain: str | None = Query(None, pattern=CHAIN_ID_PATTERN),
    q: RankingQuery = Depends(),
    reader: TraceReader = Depends(get_reader),
):
    """Services (or operations) ranked by critical-path contribution; with a baseline window,
    by increase over it (score ``Δ·Δ/current``, see :mod:`chainotel_analyzer.analysis.bottlenecks`).
    Call hops (client → server gaps) are charged to the callee. Default window: the last hour."""
    return _bottlenecks(reader, chain, q)


@router.get("/analytics/critical-path", response_model=AggregatedCriticalPathResponse, response_model_exclude_unset=True)
def aggregated_critical_path(
    since: TimeQuery = None,
    until: TimeQuery = None,
    chain: str | None = Query(None, pattern=CHAIN_ID_PATTERN),
    max_traces: int = Query(DEFAULT_MAX_TRACES, ge=1, le=100_000),
    reader: TraceReader = Depends(get_reader),
    include_synthetic: IncludeSynthetic = False,
):
    """The critical path aggregated over the window's traces (CRISP): per call path and per
    ``(service, operation)``, total / per-trace / p50 / p95 / p99 critical time (ms). Default
    window: the last hour; ``chain`` restricts to one chain definition."""
    s, u = window(since, until, 3600)
    total, traces = reader.window_traces(s, u, chain, max_traces, include_synthetic)
    agg = chain_critical_path(analyze_trace(t) for t in traces.values())
    return {"window": {**window_doc(s, u), "analysed_traces": agg.traces}, "chain": chain, "traces": total,
            "by_call_path": agg.by_call_path, "by_operation": agg.by_operation}  # fmt: skip


@router.get("/chains/{chain}/bottlenecks", response_model=BottlenecksResponse, response_model_exclude_unset=True,
            responses=error_responses(404))
def chain_bottlenecks(
    chain: ChainPath,
    q: RankingQuery = Depends(),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
):
    """:func:`bottlenecks` for one chain definition (``A1``–``E7``)."""
    known_chain(registry, chain)
    return _bottlenecks(reader, chain, q)


@router.get("/chains/{chain}/dependency-graph", response_model=DependencyGraphResponse, response_model_exclude_unset=True,
            responses=error_responses(404))
def chain_dependency_graph(
    chain: ChainPath,
    since: TimeQuery = None,
    until: TimeQuery = None,
    max_traces: int = Query(DEFAULT_MAX_TRACES, ge=1, le=100_000),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
    include_synthetic: IncludeSynthetic = False,
):
    """Caller → callee graph of a chain's traces in the window (default: last hour), with call
    counts and caller-side latency (ms)."""
    known_chain(registry, chain)
    s, u = window(since, until, 3600)
    total, traces = reader.window_traces(s, u, chain, max_traces, include_synthetic)
    graph = dependency_graph(traces.values())
    return {"chain": chain, "window": window_doc(s, u), "traces": total, "nodes": graph.nodes, "edges": graph.edges}


def _definitions(registry: ChainRegistry) -> dict[str, dict]:
    return {d["id"]: d["definition"] for d in registry.list()}


@router.get("/analytics/chains/health/overview", response_model=HealthOverviewResponse, response_model_exclude_unset=True)
def health_overview(
    since: TimeQuery = None,
    until: TimeQuery = None,
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
    include_synthetic: IncludeSynthetic = False,
):
    """Health of every registered chain over the window (default: last hour): throughput, error
    rate, p50/p95/p99 (ms), SLA compliance, score 0–100 and status (formula in
    :mod:`chainotel_analyzer.analysis.health`)."""
    s, u = window(since, until, 3600)
    definitions = _definitions(registry)
    return health_doc(definitions, reader.chain_figures(s, u, slas(definitions), include_synthetic), s, u)


def slas(definitions: dict[str, dict]) -> dict[str, float | None]:
    """``{chain: max_duration_ms or None}`` of ``{chain: definition}``."""
    return {k: d.get("max_duration_ms") for k, d in definitions.items()}


def health_doc(definitions: dict[str, dict], figures: list[dict], since_ns: int, until_ns: int) -> dict:
    """The health overview document (:class:`HealthOverviewResponse` shape) of every chain of
    ``definitions`` (``{chain: definition}``, registry order) from ``figures`` (rows of
    :meth:`~chainotel_analyzer.store.interfaces.TraceReader.chain_figures` over the window
    ``[since_ns, until_ns)``); a chain without a row has no traffic."""
    by_chain = {r["chain"]: r for r in figures}
    chains = []
    for chain, definition in definitions.items():
        f = by_chain.get(chain)
        h = chain_health(
            chain, f["traces"] if f else 0, f["error_traces"] if f else 0, f["root_error_traces"] if f else 0,
            f["within_sla"] if f else 0, f["p50_ms"] if f else 0.0, f["p95_ms"] if f else 0.0,
            f["p99_ms"] if f else 0.0, (until_ns - since_ns) / 1e9, definition.get("max_duration_ms"),
        )  # fmt: skip
        chains.append({"name": definition.get("name", ""), **{k: getattr(h, k) for k in h.__slots__}})
    summary = {k: sum(1 for c in chains if c["status"] == k) for k in ("healthy", "degraded", "unhealthy", "no_data")}
    return {"window": window_doc(since_ns, until_ns), "summary": summary, "chains": chains}


@router.get("/analytics/performance/real-time", response_model=PerformanceResponse, response_model_exclude_unset=True)
def performance(since: TimeQuery = None, until: TimeQuery = None, reader: TraceReader = Depends(get_reader),
                include_synthetic: IncludeSynthetic = False):  # fmt: skip
    """Traffic of the last 5 minutes (or the window): ``active_chains`` (chain definitions with
    traces), ``avg_duration_ms`` (over all traces), throughput and error rate, per chain too
    (``chain`` ``""`` = traces without a chain)."""
    s, u = window(since, until, 300)
    minutes = (u - s) / 6e10
    rows = reader.chain_figures(s, u, include_synthetic=include_synthetic)
    chains = [
        {"chain": r["chain"], "traces": r["traces"], "throughput_per_min": r["traces"] / minutes,
         "avg_duration_ms": r["avg_ms"], "p95_ms": r["p95_ms"], "error_rate": r["error_traces"] / r["traces"]}
        for r in rows
    ]  # fmt: skip
    n = sum(r["traces"] for r in rows)
    return {
        "window": window_doc(s, u),
        "active_chains": sum(1 for r in rows if r["chain"]),
        "traces": n,
        "throughput_per_min": n / minutes,
        "avg_duration_ms": sum(r["avg_ms"] * r["traces"] for r in rows) / n if n else 0.0,
        "error_rate": sum(r["error_traces"] for r in rows) / n if n else 0.0,
        "chains": chains,
    }


@router.get("/analytics/anomalies/detect", response_model=AnomaliesResponse, response_model_exclude_unset=True)
def anomalies(
    until: TimeQuery = None,
    window_minutes: int = Query(5, ge=1, le=1440),
    baseline_buckets: int = Query(12, ge=3, le=288),
    reader: TraceReader = Depends(get_reader),
    include_synthetic: IncludeSynthetic = False,
):
    """Latency / error-rate / throughput anomalies of every chain and service: the last
    ``window_minutes`` before ``until`` vs the ``baseline_buckets`` windows of equal length before
    it (method and thresholds in :mod:`chainotel_analyzer.analysis.anomalies`)."""
    _, u = window(None, until, 60)
    bucket_s = window_minutes * 60
    s = u - (baseline_buckets + 1) * bucket_s * 10**9
    found = []
    for scope, rows, key, count in (
        ("chain", reader.chain_buckets(s, u, bucket_s, include_synthetic), "chain", "traces"),
        ("service", reader.service_buckets(s, u, bucket_s, include_synthetic), "service", "calls"),
    ):
        series: dict[str, dict[int, anomaly_rules.Bucket]] = {}
        for r in rows:
            series.setdefault(r[key], {})[int(r["bucket"])] = anomaly_rules.Bucket(
                r[count] / window_minutes, r["errors"] / window_minutes, float(r["p95_ms"] or 0.0)
            )
        empty = anomaly_rules.Bucket(0.0, 0.0, 0.0)
        for name, buckets in series.items():
            history = [buckets.get(i, empty) for i in range(baseline_buckets)]
            found += anomaly_rules.detect(scope, name, buckets.get(baseline_buckets, empty), history)
    return {
        "window": window_doc(u - bucket_s * 10**9, u),
        "baseline": window_doc(s, u - bucket_s * 10**9),
        "anomalies": found,
    }


@router.get("/analytics/services/{service}/impact", response_model=ImpactResponse, response_model_exclude_unset=True,
            responses=error_responses(404))
def impact(
    service: str,
    since: TimeQuery = None,
    until: TimeQuery = None,
    max_traces: int = Query(DEFAULT_MAX_TRACES, ge=1, le=100_000),
    reader: TraceReader = Depends(get_reader),
    include_synthetic: IncludeSynthetic = False,
):
    """The chains ``service`` takes part in and its share of their critical path (call hops into
    it count as its own), over the window (default: last hour)."""
    s, u = window(since, until, 3600)
    _, traces = reader.window_traces(s, u, None, max_traces, include_synthetic)
    per_chain: dict[str, list] = {}
    for spans in traces.values():
        chain = max((sp.chain for sp in spans), default="")
        per_chain.setdefault(chain, []).extend(contributions([analyze_trace(spans)]))
    chains = service_impact(service, per_chain)
    if not chains:
        raise HTTPException(404, f"service {service!r} has no spans in the window")
    return {"service": service, "window": window_doc(s, u), "chains": chains}


@router.get("/analytics/optimization/recommendations", response_model=RecommendationsResponse,
            response_model_exclude_unset=True)
def recommendations(
    since: TimeQuery = None,
    until: TimeQuery = None,
    chain: str | None = Query(None, pattern=CHAIN_ID_PATTERN),
    max_traces: int = Query(DEFAULT_MAX_TRACES, ge=1, le=100_000),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
    include_synthetic: IncludeSynthetic = False,
):
    """Recommendations with evidence (parallelizable calls, N+1, the service dominating SLA
    breaches) per chain over the window (default: last hour); rules in
    :mod:`chainotel_analyzer.analysis.recommendations`."""
    s, u = window(since, until, 3600)
    slas = {k: d.get("max_duration_ms") for k, d in _definitions(registry).items()}
    _, traces = reader.window_traces(s, u, chain, max_traces, include_synthetic)
    per_chain: dict[str, list] = {}
    for spans in traces.values():
        per_chain.setdefault(max((sp.chain for sp in spans), default=""), []).append(analyze_trace(spans))
    out = []
    for c, results in sorted(per_chain.items()):
        for rec in recommend(results, slas.get(c)):
            out.append({"chain": c, **asdict(rec)})
    return {"window": window_doc(s, u), "recommendations": out}
