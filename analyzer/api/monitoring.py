"""Monitoring routes: ``GET /api/v1/alerts``, ``POST /api/v1/alerts/{alert_id}/resolve``,
``GET /api/v1/chains/{chain}/health`` and ``GET /metrics`` (see docs/monitoring.md)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from chainotel.catalog.models import CHAIN_ID_PATTERN

from chainotel_analyzer.analysis.alerts import FIRING, PENDING, RESOLVED
from chainotel_analyzer.analysis.health import chain_health
from chainotel_analyzer.api.analytics import IncludeSynthetic
from chainotel_analyzer.api.deps import get_monitoring, get_reader, get_registry
from chainotel_analyzer.api.discovery import chain_drift
from chainotel_analyzer.api.discovery_models import EdgeTraces, MissingService, ServiceTraces
from chainotel_analyzer.api.errors import error_responses
from chainotel_analyzer.monitoring.evaluator import AlertNotFound, AlertNotOpen, alert_from_row
from chainotel_analyzer.monitoring.metrics import METRICS_WINDOW_S
from chainotel_analyzer.monitoring.notifier import Links
from chainotel_analyzer.monitoring.service import Monitoring
from chainotel_analyzer.store.interfaces import ChainRegistry, TraceReader

router = APIRouter(tags=["monitoring"])

STATES = {"firing": (FIRING,), "pending": (PENDING,), "resolved": (RESOLVED,), "all": (FIRING, PENDING, RESOLVED)}


def _time(ns: int) -> str | None:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z") if ns else None


class AlertModel(BaseModel):
    """One chain alert. Times are RFC 3339 UTC (null: not yet)."""

    alert_id: str
    alertname: str = Field(description="ChainSLAComplianceLow | ChainErrorRateHigh | ChainLatencyHigh | ChainNoTraffic | "
                           "ChainProbeDown | ChainTopologyDrift | ChainAnomaly")
    chain: str
    category: str
    severity: str
    state: str = Field(description="pending | firing | resolved")
    service: str | None = Field(None, description="The one service to blame, when there is one.")
    value: float = Field(description="The value that crossed the threshold (while pending: the latest).")
    threshold: float
    summary: str
    description: str
    trace_id: str | None = Field(None, description="An example trace of the problem.")
    active_at: str | None = Field(description="When the condition started to hold.")
    fired_at: str | None
    resolved_at: str | None
    resolved_by: str | None = Field(None, description="condition | manual")
    note: str | None = None
    console_url: str
    jaeger_url: str | None = None


class AlertsResponse(BaseModel):
    alerts: list[AlertModel]


class ResolveRequest(BaseModel):
    note: str = Field(min_length=1, max_length=2000, description="Why the alert is resolved by hand.")


def _links(request: Request, monitoring: Monitoring) -> Links:
    return Links(monitoring.console_base(str(request.base_url)), monitoring.settings.jaeger_ui_url or "")


def _model(alert, links: Links) -> AlertModel:
    return AlertModel(
        alert_id=alert.alert_id, alertname=alert.alertname, chain=alert.chain, category=alert.category,
        severity=alert.severity, state=alert.state, service=alert.service or None, value=alert.value,
        threshold=alert.threshold, summary=alert.summary, description=alert.description,
        trace_id=alert.trace_id or None, active_at=_time(alert.active_at_ns), fired_at=_time(alert.fired_at_ns),
        resolved_at=_time(alert.resolved_at_ns), resolved_by=alert.resolved_by or None, note=alert.note or None,
        console_url=links.console_url(alert), jaeger_url=links.jaeger_url(alert) or None,
    )  # fmt: skip


@router.get("/api/v1/alerts", response_model=AlertsResponse, summary="Chain alerts, newest first")
def list_alerts(
    request: Request,
    state: Literal["firing", "pending", "resolved", "all"] = Query("all", description="Which alerts."),
    chain: str | None = Query(None, pattern=CHAIN_ID_PATTERN, description="Only this chain (e.g. B3)."),
    limit: int = Query(200, ge=1, le=5000),
    monitoring: Monitoring = Depends(get_monitoring),
) -> AlertsResponse:
    links = _links(request, monitoring)
    rows = monitoring.store.alerts(STATES[state], chain, limit)
    return AlertsResponse(alerts=[_model(alert_from_row(r), links) for r in rows])


@router.post("/api/v1/alerts/{alert_id}/resolve", response_model=AlertModel, summary="Resolve an alert by hand",
             responses=error_responses(404, 409))
def resolve_alert(
    request: Request,
    body: ResolveRequest,
    alert_id: str = Path(pattern=r"^[0-9a-f]{32}$", description="The alert_id of GET /api/v1/alerts."),
    monitoring: Monitoring = Depends(get_monitoring),
) -> AlertModel:
    """The alert is resolved (and sent as resolved to Alertmanager) until its condition clears and fires
    anew. 404 for an unknown ID, 409 for an alert that is not pending or firing."""
    try:
        alert = monitoring.evaluator.resolve(alert_id, body.note)
    except AlertNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except AlertNotOpen as exc:
        raise HTTPException(409, str(exc)) from None
    return _model(alert, _links(request, monitoring))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response, include_in_schema=False)
def metrics(monitoring: Monitoring = Depends(get_monitoring)) -> Response:
    """The Prometheus text format; rendered at most once per cache interval (see docs/monitoring.md)."""
    return Response(monitoring.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


class ProbeRun(BaseModel):
    checked_at: str
    status: str = Field(description="up | down")
    reason: str | None
    http_status: int | None
    duration_ms: float
    trace_id: str | None


class ProbeHealth(BaseModel):
    status: str = Field(description="up | down | unknown (no probe, or not run yet)")
    reason: str | None = None
    checked_at: str | None = None
    recent: list[ProbeRun] = Field(default_factory=list)


class ServiceHealth(BaseModel):
    """One service's spans within the chain over the window (the seeds' node health)."""

    service: str
    calls: int
    errors: int
    error_rate: float
    p95_ms: float
    avg_ms: float
    status: str = Field(description="healthy (error rate ≤ 1 %) | degraded (≤ 10 %) | unhealthy")


class HealthDrift(BaseModel):
    """The chain's topology over the window against its definition (as ``GET /api/v1/chains/{chain}/drift``)."""

    drifted: bool
    analysed_traces: int
    unexpected_services: list[ServiceTraces] = Field(description="Seen but not in expected_services, with trace counts.")
    missing_services: list[MissingService] = Field(description="In expected_services, seen in no trace.")
    unexpected_edges: list[EdgeTraces] = Field(description="Caller → callee seen but not in the definition's edges.")
    edges_checked: bool = Field(description="False when the definition declares no edges (they are not compared).")


