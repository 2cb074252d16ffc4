"""Service impact: the chains a service takes part in and its share of their critical path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chainotel_analyzer.analysis.aggregate import aggregate


def service_impact(service: str, per_chain: Mapping[str, Sequence[Mapping[str, int]]]) -> list[dict]:
    """Impact of ``service`` on each chain.

    ``per_chain``: ``{chain: [{service: critical ns}, ...]}`` — per-trace critical time by service
    (:func:`chainotel_analyzer.analysis.bottlenecks.contributions` with ``group_by="service"``, so call hops
    into the service count as its own). Returns, for chains where the service appears,
    ``{"chain", "traces", "traces_with_service", "critical_ms_per_trace", "share", "p95_ms"}``
    (**ms**; ``share`` of the chain's mean critical path, 0–1), largest share first.
    """
    out = []
    for chain, traces in per_chain.items():
        n, stats = aggregate(traces)
        s = stats.get(service)
        if not n or s is None:
            continue
        total = sum(x.total_ns for x in stats.values())
        out.append({
            "chain": chain, "traces": n, "traces_with_service": s.traces,
            "critical_ms_per_trace": s.per_trace_ns / 1e6, "share": s.total_ns / total if total else 0.0,
            "p95_ms": s.p95_ns / 1e6,
        })  # fmt: skip
    out.sort(key=lambda d: (-d["share"], d["chain"]))
    return out
