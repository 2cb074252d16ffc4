"""What was exported comes back from ``GET /api/v1/traces/{trace_id}`` equal, field by field, apart
from order: spans from the Python SDK's OTLP/HTTP and OTLP/gRPC exporters, the Node.js SDK's three
trace exporters (http/json, http/protobuf, grpc; installed by ``npm ci`` from
tests/ingest/node/package-lock.json into its ignored node_modules), an OTLP/JSON example of
every field and value type (tests/ingest/data/otlp_trace_example.json), the Jaeger importer's output,
and (hypothesis) any valid OTLP span. One real analyzer process on chDB for the module.

Equality is checked on the protobuf messages: the returned OTLP/JSON is parsed back by the
analyzer's own OTLP/JSON reader and each span, with its resource and scope, is compared as
deterministic protobuf bytes with what was sent.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from chainotel_analyzer.model.rows import MAX_START_NS
from chainotel_analyzer.ingest.jaeger import jaeger_to_otlp
from chainotel_analyzer.ingest.otlp_json import parse_request
from tests.ingest.test_import import JAEGER
from tests.processes import Analyzer

EXAMPLE = Path(__file__).with_name("data") / "otlp_trace_example.json"
PB = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    a = Analyzer(tmp_path_factory.mktemp("roundtrip") / "db", {"CHAINOTEL_DECODE_WORKERS": "0", "CHAINOTEL_BATCH_MAX_WAIT_S": "0"}).start()
    yield a
    a.stop()


def _no_nan_literal(text: str):
    raise AssertionError(f"{text} in the response: not valid JSON (OTLP/JSON spells it as a string)")


def _fetch(analyzer: Analyzer, trace_id: str) -> ExportTraceServiceRequest:
    r = httpx.get(f"{analyzer.http}/api/v1/traces/{trace_id}", timeout=30)
    assert r.status_code == 200, r.text
    return parse_request(json.loads(r.text, parse_constant=_no_nan_literal))


def _one_nan_value(value: AnyValue) -> None:
    kind = value.WhichOneof("value")
    if kind == "double_value" and math.isnan(value.double_value):
        value.double_value = math.nan
    elif kind == "array_value":
        for item in value.array_value.values:
            _one_nan_value(item)
    elif kind == "kvlist_value":
        _one_nan(value.kvlist_value.values)


def _one_nan(values) -> None:
    """Every NaN among the attribute ``values`` made the one NaN: OTLP/JSON writes any NaN as "NaN"
    (its sign and payload bits have no JSON form), so they compare equal."""
    for kv in values:
        _one_nan_value(kv.value)


def _canonical(request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    out = ExportTraceServiceRequest()
    out.CopyFrom(request)
    for rs in out.resource_spans:
        _one_nan(rs.resource.attributes)
        for ss in rs.scope_spans:
            _one_nan(ss.scope.attributes)
            for span in ss.spans:
                _one_nan(span.attributes)
                for part in (*span.events, *span.links):
                    _one_nan(part.attributes)
    return out


def _parts(request: ExportTraceServiceRequest, trace_id: bytes | None = None) -> list[tuple[bytes, bytes, bytes]]:
    """Each span of ``request`` (of ``trace_id`` only, if given) with its resource and scope, as
    deterministic protobuf bytes, sorted: the request's content apart from order and grouping."""
    request = _canonical(request)
    out = []
    for rs in request.resource_spans:
        resource = ResourceSpans(resource=rs.resource, schema_url=rs.schema_url).SerializeToString(deterministic=True)
        for ss in rs.scope_spans:
            scope = ScopeSpans(scope=ss.scope, schema_url=ss.schema_url).SerializeToString(deterministic=True)
            out.extend((resource, scope, span.SerializeToString(deterministic=True))
                       for span in ss.spans if trace_id is None or span.trace_id == trace_id)  # fmt: skip
    return sorted(out)


def _assert_round_trip(analyzer: Analyzer, sent: ExportTraceServiceRequest) -> None:
    trace_ids = {span.trace_id for rs in sent.resource_spans for ss in rs.scope_spans for span in ss.spans}
    for trace_id in trace_ids:
        assert _parts(_fetch(analyzer, trace_id.hex()), trace_id) == _parts(sent, trace_id)


