"""The console's time range: a preset relative to now (``range=15m|1h|6h|24h``) or a custom window
(``range=custom&since=…&until=…``), read from and written back to the query string so every page
URL is shareable.

``since``/``until`` take what the API takes (RFC 3339, Unix seconds) and the ``datetime-local`` form
value ``YYYY-MM-DDTHH:MM[:SS]``, read as UTC (the console shows every time in UTC).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from fastapi import HTTPException

from chainotel_analyzer.api.analytics import parse_time_ns

PRESETS: dict[str, int] = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600}
"""Preset ranges and their length in **seconds**."""
DEFAULT_RANGE = "1h"
CHART_BUCKETS = 30
"""Time buckets per chart."""

_LOCAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?")


def _parse(value: str, name: str) -> int:
    text = value.strip()
    return parse_time_ns(text + "Z" if _LOCAL.fullmatch(text) else text, name)


def form_time(ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) of Unix **ns**: the value of a ``datetime-local`` input."""
    return datetime.fromtimestamp(ns // 10**9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def api_time(ns: int) -> str:
    """Unix seconds with nine decimals (exact **ns**), as the API's ``since``/``until`` take them."""
    return f"{ns // 10**9}.{ns % 10**9:09d}"


@dataclass(frozen=True)
class TimeRange:
    """The window a page shows: ``key`` (a :data:`PRESETS` key or ``"custom"``), ``since_ns``/``until_ns``
    (Unix **ns**, half-open)."""

    key: str
    since_ns: int
    until_ns: int

    @classmethod
    def from_query(cls, range_: str | None, since: str | None, until: str | None, now_ns: int | None = None) -> TimeRange:
        """The range of a page's query string. Raises ``HTTPException(422)`` naming the bad parameter."""
        key = range_ or ("custom" if since else DEFAULT_RANGE)
        now = time.time_ns() if now_ns is None else now_ns
        if key in PRESETS:
            return cls(key, now - PRESETS[key] * 10**9, now)
        if key != "custom":
            raise HTTPException(422, f"range: {key!r} is not one of {', '.join(PRESETS)} or custom")
        if not since:
            raise HTTPException(422, "since: a custom range needs since (and until, default now)")
        since_ns = _parse(since, "since")
        until_ns = _parse(until, "until") if until else now
        if since_ns >= until_ns:
            raise HTTPException(422, "since must be before until")
        return cls("custom", since_ns, until_ns)

    @property
    def seconds(self) -> float:
        return (self.until_ns - self.since_ns) / 1e9

    @property
    def bucket_s(self) -> int:
        """Chart bucket length in **seconds**: about :data:`CHART_BUCKETS` buckets over the range."""
        return max(1, -(-int(self.seconds) // CHART_BUCKETS))

    @property
    def buckets(self) -> int:
        return max(1, -(-int(self.seconds) // self.bucket_s))

    def params(self) -> dict[str, str]:
        """The query parameters that reproduce this range."""
        if self.key == "custom":
            return {"range": "custom", "since": form_time(self.since_ns), "until": form_time(self.until_ns)}
        return {"range": self.key}

    def api(self) -> tuple[str, str]:
        """``(since, until)`` as the API functions take them."""
        return api_time(self.since_ns), api_time(self.until_ns)

    def previous(self) -> TimeRange:
        """The window of the same length just before this one (the default baseline)."""
        length = self.until_ns - self.since_ns
        return TimeRange("custom", max(0, self.since_ns - length), self.since_ns)
