"""Generated traces with known flows, sent to a real analyzer over OTLP/HTTP (protobuf).

A flow is a tree of :class:`Hop` s: each hop is a SERVER span in its service, and a call from one hop
to the next is a CLIENT span in the caller's service whose child is the callee's SERVER span, as the
OpenTelemetry instrumentations produce them.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.ingest.otlp_data import kv


@dataclass
class Hop:
    """A SERVER span of ``service`` named ``METHOD route`` (or ``name``), ``self_ms`` of own work,
    calling ``calls`` in order; ``attributes`` are added to the server span."""

    service: str
    route: str = ""
    method: str = "GET"
    name: str = ""
    self_ms: float = 2.0
    calls: list[Hop] = field(default_factory=list)
    attributes: dict = field(default_factory=dict)


def build(flows: list[tuple[Hop, int]], start_ns: int, spread_s: float, chain: str = "", seed: int = 1) -> ExportTraceServiceRequest:
    """One request with ``count`` traces of each ``(flow, count)``, starting uniformly within
    ``spread_s`` seconds from ``start_ns``; every span gets ``chain.id`` = ``chain`` when given."""
    rng = random.Random(seed)
    spans_by_service: dict[str, list] = {}

    def emit(service, span):
        spans_by_service.setdefault(service, []).append(span)

    def hop_spans(hop: Hop, trace_id: bytes, parent: bytes, t0: int) -> int:
        span_id = os.urandom(8)
        t = t0 + int(hop.self_ms * 1e6 / 2)
        for call in hop.calls:
            client_id = os.urandom(8)
            c0 = t
            end = hop_spans(call, trace_id, client_id, c0 + 200_000)
            emit(hop.service, dict(trace_id=trace_id, span_id=client_id, parent=span_id, name=f"{call.method} {call.service}",
                                   kind=3, start=c0, end=end + 200_000, attrs={"http.request.method": call.method}))
            t = end + 200_000
        end = t + int(hop.self_ms * 1e6 / 2)
        attrs = dict(hop.attributes)
        if hop.route:
            attrs.setdefault("http.route", hop.route)
            attrs.setdefault("http.request.method", hop.method)
        name = hop.name or (f"{hop.method} {hop.route}" if hop.route else hop.service)
        emit(hop.service, dict(trace_id=trace_id, span_id=span_id, parent=parent, name=name, kind=2, start=t0, end=end,
                               attrs=attrs))
        return end

    for flow, count in flows:
        for _ in range(count):
            t0 = start_ns + int(rng.random() * spread_s * 1e9)
            hop_spans(flow, os.urandom(16), b"", t0)
    req = ExportTraceServiceRequest()
    for service, spans in spans_by_service.items():
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", service))
        ss = rs.scope_spans.add()
        ss.scope.name = "tests.discovery"
        for s in spans:
            span = ss.spans.add()
            span.trace_id, span.span_id, span.name, span.kind = s["trace_id"], s["span_id"], s["name"], s["kind"]
            if s["parent"]:
                span.parent_span_id = s["parent"]
            span.start_time_unix_nano, span.end_time_unix_nano = s["start"], s["end"]
            for k, v in s["attrs"].items():
                span.attributes.append(kv(k, v))
            if chain:
                span.attributes.append(kv("chain.id", chain))
    return req


def send(client: httpx.Client, req: ExportTraceServiceRequest) -> None:
    """POST ``req`` to the analyzer's ``/v1/traces``; asserts it was accepted whole."""
    r = client.post("/v1/traces", content=req.SerializeToString(), headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 200, r.text