def test_python_sdk_http_and_grpc_exporters_round_trip(analyzer):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    exporters = {
        "http": HttpExporter(endpoint=analyzer.http + "/v1/traces", timeout=10),
        "grpc": GrpcExporter(endpoint=analyzer.grpc, insecure=True, timeout=10),
    }
    for name, exporter in exporters.items():
        finished = []

        class Collect(SpanProcessor):
            def on_end(self, span):
                finished.append(span)

        provider = TracerProvider(
            resource=Resource.create({"service.name": f"sdk-{name}", "host.cores": 8, "host.load": 0.5}),
            span_limits=SpanLimits(max_events=2, max_links=1, max_span_attributes=6),  # some dropped counts
        )
        provider.add_span_processor(Collect())
        tracer = provider.get_tracer("roundtrip.tests", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26.0",
                                     attributes={"scope.flavour": "test"})  # fmt: skip
        other = SpanContext(int.from_bytes(os.urandom(16), "big"), int.from_bytes(os.urandom(8), "big"), True,
                            TraceFlags(1), TraceState([("vendor", "x1")]))  # fmt: skip
        links = [Link(other, {"link.kind": "follows", "link.weight": 2.5}), Link(other, {"dropped": True})]
        with tracer.start_as_current_span("root", kind=SpanKind.SERVER, links=links, attributes={
            "http.route": "/orders/{id}", "retries": 3, "ratio": float("nan"), "limit": float("inf"),
            "tags": ["a", "b"], "weights": [1.5, float("-inf")], "flags": [True, False], "extra": "over the limit",
        }) as root:  # fmt: skip
            root.add_event("cache.miss", {"key": "k1", "size": 42})
            root.add_event("retry", {"delay_s": 0.25, "attempts": [1, 2]})
            root.add_event("third event (dropped)")
            with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
                child.set_status(Status(StatusCode.ERROR, "upstream failed"))
                child.record_exception(ValueError("bad value"))
        assert exporter.export(finished) == SpanExportResult.SUCCESS, name
        exporter.shutdown()
        _assert_round_trip(analyzer, encode_spans(finished))


NODE_DIR = Path(__file__).with_name("node")


