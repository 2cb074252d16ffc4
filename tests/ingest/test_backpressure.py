"""Backpressure: a full write queue answers 503 + Retry-After / UNAVAILABLE; a failed INSERT is never
acknowledged and marks the store unavailable until it answers again."""

from __future__ import annotations

import base64
import json
import threading
import time

import grpc
import httpx
import pytest

from tests.ingest.conftest import open_db
from tests.ingest.otlp_data import request

PB = {"Content-Type": "application/x-protobuf"}


def test_full_queue_gives_503_and_unavailable(analyzer_factory):
    # a queue of 10 spans, and the writer lingers 1 s for more before each INSERT
    a = analyzer_factory({
        "CHAINOTEL_QUEUE_MAX_SPANS": "10", "CHAINOTEL_BATCH_MAX_WAIT": "1.0", "CHAINOTEL_RETRY_AFTER": "2",
        "CHAINOTEL_DECODE_WORKERS": "0",
    })  # fmt: skip
    url = a.http + "/v1/traces"
    first = request(n_traces=2, spans_per_trace=5).SerializeToString()  # 10 spans: fills the queue
    answers = []
    sender = threading.Thread(target=lambda: answers.append(httpx.post(url, content=first, headers=PB, timeout=30)))
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while httpx.get(a.http + "/health", timeout=5).json()["write_queue"]["depth_spans"] != 10:
            assert time.monotonic() < deadline, "the first request never reached the queue"
            time.sleep(0.02)
        second = request(n_traces=1, spans_per_trace=2).SerializeToString()
        r = httpx.post(url, content=second, headers=PB, timeout=30)
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        with grpc.insecure_channel(a.grpc) as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export", request_serializer=None,
                response_deserializer=lambda b: b,
            )  # fmt: skip
            with pytest.raises(grpc.RpcError) as err:
                export(second, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "write queue full" in err.value.details()
    finally:
        sender.join(30)
    assert answers and answers[0].status_code == 200  # committed after the linger
    # the sender's retry now goes through
    assert httpx.post(url, content=second, headers=PB, timeout=30).status_code == 200
    a.stop()
    with open_db(a.data_dir) as db:
        assert db.command("SELECT count() FROM chain_history") == 12


def test_failed_insert_is_not_acknowledged(tmp_path):
    from analyzer.ingest.otlp import decode_request
    from analyzer.settings import AnalyzerSettings
    from analyzer.store.client import open_store
    from analyzer.store.migrations import migrate
    from analyzer.store.writer import SpanWriter, StoreUnavailable

    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", batch_max_wait=0)
    store = open_store(settings)
    try:
        migrate(store.client)
        writer = SpanWriter(store, settings)
        writer.start()
        assert writer.submit(1, decode_request(request())).result(10) is True
        # the INSERT target is gone, and with it the lookup of what a failed INSERT stored: the store is down
        store.client.command("RENAME TABLE chain_history TO chain_history_away")
        with pytest.raises(StoreUnavailable, match="INSERT failed"):
            writer.submit(2, decode_request(request())).result(10)
        assert not writer.healthy
        with pytest.raises(StoreUnavailable, match="unavailable"):
            writer.submit(3, decode_request(request()))
        store.client.command("RENAME TABLE chain_history_away TO chain_history")
        deadline = time.monotonic() + 10
        while not writer.healthy and time.monotonic() < deadline:  # the writer probes the store every second
            time.sleep(0.1)
        assert writer.healthy
        # the refused request is stored when the sender retries it, exactly once
        assert writer.submit(2, decode_request(request())).result(10) is True
        assert writer.submit(2, decode_request(request())).result(10) is False
        writer.stop()
        assert store.client.command("SELECT uniqExact(request_digest) FROM chain_history") == 2
    finally:
        store.close()


def test_full_decoder_backlog_gives_503(analyzer_factory):
    from google.protobuf import json_format

    a = analyzer_factory({"CHAINOTEL_DECODE_WORKERS": "1", "CHAINOTEL_DECODE_MAX_PENDING_BYTES": "1000"})
    url = a.http + "/v1/traces"
    doc = json_format.MessageToDict(request(n_traces=600, spans_per_trace=10))  # JSON: slow to decode
    for span in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # OTLP/JSON IDs are hex, not base64
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = base64.b64decode(span[key]).hex()
    big = json.dumps(doc).encode()
    answers = []
    sender = threading.Thread(
        target=lambda: answers.append(httpx.post(url, content=big, headers={"Content-Type": "application/json"}, timeout=60))
    )
    sender.start()
    try:
        deadline = time.monotonic() + 20
        while httpx.get(a.http + "/health", timeout=5).json()["decoders"]["pending_bytes"] == 0:
            assert time.monotonic() < deadline and not answers, "the big request was never seen decoding"
            time.sleep(0.005)
        r = httpx.post(url, content=request(n_traces=1).SerializeToString(), headers=PB, timeout=30)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    finally:
        sender.join(60)
    assert answers and answers[0].status_code == 200 and answers[0].json() == {}
