"""``/metrics``: the analyzer's figures in the Prometheus text format (prometheus-client), cached.

Per chain (labels ``chain``, ``category``), over the last :data:`METRICS_WINDOW_S` seconds of traces —
the definitions of :mod:`chainotel_analyzer.analysis.health`:
``chainotel_chain_health_score`` (0–100), ``chainotel_chain_sla_compliance_ratio``,
``chainotel_chain_error_ratio``, ``chainotel_chain_duration_p95_seconds``,
``chainotel_chain_throughput_per_minute``. Chains without traces in the window have no series (as a
Prometheus target without samples), so ``absent()``/``no data`` rules work.

Alerts: ``chainotel_alerts{alertname,chain,state}`` = 1 for each pending or firing alert (as Prometheus'
own ``ALERTS`` series). Probes: ``chainotel_probe_success{chain}`` (1 up, 0 down) and
``chainotel_probe_duration_seconds{chain}`` of the latest run. The analyzer itself:
``chainotel_ingest_spans_total{result}`` — every span of a decoded OTLP request once, by outcome:
``stored`` (stored by this analyzer), ``deduplicated`` (its request was stored before: a retry, not
stored again), ``rejected`` (invalid, dropped and reported in ``partial_success``; the sender does not
resend it) and ``refused`` (valid but not stored: its request was answered 503, which the sender
retries, or 413); requests refused before they are decoded (503 while the queue is full, 400, 413 on
the body size) have no span count and are not counted —, ``chainotel_write_queue_spans``,
``chainotel_insert_duration_seconds`` (a histogram observed after every span INSERT, Prometheus'
default buckets 5 ms – 10 s),
``chainotel_alert_evaluations_total``, ``chainotel_alert_evaluation_failures_total``,
``chainotel_alert_evaluation_duration_seconds``, ``chainotel_alert_notifications_total{destination,result}``.

The page is rendered at most once per ``cache_s`` (one query over ``chain_traces``); scrapes in between
get the cached bytes, so scraping is cheap whatever its frequency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from chainotel_analyzer.analysis.alerts import OPEN_STATES
from chainotel_analyzer.analysis.health import chain_health
from chainotel_analyzer.monitoring.evaluator import AlertEvaluator
from chainotel_analyzer.monitoring.notifier import Notifier, redacted
from chainotel_analyzer.store.interfaces import ChainRegistry, SpanSink, TraceReader

METRICS_WINDOW_S = 300
"""Window (s) of the per-chain gauges: the last 5 minutes, as the health overview's default."""


