"""Salvage an ``ExportTraceServiceRequest`` that the protobuf parser refuses as a whole, span by span.

The parser refuses a whole message for one bad field deep inside it: a ``string`` field that is not
valid UTF-8 (proto3 requires it), or messages nested deeper than its limit (upb: 100 levels — an
attribute value of kvlists/arrays nested ~30 deep). OTLP asks a receiver to reject only what it
cannot take and report it in ``partial_success`` (OTLP spec, "Partial Success"), so on such a failure
:func:`salvage_request` walks the request at the wire level (protobuf encoding: each field is a varint
key ``number << 3 | wire type`` and a value; a message field is length-delimited), down the OTLP
nesting ``ExportTraceServiceRequest.resource_spans`` (1) → ``ResourceSpans`` {``resource`` (1),
``scope_spans`` (2), ``schema_url`` (3)} → ``ScopeSpans`` {``scope`` (1), ``spans`` (2), ``schema_url`` (3)},
and parses each piece on its own: a ``ResourceSpans`` or ``ScopeSpans`` that parses whole is kept
whole; otherwise its resource or scope and each span are parsed alone, and only the spans that fail
(or whose resource or scope fails) are rejected, each with its reason. Field numbers: opentelemetry-proto
``collector/trace/v1/trace_service.proto`` and ``trace/v1/trace.proto``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_MAX_REASONS = 3


class WireError(ValueError):
    """The bytes are not protobuf at all (a truncated field, an unknown wire type)."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(data: bytes):
    """Yield ``(field number, wire type, value)`` of one message's encoding: the value is an ``int``
    for varints and fixed-size fields, the ``bytes`` for length-delimited ones. Raises :class:`WireError`."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if pos + size > len(data):
                raise WireError("truncated fixed-size field")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError("truncated length-delimited field")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise WireError(f"unsupported wire type {wire}")
        yield number, wire, value


def _why(exc: DecodeError) -> str:
    """The parser's reason in the words of the OTLP data."""
    text = str(exc)
    if "UTF-8" in text:
        return "a string field is not valid UTF-8"
    if "MaxDepth" in text or "depth" in text.lower():
        return "attribute values nested deeper than the protobuf parser's limit (100 message levels)"
    return text


@dataclass
class Salvage:
    """What :func:`salvage_request` kept: the ``request`` of every part that parses, and the spans it
    ``rejected`` with the first reasons (``reasons``)."""

    request: ExportTraceServiceRequest = field(default_factory=ExportTraceServiceRequest)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, count: int, reason: str) -> None:
        self.rejected += count
        if len(self.reasons) < _MAX_REASONS:
            self.reasons.append(reason)


def salvage_request(body: bytes) -> Salvage:
    """Parse ``body`` (a binary ``ExportTraceServiceRequest`` the parser refused) piece by piece (module
    docstring). Raises :class:`WireError` when the bytes are not a protobuf message at all."""
    out = Salvage()
    for number, wire, value in fields(body):
        if number == 1 and wire == _LEN:
            _resource_spans(value, out)
    return out


def _parse(cls, data: bytes):
    """``cls`` parsed from ``data``, or the :class:`DecodeError`."""
    try:
        return cls.FromString(data)
    except DecodeError as exc:
        return exc


def _split(data: bytes, head_cls):
    """A ``ResourceSpans``/``ScopeSpans`` encoding as its parts: field 1 parsed as ``head_cls`` (or the
    :class:`DecodeError`; ``None`` if absent), the raw children of field 2, and the field 3 schema URL
    ('' when absent or not text: dropped, the children kept)."""
    head, children, schema_url = None, [], ""
    for number, wire, value in fields(data):
        if number == 1 and wire == _LEN:
            head = _parse(head_cls, value)
        elif number == 2 and wire == _LEN:
            children.append(value)
        elif number == 3 and wire == _LEN:
            try:
                schema_url = value.decode("utf-8")
            except UnicodeDecodeError:
                schema_url = ""
    return head, children, schema_url


def _resource_spans(data: bytes, out: Salvage) -> None:
    whole = _parse(ResourceSpans, data)
    if not isinstance(whole, DecodeError):
        out.request.resource_spans.append(whole)
        return
    resource, scopes, schema_url = _split(data, Resource)
    kept = ResourceSpans(schema_url=schema_url)
    for scope in scopes:
        if isinstance(resource, DecodeError):
            spans = sum(1 for n, w, _ in fields(scope) if n == 2 and w == _LEN)
            out.reject(spans, f"{spans} span(s) of a resource that cannot be parsed: {_why(resource)}")
        else:
            _scope_spans(scope, kept, out)
    if kept.scope_spans:
        if resource is not None:
            kept.resource.CopyFrom(resource)
        out.request.resource_spans.append(kept)


def _scope_spans(data: bytes, parent: ResourceSpans, out: Salvage) -> None:
    whole = _parse(ScopeSpans, data)
    if not isinstance(whole, DecodeError):
        parent.scope_spans.append(whole)
        return
    scope, spans, schema_url = _split(data, InstrumentationScope)
    if isinstance(scope, DecodeError):
        out.reject(len(spans), f"{len(spans)} span(s) of a scope that cannot be parsed: {_why(scope)}")
        return
    kept = ScopeSpans(schema_url=schema_url)
    if scope is not None:
        kept.scope.CopyFrom(scope)
    for raw in spans:
        span = _parse(Span, raw)
        if isinstance(span, DecodeError):
            out.reject(1, f"span {_span_id(raw) or '<unknown id>'}: {_why(span)}")
        else:
            kept.spans.append(span)
    if kept.spans:
        parent.scope_spans.append(kept)


def _span_id(raw: bytes) -> str:
    """The span ID (field 2) of an unparsable span's encoding as hex, '' if it cannot be read."""
    try:
        for number, wire, value in fields(raw):
            if number == 2 and wire == _LEN:
                return value.hex()
    except WireError:
        pass
    return ""
