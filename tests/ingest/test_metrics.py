"""The analyzer's own ingest figures on ``/metrics`` of a real analyzer: every span of a decoded
request counted once by outcome, and the INSERT duration histogram with real buckets."""

from __future__ import annotations

import time

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.otlp_data import request
from tests.processes import running

PB = {"Content-Type": "application/x-protobuf"}


def _scrape(base: str) -> dict[str, dict[tuple, float]]:
    page = httpx.get(base + "/metrics", timeout=10).text
    return {
        family.name: {tuple(sorted(s.labels.items())) + (s.name,): s.value for s in family.samples}
        for family in text_string_to_metric_families(page)
    }


def _spans(metrics: dict) -> dict[str, float]:
    return {dict(labels[:-1])["result"]: v for labels, v in metrics["chainotel_ingest_spans"].items()
            if labels[-1] == "chainotel_ingest_spans_total"}  # fmt: skip


def test_ingest_outcomes_and_insert_histogram_on_metrics(tmp_path):
    env = {"CHAINOTEL_ALERT_EVAL_INTERVAL_S": "0.2", "CHAINOTEL_DECODE_WORKERS": "0"}
    with running(tmp_path / "db", env, grpc=False) as a, httpx.Client(timeout=30) as c:
        url = a.http + "/v1/traces"
        stored = request(n_traces=2, spans_per_trace=5).SerializeToString()
        assert c.post(url, content=stored, headers=PB).status_code == 200  # 10 stored
        assert c.post(url, content=stored, headers=PB).status_code == 200  # a retry: 10 deduplicated
        partly = request(n_traces=1, spans_per_trace=4)
        partly.resource_spans[0].scope_spans[0].spans[1].span_id = bytes(8)
        partly.resource_spans[0].scope_spans[0].spans[2].trace_id = b"\x01" * 3
        r = c.post(url, content=partly.SerializeToString(), headers=PB)  # 2 stored, 2 rejected
        assert ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans == 2
        expected = {"stored": 12.0, "deduplicated": 10.0, "rejected": 2.0, "refused": 0.0}
        deadline = time.monotonic() + 15
        while (spans := _spans(metrics := _scrape(a.http))) != expected and time.monotonic() < deadline:
            time.sleep(0.2)  # the page is rendered at most once per interval
        assert spans == expected
        hist = metrics["chainotel_insert_duration_seconds"]
        buckets = {dict(labels[:-1])["le"]: v for labels, v in hist.items() if labels[-1].endswith("_bucket")}
        count = next(v for labels, v in hist.items() if labels[-1].endswith("_count"))
        assert count >= 2  # the two batches that stored something (nothing else was inserted)
        assert len(buckets) > 2 and buckets["+Inf"] == count
        assert list(buckets.values()) == sorted(buckets.values())  # cumulative, a real distribution
        assert next(v for labels, v in hist.items() if labels[-1].endswith("_sum")) > 0
