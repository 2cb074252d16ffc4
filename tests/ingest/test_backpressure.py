"""Backpressure: a full write queue, a full decoder backlog or too many gRPC calls answer 503 +
Retry-After / UNAVAILABLE + RetryInfo (a store that is down: test_insert_failures.py).

No timing races: each test holds the part that would drain the backlog — the writer's INSERT (an
in-process analyzer, its INSERT waits for an Event) or the decoder processes (SIGSTOP) — so the full
state lasts until the test releases it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.ingest.conftest import open_db
from tests.ingest.backpressure_support import hold_inserts, served
from tests.processes import decoder_pids
from tests.ingest.otlp_data import request

PB = {"Content-Type": "application/x-protobuf"}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (≤ 30 s) for a state the test holds in place once reached, so no polling race."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.01)


def _retry_delay(err: grpc.RpcError) -> tuple[int, int]:
    """retry_delay seconds of the RetryInfo in ``grpc-status-details-bin`` and in ``google.rpc.retryinfo-bin``."""
    trailers = dict(err.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0] and status.message == err.details()
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    return info.retry_delay.seconds, error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds


def test_full_queue_gives_503_and_unavailable(tmp_path):
    from chainotel_analyzer.settings import AnalyzerSettings

    settings = AnalyzerSettings(
        clickhouse_url=f"chdb://{tmp_path / 'db'}", host="127.0.0.1", grpc_port=0, decode_workers=0,
        queue_max_spans=10, batch_max_wait_s=0, retry_after_s=2,
    )  # fmt: skip
    with served(settings) as runtime:
        inserting, release = hold_inserts(runtime)
        url = runtime.http + "/v1/traces"
        answers: list[httpx.Response] = []

        def post(body: bytes) -> threading.Thread:
            sender = threading.Thread(target=lambda: answers.append(httpx.post(url, content=body, headers=PB, timeout=60)))
            sender.start()
            return sender

        senders = [post(request(n_traces=1, spans_per_trace=2).SerializeToString())]
        try:
            assert inserting.wait(30)  # the first request's INSERT has started and is held
            senders.append(post(request(n_traces=2, spans_per_trace=5).SerializeToString()))  # 10 spans: a full queue
            _wait_for(lambda: runtime.writer.queue_depth == 10, "10 spans queued")
            third = request(n_traces=1, spans_per_trace=2).SerializeToString()
            r = httpx.post(url, content=third, headers=PB, timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"] == "2"
            with grpc.insecure_channel(f"127.0.0.1:{runtime.grpc_port}") as channel:
                export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=lambda b: b)
                with pytest.raises(grpc.RpcError) as err:
                    export(third, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "write queue full" in err.value.details()
            assert _retry_delay(err.value) == (2, 2)
        finally:
            release.set()
            for sender in senders:
                sender.join(60)
        assert [a.status_code for a in answers] == [200, 200]  # committed once released
        # the sender's retry now goes through
        assert httpx.post(url, content=third, headers=PB, timeout=30).status_code == 200
        assert runtime.store.client.command("SELECT count() FROM chain_history") == 14


def test_busy_decoders_and_too_many_grpc_calls_give_503_and_unavailable(analyzer_factory):
    a = analyzer_factory({
        "CHAINOTEL_DECODE_WORKERS": "1", "CHAINOTEL_DECODE_MAX_PENDING_BYTES": "1000",
        "CHAINOTEL_GRPC_MAX_CONCURRENT_RPCS": "1", "CHAINOTEL_RETRY_AFTER_S": "2",
    })  # fmt: skip
    _wait_for(lambda: len(decoder_pids(a.proc.pid)) == 1, "the decoder process")
    decoders = decoder_pids(a.proc.pid)
    first = request(n_traces=5, spans_per_trace=3).SerializeToString()
    assert len(first) > 1000
    second = request(n_traces=1, spans_per_trace=2).SerializeToString()
    with grpc.insecure_channel(a.grpc) as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=lambda b: b)
        os.kill(decoders[0], signal.SIGSTOP)  # nothing gets decoded until SIGCONT
        try:
            held = export.future(first, timeout=60)  # the one gRPC call allowed, waiting for its decoder
            _wait_for(
                lambda: httpx.get(a.http + "/health", timeout=10).json()["decoders"]["pending_bytes"] == len(first),
                "the first request waiting for its decoder",
            )
            # more bytes than the decoders may hold waiting → 503 + Retry-After
            r = httpx.post(a.http + "/v1/traces", content=second, headers=PB, timeout=30)
            assert r.status_code == 503 and r.headers["retry-after"] == "2" and "decoders busy" in r.text
            # a second gRPC call while one is in progress → UNAVAILABLE (retryable) + RetryInfo, not RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as err:
                export(second, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "1 OTLP/gRPC calls in progress already" in err.value.details()
            assert _retry_delay(err.value) == (2, 2)
        finally:
            os.kill(decoders[0], signal.SIGCONT)
        held.result(60)
        # the senders' retries go through
        assert httpx.post(a.http + "/v1/traces", content=second, headers=PB, timeout=30).status_code == 200
        export(second, timeout=30)  # an identical request: recognised, acknowledged
    a.stop()
    with open_db(a.data_dir) as db:
        assert db.command("SELECT count() FROM chain_history") == 15 + 2
