"""The batching writer: the only code that inserts spans, from one thread, behind a bounded queue.

Why one thread: chDB hosts one engine per process, has no async client, and every INSERT writes a
part. Receivers (HTTP and gRPC handlers) call :meth:`SpanWriter.submit` with a decoded request and
wait on the returned future, which resolves only after the batch holding the request is committed —
so no span is acknowledged before it is stored.

Batching: each INSERT has a large fixed cost in chDB (~30 ms: a part per table, views, indexes),
so parts should be big. The writer starts an INSERT when ``batch_max_spans`` (≤ 10 000) spans wait,
or when at least ``batch_min_spans`` wait and no request is being read or decoded
(:meth:`SpanWriter.incoming`), or ``batch_max_wait_s`` (≤ 1 s) after the oldest waiting request
arrived. Each INSERT takes what is waiting, at most ``batch_max_spans`` spans, in one Arrow-format
INSERT into ``chain_history`` (columns of :data:`chainotel_analyzer.model.rows.INSERT_SCHEMA`); the
materialized views fill ``chain_traces`` and ``chain_metrics`` in the same INSERT. Requests are
never split across INSERTs.

Backpressure: :meth:`submit` raises :class:`WriteQueueFull` when the waiting spans would exceed
``queue_max_spans`` or their Arrow columns ``queue_max_bytes`` (resource attributes counted once
per span, as they are held), :class:`RequestTooLarge` for one request that exceeds either limit on
its own — even with an empty queue; it could never be queued, so it is refused, not retried — and :class:`StoreUnavailable` while the store does not answer (after an INSERT
failed and the digest lookup below failed too, until a probe query succeeds again); receivers answer
503 + Retry-After / gRPC UNAVAILABLE, so the sender retries.

No duplicates on retry (an exporter resends the identical request after a timeout or a 503):

- every request is identified by a 64-bit digest of its decompressed body (:func:`chainotel_analyzer.ingest.receive.request_digest`);
- the digest is written with each of the request's rows (``chain_history.request_digest``) in the
  same INSERT as the rows themselves, so "rows stored" and "request recorded" cannot diverge;
- the writer remembers digests of committed requests for ``dedup_window_s`` seconds (reloaded from
  ``chain_history`` at start, so this survives a restart) and digests of queued/in-flight requests;
  a request whose digest is committed is acknowledged without inserting, one that is queued or being
  inserted shares that request's future. Because the duplicate never reaches ``chain_history``, the
  materialized views (``chain_metrics`` counts, ``chain_traces`` span counts) never double-count —
  which a ReplacingMergeTree on ``chain_history`` alone would not give.
- an INSERT can fail after ClickHouse committed the ``chain_history`` part: a materialized view fails
  (e.g. ``max_memory_usage`` in ``quantileTDigestState``; ClickHouse writes the table's part before
  its views'), or the HTTP response to a server's commit is lost (read timeout). So after a failed
  INSERT the writer asks ``chain_history`` which of the batch's digests it holds (rows ingested in the
  last minutes only: ``ingested_at`` prunes the search to the newest partitions). Requests with all
  their rows there are committed (their futures resolve True, a retry is recognised); the others get
  :class:`StoreUnavailable` — also one stored only in part (on a cluster, one shard committed and
  another failed), whose retry then stores its stored rows twice rather than losing the rest. If that lookup fails too, the store is down: nothing is known to be
  stored, the whole batch and the queue behind it get :class:`StoreUnavailable` (the senders retry).
- Limits: a retry that arrives after ``dedup_window_s`` is stored again. ClickHouse has no transaction
  across a table and its views: when ``chain_history`` committed but a view did not (a view failed,
  or the process died between them), the request's retry is recognised from ``request_digest`` (not
  stored twice) — but that request's ``chain_traces``/``chain_metrics`` rows are missing. A server
  that commits an INSERT only after the lookup has run (the client timed out while the INSERT still
  ran) leaves that request's rows stored twice once the sender retries it.
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

_MAX_REMEMBERED = 500_000
_LOOKUP_SLACK_S = 300
"""Seconds added to a failed INSERT's own duration when looking for its rows by ``ingested_at``
(server clock; on a cluster each shard's clock): clock steps and skew between servers."""


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
        self._committed: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._healthy = True
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="chainotel-span-writer", daemon=True)
        self.last_error = ""
        self.spans_written = 0
        self.inserts = 0
        self.insert_seconds = 0.0

    # --- public --------------------------------------------------------------------------------
    def start(self) -> None:
        """Reload recent request digests from the store, then start the writer thread.

        Raises clickhouse-connect's errors when the store cannot be read."""
        window = int(self._settings.dedup_window_s)
        if window > 0:
            now = time.monotonic()
            for digest in self._stored_rows(window):
                self._committed[digest] = now
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
        """Queue a decoded request for insert; the future resolves True when committed.

        Resolves at once with False for an identical request already committed (a retry). Raises
        :class:`WriteQueueFull` or :class:`StoreUnavailable` when the request cannot be queued now,
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
            if digest in self._committed:
                done: Future = Future()
                done.set_result(False)
                return done
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
            started = time.monotonic()
            try:
                self._insert(batch)
            except Exception as exc:  # noqa: BLE001 - report to every waiting sender, keep running
                self._insert_failed(batch, exc, time.monotonic() - started)
                continue
            self._settle(batch, [], "")

    def _insert_failed(self, batch: list[_Item], exc: Exception, elapsed: float) -> None:
        """After a failed INSERT of ``batch`` (which took ``elapsed`` seconds): requests whose rows
        ClickHouse committed anyway are committed, the rest fail (see module docstring)."""
        error = self.last_error = str(exc)[:500]
        log.warning("INSERT of %d request(s) failed: %s", len(batch), error)
        try:
            stored = self._stored_rows(elapsed + _LOOKUP_SLACK_S, [item.digest for item in batch])
        except Exception as lookup_exc:  # noqa: BLE001 - the store does not answer: nothing is known stored
            log.warning("cannot tell which of them ClickHouse stored: %s", lookup_exc)
            with self._cond:
                self._healthy = False
                # requests queued behind this batch fail too: their senders retry them later
                failed = batch + list(self._queue)
                self._queue.clear()
                self._queued_spans = 0
                self._queued_bytes = 0
            self._settle([], failed, error)
            return
        # only a request whose every row is there counts as stored: on a cluster a request's rows
        # land on several shards, and one shard can commit while another fails
        committed = [item for item in batch if stored.get(item.digest, 0) >= item.spans.count]
        partial = [item for item in batch if 0 < stored.get(item.digest, 0) < item.spans.count]
        if committed:
            log.warning("%d of them were stored all the same (committed before the error)", len(committed))
        if partial:
            log.warning("%d of them were stored in part; their retries will store those rows again", len(partial))
        self._settle(committed, [item for item in batch if stored.get(item.digest, 0) < item.spans.count], error)

    def _settle(self, committed: list[_Item], failed: list[_Item], error: str) -> None:
        """Resolve futures: ``committed`` requests True (and remembered for dedup), ``failed`` ones
        :class:`StoreUnavailable` naming ``error``."""
        now = time.monotonic()
        with self._cond:
            for item in failed:
                self._inflight.pop(item.digest, None)
            for item in committed:
                self._inflight.pop(item.digest, None)
                self._committed[item.digest] = now
            self._forget(now)
        for item in committed:
            if not item.future.done():
                item.future.set_result(True)
        for item in failed:
            if not item.future.done():
                item.future.set_exception(StoreUnavailable(f"ClickHouse INSERT failed: {error}"))

    def _stored_rows(self, within: float, digests: list[int] | None = None) -> dict[int, int]:
        """``{request digest: rows}`` of ``chain_history`` rows ingested in the last ``within`` seconds
        (server clock), only among ``digests`` if given. ``ingested_at`` (the partition key) limits the
        read to the newest partitions. Raises clickhouse-connect's errors."""
        sql = (
            "SELECT request_digest, count() FROM chain_history "
            "WHERE ingested_at >= now() - toIntervalSecond({w:UInt32})"
        )
        parameters: dict = {"w": max(1, int(within))}
        if digests is not None:
            sql += " AND request_digest IN {d:Array(UInt64)}"
            parameters["d"] = digests
        sql += " GROUP BY request_digest"
        return dict(self._client.query(sql, parameters=parameters).result_rows)

    def _forget(self, now: float) -> None:
        horizon = now - self._settings.dedup_window_s
        committed = self._committed
        while committed and (len(committed) > _MAX_REMEMBERED or next(iter(committed.values())) < horizon):
            committed.popitem(last=False)

    def _insert(self, batch: list[_Item]) -> None:
        table = insert_table([(item.digest, item.spans) for item in batch])
        started = time.perf_counter()
        self._client.insert_arrow("chain_history", table)
        self.insert_seconds += time.perf_counter() - started
        self.spans_written += table.num_rows
        self.inserts += 1
