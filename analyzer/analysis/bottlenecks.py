"""Bottleneck ranking: which service / operation holds a chain back, and what got slower.

Method: ``docs/analysis-method.md``, section "Bottleneck ranking" (the one description of the rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chainotel_analyzer.analysis.aggregate import aggregate
from chainotel_analyzer.analysis.attribution import critical_by_operation
from chainotel_analyzer.analysis.critical_path import TraceCriticalPath

GROUP_BY = ("service", "operation")


@dataclass(frozen=True, slots=True)
class BottleneckEntry:
    """One ranked service (``operation`` is ``None``) or ``(service, operation)``; ms floats."""

    service: str
    operation: str | None
    critical_ms_per_trace: float
    share: float
    p95_ms: float
    delta_ms_per_trace: float | None
    score: float


@dataclass(frozen=True, slots=True)
class BottleneckRanking:
    """Ranking over ``traces`` traces (``baseline_traces`` in the baseline, ``None`` if none)."""

    traces: int
    baseline_traces: int | None
    ranking: list[BottleneckEntry]


def contributions(results: Iterable[TraceCriticalPath], group_by: str = "service") -> list[dict]:
    """Per-trace critical time by key: ``[{key: ns}, ...]`` (**nanoseconds**), one per trace.

    ``group_by``: ``"service"`` (key = service name) or ``"operation"`` (key =
    ``(service, operation)``). Raises ``ValueError`` for any other value.
    """
    return group_contributions((critical_by_operation(r) for r in results), group_by)


def group_contributions(by_operation: Iterable[dict[tuple[str, str], int]], group_by: str = "service") -> list[dict]:
    """:func:`contributions` from each trace's :func:`~chainotel_analyzer.analysis.attribution.critical_by_operation`
    map (``{(service, operation): ns}``), for a caller that has them already (e.g. from
    :func:`~chainotel_analyzer.analysis.attribution.attribute`): the maps themselves for ``"operation"``,
    summed per service for ``"service"``. Raises ``ValueError`` for any other ``group_by``."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {GROUP_BY}, got {group_by!r}")
    if group_by == "operation":
        return list(by_operation)
    out = []
    for ops in by_operation:
        by_service: dict[str, int] = {}
        for (service, _), ns in ops.items():
            by_service[service] = by_service.get(service, 0) + ns
        out.append(by_service)
    return out


def rank_bottlenecks(
    window: Sequence[dict],
    baseline: Sequence[dict] | None = None,
    group_by: str = "service",
    limit: int | None = None,
) -> BottleneckRanking:
    """Rank keys of per-trace contribution maps (from :func:`contributions`) by ``score``.

    ``window``/``baseline``: ``[{key: ns}, ...]`` one map per trace, keys as ``group_by`` says.
    Returns a :class:`BottleneckRanking`, highest score first (ties: larger
    ``critical_ms_per_trace``, then name); ``limit`` keeps the first entries only.
    An empty window gives an empty ranking.
    """
    n, stats = aggregate(window)
    base_n, base_stats = aggregate(baseline) if baseline is not None else (None, {})
    total = sum(s.total_ns for s in stats.values()) / n if n else 0.0
    keys = set(stats) | (set(base_stats) if baseline is not None and n else set())
    entries = []
    for key in keys:
        s = stats.get(key)
        cur = s.per_trace_ns / 1e6 if s else 0.0
        delta = None
        score = cur
        if baseline is not None:
            b = base_stats.get(key)
            delta = cur - (b.per_trace_ns / 1e6 if b and base_n else 0.0)
            score = delta * delta / cur if delta > 0 else delta
        service, operation = (key, None) if group_by == "service" else key
        entries.append(
            BottleneckEntry(
                service=service,
                operation=operation,
                critical_ms_per_trace=cur,
                share=(s.per_trace_ns / total) if s and total else 0.0,
                p95_ms=s.p95_ns / 1e6 if s else 0.0,
                delta_ms_per_trace=delta,
                score=score,
            )
        )
    entries.sort(key=lambda e: (-e.score, -e.critical_ms_per_trace, e.service, e.operation or ""))
    if limit is not None:
        entries = entries[:limit]
    return BottleneckRanking(traces=n, baseline_traces=base_n, ranking=entries)
