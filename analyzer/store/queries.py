"""Read-side SQL of the analysis endpoints — every query the analysis API runs is here.

All values reach ClickHouse as bound parameters (clickhouse-connect ``parameters=`` with the
server-side ``{name:Type}`` syntax); no SQL is ever built from request input. Times passed in
are Unix **nanoseconds** (``int``); rows come back as :class:`chainotel_analyzer.analysis.model.Span` or
plain dicts.

Tables (see ``analyzer/store/migrations``): ``chain_history`` (one row per span),
``chain_traces`` (per-trace index, aggregate on read), ``chain_metrics`` (per-minute RED
aggregates), ``chain_definitions`` (the registry, ReplacingMergeTree by version).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from clickhouse_connect.driver.client import Client

from chainotel_analyzer.analysis.model import Span
from chainotel_analyzer.store import MAX_TIMESTAMP_NS

_SPAN_COLUMNS = (
    "request_id, parent_span_id, toString(service_name), toString(operation), "
    "toUnixTimestamp64Nano(timestamp) AS start_ns, start_ns + duration_ns, upper(span_kind), "
    "event_type = 'error', trace_id, toString(chain), toString(peer_service)"
)
"""``chain_history`` columns in :class:`~chainotel_analyzer.analysis.model.Span` field order — the same
mapping as :func:`~chainotel_analyzer.analysis.model.span_from_history`, done by ClickHouse so that rows
become spans with ``Span._make`` alone."""

DEFAULT_MAX_TRACES = 1000
"""Traces analysed per window at most; larger windows are sampled by trace-ID hash (uniform,
deterministic). 1 000 traces put a per-trace mean within a few percent of its standard deviation
(standard error σ/√1000 ≈ 0.03 σ) and keep a bottleneck query over millions of spans near a second."""


TRACE_SPREAD_S = 3600
"""The longest a trace is assumed to last (first to last span start), in **seconds**. Window
queries read the per-trace index ``chain_traces`` only from ``since − TRACE_SPREAD_S`` to
``until + TRACE_SPREAD_S`` (its ``start`` minmax index skips the rest), so their cost follows the
window instead of the retention. A trace whose spans start more than an hour apart can be placed
by a later part of it (its earlier rows fall outside) or lose its late spans' end and errors."""

_INDEX_ROWS = " start >= {lo:DateTime64(9)} AND start < {hi:DateTime64(9)} "
"""``chain_traces`` rows that can belong to a trace starting in ``[since, until)``; binds the
parameters of :func:`_window_params`."""



def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 10**9, tz=timezone.utc).replace(microsecond=(ns % 10**9) // 1000)


def _window_params(since_ns: int, until_ns: int) -> dict:
    """``since``/``until`` of a window and the ``lo``/``hi`` bounds of :data:`_INDEX_ROWS` (Unix
    **ns** in, ``datetime`` out), clamped to DateTime64(9)'s range so the slack never overflows."""
    spread = TRACE_SPREAD_S * 10**9
    return {"since": _dt(since_ns), "until": _dt(until_ns), "lo": _dt(max(0, since_ns - spread)),
            "hi": _dt(min(MAX_TIMESTAMP_NS, until_ns + spread))}  # fmt: skip


def trace_spans(client: Client, trace_id: str) -> list[Span]:
    """Every span of trace ``trace_id`` (32 lowercase hex), ``[]`` if unknown."""
    rows = client.query(
        f"SELECT {_SPAN_COLUMNS} FROM chain_history WHERE trace_id = {{trace_id:String}}",
        parameters={"trace_id": trace_id},
    ).result_rows
    return list(map(Span._make, rows))


def trace_events(client: Client, trace_id: str) -> list[dict]:
    """``chain_history`` rows of one trace in time order (timestamp as RFC 3339 with ns, start
    also as ``start_unix_nano``); attribute maps included."""
    result = client.query(
        "SELECT chain_id, trace_id, request_id, parent_span_id, service_name, operation, span_kind, "
        "event_type, toUnixTimestamp64Nano(timestamp) AS start_unix_nano, duration_ns, endpoint, user_id, "
        "chain, category, status_code, status_message, error_context, peer_service, span_attributes, "
        "resource_attributes FROM chain_history WHERE trace_id = {trace_id:String} "
        "ORDER BY timestamp, request_id",
        parameters={"trace_id": trace_id},
    )
    out = []
    for row in result.named_results():
        row["chain_id"] = str(row["chain_id"])
        ns = row["start_unix_nano"]
        row["timestamp"] = _dt(ns).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 10**9:09d}Z"
        out.append(row)
    return out


