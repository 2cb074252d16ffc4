"""The batching writer: the only code that inserts spans, from one thread, behind a bounded queue.

Why one thread: chDB hosts one engine per process and has no async client. Receivers (HTTP and
gRPC handlers) call :meth:`SpanWriter.submit` with a decoded request and wait on the returned future,
which resolves only after the request's rows are committed — so no span is acknowledged before it is
stored.

Batching: the writer takes a batch of waiting requests when ``batch_max_spans`` (≤ 10 000) spans
wait, or when at least ``batch_min_spans`` wait and no request is being read or decoded
(:meth:`SpanWriter.incoming`), or ``batch_max_wait_s`` (≤ 1 s) after the oldest waiting request
arrived, and inserts the whole batch as **one** Arrow-format INSERT into ``chain_history`` (columns of
:data:`chainotel_analyzer.model.rows.INSERT_SCHEMA`); the materialized views fill ``chain_traces`` and
``chain_metrics`` in the same INSERT. An INSERT costs a fixed few tens of ms in chDB whatever its size
(a part per table and view, the views' queries), so one INSERT for several requests is what keeps
ingest fast (``bench.ingest``).

Backpressure: :meth:`submit` raises :class:`WriteQueueFull` when the waiting spans would exceed
``queue_max_spans`` or their Arrow columns ``queue_max_bytes`` (resource attributes counted once
per span, as they are held), :class:`RequestTooLarge` for one request that exceeds either limit on
its own — even with an empty queue; it could never be queued, so it is refused, not retried — and
:class:`StoreUnavailable` while the store does not answer (after a look-up, or an INSERT and then
``SELECT 1``, failed, until a probe query succeeds again); receivers answer 503 + Retry-After /
gRPC UNAVAILABLE, so the sender retries.

No duplicates on retry (an exporter or a Collector resends the identical request after a timeout or a
503, to this analyzer or to another one sharing the store, before or after a restart), with nothing
kept in this process's memory:

- every request is identified by a 63-bit digest of its decompressed body
  (:func:`chainotel_analyzer.ingest.receive.request_digest`), written with each of its rows
  (``chain_history.request_digest``); every batch by a random 63-bit ID (``chain_history.insert_batch``);
- ``chain_request_log`` (migration 0011) holds, per request and batch, the batch's state: *pending* is
  written before the batch's INSERT, *stored* once the INSERT returned, *abandoned* when it left no
  row in ``chain_history``;
- before a batch is inserted its digests are looked up there (one query, ``dedup_window_s``): a request
  with a *stored* batch is not inserted again and its future resolves False ("already stored",
  reported by ``chainotel-analyzer import``); one whose only batches are *pending* — a batch cut short
  by a crash, a lost answer or a failed view — first has that batch **completed**: its rows are read
  back from ``chain_history`` and inserted again with the batch's ``insert_deduplication_token``
  (``deduplicate_blocks_in_dependent_materialized_views = 1``), which ``chain_history`` refuses (its
  deduplication window, migration 0005) and each view that lacks the block stores — the views are
  healed, nothing is counted twice — and the request counts as already stored. A pending batch with
  no row in ``chain_history`` is abandoned and the request inserted anew. At start the writer
  completes or abandons every pending batch of the window first, so the views agree with
  ``chain_history`` after a ``kill -9`` even for requests that are never retried.
- a failed INSERT is looked at the same way at once: committed (the answer was lost) → completed and
  acknowledged; nothing committed → the batch is split in halves, each inserted on its own, down to the
  single request that fails, which alone gets :class:`StoreUnavailable` — so one request that makes an
  INSERT fail fails no other. If ``SELECT 1`` fails too, the store is down: the batch and the queue
  behind it get :class:`StoreUnavailable` until a probe succeeds.
- Limits: a retry after ``dedup_window_s`` (at most the log's 7 days) is stored again. On a
  ClickHouse server shared by several analyzers, a batch another analyzer logged *pending* less than
  ``commit_timeout_s`` ago without rows yet is taken as in progress: its requests get 503 and are
  retried; two analyzers looking the same new request up within the same few ms may both store it.
  The healing relies on ClickHouse committing ``chain_history``'s part before the views' parts (what
  ``tests/ingest/test_crash_dedup.py`` checks under ``kill -9``); a view that failed on committed rows
  fails its batch's completion again until it is fixed.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from chainotel_analyzer.model.rows import INSERT_SCHEMA, DecodedSpans, insert_table
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.client import Store
from chainotel_analyzer.store.interfaces import RequestTooLarge, StoreUnavailable, WriteQueueFull

log = logging.getLogger(__name__)

INSERT_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "parallel_view_processing": 1,
}
"""Settings of every span INSERT besides its token (module docstring). The views are pushed in
parallel: each costs several ms per INSERT in chDB whatever its size."""

PENDING, STORED, ABANDONED = 0, 1, 2
"""States of a batch in ``chain_request_log`` (migration 0011)."""

_LOG_COLUMNS = ["request_digest", "insert_batch", "span_count", "state"]
_HISTORY_COLUMNS = [*INSERT_SCHEMA.names, "ingested_at"]  # a batch read back keeps its ingest time
_HISTORY_SLACK_S = 300  # rows of a batch are ingested within seconds of its pending log row

_LOOKUP_SQL = (
    "SELECT request_digest, insert_batch, max(state), dateDiff('second', min(logged_at), now()) "
    "FROM chain_request_log WHERE request_digest IN {d:Array(UInt64)} "
    "AND logged_at >= now() - toIntervalSecond({w:UInt32}) GROUP BY request_digest, insert_batch "
    # requests stored before migration 0011 (one INSERT each, counted by a view)
    "UNION ALL SELECT request_digest, 0, if(sum(span_count) > 0, 1, 0), 0 FROM chain_requests "
    "WHERE request_digest IN {d:Array(UInt64)} AND ingested_at >= now() - toIntervalSecond({w:UInt32}) "
    "GROUP BY request_digest"
)
_PENDING_SQL = (
    "SELECT insert_batch, max(age) FROM (SELECT insert_batch, max(state) AS s, "
    "dateDiff('second', min(logged_at), now()) AS age FROM chain_request_log "
    "WHERE logged_at >= now() - toIntervalSecond({w:UInt32}) GROUP BY request_digest, insert_batch) "
    "WHERE s = 0 GROUP BY insert_batch"
)
_BATCH_ROWS_SQL = (
    f"SELECT {', '.join(_HISTORY_COLUMNS)} FROM chain_history WHERE insert_batch IN {{b:Array(UInt64)}} "
    "AND ingested_at >= now() - toIntervalSecond({w:UInt32})"
)
_ABANDON_SQL = (
    "INSERT INTO chain_request_log (request_digest, insert_batch, span_count, state) "
    f"SELECT request_digest, insert_batch, any(span_count), {ABANDONED} FROM chain_request_log "
    "WHERE insert_batch IN {b:Array(UInt64)} AND logged_at >= now() - toIntervalSecond({w:UInt32}) "
    "GROUP BY request_digest, insert_batch"
)


def batch_token(batch: int) -> str:
    """The ``insert_deduplication_token`` of the batch with ID ``batch``: ``otlp-batch-<16 hex>``. The
    same for every analyzer process and version, so completing a batch is refused where it is stored."""
    return f"otlp-batch-{batch:016x}"


def new_batch_id() -> int:
    """A random non-zero 63-bit batch ID (0 marks rows written before batches had IDs)."""
    return secrets.randbits(63) or 1


@dataclass
class _Item:
    digest: int
    spans: DecodedSpans
    future: Future
    nbytes: int = 0
    queued_at: float = field(default_factory=time.monotonic)


class SpanWriter:
    """Owns the insert path into ``chain_history`` — the :class:`~chainotel_analyzer.store.interfaces.SpanSink`
    of ClickHouse; see the module docstring for the contract.

    Example::

        writer = SpanWriter(store, settings); writer.start()
        fut = writer.submit(payload.digest, payload.spans)   # may raise WriteQueueFull
        fut.result(timeout=30)   # returns True once committed (False: duplicate, already stored)
    """

    def __init__(self, store: Store, settings: AnalyzerSettings):
        self._settings = settings
        self._client = store.new_client()
        self._cond = threading.Condition()
        self._queue: collections.deque[_Item] = collections.deque()
        self._queued_spans = 0
        self._queued_bytes = 0
        self._incoming = 0
        self._inflight: dict[int, Future] = {}
        self._healthy = True
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="chainotel-span-writer", daemon=True)
        self._exclusive = store.is_chdb  # chDB: no other process writes this store (its lock file)
        self._observers: list[Callable[[float], None]] = []
        self.last_error = ""
        self.spans_written = 0
        self.spans_deduplicated = 0
        self.spans_rejected = 0
        self.spans_refused = 0
        self.inserts = 0
        self.insert_seconds = 0.0

    # --- public --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread; it first completes or abandons the batches a previous process
        left pending (module docstring), then takes requests."""
        self._thread.start()

    def add_insert_observer(self, observe: Callable[[float], None]) -> None:
        """Call ``observe(seconds)`` after every span INSERT (in the writer thread; keep it cheap):
        the hook of the ``chainotel_insert_duration_seconds`` histogram."""
        self._observers.append(observe)

    def stop(self, timeout: float = 10.0) -> None:
        """Insert what is queued, then stop the thread (waits up to ``timeout`` seconds). Safe to call
        when :meth:`start` was never called or failed."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    @property
    def queue_depth(self) -> int:
        """Spans waiting for their INSERT (not counting the INSERT in progress)."""
        return self._queued_spans

    @property
    def queue_bytes(self) -> int:
        """Bytes of Arrow columns waiting for their INSERT."""
        return self._queued_bytes

    def full(self) -> str:
        """Why the queue is at its span or byte limit ('' when it is not): receivers then answer 503
        before reading a body."""
        s = self._settings
        if self._queued_spans >= s.queue_max_spans or self._queued_bytes >= s.queue_max_bytes:
            return (f"write queue full ({self._queued_spans} spans, {self._queued_bytes} bytes waiting; "
                    f"limits {s.queue_max_spans} spans, {s.queue_max_bytes} bytes)")  # fmt: skip
        return ""

    @property
    def healthy(self) -> bool:
        """False after a failed INSERT until a probe query succeeds."""
        return self._healthy

    @contextmanager
    def incoming(self):
        """Receivers hold this while a request is read and decoded, so the writer knows spans are on
        their way and waits for them (bigger INSERTs) instead of inserting what it has."""
        with self._cond:
            self._incoming += 1
        try:
            yield
        finally:
            with self._cond:
                self._incoming -= 1
                self._cond.notify_all()

    def submit(self, digest: int, spans: DecodedSpans) -> Future:
        """Queue a decoded request for insert (one without valid spans resolves at once); the future
        resolves once ClickHouse holds its rows:
        True when this INSERT stored them, False when they were stored before (a retry, see
        ``chain_request_log`` in the module docstring). Raises :class:`WriteQueueFull` or
        :class:`StoreUnavailable` when the request cannot be queued now,
        :class:`RequestTooLarge` when it never can.
        """
        with self._cond:
            self.spans_rejected += spans.rejected
        if not spans.count:  # nothing valid to store: done (its rejected spans are counted)
            done: Future = Future()
            done.set_result(True)
            return done
        try:
            return self._enqueue(digest, spans)
        except (RequestTooLarge, StoreUnavailable, WriteQueueFull):
            with self._cond:
                self.spans_refused += spans.count
            raise

    def _enqueue(self, digest: int, spans: DecodedSpans) -> Future:
        max_spans, max_bytes = self._settings.queue_max_spans, self._settings.queue_max_bytes
        size = spans.table.nbytes if spans.table is not None else 0
        if spans.count > max_spans or size > max_bytes:
            raise RequestTooLarge(
                f"request of {spans.count} spans, {size} bytes decoded exceeds the write queue "
                f"({max_spans} spans, {max_bytes} bytes); send it in smaller requests"
            )
        with self._cond:
            pending = self._inflight.get(digest)
            if pending is not None:
                return pending
            if not self._healthy:
                raise StoreUnavailable(f"ClickHouse is unavailable: {self.last_error}")
            if self._stopping:
                raise StoreUnavailable("the analyzer is shutting down")
            if self._queued_spans + spans.count > max_spans or self._queued_bytes + size > max_bytes:
                raise WriteQueueFull(
                    f"write queue full ({self._queued_spans} spans, {self._queued_bytes} bytes waiting; "
                    f"limits {max_spans} spans, {max_bytes} bytes)"
                )
            fut: Future = Future()
            self._queue.append(_Item(digest, spans, fut, size))
            self._queued_spans += spans.count
            self._queued_bytes += size
            self._inflight[digest] = fut
            self._cond.notify_all()
            return fut

    # --- writer thread -------------------------------------------------------------------------
    def _take_batch(self) -> list[_Item] | None:
        s = self._settings
        with self._cond:
            while True:
                if not self._healthy and not self._stopping:
                    self._cond.wait(1.0)
                    return []  # probe outside the lock
                if self._queue:
                    break
                if self._stopping:
                    return None
                self._cond.wait(1.0)
            deadline = self._queue[0].queued_at + s.batch_max_wait_s
            while self._queued_spans < s.batch_max_spans and not self._stopping:
                if self._queued_spans >= s.batch_min_spans and not self._incoming:
                    break  # enough for a decent part, and nothing is on its way
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, n = [], 0
            while self._queue and (not batch or n + self._queue[0].spans.count <= s.batch_max_spans):
                item = self._queue.popleft()
                batch.append(item)
                n += item.spans.count
                self._queued_bytes -= item.nbytes
            self._queued_spans -= n
            return batch

    def _probe(self) -> None:
        try:
            self._client.command("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any failure keeps the store marked down
            self.last_error = str(exc)[:500]
            return
        self._healthy = True

    def _run(self) -> None:
        self._complete_left_pending()
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if not batch:
                self._probe()
                continue
            try:
                fresh = self._triage(batch)
            except Exception as exc:  # noqa: BLE001 - the store does not answer
                self._store_down(batch, exc)
                continue
            if fresh:
                self._store_all(fresh)

    def _window(self) -> int:
        """The look-up window in seconds: ``dedup_window_s``, at most the 7 days ``chain_request_log`` keeps."""
        return min(int(self._settings.dedup_window_s), 7 * 86400)

    # --- before a batch: what is stored already ---------------------------------------------------
    def _complete_left_pending(self) -> None:
        """At start: complete or abandon every batch of the window still pending (module docstring)."""
        if not self._window():
            return
        try:
            rows = self._client.query(_PENDING_SQL, parameters={"w": self._window()}).result_rows
            if rows:
                done = self._complete({batch: age for batch, age in rows})
                log.info("batches left pending by an earlier process: %d completed, %d abandoned, %d still pending",
                         *(sum(s == state for s in done.values()) for state in (STORED, ABANDONED, PENDING)))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - they are completed when their requests are retried
            log.warning("batches left pending could not be looked at: %s", str(exc)[:500])

    def _triage(self, batch: list[_Item]) -> list[_Item]:
        """Resolve the requests of ``batch`` that are stored already (False) or being stored by another
        analyzer (:class:`StoreUnavailable`), completing first the pending batches that carried them;
        return the others, to insert. Raises clickhouse-connect's errors when a look-up fails."""
        if not self._window():
            return batch
        seen: dict[int, dict[int, tuple[int, int]]] = {}
        rows = self._client.query(_LOOKUP_SQL, parameters={"d": [i.digest for i in batch], "w": self._window()})
        for digest, insert_batch, state, age in rows.result_rows:
            seen.setdefault(digest, {})[insert_batch] = (state, age)
        pending = {
            b: age for states in seen.values() if all(st != STORED for st, _ in states.values())
            for b, (st, age) in states.items() if st == PENDING
        }  # fmt: skip
        completed = self._complete(pending) if pending else {}
        fresh = []
        for item in batch:
            states = {completed.get(b, st) for b, (st, _) in seen.get(item.digest, {}).items()}
            if STORED in states:
                self.spans_deduplicated += item.spans.count
                self._resolve(item, result=False)
            elif PENDING in states:
                self._resolve(item, error="an earlier INSERT of this request is in progress or incomplete")
            else:
                fresh.append(item)
        return fresh

    def _complete(self, ages: dict[int, int]) -> dict[int, int]:
        """Complete the pending batches ``{batch ID: seconds since logged pending}``; return each one's
        state: STORED (its rows read back from ``chain_history`` and inserted again with its token: the
        views that lack them are healed), ABANDONED (no row: logged so) or PENDING (no row yet, logged
        less than ``commit_timeout_s`` ago by another analyzer; or the completion failed, logged).
        Raises clickhouse-connect's errors when a look-up fails."""
        rows = self._client.query_arrow(
            _BATCH_ROWS_SQL, parameters={"b": list(ages), "w": self._window() + _HISTORY_SLACK_S}
        )
        ids = rows.column("insert_batch")
        out: dict[int, int] = {}
        for batch, age in ages.items():
            part = rows.filter(pc.equal(ids, pa.scalar(batch, pa.uint64())))
            if part.num_rows:
                out[batch] = self._reinsert(batch, part)
            else:
                out[batch] = ABANDONED if self._exclusive or age >= self._settings.commit_timeout_s else PENDING
        abandoned = [b for b, state in out.items() if state == ABANDONED]
        if abandoned:
            self._client.command(_ABANDON_SQL, parameters={"b": abandoned, "w": self._window() + _HISTORY_SLACK_S})
        return out

    def _reinsert(self, batch: int, rows: pa.Table) -> int:
        """Insert ``rows`` (all of ``batch`` in ``chain_history``) again with the batch's token and log
        it stored: STORED, or PENDING when that fails (logged)."""
        try:
            self._insert_rows(rows, batch, new=False)
            counts = pc.value_counts(rows.column("request_digest"))
            self._log([(c["values"].as_py(), c["counts"].as_py()) for c in counts], batch, STORED)
        except Exception as exc:  # noqa: BLE001 - tried again when its requests come back
            log.warning("batch %016x could not be completed: %s", batch, str(exc)[:500])
            return PENDING
        return STORED

    # --- a batch ----------------------------------------------------------------------------------
    def _store_all(self, items: list[_Item]) -> None:
        """Insert ``items`` as one batch. When that INSERT fails with nothing committed while the store
        answers, each half is inserted on its own, down to the one request that fails: it alone gets
        :class:`StoreUnavailable`."""
        todo = [items]
        while todo:
            group = todo.pop()
            outcome = self._store_batch(group)
            if outcome == "down":  # the rest fails too, without trying
                for item in (i for g in todo for i in g):
                    self._resolve(item, error=f"ClickHouse INSERT failed: {self.last_error}")
                return
            if outcome == "refused" and len(group) > 1:
                todo += [group[len(group) // 2 :], group[: len(group) // 2]]
            elif outcome == "refused":
                self._resolve(group[0], error=f"ClickHouse INSERT failed: {self.last_error}")

    def _store_batch(self, items: list[_Item]) -> str:
        """One batch: log it pending, INSERT, log it stored. Returns "stored" (futures resolved True),
        "failed" (rows committed but not completed: futures failed), "refused" (nothing committed, the
        store answers: futures untouched) or "down" (futures and the queue failed)."""
        batch = new_batch_id()
        pairs = [(item.digest, item.spans.count) for item in items]
        try:
            self._log(pairs, batch, PENDING)
        except Exception as exc:  # noqa: BLE001 - nothing was inserted
            self._store_down(items, exc)
            return "down"
        try:
            self._insert_rows(insert_table([(item.digest, item.spans) for item in items], batch), batch)
        except Exception as exc:  # noqa: BLE001 - looked at below
            return self._after_failure(items, batch, exc)
        try:
            self._log(pairs, batch, STORED)
        except Exception as exc:  # noqa: BLE001 - stored all the same; completed (a no-op) when looked up
            log.warning("batch %016x is stored but could not be logged so: %s", batch, str(exc)[:500])
        for item in items:
            self._resolve(item, result=True)
        return "stored"

    def _after_failure(self, items: list[_Item], batch: int, exc: Exception) -> str:
        """The INSERT of ``batch`` raised ``exc``: see :meth:`_store_batch` for what is returned."""
        self.last_error = str(exc)[:500]
        log.warning("INSERT of %d requests (%d spans) failed: %s", len(items), sum(i.spans.count for i in items),
                    self.last_error)  # fmt: skip
        error = self.last_error
        try:
            self._client.command("SELECT 1")
            state = self._complete({batch: 1 << 30})[batch]  # our own INSERT has returned: not in progress
        except Exception as down:  # noqa: BLE001 - the store does not answer
            self._store_down(items, down)
            return "down"
        self.last_error = error
        if state == STORED:  # it was committed after all (the answer was lost); now complete
            for item in items:
                self._resolve(item, result=True)
            return "stored"
        if state == PENDING:  # committed, and completing it failed too
            for item in items:
                self._resolve(item, error=f"ClickHouse INSERT failed: {error}")
            return "failed"
        return "refused"

    def _log(self, pairs: list[tuple[int, int]], batch: int, state: int) -> None:
        """Write ``state`` of ``batch`` for each ``(request digest, spans)`` to ``chain_request_log``."""
        self._client.insert(
            "chain_request_log", [[digest, batch, n, state] for digest, n in pairs], column_names=_LOG_COLUMNS
        )

    def _insert_rows(self, table: pa.Table, batch: int, new: bool = True) -> None:
        """The span INSERT of ``table`` (rows of ``batch``) with the batch's token; ``new``: rows
        not stored before (counted in :attr:`spans_written`)."""
        started = time.perf_counter()
        # One Arrow record batch per INSERT, however the table is chunked (one chunk per request when
        # built, however ClickHouse returns it when read back): ClickHouse derives the IDs of the
        # blocks it deduplicates from the token *and* the chunks of the input, so a batch completed
        # from rows read back would not be recognised as the batch it is.
        self._client.insert_arrow(
            "chain_history", table.combine_chunks(),
            settings={**INSERT_SETTINGS, "insert_deduplication_token": batch_token(batch)},
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        self.insert_seconds += elapsed
        self.inserts += 1
        if new:
            self.spans_written += table.num_rows
        for observe in self._observers:
            observe(elapsed)

    # --- outcomes ---------------------------------------------------------------------------------
    def _store_down(self, batch: list[_Item], exc: Exception) -> None:
        """The store does not answer: ``batch`` and everything queued get :class:`StoreUnavailable`,
        and :meth:`submit` refuses until a probe succeeds."""
        error = self.last_error = str(exc)[:500]
        log.warning("ClickHouse does not answer: %s", error)
        with self._cond:
            self._healthy = False
            failed = batch + list(self._queue)
            self._queue.clear()
            self._queued_spans = 0
            self._queued_bytes = 0
        for item in failed:
            self._resolve(item, error=f"ClickHouse INSERT failed: {error}")

    def _resolve(self, item: _Item, result: bool = True, error: str = "") -> None:
        with self._cond:
            self._inflight.pop(item.digest, None)
            if error and not item.future.done():
                self.spans_refused += item.spans.count
        if item.future.done():
            return
        if error:
            item.future.set_exception(StoreUnavailable(error))
        else:
            item.future.set_result(result)
