"""The row formats of the store — the one owner of ``chain_history``'s columns and of the
``chain_definitions`` registry row.

Everything that writes or reads a row uses this module: the OTLP decoder builds Arrow tables with
:data:`DECODED_SCHEMA`, the writer completes them with :func:`insert_table`, the queries select
:data:`SPAN_SELECT` (rows become :class:`~chainotel_analyzer.model.span.Span` by
:func:`span_from_row`) and :data:`EVENT_SELECT`. The DDL lives in the migrations
(``analyzer/store/migrations/NNNN_*.sql``, whose comments say what each column holds); a test
checks that the migrated table has exactly :data:`CHAIN_HISTORY`, in order, with matching types.
Adding a column: a migration, an entry in :data:`CHAIN_HISTORY`, and the code that fills it.

Vocabulary: the column ``chain`` is the chain *definition* (``"B3"``); ``instance_id`` is the chain
*instance* (the trace ID as a UUID); ``span_id`` is the span's ID. The stored columns, the code and
the API use the same names (migration 0022 renamed the columns ``chain_id`` and ``request_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from chainotel_analyzer.model.span import Span, span_kind

MAX_TIMESTAMP_NS = 2**63 - 1
"""The last Unix time, in **ns**, that the store's ``DateTime64(9)`` columns (and Arrow's signed 64-bit
``timestamp[ns]``) hold: 2262-04-11T23:47:16.854775807Z."""

MAX_START_NS = (2**32 - 1) * 10**9 + 999_999_999
"""The last span start, in **ns**, the store keeps exactly: ``chain_metrics.minute`` is a
``DateTime`` (unsigned 32-bit seconds, to 2106-02-07T06:28:15Z), which would saturate later minutes
into one. A span starting after it is rejected on its own (partial success)."""

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
"""Stored ``span_kind`` values, indexed by the OTLP ``Span.SpanKind`` number."""

STATUS_CODES = ("unset", "ok", "error")
"""Stored ``status_code`` values, indexed by the OTLP ``Status.StatusCode`` number."""

_STRING = pa.string()
_STRING_MAP = pa.map_(pa.string(), pa.string())


@dataclass(frozen=True)
class Column:
    """One ``chain_history`` column: its ``name``, who fills it (``"decoder"``: the OTLP decoder's Arrow
    table, ``"writer"``: the span writer at INSERT, ``"default"``: ClickHouse's column DEFAULT) and the
    Arrow type it is inserted with (``None`` for ``"default"``)."""

    name: str
    filled_by: Literal["decoder", "writer", "default"]
    arrow: pa.DataType | None = None


CHAIN_HISTORY: tuple[Column, ...] = (
    Column("instance_id", "default"),
    Column("trace_id", "decoder", _STRING),
    Column("span_id", "decoder", _STRING),
    Column("parent_span_id", "decoder", _STRING),
    Column("service_name", "decoder", _STRING),
    Column("operation", "decoder", _STRING),
    Column("span_kind", "decoder", _STRING),
    Column("event_type", "decoder", _STRING),
    Column("timestamp", "decoder", pa.timestamp("ns", tz="UTC")),
    Column("duration_ns", "decoder", pa.uint64()),
    Column("endpoint", "decoder", _STRING),
    Column("user_id", "decoder", _STRING),
    Column("chain", "decoder", _STRING),
    Column("category", "decoder", _STRING),
    Column("status_code", "decoder", _STRING),
    Column("status_message", "decoder", _STRING),
    Column("error_context", "decoder", _STRING),
    Column("peer_service", "decoder", _STRING),
    Column("scope_name", "decoder", _STRING),
    Column("span_attributes", "decoder", _STRING_MAP),
    Column("resource_attributes", "decoder", _STRING_MAP),
    Column("ingested_at", "default"),
    Column("request_digest", "writer", pa.uint64()),
    Column("span_otlp", "decoder", pa.binary()),
    Column("resource_otlp", "decoder", pa.binary()),
    Column("scope_otlp", "decoder", pa.binary()),
    Column("insert_batch", "writer", pa.uint64()),
)
"""Every column of ``chain_history``, in the table's order (see the migrations for their meaning)."""

DECODED_SCHEMA = pa.schema([pa.field(c.name, c.arrow) for c in CHAIN_HISTORY if c.filled_by == "decoder"])
"""Schema of :attr:`DecodedSpans.table`: the columns the OTLP decoder fills, in table order."""

COLUMNS: tuple[str, ...] = tuple(DECODED_SCHEMA.names)
"""Names of :data:`DECODED_SCHEMA`, in order."""

INSERT_SCHEMA = pa.schema([pa.field(c.name, c.arrow) for c in CHAIN_HISTORY if c.filled_by != "default"])
"""Schema of the Arrow table the writer inserts (:func:`insert_table`)."""


@dataclass
class DecodedSpans:
    """The rows of one decoded OTLP request.

    ``table``: a ``pyarrow.Table`` with :data:`DECODED_SCHEMA` (``count`` rows), ``None`` when no span
    was valid; ``rejected``: number of spans refused; ``error_message``: why (first reasons), ``''``
    when none were. Pickles as one Arrow IPC stream (decoder processes send it to the analyzer).
    """

    table: pa.Table | None = None
    count: int = 0
    rejected: int = 0
    error_message: str = ""

    def __getstate__(self) -> dict:
        # one Arrow IPC stream: one buffer, read back without copying
        state = dict(self.__dict__)
        if self.table is not None:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.table.schema) as writer:
                writer.write_table(self.table)
            state["table"] = sink.getvalue()
        return state

    def __setstate__(self, state: dict) -> None:
        if state.get("table") is not None:
            state["table"] = pa.ipc.open_stream(state["table"]).read_all()
        self.__dict__.update(state)


