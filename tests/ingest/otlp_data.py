"""Builders of OTLP requests for the ingest tests (protobuf messages and OTLP/JSON dicts)."""

from __future__ import annotations

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def kv(key: str, value) -> KeyValue:
    """An OTLP attribute: ``bool``, ``int`` or (otherwise) string value."""
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def request(
    n_traces: int = 2, spans_per_trace: int = 3, service: str = "checkout", duration_ns: int = 5_000_000,
    start_ns: int = 1_700_000_000_000_000_000, chain: str = "B3",
) -> ExportTraceServiceRequest:
    """Traces of a root SERVER span and CLIENT children, all in one resource; random IDs."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", service))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for _ in range(n_traces):
        trace_id = os.urandom(16)
        root = os.urandom(8)
        for i in range(spans_per_trace):
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = root if i == 0 else os.urandom(8)
            if i:
                span.parent_span_id = root
            span.name = "POST /orders" if i == 0 else f"call {i}"
            span.kind = 2 if i == 0 else 3
            span.start_time_unix_nano = start_ns + i * 1000
            span.end_time_unix_nano = start_ns + i * 1000 + duration_ns
            span.attributes.append(kv("chain.id", chain))
            if i == 0:
                span.attributes.append(kv("http.route", "/orders"))
                span.attributes.append(kv("enduser.id", "u-42"))
            else:
                span.attributes.append(kv("peer.service", "payment"))
    return req


_BAD_UTF8_PLACEHOLDER = "BADUTF8!"


def deep_kvlist(levels: int) -> AnyValue:
    """An attribute value of ``levels`` kvlists nested in one another (3 message levels each)."""
    value = AnyValue(string_value="leaf")
    for _ in range(levels):
        outer = AnyValue()
        outer.kvlist_value.values.add(key="k").value.CopyFrom(value)
        value = outer
    return value


def poisoned_body() -> tuple[bytes, int, int]:
    """A binary request the protobuf parser refuses as a whole, whose valid spans must be stored:
    (body, valid spans, bad spans). Resource 1: three valid spans, one span whose name is not UTF-8,
    one with an attribute nested 40 kvlists deep; resource 2: a resource attribute that is not UTF-8
    (its two spans are refused with it). Invalid UTF-8 is written over a placeholder of the same
    length, so every length prefix stays right."""
    req = request(n_traces=1, spans_per_trace=5, service="poisoned")
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[3].name = _BAD_UTF8_PLACEHOLDER
    spans[4].attributes.add(key="deep").value.CopyFrom(deep_kvlist(40))
    other = request(n_traces=1, spans_per_trace=2, service="other")
    other.resource_spans[0].resource.attributes.append(kv("host.name", _BAD_UTF8_PLACEHOLDER))
    req.resource_spans.append(other.resource_spans[0])
    body = req.SerializeToString()
    assert body.count(_BAD_UTF8_PLACEHOLDER.encode()) == 2
    return body.replace(_BAD_UTF8_PLACEHOLDER.encode(), b"\xffBADUT\xfe!"), 3, 4
