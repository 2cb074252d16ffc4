"""The trace page's waterfall: spans in tree order (each parent followed by its children by start
time, as Jaeger UI lists them), each bar placed in percent of the trace's time span, with the
critical-path sections drawn on the bars (Jaeger UI's critical path overlay).

Input: the critical-path response (``GET /api/v1/traces/{id}/critical-path``: ``spans`` with self
and critical time, ``roots`` with their ``sections``) and the whole stored trace as OTLP/JSON
(``GET /api/v1/traces/{id}``: every span as it arrived, with its resource and scope), whose spans
give the details panel — attributes with their types, events, links, status, trace state, flags,
scope and resource, as stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Row:
    """One waterfall row: the span's times (**ns**), its ``depth`` in the tree, the bar's ``left``/
    ``width`` and its critical ``sections`` (``(left, width)``), all in percent of the trace."""

    span_id: str
    parent_span_id: str
    service: str
    operation: str
    start_ns: int
    offset_ns: int
    duration_ns: int
    self_time_ns: int
    critical_time_ns: int
    depth: int
    left: float
    width: float
    sections: list[tuple[float, float]] = field(default_factory=list)
    error: bool = False
    details: dict = field(default_factory=dict)

    @property
    def critical(self) -> bool:
        """The span has a section of the critical path."""
        return bool(self.sections)


@dataclass
class Waterfall:
    """The rows, the trace's first start and length (**ns**), and time ticks ``(percent, offset ns)``."""

    rows: list[Row]
    start_ns: int
    length_ns: int
    ticks: list[tuple[float, int]]


def _tree_order(spans: Sequence[dict]) -> list[tuple[dict, int]]:
    ids = {s["span_id"] for s in spans}
    children: dict[str, list[dict]] = {}
    roots = []
    for s in spans:
        if s["parent_span_id"] and s["parent_span_id"] in ids and s["parent_span_id"] != s["span_id"]:
            children.setdefault(s["parent_span_id"], []).append(s)
        else:
            roots.append(s)
    out: list[tuple[dict, int]] = []
    seen: set[str] = set()
    stack = [(r, 0) for r in sorted(roots, key=lambda s: (s["start_unix_nano"], s["span_id"]), reverse=True)]
    while stack:
        span, depth = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        out.append((span, depth))
        kids = sorted(children.get(span["span_id"], []), key=lambda s: (s["start_unix_nano"], s["span_id"]), reverse=True)
        stack.extend((k, depth + 1) for k in kids)
    out += [(s, 0) for s in spans if s["span_id"] not in seen]  # parent cycles: still shown
    return out


SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
"""OTLP ``Span.SpanKind`` values 0–5 by name."""

STATUS_CODES = ("unset", "ok", "error")
"""OTLP ``Status.StatusCode`` values 0–2 by name."""

_TYPES = {"stringValue": "string", "boolValue": "bool", "intValue": "int", "doubleValue": "double",
          "arrayValue": "array", "kvlistValue": "kvlist", "bytesValue": "bytes"}  # fmt: skip


def _any_value(value: dict) -> str:
    """An OTLP/JSON ``AnyValue`` as text (arrays and kvlists as JSON, bytes as their base64)."""
    if not isinstance(value, dict) or not value:
        return ""
    (kind, v), = list(value.items())[:1]
    if kind == "arrayValue":
        return json.dumps([_any_value(x) for x in v.get("values", [])])
    if kind == "kvlistValue":
        return json.dumps({kv.get("key", ""): _any_value(kv.get("value", {})) for kv in v.get("values", [])})
    if kind == "boolValue":
        return "true" if v else "false"
    return str(v)


def _attributes(values) -> list[tuple[str, str, str]]:
    """An OTLP/JSON ``KeyValue`` list as ``(key, value as text, type)`` in stored order."""
    out = []
    for kv in values or []:
        value = kv.get("value") or {}
        kind = next(iter(value), "")
        out.append((kv.get("key", ""), _any_value(value), _TYPES.get(kind, "empty")))
    return out


