"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on grpcio.

- gzip request compression is handled by grpcio; ``grpc.max_receive_message_length`` is set to
  ``max_decompressed_bytes`` (grpcio checks it on the message size after decompression).
- Malformed message → ``INVALID_ARGUMENT`` with the reason; write queue full, ClickHouse down or not
  committed within ``commit_timeout`` → ``UNAVAILABLE`` (retryable per the OTLP spec); spans with
  invalid IDs → OK with ``partial_success``.
- The handler waits until the request's spans are committed before answering OK.

The method handler takes raw bytes (no deserializer) so the request digest used for
no-duplicates-on-retry is computed from exactly the bytes received, as on HTTP.
"""

from __future__ import annotations

from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from analyzer.ingest.otlp_json import InvalidRequest
from analyzer.ingest.receive import BodyTooLarge, DecodePool, DecoderUnavailable, ExportResult
from analyzer.settings import AnalyzerSettings
from analyzer.store.writer import SpanWriter, StoreUnavailable, WriteQueueFull

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceServiceHandler:
    """``TraceService/Export`` over a :class:`~analyzer.store.writer.SpanWriter`."""

    def __init__(self, writer: SpanWriter, decoders: DecodePool, settings: AnalyzerSettings):
        self._writer = writer
        self._decoders = decoders
        self._settings = settings

    def export(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        """Decode, queue and wait for the commit of one request (see module docstring for status codes)."""
        committed = None
        with self._writer.incoming():  # until queued: the writer waits for these spans
            try:
                # grpcio has already decompressed the message and enforced max_receive_message_length
                payload = self._decoders.submit(body, False, False, self._settings.max_decompressed_bytes).result()
                if payload.spans.count:
                    committed = self._writer.submit(payload.digest, payload.spans)
            except (InvalidRequest, BodyTooLarge) as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except (DecoderUnavailable, WriteQueueFull, StoreUnavailable) as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry later")
        if committed is not None:
            try:
                committed.result(timeout=self._settings.commit_timeout)
            except StoreUnavailable as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry later")
            except futures.TimeoutError:
                context.abort(grpc.StatusCode.UNAVAILABLE, "spans not committed in time; retry later")
        return ExportResult(payload.spans.rejected, payload.spans.error_message).response()


def start_grpc_server(writer: SpanWriter, decoders: DecodePool, settings: AnalyzerSettings) -> tuple[grpc.Server, int]:
    """Start the OTLP/gRPC server on ``settings.host:settings.grpc_port``; return it and the bound port.

    ``grpc_port = 0`` binds a free port. Raises RuntimeError if the port cannot be bound.
    """
    handler = TraceServiceHandler(writer, decoders, settings)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="otlp-grpc"),
        # beyond this many RPCs in progress or queued grpcio answers RESOURCE_EXHAUSTED (retried by
        # the OTLP exporters) instead of queueing messages without bound
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", settings.max_decompressed_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ],
    )
    rpc = grpc.unary_unary_rpc_method_handler(
        handler.export, request_deserializer=None, response_serializer=ExportTraceServiceResponse.SerializeToString
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": rpc}),))
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    port = server.add_insecure_port(f"{host}:{settings.grpc_port}")
    if port == 0:
        raise RuntimeError(f"cannot bind OTLP/gRPC to {settings.host}:{settings.grpc_port}")
    server.start()
    return server, port
