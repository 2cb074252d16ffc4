"""Chain discovery from traffic: traces that carry no chain, grouped by entry point, become proposed
chain definitions; tagged chains whose traces fall into clearly different shapes are reported.

Pure functions over plain data (no I/O). Input: traces as lists of
:class:`~chainotel_analyzer.model.span.Span`, plus the HTTP attributes of their spans (``span_id →
{attribute: value}``, only the keys of :data:`HTTP_ATTRIBUTES`), as the store hands them out.
The method is described in ``docs/discovery.md``.

Entry point of a trace (:func:`entry_of`): its root span — the earliest-starting span whose parent
is not in the trace — keyed by ``(service, HTTP method, http.route)``, the span name standing in for
a missing route. When that root is a gateway whose route is a catch-all (:func:`is_catch_all`:
``/*``, ``/{path:path}``, ``/{rest...}``), the key is that of the first server span below it in
another service (the gateway still counts among the chain's services).

Per group (:func:`propose`): the share of traces each service appears in; ``expected_services`` are
those in at least ``min_share`` of them; ``edges`` the caller → callee pairs (parent and child span in
different services) seen in at least ``min_share`` of the traces, between expected services, without
cycles; ``max_duration_ms`` the p99 of trace durations rounded up (:func:`chainotel.discovery.rules.round_up_ms`); a category
guess with its reason (:func:`guess_category`); and a confidence (:func:`confidence`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from chainotel.discovery import rules

from chainotel_analyzer.analysis.stats import percentile
from chainotel_analyzer.model.span import CONSUMER, SERVER, Span

HTTP_ATTRIBUTES = ("http.route", "http.request.method", "http.method", "url.scheme", "http.scheme")
"""The span attributes discovery reads (new and old HTTP semantic-convention names)."""

DEFAULT_MIN_SHARE = 0.5
"""A service (or edge) seen in at least this share of a group's traces is expected."""

DEFAULT_MIN_TRACES = 5
"""Groups with fewer traces are not proposed."""

FULL_COUNT_TRACES = 10
"""Trace count at which the count factor of the confidence is 0.5 (``n / (n + 10)``)."""

FULL_OBSERVATION_S = 600
"""A group observed over this many seconds (first to last trace) gets the full time factor."""

SHAPE_MIN_SHARE = 0.2
"""A tagged chain has *different shapes* when two or more service sets each hold this share of its traces."""

SHAPE_MIN_TRACES = 5
"""…and each of them at least this many traces."""

_CATCH_ALL = re.compile(r"(^|/)(\*|\{[^}/]*:path\}|\{[^}/]*\.\.\.\}|\{\*[^}/]*\}|\*\*)$")
"""The last segment of a route that takes any rest of the path: ``*``, Starlette's ``{x:path}``,
``{x...}`` (Go 1.22 mux), ``{*x}`` (matchit/axum), ``**``."""

AttributesBySpan = Mapping[str, Mapping[str, str]]
"""``span_id → {attribute: value}`` with the keys of :data:`HTTP_ATTRIBUTES` that a span has."""


@dataclass(frozen=True)
class EntryPoint:
    """How a trace enters: ``service``, ``method`` (HTTP, ``""`` if none), ``route`` (``http.route``,
    ``""`` if none), ``span_name`` of the entry span, ``websocket`` (the entry's scheme is ws/wss), and
    ``gateway`` (``"service route"`` of a catch-all gateway passed through, else ``""``)."""

    service: str
    method: str
    route: str
    span_name: str
    websocket: bool = False
    gateway: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """``(service, method, route or span name)``: what traces are grouped by."""
        return self.service, self.method, self.route or self.span_name


@dataclass
class Proposal:
    """One proposed chain.

    ``definition``: a chain definition as the catalog writes it (``id``, ``name``, ``category``,
    ``description``, ``match``, ``expected_services``, ``edges`` as ``"a -> b"``, ``max_duration_ms``);
    ``confidence`` 0–1; ``evidence``: what it rests on (see :func:`propose`); ``services``:
    ``[{"service", "share"}]`` by share descending; ``traces``: traces in the group.
    """

    definition: dict
    confidence: float
    evidence: dict
    services: list[dict]
    traces: int
    entry: EntryPoint = field(repr=False, default=None)  # type: ignore[assignment]


def is_catch_all(route: str) -> bool:
    """Whether ``route`` ends in a segment that matches any rest of a path.

    >>> [is_catch_all(r) for r in ("/*", "/{path:path}", "/api/{rest...}", "/api/v1/orders", "/{id}")]
    [True, True, True, False, False]
    """
    return bool(route) and _CATCH_ALL.search(route) is not None


def _method(attrs: Mapping[str, str]) -> str:
    return str(attrs.get("http.request.method") or attrs.get("http.method") or "").upper()


