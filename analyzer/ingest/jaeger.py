"""Convert Jaeger JSON into an OTLP/JSON request dict: the query API's ``{"data": [trace, ...]}``, or
one trace object ``{"traceID": ..., "spans": [...], "processes": {...}}`` (as Jaeger's own test fixtures
and its UI's "Download JSON" write it).

Mapping (the reverse of the OpenTelemetry Collector's ``translator/jaeger`` OTLP → Jaeger rules):

- ``traceID``/``spanID`` hex, left-padded with zeros to 32/16 characters (Jaeger drops leading zeros,
  64-bit trace IDs become the low half);
- the first ``CHILD_OF`` reference in the same trace (else the first ``FOLLOWS_FROM``) is the parent,
  the other references become links;
- ``startTime``/``duration`` are microseconds → ``start/endTimeUnixNano``;
- tag ``span.kind`` → span kind; ``otel.status_code`` / ``error=true`` → status (``otel.status_description``
  its message); ``otel.scope.name``/``otel.library.name`` → scope; other tags → attributes;
- logs → events (``event`` field is the name, default ``log``); the process's ``serviceName`` and tags
  → resource attributes (``service.name``). The process is the span's own ``process`` object when it
  has one (Jaeger's model JSON), else ``processes[processID]`` of its trace.
- a span whose ``traceID``/``spanID`` (or a reference's) is not hex of at most 32/16 digits, or is all
  zero, is left out and named in ``rejected`` by the IDs as written in the file.
"""

from __future__ import annotations

import json
from typing import Any

_KINDS = {
    "internal": "SPAN_KIND_INTERNAL",
    "server": "SPAN_KIND_SERVER",
    "client": "SPAN_KIND_CLIENT",
    "producer": "SPAN_KIND_PRODUCER",
    "consumer": "SPAN_KIND_CONSUMER",
}
_SPECIAL_TAGS = {"span.kind", "otel.status_code", "otel.status_description", "error", "otel.scope.name",
                 "otel.library.name", "otel.scope.version", "otel.library.version"}  # fmt: skip


def is_jaeger(doc: Any) -> bool:
    """True for a Jaeger query-API document ``{"data": [{"traceID": ..., "spans": [...]}, ...]}`` or a
    single Jaeger trace ``{"traceID": ..., "spans": [...]}``."""
    if not isinstance(doc, dict) or "resourceSpans" in doc:
        return False
    return isinstance(doc.get("data"), list) or (isinstance(doc.get("spans"), list) and "traceID" in doc)


def _id_problem(value: Any, digits: int) -> str:
    """Why ``value`` is not a Jaeger ID of at most ``digits`` hex digits ('' when it is one)."""
    text = str(value or "")
    if not text:
        return "is empty"
    if len(text) > digits:
        return f"has more than {digits} hex digits"
    try:
        number = int(text, 16)
    except ValueError:
        return "is not hex"
    return "" if number else "is all zero"


def _span_problem(span: dict) -> str:
    """Why ``span``'s IDs cannot be stored, naming them as written ('' when they can)."""
    label = f"span {span.get('spanID')!s} of trace {span.get('traceID')!s}"
    for key, digits in (("traceID", 32), ("spanID", 16)):
        problem = _id_problem(span.get(key), digits)
        if problem:
            return f"{label}: {key} {problem}"
    for ref in span.get("references") or ():
        for key, digits in (("traceID", 32), ("spanID", 16)):
            problem = _id_problem(ref.get(key), digits)
            if problem:
                return f"{label}: reference {key} {ref.get(key)!s} {problem}"
    return ""


def _value(tag: dict) -> dict:
    kind = str(tag.get("type", "string")).lower()
    value = tag.get("value")
    if kind == "bool":
        return {"boolValue": value in (True, "true", "True", 1)}
    if kind == "int64":
        return {"intValue": str(int(value))}
    if kind == "float64":
        return {"doubleValue": float(value)}
    return {"stringValue": "" if value is None else str(value)}


def _attrs(tags: list | None, skip: set[str] = frozenset()) -> list[dict]:
    return [{"key": t["key"], "value": _value(t)} for t in tags or () if t.get("key") not in skip]


def _pad(hex_id: Any, width: int) -> str:
    return str(hex_id or "").lower().rjust(width, "0")


