"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` on grpcio.

- gzip request compression is handled by grpcio; ``grpc.max_receive_message_length`` is set to
  ``max_decompressed_bytes`` (grpcio checks it on the message size after decompression).
- Malformed message, or one with more spans than the write queue holds or too big once decoded →
  ``INVALID_ARGUMENT`` with the reason (not retried); spans with invalid IDs or times → OK
  with ``partial_success``.
- Overload → ``UNAVAILABLE``, which OTLP exporters retry (OTLP spec, "Failures"; ``RESOURCE_EXHAUSTED``
  is retryable only with ``RetryInfo``, and a Collector drops the data without it): more than
  ``grpc_max_concurrent_rpcs`` calls in progress, write queue or decoder backlog full, ClickHouse down,
  or not committed within ``commit_timeout_s``. Each ``UNAVAILABLE`` carries a ``google.rpc.RetryInfo``
  of ``retry_after_s`` seconds (the HTTP receiver's ``Retry-After``): in the ``grpc-status-details-bin``
  trailer (``google.rpc.Status`` details, read by the Collector) and in ``google.rpc.retryinfo-bin``
  (read by opentelemetry-python's exporter).
- grpcio itself answers ``RESOURCE_EXHAUSTED`` only past a hard cap of twice
  ``grpc_max_concurrent_rpcs`` calls (its ``maximum_concurrent_rpcs``, which bounds the messages held
  in memory), and for a message over ``max_decompressed_bytes``.
- The handler waits until the request's spans are committed before answering OK.

The method handler takes raw bytes (no deserializer) so the request digest used for
no-duplicates-on-retry is computed from exactly the bytes received, as on HTTP.
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import NoReturn

import grpc
from google.protobuf.any_pb2 import Any
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from chainotel_analyzer.ingest.otlp_json import InvalidRequest
from chainotel_analyzer.ingest.receive import ALREADY_STORED_HEADER, BodyTooLarge, DecodePool, DecoderUnavailable, ExportResult
from chainotel_analyzer.security.grpc import AuthInterceptor
from chainotel_analyzer.security.tls import grpc_credentials
from chainotel_analyzer.security.tokens import TokenSet
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import (
    STORE_UNAVAILABLE_REASON, RequestTooLarge, SpanSink, StoreUnavailable, WriteQueueFull,
)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class TraceServiceHandler:
    """``TraceService/Export`` into a :class:`~chainotel_analyzer.store.interfaces.SpanSink`."""

    def __init__(self, writer: SpanSink, decoders: DecodePool, settings: AnalyzerSettings):
        self._writer = writer
        self._decoders = decoders
        self._settings = settings
        self._calls = threading.BoundedSemaphore(settings.grpc_max_concurrent_rpcs)
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.seconds = settings.retry_after_s
        self._retry_info = retry

    def export(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        """Decode, queue and wait for the commit of one request (see module docstring for status codes)."""
        if not self._calls.acquire(blocking=False):
            limit = self._settings.grpc_max_concurrent_rpcs
            self._unavailable(context, f"{limit} OTLP/gRPC calls in progress already")
        try:
            return self._export(body, context)
        finally:
            self._calls.release()

    def _export(self, body: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        committed = None
        overloaded = self._writer.full() or self._decoders.busy()
        if overloaded:  # before decoding
            self._unavailable(context, overloaded)
        with self._writer.incoming():  # until queued: the writer waits for these spans
            try:
                # grpcio has already decompressed the message and enforced max_receive_message_length
                payload = self._decoders.submit(body, False, False, self._settings.max_decompressed_bytes).result()
                committed = self._writer.submit(payload.digest, payload.spans)
            except (InvalidRequest, BodyTooLarge, RequestTooLarge) as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except StoreUnavailable:
                self._unavailable(context, STORE_UNAVAILABLE_REASON)
            except (DecoderUnavailable, WriteQueueFull) as exc:
                self._unavailable(context, str(exc))
        if committed is not None:
            try:
                if committed.result(timeout=self._settings.commit_timeout_s) is False:
                    context.set_trailing_metadata(((ALREADY_STORED_HEADER.lower(), str(payload.spans.count)),))
            except StoreUnavailable:
                self._unavailable(context, STORE_UNAVAILABLE_REASON)
            except futures.TimeoutError:
                self._unavailable(context, "spans not committed in time")
        return ExportResult(payload.spans.rejected, payload.spans.error_message).response()

    def _unavailable(self, context: grpc.ServicerContext, reason: str) -> NoReturn:
        """End the call with UNAVAILABLE and a RetryInfo of ``retry_after_s`` seconds (module docstring)."""
        message = f"{reason}; retry later"
        details = Any()
        details.Pack(self._retry_info)
        status = status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message=message, details=[details])
        context.set_trailing_metadata((
            ("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", self._retry_info.SerializeToString()),
        ))  # fmt: skip
        context.abort(grpc.StatusCode.UNAVAILABLE, message)


def start_grpc_server(
    writer: SpanSink, decoders: DecodePool, settings: AnalyzerSettings, tokens: TokenSet | None = None
) -> tuple[grpc.Server, int]:
    """Start the OTLP/gRPC server on ``settings.host:settings.grpc_port``; return it and the bound port.
    TLS (mTLS with a client CA) when ``tls_cert_file`` is set (:mod:`chainotel_analyzer.security.tls`).
    With ``tokens``, every call needs ``authorization: Bearer <token>`` of an ``ingest`` token
    (:class:`~chainotel_analyzer.security.grpc.AuthInterceptor`).

    ``grpc_port = 0`` binds a free port. Raises RuntimeError if the port cannot be bound.
    """
    handler = TraceServiceHandler(writer, decoders, settings)
    limit = settings.grpc_max_concurrent_rpcs
    server = grpc.server(
        # a thread for each call the handler lets in (most of them wait for their commit), and spare
        # ones that answer UNAVAILABLE at once beyond that
        futures.ThreadPoolExecutor(max_workers=limit + 8, thread_name_prefix="otlp-grpc"),
        # the hard cap, past the handler's limit: calls in progress or waiting for a thread, so the
        # messages held in memory stay bounded (beyond it grpcio answers RESOURCE_EXHAUSTED)
        maximum_concurrent_rpcs=2 * limit,
        interceptors=[AuthInterceptor(tokens)] if tokens is not None else [],
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
    credentials = grpc_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(f"{host}:{settings.grpc_port}")
    else:
        port = server.add_secure_port(f"{host}:{settings.grpc_port}", credentials)
    if port == 0:
        raise RuntimeError(f"cannot bind OTLP/gRPC to {settings.host}:{settings.grpc_port}")
    server.start()
    return server, port