def insert_table(requests: list[tuple[int, DecodedSpans]], batch: int = 0) -> pa.Table:
    """The Arrow table (:data:`INSERT_SCHEMA`) of one INSERT from ``[(request digest, decoded request)]``:
    each request's rows with its 64-bit digest in ``request_digest`` and the INSERT's ID ``batch`` in
    ``insert_batch``. Requests without rows are skipped; raises ``ValueError`` when none has rows."""
    tables = [
        spans.table.append_column("request_digest", pa.array([digest] * spans.count, pa.uint64()))
        for digest, spans in requests
        if spans.table is not None and spans.count
    ]
    if not tables:
        raise ValueError("no rows to insert")
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    table = table.append_column("insert_batch", pa.array([batch] * table.num_rows, pa.uint64()))
    return table.select(INSERT_SCHEMA.names)  # the table's column order (no copy)


SPAN_SELECT = (
    "span_id, parent_span_id, toString(service_name), toString(operation), "
    "toUnixTimestamp64Nano(timestamp) AS start_ns, start_ns + duration_ns, upper(span_kind), "
    "event_type = 'error', trace_id, toString(chain), toString(peer_service)"
)
"""``chain_history`` expressions in :class:`Span` field order, so a result row becomes a span by
:func:`span_from_row` alone — the same mapping as :func:`span_from_history`, done by ClickHouse."""

span_from_row = Span._make
"""A :class:`Span` from one result row of ``SELECT`` :data:`SPAN_SELECT`."""

EVENT_SELECT = (
    "instance_id, trace_id, span_id, parent_span_id, service_name, operation, "
    "span_kind, event_type, "
    "toUnixTimestamp64Nano(timestamp) AS start_unix_nano, duration_ns, endpoint, user_id, chain, category, "
    "status_code, status_message, error_context, peer_service, span_attributes, resource_attributes, span_otlp"
)
"""The ``chain_history`` columns a trace's event list shows (all but the ingest bookkeeping) and the stored span
(``span_otlp``, shown as its events and links); read with :data:`EVENT_FORMATS`."""

EVENT_FORMATS = {"instance_id": "string", "span_otlp": "bytes"}
"""clickhouse-connect ``column_formats`` of :data:`EVENT_SELECT`: ``instance_id`` as its UUID text
(``01234567-89ab-cdef-0123-456789abcdef``), ``span_otlp`` as the protobuf bytes."""

OTLP_SELECT = (
    "span_otlp, resource_otlp, scope_otlp, trace_id, span_id, parent_span_id, toString(operation), "
    "toString(span_kind), toUnixTimestamp64Nano(timestamp), duration_ns, toString(status_code), status_message, "
    "toString(scope_name), span_attributes, resource_attributes"
)
"""``chain_history`` expressions in :class:`~chainotel_analyzer.model.otlp_trace.StoredSpan` field order:
a result row becomes one by ``StoredSpan(*row)`` (the messages as bytes, see the reader)."""

_KIND_BY_STORED = {k: k.upper() for k in SPAN_KINDS}


def span_from_history(
    trace_id: str,
    span_id: str,
    parent_span_id: str,
    service: str,
    operation: str,
    kind: str,
    event_type: str,
    start_ns: int,
    duration_ns: int,
    chain: str = "",
    peer_service: str = "",
) -> Span:
    """A :class:`Span` from ``chain_history`` column values in Python (``timestamp`` the start in **ns**,
    ``duration_ns`` in **ns**, ``event_type`` ``"error"`` for status ERROR) — for rows read without
    :data:`SPAN_SELECT`, e.g. a decoded Arrow table."""
    return Span(
        span_id,
        parent_span_id,
        service,
        operation,
        start_ns,
        start_ns + duration_ns,
        _KIND_BY_STORED.get(kind) or span_kind(kind),
        event_type == "error",
        trace_id,
        chain,
        peer_service,
    )


DEFINITION_COLUMNS = (
    "id", "version", "name", "category", "description", "max_duration_ms", "definition",
    "source", "catalog_version", "updated_at", "is_deleted",
)  # fmt: skip
"""Columns of a ``chain_definitions`` (chain registry) row, in insert order."""
