"""Decode an OTLP ``ExportTraceServiceRequest`` into ``chain_history`` columns.

The output is a column-oriented ``pyarrow.Table`` with the decoder's columns of the row format
(:data:`chainotel_analyzer.model.rows.DECODED_SCHEMA`), inserted by the writer with clickhouse-connect's
``insert_arrow`` (ClickHouse parses the Arrow columns in C++; no per-row Python objects are built on
either side). It travels from decoder processes to the analyzer as an Arrow IPC stream
(:class:`~chainotel_analyzer.model.rows.DecodedSpans` pickling).

Rules (OTLP specification, opentelemetry-proto ``trace/v1/trace.proto``):

- a span is rejected (and counted in ``partial_success.rejected_spans``) when its ``trace_id`` is not
  16 bytes or is all zero, its ``span_id`` is not 8 bytes or is all zero, its ``parent_span_id``
  is neither empty nor 8 bytes, or its ``start_time_unix_nano`` or ``end_time_unix_nano`` is 2^63 ns
  or more (after 2262-04-11: beyond ``DateTime64(9)`` and a signed 64-bit nanosecond count) — the
  rest of the request is stored;
- a span that ends before it starts is stored with ``duration_ns`` 0;
- ``service.name`` falls back to ``unknown_service`` as the SDK's resource detector does;
- attribute values are stored as strings in the ``*_attributes`` maps: strings as is, bool
  ``true``/``false``, ints in decimal, doubles with ``repr``, arrays/kvlists/bytes as JSON (bytes
  base64); non-finite doubles as the OTLP/JSON mapping spells them (``NaN``, ``Infinity``,
  ``-Infinity``; inside JSON as strings), so every JSON text is valid JSON;
- the span, its resource and its scope are also kept whole, as the protobuf messages they arrived as
  (``span_otlp``, ``resource_otlp``, ``scope_otlp``; migration 0006), the span without the IDs and
  start time its columns hold: nothing acknowledged is lost.
"""

from __future__ import annotations

import base64
import json
import math
import re
from functools import lru_cache

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from chainotel_analyzer.model.rows import (
    DECODED_SCHEMA, MAX_START_NS, MAX_TIMESTAMP_NS, SPAN_KINDS, STATUS_CODES, DecodedSpans,
)
from chainotel import attributes as ca

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name")
# What a client span calls, by the semantic conventions: a database or cache (db.system, now
# db.system.name) or a model provider (gen_ai.provider.name, formerly gen_ai.system). The peer of
# such a span is named "<system> on <server.address>" (e.g. "postgresql on db-host") unless it has
# an explicit peer.service.
_SYSTEM_KEYS = ("db.system.name", "db.system", "gen_ai.provider.name", "gen_ai.system")


@lru_cache(maxsize=256)
def _letter_category(chain: str) -> str:
    """The category chain ID ``chain`` names by its letter (``B3`` → ``service_communication``), ``""``
    for a value that is not a chain ID. Every catalog and registry chain's category is its ID's
    letter (validated: :class:`chainotel.catalog.Category`), so this is its category; it fills in
    ``chain.category`` for a span that carries ``chain.id`` alone (the distro's
    ``CHAINOTEL_SPAN_ATTRIBUTES=minimal``)."""
    from chainotel.catalog import Category
    from chainotel.catalog.models import CHAIN_ID_PATTERN

    return Category.from_letter(chain[0]).value if re.fullmatch(CHAIN_ID_PATTERN, chain) else ""


