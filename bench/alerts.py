"""Cost of one alert evaluation: 30 chains over 1 000 000 stored spans (chDB).

``python -m bench.alerts`` — a fresh chDB store with the analyzer's migrations and the 30 catalog chains,
1 000 000 generated spans (``bench.analysis_store``'s data: 20 000 traces × 50 spans over one hour),
then times :meth:`AlertEvaluator.evaluate` at the end of that hour, in-process (store + SQL + rules +
one INSERT of the changed alerts):

- with the default rules (5-minute windows), and
- with every chain's window set to the whole hour (every stored span is in a window).

An evaluation runs a fixed number of queries — the registry, one over ``chain_traces``, one over
``chain_metrics`` — whatever the number of chains. Baselines measured in the same run: the full scan
``SELECT sum(duration_ns) FROM chain_history`` (as ``bench.analysis_store``), and the design this
replaces: one query per chain over ``chain_history`` (trace durations, errors and SLA of that chain's
window), 30 queries per evaluation.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time

from bench.analysis_store import HOUR_NS, SPANS_PER_TRACE, T0_NS, TRACES, generate_rows, timed

PER_CHAIN_SQL = """
SELECT count() AS traces, countIf(errs > 0) AS error_traces, countIf(dur_ms <= {sla:Float64}) AS within_sla,
    quantileExactInclusive(0.95)(dur_ms) AS p95_ms
FROM (SELECT trace_id, countIf(event_type = 'error') AS errs,
        (max(toUnixTimestamp64Nano(timestamp) + duration_ns) - min(toUnixTimestamp64Nano(timestamp))) / 1e6 AS dur_ms
      FROM chain_history WHERE chain = {chain:String} AND timestamp >= {since:DateTime64(9)}
      AND timestamp < {until:DateTime64(9)} GROUP BY trace_id)
"""


class WindowRegistry:
    """The registry with every chain's alert window replaced (for the whole-hour case)."""

    def __init__(self, registry, window: str):
        self.registry, self.window = registry, window

    def list(self):
        return [{**row, "definition": {**row["definition"], "alerts": {"window": self.window, "for": "0s"}}}
                for row in self.registry.list()]  # fmt: skip


def main() -> int:
    from datetime import datetime, timezone

    from chainotel_analyzer.monitoring.evaluator import AlertEvaluator
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.catalog import seed_definitions
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate
    from chainotel_analyzer.store.monitoring import ClickHouseMonitorStore
    from chainotel_analyzer.store.queries import ClickHouseChainRegistry

    now_ns = T0_NS + HOUR_NS
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp}/db", data_dir=tmp))
        try:
            migrate(store.client)
            seed_definitions(store.client)
            registry = ClickHouseChainRegistry(store.client)
            defs = registry.list()
            chains = [d["id"] for d in defs]
            cols = generate_rows(random.Random(7), chains)
            names = list(cols)
            for lo in range(0, len(cols["trace_id"]), 100_000):
                store.client.insert("chain_history", [cols[k][lo:lo + 100_000] for k in names],
                                    column_names=names, column_oriented=True)  # fmt: skip
            stored = store.client.command("SELECT count() FROM chain_history")
            monitor = ClickHouseMonitorStore(store.client)
            base = timed(lambda: store.client.command("SELECT sum(duration_ns) FROM chain_history"))
            default = AlertEvaluator(registry, monitor, None, 30)
            t_default = timed(lambda: default.evaluate(now_ns))
            hour = AlertEvaluator(WindowRegistry(registry, "1h"), monitor, None, 30)
            t_hour = timed(lambda: hour.evaluate(now_ns))
            firing = sum(a.state == "firing" for a in hour.current_alerts())
            slas = {d["id"]: d["definition"]["max_duration_ms"] for d in defs}
            since = datetime.fromtimestamp((now_ns - HOUR_NS) / 1e9, tz=timezone.utc)
            until = datetime.fromtimestamp(now_ns / 1e9, tz=timezone.utc)

            def per_chain():
                for chain in chains:
                    store.client.query(PER_CHAIN_SQL, parameters={"chain": chain, "sla": slas[chain], "since": since,
                                                                  "until": until})  # fmt: skip

            t_naive = timed(per_chain, repeat=2)
        finally:
            store.close()
    print(f"stored spans: {stored:,} in {TRACES:,} traces × {SPANS_PER_TRACE} spans, {len(chains)} chains; "
          f"whole-hour evaluation: {firing} alerts firing\n")
    print("| measurement | time | vs full scan | vs per-chain queries |")
    print("|---|---|---|---|")
    print(f"| full scan sum(duration_ns) (baseline) | {base * 1000:.0f} ms | 1.0 | – |")
    print(f"| per-chain queries over chain_history, 1 h windows, 30 queries (baseline) | {t_naive * 1000:.0f} ms "
          f"| {t_naive / base:.1f}× | 1.0 |")
    print(f"| evaluation, default rules (5 min windows), 3 queries + 1 INSERT | {t_default * 1000:.0f} ms "
          f"| {t_default / base:.1f}× | {t_default / t_naive:.2f}× |")
    print(f"| evaluation, 1 h windows (every span in a window) | {t_hour * 1000:.0f} ms | {t_hour / base:.1f}× "
          f"| {t_hour / t_naive:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
