"""schemathesis hooks for the conformance run (tests/security/test_openapi.py): the rules between
parameters that a JSON Schema cannot state, so that generated "valid" requests are valid.

- a window's ``since`` is before its ``until`` (``until`` defaults to now), and ``baseline_since`` /
  ``baseline_until`` come together, in order;
- ``cursor`` is opaque (only a ``next_cursor`` the endpoint made is one), so generated requests
  leave it out.
"""

from __future__ import annotations

import time

import schemathesis

from chainotel_analyzer.api.time_params import TimeParamError, parse_time_ns


def _ns(value) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time_ns(value, "t")
    except TimeParamError:
        return None


def _ordered(since, until) -> bool:
    s, u = _ns(since), _ns(until)
    if s is None:
        return True
    return s < (u if u is not None else time.time_ns())


@schemathesis.hook
def filter_query(ctx, query) -> bool:
    if not isinstance(query, dict):
        return True
    if query.get("cursor"):
        return False
    if bool(query.get("baseline_since")) != bool(query.get("baseline_until")):  # empty = absent
        return False
    return _ordered(query.get("since"), query.get("until")) and _ordered(
        query.get("baseline_since"), query.get("baseline_until")
    )


@schemathesis.hook
def filter_body(ctx, body) -> bool:
    if isinstance(body, dict) and ctx.operation.path == "/api/v1/discovery/scan":
        return _ordered(body.get("since"), body.get("until"))
    return True
