"""OTLP trace receivers for tests (OTLP/HTTP protobuf, and OTLP/gRPC): decode
``ExportTraceServiceRequest`` with opentelemetry-proto and keep the spans as plain dicts."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind in ("string_value", "bool_value", "int_value", "double_value") else str(v)


def _attrs(kvs):
    return {kv.key: _value(kv.value) for kv in kvs}


class OtlpSink:
    """``OtlpSink()`` listens on 127.0.0.1 (ephemeral port); ``endpoint`` is the OTLP base URL."""

    def __init__(self):
        self.spans: list[dict] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/v1/traces":
                    sink._add(ExportTraceServiceRequest.FromString(body))
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _add(self, request):
        out = []
        for rs in request.resource_spans:
            resource = _attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(
                        {
                            "service": resource.get("service.name"),
                            "instance": resource.get("service.instance.id"),
                            "trace_id": int.from_bytes(s.trace_id, "big"),
                            "span_id": int.from_bytes(s.span_id, "big"),
                            "parent_span_id": int.from_bytes(s.parent_span_id, "big") if s.parent_span_id else 0,
                            "name": s.name,
                            "kind": s.kind,
                            "status": s.status.code,
                            "attributes": _attrs(s.attributes),
                            "links": [
                                {
                                    "trace_id": int.from_bytes(link.trace_id, "big"),
                                    "span_id": int.from_bytes(link.span_id, "big") if link.span_id else 0,
                                    "attributes": _attrs(link.attributes),
                                }
                                for link in s.links
                            ],
                        }
                    )
        with self._lock:
            self.spans.extend(out)

    def trace(self, trace_id: int) -> list[dict]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]

    def wait_trace(self, trace_id: int, predicate, timeout: float = 10.0) -> list[dict]:
        """Spans of ``trace_id`` once ``predicate(spans)`` holds; the last spans seen on timeout."""
        deadline = time.monotonic() + timeout
        spans = self.trace(trace_id)
        while not predicate(spans) and time.monotonic() < deadline:
            time.sleep(0.05)
            spans = self.trace(trace_id)
        return spans

    def wait_trace_of_service(self, service: str, predicate, timeout: float = 10.0) -> list[dict]:
        """Spans of ``service`` once ``predicate(spans)`` holds; the last spans seen on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                spans = [s for s in self.spans if s["service"] == service]
            if predicate(spans) or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)

    def close(self):
        self._server.shutdown()
        self._server.server_close()


class GrpcOtlpSink(OtlpSink):
    """Like :class:`OtlpSink` but an OTLP/gRPC ``TraceService`` (what ``otlp`` defaults to)."""

    def __init__(self):  # pylint: disable=super-init-not-called
        from concurrent import futures  # noqa: PLC0415

        import grpc  # noqa: PLC0415
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc  # noqa: PLC0415

        self.spans = []
        self._lock = threading.Lock()
        sink = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802
                sink._add(request)
                return ExportTraceServiceResponse()

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self._grpc)
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def close(self):
        self._grpc.stop(grace=None)
