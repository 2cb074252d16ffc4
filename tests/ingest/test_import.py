"""``chainotel-analyzer import``: a Jaeger JSON file, an unreadable file, and a real Online Boutique OTLP/JSON
file (skipped without the shared data, see :mod:`tests.data`)."""

from __future__ import annotations

import json
import subprocess

from tests.data import needs_onlineboutique, onlineboutique_dir
from tests.ingest.conftest import open_db
from tests.processes import ANALYZER

JAEGER = {
    "data": [{
        "traceID": "a1b2c3d4e5f60718",  # a 64-bit Jaeger trace ID: left-padded to 32 hex
        "spans": [
            {"traceID": "a1b2c3d4e5f60718", "spanID": "1111111111111111", "operationName": "GET /checkout",
             "references": [], "startTime": 1661273974730641, "duration": 2500, "processID": "p1",
             "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                      {"key": "http.route", "type": "string", "value": "/checkout"},
                      {"key": "http.status_code", "type": "int64", "value": 500},
                      {"key": "error", "type": "bool", "value": True}],
             "logs": [{"timestamp": 1661273974731000, "fields": [
                 {"key": "event", "type": "string", "value": "exception"},
                 {"key": "exception.type", "type": "string", "value": "TimeoutError"},
                 {"key": "exception.message", "type": "string", "value": "payment timed out"}]}]},
            {"traceID": "a1b2c3d4e5f60718", "spanID": "2222222222222222", "operationName": "Charge",
             "references": [{"refType": "CHILD_OF", "traceID": "a1b2c3d4e5f60718", "spanID": "1111111111111111"}],
             "startTime": 1661273974730700, "duration": 1200, "processID": "p2",
             "tags": [{"key": "span.kind", "type": "string", "value": "client"},
                      {"key": "peer.service", "type": "string", "value": "paymentservice"}]},
        ],
        "processes": {"p1": {"serviceName": "frontend", "tags": [{"key": "hostname", "type": "string", "value": "h1"}]},
                      "p2": {"serviceName": "checkoutservice", "tags": []}},
    }]
}  # fmt: skip


def _import(endpoint: str, *paths) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZER, "import", "--endpoint", endpoint, *map(str, paths)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_import_jaeger_and_unreadable_file(analyzer_factory, tmp_path):
    jaeger = tmp_path / "jaeger.json"
    jaeger.write_text(json.dumps(JAEGER))
    a = analyzer_factory()
    run = _import(a.http, jaeger)
    assert run.returncode == 0, run.stderr
    assert f"{jaeger}: jaeger, 2 stored, 0 already stored, 0 rejected" in run.stderr.replace("\n", "")
    # importing again stores nothing twice (each chunk is a retry of an acknowledged request), and says so
    again = _import(a.http, jaeger)
    assert again.returncode == 0
    assert f"{jaeger}: jaeger, 0 stored, 2 already stored, 0 rejected" in again.stderr.replace("\n", "")
    assert "stored 0 spans, already stored 2 spans, rejected 0 spans" in again.stdout
    # an unreadable file is reported, the exit code says so
    broken = tmp_path / "broken.json"
    broken.write_text('{"something": "else"}')
    bad = subprocess.run([ANALYZER, "import", "--endpoint", a.http, str(broken)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "neither an OTLP/JSON" in bad.stderr
    a.stop()
    with open_db(a.data_dir) as db:
        rows = db.query(
            "SELECT span_id, parent_span_id, service_name, span_kind, event_type, duration_ns, endpoint, "
            "peer_service, error_context, span_attributes['http.status_code'], resource_attributes['hostname'] "
            "FROM chain_history WHERE trace_id = '0000000000000000a1b2c3d4e5f60718' ORDER BY timestamp"
        ).result_rows  # fmt: skip
        assert rows == [
            ("1111111111111111", "", "frontend", "server", "error", 2_500_000, "/checkout", "", "TimeoutError: payment timed out", "500", "h1"),
            ("2222222222222222", "1111111111111111", "checkoutservice", "client", "complete", 1_200_000, "Charge", "paymentservice", "", "", ""),
        ]  # fmt: skip
        assert db.command("SELECT count() FROM chain_history") == 2
        # traces recorded in 2022 are kept: retention counts from ingest time
        assert db.command("SELECT toYear(min(timestamp)) FROM chain_history") == 2022


def test_import_single_trace_objects_per_span_process_and_invalid_ids(analyzer_factory, tmp_path):
    # one trace object, as Jaeger's fixtures and its UI's "Download JSON" write it; one span carries its
    # own process (Jaeger's model JSON), one has IDs that are not hex and is named by them
    trace = {
        "traceID": "00000000000000000000000000abcdef",
        "spans": [
            {"traceID": "abcdef", "spanID": "3333333333333333", "operationName": "own-process", "startTime": 1661273974730641,
             "duration": 10, "process": {"serviceName": "inline-svc", "tags": [{"key": "zone", "type": "string", "value": "z1"}]}},
            {"traceID": "abcdef", "spanID": "4444444444444444", "operationName": "table-process", "startTime": 1661273974730642,
             "duration": 10, "processID": "p1"},
            {"traceID": "trace-123", "spanID": "span-9", "operationName": "bad", "startTime": 1661273974730643, "duration": 1,
             "processID": "p1"},
        ],
        "processes": {"p1": {"serviceName": "table-svc", "tags": []}},
    }  # fmt: skip
    single = tmp_path / "single.json"
    single.write_text(json.dumps(trace))
    otlp = tmp_path / "otlp.json"
    otlp.write_text(json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [
        {"traceId": "not-a-trace-id", "spanId": "0102030405060708", "name": "bad-otlp", "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "name": "good-otlp",
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000001000"},
    ]}]}]}))  # fmt: skip
    a = analyzer_factory()
    run = _import(a.http, single, otlp)
    assert run.returncode == 0, run.stderr
    err = " ".join(run.stderr.split())
    assert f"{single}: jaeger, 2 stored, 0 already stored, 1 rejected (span span-9 of trace trace-123: traceID is not hex)" in err
    assert f"{otlp}: otlp, 1 stored, 0 already stored, 1 rejected (span 0102030405060708 of trace not-a-trace-id: traceId must be 32 hex digits)" in err
    assert "stored 3 spans, already stored 0 spans, rejected 2 spans" in run.stdout
    a.stop()
    with open_db(a.data_dir) as db:
        rows = db.query(
            "SELECT operation, service_name, resource_attributes['zone'] FROM chain_history "
            "WHERE trace_id = '00000000000000000000000000abcdef' ORDER BY operation"
        ).result_rows
        assert rows == [("own-process", "inline-svc", "z1"), ("table-process", "table-svc", "")]


@needs_onlineboutique
def test_import_onlineboutique(analyzer_factory):
    baseline = onlineboutique_dir() / "baseline"
    minutes = sorted(baseline.glob("*_otlp.json.gz"))
    assert minutes, f"no *_otlp.json.gz in {baseline}: incomplete Online Boutique data"
    a = analyzer_factory()
    run = subprocess.run(
        [ANALYZER, "import", "--endpoint", a.http, str(minutes[0])], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    stored = int(run.stdout.split("stored ")[1].split()[0])
    assert "rejected 0 spans" in run.stdout and stored > 20_000
    a.stop()
    with open_db(a.data_dir) as db:
        assert db.command("SELECT count() FROM chain_history") == stored
        services = {r[0] for r in db.query("SELECT DISTINCT service_name FROM chain_history").result_rows}
        assert {"frontend", "cartservice", "checkoutservice"} <= services
