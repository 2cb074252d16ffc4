"""Response and request models of the discovery, drift, catalog and registry-feature routes.

Units are in the field names (``*_ms``, ``*_unix_nano``, ``*_s``); ``share`` and ``confidence`` are 0–1.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chainotel_analyzer.analysis.discovery import DEFAULT_MIN_SHARE, DEFAULT_MIN_TRACES
from chainotel_analyzer.api.models import ChainList, Window
from chainotel_analyzer.api.time_params import MAX_LENGTH, TIME_PATTERN

SCAN_DEFAULT_MAX_TRACES = 5000
"""Traces a scan reads at most by default (a uniform sample by trace-ID hash beyond that)."""


class ScanRequest(BaseModel):
    """Body of ``POST /api/v1/discovery/scan``; every field is optional, and typed strictly (``true``
    is not a number)."""

    model_config = ConfigDict(strict=True)

    since: str | None = Field(None, max_length=MAX_LENGTH, pattern=TIME_PATTERN,
                              description="Window start: RFC 3339 or Unix seconds (default: until − 1 h).")  # fmt: skip
    until: str | None = Field(None, max_length=MAX_LENGTH, pattern=TIME_PATTERN,
                              description="Window end: RFC 3339 or Unix seconds (default: now).")  # fmt: skip
    min_traces: int = Field(DEFAULT_MIN_TRACES, ge=1, description="Groups with fewer traces are not proposed.")
    min_share: float = Field(
        DEFAULT_MIN_SHARE, gt=0, le=1, description="A service or edge in at least this share of a group's traces is expected."
    )
    max_traces: int = Field(SCAN_DEFAULT_MAX_TRACES, ge=1, le=100_000, description="Traces read at most (sampled beyond).")


class ServiceShareOfTraces(BaseModel):
    service: str
    share: float = Field(description="Share of the group's traces the service appears in.")


class ProposalOut(BaseModel):
    definition: dict = Field(description="A chain definition as the catalog writes it (valid for POST /api/v1/chains).")
    confidence: float = Field(ge=0, le=1)
    evidence: dict = Field(description="traces, first/last seen (Unix ns), observed_s, service_sets, "
                           "modal_service_set_share, p99_ms, category_reason, entry, edges, example_trace_ids, "
                           "matches_registered_chain.")  # fmt: skip
    services: list[ServiceShareOfTraces]
    traces: int


class ShapeOut(BaseModel):
    services: list[str]
    traces: int
    share: float


class ChainShapesOut(BaseModel):
    chain: str
    traces: int
    shapes: list[ShapeOut]


class ScanResponse(BaseModel):
    window: Window
    traces: int = Field(description="Traces starting in the window.")
    analysed_traces: int = Field(description="Traces read (a sample when the window has more than max_traces).")
    untagged_traces: int = Field(description="Analysed traces without a chain.")
    proposals: list[ProposalOut]
    shapes: list[ChainShapesOut] = Field(description="Tagged chains whose traces fall into clearly different service sets.")


class ServiceTraces(BaseModel):
    service: str
    traces: int


class MissingService(BaseModel):
    service: str


class EdgeTraces(BaseModel):
    caller: str
    callee: str
    traces: int


class DriftResponse(BaseModel):
    chain: str
    window: Window
    traces: int = Field(description="Traces of the chain starting in the window.")
    analysed_traces: int
    drifted: bool
    unexpected_services: list[ServiceTraces]
    missing_services: list[MissingService]
    unexpected_edges: list[EdgeTraces]
    observed_services: list[ServiceTraces]
    edges_checked: bool = Field(description="False when the definition declares no edges (they are not compared).")


class CatalogResponse(BaseModel):
    """The registry as a chain catalog (``chainotel catalog validate`` accepts its YAML form)."""

    chains: list[dict]


class PagedChainList(ChainList):
    """A page of current chain definitions (ordered by ID)."""

    total: int = Field(description="Chains matching the filter, before paging.")
    limit: int | None
    offset: int


class ValidationProblem(BaseModel):
    field: str = Field(description="Dotted path of the field ('' for the whole definition).")
    message: str


class ValidateResponse(BaseModel):
    valid: bool
    errors: list[ValidationProblem]
    warnings: list[ValidationProblem]
    suggestions: list[ValidationProblem]


class HistoryEntry(BaseModel):
    version: int
    updated_at: str = Field(description="RFC 3339 time of this version.")
    source: str = Field(description="'catalog' (seeded) or 'api'.")
    changed_by: str = Field(description="Who wrote it: the caller's token name ('unauthenticated' without "
                                        "authentication), 'catalog' for a seed, '' for API writes before callers were recorded.")
    is_deleted: bool
    changes: list[str] = Field(description="Fields that differ from the previous version ('created' for the first).")
    definition: dict


class HistoryResponse(BaseModel):
    chain: str
    versions: list[HistoryEntry]
