"""Chain alert rules and the alert lifecycle, as pure functions over plain data.

Two steps per evaluation, for every chain:

1. :func:`conditions` turns the chain's :class:`~chainotel.catalog.models.AlertRules` and its
   :class:`ChainFigures` over the rule window into one :class:`Condition` per configured rule, each
   true or false with the value it compared;
2. :func:`step` moves the chain's current :class:`Alert` for that rule through the lifecycle of a
   Prometheus alerting rule (https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/)::

       inactive ──condition true──▶ pending ──true for `for`──▶ firing ──false for `keep_firing_for`──▶ resolved
                 ◀──condition false── (pending is dropped: state 'inactive')

   A pending alert whose condition turns false before ``for`` has elapsed becomes ``inactive`` and
   never fires (Prometheus drops it). A firing alert stays firing until the condition has been false
   for ``keep_firing_for`` (no flapping around a threshold). A resolved alert is final: the next time
   the condition holds, a new alert (new ``alert_id``) starts pending.

   :func:`resolve_by_hand` resolves an alert with a note; the condition must then clear once before
   the same rule can fire again for the chain (``cleared``).

Rules (``alertname``; value; fires when):

==========================  ======================================  ==========================================
``ChainSLAComplianceLow``   share of traces ≤ ``max_duration_ms``   value < ``sla_compliance_below``
``ChainErrorRateHigh``      share of traces with an error span      value > ``error_rate_above``
``ChainLatencyHigh``        p95 of trace durations (ms)             value > ``p95_above_ms``
``ChainNoTraffic``          seconds since the last trace started    value ≥ ``no_traffic_for``
``ChainProbeDown``          1 when the last probe was down          the chain's synthetic probe is down
``ChainTopologyDrift``      services seen but not expected plus     value > 0 (only with ``topology_drift:
                            expected services not seen              true``; needs ``min_traces`` traces)
``ChainAnomaly``            z-score of the first finding            the anomaly detector finds the chain's
                                                                    latency, error rate or throughput off its
                                                                    baseline (only with ``alert_anomalies``)
==========================  ======================================  ==========================================

Rate rules need ``min_traces`` traces in the window; without them the condition is false (no data
resolves, as a vanished series does in Prometheus). Times are Unix **nanoseconds** (``_ns``),
durations in seconds (``_s``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from chainotel.catalog.models import AlertRules

from chainotel_analyzer.analysis import anomalies as anomaly_rules

SLA_ALERT = "ChainSLAComplianceLow"
ERROR_ALERT = "ChainErrorRateHigh"
LATENCY_ALERT = "ChainLatencyHigh"
NO_TRAFFIC_ALERT = "ChainNoTraffic"
PROBE_ALERT = "ChainProbeDown"
DRIFT_ALERT = "ChainTopologyDrift"
ANOMALY_ALERT = "ChainAnomaly"
ANOMALY_BUCKETS = 12
"""Baseline windows before the current one for ``ChainAnomaly`` (as the anomalies endpoint's default)."""

PENDING, FIRING, RESOLVED, INACTIVE = "pending", "firing", "resolved", "inactive"
OPEN_STATES = (PENDING, FIRING)

NS = 10**9


@dataclass(frozen=True, slots=True)
class ChainFigures:
    """One chain over its rule window (ending now): ``traces`` that started in it, ``error_traces``
    (any error span), ``within_sla`` (duration ≤ the SLA), ``p95_ms`` of trace durations,
    ``last_start_ns`` (latest trace start over the longest look-back, 0 if none), an example
    ``slowest_trace_id`` and ``error_trace_id`` ('' if none), and ``error_service``: the one service
    with error spans in the window ('' when none or several)."""

    chain: str
    traces: int = 0
    error_traces: int = 0
    within_sla: int = 0
    p95_ms: float = 0.0
    last_start_ns: int = 0
    slowest_trace_id: str = ""
    error_trace_id: str = ""
    error_service: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule of one chain at one evaluation: ``active`` when it holds; ``value`` compared with
    ``threshold``; an example ``trace_id``; ``service`` to blame ('' if not one); ``summary`` and
    ``description`` for people."""

    alertname: str
    chain: str
    active: bool
    value: float
    threshold: float
    trace_id: str = ""
    service: str = ""
    summary: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """One occurrence of a rule firing (or about to) for a chain.

    ``state``: pending | firing | resolved | inactive (a pending alert whose condition cleared).
    ``active_at_ns``: when the condition started to hold; ``fired_at_ns`` / ``resolved_at_ns``: 0
    until then; ``last_true_ns``: the last evaluation at which the condition held. ``value``: the
    value when the alert fired (while pending: the latest); ``threshold`` it crossed. ``resolved_by``:
    '' | 'condition' | 'manual' (with ``note``); ``cleared``: for a manual resolution, whether the
    condition has been false since. ``updated_at_ns`` orders the stored versions of an alert.
    """

    alert_id: str
    alertname: str
    chain: str
    category: str
    severity: str
    state: str
    active_at_ns: int
    last_true_ns: int
    updated_at_ns: int
    value: float
    threshold: float
    fired_at_ns: int = 0
    resolved_at_ns: int = 0
    trace_id: str = ""
    service: str = ""
    summary: str = ""
    description: str = ""
    resolved_by: str = ""
    note: str = ""
    cleared: bool = False

    @property
    def is_open(self) -> bool:
        """Pending or firing."""
        return self.state in OPEN_STATES

    @property
    def blocks_new(self) -> bool:
        """True while no new alert of this rule may start for the chain: open, or resolved by hand
        and the condition has not cleared since."""
        return self.is_open or (self.state == RESOLVED and self.resolved_by == "manual" and not self.cleared)


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def conditions(
    chain: str, rules: AlertRules, max_duration_ms: float | None, figures: ChainFigures, now_ns: int
) -> list[Condition]:
    """The conditions of ``chain`` (one per rule its ``rules`` switch on) from its ``figures``.

    ``max_duration_ms``: the chain's SLA (the SLA rule needs it). ``now_ns``: evaluation time (Unix ns).
    """
    out: list[Condition] = []
    f = figures
    window = _duration(rules.window_s)
    enough = f.traces >= rules.min_traces and f.traces > 0
    if rules.sla_compliance_below is not None and max_duration_ms is not None:
        value = f.within_sla / f.traces if f.traces else 1.0
        out.append(Condition(
            SLA_ALERT, chain, enough and value < rules.sla_compliance_below, value, rules.sla_compliance_below,
            f.slowest_trace_id, "", f"chain {chain}: {_pct(value)} of traces within the {max_duration_ms:g} ms SLA",
            f"{f.traces - f.within_sla} of {f.traces} traces in the last {window} took longer than "
            f"{max_duration_ms:g} ms (threshold {_pct(rules.sla_compliance_below)} within SLA)",
        ))  # fmt: skip
    if rules.error_rate_above is not None:
        value = f.error_traces / f.traces if f.traces else 0.0
        out.append(Condition(
            ERROR_ALERT, chain, enough and value > rules.error_rate_above, value, rules.error_rate_above,
            f.error_trace_id, f.error_service, f"chain {chain}: {_pct(value)} of traces failed",
            f"{f.error_traces} of {f.traces} traces in the last {window} had an error span"
            + (f" (all in service {f.error_service})" if f.error_service else "")
            + f" (threshold {_pct(rules.error_rate_above)})",
        ))  # fmt: skip
    if rules.p95_above_ms is not None:
        out.append(Condition(
            LATENCY_ALERT, chain, enough and f.p95_ms > rules.p95_above_ms, f.p95_ms, rules.p95_above_ms,
            f.slowest_trace_id, "", f"chain {chain}: p95 {f.p95_ms:.0f} ms",
            f"p95 of trace durations over the last {window} is {f.p95_ms:.0f} ms (threshold {rules.p95_above_ms:g} ms)",
        ))  # fmt: skip
    if rules.no_traffic_for_s is not None:
        quiet_s = (now_ns - f.last_start_ns) / NS if f.last_start_ns else rules.no_traffic_for_s
        out.append(Condition(
            NO_TRAFFIC_ALERT, chain, quiet_s >= rules.no_traffic_for_s, quiet_s, rules.no_traffic_for_s, "", "",
            f"chain {chain}: no traffic for {_duration(quiet_s)}",
            f"no trace of chain {chain} started in the last {_duration(quiet_s)} "
            f"(threshold {_duration(rules.no_traffic_for_s)})",
        ))  # fmt: skip
    return out


def probe_condition(chain: str, down: bool, reason: str, trace_id: str = "", service: str = "") -> Condition:
    """The ``ChainProbeDown`` condition from the chain's latest probe result (``down`` with ``reason``)."""
    return Condition(
        PROBE_ALERT, chain, down, 1.0 if down else 0.0, 0.5, trace_id, service,
        f"chain {chain}: synthetic probe down" if down else f"chain {chain}: synthetic probe up",
        f"the synthetic probe of chain {chain} failed: {reason}" if down else "",
    )  # fmt: skip


def drift_condition(
    chain: str, rules: AlertRules, expected_services: list[str], service_calls: dict[str, int], traces: int
) -> Condition:
    """``ChainTopologyDrift`` of ``chain`` over its rule window: ``service_calls`` (service → spans of the
    chain's real traffic in the window) against the definition's ``expected_services``; ``traces``: the
    chain's traces in the window. Services seen but not expected and expected services not seen both
    count (value: how many); with fewer than ``rules.min_traces`` traces the condition is false. The
    comparison is of the service set only: edges need whole traces (``GET /api/v1/chains/{chain}/drift``).
    """
    seen = {s for s, n in service_calls.items() if n > 0}
    enough = traces >= rules.min_traces and traces > 0
    unexpected = sorted(seen - set(expected_services)) if enough else []
    missing = [s for s in expected_services if s not in seen] if enough else []
    drifted = unexpected + missing
    parts = []
    if unexpected:
        parts.append("services not in expected_services: " + ", ".join(
            f"{s} ({service_calls[s]} spans)" for s in unexpected))  # fmt: skip
    if missing:
        parts.append("expected services without spans: " + ", ".join(missing))
    summary = (f"chain {chain}: topology drift ({len(unexpected)} unexpected, {len(missing)} missing service(s))"
               if drifted else f"chain {chain}: topology as defined")  # fmt: skip
    return Condition(
        DRIFT_ALERT, chain, bool(drifted), float(len(drifted)), 0.0, "", drifted[0] if len(drifted) == 1 else "",
        summary, f"over the last {_duration(rules.window_s)} ({traces} traces): " + "; ".join(parts) if drifted else "",
    )  # fmt: skip


def anomaly_conditions(bucket_rows: list[dict], window_s: int, chains: list[str]) -> list[Condition]:
    """``ChainAnomaly`` of each of ``chains`` from ``chain_buckets`` rows (``chain``, ``bucket``,
    ``traces``, ``errors``, ``p95_ms``) of :data:`ANOMALY_BUCKETS` + 1 windows of ``window_s`` seconds,
    the last one current; the rules of :func:`chainotel_analyzer.analysis.anomalies.detect`."""
    minutes = window_s / 60
    series: dict[str, dict[int, anomaly_rules.Bucket]] = {}
    for r in bucket_rows:
        series.setdefault(r["chain"], {})[int(r["bucket"])] = anomaly_rules.Bucket(
            r["traces"] / minutes, r["errors"] / minutes, float(r["p95_ms"] or 0.0))
    empty = anomaly_rules.Bucket(0.0, 0.0, 0.0)
    out = []
    for chain in chains:
        buckets = series.get(chain, {})
        history = [buckets.get(i, empty) for i in range(ANOMALY_BUCKETS)]
        found = anomaly_rules.detect("chain", chain, buckets.get(ANOMALY_BUCKETS, empty), history)
        text = "; ".join(f"{a.metric} {a.value:.3g} vs baseline {a.baseline_mean:.3g} (z {a.z_score:+.1f}, {a.direction})"
                         for a in found)  # fmt: skip
        out.append(Condition(
            ANOMALY_ALERT, chain, bool(found), found[0].z_score if found else 0.0, anomaly_rules.Z_THRESHOLD, "", "",
            f"chain {chain}: {found[0].metric} anomaly" if found else f"chain {chain}: no anomaly",
            f"over the last {_duration(window_s)} against the {ANOMALY_BUCKETS} windows before: {text}" if found else "",
        ))  # fmt: skip
    return out


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:g}s"


