"""The monitoring side of the store: the figures one alert evaluation needs (two queries over the
aggregate tables, whatever the number of chains), alert state (``chain_alerts``) and probe results
(``probe_results``); see ``migrations/0010_monitoring.sql``.

:class:`ClickHouseMonitorStore` implements :class:`chainotel_analyzer.store.interfaces.MonitorStore`.
Rows are plain dicts keyed by the column names of :data:`ALERT_COLUMNS` / :data:`PROBE_COLUMNS` (this
module is the one owner of those row formats). Times are Unix **nanoseconds** (``int``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from clickhouse_connect.driver.client import Client

from chainotel_analyzer.model.rows import MAX_TIMESTAMP_NS

ALERT_COLUMNS = (
    "alert_id", "alertname", "chain", "category", "severity", "state", "active_at_unix_nano", "fired_at_unix_nano",
    "resolved_at_unix_nano", "last_true_unix_nano", "updated_at_unix_nano", "value", "threshold", "trace_id",
    "service", "summary", "description", "resolved_by", "note", "cleared",
)  # fmt: skip
"""Columns of ``chain_alerts``, in table order."""

PROBE_COLUMNS = ("chain", "checked_at_unix_nano", "status", "reason", "http_status", "duration_ms", "trace_id")
"""Columns of ``probe_results``, in table order."""

TRACE_SPREAD_S = 3600
"""As :data:`chainotel_analyzer.store.queries.TRACE_SPREAD_S`: ``chain_traces`` rows are read from
this many seconds before the look-back, so a trace that arrived in several INSERTs is whole."""

_FIGURES_SQL = """
SELECT chain,
    countIf(in_window) AS traces,
    countIf(in_window AND errs > 0) AS error_traces,
    countIf(in_window AND dur_ms <= transform(chain, {ids:Array(String)}, {slas:Array(Float64)}, inf)) AS within_sla,
    quantileExactInclusiveIf(0.95)(dur_ms, in_window) AS p95_ms,
    toUnixTimestamp64Nano(max(s)) AS last_start_ns,
    argMaxIf(trace_id, dur_ms, in_window) AS slowest_trace_id,
    argMaxIf(trace_id, dur_ms, in_window AND errs > 0) AS error_trace_id
FROM (
    SELECT trace_id, max(chain) AS chain, min(start) AS s, sum(error_count) AS errs,
        (toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(s)) / 1e6 AS dur_ms,
        toUnixTimestamp64Nano(s) >= {until_ns:Int64} - transform(chain, {ids:Array(String)}, {windows_ns:Array(Int64)},
            toInt64(0)) AS in_window
    FROM chain_traces
    WHERE start >= {lo:DateTime64(9)} AND start < {hi:DateTime64(9)}
    GROUP BY trace_id
    HAVING s >= {since:DateTime64(9)} AND s < {until:DateTime64(9)} AND chain IN {ids:Array(String)}
        AND max(synthetic) = 0
        AND trace_id NOT IN (SELECT trace_id FROM probe_results WHERE checked_at_unix_nano >= {probe_since:Int64})
)
GROUP BY chain
"""

_SERVICES_SQL = """
SELECT chain, service_name AS service, sum(calls) AS span_calls, sum(errors) AS span_errors,
    quantileTDigestMerge(0.95)(duration_quantiles) / 1e6 AS p95_ms,
    sum(duration_sum_ns) / span_calls / 1e6 AS avg_ms
FROM chain_metrics
WHERE minute >= toDateTime({since_s:Int64}) AND minute <= toDateTime({until_s:Int64}) AND chain IN {ids:Array(String)}
    AND ({synthetic:Bool} OR synthetic = 0)
    AND toUnixTimestamp(minute) >= intDiv({until_s:Int64} - transform(chain, {ids:Array(String)},
        {windows_s:Array(Int64)}, toInt64(0)), 60) * 60
