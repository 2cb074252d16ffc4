"""Anomalies: latency, error rate and throughput of a chain or service vs its own recent baseline.

Method — a z-score against the key's own history, with a relative floor so that tiny, steady
series do not page anyone:

- the baseline is the key's figures in ``n ≥ 3`` earlier buckets of equal length (the store
  passes per-minute buckets of the hour before the window); mean μ and standard deviation σ;
  σ is floored at ``0.1·μ`` (and at a small absolute value) so a flat history does not turn noise
  into infinite z;
- ``z = (x − μ) / σ`` for the current bucket's value ``x``.

Thresholds (an anomaly needs both):

- **latency** (p95, **ms**): ``z ≥ 3`` and ``x ≥ 1.5·μ``;
- **error rate** (errors / calls): ``z ≥ 3`` and ``x − μ ≥ 0.05`` (five percentage points);
- **throughput** (calls per minute): ``|z| ≥ 3`` and ``x ≤ 0.5·μ`` (drop) or ``x ≥ 2·μ`` (surge).

Severity: ``critical`` when ``|z| ≥ 6``, else ``warning``. With fewer than 3 baseline buckets
nothing is reported (no basis to judge).
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
    """Figures of one key in one time bucket: ``calls`` per minute, ``errors`` per minute, ``p95_ms``."""

    calls_per_min: float
    errors_per_min: float
    p95_ms: float

    @property
    def error_rate(self) -> float:
        """errors / calls (0 without calls)."""
        return self.errors_per_min / self.calls_per_min if self.calls_per_min else 0.0


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
    """Anomalies of one key (see module doc for method and thresholds); ``[]`` if none."""
    if len(history) < MIN_BUCKETS:
        return []
    out = []

    def add(metric, x, z, mu, sigma, direction):
        severity = "critical" if abs(z) >= Z_CRITICAL else "warning"
        out.append(Anomaly(scope, key, metric, x, mu, sigma, z, severity, direction))

    if current.calls_per_min > 0:
        x = current.p95_ms
        z, mu, sigma = _z(x, [b.p95_ms for b in history if b.calls_per_min > 0] or [0.0], 1.0)
        if z >= Z_THRESHOLD and x >= LATENCY_MIN_RATIO * mu:
            add("latency_p95_ms", x, z, mu, sigma, "up")
        x = current.error_rate
        z, mu, sigma = _z(x, [b.error_rate for b in history], 0.01)
        if z >= Z_THRESHOLD and x - mu >= ERROR_RATE_MIN_DELTA:
            add("error_rate", x, z, mu, sigma, "up")
    x = current.calls_per_min
    z, mu, sigma = _z(x, [b.calls_per_min for b in history], 1.0)
    if z <= -Z_THRESHOLD and x <= THROUGHPUT_DROP_RATIO * mu:
        add("throughput_per_min", x, z, mu, sigma, "down")
    elif z >= Z_THRESHOLD and x >= THROUGHPUT_SURGE_RATIO * mu:
        add("throughput_per_min", x, z, mu, sigma, "up")
    return out
