"""The trace page's waterfall: spans in tree order (each parent followed by its children by start
time, as Jaeger UI lists them), each bar placed in percent of the trace's time span, with the
critical-path sections drawn on the bars (Jaeger UI's critical path overlay).

Input: the critical-path response (``GET /api/v1/traces/{id}/critical-path``: ``spans`` with self
and critical time, ``roots`` with their ``sections``) and the stored rows of the trace
(``GET /api/v1/chains/events/{id}``: attributes, resource, status, events, links).
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


def _json_list(value) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else []
        except ValueError:
            return []
    return list(value or [])


def _any_value(value: dict) -> str:
    """An OTLP/JSON ``AnyValue`` as text (arrays and kvlists as JSON)."""
    if not isinstance(value, dict) or not value:
        return ""
    (kind, v), = list(value.items())[:1]
    if kind == "arrayValue":
        return json.dumps([_any_value(x) for x in v.get("values", [])])
    if kind == "kvlistValue":
        return json.dumps({kv.get("key", ""): _any_value(kv.get("value", {})) for kv in v.get("values", [])})
    return str(v)


def _attributes(values) -> list[tuple[str, str]]:
    """OTLP/JSON ``KeyValue`` list (or a plain mapping) as sorted ``(key, text)`` pairs."""
    if isinstance(values, dict):
        return sorted((str(k), str(v)) for k, v in values.items())
    return sorted((kv.get("key", ""), _any_value(kv.get("value", {}))) for kv in values or [])


def _details(row: dict | None) -> dict:
    """What the span details panel shows, from one stored row (``{}`` when the row is missing)."""
    if not row:
        return {}
    events = [{"name": e.get("name", ""), "time_ns": int(e.get("timeUnixNano", 0) or 0),
               "attributes": _attributes(e.get("attributes"))} for e in _json_list(row.get("span_events"))]  # fmt: skip
    if not events and row.get("error_context"):
        events = [{"name": "exception", "time_ns": None, "attributes": [("error_context", row["error_context"])]}]
    links = [{"trace_id": link.get("traceId", ""), "span_id": link.get("spanId", ""),
              "trace_state": link.get("traceState", ""), "attributes": _attributes(link.get("attributes"))}
             for link in _json_list(row.get("links"))]  # fmt: skip
    return {
        "kind": row.get("span_kind", ""),
        "status_code": row.get("status_code", ""),
        "status_message": row.get("status_message", ""),
        "attributes": sorted((row.get("span_attributes") or {}).items()),
        "resource": sorted((row.get("resource_attributes") or {}).items()),
        "events": events,
        "links": links,
        "trace_state": row.get("trace_state", ""),
        "scope": row.get("scope_name", ""),
    }


def waterfall(critical_path: dict, rows: Sequence[dict]) -> Waterfall:
    """The :class:`Waterfall` of one trace from its critical-path response and stored rows."""
    spans = critical_path["spans"]
    start = min(s["start_unix_nano"] for s in spans)
    end = max(s["start_unix_nano"] + s["duration_ns"] for s in spans)
    length = max(end - start, 1)
    by_row = {r["span_id"]: r for r in rows}
    sections: dict[str, list[tuple[float, float]]] = {}
    for root in critical_path["roots"]:
        for sec in root["sections"]:
            sections.setdefault(sec["span_id"], []).append(
                (100 * (sec["start_unix_nano"] - start) / length, 100 * (sec["end_unix_nano"] - sec["start_unix_nano"]) / length))
    out = []
    for s, depth in _tree_order(spans):
        row = by_row.get(s["span_id"])
        out.append(Row(
            s["span_id"], s["parent_span_id"], s["service"], s["operation"], s["start_unix_nano"],
            s["start_unix_nano"] - start, s["duration_ns"], s["self_time_ns"], s["critical_time_ns"], depth,
            100 * (s["start_unix_nano"] - start) / length, max(100 * s["duration_ns"] / length, 0.2),
            sections.get(s["span_id"], []), bool(row and row.get("event_type") == "error"), _details(row),
        ))  # fmt: skip
    ticks = [(25.0 * k, length * k // 4) for k in range(5)]
    return Waterfall(out, start, length, ticks)
