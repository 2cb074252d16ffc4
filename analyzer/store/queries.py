"""The read side of the store: :class:`ClickHouseTraceReader` (every query the analysis API runs) and
:class:`ClickHouseChainRegistry` (the chain registry), the implementations of
:mod:`chainotel_analyzer.store.interfaces` over ClickHouse.

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
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from clickhouse_connect.driver.client import Client

from chainotel.catalog import Catalog

from chainotel_analyzer.model.otlp_trace import StoredSpan, span_details
from chainotel_analyzer.model.rows import DEFINITION_COLUMNS, EVENT_FORMATS, EVENT_SELECT, OTLP_SELECT, MAX_TIMESTAMP_NS, SPAN_SELECT, span_from_row
from chainotel_analyzer.model.span import Span, group_by_trace
from chainotel_analyzer.store.catalog import seed_definitions
from chainotel_analyzer.store.definitions import insert_definition_row
from chainotel_analyzer.store.interfaces import DEFAULT_MAX_TRACES, ChainExists, Instance, InstanceQuery, RegistryConflict, UnknownChain

TRACE_SPREAD_S = 3600
"""The longest a trace is assumed to last (first to last span start), in **seconds**. Window
queries read the per-trace index ``chain_traces`` only from ``since − TRACE_SPREAD_S`` to
``until + TRACE_SPREAD_S`` (its ``start`` minmax index skips the rest), so their cost follows the
window instead of the retention. A trace whose spans start more than an hour apart can be placed
by a later part of it (its earlier rows fall outside) or lose its late spans' end and errors."""

_INDEX_ROWS = " start >= {lo:DateTime64(9)} AND start < {hi:DateTime64(9)} "
"""``chain_traces`` rows that can belong to a trace starting in ``[since, until)``; binds the
parameters of :func:`_window_params`."""

_REAL_TRACES = " AND ({synthetic:Bool} OR max(synthetic) = 0) "
"""In a ``HAVING`` over ``chain_traces`` grouped by trace: only real traffic unless the ``synthetic``
parameter is true (a synthetic probe's trace has ``synthetic`` = 1, migration 0020)."""

_REAL_SPANS = " AND ({synthetic:Bool} OR synthetic = 0) "
"""In a ``WHERE`` over ``chain_metrics``: only the spans of real traffic unless ``synthetic`` is true."""



