"""Topology drift of a chain: its observed service graph against its definition (pure, no I/O).

Over a window's traces of one chain: services seen but not in ``expected_services`` (with the number
of traces they appear in), expected services seen in no trace, and caller → callee edges (a parent and
a child span in different services, as in the service graph) seen but not in the definition's
``edges``. A definition without edges declares no call graph, so its edges are not compared
(``edges_checked`` is false).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chainotel_analyzer.analysis.discovery import trace_edges
from chainotel_analyzer.model.span import Span


@dataclass
class Drift:
    """Drift of one chain over ``traces`` traces.

    ``unexpected_services``: ``[{"service", "traces"}]``; ``missing_services``: ``[{"service"}]``;
    ``unexpected_edges``: ``[{"caller", "callee", "traces"}]`` (most traces first, then by name);
    ``observed_services``: ``[{"service", "traces"}]`` of every service seen; ``edges_checked``:
    whether the definition declares edges.
    """

    traces: int
    unexpected_services: list[dict]
    missing_services: list[dict]
    unexpected_edges: list[dict]
    observed_services: list[dict]
    edges_checked: bool

    @property
    def drifted(self) -> bool:
        """Whether anything differs from the definition."""
        return bool(self.unexpected_services or self.missing_services or self.unexpected_edges)


def _by_count(counter: Counter) -> list:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def topology_drift(
    traces: Iterable[Sequence[Span]], expected_services: Sequence[str], edges: Iterable[tuple[str, str]]
) -> Drift:
    """The :class:`Drift` of ``traces`` (each a list of spans) against a definition's
    ``expected_services`` and ``edges`` (``(caller, callee)`` pairs)."""
    services: Counter[str] = Counter()
    seen_edges: Counter[tuple[str, str]] = Counter()
    n = 0
    for spans in traces:
        if not spans:
            continue
        n += 1
        services.update({s.service for s in spans})
        seen_edges.update(trace_edges(spans))
    expected = set(expected_services)
    declared = set(edges)
    return Drift(
        traces=n,
        unexpected_services=[{"service": s, "traces": c} for s, c in _by_count(services) if s not in expected],
        missing_services=[{"service": s} for s in expected_services if s not in services] if n else [],
        unexpected_edges=[{"caller": a, "callee": b, "traces": c} for (a, b), c in _by_count(seen_edges)
                          if declared and (a, b) not in declared],  # fmt: skip
        observed_services=[{"service": s, "traces": c} for s, c in _by_count(services)],
        edges_checked=bool(declared),
    )
