"""Anomalies: latency, error rate and throughput of a chain or service vs its own recent baseline.

Method: ``docs/analysis-method.md``, section "Anomalies" (the one description of the rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean, pstdev
from typing import NamedTuple

MIN_BUCKETS = 3
Z_THRESHOLD = 3.0
Z_CRITICAL = 6.0
LATENCY_MIN_RATIO = 1.5
ERROR_RATE_MIN_DELTA = 0.05
THROUGHPUT_DROP_RATIO = 0.5
THROUGHPUT_SURGE_RATIO = 2.0


class Bucket(NamedTuple):
    """Figures of one key in one time bucket.

    ``throughput_per_min``: units per minute — **traces** per minute for a chain (scope
    ``chain``), **spans** per minute for a service (scope ``service``: ``chain_metrics.calls``
    counts every span of the service); ``errors_per_min``: those units with an error, per minute
    (a chain's traces with any error span, a service's spans with status ERROR); ``p95_ms``: p95
    duration of the units in **milliseconds**.
    """

    throughput_per_min: float
    errors_per_min: float
    p95_ms: float

    @property
    def error_rate(self) -> float:
        """``errors_per_min / throughput_per_min`` (0 without traffic)."""
        return self.errors_per_min / self.throughput_per_min if self.throughput_per_min else 0.0


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding. ``scope``: ``chain`` or ``service``; ``metric``: ``latency_p95_ms``,
    ``error_rate`` or ``throughput_per_min``; ``value``/``baseline_mean`` in the metric's unit."""

    scope: str
    key: str
    metric: str
    value: float
    baseline_mean: float
    baseline_stddev: float
    z_score: float
    severity: str
    direction: str


def _z(x: float, history: Sequence[float], abs_floor: float) -> tuple[float, float, float]:
    mu = fmean(history)
    sigma = max(pstdev(history), 0.1 * abs(mu), abs_floor)
    return (x - mu) / sigma, mu, sigma


def detect(scope: str, key: str, current: Bucket, history: Sequence[Bucket]) -> list[Anomaly]:
    """Anomalies of one key in ``current`` against its ``history`` buckets (oldest first; empty
    buckets included as ``Bucket(0, 0, 0)``). Method, history rules and thresholds: module doc.
    Returns ``[]`` when nothing is anomalous or there is no basis to judge."""
    active = [b for b in history if b.throughput_per_min > 0]
    if len(active) < MIN_BUCKETS:
        return []
    out = []

    def add(metric, x, z, mu, sigma, direction):
        severity = "critical" if abs(z) >= Z_CRITICAL else "warning"
        out.append(Anomaly(scope, key, metric, x, mu, sigma, z, severity, direction))

    if current.throughput_per_min > 0:
        x = current.p95_ms
        z, mu, sigma = _z(x, [b.p95_ms for b in active], 1.0)
        if z >= Z_THRESHOLD and x >= LATENCY_MIN_RATIO * mu:
            add("latency_p95_ms", x, z, mu, sigma, "up")
        x = current.error_rate
        z, mu, sigma = _z(x, [b.error_rate for b in active], 0.01)
        if z >= Z_THRESHOLD and x - mu >= ERROR_RATE_MIN_DELTA:
            add("error_rate", x, z, mu, sigma, "up")
    x = current.throughput_per_min
    z, mu, sigma = _z(x, [b.throughput_per_min for b in history], 1.0)
    if z <= -Z_THRESHOLD and x <= THROUGHPUT_DROP_RATIO * mu:
        add("throughput_per_min", x, z, mu, sigma, "down")
    elif z >= Z_THRESHOLD and x >= THROUGHPUT_SURGE_RATIO * mu:
        add("throughput_per_min", x, z, mu, sigma, "up")
    return out