def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 10**9, tz=timezone.utc).replace(microsecond=(ns % 10**9) // 1000)


def _window_params(since_ns: int, until_ns: int) -> dict:
    """``since``/``until`` of a window and the ``lo``/``hi`` bounds of :data:`_INDEX_ROWS` (Unix
    **ns** in, ``datetime`` out), clamped to DateTime64(9)'s range so the slack never overflows."""
    spread = TRACE_SPREAD_S * 10**9
    return {"since": _dt(since_ns), "until": _dt(until_ns), "lo": _dt(max(0, since_ns - spread)),
            "hi": _dt(min(MAX_TIMESTAMP_NS, until_ns + spread))}  # fmt: skip


_PER_TRACE = (
    "SELECT trace_id, max(chain) AS chain, min(start) AS s, sum(error_count) AS errs,"
    " (toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(s)) / 1e6 AS dur_ms"
    " FROM chain_traces WHERE" + _INDEX_ROWS + "GROUP BY trace_id"
    " HAVING s >= {since:DateTime64(9)} AND s < {until:DateTime64(9)}" + _REAL_TRACES
)
"""One row per trace starting in the window (``trace_id``, ``chain``, start ``s``, error spans ``errs``,
``dur_ms``), from the per-trace index, synthetic probe traces only when asked for; binds :func:`_figure_params`."""

_FIGURES = (
    "count() AS traces, countIf(errs > 0) AS error_traces,"
    " countIf(errs > 0 AND trace_id IN (SELECT trace_id FROM chain_history WHERE parent_span_id = ''"
    "  AND event_type = 'error' AND timestamp >= {lo:DateTime64(9)}"
    "  AND timestamp < {until:DateTime64(9)})) AS root_error_traces,"
    " countIf(dur_ms <= transform(chain, {ids:Array(String)}, {slas:Array(Float64)}, inf)) AS within_sla,"
    " avg(dur_ms) AS avg_ms, quantilesExactInclusive(0.5, 0.95, 0.99)(dur_ms) AS q"
)
"""The figures of :meth:`ClickHouseTraceReader.chain_figures` over rows of :data:`_PER_TRACE`."""


def _figure_params(since_ns: int, until_ns: int, slas: dict[str, float | None] | None,
                   include_synthetic: bool = False) -> dict:
    slas = {k: v for k, v in (slas or {}).items() if v is not None}
    return {**_window_params(since_ns, until_ns), "ids": list(slas), "slas": [float(v) for v in slas.values()],
            "synthetic": include_synthetic}  # fmt: skip


def _as_bytes(value) -> bytes:
    """A String column read back: clickhouse-connect gives ``str`` unless asked for bytes."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def _with_quantiles(rows) -> list[dict]:
    """Rows with ``q`` (``[p50, p95, p99]`` of ``quantilesExactInclusive(0.5, 0.95, 0.99)``, **ms**) spread
    into ``p50_ms``, ``p95_ms``, ``p99_ms``."""
    out = []
    for r in rows:
        q = r.pop("q")
        out.append({**r, "p50_ms": q[0], "p95_ms": q[1], "p99_ms": q[2]})
    return out


READ_SESSIONS = 4
"""Store sessions a :class:`ClickHouseTraceReader` opens at most. A clickhouse-connect client runs
one query at a time, so with one session concurrent requests (and the console's sections, which
read concurrently) wait for each other; with a few, a query runs while Python analyses the result
of another."""


class SessionPool:
    """At most ``limit`` clickhouse-connect sessions: ``first``, and more opened by ``connect`` (e.g.
    :meth:`chainotel_analyzer.store.client.Store.new_client`) when every open one is busy; a caller
    beyond ``limit`` waits for a free one. Without ``connect`` this is ``first`` alone.

    Example::

        pool = SessionPool(store.client, store.new_client)
        with pool.session() as client:
            client.query("SELECT 1")
    """

    def __init__(self, first: Client, connect: Callable[[], Client] | None = None, limit: int = READ_SESSIONS):
        self._idle = [first]
        self._connect = connect
        self._open = 1
        self._limit = limit if connect is not None else 1
        self._cond = threading.Condition()

    @contextmanager
    def session(self) -> Iterator[Client]:
        """A session for the caller alone until the block ends; raises what ``connect`` raises."""
        with self._cond:
            while not self._idle and self._open >= self._limit:
                self._cond.wait()
            client = self._idle.pop() if self._idle else None
            if client is None:
                self._open += 1
        if client is None:
            try:
                client = self._connect()
            except BaseException:
                with self._cond:
                    self._open -= 1
                    self._cond.notify()
                raise
        try:
            yield client
        finally:
            with self._cond:
                self._idle.append(client)
                self._cond.notify()


class ClickHouseTraceReader:
    """:class:`~chainotel_analyzer.store.interfaces.TraceReader` over a clickhouse-connect ``client``;
    with ``connect`` (a function opening another session on the same store) it runs up to
    :data:`READ_SESSIONS` queries at once (:class:`SessionPool`), otherwise one at a time."""

    def __init__(self, client: Client, connect: Callable[[], Client] | None = None):
        self._sessions = SessionPool(client, connect)

    def _query(self, sql: str, **kwargs):
        """``client.query(sql, **kwargs)`` on a free session (the result is fully read before it is freed)."""
        with self._sessions.session() as client:
            return client.query(sql, **kwargs)

    def trace_spans(self, trace_id: str) -> list[Span]:
        """Every span of trace ``trace_id`` (32 lowercase hex), ``[]`` if unknown."""
        rows = self._query(
            f"SELECT {SPAN_SELECT} FROM chain_history WHERE trace_id = {{trace_id:String}}",
            parameters={"trace_id": trace_id},
        ).result_rows
        return list(map(span_from_row, rows))

    def trace_events(self, trace_id: str) -> list[dict]:
        """``chain_history`` rows of one trace in time order (timestamp as RFC 3339 with ns, start
        also as ``start_unix_nano``); attribute maps included."""
        result = self._query(
            f"SELECT {EVENT_SELECT} FROM chain_history WHERE trace_id = {{trace_id:String}} "
            "ORDER BY timestamp, span_id",
            parameters={"trace_id": trace_id},
            column_formats=EVENT_FORMATS,
        )
        out = []
        for row in result.named_results():
            row.update(span_details(_as_bytes(row.pop("span_otlp"))))
            ns = row["start_unix_nano"]
            row["timestamp"] = _dt(ns).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ns % 10**9:09d}Z"
            out.append(row)
        return out

    def trace_otlp(self, trace_id: str) -> list[StoredSpan]:
        """The stored spans of trace ``trace_id`` (32 lowercase hex) with their resource and scope, in
        time order; ``[]`` if unknown."""
        rows = self._query(
            f"SELECT {OTLP_SELECT} FROM chain_history WHERE trace_id = {{trace_id:String}} ORDER BY timestamp, span_id",
            parameters={"trace_id": trace_id},
            column_formats={"span_otlp": "bytes", "resource_otlp": "bytes", "scope_otlp": "bytes"},
        ).result_rows
        return [StoredSpan(*row) for row in rows]

    def window_traces(self, since_ns: int,
        until_ns: int,
        chain: str | None = None,
        max_traces: int = DEFAULT_MAX_TRACES,
        include_synthetic: bool = False,
    ) -> tuple[int, dict[str, list[Span]]]:
        """Traces whose first span starts in ``[since_ns, until_ns)`` (optionally of one ``chain``);
        synthetic probe traces only with ``include_synthetic``.

        Returns ``(traces in the window, {trace_id: [Span, ...]})`` where the dict holds at most
        ``max_traces`` traces, chosen by the smallest ``cityHash64(trace_id)`` (a uniform,
        deterministic sample) when the window has more. Spans are read from ``since −``
        :data:`TRACE_SPREAD_S` to ``until +`` :data:`TRACE_SPREAD_S`, the rows the index placed them by.
        """
        picked = self._query(
            "SELECT trace_id, count() OVER () AS total FROM ("
            " SELECT trace_id FROM chain_traces WHERE" + _INDEX_ROWS + "GROUP BY trace_id"
            " HAVING min(start) >= {since:DateTime64(9)} AND min(start) < {until:DateTime64(9)}"
            " AND ({any_chain:Bool} OR max(chain) = {chain:String})" + _REAL_TRACES + ")"
            " ORDER BY cityHash64(trace_id) LIMIT {limit:UInt32}",
            parameters={**_window_params(since_ns, until_ns), "chain": chain or "", "any_chain": chain is None,
                        "limit": max_traces, "synthetic": include_synthetic},  # fmt: skip
        ).result_rows
        if not picked:
            return 0, {}
        total = picked[0][1]
        # the spans of the picked traces lie where the index rows that placed them do: the time bound
        # lets the store skip the parts of other hours (minmax index on timestamp) before the bloom filter
        rows = self._query(
            f"SELECT {SPAN_SELECT} FROM chain_history WHERE trace_id IN {{ids:Array(String)}}"
            " AND timestamp >= {lo:DateTime64(9)} AND timestamp < {hi:DateTime64(9)}",
            parameters={**_window_params(since_ns, until_ns), "ids": [r[0] for r in picked]},
        ).result_rows
        return int(total), group_by_trace(map(span_from_row, rows))

    def chain_instances(self, query: InstanceQuery) -> list[Instance]:
        """The instances of ``query.chain`` matching ``query`` (see
        :class:`~chainotel_analyzer.store.interfaces.InstanceQuery`), read from the per-trace index
        ``chain_traces``; the ``service``/``user_id`` filters look the spans up in ``chain_history``
        (from the window's start to :data:`TRACE_SPREAD_S` after its end). Keyset paging: the sort key
        is ``(duration_ns | start_ns) DESC, trace_id ASC``, a total order, so consecutive pages neither
        repeat nor skip an instance while the window's data does not change."""
        span_filters = ""
        if query.service is not None:
            span_filters += " AND trace_id IN (SELECT trace_id FROM chain_history WHERE service_name = {service:String}" \
                            " AND timestamp >= {since:DateTime64(9)} AND timestamp < {hi:DateTime64(9)})"
        if query.user_id is not None:
            span_filters += " AND trace_id IN (SELECT trace_id FROM chain_history WHERE user_id = {user_id:String}" \
                            " AND timestamp >= {since:DateTime64(9)} AND timestamp < {hi:DateTime64(9)})"
        after_key, after_trace = query.after or (0, "")
        rows = self._query(
            "SELECT trace_id, s_ns, dur_ns, root.1, root.2, errs > 0,"
            " if({by_duration:Bool}, dur_ns, s_ns) AS sort_key FROM ("
            "  SELECT trace_id, min(start) AS s, toUnixTimestamp64Nano(s) AS s_ns,"
            "  toUnixTimestamp64Nano(max(end)) - s_ns AS dur_ns, sum(error_count) AS errs,"
            "  max(chain) AS c, argMinMerge(root) AS root"
            "  FROM chain_traces WHERE" + _INDEX_ROWS + span_filters +
            "  GROUP BY trace_id"
            "  HAVING s >= {since:DateTime64(9)} AND s < {until:DateTime64(9)} AND c = {chain:String}"
            "  AND dur_ns >= {min_dur:Int64} AND ({status:String} = 'any' OR (errs > 0) = ({status:String} = 'error')))"
            " WHERE {first:Bool} OR sort_key < {after_key:Int64} OR (sort_key = {after_key:Int64} AND trace_id > {after_trace:String})"
            " ORDER BY sort_key DESC, trace_id ASC LIMIT {limit:UInt32}",
            parameters={**_window_params(query.since_ns, query.until_ns), "chain": query.chain,
                        "service": query.service or "", "user_id": query.user_id or "",
                        "by_duration": query.order == "duration_desc", "min_dur": query.min_duration_ns,
                        "status": query.status, "first": query.after is None, "after_key": after_key,
                        "after_trace": after_trace, "limit": query.limit},  # fmt: skip
        ).result_rows
        if not rows:
            return []
        services = dict(self._query(
            "SELECT trace_id, arraySort(groupUniqArray(toString(service_name))) FROM chain_history"
            " WHERE trace_id IN {ids:Array(String)} AND timestamp >= {lo:DateTime64(9)} AND timestamp < {hi:DateTime64(9)}"
            " GROUP BY trace_id",
            parameters={**_window_params(query.since_ns, query.until_ns), "ids": [r[0] for r in rows]},
        ).result_rows)
        return [Instance(r[0], int(r[1]), max(0, int(r[2])), r[3], r[4], bool(r[5]), tuple(services.get(r[0], ())))
                for r in rows]  # fmt: skip

    def span_attributes(self, trace_ids: list[str], keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
        """``{span_id: {key: value}}`` of the spans of ``trace_ids`` that carry any of ``keys``; only
        those keys are read (``mapFilter`` in ClickHouse), so the attribute maps never leave the store."""
        if not trace_ids or not keys:
            return {}
        rows = self._query(
            "SELECT span_id, mapFilter((k, v) -> has({keys:Array(String)}, k), span_attributes) AS attrs"
            " FROM chain_history WHERE trace_id IN {ids:Array(String)} AND notEmpty(attrs)",
            parameters={"ids": list(trace_ids), "keys": list(keys)},
        ).result_rows
        return {span_id: dict(attrs) for span_id, attrs in rows}

    def chain_figures(self, since_ns: int, until_ns: int, slas: dict[str, float | None] | None = None,
                      include_synthetic: bool = False) -> list[dict]:
        """Per chain, over the traces starting in ``[since_ns, until_ns)`` (read from the per-trace
        index ``chain_traces``): ``chain``, ``traces``, ``error_traces`` (any error span),
        ``root_error_traces`` (root span failed), ``within_sla`` (duration ≤ ``slas[chain]`` ms; all
        traces when the chain has no SLA), ``avg_ms``, ``p50_ms``, ``p95_ms``, ``p99_ms`` of trace
        durations (exact, linear interpolation like numpy's default). Synthetic probe traces count only
        with ``include_synthetic``."""
        rows = self._query(
            "SELECT chain, " + _FIGURES + " FROM (" + _PER_TRACE + ") GROUP BY chain ORDER BY chain",
            parameters=_figure_params(since_ns, until_ns, slas, include_synthetic),
        ).named_results()
        return _with_quantiles(rows)

    def chain_overview(self, since_ns: int, until_ns: int, bucket_s: int, slas: dict[str, float | None] | None = None,
                       include_synthetic: bool = False) -> tuple[list[dict], list[dict]]:
        """``(figures, buckets)``: :meth:`chain_figures` and, per chain and bucket of ``bucket_s``
        seconds from ``since_ns``, the same figures (``bucket`` is the index) — from one read of the
        per-trace index (``GROUPING SETS``), for a page that shows both; real traffic unless ``include_synthetic``."""
        figures, buckets = [], []
        for r in _with_quantiles(self._query(
            "SELECT chain, intDiv(toUnixTimestamp64Nano(s) - {since_ns:Int64}, {bucket_ns:Int64}) AS bucket,"
            " grouping(bucket) AS whole, " + _FIGURES + " FROM (" + _PER_TRACE + ")"
            " GROUP BY GROUPING SETS ((chain), (chain, bucket)) ORDER BY chain, bucket",
            parameters={**_figure_params(since_ns, until_ns, slas, include_synthetic), "since_ns": since_ns,
                        "bucket_ns": bucket_s * 10**9},
        ).named_results()):  # fmt: skip
            if r.pop("whole"):
                r.pop("bucket")
                figures.append(r)
            else:
                buckets.append(r)
        return figures, buckets

    def chain_buckets(self, since_ns: int, until_ns: int, bucket_s: int, include_synthetic: bool = False) -> list[dict]:
        """Per chain and bucket of ``bucket_s`` seconds from ``since_ns`` (from the per-trace index
        ``chain_traces``): ``chain``, ``bucket`` (index), ``traces``, ``errors`` (traces with an error
        span), ``p95_ms`` of trace durations; synthetic probe traces only with ``include_synthetic``."""
        return list(self._query(
            "SELECT chain, intDiv(toUnixTimestamp64Nano(s) - {since_ns:Int64}, {bucket_ns:Int64}) AS bucket,"
            " count() AS traces, countIf(errs > 0) AS errors, quantileExactInclusive(0.95)(dur_ms) AS p95_ms FROM ("
            "  SELECT trace_id, max(chain) AS chain, min(start) AS s, sum(error_count) AS errs,"
            "  (toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(s)) / 1e6 AS dur_ms"
            "  FROM chain_traces WHERE" + _INDEX_ROWS + "GROUP BY trace_id"
            "  HAVING s >= {since:DateTime64(9)} AND s < {until:DateTime64(9)}" + _REAL_TRACES + ")"
            " GROUP BY chain, bucket",
            parameters={**_window_params(since_ns, until_ns), "since_ns": since_ns,
                        "bucket_ns": bucket_s * 10**9, "synthetic": include_synthetic},  # fmt: skip
        ).named_results())

    def chain_series(self, chain: str, since_ns: int, until_ns: int, bucket_s: int,
                     include_synthetic: bool = False) -> list[dict]:
        """Per bucket of ``bucket_s`` seconds from ``since_ns`` of ``chain``'s traces (from the per-trace
        index ``chain_traces``): ``bucket``, ``traces``, ``errors``, ``p50_ms``, ``p95_ms``, ``p99_ms``
        (exact quantiles of trace durations), by bucket; synthetic probe traces only with ``include_synthetic``."""
        rows = self._query(
            "SELECT intDiv(toUnixTimestamp64Nano(s) - {since_ns:Int64}, {bucket_ns:Int64}) AS bucket,"
            " count() AS traces, countIf(errs > 0) AS errors, quantilesExactInclusive(0.5, 0.95, 0.99)(dur_ms) AS q FROM ("
            "  SELECT trace_id, max(chain) AS c, min(start) AS s, sum(error_count) AS errs,"
            "  (toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(s)) / 1e6 AS dur_ms"
            "  FROM chain_traces WHERE" + _INDEX_ROWS + "GROUP BY trace_id"
            "  HAVING s >= {since:DateTime64(9)} AND s < {until:DateTime64(9)} AND c = {chain:String}" + _REAL_TRACES + ")"
            " GROUP BY bucket ORDER BY bucket",
            parameters={**_window_params(since_ns, until_ns), "since_ns": since_ns, "chain": chain,
                        "bucket_ns": bucket_s * 10**9, "synthetic": include_synthetic},  # fmt: skip
        ).named_results()
        return _with_quantiles(rows)

    def service_operations(self, service: str, since_ns: int, until_ns: int, include_synthetic: bool = False) -> list[dict]:
        """RED per ``(chain, operation)`` of ``service`` from ``chain_metrics`` over the minutes that
        start in the window: ``chain``, ``operation``, ``calls``, ``errors``, ``avg_ms`` and t-digest
        ``p50_ms``/``p95_ms``/``p99_ms``, most calls first; synthetic probe spans only with ``include_synthetic``."""
        rows = self._query(
            "SELECT toString(chain) AS c, toString(operation) AS op, sum(calls) AS n, sum(errors) AS e,"
            " sum(duration_sum_ns) / n / 1e6 AS avg_ms,"
            " quantilesTDigestMerge(0.5, 0.95, 0.99)(duration_quantiles) AS q FROM chain_metrics"
            " WHERE service_name = {service:String} AND minute >= toDateTime({since_s:Int64})"
            " AND minute < toDateTime({until_s:Int64})" + _REAL_SPANS + "GROUP BY c, op ORDER BY n DESC, c, op",
            parameters={"service": service, "since_s": since_ns // 10**9, "until_s": -(-until_ns // 10**9),
                        "synthetic": include_synthetic},  # fmt: skip
        ).named_results()
        return [{"chain": r["c"], "operation": r["op"], "calls": r["n"], "errors": r["e"], "avg_ms": r["avg_ms"],
                 "p50_ms": r["q"][0] / 1e6, "p95_ms": r["q"][1] / 1e6, "p99_ms": r["q"][2] / 1e6} for r in rows]  # fmt: skip

    def service_buckets(self, since_ns: int, until_ns: int, bucket_s: int, include_synthetic: bool = False) -> list[dict]:
        """Per service and bucket (from ``chain_metrics``): ``service``, ``bucket``, ``calls``,
        ``errors``, ``p95_ms`` (t-digest); synthetic probe spans only with ``include_synthetic``."""
        return list(self._query(
            "SELECT service_name AS service, intDiv(toUnixTimestamp(minute) - {since_s:Int64}, {bucket_s:Int64}) AS bucket,"
            " sum(calls) AS calls, sum(errors) AS errors,"
            " quantileTDigestMerge(0.95)(duration_quantiles) / 1e6 AS p95_ms FROM chain_metrics"
            " WHERE minute >= toDateTime({since_s:Int64}) AND minute < toDateTime({until_s:Int64})" + _REAL_SPANS +
            "GROUP BY service, bucket",
            parameters={"since_s": since_ns // 10**9, "until_s": until_ns // 10**9, "bucket_s": bucket_s,
                        "synthetic": include_synthetic},  # fmt: skip
        ).named_results())


class ClickHouseChainRegistry:
    """:class:`~chainotel_analyzer.store.interfaces.ChainRegistry` over ``chain_definitions``
    (ReplacingMergeTree by version: a change inserts the next version, a deletion a marker).

    Writes read the newest version and insert the next one under one lock, so concurrent API
    requests to one analyzer each get their own version. Across analyzer processes sharing a
    ClickHouse server the INSERT is a compare-and-set (:func:`insert_definition_row`): of two writers
    that read version N, the first stores N + 1 and the other gets :class:`RegistryConflict` (409);
    no change is lost."""

    def __init__(self, client: Client):
        self._client = client
        self._lock = threading.Lock()

    def list(self) -> list[dict]:
        return self._current(None)

    def get(self, chain: str) -> dict | None:
        found = self._current(chain)
        return found[0] if found else None

    def create(self, definition: dict, changed_by: str = "") -> dict:
        chain = definition["id"]
        with self._lock:
            latest = self._latest_version(chain)
            if latest is not None and not latest[1]:
                raise ChainExists(f"chain {chain!r} exists; use PUT /api/v1/chains/{chain} to change it")
            self._write(definition, 1 if latest is None else latest[0] + 1, changed_by=changed_by)
            return self._current(chain)[0]

    def put(self, definition: dict, changed_by: str = "") -> dict:
        chain = definition["id"]
        with self._lock:
            version = self._current_version(chain)
            self._write(definition, version + 1, changed_by=changed_by)
            return self._current(chain)[0]

    def delete(self, chain: str, changed_by: str = "") -> None:
        with self._lock:
            version = self._current_version(chain)
            self._write(self._current(chain)[0]["definition"], version + 1, deleted=True, changed_by=changed_by)

    def seed(self, catalog: Catalog) -> int:
        with self._lock:
            return seed_definitions(self._client, catalog)

    def history(self, chain: str) -> list[dict]:
        """Every version of ``chain``, from ``chain_definition_versions``: the registry's writes copied to a
        plain MergeTree (migration 0021), because ``chain_definitions``' merges keep only the newest version."""
        rows = self._client.query(
            "SELECT version, source, updated_at, is_deleted, definition, changed_by FROM chain_definition_versions"
            " WHERE id = {id:String} ORDER BY version",
            parameters={"id": chain},
        ).result_rows
        return [{"version": r[0], "source": r[1], "updated_at": r[2].isoformat(), "is_deleted": bool(r[3]),
                 "changed_by": r[5], "definition": json.loads(r[4])} for r in rows]  # fmt: skip

    def _current(self, chain: str | None) -> list[dict]:
        """Current (non-deleted) definitions, newest version per ID, ordered by ID; only ``chain`` if given."""
        rows = self._client.query(
            "SELECT id, max(version) AS v, argMax(definition, version) AS d, argMax(source, version) AS s,"
            " argMax(updated_at, version) AS u, argMax(is_deleted, version) AS del,"
            " argMax(changed_by, version) AS by FROM chain_definitions"
            " WHERE {all:Bool} OR id = {id:String} GROUP BY id HAVING del = 0 ORDER BY id",
            parameters={"all": chain is None, "id": chain or ""},
        ).result_rows
        return [
            {"id": r[0], "version": r[1], "source": r[3], "updated_at": r[4].isoformat(), "changed_by": r[6],
             "definition": json.loads(r[2])}
            for r in rows
        ]

    def _latest_version(self, chain: str) -> tuple[int, bool] | None:
        """``(newest version, is_deleted)`` of ``chain``, ``None`` if it never existed."""
        rows = self._client.query(
            "SELECT max(version), argMax(is_deleted, version) FROM chain_definitions WHERE id = {id:String} GROUP BY id",
            parameters={"id": chain},
        ).result_rows
        return (int(rows[0][0]), bool(rows[0][1])) if rows else None

    def _current_version(self, chain: str) -> int:
        latest = self._latest_version(chain)
        if latest is None or latest[1]:
            raise UnknownChain(f"unknown chain {chain!r}")
        return latest[0]

    def _write(self, doc: dict, version: int, deleted: bool = False, changed_by: str = "") -> None:
        """Insert one registry row (``source = 'api'``) for the JSON-ready definition ``doc`` as
        ``version``; ``changed_by`` names the caller (its token entry's name). Raises :class:`RegistryConflict` when another writer (another analyzer process on
        the same ClickHouse server) stored that version first (:func:`insert_definition_row`)."""
        now = datetime.now(timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # DateTime64(3): compared after the read
        row = [doc["id"], version, doc.get("name", ""), doc.get("category", ""), doc.get("description", ""),
               doc.get("max_duration_ms"), json.dumps(doc, sort_keys=True), "api", "", now, 1 if deleted else 0]  # fmt: skip
        if not insert_definition_row(self._client, row, changed_by):
            raise RegistryConflict(f"chain {doc['id']!r} was changed by another writer (version {version}); "
                                   "read it again and retry")  # fmt: skip
