"""What both receivers share: body limits, gzip with a size cap, decode, submit, the response.

The HTTP receiver (:mod:`.http`) and the gRPC server (:mod:`.grpc`) differ only in transport; the
rules live here once.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from analyzer.ingest.otlp import DecodedSpans, decode_request
from analyzer.ingest.otlp_json import InvalidRequest, parse_request


class BodyTooLarge(ValueError):
    """The body exceeds a configured limit (HTTP 413)."""


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body (all members), stopping as soon as the output would exceed ``limit`` bytes.

    Raises :class:`BodyTooLarge` past the limit (a gzip bomb never inflates beyond ``limit + 1`` bytes)
    and :class:`InvalidRequest` for data that is not valid gzip.
    """
    out = bytearray()
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = d.decompress(rest, limit + 1 - len(out))
            out += chunk
            if len(out) > limit or d.unconsumed_tail:
                raise BodyTooLarge(f"decompressed body exceeds {limit} bytes")
            if not d.eof:
                raise InvalidRequest("gzip body is truncated")
            rest = d.unused_data
    except zlib.error as exc:
        raise InvalidRequest(f"body is not valid gzip: {exc}") from None
    return bytes(out)


def parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary ``ExportTraceServiceRequest``; :class:`InvalidRequest` with the reason if malformed."""
    try:
        return ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise InvalidRequest(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None


def decode_body(body: bytes, is_json: bool) -> DecodedSpans:
    """Decoded spans of a (decompressed) OTLP body; raises :class:`InvalidRequest` when malformed."""
    request = parse_request(body) if is_json else parse_protobuf(body)
    return decode_request(request)


@dataclass(frozen=True)
class ExportResult:
    """What a receiver answers on success: spans ``stored`` (or already stored), ``rejected``, reason."""

    stored: int
    rejected: int
    error_message: str

    def response(self) -> ExportTraceServiceResponse:
        """The OTLP response; ``partial_success`` is set only when spans were rejected (OTLP spec)."""
        resp = ExportTraceServiceResponse()
        if self.rejected:
            resp.partial_success.rejected_spans = self.rejected
            resp.partial_success.error_message = self.error_message
        return resp