def _entry(span: Span, attrs: Mapping[str, str]) -> EntryPoint:
    scheme = str(attrs.get("url.scheme") or attrs.get("http.scheme") or "").lower()
    return EntryPoint(span.service, _method(attrs), str(attrs.get("http.route") or ""), span.operation,
                      websocket=scheme in ("ws", "wss"))  # fmt: skip


def roots_of(spans: Sequence[Span]) -> list[Span]:
    """Spans whose parent is not in the trace, earliest first (then by span ID)."""
    ids = {s.span_id for s in spans}
    return sorted((s for s in spans if s.parent_span_id not in ids), key=lambda s: (s.start_ns, s.span_id))


def entry_of(spans: Sequence[Span], attributes: AttributesBySpan) -> EntryPoint | None:
    """The :class:`EntryPoint` of one trace (see the module doc), ``None`` for an empty trace."""
    roots = roots_of(spans)
    if not roots:
        return None
    root = roots[0]
    entry = _entry(root, attributes.get(root.span_id, {}))
    if not is_catch_all(entry.route):
        return entry
    below = _first_server_below(spans, root)
    if below is None:
        return entry
    inner = _entry(below, attributes.get(below.span_id, {}))
    return EntryPoint(inner.service, inner.method, inner.route, inner.span_name, inner.websocket or entry.websocket,
                      gateway=f"{root.service} {entry.route}")  # fmt: skip


def _first_server_below(spans: Sequence[Span], root: Span) -> Span | None:
    """The earliest server (or consumer) span under ``root`` in another service, breadth first."""
    children: dict[str, list[Span]] = {}
    for s in spans:
        children.setdefault(s.parent_span_id, []).append(s)
    level = children.get(root.span_id, [])
    while level:
        hits = [s for s in level if s.kind in (SERVER, CONSUMER) and s.service != root.service]
        if hits:
            return min(hits, key=lambda s: (s.start_ns, s.span_id))
        level = [c for s in sorted(level, key=lambda s: s.start_ns) for c in children.get(s.span_id, [])]
    return None


def trace_edges(spans: Sequence[Span]) -> set[tuple[str, str]]:
    """``(caller, callee)`` service pairs of one trace: a parent and a child span in different services."""
    by_id = {s.span_id: s for s in spans}
    out = set()
    for s in spans:
        parent = by_id.get(s.parent_span_id)
        if parent is not None and parent.service != s.service:
            out.add((parent.service, s.service))
    return out


def trace_duration_ms(spans: Sequence[Span]) -> float:
    """Last span end minus first span start, in **ms**."""
    return max(0, max(s.end_ns for s in spans) - min(s.start_ns for s in spans)) / 1e6


def guess_category(entry: EntryPoint) -> tuple[str, str]:
    """``(category, reason)`` for a group entering at ``entry``
    (:func:`chainotel.discovery.rules.guess_category` of its route, span name and scheme).

    >>> guess_category(EntryPoint("api", "POST", "/v1/inference", "POST /v1/inference"))[0]
    'ai_ml_processing'
    """
    return rules.guess_category(entry.route, entry.span_name, entry.websocket)


def confidence(traces: int, modal_share: float, observed_s: float) -> float:
    """Confidence 0–1 that a group is one stable flow: ``n/(n+10) · (0.5 + 0.5·stability) ·
    (0.75 + 0.25·min(1, observed_s/600))``, with ``n`` traces, stability the share of traces whose
    service set is the most common one, and ``observed_s`` seconds from the first to the last trace.
    More traces, one shape and a longer observation raise it; rounded to 3 decimals."""
    count = traces / (traces + FULL_COUNT_TRACES)
    stability = 0.5 + 0.5 * modal_share
    time_factor = 0.75 + 0.25 * min(1.0, max(0.0, observed_s) / FULL_OBSERVATION_S)
    return round(count * stability * time_factor, 3)


def group_untagged(
    traces: Mapping[str, Sequence[Span]], attributes: AttributesBySpan
) -> dict[tuple[str, str, str], list[tuple[EntryPoint, Sequence[Span]]]]:
    """The traces without any ``chain`` on their spans, grouped by :attr:`EntryPoint.key`."""
    groups: dict[tuple[str, str, str], list[tuple[EntryPoint, Sequence[Span]]]] = {}
    for spans in traces.values():
        if not spans or any(s.chain for s in spans):
            continue
        entry = entry_of(spans, attributes)
        if entry is not None:
            groups.setdefault(entry.key, []).append((entry, spans))
    return groups


