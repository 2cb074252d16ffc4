"""The monitoring parts of one analyzer process, started and stopped together (:class:`Monitoring`)."""

from __future__ import annotations

from dataclasses import dataclass

from chainotel_analyzer.monitoring.evaluator import AlertEvaluator
from chainotel_analyzer.monitoring.metrics import ChainotelCollector, MetricsPage
from chainotel_analyzer.monitoring.notifier import Links, Notifier
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import ChainRegistry, MonitorStore, SpanSink, TraceReader


@dataclass
class Monitoring:
    """``evaluator`` (background alert evaluation), ``notifier`` (Alertmanager/webhooks), ``metrics``
    (the cached ``/metrics`` page), ``store`` (alert and probe state), ``prober`` (synthetic probes, or None)."""

    settings: AnalyzerSettings
    evaluator: AlertEvaluator
    notifier: Notifier
    metrics: MetricsPage
    store: MonitorStore
    prober: object | None = None

    def start(self) -> None:
        self.notifier.start()
        if self.prober is not None:
            self.prober.start()
        self.evaluator.start()

    def stop(self) -> None:
        """Stop evaluator, prober and notifier threads; idempotent."""
        self.evaluator.stop()
        if self.prober is not None:
            self.prober.stop()
        self.notifier.stop()

    def console_base(self, fallback: str) -> str:
        """The base URL for console links: the ``console_url`` setting, else ``fallback``."""
        return (self.settings.console_url or fallback).rstrip("/")


def build_monitoring(settings: AnalyzerSettings, reader: TraceReader, registry: ChainRegistry, store: MonitorStore,
                     sink: SpanSink | None = None, prober=None) -> Monitoring:  # fmt: skip
    """Wire the monitoring parts from ``settings`` (not started)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    console = (settings.console_url or f"http://{host}:{settings.http_port}").rstrip("/")
    links = Links(console, settings.jaeger_ui_url or "")
    valid_for_s = 4 * max(settings.alert_resend_interval_s, settings.alert_eval_interval_s)
    notifier = Notifier(settings.alertmanager_urls, settings.alert_webhook_urls, links, valid_for_s,
                        settings.alert_resend_interval_s, settings.alert_notify_timeout_s,
                        settings.alert_notify_max_retries)  # fmt: skip
    status = prober.status if prober is not None else None
    evaluator = AlertEvaluator(registry, store, notifier, settings.alert_eval_interval_s, settings.alert_default_rules,
                               status, reader if settings.alert_anomalies else None)  # fmt: skip
    latest = prober.latest if prober is not None else None
    collector = ChainotelCollector(reader, registry, sink, evaluator, notifier, latest)
    metrics = MetricsPage(collector, min(settings.alert_eval_interval_s, 15.0))
    return Monitoring(settings, evaluator, notifier, metrics, store, prober)
