"""Response models of the analysis endpoints (they make the OpenAPI document exact).

Units are in the field names: ``*_ns`` / ``*_unix_nano`` integers in nanoseconds (exact),
``*_ms`` / ``duration_ms`` / ``average_duration`` floats in milliseconds, ``share`` and rates 0–1.
"""

from __future__ import annotations

from typing import get_type_hints

from pydantic import BaseModel, create_model

from chainotel_analyzer.analysis.anomalies import Anomaly
from chainotel_analyzer.analysis.health import ChainHealth


class Window(BaseModel):
    since: str
    until: str
    since_unix_nano: int
    until_unix_nano: int
    traces: int | None = None
    analysed_traces: int | None = None


class Section(BaseModel):
    span_id: str
    service: str
    operation: str
    start_unix_nano: int
    end_unix_nano: int


class ServiceShare(BaseModel):
    service: str
    critical_ms: float
    share: float


class RootPath(BaseModel):
    root_span_id: str
    sections: list[Section]
    by_service: list[ServiceShare]


class SpanTimes(BaseModel):
    span_id: str
    parent_span_id: str
    service: str
    operation: str
    start_unix_nano: int
    duration_ns: int
    self_time_ns: int
    critical_time_ns: int


class CriticalPathResponse(BaseModel):
    chain_id: str
    trace_id: str
    jaeger_url: str | None = None
    chain: str
    duration_ms: float
    roots: list[RootPath]
    spans: list[SpanTimes]


class RankingEntry(BaseModel):
    service: str
    operation: str | None = None
    critical_ms_per_trace: float
    share: float
    p95_ms: float
    delta_ms_per_trace: float | None
    score: float


class BottlenecksResponse(BaseModel):
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
    window: Window
    summary: dict[str, int]
    chains: list[ChainHealthEntry]


class AnomaliesResponse(BaseModel):
    window: Window
    baseline: Window
    anomalies: list[Anomaly]
