"""Monitoring: background alert evaluation (:mod:`.evaluator`), delivery to Alertmanager and webhooks
(:mod:`.notifier`), Prometheus metrics (:mod:`.metrics`) and synthetic probes (:mod:`.probes`).

Rules and the alert lifecycle are pure functions in :mod:`chainotel_analyzer.analysis.alerts`; the
state lives in ClickHouse (:mod:`chainotel_analyzer.store.monitoring`). See docs/monitoring.md.
"""
