"""No single request stalls or exhausts the analyzer: bounded time parameters, requests too large
once decoded refused for good (413 / INVALID_ARGUMENT, never the retryable 503), slow clients cut
off by deadlines, Retry-After on every 503. Real analyzer processes on 127.0.0.1."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.ingest.otlp_data import kv, request
from tests.processes import child_pids, running

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PROTOBUF = {"Content-Type": "application/x-protobuf"}
MEMORY_BUDGET_BYTES = 1536 * 1024**2
"""The process tree (analyzer + decoders) stays below this under the requests here (docs/security.md)."""

WINDOW_ENDPOINTS = [
    "/api/v1/analytics/bottlenecks", "/api/v1/analytics/critical-path", "/api/v1/chains/B3/bottlenecks",
    "/api/v1/chains/B3/dependency-graph", "/api/v1/analytics/chains/health/overview",
    "/api/v1/analytics/performance/real-time", "/api/v1/analytics/services/checkout/impact",
    "/api/v1/analytics/optimization/recommendations",
]  # fmt: skip


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    env = {"CHAINOTEL_HTTP_HEADER_TIMEOUT_S": "2", "CHAINOTEL_HTTP_BODY_TIMEOUT_S": "2", "CHAINOTEL_RETRY_AFTER_S": "3"}
    with running(tmp / "db", env) as a:
        yield a


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (/proc VmRSS)."""
    total = 0
    for p in [pid, *child_pids(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def test_huge_time_parameters_answer_422_at_once(analyzer):
    """``since=1e999990`` made a million-digit integer under the GIL (25 s in which /health waited);
    ``±1e999999999`` gave a 500 (decimal.Overflow). Each is now a 422 naming the parameter; the
    5 s client timeout is the bound, far above the milliseconds it takes."""
    with httpx.Client(base_url=analyzer.http, timeout=5) as http:
        for path in WINDOW_ENDPOINTS:
            for value in ("1e999990", "1e999999999", "-1e999999999", "9" * 5000):
                r = http.get(path, params={"since": value})
                assert r.status_code == 422, (path, value, r.status_code, r.text[:200])
                assert "since" in r.text
        r = http.get("/api/v1/analytics/anomalies/detect", params={"until": "-1e999999999"})
        assert r.status_code == 422 and "until" in r.text
        r = http.get("/api/v1/analytics/bottlenecks", params={"baseline_since": "1e999990", "baseline_until": "1"})
        assert r.status_code == 422 and "baseline_since" in r.text
        assert http.get("/health").status_code == 200


def amplifying_request(spans: int = 20_000, attribute_bytes: int = 100_000) -> ExportTraceServiceRequest:
    """One resource with a big attribute and many tiny spans: each span's row would carry a copy of it."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", "amplifier"), kv("padding", "x" * attribute_bytes)])
    ss = rs.scope_spans.add()
    for i in range(spans):
        span = ss.spans.add()
        span.trace_id = (i + 1).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.start_time_unix_nano = span.end_time_unix_nano = 1_700_000_000_000_000_000
    return req


def test_requests_too_large_once_decoded_are_refused_for_good(analyzer):
    """An amplifying request (small gzip body, GBs as rows) and one with more spans than the write
    queue holds (it used to bypass the limit on an empty queue) get 413 / INVALID_ARGUMENT — not the
    retryable 503 — while a normal request beside them is stored, and memory stays in budget."""
    amplifier = amplifying_request().SerializeToString()
    body = gzip.compress(amplifier)
    assert len(body) < 200_000  # small on the wire; ~2 GB as rows
    too_many = request(n_traces=1, spans_per_trace=110_000).SerializeToString()  # queue_max_spans: 100 000
    url = analyzer.http + "/v1/traces"
    r = httpx.post(url, content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=60)
    assert r.status_code == 413, r.text
    assert "resource attributes are copied" in status_pb2.Status.FromString(r.content).message
    r = httpx.post(url, content=too_many, headers=PROTOBUF, timeout=60)
    assert r.status_code == 413 and "110000 spans" in status_pb2.Status.FromString(r.content).message
    with grpc.insecure_channel(analyzer.grpc, options=[("grpc.max_send_message_length", 64 * 1024**2)]) as channel:
        export = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=lambda b: b)
        for message in (amplifier, too_many):
            with pytest.raises(grpc.RpcError) as err:
                export(message, timeout=60)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    assert httpx.post(url, content=request(2, 3).SerializeToString(), headers=PROTOBUF, timeout=30).status_code == 200
    assert tree_rss_bytes(analyzer.proc.pid) < MEMORY_BUDGET_BYTES


def _partial_header_sockets(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app")  # never finished
        socks.append(s)
    return socks


def test_slow_clients_do_not_stop_health_or_exporters(analyzer):
    """1 100 sockets sending partial headers used to hold every connection (uvicorn's concurrency
    limit counts them) so /health and /v1/traces answered 503. Now they are cut after the header
    deadline (408) and well-behaved callers are served meanwhile."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult

    socks = _partial_header_sockets(analyzer.http_port, 1100)
    slow_body = socket.create_connection(("127.0.0.1", analyzer.http_port), timeout=10)
    slow_body.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                      b"Content-Length: 15000000\r\n\r\n" + b"\0" * 1000)  # fmt: skip
    try:
        assert httpx.get(analyzer.http + "/health", timeout=10).status_code == 200
        provider = TracerProvider(resource=Resource.create({"service.name": "polite"}))
        with provider.get_tracer("tests").start_as_current_span("polite-root") as span:
            pass
        exporter = OTLPSpanExporter(endpoint=analyzer.http + "/v1/traces", timeout=10)
        assert exporter.export([span]) == SpanExportResult.SUCCESS
        exporter.shutdown()
        # the deadlines (2 s here) cut them: 408 for partial headers, a close for the stalled body
        deadline = time.monotonic() + 30
        for s in socks[:50] + [slow_body]:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            data = s.recv(4096)
            assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:100]
    finally:
        for s in socks + [slow_body]:
            s.close()


