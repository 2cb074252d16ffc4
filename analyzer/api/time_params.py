"""Time query parameters (``since``, ``until``, ``baseline_*``): RFC 3339 or Unix seconds → Unix
nanoseconds, in bounded time and memory whatever the caller sends.

A value is at most :data:`MAX_LENGTH` characters; a number is decimal digits with at most 9
fraction digits (ns) and an optional exponent of at most 3 digits, checked against the range as a
:class:`~decimal.Decimal` *before* it becomes an integer — so ``1e999990`` (which as an integer
has a million digits) and ``±1e999999999`` (past Decimal's exponent range) are refused at once.
Range: 1970-01-01 .. 2262-04-11 (ClickHouse ``DateTime64(9)``).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Annotated

from fastapi import Query

from chainotel_analyzer.model.rows import MAX_TIMESTAMP_NS

MAX_LENGTH = 40
"""Longest accepted value, in characters (an RFC 3339 time with ns and offset is 35)."""

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$")
_LONG_EXPONENT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)[eE][+-]?\d{4,}$")
_MAX_SECONDS = Decimal(MAX_TIMESTAMP_NS) / 10**9


_DAY = r"((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
TIME_PATTERN = (
    r"^$"
    r"|^[0-8]?[0-9]{1,9}(\.[0-9]{1,9})?$"
    r"|^(197[1-9]|19[89][0-9]|2[01][0-9]{2}|22[0-5][0-9]|2260)-" + _DAY
    + r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""The grammar the OpenAPI document gives for a time parameter, and the one the API enforces: empty
(the endpoint's default), Unix seconds with up to 9 fraction digits, or an RFC 3339 date-time with
an offset. Every value it matches is a valid time in range (years 1971–2260, and no 29 February,
which exists in leap years only), so a value that matches is never refused; :func:`parse_time_ns` itself accepts a little more (exponents) for Python callers."""

TIME_DESCRIPTION = "RFC 3339 (`2022-08-22T04:27:03Z`) or Unix seconds (`1661142423.25`); empty: the default."

TimeQuery = Annotated[
    str | None, Query(max_length=MAX_LENGTH, pattern=TIME_PATTERN, description=TIME_DESCRIPTION)
]
"""A ``since``/``until`` query parameter: at most :data:`MAX_LENGTH` characters matching
:data:`TIME_PATTERN` (else FastAPI's 422 naming it); parse it with :func:`parse_time_ns`."""


class TimeParamError(ValueError):
    """A time parameter that is not a usable time; the message names the parameter and the reason."""


def parse_time_ns(value: str, name: str) -> int:
    """RFC 3339 or Unix seconds → Unix **nanoseconds**; :class:`TimeParamError` naming ``name`` otherwise.

    Accepts ``2022-08-22T04:27:03Z``, ``2022-08-22T06:27:03.5+02:00``, ``1661142423``,
    ``1661142423.25``, ``1.661142423e9``; refuses NaN, infinities, negative times, times past
    2262-04-11 and values longer than :data:`MAX_LENGTH` characters. Sub-ns digits are truncated.
    """
    text = value.strip()
    if len(text) > MAX_LENGTH:
        raise TimeParamError(f"{name}: longer than {MAX_LENGTH} characters; use RFC 3339 or Unix seconds")
    if _NUMBER.match(text):
        with localcontext() as ctx:
            ctx.prec = 60  # exact for every accepted value (≤ 40 digits); exponent ≤ 999 cannot overflow
            number = Decimal(text)
            if not 0 <= number <= _MAX_SECONDS:
                raise TimeParamError(f"{name}: {value!r} is outside 1970-01-01 .. 2262-04-11 (Unix seconds)")
            return int(number.scaleb(9))
    if _LONG_EXPONENT.match(text):
        raise TimeParamError(f"{name}: {value!r} is outside 1970-01-01 .. 2262-04-11 (exponent of more than 3 digits)")
    if text.lower() in ("nan", "inf", "infinity", "+inf", "-inf", "+infinity", "-infinity", "snan"):
        raise TimeParamError(f"{name}: {value!r} is not a finite number of seconds")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeParamError(f"{name}: {value!r} is neither RFC 3339 nor Unix seconds") from None
    if dt.tzinfo is None:
        raise TimeParamError(f"{name}: {value!r} has no time zone offset (RFC 3339 needs 'Z' or ±hh:mm)")
    ns = int(dt.timestamp()) * 10**9 + dt.microsecond * 1000
    if not 0 <= ns <= MAX_TIMESTAMP_NS:
        raise TimeParamError(f"{name}: {value!r} is outside 1970-01-01 .. 2262-04-11")
    return ns
