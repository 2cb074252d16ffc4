"""Chain instance IDs: parsing ``X-Chain-ID`` values and writing trace IDs as UUIDs.

A chain instance ID *is* the W3C trace ID (128 bits) of the chain's trace, written as a
lowercase UUID in the 8-4-4-4-12 form. Incoming values are accepted as

- a UUID in any case, with dashes (``3F2504E0-4F89-11D3-9A0C-0305E82C3301``), or
- 32 hex digits in any case, without dashes (``3f2504e04f8911d39a0c0305e82c3301``).

Nothing else (braces, ``urn:uuid:``, ``0x``, underscores, non-ASCII digits) is accepted, and the
all-zero ID is invalid because W3C Trace Context (§3.2.2.3) forbids an all-zero trace-id.

The analyzer reuses :func:`parse_instance_id` for its ``{instance_id}`` path parameters (and the trace pages).

Example::

    >>> parse_instance_id("3F2504E0-4F89-11D3-9A0C-0305E82C3301") == 0x3F2504E04F8911D39A0C0305E82C3301
    True
    >>> format_instance_id(0x3F2504E04F8911D39A0C0305E82C3301)
    '3f2504e0-4f89-11d3-9a0c-0305e82c3301'
"""

from __future__ import annotations

import re

__all__ = ["InvalidInstanceId", "format_instance_id", "parse_instance_id", "try_parse_instance_id"]

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class InvalidInstanceId(ValueError):
    """Raised by :func:`parse_instance_id` for a value that is not a chain instance ID.

    The message says why (wrong shape or all zeros) and quotes at most 64 characters of the value.
    """


def parse_instance_id(value: str) -> int:
    """Parse a chain instance ID (``X-Chain-ID`` value) to its 128-bit trace ID.

    Args:
        value: a UUID (any case, dashes in the 8-4-4-4-12 places) or 32 hex digits. Surrounding
            whitespace is ignored (HTTP optional whitespace).

    Returns:
        The trace ID as an ``int`` in ``1 .. 2**128 - 1``.

    Raises:
        InvalidInstanceId: the value has another shape, or is all zeros (W3C Trace Context §3.2.2.3).
    """
    text = value.strip() if isinstance(value, str) else ""
    if len(text) == 36 and _UUID.fullmatch(text):
        text = text.replace("-", "")
    elif not (len(text) == 32 and _HEX32.fullmatch(text)):
        shown = value[:64] if isinstance(value, str) else type(value).__name__
        raise InvalidInstanceId(
            f"not a chain instance ID: {shown!r}; expected a UUID (8-4-4-4-12) or 32 hex digits"
        )
    trace_id = int(text, 16)
    if trace_id == 0:
        raise InvalidInstanceId("not a chain instance ID: the all-zero ID is not a valid trace ID")
    return trace_id


def try_parse_instance_id(value: str | None) -> int | None:
    """Like :func:`parse_instance_id` but returns ``None`` for ``None`` or an invalid value."""
    if value is None:
        return None
    try:
        return parse_instance_id(value)
    except InvalidInstanceId:
        return None


def format_instance_id(trace_id: int) -> str:
    """Write a 128-bit trace ID as a chain instance ID: a lowercase UUID (8-4-4-4-12).

    Raises:
        ValueError: ``trace_id`` is not in ``0 .. 2**128 - 1``.
    """
    if not 0 <= trace_id < 1 << 128:
        raise ValueError(f"trace ID out of range (128 bits): {trace_id}")
    h = trace_id.to_bytes(16, "big").hex()  # the fastest formatting measured (once per trace)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
