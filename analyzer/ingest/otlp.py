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
- attribute values are stored as strings: strings as is, bool ``true``/``false``, ints in decimal,
  doubles with ``repr``, arrays/kvlists/bytes as JSON (bytes base64).
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from chainotel_analyzer.model.rows import (
    DECODED_SCHEMA, MAX_START_NS, MAX_TIMESTAMP_NS, SPAN_KINDS, STATUS_CODES, DecodedSpans,
)
from chainotel import attributes as ca

_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name")


@lru_cache(maxsize=1)
def _catalog_categories() -> dict[str, str]:
    """chain.id → category from the chainotel catalog ({} if the catalog cannot be loaded)."""
    try:
        from chainotel.catalog import default_catalog

        return {c.id: getattr(c.category, "value", str(c.category)) for c in default_catalog().chains}
    except Exception:  # noqa: BLE001 - the category is a convenience; a broken catalog must not stop ingest
        return {}


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
        return repr(value.double_value)
    if kind is None:
        return ""
    return json.dumps(_any_value_to_py(value), separators=(",", ":"))


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
_SPECIAL = frozenset((_ROUTE, _USER, _CHAIN, _CATEGORY, *_PEER_KEYS))
_STRING = pa.string()


def _map_array(offsets: list[int], keys: list[str], values: list[str]) -> pa.MapArray:
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(keys, _STRING), pa.array(values, _STRING))


def decode_request(request: ExportTraceServiceRequest) -> DecodedSpans:
    """Turn every valid span of ``request`` into one row of ``chain_history`` columns (see module doc).

    Cost matters here (it runs for every span received): one pass over each span's attributes fills
    flat key/value lists for the map column and picks out the attributes with their own columns.
    """
    trace_ids, span_ids, parents, services, names, kinds_col, events_col = [], [], [], [], [], [], []
    starts, durations, endpoints, users, chains, categories, statuses, status_msgs = [], [], [], [], [], [], [], []
    errors, peers, scopes = [], [], []
    s_off, s_keys, s_vals = [0], [], []
    r_off, r_keys, r_vals, r_index = [0], [], [], []
    reasons: list[str] = []
    rejected = 0
    catalog = None
    kinds, statuses_names = SPAN_KINDS, STATUS_CODES
    special = _SPECIAL
    zero_trace, zero_span, max_ns = _ZERO_TRACE, _ZERO_SPAN, MAX_TIMESTAMP_NS
    for ri, rs in enumerate(request.resource_spans):
        rattrs = _attrs(rs.resource.attributes)
        service = rattrs.get("service.name") or "unknown_service"
        r_keys.extend(rattrs.keys())
        r_vals.extend(rattrs.values())
        r_off.append(len(r_keys))
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for span in ss.spans:
                tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if (
                    len(tid) != 16 or tid == zero_trace or len(sid) != 8 or sid == zero_span or (pid and len(pid) != 8)
                    or start > MAX_START_NS or end > max_ns
                ):  # fmt: skip
                    rejected += 1
                    if len(reasons) < 3:
                        reasons.append(_why(span))
                    continue
                route = user = chain = category = peer = ""
                for kv in span.attributes:
                    key = kv.key
                    v = kv.value
                    text = v.string_value
                    if not text and v.WhichOneof("value") != "string_value":
                        text = any_value_to_str(v)
                    s_keys.append(key)
                    s_vals.append(text)
                    if key in special:
                        if key == _ROUTE:
                            route = text
                        elif key == _CHAIN:
                            chain = text
                        elif key == _CATEGORY:
                            category = text
                        elif key == _USER:
                            user = text
                        elif not peer or key == "peer.service":
                            peer = text
                s_off.append(len(s_keys))
                r_index.append(ri)
                kind = span.kind
                status = span.status
                code = status.code
                name = span.name
                if chain and not category:
                    if catalog is None:
                        catalog = _catalog_categories()
                    category = catalog.get(chain, "")
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
                statuses.append(statuses_names[code] if 0 <= code < 3 else "unset")
                status_msgs.append(status.message)
                errors.append(_error_context(span.events) if span.events else "")
                peers.append(peer if kind == 3 or kind == 4 else "")
                scopes.append(scope)
    out = DecodedSpans(count=len(trace_ids), rejected=rejected)
    if rejected:
        more = "; ..." if rejected > len(reasons) else ""
        out.error_message = f"{rejected} span(s) rejected: " + "; ".join(reasons) + more
    if out.count:
        s = _STRING
        out.table = pa.Table.from_arrays(
            [
                pa.array(trace_ids, s), pa.array(span_ids, s), pa.array(parents, s), pa.array(services, s),
                pa.array(names, s), pa.array(kinds_col, s), pa.array(events_col, s),
                pa.array(starts, pa.timestamp("ns", tz="UTC")), pa.array(durations, pa.uint64()),
                pa.array(endpoints, s), pa.array(users, s), pa.array(chains, s), pa.array(categories, s),
                pa.array(statuses, s), pa.array(status_msgs, s), pa.array(errors, s), pa.array(peers, s),
                pa.array(scopes, s), _map_array(s_off, s_keys, s_vals),
                _map_array(r_off, r_keys, r_vals).take(pa.array(r_index, pa.int32())),
            ],
            schema=DECODED_SCHEMA,
        )  # fmt: skip
    return out


def _why(span) -> str:
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    label = f"span {sid.hex() or '<empty>'} ({span.name!r})"
    if len(tid) != 16:
        return f"{label}: trace_id must be 16 bytes, got {len(tid)}"
    if tid == _ZERO_TRACE:
        return f"{label}: trace_id is all zero"
    if len(sid) != 8:
        return f"{label}: span_id must be 8 bytes, got {len(sid)}"
    if sid == _ZERO_SPAN:
        return f"{label}: span_id is all zero"
    if pid and len(pid) != 8:
        return f"{label}: parent_span_id must be empty or 8 bytes, got {len(pid)}"
    if span.start_time_unix_nano > MAX_START_NS and span.start_time_unix_nano <= MAX_TIMESTAMP_NS:
        return (f"{label}: start_time_unix_nano {span.start_time_unix_nano} is after 2106-02-07T06:28:15Z, "
                "the last minute the per-minute metrics hold")  # fmt: skip
    field = "start_time_unix_nano" if span.start_time_unix_nano > MAX_TIMESTAMP_NS else "end_time_unix_nano"
    return f"{label}: {field} {getattr(span, field)} is after 2262-04-11 (must be below 2^63 ns)"

