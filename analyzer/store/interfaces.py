"""The three narrow interfaces between storage and everything above it.

- :class:`SpanSink` — where receivers hand decoded requests (implemented by
  :class:`chainotel_analyzer.store.writer.SpanWriter`);
- :class:`TraceReader` — every read the analysis API runs (implemented by
  :class:`chainotel_analyzer.store.queries.ClickHouseTraceReader`);
- :class:`ChainRegistry` — the chain definitions (implemented by
  :class:`chainotel_analyzer.store.queries.ClickHouseChainRegistry`).

Routers and receivers depend on these only (through FastAPI dependencies, see
:mod:`chainotel_analyzer.api.deps`), so a test can serve fakes and another store can plug in by
implementing them. Times are Unix **nanoseconds** (``int``) unless a name says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from chainotel.catalog import Catalog

from chainotel_analyzer.model.otlp_trace import StoredSpan
from chainotel_analyzer.model.rows import DecodedSpans
from chainotel_analyzer.model.span import Span

DEFAULT_MAX_TRACES = 1000
"""Traces analysed per window at most; larger windows are sampled by trace-ID hash (uniform,
deterministic). 1 000 traces put a per-trace mean within a few percent of its standard deviation
(standard error σ/√1000 ≈ 0.03 σ) and keep a bottleneck query over millions of spans near a second."""


class WriteQueueFull(Exception):
    """The sink holds as many spans as it may; retry later (HTTP 503 / gRPC UNAVAILABLE)."""


class RequestTooLarge(ValueError):
    """One request holds more spans or bytes than the whole sink may queue: refused for good (HTTP
    413 / gRPC INVALID_ARGUMENT), never retryable."""


class StoreUnavailable(Exception):
    """The store rejected or could not take the last write; retry later (HTTP 503 / gRPC UNAVAILABLE).
    Its message carries the store's error, for logs: receivers answer :data:`STORE_UNAVAILABLE_REASON`."""


STORE_UNAVAILABLE_REASON = "the store does not take writes now (its error is in the analyzer's log)"
"""What senders are told for :class:`StoreUnavailable`: a raw ClickHouse error can carry server
paths and query text, which belong in the log, not in responses."""


class UnknownChain(LookupError):
    """No current definition of this chain (never registered, or deleted): HTTP 404."""


class ChainExists(ValueError):
    """A current definition of this chain exists already: HTTP 409."""


class RegistryConflict(Exception):
    """Another writer (another analyzer sharing the store) wrote the version this write meant to
    write: HTTP 409 — read the definition again and retry."""


@dataclass(frozen=True)
class InstanceQuery:
    """A search for the instances (traces) of one chain definition.

    ``since_ns``/``until_ns``: the window the instance's first span starts in (Unix **ns**, half-open);
    ``status``: ``"error"`` (an error span anywhere), ``"ok"`` (none) or ``"any"``; ``min_duration_ns``:
    first span start to last span end, **ns**; ``service``: has a span of that ``service.name``;
    ``user_id``: has a span with that ``enduser.id``; ``order``: ``"duration_desc"`` or ``"start_desc"``,
    ties broken by ``trace_id`` ascending, so the order is total; ``after``: the sort key
    ``(duration_ns or start_ns, trace_id)`` of the last instance of the previous page (keyset paging:
    the page holds the instances strictly after it), ``None`` for the first page; ``limit``: page size.
    """

    chain: str
    since_ns: int
    until_ns: int
    status: Literal["error", "ok", "any"] = "any"
    min_duration_ns: int = 0
    service: str | None = None
    user_id: str | None = None
    order: Literal["duration_desc", "start_desc"] = "duration_desc"
    after: tuple[int, str] | None = None
    limit: int = 50


