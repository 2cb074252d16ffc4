"""Bottleneck ranking with baseline vs the injected faults of the Online Boutique data.

``python -m bench.analysis_accuracy`` — for every latency fault listed with trace files in
``<data>/<day>/ground_truth.csv`` (data found as the tests find it, :mod:`tests.data`:
``$CHAINOTEL_TEST_DATA``, else ``<repo>/../shared/data/onlineboutique``):

- fault window: traces whose root starts in ``[inject, inject + 180 s)`` from the minute files
  that overlap it (the README's "files overlapping [inject, inject+180 s]");
- baseline window: traces starting in ``[inject - 600 s, inject)`` from that day's minute files
  that are not another fault's window; fewer than 200 such traces → the fault-free
  ``baseline/`` minute instead;
- ranking: :func:`chainotel_analyzer.analysis.bottlenecks.rank_bottlenecks` by service with that baseline;
  the rank of the injected service gives top-1 / top-3 accuracy.

The OTLP JSON files are decoded by the analyzer's own ingest decoder
(``chainotel_analyzer.ingest.otlp_json.parse_request`` + ``chainotel_analyzer.ingest.otlp.decode_request``) and
turned into spans exactly as stored rows are (:func:`chainotel_analyzer.model.rows.span_from_history`).
Prints a Markdown table, the accuracy with other window choices (whole minute files as the fault
window; the ``baseline/`` minute as every fault's baseline), plus for comparison the accuracy of the plain ``Δ`` score and of the
naive attribution that charges every span's critical time to its own service.
"""

from __future__ import annotations

import csv
import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

from chainotel_analyzer.analysis.bottlenecks import contributions, rank_bottlenecks
from chainotel_analyzer.analysis.critical_path import analyze_trace
from chainotel_analyzer.model.rows import span_from_history
from chainotel_analyzer.model.span import Span, group_by_trace
from tests.data import ENV as DATA_ENV
from tests.data import onlineboutique_dir

DATA = onlineboutique_dir() or Path("<no onlineboutique data>")
FAULT_S = 180
BASELINE_S = 600
MIN_BASELINE_TRACES = 200


@dataclass(frozen=True)
class Fault:
    """One injected latency fault: ``inject_s`` Unix seconds, its minute files (paths)."""

    day: str
    inject_s: int
    service: str
    fault_type: str
    files: tuple[Path, ...]


def load_spans(path: Path) -> list[Span]:
    """Spans of one OTLP JSON (``.json`` or ``.json.gz``) file, via the analyzer's decoder."""
    import pyarrow as pa

    from chainotel_analyzer.ingest.otlp import decode_request
    from chainotel_analyzer.ingest.otlp_json import parse_request

    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    table = decode_request(parse_request(raw)).table
    if table is None:
        return []
    names = ("trace_id", "span_id", "parent_span_id", "service_name", "operation", "span_kind",
             "event_type", "timestamp", "duration_ns", "chain", "peer_service")  # fmt: skip
    cols = [
        table.column(n).cast(pa.int64()).to_pylist() if n == "timestamp" else table.column(n).to_pylist()
        for n in names
    ]
    return [span_from_history(*row) for row in zip(*cols)]


def latency_faults(data: Path = DATA) -> list[Fault]:
    """Every latency fault of ``ground_truth.csv`` that has minute files, in file order."""
    out = []
    for gt in sorted(data.glob("*/ground_truth.csv")):
        with gt.open() as fh:
            for row in csv.DictReader(fh):
                listed = row["files_overlapping_inject_to_plus_180s"].split()
                if row["latency_fault"] != "True" or not listed:
                    continue
                files = tuple(gt.parent / Path(f).name.replace("_trace.csv.gz", "_otlp.json.gz") for f in listed)
                out.append(Fault(gt.parent.name, int(row["inject_timestamp"]), row["service"], row["fault_type"], files))
    return out


class TraceCache:
    """Loads minute files once: ``traces(files, since_s, until_s)`` → ``[[Span, ...], ...]``
    for the traces whose earliest span starts in ``[since_s, until_s)`` (Unix seconds)."""

    def __init__(self) -> None:
        self._files: dict[Path, dict[str, list[Span]]] = {}

    def traces(self, files, since_s: float | None = None, until_s: float | None = None) -> list[list[Span]]:
        merged: dict[str, list[Span]] = {}
        for f in files:
            if f not in self._files:
                self._files[f] = group_by_trace(load_spans(f))
            for tid, spans in self._files[f].items():
                merged.setdefault(tid, []).extend(spans)
        lo = None if since_s is None else since_s * 10**9
        hi = None if until_s is None else until_s * 10**9
        out = []
        for spans in merged.values():
            start = min(s.start_ns for s in spans)
            if (lo is None or start >= lo) and (hi is None or start < hi):
                out.append(spans)
        return out