@pytest.fixture(scope="module")
def node_exporters() -> Path:
    """tests/ingest/node with its npm packages installed (``npm ci``, as .ci/run does)."""
    if not (NODE_DIR / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-grpc").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not installed: the Node.js round trip needs Node.js and npm (apt-get install nodejs npm)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300)
    return NODE_DIR


def test_nodejs_sdk_three_exporters_round_trip(analyzer, node_exporters):
    run = subprocess.run(["node", str(node_exporters / "export.js"), analyzer.http, analyzer.grpc],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    sent = json.loads(run.stdout)
    assert sorted(sent) == ["grpc", "http/json", "http/protobuf"]
    for kind, request in sent.items():
        parsed = parse_request(request)
        assert sum(len(ss.spans) for rs in parsed.resource_spans for ss in rs.scope_spans) == 2, kind
        _assert_round_trip(analyzer, parsed)


def test_otlp_json_example_of_every_field_round_trips(analyzer):
    body = EXAMPLE.read_bytes()
    r = httpx.post(analyzer.http + "/v1/traces", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200 and r.json() == {}, r.text
    sent = parse_request(body)
    _assert_round_trip(analyzer, sent)
    # the JSON itself: IDs in hex, non-finite doubles as strings, enums as integers
    doc = httpx.get(f"{analyzer.http}/api/v1/traces/7bba9f33-312b-3dbb-8b2c-2c62bb7abe2d", timeout=30).json()
    span = next(s for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"] if s["name"] == "POST /orders")
    assert span["spanId"] == "086e83747d0e381e" and span["links"][0]["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    values = {a["key"]: a["value"] for a in span["attributes"]}
    assert values["order.ratio"] == {"doubleValue": "NaN"} and values["order.floor"] == {"doubleValue": "-Infinity"}
    assert span["kind"] == 2 and span["status"] == {"code": 2, "message": "payment declined"}
    # the per-instance view shows the span's events and links too
    events = httpx.get(f"{analyzer.http}/api/v1/chains/events/7bba9f33312b3dbb8b2c2c62bb7abe2d", timeout=30).json()
    row = next(e for e in events["events"] if e["operation"] == "POST /orders")
    assert [e["name"] for e in row["span_events"]] == ["order.validated", "exception"]
    assert row["links"][0]["spanId"] == "b7ad6b7169203331" and row["trace_state"] == "vendor=abc,other=1"
    # the attribute map's JSON texts are valid JSON, with the OTLP/JSON spelling of non-finite doubles
    assert json.loads(row["span_attributes"]["order.meta"]) == {"limit": "Infinity", "nested": [-7]}
    assert row["span_attributes"]["order.ratio"] == "NaN"


def test_jaeger_importer_output_round_trips(analyzer):
    request = jaeger_to_otlp(JAEGER)
    body = json.dumps(request).encode()
    r = httpx.post(analyzer.http + "/v1/traces", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    _assert_round_trip(analyzer, parse_request(body))


def test_unknown_and_malformed_trace_ids(analyzer):
    assert httpx.get(f"{analyzer.http}/api/v1/traces/{'ab' * 16}", timeout=30).status_code == 404
    assert httpx.get(f"{analyzer.http}/api/v1/traces/not-a-trace", timeout=30).status_code == 422


# --- any valid OTLP span -----------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_leaf = st.one_of(
    _text.map(lambda s: AnyValue(string_value=s)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: AnyValue(double_value=f)),
    st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)


def _array(values):
    v = AnyValue()
    v.array_value.values.extend(values)
    return v


def _kvlist(pairs):
    v = AnyValue()
    v.kvlist_value.values.extend(KeyValue(key=k, value=x) for k, x in pairs)
    return v


_any = st.recursive(_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(_array), st.lists(st.tuples(_text, inner), max_size=3).map(_kvlist),
), max_leaves=6)  # fmt: skip
_attributes = st.lists(st.tuples(_text, _any).map(lambda kv: KeyValue(key=kv[0], value=kv[1])), max_size=4)
_u32 = st.integers(0, 2**32 - 1)
_ns = st.integers(0, 2**63 - 1)
_start_ns = st.integers(0, MAX_START_NS)  # later starts are refused on their own (the minute column's range)
_nonzero = lambda n: st.binary(min_size=n, max_size=n).filter(any)  # noqa: E731


@st.composite
def _requests(draw) -> ExportTraceServiceRequest:
    trace_id = draw(_nonzero(16))
    span = Span(
        trace_id=trace_id, span_id=draw(_nonzero(8)), parent_span_id=draw(st.one_of(st.just(b""), _nonzero(8))),
        trace_state=draw(_text), flags=draw(_u32), name=draw(_text), kind=draw(st.integers(0, 5)),
        start_time_unix_nano=draw(_start_ns), end_time_unix_nano=draw(_ns), dropped_attributes_count=draw(_u32),
        dropped_events_count=draw(_u32), dropped_links_count=draw(_u32),
    )  # fmt: skip
    span.attributes.extend(draw(_attributes))
    for _ in range(draw(st.integers(0, 2))):
        ev = span.events.add(time_unix_nano=draw(_ns), name=draw(_text), dropped_attributes_count=draw(_u32))
        ev.attributes.extend(draw(_attributes))
    for _ in range(draw(st.integers(0, 2))):
        link = span.links.add(trace_id=draw(_nonzero(16)), span_id=draw(_nonzero(8)), trace_state=draw(_text),
                              flags=draw(_u32), dropped_attributes_count=draw(_u32))  # fmt: skip
        link.attributes.extend(draw(_attributes))
    span.status.code = draw(st.integers(0, 2))
    span.status.message = draw(_text)
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add(schema_url=draw(_text))
    rs.resource.attributes.extend(draw(_attributes))
    rs.resource.dropped_attributes_count = draw(_u32)
    ss = rs.scope_spans.add(schema_url=draw(_text))
    ss.scope.name, ss.scope.version = draw(_text), draw(_text)
    ss.scope.attributes.extend(draw(_attributes))
    ss.scope.dropped_attributes_count = draw(_u32)
    ss.spans.append(span)
    return request


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])  # fmt: skip
@given(request=_requests())
def test_any_valid_otlp_span_round_trips(analyzer, request):
    # a trace of its own for each example (hypothesis replays and shrinks examples with equal IDs)
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = os.urandom(16)
    r = httpx.post(analyzer.http + "/v1/traces", content=request.SerializeToString(), headers=PB, timeout=30)
    assert r.status_code == 200, r.text
    _assert_round_trip(analyzer, request)


def test_non_finite_doubles_in_the_attribute_maps_are_valid_json():
    from chainotel_analyzer.ingest.otlp import any_value_to_str

    value = _kvlist([("limit", AnyValue(double_value=math.inf)), ("xs", _array([AnyValue(double_value=math.nan)]))])
    assert json.loads(any_value_to_str(value), parse_constant=_no_nan_literal) == {"limit": "Infinity", "xs": ["NaN"]}
    assert any_value_to_str(AnyValue(double_value=-math.inf)) == "-Infinity"


def test_rows_stored_before_the_spans_were_kept_whole_are_given_back(tmp_path):
    """A row from before migration 0006 (span_otlp, resource_otlp, scope_otlp '') comes back from its
    columns: IDs, name, kind, times, status, scope name, attributes as strings."""
    import pyarrow as pa

    from chainotel_analyzer.ingest.otlp import decode_request
    from chainotel_analyzer.model.otlp_trace import request_json, trace_request
    from chainotel_analyzer.model.rows import insert_table
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate
    from chainotel_analyzer.store.queries import ClickHouseTraceReader

    sent = parse_request(EXAMPLE.read_bytes())
    decoded = decode_request(sent)
    table = insert_table([(1, decoded)])
    for name in ("span_otlp", "resource_otlp", "scope_otlp"):  # what ADD COLUMN gives the old rows
        table = table.set_column(table.schema.get_field_index(name), name, pa.array([b""] * table.num_rows, pa.binary()))
    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}"))
    try:
        migrate(store.client)
        store.client.insert_arrow("chain_history", table)
        rows = ClickHouseTraceReader(store.client).trace_otlp("7bba9f33312b3dbb8b2c2c62bb7abe2d")
    finally:
        store.close()
    doc = request_json(trace_request(rows))
    (rs,) = doc["resourceSpans"]
    assert {"key": "service.name", "value": {"stringValue": "order-service"}} in rs["resource"]["attributes"]
    (ss,) = rs["scopeSpans"]
    assert ss["scope"] == {"name": "order.instrumentation"}
    root = next(s for s in ss["spans"] if s["name"] == "POST /orders")
    assert root["spanId"] == "086e83747d0e381e" and root["kind"] == 2 and root["status"]["code"] == 2
    assert root["endTimeUnixNano"] == "1714000000250000000"
    assert {"key": "http.response.status_code", "value": {"stringValue": "201"}} in root["attributes"]
