"""Read-side SQL of the analysis endpoints — every query the analysis API runs is here.

All values reach ClickHouse as bound parameters (clickhouse-connect ``parameters=`` with the
server-side ``{name:Type}`` syntax); no SQL is ever built from request input. Times passed in
are Unix **nanoseconds** (``int``); rows come back as :class:`chainotel_analyzer.model.span.Span` or
plain dicts.

Tables (see ``analyzer/store/migrations``): ``chain_history`` (one row per span),
``chain_traces`` (per-trace index, aggregate on read), ``chain_metrics`` (per-minute RED
aggregates), ``chain_definitions`` (the registry, ReplacingMergeTree by version).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from clickhouse_connect.driver.client import Client

from chainotel_analyzer.model.rows import DEFINITION_COLUMNS, EVENT_SELECT, MAX_TIMESTAMP_NS, SPAN_SELECT, span_from_row
from chainotel_analyzer.model.span import Span, group_by_trace

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
        f"SELECT {SPAN_SELECT} FROM chain_history WHERE trace_id = {{trace_id:String}}",
        parameters={"trace_id": trace_id},
    ).result_rows
    return list(map(span_from_row, rows))


def trace_events(client: Client, trace_id: str) -> list[dict]:
    """``chain_history`` rows of one trace in time order (timestamp as RFC 3339 with ns, start
    also as ``start_unix_nano``); attribute maps included."""
    result = client.query(
        f"SELECT {EVENT_SELECT} FROM chain_history WHERE trace_id = {{trace_id:String}} "
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
        f"SELECT {SPAN_SELECT} FROM chain_history WHERE trace_id IN {{ids:Array(String)}}",
        parameters={"ids": [r[0] for r in picked]},
    ).result_rows
    return int(total), group_by_trace(map(span_from_row, rows))


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

def chain_definitions(client: Client, chain_id: str | None = None) -> list[dict]:
    """Current (non-deleted) definitions, newest version per ID, ordered by ID: ``{"id",
    "version", "source", "updated_at", "definition": {...}}``; only ``chain_id`` if given."""
    rows = client.query(
        "SELECT id, max(version) AS v, argMax(definition, version) AS d, argMax(source, version) AS s,"
        " argMax(updated_at, version) AS u, argMax(is_deleted, version) AS del FROM chain_definitions"
        " WHERE {all:Bool} OR id = {id:String} GROUP BY id HAVING del = 0 ORDER BY id",
        parameters={"all": chain_id is None, "id": chain_id or ""},
    ).result_rows
    return [
        {"id": r[0], "version": r[1], "source": r[3], "updated_at": r[4].isoformat(), "definition": json.loads(r[2])}
        for r in rows
    ]


def latest_version(client: Client, chain_id: str) -> tuple[int, bool] | None:
    """``(newest version, is_deleted)`` of ``chain_id``, ``None`` if it never existed."""
    rows = client.query(
        "SELECT max(version), argMax(is_deleted, version) FROM chain_definitions WHERE id = {id:String} GROUP BY id",
        parameters={"id": chain_id},
    ).result_rows
    return (int(rows[0][0]), bool(rows[0][1])) if rows else None


class RegistryConflict(Exception):
    """Another writer stored version ``version`` of chain ``chain_id`` first (answer 409: read again, retry)."""

    def __init__(self, chain_id: str, version: int):
        self.chain_id, self.version = chain_id, version
        super().__init__(f"chain {chain_id!r} was changed by another writer (version {version}); read it again and retry")


def insert_definition_row(client: Client, row: list) -> bool:
    """Insert one ``chain_definitions`` row (values in :data:`DEFINITION_COLUMNS` order) as version
    ``row[1]`` of chain ``row[0]`` — compare-and-set across processes: the INSERT's
    ``insert_deduplication_token`` is ``chain-definition:<id>:<version>``, so ClickHouse stores only
    the first row written for a version (deduplication window of migration 0005) and refuses later
    ones. Returns True when the stored row is this one (same definition, deletion flag and
    ``updated_at``), False when another writer's row won. Raises clickhouse-connect's errors."""
    chain_id, version = row[0], int(row[1])
    client.insert("chain_definitions", [row], column_names=DEFINITION_COLUMNS,
                  settings={"insert_deduplicate": 1, "insert_deduplication_token": f"chain-definition:{chain_id}:{version}"})  # fmt: skip
    stored = client.query(
        "SELECT definition, is_deleted, toUnixTimestamp64Milli(updated_at) FROM chain_definitions "
        "WHERE id = {id:String} AND version = {v:UInt32}",
        parameters={"id": chain_id, "v": version},
    ).result_rows
    mine = (row[6], int(row[10]), int(row[9].timestamp() * 1000))
    return any(tuple(r) == mine for r in stored) and len(stored) == 1


def write_definition(client: Client, doc: dict, version: int, deleted: bool = False) -> None:
    """Insert one registry row (``source = 'api'``) for the JSON-ready definition ``doc`` as ``version``.

    Raises :class:`RegistryConflict` when another writer (this or another analyzer process) stored
    that version first (:func:`insert_definition_row`)."""
    now = datetime.now(timezone.utc)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # DateTime64(3): compared after the read
    row = [doc["id"], version, doc.get("name", ""), doc.get("category", ""), doc.get("description", ""),
           doc.get("max_duration_ms"), json.dumps(doc, sort_keys=True), "api", "", now, 1 if deleted else 0]  # fmt: skip
    if not insert_definition_row(client, row):
        raise RegistryConflict(doc["id"], version)