def windows(fault: Fault, faults: list[Fault], cache: TraceCache, data: Path = DATA):
    """``(fault traces, baseline traces, baseline source)`` for one fault (see module doc)."""
    current = cache.traces(fault.files, fault.inject_s, fault.inject_s + FAULT_S)
    others = {f for other in faults if other != fault for f in other.files}
    day_files = [f for f in sorted((data / fault.day).glob("*_otlp.json.gz")) if f not in others]
    base = cache.traces(day_files, fault.inject_s - BASELINE_S, fault.inject_s)
    source = "before injection"
    if len(base) < MIN_BASELINE_TRACES:
        base = cache.traces(sorted((data / "baseline").glob("*_otlp.json.gz")))
        source = "baseline/"
    return current, base, source


def _by_own_service(traces) -> list[dict]:
    """Per-trace critical time by the span's own service — no call-hop attribution (the naive
    method the README's network_delay trap is about), for comparison only."""
    out = []
    for t in traces:
        r = analyze_trace(t)
        per: dict[str, int] = {}
        for sid, ns in r.critical_time_ns.items():
            if ns:
                svc = r.spans[sid].service
                per[svc] = per.get(svc, 0) + ns
        out.append(per)
    return out


def rank_of(fault: Fault, current, base, plain_delta: bool = False, hops: bool = True) -> tuple[int, list[str]]:
    """Rank (1-based; 0 if absent) of the injected service and the ranked service names.

    ``plain_delta``: rank by ``Δ`` instead of the product's score; ``hops=False``: charge each
    span's critical time to its own service (no call-hop attribution)."""
    if hops:
        cur = contributions(analyze_trace(t) for t in current)
        bas = contributions(analyze_trace(t) for t in base)
    else:
        cur, bas = _by_own_service(current), _by_own_service(base)
    ranking = rank_bottlenecks(cur, bas).ranking
    if plain_delta:
        ranking = sorted(ranking, key=lambda e: -(e.delta_ms_per_trace or 0.0))
    names = [e.service for e in ranking]
    return (names.index(fault.service) + 1 if fault.service in names else 0), names


def main() -> int:
    if not DATA.is_dir():
        print(f"no Online Boutique data; set {DATA_ENV} to its folder", file=sys.stderr)
        return 1
    faults = latency_faults()
    cache = TraceCache()
    print("| day | injected service | fault | traces (fault / baseline) | baseline | rank | top 3 |")
    print("|---|---|---|---|---|---|---|")
    top1 = top3 = plain1 = plain3 = naive1 = naive3 = 0
    for fault in faults:
        current, base, source = windows(fault, faults, cache)
        rank, names = rank_of(fault, current, base)
        prank, _ = rank_of(fault, current, base, plain_delta=True)
        nrank, _ = rank_of(fault, current, base, hops=False)
        naive1 += nrank == 1
        naive3 += 1 <= nrank <= 3
        top1 += rank == 1
        top3 += 1 <= rank <= 3
        plain1 += prank == 1
        plain3 += 1 <= prank <= 3
        print(f"| {fault.day} | {fault.service} | {fault.fault_type} | {len(current)} / {len(base)} | {source} "
              f"| {rank or '-'} | {', '.join(names[:3])} |")
    n = len(faults)
    whole1 = whole3 = glob1 = glob3 = 0
    global_base = cache.traces(sorted((DATA / "baseline").glob("*_otlp.json.gz")))
    for fault in faults:  # robustness: other window choices
        current, base, _ = windows(fault, faults, cache)
        rank, _ = rank_of(fault, cache.traces(fault.files), base)
        whole1 += rank == 1
        whole3 += 1 <= rank <= 3
        rank, _ = rank_of(fault, current, global_base)
        glob1 += rank == 1
        glob3 += 1 <= rank <= 3
    print(f"\nscore Δ·Δ/current: top-1 {top1}/{n} ({top1 / n:.0%}), top-3 {top3}/{n} ({top3 / n:.0%})")
    print(f"plain Δ:          top-1 {plain1}/{n} ({plain1 / n:.0%}), top-3 {plain3}/{n} ({plain3 / n:.0%})")
    print(f"no hop attribution (each span's own service): top-1 {naive1}/{n} ({naive1 / n:.0%}), "
          f"top-3 {naive3}/{n} ({naive3 / n:.0%})")
    print(f"robustness — whole minute files as fault window: top-1 {whole1}/{n}, top-3 {whole3}/{n}; "
          f"baseline/ minute as every fault's baseline: top-1 {glob1}/{n}, top-3 {glob3}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