def new_alert_id() -> str:
    """A fresh alert ID (32 hex characters, random)."""
    return uuid.uuid4().hex


def step(
    current: Alert | None,
    cond: Condition,
    now_ns: int,
    for_s: float,
    keep_firing_for_s: float,
    category: str = "",
    severity: str = "warning",
    new_id=new_alert_id,
) -> Alert | None:
    """The alert of ``cond``'s rule and chain after one evaluation at ``now_ns``.

    ``current``: the latest alert of that rule and chain (any state) or None. Returns the updated or
    new alert — compare with ``current`` (``is``) to see whether anything changed — or None when
    there is none (condition false and nothing open). ``for_s``/``keep_firing_for_s``: the rule's
    ``for`` and ``keep_firing_for`` in seconds. ``new_id()`` names a new alert.
    """
    if current is None or not current.blocks_new:
        if not cond.active:
            return current
        fires = for_s <= 0
        return Alert(
            new_id(), cond.alertname, cond.chain, category, severity, FIRING if fires else PENDING,
            active_at_ns=now_ns, last_true_ns=now_ns, updated_at_ns=now_ns, value=cond.value,
            threshold=cond.threshold, fired_at_ns=now_ns if fires else 0, trace_id=cond.trace_id,
            service=cond.service, summary=cond.summary, description=cond.description,
        )  # fmt: skip
    if current.state == RESOLVED:  # by hand, condition not cleared yet
        return replace(current, cleared=True, updated_at_ns=now_ns) if not cond.active else current
    if current.state == PENDING:
        if not cond.active:
            return replace(current, state=INACTIVE, resolved_at_ns=now_ns, resolved_by="condition", updated_at_ns=now_ns)
        fired = (now_ns - current.active_at_ns) >= for_s * NS
        return replace(
            current, state=FIRING if fired else PENDING, fired_at_ns=now_ns if fired else 0, last_true_ns=now_ns,
            updated_at_ns=now_ns, value=cond.value, trace_id=cond.trace_id or current.trace_id,
            service=cond.service, summary=cond.summary, description=cond.description,
        )  # fmt: skip
    # firing
    if cond.active:
        return replace(current, last_true_ns=now_ns, updated_at_ns=now_ns)
    if (now_ns - current.last_true_ns) >= keep_firing_for_s * NS:
        return replace(current, state=RESOLVED, resolved_at_ns=now_ns, resolved_by="condition", updated_at_ns=now_ns)
    return current


def resolve_by_hand(alert: Alert, note: str, now_ns: int) -> Alert:
    """``alert`` resolved by a person with ``note``; raises ValueError if it is not pending or firing."""
    if not alert.is_open:
        raise ValueError(f"alert {alert.alert_id} is {alert.state}; only a pending or firing alert can be resolved")
    return replace(alert, state=RESOLVED, resolved_at_ns=now_ns, resolved_by="manual", note=note,
                   cleared=False, updated_at_ns=now_ns)  # fmt: skip
