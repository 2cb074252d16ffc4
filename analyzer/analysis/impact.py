"""Service impact: the chains a service takes part in and its share of their critical path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chainotel_analyzer.analysis.aggregate import aggregate


@dataclass(frozen=True, slots=True)
class ChainImpact:
    """A service's part in one chain over ``traces`` traces: in how many it appears, its critical
    time per trace and p95 (**ms**), and its ``share`` (0–1) of the chain's mean critical path."""

    chain: str
    traces: int
    traces_with_service: int
    critical_ms_per_trace: float
    share: float
    p95_ms: float


def service_impact(service: str, per_chain: Mapping[str, Sequence[Mapping[str, int]]]) -> list[ChainImpact]:
    """Impact of ``service`` on each chain.

    ``per_chain``: ``{chain: [{service: critical ns}, ...]}`` — per-trace critical time by service
    (:func:`chainotel_analyzer.analysis.bottlenecks.contributions` with ``group_by="service"``, so call hops
    into the service count as its own). Returns a :class:`ChainImpact` for each chain where the
    service appears, largest share first.
    """
    out = []
    for chain, traces in per_chain.items():
        n, stats = aggregate(traces)
        s = stats.get(service)
        if not n or s is None:
            continue
        total = sum(x.total_ns for x in stats.values())
        out.append(ChainImpact(chain, n, s.traces, s.per_trace_ns / 1e6, s.total_ns / total if total else 0.0,
                               s.p95_ns / 1e6))  # fmt: skip
    out.sort(key=lambda d: (-d.share, d.chain))
    return out