def jaeger_to_otlp(doc: dict, rejected: list[str] | None = None) -> dict:
    """An OTLP/JSON ``ExportTraceServiceRequest`` dict with every span of every trace in ``doc`` whose
    IDs are valid; each span left out is appended to ``rejected`` (if given) as a reason naming its IDs
    as written in ``doc``.

    Raises ValueError naming the trace or span when a required field is missing.
    """
    resource_spans = []
    traces = doc["data"] if isinstance(doc.get("data"), list) else [doc]
    for ti, trace in enumerate(traces):
        if not isinstance(trace, dict) or not isinstance(trace.get("spans"), list):
            raise ValueError(f"data[{ti}] is not a Jaeger trace (needs a 'spans' array)")
        processes = trace.get("processes") or {}
        by_process: dict[str, dict[str, list]] = {}
        own_processes: dict[str, dict] = {}
        for si, span in enumerate(trace["spans"]):
            if not isinstance(span, dict):
                raise ValueError(f"data[{ti}].spans[{si}] is not a Jaeger span (not an object)")
            problem = _span_problem(span)
            if problem:
                if rejected is not None:
                    rejected.append(problem)
                continue
            try:
                trace_id = _pad(span["traceID"], 32)
                tags = {t.get("key"): t.get("value") for t in span.get("tags") or ()}
                parent, links = "", []
                refs = span.get("references") or []
                ordered = sorted(refs, key=lambda r: r.get("refType") != "CHILD_OF")
                for ref in ordered:
                    same = _pad(ref.get("traceID"), 32) == trace_id
                    if not parent and same:
                        parent = _pad(ref.get("spanID"), 16)
                    else:
                        links.append({"traceId": _pad(ref.get("traceID"), 32), "spanId": _pad(ref.get("spanID"), 16)})
                start_ns = int(span["startTime"]) * 1000
                otel_span: dict[str, Any] = {
                    "traceId": trace_id,
                    "spanId": _pad(span["spanID"], 16),
                    "name": span.get("operationName", ""),
                    "kind": _KINDS.get(str(tags.get("span.kind", "")).lower(), "SPAN_KIND_UNSPECIFIED"),
                    "startTimeUnixNano": str(start_ns),
                    "endTimeUnixNano": str(start_ns + int(span.get("duration", 0)) * 1000),
                    "attributes": _attrs(span.get("tags"), _SPECIAL_TAGS),
                }
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"data[{ti}].spans[{si}] is not a Jaeger span: {exc!r}") from None
            if parent:
                otel_span["parentSpanId"] = parent
            if links:
                otel_span["links"] = links
            status = str(tags.get("otel.status_code", "")).upper()
            if status == "ERROR" or tags.get("error") in (True, "true"):
                otel_span["status"] = {"code": "STATUS_CODE_ERROR", "message": str(tags.get("otel.status_description", ""))}
            elif status == "OK":
                otel_span["status"] = {"code": "STATUS_CODE_OK"}
            events = []
            for log in span.get("logs") or ():
                fields = log.get("fields") or []
                name = next((str(f.get("value")) for f in fields if f.get("key") == "event"), "log")
                events.append({
                    "timeUnixNano": str(int(log.get("timestamp", 0)) * 1000),
                    "name": name,
                    "attributes": _attrs(fields, {"event"}),
                })  # fmt: skip
            if events:
                otel_span["events"] = events
            scope = str(tags.get("otel.scope.name") or tags.get("otel.library.name") or "")
            pid = str(span.get("processID", ""))
            if isinstance(span.get("process"), dict):  # the span carries its process (Jaeger's model JSON)
                pid = "\0" + json.dumps(span["process"], sort_keys=True)
                own_processes[pid] = span["process"]
            by_process.setdefault(pid, {}).setdefault(scope, []).append(otel_span)
        for pid, scopes in by_process.items():
            process = own_processes.get(pid) or processes.get(pid) or {}
            resource = [{"key": "service.name", "value": {"stringValue": process.get("serviceName") or "unknown_service"}}]
            resource += _attrs(process.get("tags"), {"service.name"})
            resource_spans.append({
                "resource": {"attributes": resource},
                "scopeSpans": [{"scope": {"name": scope}, "spans": spans} for scope, spans in scopes.items()],
            })  # fmt: skip
    return {"resourceSpans": resource_spans}
