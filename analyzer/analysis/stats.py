"""Small summary statistics shared by the analysis modules (pure, no I/O).

Percentiles use linear interpolation between closest ranks — numpy's default ``linear``
method and ClickHouse's ``quantileExact*`` family's interpolating variant — so p50/p95/p99 agree
with what ``numpy.percentile`` gives on the same values.
"""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (``0 <= q <= 100``) of ``values``, linear interpolation.

    Returns ``0.0`` for an empty input. Unit: the unit of ``values``.
    Raises ``ValueError`` if ``q`` is outside ``[0, 100]``.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": …, "p95": …, "p99": …}`` for ``values`` (one sort); unit of ``values``."""
    ordered = sorted(values)
    return {f"p{q:g}": percentile(ordered, q) for q in qs}