GROUP BY chain, service
ORDER BY chain, service
"""


def _dt(ns: int) -> datetime:
    ns = min(max(0, ns), MAX_TIMESTAMP_NS)
    return datetime.fromtimestamp(ns // 10**9, tz=timezone.utc).replace(microsecond=(ns % 10**9) // 1000)


class ClickHouseMonitorStore:
    """:class:`~chainotel_analyzer.store.interfaces.MonitorStore` over a clickhouse-connect ``client``.
    Writes are serialised by a lock (the evaluator, the probes and the API write from different threads)."""

    def __init__(self, client: Client):
        self._client = client
        self._lock = threading.Lock()

    def chain_window_figures(
        self, until_ns: int, windows_s: dict[str, float], lookback_s: float, slas_ms: dict[str, float | None]
    ) -> list[dict]:
        """One query over ``chain_traces`` for every chain of ``windows_s`` (chain → its window in
        **seconds**): per chain, over the traces that started in ``[until − window, until)``: ``traces``,
        ``error_traces``, ``within_sla`` (duration ≤ ``slas_ms[chain]``; every trace without an SLA),
        ``p95_ms``, ``slowest_trace_id``, ``error_trace_id``; and ``last_start_ns``, the latest trace
        start in ``[until − lookback_s, until)`` (``lookback_s`` ≥ every window). Chains without a
        trace in the look-back are absent. The traces of synthetic probes (marked ``synthetic`` in
        ``chain_traces``, and those named in ``probe_results``, which covers traces stored before the
        column existed) are left out: alerts on real traffic are not moved by probes (a probe has its own alert)."""
        if not windows_s:
            return []
        ids = list(windows_s)
        since_ns = until_ns - int(lookback_s * 10**9)
        spread = TRACE_SPREAD_S * 10**9
        rows = self._client.query(
            _FIGURES_SQL,
            parameters={
                "ids": ids, "windows_ns": [int(windows_s[c] * 10**9) for c in ids],
                "slas": [float(slas_ms.get(c) or "inf") for c in ids], "until_ns": until_ns,
                "since": _dt(since_ns), "until": _dt(until_ns), "lo": _dt(since_ns - spread), "hi": _dt(until_ns + spread),
                "probe_since": since_ns - spread,
            },  # fmt: skip
        ).named_results()
        return [{**r, "p95_ms": float(r["p95_ms"]) if r["traces"] else 0.0} for r in rows]

    def chain_service_figures(self, until_ns: int, windows_s: dict[str, float], include_synthetic: bool = False
                              ) -> list[dict]:
        """One query over ``chain_metrics``: per chain of ``windows_s`` and service, over the minutes of
        the chain's window up to ``until_ns``: ``chain``, ``service``, ``calls``, ``errors`` (spans),
        ``p95_ms`` (t-digest) and ``avg_ms`` of span durations; synthetic probe spans only with ``include_synthetic``."""
        if not windows_s:
            return []
        ids = list(windows_s)
        until_s = until_ns // 10**9
        rows = self._client.query(
            _SERVICES_SQL,
            parameters={"ids": ids, "windows_s": [int(windows_s[c]) for c in ids], "until_s": until_s,
                        "since_s": until_s - int(max(windows_s.values())) - 60, "synthetic": include_synthetic},  # fmt: skip
        ).named_results()
        return [{"chain": r["chain"], "service": r["service"], "calls": int(r["span_calls"]),
                 "errors": int(r["span_errors"]), "p95_ms": float(r["p95_ms"]), "avg_ms": float(r["avg_ms"])}
                for r in rows]  # fmt: skip

    def save_alerts(self, alerts: list[dict]) -> None:
        """Store new versions of ``alerts`` (dicts with every key of :data:`ALERT_COLUMNS`) in one INSERT."""
        if not alerts:
            return
        with self._lock:
            self._client.insert("chain_alerts", [[a[c] for c in ALERT_COLUMNS] for a in alerts], column_names=ALERT_COLUMNS)

    def alerts(self, states: tuple[str, ...] | None = None, chain: str | None = None, limit: int = 1000) -> list[dict]:
        """Current version of stored alerts, newest first; only ``states`` / ``chain`` when given."""
        result = self._client.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM chain_alerts FINAL"
            " WHERE ({any_state:Bool} OR state IN {states:Array(String)}) AND ({any_chain:Bool} OR chain = {chain:String})"
            " ORDER BY active_at_unix_nano DESC, alert_id LIMIT {limit:UInt32}",
            parameters={"any_state": states is None, "states": list(states or ()), "any_chain": chain is None,
                        "chain": chain or "", "limit": limit},  # fmt: skip
        )
        return [{**r, "cleared": bool(r["cleared"])} for r in result.named_results()]

    def latest_alerts(self) -> list[dict]:
        """The newest alert of each (chain, alertname), any state: what the evaluator resumes from."""
        result = self._client.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM chain_alerts FINAL"
            " ORDER BY active_at_unix_nano DESC, updated_at_unix_nano DESC LIMIT 1 BY chain, alertname"
        )
        return [{**r, "cleared": bool(r["cleared"])} for r in result.named_results()]

    def save_probe_results(self, results: list[dict]) -> None:
        """Store probe runs (dicts with every key of :data:`PROBE_COLUMNS`)."""
        if not results:
            return
        with self._lock:
            self._client.insert("probe_results", [[r[c] for c in PROBE_COLUMNS] for r in results], column_names=PROBE_COLUMNS)

    def probe_results(self, chain: str | None = None, limit: int = 20) -> list[dict]:
        """The latest ``limit`` probe runs (per chain), newest first; only ``chain`` when given."""
        return list(self._client.query(
            f"SELECT {', '.join(PROBE_COLUMNS)} FROM probe_results WHERE {{any_chain:Bool}} OR chain = {{chain:String}}"
            " ORDER BY checked_at_unix_nano DESC LIMIT {limit:UInt32} BY chain",
            parameters={"any_chain": chain is None, "chain": chain or "", "limit": limit},
        ).named_results())