class ChainotelCollector:
    """A prometheus-client collector over the analyzer's parts (all optional but ``reader``)."""

    def __init__(self, reader: TraceReader, registry: ChainRegistry, sink: SpanSink | None = None,
                 evaluator: AlertEvaluator | None = None, notifier: Notifier | None = None,
                 probes: Callable[[], dict[str, dict]] | None = None):  # fmt: skip
        self.reader, self.registry, self.sink = reader, registry, sink
        self.evaluator, self.notifier, self.probes = evaluator, notifier, probes
        # not registered anywhere: collect() yields it with the rest
        self.insert_duration = Histogram("chainotel_insert_duration_seconds", "Duration of the writer's span INSERTs.",
                                         registry=None)  # fmt: skip
        if sink is not None:
            sink.add_insert_observer(self.insert_duration.observe)

    def collect(self):
        yield from self._chains()
        yield from self._alerts()
        yield from self._probes()
        yield from self._self()

    def _chains(self):
        now_ns = time.time_ns()
        defs = {row["id"]: row["definition"] for row in self.registry.list()}
        slas = {c: d.get("max_duration_ms") for c, d in defs.items()}
        rows = self.reader.chain_figures(now_ns - METRICS_WINDOW_S * 10**9, now_ns, slas)
        names = [("health_score", "Chain health score 0-100 (analysis.health) over the last 5 minutes of traces."),
                 ("sla_compliance_ratio", "Share of the chain's traces within its max_duration_ms."),
                 ("error_ratio", "Share of the chain's traces with an error span."),
                 ("duration_p95_seconds", "p95 of the chain's trace durations, in seconds."),
                 ("throughput_per_minute", "Traces of the chain per minute.")]  # fmt: skip
        fams = {n: GaugeMetricFamily(f"chainotel_chain_{n}", h, labels=["chain", "category"]) for n, h in names}
        for r in rows:
            chain = r["chain"]
            if chain not in defs or not r["traces"]:
                continue
            h = chain_health(chain, r["traces"], r["error_traces"], r["root_error_traces"], r["within_sla"],
                             r["p50_ms"], r["p95_ms"], r["p99_ms"], METRICS_WINDOW_S, slas.get(chain))  # fmt: skip
            labels = [chain, defs[chain].get("category", "")]
            fams["health_score"].add_metric(labels, h.score)
            fams["sla_compliance_ratio"].add_metric(labels, h.sla_compliance)
            fams["error_ratio"].add_metric(labels, h.error_rate)
            fams["duration_p95_seconds"].add_metric(labels, h.p95_ms / 1000)
            fams["throughput_per_minute"].add_metric(labels, h.throughput_per_min)
        yield from fams.values()

    def _alerts(self):
        fam = GaugeMetricFamily("chainotel_alerts", "1 for each pending or firing chain alert (as Prometheus' ALERTS).",
                                labels=["alertname", "chain", "state"])  # fmt: skip
        if self.evaluator is None:
            yield fam
            return
        for a in self.evaluator.current_alerts():
            if a.state in OPEN_STATES:
                fam.add_metric([a.alertname, a.chain, a.state], 1)
        yield fam
        yield CounterMetricFamily("chainotel_alert_evaluations", "Alert evaluations run.", self.evaluator.evaluations)
        yield CounterMetricFamily("chainotel_alert_evaluation_failures", "Alert evaluations that failed.",
                                  self.evaluator.failures)  # fmt: skip
        yield GaugeMetricFamily("chainotel_alert_evaluation_duration_seconds", "Duration of the last alert evaluation.",
                                self.evaluator.snapshot.seconds)  # fmt: skip
        if self.notifier is not None:
            sent = CounterMetricFamily("chainotel_alert_notifications", "Alerts delivered (sent) or deliveries failed.",
                                       labels=["destination", "result"])  # fmt: skip
            for d in self.notifier.destinations:
                sent.add_metric([redacted(d.url), "sent"], d.sent)
                sent.add_metric([redacted(d.url), "failed"], d.failed)
            yield sent

    def _probes(self):
        ok = GaugeMetricFamily("chainotel_probe_success", "1 when the chain's latest synthetic probe was up.", labels=["chain"])
        dur = GaugeMetricFamily("chainotel_probe_duration_seconds", "Answer time of the chain's latest probe.",
                                labels=["chain"])  # fmt: skip
        for chain, r in sorted((self.probes() if self.probes else {}).items()):
            ok.add_metric([chain], 1 if r["status"] == "up" else 0)
            dur.add_metric([chain], r["duration_ms"] / 1000)
        yield ok
        yield dur

    def _self(self):
        if self.sink is None:
            return
        spans = CounterMetricFamily("chainotel_ingest_spans", "Spans of decoded OTLP requests, by outcome.",
                                    labels=["result"])  # fmt: skip
        sink = self.sink
        for result, count in (("stored", sink.spans_written), ("deduplicated", sink.spans_deduplicated),
                              ("rejected", sink.spans_rejected), ("refused", sink.spans_refused)):  # fmt: skip
            spans.add_metric([result], count)
        yield spans
        yield GaugeMetricFamily("chainotel_write_queue_spans", "Spans waiting to be written.", sink.queue_depth)
        yield from self.insert_duration.collect()


class MetricsPage:
    """The rendered ``/metrics`` page, refreshed at most every ``cache_s`` seconds (thread-safe)."""

    def __init__(self, collector: ChainotelCollector, cache_s: float):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.cache_s = cache_s
        self._page = b""
        self._at = float("-inf")
        self._lock = threading.Lock()
        self.renders = 0

    def render(self) -> bytes:
        """The page (Prometheus text format 0.0.4)."""
        with self._lock:
            if time.monotonic() - self._at >= self.cache_s:
                self._page = generate_latest(self.registry)
                self._at = time.monotonic()
                self.renders += 1
            return self._page
