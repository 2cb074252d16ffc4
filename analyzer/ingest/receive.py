"""What both receivers share: gzip with a size cap, the request digest, decoding — run in a pool of
decoder processes — and the OTLP response.

Decoding (protobuf/JSON → Arrow columns, :mod:`.otlp`) is the per-span Python work of ingest. It runs
in ``decode_workers`` spawned processes (:class:`DecodePool`) so it uses every core and leaves the
receiving process's GIL to HTTP, gRPC and the writer; those processes never touch ClickHouse (the
analyzer process alone owns the chDB directory). ``decode_workers = 0`` decodes in the receiving
thread instead.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import threading
import zlib
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from chainotel_analyzer.ingest.otlp import decode_request
from chainotel_analyzer.model.rows import DecodedSpans
from chainotel_analyzer.ingest.otlp_json import InvalidRequest, parse_request
from chainotel_analyzer.ingest.otlp_wire import Salvage, WireError, salvage_request
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import SpanSink

log = logging.getLogger(__name__)

ALREADY_STORED_HEADER = "Chainotel-Already-Stored-Spans"
"""Response header of ``POST /v1/traces`` (gRPC: trailing metadata ``chainotel-already-stored-spans``):
how many of the request's spans were stored before it arrived — a retry, or a file imported again.
Present only when not 0; OTLP's response itself has no such field."""


class BodyTooLarge(ValueError):
    """The body exceeds a configured limit (HTTP 413)."""


class DecoderUnavailable(RuntimeError):
    """No decode now: the decoders' backlog is full, or a decoder process died and the pool was
    restarted — retry later (HTTP 503 / gRPC UNAVAILABLE)."""


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Decompress a gzip body (all members), stopping as soon as the output would exceed ``limit`` bytes.

    Raises :class:`BodyTooLarge` past the limit (a gzip bomb never inflates beyond ``limit + 1`` bytes)
    and :class:`InvalidRequest` for data that is not valid gzip.
    """
    out = bytearray()
    rest = data
    try:
        while rest:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = d.decompress(rest, limit + 1 - len(out))
            out += chunk
            if len(out) > limit or d.unconsumed_tail:
                raise BodyTooLarge(f"decompressed body exceeds {limit} bytes")
            if not d.eof:
                raise InvalidRequest("gzip body is truncated")
            rest = d.unused_data
    except zlib.error as exc:
        raise InvalidRequest(f"body is not valid gzip: {exc}") from None
    return bytes(out)


def request_digest(body: bytes) -> int:
    """63-bit digest (BLAKE2b) of a request's decompressed body, as stored in ``chain_history.request_digest``."""
    return int.from_bytes(hashlib.blake2b(body, digest_size=8).digest(), "big") & 0x7FFF_FFFF_FFFF_FFFF


def parse_protobuf(body: bytes) -> tuple[ExportTraceServiceRequest, Salvage | None]:
    """Parse a binary ``ExportTraceServiceRequest``: ``(request, None)``; when the parser refuses it as
    a whole (invalid UTF-8, nesting too deep), what parses of it span by span and the spans refused
    (:func:`~chainotel_analyzer.ingest.otlp_wire.salvage_request`). :class:`InvalidRequest` with the
    reason when the body is not protobuf at all."""
    try:
        return ExportTraceServiceRequest.FromString(body), None
    except DecodeError as exc:
        error = exc
    try:
        salvage = salvage_request(body)
    except WireError:
        raise InvalidRequest(f"body is not a protobuf ExportTraceServiceRequest: {error}") from None
    return salvage.request, salvage


_ROW_OVERHEAD_BYTES = 160
"""Arrow bytes of one ``chain_history`` row beyond its protobuf fields: hex IDs, offsets, fixed columns."""