@dataclass(frozen=True)
class Instance:
    """One chain instance found by :meth:`TraceReader.chain_instances`: ``trace_id`` (32 hex),
    ``start_ns`` (first span start, Unix **ns**), ``duration_ns`` (to the last span end), the root
    span's ``root_service``/``root_operation``, ``error`` (any error span), ``services`` (sorted)."""

    trace_id: str
    start_ns: int
    duration_ns: int
    root_service: str
    root_operation: str
    error: bool
    services: tuple[str, ...]

    def sort_key(self, order: str) -> tuple[int, str]:
        """The key :attr:`InstanceQuery.after` takes for the page after this instance."""
        return (self.duration_ns if order == "duration_desc" else self.start_ns, self.trace_id)


class SpanSink(Protocol):
    """Takes decoded OTLP requests and stores them; a request is acknowledged only once stored."""

    healthy: bool
    """False while the store does not take writes."""
    last_error: str
    """The last write error ('' if none)."""
    queue_depth: int
    """Spans waiting to be written."""
    queue_bytes: int
    """Bytes of decoded spans waiting to be written."""
    inserts: int
    """Span INSERTs since start."""
    spans_written: int
    """Spans stored by this process's INSERTs since start."""
    spans_deduplicated: int
    """Spans of requests that were stored before (retries), not stored again."""
    spans_rejected: int
    """Spans refused by validation, reported in ``partial_success`` (their requests were answered OK)."""
    spans_refused: int
    """Valid spans not stored: their requests were answered with an error (503 retry later, 413 never)."""
    insert_seconds: float

    def submit(self, digest: int, spans: DecodedSpans) -> Future:
        """Queue one request (``digest``: 63-bit digest of its decompressed body); the future resolves
        True once stored, False for a retry of a request already stored. Raises :class:`WriteQueueFull`
        or :class:`StoreUnavailable` (retry later), :class:`RequestTooLarge` (never)."""
        ...

    def add_insert_observer(self, observe: Callable[[float], None]) -> None:
        """Have ``observe(seconds)`` called after every span INSERT."""
        ...

    def full(self) -> str:
        """Why the queue takes nothing now ('' when it does): receivers answer 503 before reading a body."""
        ...

    def incoming(self) -> AbstractContextManager[None]:
        """Held by a receiver while a request is read and decoded (spans are on their way)."""
        ...