def _enum(values: tuple[str, ...], code) -> str:
    return values[code] if isinstance(code, int) and 0 <= code < len(values) else str(code)


def span_details(trace: dict) -> dict[str, dict]:
    """``{span_id: details}`` of every span of an OTLP/JSON trace document (the ``resourceSpans`` of
    ``GET /api/v1/traces/{id}``): ``kind``, ``status_code``, ``status_message``, ``error``,
    ``attributes``, ``resource``, ``scope`` (name, version, attributes), ``events`` (name,
    ``time_ns``, attributes), ``links`` (trace and span ID, trace state, attributes), ``trace_state``,
    ``flags`` and the ``dropped`` counts the sender reported — the fields as stored."""
    out: dict[str, dict] = {}
    for rs in trace.get("resourceSpans", ()):
        resource = rs.get("resource", {})
        for ss in rs.get("scopeSpans", ()):
            scope = ss.get("scope", {})
            for span in ss.get("spans", ()):
                status = span.get("status", {})
                dropped = {k: int(span[f"dropped{k.title()}Count"]) for k in ("attributes", "events", "links")
                           if span.get(f"dropped{k.title()}Count")}  # fmt: skip
                out[span.get("spanId", "")] = {
                    "kind": _enum(SPAN_KINDS, span.get("kind", 0)),
                    "status_code": _enum(STATUS_CODES, status.get("code", 0)),
                    "status_message": status.get("message", ""),
                    "error": status.get("code") == 2,
                    "attributes": _attributes(span.get("attributes")),
                    "resource": _attributes(resource.get("attributes")),
                    "scope": {"name": scope.get("name", ""), "version": scope.get("version", ""),
                              "attributes": _attributes(scope.get("attributes"))},  # fmt: skip
                    "events": [{"name": e.get("name", ""), "time_ns": int(e.get("timeUnixNano", 0) or 0),
                                "attributes": _attributes(e.get("attributes"))} for e in span.get("events", ())],  # fmt: skip
                    "links": [{"trace_id": link.get("traceId", ""), "span_id": link.get("spanId", ""),
                               "trace_state": link.get("traceState", ""), "attributes": _attributes(link.get("attributes"))}
                              for link in span.get("links", ())],  # fmt: skip
                    "trace_state": span.get("traceState", ""),
                    "flags": span.get("flags"),
                    "dropped": dropped,
                }
    return out


def waterfall(critical_path: dict, details: dict[str, dict]) -> Waterfall:
    """The :class:`Waterfall` of one trace from its critical-path response and its spans' details
    (:func:`span_details`)."""
    spans = critical_path["spans"]
    start = min(s["start_unix_nano"] for s in spans)
    end = max(s["start_unix_nano"] + s["duration_ns"] for s in spans)
    length = max(end - start, 1)
    sections: dict[str, list[tuple[float, float]]] = {}
    for root in critical_path["roots"]:
        for sec in root["sections"]:
            sections.setdefault(sec["span_id"], []).append(
                (100 * (sec["start_unix_nano"] - start) / length, 100 * (sec["end_unix_nano"] - sec["start_unix_nano"]) / length))
    out = []
    for s, depth in _tree_order(spans):
        found = details.get(s["span_id"], {})
        out.append(Row(
            s["span_id"], s["parent_span_id"], s["service"], s["operation"], s["start_unix_nano"],
            s["start_unix_nano"] - start, s["duration_ns"], s["self_time_ns"], s["critical_time_ns"], depth,
            100 * (s["start_unix_nano"] - start) / length, max(100 * s["duration_ns"] / length, 0.2),
            sections.get(s["span_id"], []), bool(found.get("error")), found,
        ))  # fmt: skip
    ticks = [(25.0 * k, length * k // 4) for k in range(5)]
    return Waterfall(out, start, length, ticks)