def check_decoded_size(request: ExportTraceServiceRequest, max_spans: int, max_bytes: int) -> None:
    """Refuse, before decoding, a request that would hold more than ``max_spans`` spans or about
    ``max_bytes`` bytes once decoded: each span's row carries a copy of its resource's attributes, so
    a small request with big resource attributes and many spans inflates (estimate: per resource,
    ``resource bytes × spans + scope spans bytes + 160 B × spans``). Raises :class:`BodyTooLarge`."""
    spans = size = 0
    for rs in request.resource_spans:
        n = sum(len(ss.spans) for ss in rs.scope_spans)
        spans += n
        if n:
            size += (rs.resource.ByteSize() + _ROW_OVERHEAD_BYTES) * n + sum(ss.ByteSize() for ss in rs.scope_spans)
    if spans > max_spans:
        raise BodyTooLarge(f"request holds {spans} spans, more than the {max_spans} allowed; send smaller requests")
    if size > max_bytes:
        raise BodyTooLarge(
            f"request would take about {size} bytes once decoded (resource attributes are copied onto each "
            f"of its {spans} spans), more than the {max_bytes} allowed; send smaller requests"
        )


@dataclass
class Payload:
    """A decoded request: ``digest`` of its decompressed body and its ``spans``."""

    digest: int
    spans: DecodedSpans


def decode_payload(
    body: bytes, gzipped: bool, is_json: bool, max_decompressed: int, max_spans: int | None = None,
    max_decoded_bytes: int | None = None,
) -> Payload:
    """Body as received → :class:`Payload`. Raises :class:`BodyTooLarge` (also past ``max_spans`` /
    ``max_decoded_bytes``, see :func:`check_decoded_size`) or :class:`InvalidRequest`."""
    if gzipped:
        body = gunzip_capped(body, max_decompressed)
    elif len(body) > max_decompressed:
        raise BodyTooLarge(f"body exceeds {max_decompressed} bytes")
    request, salvage = (parse_request(body), None) if is_json else parse_protobuf(body)
    if max_spans is not None and max_decoded_bytes is not None:
        check_decoded_size(request, max_spans, max_decoded_bytes)
    spans = decode_request(request, salvage.rejected, salvage.reasons) if salvage else decode_request(request)
    del request
    if max_decoded_bytes is not None and spans.table is not None and spans.table.nbytes > max_decoded_bytes:
        raise BodyTooLarge(f"request takes {spans.table.nbytes} bytes once decoded, more than the "
                           f"{max_decoded_bytes} allowed; send smaller requests")  # fmt: skip
    return Payload(request_digest(body), spans)


def _refusal(exc: BaseException) -> BaseException:
    """What a receiver gets for a decode that raised ``exc``: :class:`BodyTooLarge` and
    :class:`InvalidRequest` as they are; ``MemoryError``/``OSError`` (the analyzer's resources, not the
    input) become :class:`DecoderUnavailable` (503 / UNAVAILABLE, retried); anything else — input the decoder should have refused with a
    reason — is logged with its traceback and becomes :class:`InvalidRequest` naming it, so the sender
    gets 400 / INVALID_ARGUMENT with a reason rather than a bare 500 / UNKNOWN, and other requests go on."""
    if isinstance(exc, (BodyTooLarge, InvalidRequest)):
        return exc
    if isinstance(exc, (MemoryError, OSError)):  # the analyzer's trouble, not the input's: retryable
        log.error("an OTLP request could not be decoded for lack of resources", exc_info=exc)
        return DecoderUnavailable(f"decoder out of resources ({type(exc).__name__}); retry later")
    log.error("an OTLP request could not be decoded; it is refused", exc_info=exc)
    return InvalidRequest(f"request could not be decoded: {type(exc).__name__}: {exc}")


def _init_decoder(parent_pid: int) -> None:
    """Set up a decoder process: die with the analyzer, yield the CPU to it.

    - Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: a decoder gets SIGTERM when the analyzer process dies
      (even by SIGKILL); without it the spawned process would wait forever on its task queue, whose
      write end it holds itself.
    - ``nice 5``: the analyzer's INSERTs are the critical path.
    """
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: rely on the analyzer's orderly shutdown
        pass
    if os.getppid() != parent_pid:  # the analyzer died before prctl took effect
        os._exit(0)
    os.nice(5)


def _warm_up() -> None:
    """Runs once per decoder process: holds it busy briefly so each warm-up lands in its own process."""
    import time

    time.sleep(0.2)