def test_every_503_carries_retry_after(tmp_path):
    """Past ``http_max_concurrency`` requests in progress: 503 + Retry-After (uvicorn's own 503 had
    none); /health is not counted and still answers."""
    env = {"CHAINOTEL_HTTP_MAX_CONCURRENCY": "1", "CHAINOTEL_RETRY_AFTER_S": "3", "CHAINOTEL_HTTP_BODY_TIMEOUT_S": "20"}
    with running(tmp_path / "db", env, grpc=False) as a:
        held = socket.create_connection(("127.0.0.1", a.http_port), timeout=10)
        held.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 100\r\n\r\n")  # in progress, waiting for its body
        try:
            deadline = time.monotonic() + 10
            while True:
                r = httpx.get(a.http + "/api/v1/chains", timeout=10)
                if r.status_code == 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert r.status_code == 503 and r.headers["retry-after"] == "3" and "retry later" in r.json()["detail"]
            assert httpx.get(a.http + "/health", timeout=10).status_code == 200
        finally:
            held.close()


def test_health_stays_fast_while_a_huge_parameter_is_refused(analyzer):
    """Many concurrent hostile GETs and /health answers throughout (the old parser held the GIL)."""
    errors: list[object] = []

    def hostile():
        try:
            with httpx.Client(base_url=analyzer.http, timeout=5) as http:
                for _ in range(20):
                    assert http.get(WINDOW_ENDPOINTS[0], params={"since": "1e999990"}).status_code == 422
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hostile) for _ in range(4)]
    for t in threads:
        t.start()
    with httpx.Client(base_url=analyzer.http, timeout=5) as http:
        for _ in range(10):
            assert http.get("/health").status_code == 200
    for t in threads:
        t.join(30)
    assert errors == []


def test_a_full_queue_is_answered_before_the_body_is_read(tmp_path):
    """Under a 503 storm useful throughput halved because a full queue was found only after the
    body had been read and decoded. Now the 503 comes as soon as the headers are in: here to a
    request that announces 8 MiB and never sends a byte of it."""
    from chainotel_analyzer.settings import AnalyzerSettings
    from tests.ingest.backpressure_support import hold_inserts, served

    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", grpc_port=-1, decode_workers=0,
                                queue_max_spans=4, batch_max_wait_s=0, retry_after_s=2)  # fmt: skip
    with served(settings) as runtime:
        inserting, release = hold_inserts(runtime)
        url = runtime.http + "/v1/traces"
        senders = [threading.Thread(target=httpx.post, args=(url,), kwargs={
            "content": request(1, n).SerializeToString(), "headers": PROTOBUF, "timeout": 60}) for n in (1, 4)]  # fmt: skip
        senders[0].start()
        try:
            assert inserting.wait(30)  # the first INSERT is held; the next 4 spans fill the queue
            senders[1].start()
            deadline = time.monotonic() + 30
            while runtime.writer.queue_depth < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            port = int(runtime.http.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          b"Content-Length: 8388608\r\n\r\n")  # the body never comes
                answer = s.recv(4096)  # within the socket timeout, well before any body deadline
            assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 2" in answer.lower(), answer[:300]
        finally:
            release.set()
            for sender in senders:
                sender.join(60)


def test_stalled_uploads_stay_within_the_memory_budget(tmp_path):
    """100 uploads of 15 MiB stalled before their last byte added 1.8 GiB that was never returned
    (and the k8s pod has 2 GiB). Now the body deadline cuts them: the process tree stays within
    the budget while they hang, gives most of it back once they are cut, and /health answers."""
    uploads, size, sent = 100, 15 * 1024**2, 14 * 1024**2
    with running(tmp_path / "db", {"CHAINOTEL_HTTP_BODY_TIMEOUT_S": "3"}, grpc=False) as a:
        base = tree_rss_bytes(a.proc.pid)
        peak, stop = [base], threading.Event()

        def sample():
            while not stop.wait(0.2):
                peak.append(tree_rss_bytes(a.proc.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        socks, chunk = [], b"\0" * 1024**2
        try:
            for _ in range(uploads):
                s = socket.create_connection(("127.0.0.1", a.http_port), timeout=30)
                s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          b"Content-Length: %d\r\n\r\n" % size)  # fmt: skip
                try:
                    for _ in range(sent // len(chunk)):
                        s.sendall(chunk)
                except OSError:  # already cut by the body deadline
                    pass
                socks.append(s)
            assert httpx.get(a.http + "/health", timeout=10).status_code == 200
            deadline = time.monotonic() + 30  # every upload cut by the 3 s body deadline
            for s in socks:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    s.recv(4096)
                except OSError:
                    pass
            time.sleep(1)
            after = tree_rss_bytes(a.proc.pid)
        finally:
            stop.set()
            sampler.join(10)
            for s in socks:
                s.close()
        assert max(peak) < MEMORY_BUDGET_BYTES, f"peak {max(peak) >> 20} MiB, base {base >> 20} MiB"
        assert after - base < 512 * 1024**2, f"{(after - base) >> 20} MiB kept after the uploads were cut"
        assert httpx.get(a.http + "/health", timeout=10).status_code == 200
