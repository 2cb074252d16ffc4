"""The OTLP/JSON mapping of ``ExportTraceServiceRequest`` (OTLP spec, "JSON Protobuf Encoding").

opentelemetry-proto's ``json_format`` reads ``bytes`` fields as base64, but OTLP/JSON writes trace
and span IDs as hex strings: :func:`parse_request` rewrites ``traceId``/``spanId``/``parentSpanId``
(spans and links) from hex before ``ParseDict``. An ID that is not valid hex becomes empty bytes, so
the span is rejected individually (partial success) rather than failing the whole request. Enum
fields accept names or numbers; unknown fields are ignored, as the spec requires of receivers.

Strict where ignoring would lose data silently: an enum *name* that is not one of the proto's
(``"kind": "SPAN_KIND_BOGUS"`` — ``json_format`` would read it as the default, unspecified) and the
``NaN`` / ``Infinity`` literals, which are not JSON (RFC 8259; OTLP/JSON writes a non-finite double
as the string ``"NaN"``), refuse the request with the reason, wherever they stand.

Senders built on OTLP < 0.15 write ``instrumentationLibrarySpans`` / ``instrumentationLibrary``
(renamed ``scopeSpans`` / ``scope`` in opentelemetry-proto 0.15, dropped from the proto in 0.19): a
parser that ignores unknown fields would acknowledge those spans and store none, so
:func:`upgrade_legacy_names` moves them to the current names first.
"""

from __future__ import annotations

import base64
import binascii
import json

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

_SPAN_KIND_NAMES = frozenset(Span.SpanKind.keys())
_STATUS_CODE_NAMES = frozenset(Status.StatusCode.keys())

_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


class InvalidRequest(ValueError):
    """The request body cannot be decoded; the message says why (returned as 400 / INVALID_ARGUMENT)."""


def _hex_to_b64(obj: dict) -> None:
    for key in _ID_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = b""
            obj[key] = base64.b64encode(raw).decode("ascii")


def _reject_constant(name: str):
    raise InvalidRequest(f"body is not valid JSON: {name} is not a JSON number (RFC 8259); "
                         f"OTLP/JSON writes a non-finite double as the string \"{name}\"")  # fmt: skip


def _is_enum_value(value, names: frozenset[str]) -> bool:
    """Absent, one of ``names``, or an integral number (proto3 enums are open); not ``2.5`` or ``true``,
    which ``json_format`` would read as another value without a word."""
    if value is None or (isinstance(value, str) and value in names):
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or value.is_integer()


def _check_enum_names(span: dict) -> None:
    """Refuse a span kind or status code the proto does not define by name, or that is no integer."""
    kind = span.get("kind")
    if not _is_enum_value(kind, _SPAN_KIND_NAMES):
        raise InvalidRequest(f"span {span.get('spanId', span.get('span_id', ''))!r}: kind {kind!r} is not a SpanKind "
                             f"({', '.join(sorted(_SPAN_KIND_NAMES))}) or its number")  # fmt: skip
    status = span.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    if not _is_enum_value(code, _STATUS_CODE_NAMES):
        raise InvalidRequest(f"span {span.get('spanId', span.get('span_id', ''))!r}: status.code {code!r} is not a "
                             f"StatusCode ({', '.join(sorted(_STATUS_CODE_NAMES))}) or its number")  # fmt: skip


def _lists(obj: dict, *keys: str):
    for key in keys:
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, list):
                raise InvalidRequest(f"{key!r} must be an array")
            return value
    return []


_LEGACY_SCOPE_SPANS = {"instrumentationLibrarySpans": "scopeSpans", "instrumentation_library_spans": "scope_spans"}
_LEGACY_SCOPE = {"instrumentationLibrary": "scope", "instrumentation_library": "scope"}


def upgrade_legacy_names(doc: dict) -> dict:
    """Move OTLP < 0.15 ``instrumentationLibrarySpans`` into ``scopeSpans`` (appended after any the
    resource already has) and ``instrumentationLibrary`` into ``scope``, in place; returns ``doc``.

    Example::

        >>> upgrade_legacy_names({"resourceSpans": [{"instrumentationLibrarySpans": [
        ...     {"instrumentationLibrary": {"name": "io.opentelemetry.okhttp"}, "spans": []}]}]})
        {'resourceSpans': [{'scopeSpans': [{'spans': [], 'scope': {'name': 'io.opentelemetry.okhttp'}}]}]}

    Raises :class:`InvalidRequest` when a field that must be an array is not one.
    """
    for rs in _lists(doc, "resourceSpans", "resource_spans"):
        if not isinstance(rs, dict):
            continue
        for old, new in _LEGACY_SCOPE_SPANS.items():
            if old not in rs:
                continue
            legacy = _lists(rs, old)
            del rs[old]
            for ss in legacy:
                if isinstance(ss, dict):
                    for old_scope, new_scope in _LEGACY_SCOPE.items():
                        if old_scope in ss:
                            ss.setdefault(new_scope, ss.pop(old_scope))
            current = "scopeSpans" if "scopeSpans" in rs else "scope_spans" if "scope_spans" in rs else new
            rs[current] = [*_lists(rs, current), *legacy]
    return doc


def parse_request(body: bytes | str | dict) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest`` (bytes, text or an already-loaded dict).

    Raises :class:`InvalidRequest` with the reason when the body is not JSON (``NaN`` literals
    included), does not fit the schema, or names an enum value the proto does not define.
    """
    if isinstance(body, dict):
        doc = body
    else:
        try:
            doc = json.loads(body, parse_constant=_reject_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRequest("body must be a JSON object (ExportTraceServiceRequest)")
    try:
        upgrade_legacy_names(doc)
        for rs in _lists(doc, "resourceSpans", "resource_spans"):
            for ss in _lists(rs, "scopeSpans", "scope_spans"):
                for span in _lists(ss, "spans"):
                    _check_enum_names(span)
                    _hex_to_b64(span)
                    for link in _lists(span, "links"):
                        _hex_to_b64(link)
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except InvalidRequest:
        raise
    except (json_format.ParseError, AttributeError, TypeError, ValueError, binascii.Error) as exc:
        raise InvalidRequest(f"body is not an OTLP/JSON ExportTraceServiceRequest: {exc}") from None


def response_json(response: ExportTraceServiceResponse) -> bytes:
    """An ``ExportTraceServiceResponse`` in the OTLP/JSON mapping (``{}`` when fully successful)."""
    if response.HasField("partial_success"):
        ps = response.partial_success
        return json.dumps(
            {"partialSuccess": {"rejectedSpans": str(ps.rejected_spans), "errorMessage": ps.error_message}}
        ).encode()
    return b"{}"
