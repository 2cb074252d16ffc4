"""Analysis queries over the real store (chDB): bottleneck ranking over 1 000 000 stored spans
(goal ≤ 1 s) and the health overview of 30 chains (goal ≤ 200 ms).

``python -m bench.analysis_store`` — opens a fresh chDB store in a temporary directory (the
analyzer's own migrations and catalog seeding: the 30 catalog chains A1–E7), inserts 1 000 000
generated spans (20 000 traces × 50 spans over one hour, spread over the 30 chains, 12 services)
with clickhouse-connect, then times the endpoints' handlers in-process (store + SQL + analysis,
no HTTP):

- ``GET /api/v1/analytics/bottlenecks`` over the whole hour, and over its second half with the
  first half as baseline (at most ``DEFAULT_MAX_TRACES`` traces per window are analysed, a
  uniform sample by trace-ID hash);
- ``GET /api/v1/analytics/chains/health/overview`` over the hour.

Baseline measured in the same run: a full scan ``SELECT sum(duration_ns) FROM chain_history`` —
the cheapest query that reads every stored span — so ratios are comparable across machines.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import datetime, timezone

HOUR_NS = 3600 * 10**9
T0_NS = 1_700_000_000 * 10**9
TRACES = 20_000
SPANS_PER_TRACE = 50


def generate_rows(rng: random.Random, chains: list[str]):
    """Column lists for chain_history (the columns the analysis reads, others default)."""
    services = [f"svc{i}" for i in range(12)]
    cols = {k: [] for k in ("instance_id", "trace_id", "span_id", "parent_span_id", "service_name", "operation",
                            "span_kind", "event_type", "timestamp", "duration_ns", "chain", "status_code")}  # fmt: skip
    for t in range(TRACES):
        tid = f"{rng.getrandbits(128):032x}"
        chain = chains[t % len(chains)]
        start = T0_NS + rng.randrange(HOUR_NS)
        spans = [(f"{t:08x}{0:08x}", "", "gateway", start, start + rng.randrange(20, 400) * 10**6)]
        for i in range(1, SPANS_PER_TRACE):
            p = spans[rng.randrange(max(0, i - 6), i)]
            dur = p[4] - p[3]
            s = p[3] + rng.randrange(max(1, dur // 2))
            spans.append((f"{t:08x}{i:08x}", p[0], rng.choice(services), s, s + rng.randrange(max(1, dur // 2))))
        for sid, pid, svc, s, e in spans:
            err = rng.random() < 0.01
            cols["instance_id"].append(tid)
            cols["trace_id"].append(tid)
            cols["span_id"].append(sid)
            cols["parent_span_id"].append(pid)
            cols["service_name"].append(svc)
            cols["operation"].append(f"{svc}/op{rng.randrange(5)}")
            cols["span_kind"].append("unspecified")
            cols["event_type"].append("error" if err else "complete")
            cols["timestamp"].append(datetime.fromtimestamp(s / 1e9, tz=timezone.utc))
            cols["duration_ns"].append(e - s)
            cols["chain"].append(chain)
            cols["status_code"].append("error" if err else "unset")
    return cols


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    from chainotel_analyzer.api import analytics
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.catalog import seed_definitions
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate
    from chainotel_analyzer.store.queries import ClickHouseChainRegistry, ClickHouseTraceReader

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp}/db", data_dir=tmp))
        try:
            migrate(store.client)
            seed_definitions(store.client)
            reader, registry = ClickHouseTraceReader(store.client), ClickHouseChainRegistry(store.client)
            chains = [d["id"] for d in registry.list()]
            cols = generate_rows(random.Random(7), chains)
            names = list(cols)
            n = len(cols["trace_id"])
            t0 = time.perf_counter()
            for lo in range(0, n, 100_000):
                store.client.insert("chain_history", [cols[k][lo:lo + 100_000] for k in names],
                                    column_names=names, column_oriented=True)  # fmt: skip
            load_s = time.perf_counter() - t0
            stored = store.client.command("SELECT count() FROM chain_history")
            base = timed(lambda: store.client.command("SELECT sum(duration_ns) FROM chain_history"))
            since, until = str(T0_NS // 10**9), str((T0_NS + HOUR_NS) // 10**9)
            mid = str((T0_NS + HOUR_NS // 2) // 10**9)
            def ranking(**times):
                q = analytics.RankingQuery(**times, limit=20, max_traces=analytics.DEFAULT_MAX_TRACES)
                return analytics.bottlenecks(chain=None, q=q, reader=reader)

            bott = timed(lambda: ranking(since=mid, until=until, baseline_since=since, baseline_until=mid), repeat=2)
            single = timed(lambda: ranking(since=since, until=until), repeat=2)
            health = timed(lambda: analytics.health_overview(since=since, until=until, reader=reader, registry=registry))
            overview = analytics.health_overview(since=since, until=until, reader=reader, registry=registry)
        finally:
            store.close()
    print(f"stored spans: {stored:,} in {TRACES:,} traces, {len(chains)} chains (insert {load_s:.1f} s)\n")
    print("| query | time | vs full-scan baseline | goal |")
    print("|---|---|---|---|")
    print(f"| full scan sum(duration_ns) (baseline) | {base * 1000:.0f} ms | 1.0 | – |")
    print(f"| bottlenecks, one window over 1 M spans | {single * 1000:.0f} ms | {single / base:.1f}× "
          f"| ≤ 1000 ms: {'met' if single <= 1 else 'missed'} |")
    print(f"| bottlenecks, window + baseline over 1 M spans | {bott * 1000:.0f} ms | {bott / base:.1f}× "
          f"| ≤ 1000 ms: {'met' if bott <= 1 else 'missed'} |")
    print(f"| health overview, {len(overview['chains'])} chains | {health * 1000:.0f} ms | {health / base:.1f}× "
          f"| ≤ 200 ms: {'met' if health <= 0.2 else 'missed'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