def window_traces(
    client: Client,
    since_ns: int,
    until_ns: int,
    chain: str | None = None,
    max_traces: int = DEFAULT_MAX_TRACES,
) -> tuple[int, dict[str, list[Span]]]:
    """Traces whose first span starts in ``[since_ns, until_ns)`` (optionally of one ``chain``).

    Returns ``(traces in the window, {trace_id: [Span, ...]})`` where the dict holds at most
    ``max_traces`` traces, chosen by the smallest ``cityHash64(trace_id)`` (a uniform,
    deterministic sample) when the window has more.
    """
    picked = client.query(
        "SELECT trace_id, count() OVER () AS total FROM ("
        " SELECT trace_id FROM chain_traces WHERE" + _INDEX_ROWS + "GROUP BY trace_id"
        " HAVING min(start) >= {since:DateTime64(9)} AND min(start) < {until:DateTime64(9)}"
        " AND ({any_chain:Bool} OR max(chain) = {chain:String}))"
        " ORDER BY cityHash64(trace_id) LIMIT {limit:UInt32}",
        parameters={**_window_params(since_ns, until_ns), "chain": chain or "", "any_chain": chain is None,
                    "limit": max_traces},  # fmt: skip
    ).result_rows
    if not picked:
        return 0, {}
    total = picked[0][1]
    rows = client.query(
        f"SELECT {_SPAN_COLUMNS} FROM chain_history WHERE trace_id IN {{ids:Array(String)}}",
        parameters={"ids": [r[0] for r in picked]},
    ).result_rows
    traces: dict[str, list[Span]] = {}
    for span in map(Span._make, rows):
        bucket = traces.get(span[8])
        if bucket is None:
            traces[span[8]] = [span]
        else:
            bucket.append(span)
    return int(total), traces


def chain_figures(
    client: Client, since_ns: int, until_ns: int, slas: dict[str, float | None] | None = None
) -> list[dict]:
    """Per chain, over the traces starting in ``[since_ns, until_ns)`` (read from the per-trace
    index ``chain_traces``): ``chain``, ``traces``, ``error_traces`` (any error span),
    ``root_error_traces`` (root span failed), ``within_sla`` (duration ≤ ``slas[chain]`` ms; all
    traces when the chain has no SLA), ``avg_ms``, ``p50_ms``, ``p95_ms``, ``p99_ms`` of trace
    durations (exact, linear interpolation like numpy's default)."""
    slas = {k: v for k, v in (slas or {}).items() if v is not None}
    rows = client.query(
        "SELECT chain, count() AS traces, countIf(errs > 0) AS error_traces,"
        " countIf(errs > 0 AND trace_id IN (SELECT trace_id FROM chain_history WHERE parent_span_id = ''"
        "  AND event_type = 'error' AND timestamp >= {lo:DateTime64(9)}"
        "  AND timestamp < {until:DateTime64(9)})) AS root_error_traces,"
        " countIf(dur_ms <= transform(chain, {ids:Array(String)}, {slas:Array(Float64)}, inf)) AS within_sla,"
        " avg(dur_ms) AS avg_ms, quantilesExactInclusive(0.5, 0.95, 0.99)(dur_ms) AS q FROM ("
        "  SELECT trace_id, max(chain) AS chain, min(start) AS s, sum(error_count) AS errs,"
        "  (toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(s)) / 1e6 AS dur_ms"
        "  FROM chain_traces WHERE" + _INDEX_ROWS + "GROUP BY trace_id"
        "  HAVING s >= {since:DateTime64(9)} AND s < {until:DateTime64(9)})"
        " GROUP BY chain ORDER BY chain",
        parameters={**_window_params(since_ns, until_ns), "ids": list(slas),
                    "slas": [float(v) for v in slas.values()]},  # fmt: skip
    ).named_results()
    out = []
    for r in rows:
        q = r.pop("q")
        out.append({**r, "p50_ms": q[0], "p95_ms": q[1], "p99_ms": q[2]})
    return out