def any_value_to_str(value: AnyValue) -> str:
    """An OTLP ``AnyValue`` as the string stored in a ``Map(String, String)`` column."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return _double(value.double_value)
    if kind is None:
        return ""
    return json.dumps(_any_value_to_py(value), separators=(",", ":"), allow_nan=False)


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
"""Non-finite doubles as the OTLP/JSON (protobuf JSON) mapping writes them."""


def _double(x: float) -> str:
    """``x`` as stored: ``repr`` for a finite double, else ``NaN`` / ``Infinity`` / ``-Infinity``."""
    return repr(x) if math.isfinite(x) else _NON_FINITE[repr(x)]


def _any_value_to_py(value: AnyValue):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value_to_py(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value_to_py(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return None
    if kind == "double_value" and not math.isfinite(value.double_value):
        return _NON_FINITE[repr(value.double_value)]
    return getattr(value, kind)


def _attrs(kvs) -> dict[str, str]:
    out = {}
    for kv in kvs:
        v = kv.value
        text = v.string_value
        if not text and v.WhichOneof("value") != "string_value":
            text = any_value_to_str(v)
        out[kv.key] = text
    return out


def _error_context(events) -> str:
    parts = []
    for ev in events:
        if ev.name != "exception":
            continue
        a = _attrs(ev.attributes)
        text = f"{a.get('exception.type', '')}: {a.get('exception.message', '')}"
        stack = a.get("exception.stacktrace")
        parts.append(f"{text}\n{stack}" if stack else text)
    return "\n---\n".join(parts)


_ROUTE, _USER, _CHAIN, _CATEGORY = "http.route", "enduser.id", ca.CHAIN_ID, ca.CHAIN_CATEGORY
_SPECIAL = frozenset((_ROUTE, _USER, _CHAIN, _CATEGORY, *_PEER_KEYS, *_SYSTEM_KEYS))
_STRING = pa.string()


def _map_array(offsets: list[int], keys: list[str], values: list[str]) -> pa.MapArray:
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(keys, _STRING), pa.array(values, _STRING))


def decode_request(
    request: ExportTraceServiceRequest, rejected: int = 0, reasons: list[str] | None = None
) -> DecodedSpans:
    """Turn every valid span of ``request`` into one row of ``chain_history`` columns (see module doc);
    invalid spans are counted and the first three reasons kept — after ``rejected`` spans refused
    before (by :func:`chainotel_analyzer.ingest.otlp_wire.salvage_request`) with their ``reasons``."""
    cols = _Columns()
    reasons = list(reasons or [])[:3]
    for rs in request.resource_spans:
        rattrs = _attrs(rs.resource.attributes)
        service = rattrs.get("service.name") or "unknown_service"
        resource = cols.add_resource(rattrs)
        resource_msg = ResourceSpans(resource=rs.resource, schema_url=rs.schema_url).SerializeToString()
        for ss in rs.scope_spans:
            scope = ss.scope.name
            scope_msg = ScopeSpans(scope=ss.scope, schema_url=ss.schema_url).SerializeToString()
            for span in cols.add_spans(ss.spans, service, scope, resource, resource_msg, scope_msg):  # the refused ones
                rejected += 1
                if len(reasons) < 3:
                    reasons.append(f"span {span.span_id.hex() or '<empty>'} ({span.name!r}): {_reject_reason(span)}")
    out = DecodedSpans(count=cols.count, rejected=rejected, table=cols.table())
    if rejected:
        more = "; ..." if rejected > len(reasons) else ""
        out.error_message = f"{rejected} span(s) rejected: " + "; ".join(reasons) + more
    return out


def _reject_reason(span) -> str | None:
    """Why ``span`` cannot be stored (the module's rejection rules), ``None`` when it can."""
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if len(tid) != 16:
        return f"trace_id must be 16 bytes, got {len(tid)}"
    if tid == _ZERO_TRACE:
        return "trace_id is all zero"
    if len(sid) != 8:
        return f"span_id must be 8 bytes, got {len(sid)}"
    if sid == _ZERO_SPAN:
        return "span_id is all zero"
    if pid and len(pid) != 8:
        return f"parent_span_id must be empty or 8 bytes, got {len(pid)}"
    if start > MAX_TIMESTAMP_NS or end > MAX_TIMESTAMP_NS:
        field, value = ("start_time_unix_nano", start) if start > MAX_TIMESTAMP_NS else ("end_time_unix_nano", end)
        return f"{field} {value} is after 2262-04-11 (must be below 2^63 ns)"
    if start > MAX_START_NS:
        return f"start_time_unix_nano {start} is after 2106-02-07T06:28:15Z, the last minute the per-minute metrics hold"
    return None


def _span_attributes(attributes, keys: list[str], values: list[str]) -> tuple[str, str, str, str, str]:
    """One pass over a span's ``attributes``: append each key and its stored text to ``keys``/``values``
    (the ``span_attributes`` map column) and return the attributes with columns of their own —
    ``(http.route, enduser.id, chain.id, chain.category, peer)``. The peer is ``peer.service``, else
    ``server.address`` / ``net.peer.name``, prefixed ``"<system> on "`` for a database or model
    provider call (``db.system.name``, ``gen_ai.provider.name``, …) without ``peer.service``."""
    route = user = chain = category = peer = system = ""
    named = False  # peer.service given
    special = _SPECIAL
    for kv in attributes:
        key = kv.key
        v = kv.value
        text = v.string_value
        if not text and v.WhichOneof("value") != "string_value":
            text = any_value_to_str(v)
        keys.append(key)
        values.append(text)
        if key in special:
            if key == _ROUTE:
                route = text
            elif key == _CHAIN:
                chain = text
            elif key == _CATEGORY:
                category = text
            elif key == _USER:
                user = text
            elif key in _SYSTEM_KEYS:
                system = system or text
            elif key == "peer.service":
                peer, named = text, True
            elif not peer:
                peer = text
    if system and not named:
        peer = f"{system} on {peer}" if peer else system
    return route, user, chain, category, peer


class _Columns:
    """The decoder's ``chain_history`` columns being filled, one list per non-map column of
    :data:`~chainotel_analyzer.model.rows.DECODED_SCHEMA` (in its order); the attribute maps as flat
    key/value lists with offsets (resource maps once per resource, taken per span at the end)."""

    def __init__(self):
        self.scalars: tuple[list, ...] = tuple([] for f in DECODED_SCHEMA if not pa.types.is_map(f.type))
        self.s_off, self.s_keys, self.s_vals = [0], [], []
        self.r_off, self.r_keys, self.r_vals, self.r_index = [0], [], [], []

    @property
    def count(self) -> int:
        return len(self.scalars[0])

    def add_resource(self, rattrs: dict[str, str]) -> int:
        """Record a resource's attributes; returns its index for :meth:`add_spans`."""
        self.r_keys.extend(rattrs.keys())
        self.r_vals.extend(rattrs.values())
        self.r_off.append(len(self.r_keys))
        return len(self.r_off) - 2

    def add_spans(self, spans, service: str, scope: str, resource: int, resource_msg: bytes, scope_msg: bytes) -> list:
        """Append the storable spans of one scope (``resource_msg``/``scope_msg``: the serialized
        ``ResourceSpans``/``ScopeSpans`` without their children); return the others (:func:`_reject_reason` says why:
        the test below is its rules as one expression, for speed). Cost matters here (it runs for every
        span received): the column appends are bound once per scope, and one pass over each span's
        attributes (:func:`_span_attributes`) fills the map column and picks out the attributes with
        their own columns."""
        (trace_ids, span_ids, parents, services, names, kinds_col, events_col, starts, durations, endpoints,
         users, chains, categories, statuses, status_msgs, errors, peers, scopes, span_msgs, resource_msgs,
         scope_msgs) = self.scalars  # fmt: skip
        s_off, s_keys, s_vals, r_index = self.s_off, self.s_keys, self.s_vals, self.r_index
        kinds, codes, zero_span = SPAN_KINDS, STATUS_CODES, _ZERO_SPAN
        refused, zero_trace, max_ns = [], _ZERO_TRACE, MAX_TIMESTAMP_NS
        for span in spans:
            tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
            start, end = span.start_time_unix_nano, span.end_time_unix_nano
            if (
                len(tid) != 16 or tid == zero_trace or len(sid) != 8 or sid == zero_span or (pid and len(pid) != 8)
                or start > MAX_START_NS or end > max_ns
            ):  # fmt: skip
                refused.append(span)
                continue
            route, user, chain, category, peer = _span_attributes(span.attributes, s_keys, s_vals)
            s_off.append(len(s_keys))
            r_index.append(resource)
            if chain and not category:
                category = _letter_category(chain)
            kind, status, name = span.kind, span.status, span.name
            code = status.code
            trace_ids.append(tid.hex())
            span_ids.append(sid.hex())
            parents.append(pid.hex() if pid and pid != zero_span else "")
            services.append(service)
            names.append(name)
            kinds_col.append(kinds[kind] if 0 <= kind < 6 else "unspecified")
            events_col.append("error" if code == 2 else "complete")
            starts.append(start)
            durations.append(end - start if end > start else 0)
            endpoints.append(route or name)
            users.append(user)
            chains.append(chain)
            categories.append(category)
            statuses.append(codes[code] if 0 <= code < 3 else "unset")
            status_msgs.append(status.message)
            errors.append(_error_context(span.events) if span.events else "")
            peers.append(peer if kind == 3 or kind == 4 else "")
            scopes.append(scope)
            span_msgs.append(_stored_span(span))
            resource_msgs.append(resource_msg)
            scope_msgs.append(scope_msg)
        return refused

    def table(self) -> pa.Table | None:
        """The columns as a ``pyarrow.Table`` of :data:`~chainotel_analyzer.model.rows.DECODED_SCHEMA`,
        ``None`` without rows."""
        if not self.count:
            return None
        maps = {
            "span_attributes": _map_array(self.s_off, self.s_keys, self.s_vals),
            "resource_attributes": _map_array(self.r_off, self.r_keys, self.r_vals).take(pa.array(self.r_index, pa.int32())),
        }
        scalars = iter(self.scalars)
        arrays = [maps[f.name] if f.name in maps else pa.array(next(scalars), f.type) for f in DECODED_SCHEMA]
        return pa.Table.from_arrays(arrays, schema=DECODED_SCHEMA)


def _stored_span(span) -> bytes:
    """``span_otlp`` of ``span``: its message without what its own columns hold exactly (trace ID, span
    ID, start time, and a parent span ID that is not all zero) — those are random or unique bytes that
    would be stored twice. :func:`chainotel_analyzer.model.otlp_trace.trace_request` puts them back."""
    slim = Span()
    slim.CopyFrom(span)
    slim.ClearField("trace_id")
    slim.ClearField("span_id")
    slim.ClearField("start_time_unix_nano")
    if slim.parent_span_id != _ZERO_SPAN:
        slim.ClearField("parent_span_id")
    return slim.SerializeToString()
