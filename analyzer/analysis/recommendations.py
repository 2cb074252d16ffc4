"""Optimisation recommendations with evidence, from the critical paths of a chain's traces.

Method: ``docs/analysis-method.md``, section "Recommendations" (the one description of the rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chainotel_analyzer.analysis.attribution import Attribution, attribute
from chainotel_analyzer.analysis.critical_path import TraceCriticalPath

MIN_TRACE_SHARE = 0.2
N_PLUS_ONE_MIN_CALLS = 5
SLA_DOMINANCE_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One recommendation: its rule (``type``), the ``service``/``operation`` to act on (``operation``
    ``None`` for a whole service), a ``message`` saying what to do, and the ``evidence`` it rests on —
    the rule's figures (times in **ms**) and ``benefit_ms_per_trace``, the estimated saving averaged
    over all the chain's traces, by which recommendations are ordered."""

    type: str
    service: str
    operation: str | None
    message: str
    evidence: dict


def recommend(results: Sequence[TraceCriticalPath], max_duration_ms: float | None = None) -> list[Recommendation]:
    """Recommendations for one chain's traces by the module's rules, largest estimated benefit first."""
    return recommend_attributed([attribute(r) for r in results], max_duration_ms)


def recommend_attributed(traces: Sequence[Attribution], max_duration_ms: float | None = None) -> list[Recommendation]:
    """:func:`recommend` over traces already attributed (:func:`~chainotel_analyzer.analysis.attribution.attribute`),
    for a caller that ranks bottlenecks from the same attributions."""
    n = len(traces)
    if not n:
        return []
    parallel: dict[tuple, list[int]] = {}
    nplus: dict[tuple, list[tuple[int, int]]] = {}
    for a in traces:
        _trace_patterns(a.result, a.callees, parallel, nplus)
    found = _parallelize(parallel, n) + _n_plus_one(nplus, n) + _sla_breach(traces, max_duration_ms)
    found.sort(key=lambda rec: -rec.evidence["benefit_ms_per_trace"])
    return found


def _trace_patterns(r: TraceCriticalPath, callees: dict, parallel: dict[tuple, list[int]], nplus: dict[tuple, list]) -> None:
    """Add one trace's sequential remote calls on the critical path to ``parallel`` (``{(parent service,
    parent operation, callees): [saving ns per trace]}``) and its repeated calls to ``nplus``
    (``{(parent service, parent operation, service, operation): [(calls, ns in them)]}``); ``callees``
    is ``callee_of(r.spans)``."""
    spans = r.spans

    def target(span):
        callee = callees.get(span.span_id, span)
        return (callee.service, callee.operation)

    children: dict[str, list] = {}
    for s in spans.values():
        if s.parent_span_id in spans:
            children.setdefault(s.parent_span_id, []).append(s)
    on_path = _on_critical_path(r)
    seen_par, seen_np = set(), set()
    for pid, kids in children.items():
        parent = spans[pid]
        # remote calls (client spans, or children in another service) the critical path runs through
        remote = sorted(
            (k for k in kids if k.span_id in on_path and (k.service != parent.service or k.span_id in callees)),
            key=lambda k: (k.start_ns, k.span_id),
        )
        seq = [a for a, b in zip(remote, remote[1:]) if a.end_ns <= b.start_ns]
        if len(remote) >= 2 and len(seq) == len(remote) - 1:
            key = (parent.service, parent.operation, tuple(target(k) for k in remote))
            if key not in seen_par:
                seen_par.add(key)
                durs = [k.duration_ns for k in remote]
                parallel.setdefault(key, []).append(sum(durs) - max(durs))
        counts: dict[tuple, list] = {}
        for k in kids:
            counts.setdefault(target(k), []).append(k)
        for (svc, op), calls in counts.items():
            if len(calls) >= N_PLUS_ONE_MIN_CALLS and (pid, svc, op) not in seen_np:
                seen_np.add((pid, svc, op))
                nplus.setdefault((parent.service, parent.operation, svc, op), []).append(
                    (len(calls), sum(c.duration_ns for c in calls))
                )


