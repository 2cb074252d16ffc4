"""OTLP/gRPC receiver: the SDK's gRPC exporter (gzip), raw calls for every status code."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.ingest.conftest import open_db
from tests.ingest.otlp_data import request

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_grpc_export_and_errors(analyzer_factory):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

    a = analyzer_factory({"CHAINOTEL_MAX_DECOMPRESSED_BYTES": "200000"})
    exporter = OTLPSpanExporter(endpoint=a.grpc, insecure=True, compression=grpc.Compression.Gzip, timeout=10)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-sdk"}))
    results = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span):
            results.append(exporter.export([span]))

    provider.add_span_processor(Recording(exporter))
    with provider.get_tracer("tests").start_as_current_span("grpc-root", attributes={"chain.id": "E2"}):
        pass
    provider.shutdown()
    assert results == [SpanExportResult.SUCCESS]

    with grpc.insecure_channel(a.grpc) as channel:
        export = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)
        # malformed message → INVALID_ARGUMENT with the reason
        with pytest.raises(grpc.RpcError) as err:
            export(b"\xff\xff\xff\x0f garbage", timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "protobuf" in err.value.details()
        # over max message size (checked by grpcio on the decompressed message)
        big = request(n_traces=200, spans_per_trace=10).SerializeToString()
        assert len(big) > 200_000
        with pytest.raises(grpc.RpcError) as err:
            export(big, timeout=10, compression=grpc.Compression.Gzip)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # partial success for invalid IDs, the rest stored; gzip; a retry is not stored twice
        req = request(n_traces=2, spans_per_trace=3)
        req.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01" * 15
        req.resource_spans[0].scope_spans[0].spans[4].end_time_unix_nano = 2**64 - 1  # past int64 ns
        body = req.SerializeToString()
        for _ in range(2):
            resp = export(body, timeout=10, compression=grpc.Compression.Gzip)
            assert resp.partial_success.rejected_spans == 2
            assert "trace_id must be 16 bytes, got 15" in resp.partial_success.error_message
            assert "end_time_unix_nano" in resp.partial_success.error_message
        resp = export(request(n_traces=1, spans_per_trace=2).SerializeToString(), timeout=10)
        assert not resp.HasField("partial_success")
    a.stop()
    with open_db(a.data_dir) as db:
        assert db.command("SELECT count() FROM chain_history") == 1 + 4 + 2
        assert db.command("SELECT chain FROM chain_history WHERE service_name = 'grpc-sdk'") == "E2"


def test_spans_the_parser_refuses_are_rejected_alone_over_grpc_and_http(analyzer_factory):
    """Invalid UTF-8 and too-deep nesting in some spans of one request: over OTLP/gRPC and OTLP/HTTP
    (protobuf) the request is answered OK with those spans in partial_success, and its valid spans
    are stored (they were all refused with the request before)."""
    import httpx

    from tests.ingest.otlp_data import poisoned_body

    body, valid, bad = poisoned_body()
    a = analyzer_factory()
    with grpc.insecure_channel(a.grpc) as channel:
        export = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)
        resp = export(body, timeout=10, compression=grpc.Compression.Gzip)
    assert resp.partial_success.rejected_spans == bad
    assert "not valid UTF-8" in resp.partial_success.error_message
    http_body = body.replace(b"poisoned", b"poisonex")  # another request: same shape, other service name
    r = httpx.post(a.http + "/v1/traces", content=http_body, headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 200
    partial = ExportTraceServiceResponse.FromString(r.content).partial_success
    assert partial.rejected_spans == bad and "nested deeper" in partial.error_message
    a.stop()
    with open_db(a.data_dir) as db:
        rows = dict(db.query("SELECT service_name, count() FROM chain_history GROUP BY service_name").result_rows)
    assert rows == {"poisoned": valid, "poisonex": valid}
