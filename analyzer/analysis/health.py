"""Health of a chain over a window: RED figures, SLA compliance and a 0–100 score.

Method: ``docs/analysis-method.md``, section "Health" (the one description of the rules).
"""

from __future__ import annotations

from dataclasses import dataclass

HEALTHY_MIN_SCORE = 90
DEGRADED_MIN_SCORE = 70
WEIGHTS = (0.4, 0.3, 0.3)  # availability, 1 - error rate, SLA compliance


@dataclass(frozen=True, slots=True)
class ChainHealth:
    """Health of one chain over one window (rates 0–1, times **ms**, score 0–100)."""

    chain: str
    traces: int
    throughput_per_min: float
    availability: float
    error_rate: float
    success_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_duration_ms: float | None
    sla_compliance: float
    score: int | None
    status: str


def chain_health(
    chain: str,
    traces: int,
    error_traces: int,
    root_error_traces: int,
    within_sla: int,
    p50_ms: float,
    p95_ms: float,
    p99_ms: float,
    window_s: float,
    max_duration_ms: float | None = None,
) -> ChainHealth:
    """Health of ``chain`` from per-window trace counts and duration percentiles (**ms**).

    ``error_traces``: traces with any error span; ``root_error_traces``: traces whose root span
    failed; ``within_sla``: traces with duration ≤ ``max_duration_ms`` (ignored without an SLA);
    ``window_s``: window length in **seconds** (> 0). Raises ``ValueError`` if ``window_s <= 0``
    or a count is outside ``[0, traces]``.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    if any(not 0 <= c <= traces for c in (error_traces, root_error_traces, within_sla)):
        raise ValueError("error_traces, root_error_traces and within_sla must be within [0, traces]")
    if traces == 0:
        return ChainHealth(chain, 0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, max_duration_ms, 1.0, None, "no_data")
    avail = 1 - root_error_traces / traces
    err = error_traces / traces
    sla = 1.0 if max_duration_ms is None else within_sla / traces
    score = round(100 * (WEIGHTS[0] * avail + WEIGHTS[1] * (1 - err) + WEIGHTS[2] * sla))
    status = "healthy" if score >= HEALTHY_MIN_SCORE else "degraded" if score >= DEGRADED_MIN_SCORE else "unhealthy"
    return ChainHealth(
        chain, traces, traces / (window_s / 60), avail, err, 1 - err, p50_ms, p95_ms, p99_ms,
        max_duration_ms, sla, score, status,
    )  # fmt: skip