def chain_buckets(client: Client, since_ns: int, until_ns: int, bucket_s: int) -> list[dict]:
    """Per chain and bucket of ``bucket_s`` seconds from ``since_ns`` (from the per-trace index
    ``chain_traces``): ``chain``, ``bucket`` (index), ``traces``, ``errors`` (traces with an error
    span), ``p95_ms`` of trace durations."""
    return list(client.query(
        "SELECT chain, intDiv(toUnixTimestamp64Nano(s) - {since_ns:Int64}, {bucket_ns:Int64}) AS bucket,"
        " count() AS traces, countIf(errs > 0) AS errors, quantileExactInclusive(0.95)(dur_ms) AS p95_ms FROM ("
        "  SELECT trace_id, max(chain) AS chain, min(start) AS s, sum(error_count) AS errs,"
        "  (toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(s)) / 1e6 AS dur_ms"
        "  FROM chain_traces WHERE" + _INDEX_ROWS + "GROUP BY trace_id"
        "  HAVING s >= {since:DateTime64(9)} AND s < {until:DateTime64(9)})"
        " GROUP BY chain, bucket",
        parameters={**_window_params(since_ns, until_ns), "since_ns": since_ns,
                    "bucket_ns": bucket_s * 10**9},  # fmt: skip
    ).named_results())


def service_buckets(client: Client, since_ns: int, until_ns: int, bucket_s: int) -> list[dict]:
    """Per service and bucket (from ``chain_metrics``): ``service``, ``bucket``, ``calls``,
    ``errors``, ``p95_ms`` (t-digest)."""
    return list(client.query(
        "SELECT service_name AS service, intDiv(toUnixTimestamp(minute) - {since_s:Int64}, {bucket_s:Int64}) AS bucket,"
        " sum(calls) AS calls, sum(errors) AS errors,"
        " quantileTDigestMerge(0.95)(duration_quantiles) / 1e6 AS p95_ms FROM chain_metrics"
        " WHERE minute >= toDateTime({since_s:Int64}) AND minute < toDateTime({until_s:Int64})"
        " GROUP BY service, bucket",
        parameters={"since_s": since_ns // 10**9, "until_s": until_ns // 10**9, "bucket_s": bucket_s},
    ).named_results())


# --- chain registry (chain_definitions) ---------------------------------------------------------

DEFINITION_COLUMNS = (
    "id", "version", "name", "category", "description", "max_duration_ms", "definition",
    "source", "catalog_version", "updated_at", "is_deleted",
)  # fmt: skip


def chain_definitions(client: Client, chain_id: str | None = None) -> list[dict]:
    """Current (non-deleted) definitions, newest version per ID, ordered by ID: ``{"id",
    "version", "source", "updated_at", "definition": {...}}``; only ``chain_id`` if given."""
    rows = client.query(
        "SELECT id, max(version) AS v, argMax(definition, version) AS d, argMax(source, version) AS s,"
        " argMax(updated_at, version) AS u, argMax(is_deleted, version) AS del,"
        " argMax(changed_by, version) AS by FROM chain_definitions"
        " WHERE {all:Bool} OR id = {id:String} GROUP BY id HAVING del = 0 ORDER BY id",
        parameters={"all": chain_id is None, "id": chain_id or ""},
    ).result_rows
    return [
        {"id": r[0], "version": r[1], "source": r[3], "updated_at": r[4].isoformat(), "changed_by": r[6],
         "definition": json.loads(r[2])}
        for r in rows
    ]


def latest_version(client: Client, chain_id: str) -> tuple[int, bool] | None:
    """``(newest version, is_deleted)`` of ``chain_id``, ``None`` if it never existed."""
    rows = client.query(
        "SELECT max(version), argMax(is_deleted, version) FROM chain_definitions WHERE id = {id:String} GROUP BY id",
        parameters={"id": chain_id},
    ).result_rows
    return (int(rows[0][0]), bool(rows[0][1])) if rows else None


def write_definition(client: Client, doc: dict, version: int, deleted: bool = False, changed_by: str = "") -> None:
    """Insert one registry row (``source = 'api'``) for the JSON-ready definition ``doc``; ``changed_by``
    names the caller (its token entry's name)."""
    client.insert(
        "chain_definitions",
        [[doc["id"], version, doc.get("name", ""), doc.get("category", ""), doc.get("description", ""),
          doc.get("max_duration_ms"), json.dumps(doc, sort_keys=True), "api", "", datetime.now(timezone.utc),
          1 if deleted else 0, changed_by]],  # fmt: skip
        column_names=(*DEFINITION_COLUMNS, "changed_by"),
    )
