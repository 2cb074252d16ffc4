"""A stored trace back as OTLP: the ``ExportTraceServiceRequest`` its rows came in, and its OTLP/JSON.

Each ``chain_history`` row holds its span, resource and scope as the protobuf messages they arrived
as (``span_otlp``, ``resource_otlp``, ``scope_otlp``; migration 0006; the span without the trace ID,
span ID, start time and parent span ID that its columns hold). :func:`trace_request` groups
a trace's rows by resource and scope (first-seen order), as Jaeger's ``api/v3`` returns traces;
:func:`request_json` writes the OTLP/JSON mapping (OTLP specification, "JSON Protobuf Encoding"):
proto3 JSON with lowerCamelCase names, trace and span IDs as hex (not base64), enums as integers,
64-bit integers as strings, ``bytesValue`` base64, non-finite doubles as ``"NaN"``, ``"Infinity"``,
``"-Infinity"``.

Rows stored before migration 0006 (``span_otlp`` empty) are rebuilt from their columns
(:class:`StoredSpan` fields): IDs, name, kind, times, status, scope name, and attributes as string
values — what those rows kept.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from chainotel_analyzer.model.rows import SPAN_KINDS, STATUS_CODES

_ID_KEYS = ("traceId", "spanId", "parentSpanId")


@dataclass(frozen=True)
class StoredSpan:
    """One ``chain_history`` row as :func:`trace_request` needs it: the three messages (``b""`` for a
    row stored before they were kept) and, for such rows, the columns to rebuild the span from
    (times in **ns**)."""

    span_otlp: bytes
    resource_otlp: bytes
    scope_otlp: bytes
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""
    name: str = ""
    span_kind: str = "unspecified"
    start_ns: int = 0
    duration_ns: int = 0
    status_code: str = "unset"
    status_message: str = ""
    scope_name: str = ""
    span_attributes: dict[str, str] = field(default_factory=dict)
    resource_attributes: dict[str, str] = field(default_factory=dict)


def _string_attributes(values: dict[str, str]) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in values.items()]


def _legacy_parts(row: StoredSpan) -> tuple[bytes, bytes, Span]:
    """(resource bytes, scope bytes, span) rebuilt from a row's columns (rows stored before 0006)."""
    resource = ResourceSpans()
    resource.resource.attributes.extend(_string_attributes(row.resource_attributes))
    scope = ScopeSpans()
    scope.scope.name = row.scope_name
    span = Span(
        trace_id=bytes.fromhex(row.trace_id), span_id=bytes.fromhex(row.span_id),
        parent_span_id=bytes.fromhex(row.parent_span_id) if row.parent_span_id else b"", name=row.name,
        kind=SPAN_KINDS.index(row.span_kind) if row.span_kind in SPAN_KINDS else 0,
        start_time_unix_nano=row.start_ns, end_time_unix_nano=row.start_ns + row.duration_ns,
        status=Status(code=STATUS_CODES.index(row.status_code) if row.status_code in STATUS_CODES else 0,
                      message=row.status_message),
    )  # fmt: skip
    span.attributes.extend(_string_attributes(row.span_attributes))
    return resource.SerializeToString(deterministic=True), scope.SerializeToString(deterministic=True), span


def _stored_span(row: StoredSpan) -> Span:
    """The span of a row: ``span_otlp`` with the fields its columns hold put back (the decoder leaves
    out trace ID, span ID, start time and a parent span ID that is not all zero)."""
    span = Span.FromString(row.span_otlp)
    span.trace_id = bytes.fromhex(row.trace_id)
    span.span_id = bytes.fromhex(row.span_id)
    span.start_time_unix_nano = row.start_ns
    if not span.parent_span_id and row.parent_span_id:
        span.parent_span_id = bytes.fromhex(row.parent_span_id)
    return span


def trace_request(rows: list[StoredSpan]) -> ExportTraceServiceRequest:
    """The ``ExportTraceServiceRequest`` holding ``rows``: one ``ResourceSpans`` per distinct resource,
    one ``ScopeSpans`` per distinct scope within it, spans in row order."""
    request = ExportTraceServiceRequest()
    resources: dict[bytes, tuple[ResourceSpans, dict[bytes, ScopeSpans]]] = {}
    for row in rows:
        if row.span_otlp:
            resource_key, scope_key, span = row.resource_otlp, row.scope_otlp, _stored_span(row)
        else:
            resource_key, scope_key, span = _legacy_parts(row)
        if resource_key not in resources:
            rs = request.resource_spans.add()
            rs.MergeFromString(resource_key)
            resources[resource_key] = (rs, {})
        rs, scopes = resources[resource_key]
        if scope_key not in scopes:
            ss = rs.scope_spans.add()
            ss.MergeFromString(scope_key)
            scopes[scope_key] = ss
        scopes[scope_key].spans.append(span)
    return request


def _hex_ids(obj: dict) -> None:
    for key in _ID_KEYS:
        if key in obj:
            obj[key] = base64.b64decode(obj[key]).hex()


def request_json(request: ExportTraceServiceRequest) -> dict:
    """``request`` as an OTLP/JSON dict (module docstring); ``json.dumps(..., allow_nan=False)`` accepts it."""
    doc = MessageToDict(request, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                _hex_ids(span)
                for link in span.get("links", ()):
                    _hex_ids(link)
    return doc


def span_details(span_otlp: bytes) -> dict:
    """The parts of a stored span the per-instance views show besides its columns, as OTLP/JSON:
    ``{"span_events": [...], "links": [...], "trace_state": str, "flags": int}`` (empty for a row
    stored before the span was kept whole)."""
    if not span_otlp:
        return {"span_events": [], "links": [], "trace_state": "", "flags": 0}
    span = Span.FromString(span_otlp)
    doc = MessageToDict(span, use_integers_for_enums=True)
    links = doc.get("links", [])
    for link in links:
        _hex_ids(link)
    return {"span_events": doc.get("events", []), "links": links, "trace_state": span.trace_state,
            "flags": span.flags}  # fmt: skip
