"""The background alert evaluator: every ``alert_eval_interval_s`` it evaluates every chain's rules.

One evaluation (:meth:`AlertEvaluator.evaluate`):

1. the chain definitions from the registry (one query), each with its ``alerts`` rules (or the
   documented defaults, :data:`chainotel.catalog.models.DEFAULT_ALERT_RULES`);
2. the figures of every chain over its own window — **two queries in all**, whatever the number of
   chains: one over ``chain_traces`` (traces, errors, SLA, p95, last trace, example traces) and one
   over ``chain_metrics`` (per-service errors, to name the service to blame);
3. the pure rule evaluation and lifecycle (:mod:`chainotel_analyzer.analysis.alerts`), plus each
   chain's latest probe result (``ChainProbeDown``) and, for chains with ``topology_drift: true``, the
   services of the per-service rows against ``expected_services`` (``ChainTopologyDrift``, no extra query);
4. the alerts whose state changed stored in one INSERT into ``chain_alerts`` (the state survives a
   restart: the evaluator resumes from the newest alert of each chain and rule; a firing alert's
   ``last_true`` is kept in memory only, so after a restart ``keep_firing_for`` counts from its last
   stored change), then handed to the
   :class:`~chainotel_analyzer.monitoring.notifier.Notifier` without waiting.

An evaluation that fails (store unreachable) is logged and retried at the next tick; alerts keep
their state.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from chainotel.catalog.models import AlertRules, ChainDefinition, DEFAULT_ALERT_RULES

from chainotel_analyzer.analysis.alerts import (
    ANOMALY_BUCKETS, PROBE_ALERT, Alert, ChainFigures, Condition, anomaly_conditions, conditions, drift_condition,
    probe_condition, resolve_by_hand, step,
)  # fmt: skip
from chainotel_analyzer.monitoring.notifier import Notifier
from chainotel_analyzer.store.interfaces import ChainRegistry, MonitorStore, TraceReader

log = logging.getLogger(__name__)

_NS_FIELDS = ("active_at", "fired_at", "resolved_at", "last_true", "updated_at")


def alert_to_row(alert: Alert) -> dict:
    """An :class:`Alert` as a ``chain_alerts`` row (``*_ns`` fields → ``*_unix_nano`` columns)."""
    row = dataclasses.asdict(alert)
    for name in _NS_FIELDS:
        row[name + "_unix_nano"] = row.pop(name + "_ns")
    row["cleared"] = 1 if row["cleared"] else 0
    return row


def alert_from_row(row: dict) -> Alert:
    """The inverse of :func:`alert_to_row`."""
    data = dict(row)
    for name in _NS_FIELDS:
        data[name + "_ns"] = int(data.pop(name + "_unix_nano"))
    data["cleared"] = bool(data["cleared"])
    return Alert(**data)


@dataclass(frozen=True)
class ProbeStatus:
    """A chain's latest probe result as the evaluator sees it."""

    down: bool
    reason: str
    trace_id: str = ""
    service: str = ""


@dataclass
class Snapshot:
    """What the last evaluation saw: per chain its figures, per-service rows, rules; when (ns); its cost."""

    at_ns: int = 0
    figures: dict[str, ChainFigures] = field(default_factory=dict)
    services: dict[str, list[dict]] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    queries: int = 0
    seconds: float = 0.0


class AlertNotFound(LookupError):
    """No alert with this ID: HTTP 404."""


class AlertNotOpen(ValueError):
    """The alert is already resolved (or was dropped while pending): HTTP 409."""


def chain_rules(definition: ChainDefinition, default_rules: bool) -> AlertRules | None:
    """The rules of ``definition``: its ``alerts``, else the defaults (or None when ``default_rules`` is off)."""
    if definition.alerts is not None:
        return definition.alerts
    return DEFAULT_ALERT_RULES if default_rules else None


