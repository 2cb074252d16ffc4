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
        cols = _spans(traces, now)
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


def _spans(traces: list[tuple], now: int, span_id: str = "span_id") -> dict[str, list]:
    """chain_history columns of two-span traces (gw → pay), each ``(trace_id, chain, started seconds before
    now, duration ms, error in pay[, synthetic])``; a synthetic trace's spans carry chain.synthetic=true as
    the distro writes it. ``span_id``: the span ID column's name (``request_id`` before migration 0022)."""
    cols = {k: [] for k in ("trace_id", span_id, "parent_span_id", "service_name", "operation", "event_type",
                            "timestamp", "duration_ns", "chain", "span_attributes")}  # fmt: skip
    for tid, chain, ago, ms, err, *synthetic in traces:
        for i, service in enumerate(("gw", "pay")):
            cols["trace_id"].append(tid)
            cols[span_id].append(f"{i + 1:016x}")
            cols["parent_span_id"].append("" if i == 0 else f"{1:016x}")
            cols["service_name"].append(service)
            cols["operation"].append("op")
            cols["event_type"].append("error" if err and service == "pay" else "complete")
            cols["timestamp"].append(datetime.fromtimestamp((now - ago * S) / 1e9, tz=timezone.utc))
            cols["duration_ns"].append(ms * 10**6)
            cols["chain"].append(chain)
            cols["span_attributes"].append({"chain.synthetic": "true"} if synthetic and synthetic[0] else {})
    return cols


def test_upgrade_keeps_old_rows_readable_and_new_synthetic_traces_are_left_out(tmp_path, monkeypatch):
    from chainotel_analyzer.store import migrations
    from chainotel_analyzer.store.queries import ClickHouseTraceReader

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}"))
    try:
        every = migrations.load_migrations()
        # a store as it was before the synthetic column: migrations below 0020, and a probe trace in it
        monkeypatch.setattr(migrations, "load_migrations", lambda layout=migrations.SINGLE_NODE: [m for m in every if m.version < 20])
        migrate(store.client)
        now = time.time_ns()
        old = _spans([("a" * 32, "B3", 10, 100, False, False), ("b" * 32, "B3", 10, 100, False, True)], now, "request_id")
        store.client.insert("chain_history", list(old.values()), column_names=list(old), column_oriented=True)
        monkeypatch.undo()
        assert 20 in migrate(store.client)
        reader = ClickHouseTraceReader(store.client)
        since = now - 300 * S  # whole minutes of chain_metrics: the spans' minute (10 s ago) starts after it
        # rows stored before the upgrade read as real traffic (their synthetic column is 0)
        assert [r["traces"] for r in reader.chain_figures(since, now)] == [2]
        new = _spans([(t * 32, "B3", 10, 100, False, t != "c") for t in "cde"], now)
        store.client.insert("chain_history", list(new.values()), column_names=list(new), column_oriented=True)
        # after it: the new probe traces are left out by default, counted with include_synthetic
        assert [r["traces"] for r in reader.chain_figures(since, now)] == [3]
        assert [r["traces"] for r in reader.chain_figures(since, now, include_synthetic=True)] == [5]
        total, traces = reader.window_traces(since, now, "B3")
        assert total == 3 and sorted(traces) == ["a" * 32, "b" * 32, "c" * 32]
        assert reader.window_traces(since, now, "B3", include_synthetic=True)[0] == 5
        assert sum(b["traces"] for b in reader.chain_buckets(since, now, 60)) == 3
        assert sum(b["traces"] for b in reader.chain_series("B3", since, now, 60, include_synthetic=True)) == 5
        # chain_metrics: spans per service of real traffic (a, b, c) or all five traces
        assert {o["calls"] for o in reader.service_operations("pay", since, now)} == {3}
        assert {o["calls"] for o in reader.service_operations("pay", since, now, include_synthetic=True)} == {5}
        assert sum(b["calls"] for b in reader.service_buckets(since, now, 60)) == 6
        monitor = ClickHouseMonitorStore(store.client)
        assert [r["traces"] for r in monitor.chain_window_figures(now, {"B3": 60}, 60, {"B3": 500})] == [3]
        pay = [r["calls"] for r in monitor.chain_service_figures(now, {"B3": 60}) if r["service"] == "pay"]
        assert pay == [3]
        assert [r["calls"] for r in monitor.chain_service_figures(now, {"B3": 60}, True) if r["service"] == "pay"] == [5]
    finally:
        store.close()