class TraceReader(Protocol):
    """Every query the analysis API runs."""

    def trace_spans(self, trace_id: str) -> list[Span]:
        """Every span of trace ``trace_id`` (32 lowercase hex), ``[]`` if unknown."""
        ...

    def trace_events(self, trace_id: str) -> list[dict]:
        """The stored rows of one trace in time order (every column but the ingest bookkeeping, and the
        span's events, links, trace_state and flags)."""
        ...

    def trace_otlp(self, trace_id: str) -> list[StoredSpan]:
        """The stored spans of one trace, each with its resource and scope as stored; ``[]`` if unknown."""
        ...

    def window_traces(
        self, since_ns: int, until_ns: int, chain: str | None = None, max_traces: int = DEFAULT_MAX_TRACES
    ) -> tuple[int, dict[str, list[Span]]]:
        """``(traces starting in [since_ns, until_ns), {trace_id: spans}`` of at most ``max_traces``)``."""
        ...

    def chain_instances(self, query: InstanceQuery) -> list[Instance]:
        """At most ``query.limit`` instances matching ``query``, in its order (see :class:`InstanceQuery`)."""
        ...

    def chain_series(self, chain: str, since_ns: int, until_ns: int, bucket_s: int) -> list[dict]:
        """Per bucket of ``bucket_s`` seconds from ``since_ns``, over the traces of ``chain`` starting in
        the window: ``bucket`` (index), ``traces``, ``errors`` (traces with an error span), ``p50_ms``,
        ``p95_ms``, ``p99_ms`` of trace durations; buckets without traces are absent."""
        ...

    def service_operations(self, service: str, since_ns: int, until_ns: int) -> list[dict]:
        """RED per ``(chain, operation)`` of ``service`` over the whole minutes of the window (from the
        per-minute aggregates): ``chain``, ``operation``, ``calls``, ``errors``, ``avg_ms``, ``p50_ms``,
        ``p95_ms``, ``p99_ms`` (t-digest estimates), most calls first."""
        ...

    def span_attributes(self, trace_ids: list[str], keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """``{span_id: {key: value}}`` of the spans of ``trace_ids`` that have any of ``keys`` (only
        those keys, values as stored text)."""
        ...

    def chain_figures(self, since_ns: int, until_ns: int, slas: dict[str, float | None] | None = None) -> list[dict]:
        """Per chain over the window's traces: counts, SLA compliance and trace-duration statistics (ms)."""
        ...

    def chain_buckets(self, since_ns: int, until_ns: int, bucket_s: int) -> list[dict]:
        """Per chain and bucket of ``bucket_s`` seconds: traces, errors, p95 (ms)."""
        ...

    def chain_overview(
        self, since_ns: int, until_ns: int, bucket_s: int, slas: dict[str, float | None] | None = None
    ) -> tuple[list[dict], list[dict]]:
        """``(chain_figures rows, the same figures per chain and bucket of bucket_s seconds)`` in one read."""
        ...

    def service_buckets(self, since_ns: int, until_ns: int, bucket_s: int) -> list[dict]:
        """Per service and bucket of ``bucket_s`` seconds: calls, errors, p95 (ms)."""
        ...


class ChainRegistry(Protocol):
    """The chain definitions, versioned: every change writes a new version; a deletion is a marker."""

    def list(self) -> list[dict]:
        """Current definitions ordered by ID: ``{"id", "version", "source", "updated_at", "changed_by",
        "definition"}``; ``changed_by`` names who made the last API change ('' for catalog rows)."""
        ...

    def get(self, chain: str) -> dict | None:
        """The current definition of ``chain`` (as in :meth:`list`), ``None`` if unknown or deleted."""
        ...

    def create(self, definition: dict, changed_by: str = "") -> dict:
        """Register a new chain (version 1, or the next after a deletion); raises :class:`ChainExists`.
        ``changed_by``: the caller's name (its token entry), recorded with the version."""
        ...

    def put(self, definition: dict, changed_by: str = "") -> dict:
        """Replace the definition of ``definition["id"]`` (version + 1); raises :class:`UnknownChain`.
        Every write (create, put, delete) raises :class:`RegistryConflict` when another writer wrote
        that version first."""
        ...

    def delete(self, chain: str, changed_by: str = "") -> None:
        """Write a deletion marker (version + 1); raises :class:`UnknownChain`."""
        ...

    def seed(self, catalog: Catalog) -> int:
        """Bring the registry in line with a chain catalog; returns rows written."""
        ...

    def history(self, chain: str) -> list[dict]:
        """The stored versions of ``chain``, oldest first: ``{"version", "source", "updated_at", "is_deleted",
        "changed_by", "definition"}``; ``[]`` if it never existed. A store may compact old versions away."""
        ...


class MonitorStore(Protocol):
    """What alert evaluation and probes read and write (:mod:`chainotel_analyzer.store.monitoring`):
    a bounded number of queries per evaluation, whatever the number of chains."""

    def chain_window_figures(
        self, until_ns: int, windows_s: dict[str, float], lookback_s: float, slas_ms: dict[str, float | None]
    ) -> list[dict]:
        """Per chain over its own window: traces, error_traces, within_sla, p95_ms, last_start_ns, example traces."""
        ...

    def chain_service_figures(self, until_ns: int, windows_s: dict[str, float]) -> list[dict]:
        """Per chain and service over the chain's window: calls, errors, p95_ms, avg_ms of spans."""
        ...

    def save_alerts(self, alerts: list[dict]) -> None:
        """Store new versions of alerts (one INSERT)."""
        ...

    def alerts(self, states: tuple[str, ...] | None = None, chain: str | None = None, limit: int = 1000) -> list[dict]:
        """Current versions of stored alerts, newest first."""
        ...

    def latest_alerts(self) -> list[dict]:
        """The newest alert of each (chain, alertname)."""
        ...

    def save_probe_results(self, results: list[dict]) -> None:
        """Store probe runs."""
        ...

    def probe_results(self, chain: str | None = None, limit: int = 20) -> list[dict]:
        """The latest probe runs per chain, newest first."""
        ...