class ChainHealthResponse(BaseModel):
    chain: str
    status: str = Field(description="healthy | degraded | unhealthy | no_data (analysis.health)")
    score: int | None
    sla_compliance: float
    error_rate: float
    p95_ms: float
    traces: int
    window_s: int
    probe: ProbeHealth
    services: list[ServiceHealth]
    drift: HealthDrift
    alerts: list[AlertModel] = Field(description="The chain's pending and firing alerts.")


def _service_status(error_rate: float) -> str:
    return "healthy" if error_rate <= 0.01 else "degraded" if error_rate <= 0.10 else "unhealthy"


@router.get("/api/v1/chains/{chain}/health", response_model=ChainHealthResponse, summary="One chain's health",
            responses=error_responses(404))
def chain_health_view(
    request: Request,
    chain: str = Path(pattern=CHAIN_ID_PATTERN, description="Chain definition ID, e.g. B3."),
    window_s: int = Query(METRICS_WINDOW_S, ge=60, le=86400, description="Window in seconds, ending now."),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
    monitoring: Monitoring = Depends(get_monitoring),
    include_synthetic: IncludeSynthetic = False,
) -> ChainHealthResponse:
    """Status, score and SLA compliance of the chain's real traffic over the window (synthetic probe traces
    only with ``include_synthetic``), its probe, per-service health, topology drift and open alerts."""
    row = registry.get(chain)
    if row is None:
        raise HTTPException(404, f"unknown chain {chain!r}; list the chains with GET /api/v1/chains")
    sla = row["definition"].get("max_duration_ms")
    now_ns = time.time_ns()
    since_ns = now_ns - window_s * 10**9
    figures = next((r for r in reader.chain_figures(since_ns, now_ns, {chain: sla}, include_synthetic)
                    if r["chain"] == chain), None)  # fmt: skip
    f = figures or {"traces": 0, "error_traces": 0, "root_error_traces": 0, "within_sla": 0, "p50_ms": 0, "p95_ms": 0, "p99_ms": 0}
    h = chain_health(chain, f["traces"], f["error_traces"], f["root_error_traces"], f["within_sla"], f["p50_ms"],
                     f["p95_ms"], f["p99_ms"], window_s, sla)  # fmt: skip
    services = []
    for s in monitoring.store.chain_service_figures(now_ns, {chain: window_s}, include_synthetic):
        rate = s["errors"] / s["calls"] if s["calls"] else 0.0
        services.append(ServiceHealth(service=s["service"], calls=s["calls"], errors=s["errors"], error_rate=rate,
                                      p95_ms=float(s["p95_ms"]), avg_ms=float(s["avg_ms"]), status=_service_status(rate)))  # fmt: skip
    probe = ProbeHealth(status="unknown")
    runs = monitoring.store.probe_results(chain, 10) if row["definition"].get("probe") else []
    if runs:
        recent = [ProbeRun(checked_at=_time(r["checked_at_unix_nano"]), status=r["status"], reason=r["reason"] or None,
                           http_status=r["http_status"] or None, duration_ms=r["duration_ms"], trace_id=r["trace_id"] or None)
                  for r in runs]  # fmt: skip
        probe = ProbeHealth(status=recent[0].status, reason=recent[0].reason, checked_at=recent[0].checked_at, recent=recent)
    drift = chain_drift(reader, chain, row["definition"], since_ns, now_ns, include_synthetic=include_synthetic)
    links = _links(request, monitoring)
    open_alerts = [_model(a, links) for a in monitoring.evaluator.current_alerts() if a.chain == chain and a.is_open]
    return ChainHealthResponse(
        chain=chain, status=h.status, score=h.score, sla_compliance=h.sla_compliance, error_rate=h.error_rate,
        p95_ms=h.p95_ms, traces=h.traces, window_s=window_s, probe=probe, services=services,
        drift=HealthDrift.model_validate(drift), alerts=open_alerts,
    )  # fmt: skip
