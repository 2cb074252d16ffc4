"""The plain span model the analysis core works on.

The analysis functions take and return plain data only (no I/O): a trace is a sequence of
:class:`Span`. The store builds these from ``chain_history`` rows (the mapping is
:mod:`chainotel_analyzer.model.rows`); everything here is independent of where spans came from.

Units: every time is an ``int`` in **nanoseconds** since the Unix epoch (``start_ns``,
``end_ns``), exactly as OTLP's ``start_time_unix_nano`` / ``end_time_unix_nano``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

# Span kinds by their OTLP enum names without the ``SPAN_KIND_`` prefix
# (opentelemetry/proto/trace/v1/trace.proto, ``Span.SpanKind``).
UNSPECIFIED = "UNSPECIFIED"
INTERNAL = "INTERNAL"
SERVER = "SERVER"
CLIENT = "CLIENT"
PRODUCER = "PRODUCER"
CONSUMER = "CONSUMER"
SPAN_KINDS = (UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER)

_KIND_BY_NUMBER = dict(enumerate(SPAN_KINDS))


def span_kind(value: object) -> str:
    """Normalise a span kind to its short name (``"SERVER"``, ``"CLIENT"``, …).

    Accepts the OTLP enum number (``2``), the full enum name (``"SPAN_KIND_SERVER"``), the short
    name in any case (``"server"``) or ``None``/``""`` (→ ``"UNSPECIFIED"``). Unknown values
    map to ``"UNSPECIFIED"`` — the analysis must never fail on a producer's odd kind.
    """
    if value is None or value == "":
        return UNSPECIFIED
    if isinstance(value, int):
        return _KIND_BY_NUMBER.get(value, UNSPECIFIED)
    text = str(value).upper()
    if text.startswith("SPAN_KIND_"):
        text = text[len("SPAN_KIND_"):]
    return text if text in SPAN_KINDS else UNSPECIFIED


class Span(NamedTuple):
    """One span, as the analysis sees it.

    Fields:
      - ``span_id``: 16-hex span ID; ``parent_span_id``: the parent's, ``""`` for a root span.
      - ``service``: ``service.name`` of the resource; ``operation``: span name (or ``http.route``).
      - ``start_ns``, ``end_ns``: Unix epoch **nanoseconds** (``end_ns >= start_ns`` expected;
        a span ending before it starts is treated as zero-length at ``start_ns``).
      - ``kind``: short span kind (see :func:`span_kind`).
      - ``is_error``: span status ``ERROR``.
      - ``trace_id``: 32-hex trace ID (the chain instance), ``chain``: chain definition
        (``"B3"``, ``""`` if none), ``peer_service``: ``peer.service`` of a client span, if any.
    """

    span_id: str
    parent_span_id: str
    service: str
    operation: str
    start_ns: int
    end_ns: int
    kind: str = UNSPECIFIED
    is_error: bool = False
    trace_id: str = ""
    chain: str = ""
    peer_service: str = ""

    @property
    def duration_ns(self) -> int:
        """``end_ns - start_ns`` in **nanoseconds**, never below 0."""
        return max(0, self.end_ns - self.start_ns)


def group_by_trace(spans: Iterable[Span]) -> dict[str, list[Span]]:
    """Group spans by ``trace_id``; returns ``{trace_id: [Span, ...]}`` in first-seen order."""
    traces: dict[str, list[Span]] = {}
    for span in spans:
        bucket = traces.get(span.trace_id)
        if bucket is None:
            traces[span.trace_id] = [span]
        else:
            bucket.append(span)
    return traces