def error_services(service_rows: list[dict]) -> dict[str, str]:
    """Chain → the one service with error spans in its window (chains with none or several are absent)."""
    by_chain: dict[str, list[str]] = {}
    for r in service_rows:
        if r["errors"] > 0:
            by_chain.setdefault(r["chain"], []).append(r["service"])
    return {chain: names[0] for chain, names in by_chain.items() if len(names) == 1}


class AlertEvaluator:
    """Evaluates the alert rules of every registered chain (see module docstring).

    ``registry``/``store``: the storage interfaces; ``notifier``: where changed alerts go (or None);
    ``interval_s``: seconds between evaluations; ``default_rules``: whether chains without ``alerts:``
    get :data:`DEFAULT_ALERT_RULES`; ``probe_status(chain)``: the chain's latest probe result (or None);
    ``anomaly_reader``: when given, ``ChainAnomaly`` is evaluated too (one more query, over
    ``chain_traces``, of :data:`ANOMALY_BUCKETS` + 1 windows of ``anomaly_window_s`` seconds).
    """

    def __init__(self, registry: ChainRegistry, store: MonitorStore, notifier: Notifier | None, interval_s: float,
                 default_rules: bool = True, probe_status: Callable[[str], ProbeStatus | None] | None = None,
                 anomaly_reader: TraceReader | None = None, anomaly_window_s: int = 300):  # fmt: skip
        self.registry = registry
        self.store = store
        self.notifier = notifier
        self.interval_s = interval_s
        self.default_rules = default_rules
        self.probe_status = probe_status or (lambda chain: None)
        self.anomaly_reader = anomaly_reader
        self.anomaly_window_s = anomaly_window_s
        self.snapshot = Snapshot()
        self.evaluations = 0
        self.failures = 0
        self._latest: dict[tuple[str, str], Alert] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._restored = False

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread (first evaluation right away)."""
        self._thread = threading.Thread(target=self._run, name="chainotel-alert-evaluator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after the evaluation in progress; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.evaluate()
            except Exception:  # the store may be away for a while: keep the state, try again next tick
                self.failures += 1
                log.exception("alert evaluation failed; retrying in %.0f s", self.interval_s)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def _restore(self) -> None:
        if not self._restored:
            self._latest = {(r["chain"], r["alertname"]): alert_from_row(r) for r in self.store.latest_alerts()}
            self._restored = True

    # --- one evaluation -----------------------------------------------------------------------------
    def evaluate(self, now_ns: int | None = None) -> list[Alert]:
        """Evaluate every chain once at ``now_ns`` (default: now); returns the alerts whose state changed."""
        now_ns = now_ns if now_ns is not None else time.time_ns()
        started = time.perf_counter()
        with self._lock:
            self._restore()
            chains = self._definitions()
            rules = {d.id: r for d in chains if (r := chain_rules(d, self.default_rules)) is not None}
            windows = {c: r.window_s for c, r in rules.items()}
            lookback = max([r.window_s for r in rules.values()] + [r.no_traffic_for_s or 0 for r in rules.values()] + [1])
            slas = {d.id: d.max_duration_ms for d in chains}
            figure_rows = self.store.chain_window_figures(now_ns, windows, lookback, slas)
            service_rows = self.store.chain_service_figures(now_ns, windows)
            blame = error_services(service_rows)
            anomalies = self._anomalies(now_ns, list(rules))
            figures = {c: ChainFigures(c) for c in windows}
            for row in figure_rows:
                figures[row["chain"]] = ChainFigures(
                    row["chain"], int(row["traces"]), int(row["error_traces"]), int(row["within_sla"]),
                    float(row["p95_ms"]), int(row["last_start_ns"]), row["slowest_trace_id"], row["error_trace_id"],
                    blame.get(row["chain"], ""),
                )  # fmt: skip
            services: dict[str, list[dict]] = {}
            for row in service_rows:
                services.setdefault(row["chain"], []).append(row)
            changed: list[Alert] = []
            for d in chains:
                conds: list[Condition] = []
                rule = rules.get(d.id)
                if rule is not None:
                    conds = conditions(d.id, rule, d.max_duration_ms, figures[d.id], now_ns)
                    if rule.topology_drift:
                        calls = {r["service"]: r["calls"] for r in services.get(d.id, [])}
                        conds.append(drift_condition(d.id, rule, d.expected_services, calls, figures[d.id].traces))
                probe = self.probe_status(d.id) if d.probe is not None else None
                if probe is not None:
                    conds.append(probe_condition(d.id, probe.down, probe.reason, probe.trace_id, probe.service))
                if d.id in anomalies:
                    conds.append(anomalies[d.id])
                r = rule or DEFAULT_ALERT_RULES
                for cond in conds:
                    key = (d.id, cond.alertname)
                    current = self._latest.get(key)
                    for_s = 0.0 if cond.alertname == PROBE_ALERT and rule is None else r.for_s
                    new = step(current, cond, now_ns, for_s, r.keep_firing_for_s, d.category.value, r.severity)
                    if new is not current and new is not None:
                        self._latest[key] = new
                        if current is None or (new.alert_id, new.state, new.cleared) != (
                                current.alert_id, current.state, current.cleared):  # fmt: skip
                            changed.append(new)
            self.store.save_alerts([alert_to_row(a) for a in changed])
            self.snapshot = Snapshot(now_ns, figures, services, {d.id: d.category.value for d in chains},
                                     3 + (self.anomaly_reader is not None), time.perf_counter() - started)  # fmt: skip
            current = list(self._latest.values())
        self.evaluations += 1
        if self.notifier is not None:
            self.notifier.notify(current, now_ns)
        return changed

    def _anomalies(self, now_ns: int, chains: list[str]) -> dict[str, Condition]:
        if self.anomaly_reader is None or not chains:
            return {}
        w = self.anomaly_window_s
        rows = self.anomaly_reader.chain_buckets(now_ns - (ANOMALY_BUCKETS + 1) * w * 10**9, now_ns, w)
        return {c.chain: c for c in anomaly_conditions(rows, w, chains)}

    def _definitions(self) -> list[ChainDefinition]:
        out = []
        for row in self.registry.list():
            try:
                out.append(ChainDefinition.model_validate(row["definition"]))
            except ValidationError as exc:  # a definition stored by an older version: skip it, say so
                log.warning("chain %s: definition not valid for alerting, skipped: %s", row.get("id"), exc)
        return out

    # --- API ------------------------------------------------------------------------------------------
    def current_alerts(self) -> list[Alert]:
        """The newest alert of each chain and rule (any state)."""
        with self._lock:
            return list(self._latest.values())

    def resolve(self, alert_id: str, note: str, now_ns: int | None = None) -> Alert:
        """Resolve alert ``alert_id`` by hand with ``note``: stored, and sent as resolved. It stays
        resolved until its condition clears and fires anew. Raises :class:`AlertNotFound`,
        :class:`AlertNotOpen`."""
        now_ns = now_ns if now_ns is not None else time.time_ns()
        with self._lock:
            self._restore()
            found = next((a for a in self._latest.values() if a.alert_id == alert_id), None)
            if found is None:
                stored = self.store.alerts() if len(alert_id) == 32 else []
                if any(r["alert_id"] == alert_id for r in stored):
                    raise AlertNotOpen(f"alert {alert_id} is no longer open (resolved, or superseded)")
                raise AlertNotFound(f"no alert {alert_id!r}; list them with GET /api/v1/alerts?state=all")
            try:
                resolved = resolve_by_hand(found, note, now_ns)
            except ValueError as exc:
                raise AlertNotOpen(str(exc)) from None
            self.store.save_alerts([alert_to_row(resolved)])
            self._latest[(found.chain, found.alertname)] = resolved
            current = list(self._latest.values())
        if self.notifier is not None:
            self.notifier.notify(current, now_ns)
        return resolved