def propose(
    traces: Mapping[str, Sequence[Span]],
    attributes: AttributesBySpan,
    taken_ids: Iterable[str] = (),
    min_traces: int = DEFAULT_MIN_TRACES,
    min_share: float = DEFAULT_MIN_SHARE,
) -> list[Proposal]:
    """Proposed chains for the untagged traces among ``traces`` (``{trace_id: spans}``), most traces
    first, each group of at least ``min_traces`` traces; IDs are the lowest free ones per category
    given ``taken_ids`` (the registry's).

    ``evidence``: ``traces``, ``first_seen_unix_nano``, ``last_seen_unix_nano``, ``observed_s``,
    ``service_sets`` (distinct service sets), ``modal_service_set_share``, ``p99_ms``,
    ``category_reason``, ``entry`` (``service``, ``method``, ``route``, ``span_name``, ``gateway``),
    ``edges`` (``[{"caller", "callee", "share"}]``, every edge seen) and ``example_trace_ids`` (≤ 3).
    """
    ids = rules.free_ids(taken_ids)
    groups = group_untagged(traces, attributes)
    ordered = sorted(groups.values(), key=lambda g: (-len(g), g[0][0].key))
    out = []
    for members in ordered:
        if len(members) < min_traces:
            continue
        out.append(_proposal(members, ids, min_share))
    return out


def _proposal(members: list[tuple[EntryPoint, Sequence[Span]]], ids: dict, min_share: float) -> Proposal:
    entry = members[0][0]
    n = len(members)
    service_counts: Counter[str] = Counter()
    edge_counts: Counter[tuple[str, str]] = Counter()
    shapes: Counter[frozenset[str]] = Counter()
    durations = []
    starts = []
    for _, spans in members:
        services = frozenset(s.service for s in spans)
        service_counts.update(services)
        shapes[services] += 1
        edge_counts.update(trace_edges(spans))
        durations.append(trace_duration_ms(spans))
        starts.append(min(s.start_ns for s in spans))
    services = sorted(service_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    expected = [s for s, c in services if c / n >= min_share]
    if entry.service not in expected:
        expected.insert(0, entry.service)
    in_expected = set(expected)
    edge_list = sorted(edge_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    edges = rules.acyclic(e for e, c in edge_list if c / n >= min_share and set(e) <= in_expected)
    category, reason = guess_category(entry)
    p99 = percentile(durations, 99)
    modal = shapes.most_common(1)[0][1] / n
    observed_s = (max(starts) - min(starts)) / 1e9
    what = f"{entry.method} {entry.route or entry.span_name}".strip()
    match: dict[str, str] = {"service": entry.service}
    if entry.route:
        match["route"] = entry.route
        if entry.method:
            match["method"] = entry.method
    else:
        match["span_name"] = entry.span_name
    definition = {
        "id": next(ids[rules.letter(category)]),
        "name": f"{what} on {entry.service}",
        "category": category,
        "description": f"Proposed by chainotel discovery from {n} traces entering at {what} on {entry.service}"
        + (f" (behind gateway {entry.gateway})" if entry.gateway else "") + "; review before use.",
        "match": [match],
        "expected_services": expected,
        "edges": [f"{a} -> {b}" for a, b in edges],
        "max_duration_ms": rules.round_up_ms(p99),
    }
    evidence = {
        "traces": n,
        "first_seen_unix_nano": min(starts),
        "last_seen_unix_nano": max(starts),
        "observed_s": round(observed_s, 3),
        "service_sets": len(shapes),
        "modal_service_set_share": round(modal, 4),
        "p99_ms": round(p99, 3),
        "category_reason": reason,
        "entry": {"service": entry.service, "method": entry.method, "route": entry.route,
                  "span_name": entry.span_name, "gateway": entry.gateway},  # fmt: skip
        "edges": [{"caller": a, "callee": b, "share": round(c / n, 4)} for (a, b), c in edge_list],
        "example_trace_ids": sorted(spans[0].trace_id for _, spans in members)[:3],
    }
    return Proposal(
        definition=definition,
        confidence=confidence(n, modal, observed_s),
        evidence=evidence,
        services=[{"service": s, "share": round(c / n, 4)} for s, c in services],
        traces=n,
        entry=entry,
    )


@dataclass
class ChainShapes:
    """A tagged ``chain`` whose ``traces`` fall into clearly different service sets: ``shapes`` is
    ``[{"services": [...], "traces", "share"}]``, most traces first (see :data:`SHAPE_MIN_SHARE`)."""

    chain: str
    traces: int
    shapes: list[dict]


def chain_shapes(traces: Mapping[str, Sequence[Span]]) -> list[ChainShapes]:
    """Tagged chains among ``traces`` with two or more service sets each holding at least
    :data:`SHAPE_MIN_SHARE` of the chain's traces and :data:`SHAPE_MIN_TRACES` traces, by chain."""
    by_chain: dict[str, Counter[frozenset[str]]] = {}
    for spans in traces.values():
        chain = max((s.chain for s in spans), default="")
        if chain:
            by_chain.setdefault(chain, Counter())[frozenset(s.service for s in spans)] += 1
    out = []
    for chain, shapes in sorted(by_chain.items()):
        n = sum(shapes.values())
        big = [(sv, c) for sv, c in shapes.most_common() if c / n >= SHAPE_MIN_SHARE and c >= SHAPE_MIN_TRACES]
        if len(big) >= 2:
            out.append(ChainShapes(chain, n, [{"services": sorted(sv), "traces": c, "share": round(c / n, 4)}
                                              for sv, c in big]))  # fmt: skip
    return out
