"""Traffic for the monitoring tests: OTLP/HTTP protobuf requests of whole traces, starting now."""

from __future__ import annotations

import os
import time

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.ingest.otlp_data import kv


def traces_request(chain: str, n: int, duration_ms: float, error: bool = False, services=("gateway", "backend"),
                   start_ns: int | None = None) -> ExportTraceServiceRequest:  # fmt: skip
    """``n`` traces of ``chain``: a root SERVER span in the first service and a child in each other
    one, the root lasting ``duration_ms``; with ``error`` the last service's span fails."""
    req = ExportTraceServiceRequest()
    start = start_ns if start_ns is not None else time.time_ns() - int(duration_ms * 1e6) - 1_000_000
    per_service = {}
    for service in services:
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", service))
        per_service[service] = rs.scope_spans.add()
    for _ in range(n):
        trace_id, root = os.urandom(16), os.urandom(8)
        for i, service in enumerate(services):
            span = per_service[service].spans.add()
            span.trace_id, span.span_id = trace_id, root if i == 0 else os.urandom(8)
            if i:
                span.parent_span_id = root
            span.name = f"op {service}"
            span.kind = 2
            span.start_time_unix_nano = start + i * 1000
            span.end_time_unix_nano = start + int(duration_ms * 1e6) - i * 1000
            span.attributes.append(kv("chain.id", chain))
            if error and i == len(services) - 1:
                span.status.code = 2
    return req


def send(base_url: str, chain: str, n: int, duration_ms: float, error: bool = False, **kw) -> None:
    """POST the traces to the analyzer's OTLP/HTTP endpoint; raises on a non-200 answer."""
    body = traces_request(chain, n, duration_ms, error, **kw).SerializeToString()
    r = httpx.post(base_url + "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30)
    r.raise_for_status()


def otel_env(analyzer_url: str, catalog: str, service: str, **extra: str) -> dict[str, str]:
    """The environment of a service under ``opentelemetry-instrument`` with the chainotel distro, exporting
    OTLP/HTTP to the analyzer at ``analyzer_url`` every 50 ms and tagging by the catalog file ``catalog``."""
    return {"OTEL_SERVICE_NAME": service, "OTEL_PYTHON_DISTRO": "chainotel", "OTEL_PYTHON_CONFIGURATOR": "chainotel",
            "OTEL_EXPORTER_OTLP_ENDPOINT": analyzer_url, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "50", "CHAINOTEL_CATALOG": catalog, **extra}  # fmt: skip


def wait_for(predicate, timeout_s: float, what: str, step_s: float = 0.2):
    """Poll ``predicate()`` until it returns something truthy (returned) or ``timeout_s`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step_s)
    raise AssertionError(f"not within {timeout_s} s: {what} (last: {last!r})")
