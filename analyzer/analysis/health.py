"""Health of a chain over a window: RED figures, SLA compliance and a 0–100 score.

Inputs are per-trace facts the store already has (``chain_traces``): duration (**ms**), whether
any span failed, whether the root span failed.

Definitions (all over the traces of the window):

- ``throughput_per_min`` = traces / window minutes;
- ``availability`` A = share of traces whose root span is not an error (the user got an answer);
- ``error_rate`` E = share of traces with at least one error span; ``success_rate`` = 1 − E;
- ``p50_ms``/``p95_ms``/``p99_ms`` of trace durations (linear interpolation);
- ``sla_compliance`` L = share of traces with duration ≤ ``max_duration_ms`` (1.0 without an SLA).

**Score** = ``round(100 · (0.4·A + 0.3·(1 − E) + 0.3·L))`` — availability weighs most because a
failed request is worse than a slow or partially degraded one. **Status**: ``no_data`` without
traces; ``healthy`` if score ≥ 90; ``degraded`` if score ≥ 70; else ``unhealthy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.analysis.stats import percentiles

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
    durations_ms: Sequence[float],
    error_traces: int,
    root_error_traces: int,
    window_s: float,
    max_duration_ms: float | None = None,
) -> ChainHealth:
    """Health of ``chain`` from its traces' durations (**ms**) and error counts.

    ``error_traces``: traces with any error span; ``root_error_traces``: traces whose root span
    failed; ``window_s``: window length in **seconds** (> 0). Raises ``ValueError`` if
    ``window_s <= 0`` or a count exceeds the number of traces.
    """
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    n = len(durations_ms)
    if error_traces > n or root_error_traces > n or error_traces < 0 or root_error_traces < 0:
        raise ValueError("error counts must be within [0, number of traces]")
    if n == 0:
        return ChainHealth(chain, 0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, max_duration_ms, 1.0, None, "no_data")
    avail = 1 - root_error_traces / n
    err = error_traces / n
    sla = 1.0 if max_duration_ms is None else sum(1 for d in durations_ms if d <= max_duration_ms) / n
    score = round(100 * (WEIGHTS[0] * avail + WEIGHTS[1] * (1 - err) + WEIGHTS[2] * sla))
    status = "healthy" if score >= HEALTHY_MIN_SCORE else "degraded" if score >= DEGRADED_MIN_SCORE else "unhealthy"
    p = percentiles(durations_ms)
    return ChainHealth(
        chain, n, n / (window_s / 60), avail, err, 1 - err, p["p50"], p["p95"], p["p99"],
        max_duration_ms, sla, score, status,
    )  # fmt: skip
