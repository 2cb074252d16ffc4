"""Time parameters of the analysis API: RFC 3339 or Unix seconds, clear 422 otherwise."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st

from chainotel_analyzer.api.analytics import parse_time_ns, window


def test_rfc3339_and_unix_seconds_agree():
    assert parse_time_ns("2022-08-22T04:27:03Z", "since") == 1661142423 * 10**9
    assert parse_time_ns("2022-08-22T06:27:03.5+02:00", "since") == 1661142423_500_000_000
    assert parse_time_ns(" 1661142423.25 ", "since") == 1661142423_250_000_000
    assert parse_time_ns("0", "since") == 0


@pytest.mark.parametrize("bad", ["yesterday", "2022-08-22T04:27:03", "nan", "inf", "-1", "1e30", "", "12:00Z"])
def test_bad_times_are_refused_with_the_parameter_name(bad):
    with pytest.raises(HTTPException) as exc:
        parse_time_ns(bad, "baseline_since")
    assert exc.value.status_code == 422 and "baseline_since" in exc.value.detail


@given(st.text(max_size=40))
def test_any_text_gives_a_time_or_a_422(text):
    try:
        assert 0 <= parse_time_ns(text, "until") < 2**63
    except HTTPException as exc:
        assert exc.status_code == 422


def test_window_defaults_and_order():
    since, until = window(None, "100", 60)
    assert (since, until) == (40 * 10**9, 100 * 10**9)
    with pytest.raises(HTTPException):
        window("100", "100", 60)
