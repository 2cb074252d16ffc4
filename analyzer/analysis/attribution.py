"""Who a piece of critical path belongs to: span → (service, operation), with call hops.

Method: ``docs/analysis-method.md``, section "Call hops: who a piece of critical path is charged to" (the one description of the rules).
"""

from __future__ import annotations

from typing import NamedTuple

from chainotel_analyzer.analysis.critical_path import TraceCriticalPath
from chainotel_analyzer.model.span import CLIENT, CONSUMER, PRODUCER, SERVER, UNSPECIFIED, Span

_CALLER_KINDS = frozenset((CLIENT, PRODUCER, UNSPECIFIED))


def callee_of(spans: dict[str, Span]) -> dict[str, Span]:
    """For every client-side span of a call hop, the callee span it is charged to.

    ``spans``: ``{span_id: Span}`` of one trace. Returns ``{client span_id: callee Span}`` —
    the remote child (another service; not a ``CONSUMER``) with the longest duration (ties: the
    smaller span ID), or a synthetic span for ``peer.service`` on a childless ``CLIENT`` span.
    """
    best: dict[str, Span] = {}
    length: dict[str, int] = {}
    peers = []
    get = spans.get
    for span in spans.values():  # Span fields by index: 0 id, 1 parent, 2 service, 4 start, 5 end, 6 kind
        kind = span[6]
        if kind == CLIENT and span[10]:
            peers.append(span)
        parent = get(span[1])
        if parent is None or parent[2] == span[2] or kind == CONSUMER or parent[6] not in _CALLER_KINDS:
            continue
        pid = parent[0]
        dur = span[5] - span[4] if span[5] > span[4] else 0
        cur = best.get(pid)
        if cur is None or dur > length[pid] or (dur == length[pid] and span[0] < cur[0]):
            best[pid] = span
            length[pid] = dur
    for span in peers:
        if span.span_id not in best:
            best[span.span_id] = span._replace(service=span.peer_service, kind=SERVER)
    return best


def critical_by_operation(result: TraceCriticalPath, callees: dict[str, Span] | None = None) -> dict[tuple[str, str], int]:
    """Critical-path time of one trace per ``(service, operation)``, call hops charged to the callee.

    Sums the sections of every root (main and orphan). Returns ``{(service, operation): ns}``
    (**nanoseconds**); the values add up to the total length of all roots' critical paths.
    ``callees``: :func:`callee_of` of ``result.spans`` when the caller has it already (computed here
    otherwise); ``{}`` charges every span's time to its own operation (no call-hop re-attribution).
    """
    spans = result.spans
    if callees is None:
        callees = callee_of(spans)
    out: dict[tuple[str, str], int] = {}
    for sid, ns in result.critical_time_ns.items():
        if not ns:
            continue
        span = callees.get(sid) or spans[sid]
        key = (span.service, span.operation)
        out[key] = out.get(key, 0) + ns
    return out


class Attribution(NamedTuple):
    """One trace's critical path with who its time is charged to — the per-trace work the bottleneck
    ranking (:func:`chainotel_analyzer.analysis.bottlenecks.group_contributions`) and the
    recommendations (:func:`chainotel_analyzer.analysis.recommendations.recommend_attributed`) share:
    ``result``, ``callees`` (:func:`callee_of` of its spans) and ``by_operation``
    (:func:`critical_by_operation`, **ns**)."""

    result: TraceCriticalPath
    callees: dict[str, Span]
    by_operation: dict[tuple[str, str], int]


def attribute(result: TraceCriticalPath) -> Attribution:
    """:class:`Attribution` of ``result``: its call hops found once, for every step that needs them."""
    callees = callee_of(result.spans)
    return Attribution(result, callees, critical_by_operation(result, callees))
