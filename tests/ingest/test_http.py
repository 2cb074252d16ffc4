"""OTLP/HTTP receiver against a real analyzer subprocess and its chDB store."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import uuid

import httpx
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.ingest.conftest import open_db
from tests.processes import ANALYZER, running
from tests.ingest.otlp_data import request

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def _status(resp: httpx.Response) -> str:
    if resp.headers["content-type"].startswith("application/json"):
        return resp.json()["message"]
    return status_pb2.Status.FromString(resp.content).message


def test_error_paths_refuse_only_the_bad_request(tmp_path):
    env = {"CHAINOTEL_MAX_REQUEST_BYTES": "20000", "CHAINOTEL_MAX_DECOMPRESSED_BYTES": "100000"}
    with running(tmp_path / "db", env) as a:
        url = a.http + "/v1/traces"
        good = request(n_traces=1, spans_per_trace=2).SerializeToString()
        with httpx.Client(timeout=30) as c:
            # 415: content type and content encoding
            r = c.post(url, content=good, headers={"Content-Type": "text/plain"})
            assert r.status_code == 415 and "application/x-protobuf" in r.text
            r = c.post(url, content=good, headers={**PB, "Content-Encoding": "br"})
            assert r.status_code == 415 and "br" in _status(r)
            # 400 with the reason, in the request's content type
            r = c.post(url, content=b"\xff\xff\xff\x0f garbage", headers=PB)
            assert r.status_code == 400 and r.headers["content-type"] == "application/x-protobuf"
            assert "protobuf" in _status(r)
            r = c.post(url, content=b"{not json", headers=JS)
            assert r.status_code == 400 and r.headers["content-type"] == "application/json"
            assert "not valid JSON" in _status(r)
            r = c.post(url, content=b'{"resourceSpans": {"oops": 1}}', headers=JS)
            assert r.status_code == 400 and "resourceSpans" in _status(r)
            r = c.post(url, content=b"not gzip at all", headers={**PB, "Content-Encoding": "gzip"})
            assert r.status_code == 400 and "gzip" in _status(r)
            # 413: bytes sent over the limit
            big = request(n_traces=40, spans_per_trace=5).SerializeToString()
            assert len(big) > 20000
            r = c.post(url, content=big, headers=PB)
            assert r.status_code == 413 and "exceeds 20000" in _status(r)
            # 413: decompressed over the limit (a gzip bomb: 2 KB that inflates to 10 MB)
            bomb = gzip.compress(b"\0" * 10_000_000)
            assert len(bomb) < 20000
            r = c.post(url, content=bomb, headers={**PB, "Content-Encoding": "gzip"})
            assert r.status_code == 413 and "decompressed body exceeds 100000" in _status(r)
            # the analyzer is still fine and stores a good request
            r = c.post(url, content=good, headers=PB)
            assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
            assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")
    with open_db(tmp_path / "db") as db:
        assert db.command("SELECT count() FROM chain_history") == 2


def _json_request(trace_hex: str, root_hex: str) -> dict:
    """OTLP/JSON with hex IDs, enum names and numbers, an exception event, and two invalid spans."""
    base = 1_700_000_000_000_000_000
    return {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "frontend"}}]},
            "scopeSpans": [{
                "scope": {"name": "json-test"},
                "spans": [
                    {"traceId": trace_hex, "spanId": root_hex, "name": "GET /cart", "kind": "SPAN_KIND_SERVER",
                     "startTimeUnixNano": str(base), "endTimeUnixNano": str(base + 30_000_000),
                     "attributes": [{"key": "http.route", "value": {"stringValue": "/cart"}},
                                    {"key": "http.response.status_code", "value": {"intValue": "500"}},
                                    {"key": "chain.id", "value": {"stringValue": "C1"}}],
                     "events": [{"name": "exception", "timeUnixNano": str(base + 1),
                                 "attributes": [{"key": "exception.type", "value": {"stringValue": "ValueError"}},
                                                {"key": "exception.message", "value": {"stringValue": "bad cart"}},
                                                {"key": "exception.stacktrace", "value": {"stringValue": "Traceback ..."}}]}],
                     "status": {"code": "STATUS_CODE_ERROR", "message": "boom"}},
                    {"traceId": trace_hex, "spanId": "00000000000000a1", "parentSpanId": root_hex, "name": "GET cart",
                     "kind": 3, "startTimeUnixNano": str(base + 1_000), "endTimeUnixNano": str(base + 10_000_000),
                     "attributes": [{"key": "server.address", "value": {"stringValue": "cartservice"}}],
                     "status": {"code": 1}},
                    {"traceId": "0" * 32, "spanId": "00000000000000b1", "name": "zero trace id"},
                    {"traceId": trace_hex, "spanId": "abcd", "name": "short span id"},
                ],
            }],
        }]
    }  # fmt: skip


def test_formats_dedup_partial_success_sql_and_restart(tmp_path):
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

    data = tmp_path / "db"
    trace_hex, root_hex = os.urandom(16).hex(), os.urandom(8).hex()
    timed = request(n_traces=1, spans_per_trace=100, service="timed", chain="A2")
    for i, span in enumerate(timed.resource_spans[0].scope_spans[0].spans):  # durations 1..100 ms
        span.end_time_unix_nano = span.start_time_unix_nano + (i + 1) * 1_000_000
    with running(data) as a:
        url = a.http + "/v1/traces"
        # the SDK's OTLP/HTTP exporter (protobuf, gzip)
        exporter = OTLPSpanExporter(endpoint=url, compression=Compression.Gzip, timeout=10)
        provider = TracerProvider(resource=Resource.create({"service.name": "sdk-service"}))
        results = []

        class Recording(SimpleSpanProcessor):
            def on_end(self, span):
                results.append(exporter.export([span]))

        provider.add_span_processor(Recording(exporter))
        tracer = provider.get_tracer("tests")
        with tracer.start_as_current_span("sdk-root", attributes={"chain.id": "B1", "enduser.id": "alice"}):
            with tracer.start_as_current_span("sdk-child"):
                pass
        provider.shutdown()
        assert results == [SpanExportResult.SUCCESS, SpanExportResult.SUCCESS]

        with httpx.Client(timeout=30) as c:
            # raw protobuf, plain and gzip
            r = c.post(url, content=timed.SerializeToString(), headers=PB)
            assert r.status_code == 200, r.text
            r = c.post(url, content=gzip.compress(request(n_traces=1).SerializeToString()),
                       headers={**PB, "Content-Encoding": "gzip"})  # fmt: skip
            assert r.status_code == 200
            # JSON (gzip), partial success for the two invalid spans, JSON response
            body = json.dumps(_json_request(trace_hex, root_hex)).encode()
            r = c.post(url, content=gzip.compress(body), headers={**JS, "Content-Encoding": "gzip"})
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
            partial = r.json()["partialSuccess"]
            assert int(partial["rejectedSpans"]) == 2
            assert "trace_id is all zero" in partial["errorMessage"] and "span_id must be 8 bytes" in partial["errorMessage"]
            # OTLP < 0.15 JSON (instrumentationLibrarySpans) is stored, not acknowledged and dropped
            legacy = {"resourceSpans": [{"instrumentationLibrarySpans": [{
                "instrumentationLibrary": {"name": "legacy-lib"},
                "spans": [{"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": "legacy",
                           "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000001000000"}],
            }]}]}  # fmt: skip
            r = c.post(url, content=json.dumps(legacy).encode(), headers=JS)
            assert r.status_code == 200 and r.json() == {}
            # partial success over protobuf too
            bad = request(n_traces=1, spans_per_trace=2)
            bad.resource_spans[0].scope_spans[0].spans[1].span_id = bytes(8)
            r = c.post(url, content=bad.SerializeToString(), headers=PB)
            resp = ExportTraceServiceResponse.FromString(r.content)
            assert r.status_code == 200 and resp.partial_success.rejected_spans == 1
            assert "span_id is all zero" in resp.partial_success.error_message
            # a span time past 2^63 ns is refused alone, with the reason (it once failed the request: 500)
            late = request(n_traces=1, spans_per_trace=2)
            late.resource_spans[0].scope_spans[0].spans[1].start_time_unix_nano = 2**63
            r = c.post(url, content=late.SerializeToString(), headers=PB)
            resp = ExportTraceServiceResponse.FromString(r.content)
            assert r.status_code == 200 and resp.partial_success.rejected_spans == 1
            assert "start_time_unix_nano" in resp.partial_success.error_message
            # an exporter's retry: the identical body again (sequentially and concurrently) stores nothing new
            dup = request(n_traces=5, spans_per_trace=4).SerializeToString()
            for _ in range(2):
                assert c.post(url, content=dup, headers=PB).status_code == 200
            assert c.post(url, content=gzip.compress(dup), headers={**PB, "Content-Encoding": "gzip"}).status_code == 200
            # /health
            h = c.get(a.http + "/health").json()
            assert h["status"] == "ok" and h["store"]["reachable"] is True
            assert h["write_queue"]["depth_spans"] == 0 and h["write_queue"]["max_spans"] == 100_000

        # a second process on the same data directory gets a clear lock error
        other = subprocess.run(
            [ANALYZER, "serve", "--host", "127.0.0.1", "--grpc-port", "-1", "--http-port", "0",
             "--clickhouse-url", f"chdb://{data}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert other.returncode == 2
        assert str(data / "chainotel.lock") in other.stderr and f"process {a.proc.pid}" in other.stderr

    expected = 2 + 100 + 3 + 2 + 1 + 1 + 1 + 20
    with open_db(data) as db:
        assert db.command("SELECT count() FROM chain_history") == expected
        assert db.command("SELECT uniqExact(span_id) FROM chain_history") == expected
        # column mapping of the JSON request
        rows = db.query(
            "SELECT toString(instance_id), span_id, parent_span_id, service_name, operation, span_kind, event_type, "
            "duration_ns, endpoint, chain, status_code, status_message, error_context, peer_service, "
            "span_attributes['http.response.status_code'], scope_name, toUnixTimestamp64Nano(timestamp) "
            "FROM chain_history WHERE trace_id = {t:String} ORDER BY timestamp", parameters={"t": trace_hex},
        ).result_rows  # fmt: skip
        assert len(rows) == 2
        root, child = rows
        assert root[0] == str(uuid.UUID(trace_hex)) and root[1] == root_hex and root[2] == ""
        assert root[3:7] == ("frontend", "GET /cart", "server", "error")
        assert root[7] == 30_000_000 and root[8] == "/cart" and root[9] == "C1"
        assert root[10:12] == ("error", "boom")
        assert root[12] == "ValueError: bad cart\nTraceback ..."
        assert root[14] == "500" and root[15] == "json-test" and root[16] == 1_700_000_000_000_000_000
        assert child[2] == root_hex and child[5] == "client" and child[6] == "complete" and child[10] == "ok"
        assert child[8] == "GET cart" and child[13] == "cartservice"
        # SDK spans: enduser.id, chain, endpoint falls back to the span name
        sdk = dict(db.query("SELECT operation, (user_id, chain, endpoint, span_kind) FROM chain_history "
                            "WHERE service_name = 'sdk-service'").result_rows)  # fmt: skip
        assert sdk["sdk-root"] == ("alice", "B1", "sdk-root", "internal")
        assert db.command("SELECT count() FROM chain_history WHERE scope_name = 'legacy-lib'") == 1
        # per-trace index: one row per trace after GROUP BY, root span and counts
        idx = db.query(
            "SELECT sum(span_count), sum(error_count), argMinMerge(root), max(chain), "
            "toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(min(start)) "
            "FROM chain_traces WHERE trace_id = {t:String} GROUP BY trace_id", parameters={"t": trace_hex},
        ).result_rows  # fmt: skip
        assert idx == [(2, 1, ("frontend", "GET /cart"), "C1", 30_000_000)]
        assert db.command("SELECT count() FROM (SELECT trace_id FROM chain_traces GROUP BY trace_id)") == 1 + 1 + 1 + 1 + 1 + 1 + 1 + 5
        # chain_metrics: 100 spans of 1..100 ms → quantiles from the t-digest, exact counts and sums
        m = db.query(
            "SELECT sum(calls), sum(errors), sum(duration_sum_ns), max(duration_max_ns), "
            "quantilesTDigestMerge(0.5, 0.95, 0.99)(duration_quantiles) FROM chain_metrics "
            "WHERE chain = 'A2' AND service_name = 'timed'"
        ).result_rows[0]  # fmt: skip
        assert m[:4] == (100, 0, sum(range(1, 101)) * 1_000_000, 100_000_000)
        p50, p95, p99 = m[4]
        assert 45e6 <= p50 <= 56e6 and 90e6 <= p95 <= 100e6 and 95e6 <= p99 <= 100e6
        assert db.command("SELECT sum(calls) FROM chain_metrics") == expected  # the retries did not double-count
        # the chain registry is seeded from the chainotel catalog
        assert db.command("SELECT count() FROM chain_definitions FINAL WHERE is_deleted = 0") >= 30

    # restart: the data is kept and a retry of an acknowledged request is still recognised
    with running(data) as a:
        r = httpx.post(a.http + "/v1/traces", content=dup, headers=PB, timeout=30)
        assert r.status_code == 200
        fresh = request(n_traces=1, spans_per_trace=1).SerializeToString()
        assert httpx.post(a.http + "/v1/traces", content=fresh, headers=PB, timeout=30).status_code == 200
    with open_db(data) as db:
        assert db.command("SELECT count() FROM chain_history") == expected + 1
        assert db.command("SELECT sum(calls) FROM chain_metrics") == expected + 1
