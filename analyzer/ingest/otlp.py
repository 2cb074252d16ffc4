"""Decode an OTLP ``ExportTraceServiceRequest`` into ``chain_history`` columns.

The output is column-oriented (one Python list per column, in :data:`COLUMNS` order), ready for
``client.insert(..., column_oriented=True)``: no per-row objects are built.

Rules (OTLP specification, opentelemetry-proto ``trace/v1/trace.proto``):

- a span is rejected (and counted in ``partial_success.rejected_spans``) when its ``trace_id`` is not
  16 bytes or is all zero, its ``span_id`` is not 8 bytes or is all zero, or its ``parent_span_id``
  is neither empty nor 8 bytes — the rest of the request is stored;
- ``service.name`` falls back to ``unknown_service`` as the SDK's resource detector does;
- attribute values are stored as strings: strings as is, bool ``true``/``false``, ints in decimal,
  doubles with ``repr``, arrays/kvlists/bytes as JSON (bytes base64).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from functools import lru_cache

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from chainotel import attributes as ca

COLUMNS: tuple[str, ...] = (
    "chain_id",
    "trace_id",
    "request_id",
    "parent_span_id",
    "service_name",
    "operation",
    "span_kind",
    "event_type",
    "timestamp",
    "duration_ns",
    "endpoint",
    "user_id",
    "chain",
    "category",
    "status_code",
    "status_message",
    "error_context",
    "peer_service",
    "scope_name",
    "span_attributes",
    "resource_attributes",
)
"""Columns produced by :func:`decode_request`; the writer appends ``ingested_at`` and ``request_digest``."""

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
"""``span_kind`` values, indexed by the OTLP ``Span.SpanKind`` number."""

STATUS_CODES = ("unset", "ok", "error")
"""``status_code`` values, indexed by the OTLP ``Status.StatusCode`` number."""

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name")


@dataclass
class DecodedSpans:
    """Result of decoding one request.

    ``columns``: one list per name in :data:`COLUMNS` (all of length ``count``); ``rejected``: number of
    spans refused; ``error_message``: why (first few reasons), '' when none were refused.
    """

    columns: list[list] = field(default_factory=lambda: [[] for _ in COLUMNS])
    count: int = 0
    rejected: int = 0
    error_message: str = ""


@lru_cache(maxsize=1)
def _catalog_categories() -> dict[str, str]:
    """chain.id → category from the chainotel catalog ({} if the catalog cannot be loaded)."""
    try:
        from chainotel.catalog import default_catalog

        return {c.id: c.category.value if hasattr(c.category, "value") else str(c.category) for c in default_catalog().chains}
    except Exception:  # noqa: BLE001 - the category is a convenience; a broken catalog must not stop ingest
        return {}


def any_value_to_str(value: AnyValue) -> str:
    """An OTLP ``AnyValue`` as the string stored in a ``Map(String, String)`` column."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return repr(value.double_value)
    if kind is None:
        return ""
    return json.dumps(_any_value_to_py(value), separators=(",", ":"))


def _any_value_to_py(value: AnyValue):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value_to_py(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value_to_py(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return None
    return getattr(value, kind)


def _attrs(kvs) -> dict[str, str]:
    out = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        out[kv.key] = v.string_value if kind == "string_value" else any_value_to_str(v)
    return out


def _error_context(events) -> str:
    parts = []
    for ev in events:
        if ev.name != "exception":
            continue
        a = _attrs(ev.attributes)
        text = f"{a.get('exception.type', '')}: {a.get('exception.message', '')}"
        stack = a.get("exception.stacktrace")
        parts.append(f"{text}\n{stack}" if stack else text)
    return "\n---\n".join(parts)


def decode_request(request: ExportTraceServiceRequest) -> DecodedSpans:
    """Turn every valid span of ``request`` into one row of ``chain_history`` columns (see module doc)."""
    out = DecodedSpans()
    (
        c_chain_id, c_trace, c_span, c_parent, c_service, c_op, c_kind, c_event, c_ts, c_dur, c_endpoint,
        c_user, c_chain, c_category, c_status, c_status_msg, c_error, c_peer, c_scope, c_sattrs, c_rattrs,
    ) = out.columns
    reasons: list[str] = []
    rejected = 0
    categories = None
    kinds, statuses = SPAN_KINDS, STATUS_CODES
    for rs in request.resource_spans:
        rattrs = _attrs(rs.resource.attributes)
        service = rattrs.get("service.name") or "unknown_service"
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for span in ss.spans:
                tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
                if len(tid) != 16 or tid == _ZERO_TRACE or len(sid) != 8 or sid == _ZERO_SPAN or (pid and len(pid) != 8):
                    rejected += 1
                    if len(reasons) < 3:
                        reasons.append(_why(span))
                    continue
                sattrs = _attrs(span.attributes)
                kind = span.kind
                code = span.status.code
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                name = span.name
                chain = sattrs.get(ca.CHAIN_ID, "")
                category = sattrs.get(ca.CHAIN_CATEGORY, "")
                if chain and not category:
                    if categories is None:
                        categories = _catalog_categories()
                    category = categories.get(chain, "")
                c_chain_id.append(tid)
                c_trace.append(tid.hex())
                c_span.append(sid.hex())
                c_parent.append(pid.hex() if pid and pid != _ZERO_SPAN else "")
                c_service.append(service)
                c_op.append(name)
                c_kind.append(kinds[kind] if 0 <= kind < 6 else "unspecified")
                c_event.append("error" if code == 2 else "complete")
                c_ts.append(start)
                c_dur.append(end - start if end > start else 0)
                c_endpoint.append(sattrs.get("http.route") or name)
                c_user.append(sattrs.get("enduser.id", ""))
                c_chain.append(chain)
                c_category.append(category)
                c_status.append(statuses[code] if 0 <= code < 3 else "unset")
                c_status_msg.append(span.status.message)
                c_error.append(_error_context(span.events) if span.events else "")
                peer = ""
                if kind == 3 or kind == 4:
                    for key in _PEER_KEYS:
                        peer = sattrs.get(key, "")
                        if peer:
                            break
                c_peer.append(peer)
                c_scope.append(scope)
                c_sattrs.append(sattrs)
                c_rattrs.append(rattrs)
    out.count = len(c_trace)
    out.rejected = rejected
    if rejected:
        out.error_message = f"{rejected} span(s) rejected: " + "; ".join(reasons) + ("; ..." if rejected > len(reasons) else "")
    return out


def _why(span) -> str:
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    label = f"span {sid.hex() or '<empty>'} ({span.name!r})"
    if len(tid) != 16:
        return f"{label}: trace_id must be 16 bytes, got {len(tid)}"
    if tid == _ZERO_TRACE:
        return f"{label}: trace_id is all zero"
    if len(sid) != 8:
        return f"{label}: span_id must be 8 bytes, got {len(sid)}"
    if sid == _ZERO_SPAN:
        return f"{label}: span_id is all zero"
    return f"{label}: parent_span_id must be empty or 8 bytes, got {len(pid)}"

