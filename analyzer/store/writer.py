"""The batching writer: the only code that inserts spans, from one thread, behind a bounded queue.

Why one thread: chDB hosts one engine per process and has no async client. Receivers (HTTP and
gRPC handlers) call :meth:`SpanWriter.submit` with a decoded request and wait on the returned future,
which resolves only after the request's INSERT is committed — so no span is acknowledged before it is
stored.

Batching: the writer takes a batch of waiting requests when ``batch_max_spans`` (≤ 10 000) spans
wait, or when at least ``batch_min_spans`` wait and no request is being read or decoded
(:meth:`SpanWriter.incoming`), or ``batch_max_wait_s`` (≤ 1 s) after the oldest waiting request
arrived; it looks the batch's digests up once (``chain_requests``, below) and then inserts each
request on its own, one Arrow-format INSERT into ``chain_history`` (columns of
:data:`chainotel_analyzer.model.rows.INSERT_SCHEMA`); the materialized views fill ``chain_traces``,
``chain_metrics`` and ``chain_requests`` in the same INSERT. One INSERT per request is what lets
ClickHouse deduplicate a retry (its token is the request's); it costs a fixed few tens of ms per
INSERT in chDB (a part per table and view), measured by ``bench.ingest``.

Backpressure: :meth:`submit` raises :class:`WriteQueueFull` when the waiting spans would exceed
``queue_max_spans`` or their Arrow columns ``queue_max_bytes`` (resource attributes counted once
per span, as they are held), :class:`RequestTooLarge` for one request that exceeds either limit on
its own — even with an empty queue; it could never be queued, so it is refused, not retried — and
:class:`StoreUnavailable` while the store does not answer (after the digest look-up, or an INSERT
and then ``SELECT 1``, failed, until a probe query succeeds again); receivers answer
503 + Retry-After / gRPC UNAVAILABLE, so the sender retries.

No duplicates on retry (an exporter or a Collector resends the identical request after a timeout or a
503, to this analyzer or to another one sharing the ClickHouse server, before or after a restart):

- every request is identified by a 63-bit digest of its decompressed body (:func:`chainotel_analyzer.ingest.receive.request_digest`),
  written with each of its rows (``chain_history.request_digest``);
- each request is its own INSERT, sent with ``insert_deduplication_token`` = :func:`dedup_token` of the
  digest and ``deduplicate_blocks_in_dependent_materialized_views = 1``. ClickHouse refuses a block
  whose token is in the table's deduplication window (migration 0005: the last 100 000 INSERTs per
  table, on a cluster also ≤ 3 600 s) — in ``chain_history`` and in every view's target table on its own.
  So the retry of a request that was stored is not stored again, and the retry of a request whose
  INSERT died half-way (``chain_history`` written, a view not: a failing view, ``kill -9``) stores
  exactly what is missing: the views are healed, nothing is counted twice. No memory of this process
  is involved; a request queued twice in this process shares one future.
- whether a request was stored before is answered by ``chain_requests`` (one row per stored request,
  filled by a view, looked up by primary key once per batch): :meth:`SpanWriter.submit`'s future
  resolves False for those ("already stored", reported by ``chainotel-analyzer import``). The request
  is inserted all the same (ClickHouse refuses what it has; a crashed INSERT's views are healed).
  Two processes inserting the same request at the same moment may both report True; it is stored once.
- a failed INSERT gets :class:`StoreUnavailable` (503 / UNAVAILABLE): whatever it left behind, the
  sender's retry stores the rest once. If ``SELECT 1`` fails too, the store is down: the batch and the
  queue behind it get :class:`StoreUnavailable` until a probe succeeds.
- Limits: a retry after the deduplication window is stored again; a request whose INSERT failed and
  that is never retried may be stored in ``chain_history`` without its view rows. Each request makes
  its own parts (a few ms of fixed cost in chDB), so very small requests cost more per span.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from chainotel_analyzer.model.rows import DecodedSpans, insert_table
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
parallel: each costs several ms per INSERT in chDB whatever its size, and there is one INSERT per request."""


def dedup_token(digest: int) -> str:
    """The ``insert_deduplication_token`` of the request with ``digest``: ``otlp-<16 hex>``. The same
    for every analyzer process and version, so a retry reaching any of them is refused by ClickHouse."""
    return f"otlp-{digest:016x}"


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
        self.last_error = ""
        self.spans_written = 0
        self.inserts = 0
        self.insert_seconds = 0.0

    # --- public --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (nothing is read from the store: deduplication is ClickHouse's)."""
        self._thread.start()

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
        """Queue a decoded request for insert; the future resolves once ClickHouse holds its rows:
        True when this INSERT stored them, False when they were stored before (a retry, see
        ``chain_requests`` in the module docstring). Raises :class:`WriteQueueFull` or
        :class:`StoreUnavailable` when the request cannot be queued now,
        :class:`RequestTooLarge` when it never can.
        """
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
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if not batch:
                self._probe()
                continue
            try:
                known = self._stored_before({item.digest: item.spans.count for item in batch})
            except Exception as exc:  # noqa: BLE001 - the store does not answer
                self._store_down(batch, exc)
                continue
            for n, item in enumerate(batch):
                try:
                    self._insert(item)
                except Exception as exc:  # noqa: BLE001 - report to this sender, keep running
                    if self._failed(item, exc):
                        self._store_down(batch[n + 1 :], exc)
                        break
                    continue
                self._resolve(item, result=item.digest not in known)

    def _failed(self, item: _Item, exc: Exception) -> bool:
        """``item``'s INSERT raised ``exc``: it gets :class:`StoreUnavailable` (its retry is deduplicated
        by ClickHouse). Returns True when the store does not answer ``SELECT 1`` either."""
        error = self.last_error = str(exc)[:500]
        log.warning("INSERT of a request of %d spans failed: %s", item.spans.count, error)
        self._resolve(item, error=f"ClickHouse INSERT failed: {error}")
        try:
            self._client.command("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure: the store is down
            return True
        return False

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
        if item.future.done():
            return
        if error:
            item.future.set_exception(StoreUnavailable(error))
        else:
            item.future.set_result(result)

    def _stored_before(self, digests: dict[int, int]) -> set[int]:
        """Those of ``digests`` (``{digest: spans}``) whose every row is stored already (``chain_requests``, within
        ``dedup_window_s`` seconds of ingest by the server's clock). Raises clickhouse-connect's errors."""
        window = int(self._settings.dedup_window_s)
        if window <= 0:
            return set()
        rows = self._client.query(
            "SELECT request_digest, sum(span_count) FROM chain_requests "
            "WHERE request_digest IN {d:Array(UInt64)} AND ingested_at >= now() - toIntervalSecond({w:UInt32}) "
            "GROUP BY request_digest",
            parameters={"d": list(digests), "w": window},
        ).result_rows
        counts = {item_digest: n for item_digest, n in rows}
        return {d for d, n in digests.items() if counts.get(d, 0) >= n}

    def _insert(self, item: _Item) -> None:
        table = insert_table([(item.digest, item.spans)])
        started = time.perf_counter()
        self._client.insert_arrow(
            "chain_history", table, settings={**INSERT_SETTINGS, "insert_deduplication_token": dedup_token(item.digest)}
        )
        self.insert_seconds += time.perf_counter() - started
        self.spans_written += table.num_rows
        self.inserts += 1