class DecodePool:
    """Runs :func:`decode_payload` in ``workers`` spawned processes (or inline with ``workers = 0``).

    :meth:`submit` returns a ``concurrent.futures.Future`` of :class:`Payload` whose exception is
    :class:`BodyTooLarge`, :class:`InvalidRequest` (also for any unexpected decoder error, logged) or
    :class:`DecoderUnavailable` — nothing else; it raises :class:`DecoderUnavailable` at once when more than ``max_pending_bytes`` of bodies wait for
    a decoder (the bound on memory held before the write queue).
    """

    def __init__(
        self, workers: int, max_pending_bytes: int = 64 * 1024 * 1024, max_spans: int | None = None,
        max_decoded_bytes: int | None = None,
    ):
        self._workers = workers
        self._max_pending = max_pending_bytes
        self._limits = (max_spans, max_decoded_bytes)  # per request, see check_decoded_size
        self._pending = 0
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def busy(self) -> str:
        """Why the backlog is at its limit ('' when it is not): receivers then answer 503 before
        reading a body."""
        if self._workers > 0 and self._pending >= self._max_pending:
            return f"decoders busy ({self._pending} bytes waiting, limit {self._max_pending})"
        return ""

    @property
    def pending_bytes(self) -> int:
        """Bytes of request bodies handed to the decoders and not decoded yet."""
        return self._pending

    def _new_executor(self) -> ProcessPoolExecutor | None:
        if self._workers <= 0:
            return None
        # spawn, not fork: the analyzer process runs chDB and grpc threads, which must not be forked
        executor = ProcessPoolExecutor(
            self._workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_decoder,
            initargs=(os.getpid(),),
        )
        try:
            for _ in range(self._workers):  # start every process now (imports take ~1 s), not on first requests
                executor.submit(_warm_up)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return executor

    def submit(self, body: bytes, gzipped: bool, is_json: bool, max_decompressed: int) -> Future:
        """Decode ``body`` off the caller's thread (see class docstring)."""
        executor = self._executor
        if executor is None:
            done: Future = Future()
            try:
                done.set_result(decode_payload(body, gzipped, is_json, max_decompressed, *self._limits))
            except Exception as exc:  # noqa: BLE001 - every decode failure refuses this request only
                done.set_exception(_refusal(exc))
            return done
        size = len(body)
        with self._lock:
            if self._pending and self._pending + size > self._max_pending:
                raise DecoderUnavailable(
                    f"decoders busy ({self._pending} bytes waiting, limit {self._max_pending}); retry later"
                )
            self._pending += size
        try:
            inner = executor.submit(decode_payload, body, gzipped, is_json, max_decompressed, *self._limits)
        except (BrokenProcessPool, RuntimeError):
            self._release(size)
            self._restart(executor)
            raise DecoderUnavailable("decoder processes restarted; retry") from None
        outer: Future = Future()

        def relay(f: Future) -> None:
            self._release(size)
            exc = f.exception()
            if isinstance(exc, BrokenProcessPool):
                self._restart(executor)
                outer.set_exception(DecoderUnavailable("a decoder process died; retry"))
            elif exc is not None:
                outer.set_exception(_refusal(exc))
            else:
                outer.set_result(f.result())

        inner.add_done_callback(relay)
        return outer

    def _release(self, size: int) -> None:
        with self._lock:
            self._pending -= size

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the decoder processes (idempotent)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class ExportResult:
    """What a receiver answers on success: spans ``rejected`` by validation and why ('' if none)."""

    rejected: int
    error_message: str

    def response(self) -> ExportTraceServiceResponse:
        """The OTLP response; ``partial_success`` is set only when spans were rejected (OTLP spec)."""
        resp = ExportTraceServiceResponse()
        if self.rejected:
            resp.partial_success.rejected_spans = self.rejected
            resp.partial_success.error_message = self.error_message
        return resp


@dataclass
class Intake:
    """What an OTLP receiver needs: the ``settings`` (limits, timeouts), the ``decoders`` and the
    ``sink`` that stores decoded requests (:class:`~chainotel_analyzer.store.interfaces.SpanSink`)."""

    settings: AnalyzerSettings
    decoders: DecodePool
    sink: SpanSink
