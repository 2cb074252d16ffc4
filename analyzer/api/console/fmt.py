"""Number and time formatting for the console's templates (Jinja2 filters)."""

from __future__ import annotations

from datetime import datetime, timezone


def ms(value: float | None) -> str:
    """Milliseconds for people: ``0.42 ms``, ``12.3 ms``, ``1.25 s``; ``–`` for ``None``."""
    if value is None:
        return "–"
    if value >= 10_000:
        return f"{value / 1000:.1f} s"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def ns_ms(value: int | None) -> str:
    """Nanoseconds shown as :func:`ms`."""
    return ms(None if value is None else value / 1e6)


def pct(value: float | None, digits: int = 1) -> str:
    """A 0–1 share as a percentage: ``97.5%``; ``–`` for ``None``."""
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals (none for integers); ``–`` for ``None``."""
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def clock(ns: int | None, with_date: bool = True) -> str:
    """Unix **ns** as UTC ``YYYY-MM-DD HH:MM:SS.mmm``."""
    if ns is None:
        return "–"
    t = datetime.fromtimestamp(ns // 10**9, tz=timezone.utc)
    text = t.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return f"{text}.{(ns % 10**9) // 10**6:03d}"