def _parallelize(parallel: dict[tuple, list[int]], n: int) -> list[Recommendation]:
    """The ``parallelize`` rule over ``n`` traces' patterns (module docstring)."""
    out = []
    for (psvc, pop, calls), savings in parallel.items():
        if len(savings) / n < MIN_TRACE_SHARE:
            continue
        saving = sum(savings) / len(savings) / 1e6
        names = [f"{s}:{o}" for s, o in calls]
        out.append(Recommendation(
            "parallelize", psvc, pop,
            f"{psvc}:{pop} calls {', '.join(names)} one after another on the critical path; "
            f"run them concurrently if they do not depend on each other",
            {"traces": len(savings), "trace_share": len(savings) / n, "calls": names,
             "estimated_saving_ms_per_trace": saving, "benefit_ms_per_trace": saving * len(savings) / n},
        ))  # fmt: skip
    return out


def _n_plus_one(nplus: dict[tuple, list[tuple[int, int]]], n: int) -> list[Recommendation]:
    """The ``n_plus_one`` rule over ``n`` traces' patterns (module docstring)."""
    out = []
    for (psvc, pop, svc, op), hits in nplus.items():
        per_trace_ms = sum(h[1] for h in hits) / len(hits) / 1e6
        calls = sum(h[0] for h in hits) / len(hits)
        out.append(Recommendation(
            "n_plus_one", svc, op,
            f"{psvc}:{pop} calls {svc}:{op} {calls:.1f} times per trace; batch them into one call",
            {"traces": len(hits), "trace_share": len(hits) / n, "caller": f"{psvc}:{pop}",
             "calls_per_trace": calls, "time_in_calls_ms_per_trace": per_trace_ms,
             "benefit_ms_per_trace": per_trace_ms * (1 - 1 / calls) * len(hits) / n},
        ))  # fmt: skip
    return out


def _sla_breach(traces: Sequence[Attribution], max_duration_ms: float | None) -> list[Recommendation]:
    """The ``sla_breach`` rule (module docstring); nothing without an SLA or a breaching trace."""
    if max_duration_ms is None:
        return []
    slow = [a for a in traces if _duration_ms(a.result) > max_duration_ms]
    if not slow:
        return []
    totals: dict[str, int] = {}
    for a in slow:
        for (svc, _), ns in a.by_operation.items():
            totals[svc] = totals.get(svc, 0) + ns
    total = sum(totals.values())
    svc, ns = max(totals.items(), key=lambda kv: (kv[1], kv[0]))
    share = ns / total if total else 0.0
    if share < SLA_DOMINANCE_SHARE:
        return []
    return [Recommendation(
        "sla_breach", svc, None,
        f"{svc} holds {share:.0%} of the critical path of the {len(slow)} traces "
        f"slower than the SLA ({max_duration_ms:g} ms): start there",
        {"breaching_traces": len(slow), "traces": len(traces), "critical_share": share,
         "critical_ms_per_breaching_trace": ns / len(slow) / 1e6, "benefit_ms_per_trace": ns / len(traces) / 1e6},
    )]  # fmt: skip


def _duration_ms(r: TraceCriticalPath) -> float:
    if not r.roots:
        return 0.0
    root = r.spans[r.roots[0].root_span_id]
    return root.duration_ns / 1e6


def _on_critical_path(r: TraceCriticalPath) -> set[str]:
    """IDs of the spans the critical path runs through: spans with critical time and their ancestors."""
    spans = r.spans
    marked: set[str] = set()
    for sid, ns in r.critical_time_ns.items():
        while ns and sid in spans and sid not in marked:
            marked.add(sid)
            sid = spans[sid].parent_span_id
    return marked
