"""Decoding rules in-process: gzip caps, OTLP/JSON hex IDs, span validation, migrations and retention."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from chainotel_analyzer.ingest.otlp import decode_request
from chainotel_analyzer.model.rows import MAX_START_NS, MAX_TIMESTAMP_NS
from chainotel_analyzer.ingest.otlp_json import InvalidRequest, parse_request
from chainotel_analyzer.ingest.receive import BodyTooLarge, DecodePool, gunzip_capped
from tests.ingest.conftest import open_db
from tests.ingest.otlp_data import request


def test_gunzip_caps_output_and_reads_all_members():
    assert gunzip_capped(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"
    assert gunzip_capped(gzip.compress(b"x" * 100), 100) == b"x" * 100
    with pytest.raises(BodyTooLarge):
        gunzip_capped(gzip.compress(b"x" * 101), 100)
    with pytest.raises(BodyTooLarge):
        gunzip_capped(gzip.compress(b"a") + gzip.compress(b"\0" * 1_000_000), 1000)
    with pytest.raises(InvalidRequest, match="truncated"):
        gunzip_capped(gzip.compress(b"x" * 1000)[:-12], 10_000)


def test_json_hex_ids_snake_case_and_bad_hex():
    doc = {"resource_spans": [{"scope_spans": [{"spans": [
        {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331", "name": "a", "kind": 2},
        {"traceId": "zz" * 16, "spanId": "b7ad6b7169203332", "name": "b", "kind": "SPAN_KIND_CLIENT"},
    ]}]}]}  # fmt: skip
    req = parse_request(json.dumps(doc).encode())
    spans = req.resource_spans[0].scope_spans[0].spans
    assert spans[0].trace_id.hex() == "0af7651916cd43dd8448eb211c80319c" and spans[0].kind == 2
    assert spans[1].trace_id == b"" and spans[1].kind == 3
    decoded = decode_request(req)
    assert decoded.count == 1 and decoded.rejected == 1 and "trace_id must be 16 bytes, got 0" in decoded.error_message
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_request(b"[1, 2]")
    with pytest.raises(InvalidRequest, match="ExportTraceServiceRequest"):
        parse_request(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}')


def test_invalid_parent_id_and_attribute_encoding():
    req = request(n_traces=1, spans_per_trace=2)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].parent_span_id = b"\x01\x02"
    a = spans[0].attributes.add()
    a.key, a.value.double_value = "ratio", 0.25
    b = spans[0].attributes.add()
    b.key = "list"
    b.value.array_value.values.add().string_value = "x"
    b.value.array_value.values.add().int_value = 3
    c = spans[0].attributes.add()
    c.key, c.value.bool_value = "flag", True
    decoded = decode_request(req)
    assert decoded.count == 1 and decoded.rejected == 1 and "parent_span_id" in decoded.error_message
    attrs = dict(decoded.table.column("span_attributes")[0].as_py())
    assert attrs["ratio"] == "0.25" and attrs["list"] == '["x",3]' and attrs["flag"] == "true"
    assert decoded.table.column("peer_service")[0].as_py() == ""  # a server span has no peer


def test_migrations_are_idempotent_and_retention_follows_settings(tmp_path):
    from chainotel_analyzer.store.migrations import apply_retention, load_migrations, migrate

    with open_db(tmp_path / "db") as db:
        versions = [m.version for m in load_migrations()]
        assert versions[:5] == [1, 2, 3, 4, 5] and versions == sorted(set(versions))
        assert migrate(db) == versions
        assert migrate(db) == []

        def ttl(table: str) -> str:
            return db.command("SELECT engine_full FROM system.tables WHERE name = {t:String}", parameters={"t": table})

        apply_retention(db, 7)
        assert all("TTL ingested_at + toIntervalDay(7)" in ttl(t) for t in ("chain_history", "chain_traces", "chain_metrics", "chain_requests"))
        apply_retention(db, 30)
        assert "toIntervalDay(30)" in ttl("chain_history")
        apply_retention(db, 0)
        assert "TTL" not in ttl("chain_history") and "TTL" not in ttl("chain_metrics")


def test_span_times_beyond_int64_ns_are_rejected_one_by_one():
    req = request(n_traces=1, spans_per_trace=4)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].start_time_unix_nano = 2**63  # would overflow timestamp[ns] and fail the whole request
    spans[2].end_time_unix_nano = 2**64 - 1
    # the last storable start (chain_metrics.minute is a DateTime, to 2106) and end (DateTime64(9), to 2262)
    spans[3].start_time_unix_nano, spans[3].end_time_unix_nano = MAX_START_NS, MAX_TIMESTAMP_NS
    decoded = decode_request(req)
    assert decoded.count == 2 and decoded.rejected == 2
    assert f"start_time_unix_nano {2**63} is after 2262-04-11" in decoded.error_message
    assert f"end_time_unix_nano {2**64 - 1} is after 2262-04-11" in decoded.error_message
    assert decoded.table.column("timestamp")[1].value == MAX_START_NS


@pytest.mark.parametrize("workers", [0, 1])
def test_unexpected_decoder_error_refuses_only_that_request(workers, caplog):
    pool = DecodePool(workers)
    try:
        # str, not bytes: the protobuf parser raises TypeError, which the receivers would answer with a bare 500
        with pytest.raises(InvalidRequest, match="request could not be decoded: TypeError"):
            pool.submit("not bytes", False, False, 1000).result(30)
        assert "could not be decoded" in caplog.text and "Traceback" in caplog.text
        good = request().SerializeToString()
        assert pool.submit(good, False, False, len(good)).result(30).spans.count == 6
    finally:
        pool.close()


def test_legacy_instrumentation_library_spans_are_kept(tmp_path):
    from chainotel_analyzer.ingest.importer import count_spans, load_request

    def span(i: int) -> dict:
        return {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": f"b7ad6b716920333{i}", "name": f"s{i}"}

    doc = {"resourceSpans": [{  # OTLP < 0.15 (e.g. an old Java agent), next to a current scopeSpans entry
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "legacy"}}]},
        "scopeSpans": [{"scope": {"name": "current"}, "spans": [span(1)]}],
        "instrumentationLibrarySpans": [
            {"instrumentationLibrary": {"name": "io.opentelemetry.okhttp", "version": "1.0"}, "spans": [span(2), span(3)]},
        ],
    }]}  # fmt: skip
    req = parse_request(json.dumps(doc).encode())
    scopes = [(ss.scope.name, ss.scope.version, len(ss.spans)) for ss in req.resource_spans[0].scope_spans]
    assert scopes == [("current", "", 1), ("io.opentelemetry.okhttp", "1.0", 2)]
    decoded = decode_request(req)
    assert decoded.count == 3 and decoded.rejected == 0
    assert decoded.table.column("scope_name").to_pylist() == ["current", "io.opentelemetry.okhttp", "io.opentelemetry.okhttp"]
    # the importer counts and sends them too
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(doc))
    fmt, loaded = load_request(path)
    assert fmt == "otlp" and count_spans(loaded) == 3


def test_a_request_the_parser_refuses_whole_is_salvaged_span_by_span():
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from chainotel_analyzer.ingest.receive import decode_payload
    from tests.ingest.otlp_data import poisoned_body

    body, valid, bad = poisoned_body()
    with pytest.raises(DecodeError):  # what made the whole request fail before
        ExportTraceServiceRequest.FromString(body)
    decoded = decode_payload(body, False, False, 1 << 20).spans
    assert (decoded.count, decoded.rejected) == (valid, bad)
    message = decoded.error_message
    assert message.startswith(f"{bad} span(s) rejected: ")
    assert "not valid UTF-8" in message and "nested deeper than the protobuf parser's limit" in message
    assert "2 span(s) of a resource that cannot be parsed" in message
    assert set(decoded.table.column("service_name").to_pylist()) == {"poisoned"}
    # a refused span is named by its ID, read from the wire
    assert re.search(r"span [0-9a-f]{16}: a string field is not valid UTF-8", message)
    # bytes that are not protobuf at all still refuse the request, with the parser's reason
    with pytest.raises(InvalidRequest, match="not a protobuf ExportTraceServiceRequest"):
        decode_payload(b"\xff\xff\xff\x0f garbage", False, False, 1 << 20)
