"""The monitoring queries on a chDB store: per-chain windows in one query, probe traces left out."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.client import open_store
from chainotel_analyzer.store.migrations import migrate
from chainotel_analyzer.store.monitoring import ClickHouseMonitorStore

S = 10**9


def test_window_figures_per_chain_windows_and_without_probe_traces(tmp_path):
    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}"))
    try:
        migrate(store.client)
        now = time.time_ns()
        # (trace, chain, start seconds ago, duration ms, error)
        traces = [("a" * 32, "B3", 10, 800, False), ("b" * 32, "B3", 20, 100, True), ("c" * 32, "B3", 200, 900, False),
                  ("d" * 32, "B4", 200, 50, False), ("e" * 32, "B3", 30, 2000, False)]  # fmt: skip
        cols = {k: [] for k in ("trace_id", "request_id", "parent_span_id", "service_name", "operation", "event_type",
                                "timestamp", "duration_ns", "chain")}  # fmt: skip
        for tid, chain, ago, ms, err in traces:
            for i, service in enumerate(("gw", "pay")):
                cols["trace_id"].append(tid)
                cols["request_id"].append(f"{i + 1:016x}")
                cols["parent_span_id"].append("" if i == 0 else f"{1:016x}")
                cols["service_name"].append(service)
                cols["operation"].append("op")
                cols["event_type"].append("error" if err and service == "pay" else "complete")
                cols["timestamp"].append(datetime.fromtimestamp((now - ago * S) / 1e9, tz=timezone.utc))
                cols["duration_ns"].append(ms * 10**6)
                cols["chain"].append(chain)
        store.client.insert("chain_history", list(cols.values()), column_names=list(cols), column_oriented=True)
        monitor = ClickHouseMonitorStore(store.client)
        monitor.save_probe_results([{"chain": "B3", "checked_at_unix_nano": now - 31 * S, "status": "up", "reason": "",
                                     "http_status": 200, "duration_ms": 2000.0, "trace_id": "e" * 32}])  # fmt: skip
        rows = {r["chain"]: r for r in monitor.chain_window_figures(now, {"B3": 60, "B4": 300}, 300, {"B3": 500, "B4": None})}
        b3, b4 = rows["B3"], rows["B4"]
        # B3's 60 s window: traces a and b (c is older, e is the probe's)
        assert (b3["traces"], b3["error_traces"], b3["within_sla"]) == (2, 1, 1)
        assert b3["slowest_trace_id"] == "a" * 32 and b3["error_trace_id"] == "b" * 32
        assert b3["last_start_ns"] // S == (now - 10 * S) // S
        assert (b4["traces"], b4["within_sla"]) == (1, 1)
        services = monitor.chain_service_figures(now, {"B3": 60, "B4": 300})
        pay = next(r for r in services if r["chain"] == "B3" and r["service"] == "pay")
        assert pay["errors"] == 1 and pay["calls"] >= 2
    finally:
        store.close()
