"""Critical path aggregated over many traces of one chain — the CRISP approach.

Method: ``docs/analysis-method.md``, section "Aggregation per chain (CRISP)" (the one description of the rules).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from chainotel_analyzer.analysis.critical_path import TraceCriticalPath
from chainotel_analyzer.analysis.attribution import critical_by_operation
from chainotel_analyzer.analysis.stats import percentile

K = TypeVar("K", bound=Hashable)


class CriticalStats(NamedTuple):
    """Critical-path time of one key over a set of traces; all times in **nanoseconds**."""

    total_ns: int
    per_trace_ns: float
    p50_ns: float
    p95_ns: float
    p99_ns: float
    traces: int


def aggregate(per_trace: Iterable[Mapping[K, int]]) -> tuple[int, dict[K, CriticalStats]]:
    """Combine per-trace ``{key: ns}`` maps into ``(trace count, {key: CriticalStats})``.

    Keys may be anything hashable (a service, a ``(service, operation)`` pair, a call path).
    """
    values: dict[K, list[int]] = {}
    n = 0
    for trace in per_trace:
        n += 1
        for key, ns in trace.items():
            bucket = values.get(key)
            if bucket is None:
                values[key] = [ns]
            else:
                bucket.append(ns)
    out: dict[K, CriticalStats] = {}
    for key, vals in values.items():
        vals.sort()
        total = sum(vals)
        out[key] = CriticalStats(
            total_ns=total,
            per_trace_ns=total / n,
            p50_ns=percentile(vals, 50),
            p95_ns=percentile(vals, 95),
            p99_ns=percentile(vals, 99),
            traces=len(vals),
        )
    return n, out


def critical_by_call_path(result: TraceCriticalPath) -> dict[tuple[tuple[str, str], ...], int]:
    """Critical-path time of one trace per call path (CRISP's calling context).

    A call path is the tuple of ``(service, operation)`` pairs from the span's root down to the
    span itself. Returns ``{call_path: ns}`` (**nanoseconds**), every root included.
    """
    spans = result.spans
    memo: dict[str, tuple] = {}
    out: dict[tuple, int] = {}
    for sid, ns in result.critical_time_ns.items():
        if not ns:
            continue
        path = _call_path(sid, spans, memo)
        out[path] = out.get(path, 0) + ns
    return out


def _call_path(sid: str, spans: Mapping, memo: dict[str, tuple]) -> tuple:
    """Call path of span ``sid`` (iterative walk up the parents, memoised; cycle-safe)."""
    chain = []
    seen = set()
    cur = sid
    prefix: tuple = ()
    while cur in spans and cur not in seen:
        if cur in memo:
            prefix = memo[cur]
            break
        seen.add(cur)
        chain.append(cur)
        cur = spans[cur].parent_span_id
    for node in reversed(chain):
        span = spans[node]
        prefix = prefix + ((span.service, span.operation),)
        memo[node] = prefix
    return memo.get(sid, prefix)


@dataclass(frozen=True, slots=True)
class CriticalTime:
    """Critical-path time of one key over a window's traces, in **milliseconds** (floats):
    ``total_ms`` summed over traces, ``per_trace_ms`` averaged over all of them, percentiles over the
    ``traces`` in which the key was on the critical path."""

    total_ms: float
    per_trace_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    traces: int



def _ms(s: CriticalStats) -> dict:
    """:class:`CriticalTime` fields from :class:`CriticalStats` (ns → ms)."""
    return {"total_ms": s.total_ns / 1e6, "per_trace_ms": s.per_trace_ns / 1e6, "p50_ms": s.p50_ns / 1e6,
            "p95_ms": s.p95_ns / 1e6, "p99_ms": s.p99_ns / 1e6, "traces": s.traces}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallPathTime(CriticalTime):
    """The critical time of a call path (``["service:operation", ...]`` from the root down)."""

    call_path: list[str]


@dataclass(frozen=True, slots=True)
class OperationTime(CriticalTime):
    """The critical time of one ``(service, operation)``."""

    service: str
    operation: str


@dataclass(frozen=True, slots=True)
class ChainCriticalPath:
    """The aggregated critical path of ``traces`` traces, each list sorted by ``total_ms`` descending."""

    traces: int
    by_call_path: list[CallPathTime]
    by_operation: list[OperationTime]


def _operation_times(per_trace: Iterable[Mapping[tuple[str, str], int]]) -> tuple[int, list[OperationTime]]:
    n, stats = aggregate(per_trace)
    return n, [OperationTime(service=k[0], operation=k[1], **_ms(v))
               for k, v in sorted(stats.items(), key=lambda kv: -kv[1].total_ns)]  # fmt: skip


def chain_critical_path(results: Iterable[TraceCriticalPath]) -> ChainCriticalPath:
    """The aggregated critical path of a chain over many traces (CRISP), see the module docstring.

    Per-operation figures charge each span's time to the span itself (no call-hop re-attribution:
    see :mod:`.bottlenecks` for that).
    """
    by_path = []
    by_op = []
    for r in results:
        by_path.append(critical_by_call_path(r))
        by_op.append(critical_by_operation(r, callees={}))  # each span's own operation
    n, path_stats = aggregate(by_path)
    _, by_operation = _operation_times(by_op)
    return ChainCriticalPath(
        traces=n,
        by_call_path=[CallPathTime(call_path=[f"{svc}:{op}" for svc, op in k], **_ms(v))
                      for k, v in sorted(path_stats.items(), key=lambda kv: -kv[1].total_ns)],
        by_operation=by_operation,
    )  # fmt: skip


def chain_operations(results: Iterable[TraceCriticalPath]) -> ChainCriticalPath:
    """:func:`chain_critical_path` without the call paths (``by_call_path`` empty), for a view that
    shows ``traces`` and ``by_operation`` only; those two are the same as there."""
    n, by_operation = _operation_times(critical_by_operation(r, callees={}) for r in results)
    return ChainCriticalPath(traces=n, by_call_path=[], by_operation=by_operation)
